//! The escrow story, end to end, told in the terminal (`scripts/demo.sh` sets up what it needs).
//!
//! A buyer funds an escrow from their own wallet through the relayer's Solana Action; a carrier's
//! signed "delivered" webhook makes the relayer approve the release with its KMS key (OpenBao
//! Transit); the seller approves from their wallet; the dispute window counts down; the relayer
//! cranks the release and the seller is paid.
//!
//! The chain is the compiled program in an in-process SVM whose clock follows the wall clock, or
//! with `CLUSTER` (e.g. localnet) a running validator. Configuration is the relayer's own
//! environment (DATABASE_URL, TRACKING_HMAC_SECRET, ACCESS_JWT_SECRET, SIGNER_MODE, VAULT_*).
mod narrate;
mod setup;

use std::{io::IsTerminal, sync::Arc, time::Duration};

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context};
use escrow_chain::{embedded::EmbeddedChain, rpc::RpcChain, Chain};
use narrate::{say, step, tokens};
use relayer::{
    config::Env,
    domain::signature::tracking_signature,
    pipeline::{Handler, Pipeline, PipelineConfig},
    startup::{Application, Role},
};
use serde_json::{json, Value};
use setup::Wallets;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio_util::sync::CancellationToken;

const DECIMALS: u8 = 6;
const PRICE: u64 = 25_000_000;
const BUYER_FUNDS: u64 = 100_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let story = story(stop.clone());
    tokio::select! {
        result = story => result,
        _ = tokio::signal::ctrl_c() => {
            stop.cancel();
            eprintln!("\ninterrupted: stopping the relayer");
            std::process::exit(130);
        }
    }
}

async fn story(stop: CancellationToken) -> anyhow::Result<()> {
    let env = Env::process();
    let mut config = env.config(env.secrets()?, None)?;
    // The seed's default is to simulate and record only; this chain is a throwaway.
    config.execute = true;
    // The demo's own setting, not the relayer's.
    let timelock: u32 = match std::env::var("DEMO_TIMELOCK_SECS") {
        Ok(v) => v.parse().context("DEMO_TIMELOCK_SECS: seconds")?,
        Err(_) => 10,
    };

    step("the chain");
    let chain: Arc<dyn Chain> = match env.optional("CLUSTER") {
        None => {
            let chain = EmbeddedChain::from_svm(escrow_tests::Svm::new().svm);
            follow_wall_clock(chain.clone(), stop.clone());
            say("the compiled escrow program in an in-process SVM (LiteSVM), its clock following yours");
            Arc::new(chain)
        }
        Some(cluster) => {
            let chain = RpcChain::new(&cluster);
            chain.block_height().await.with_context(|| {
                format!(
                    "CLUSTER={cluster} is not reachable: start it with scripts/localnet.sh start"
                )
            })?;
            say(&format!("{cluster}, over JSON-RPC"));
            Arc::new(chain)
        }
    };

    step("the relayer");
    let signer = relayer::signer::connect(&env.signer(true)?, None).await?;
    let relayer_key = signer.pubkey();
    let checkpoint_signer = signer.clone();
    say(&format!(
        "its key lives in OpenBao Transit (ed25519, not exportable); address {relayer_key}"
    ));
    say("OPENCLAW_EXECUTE=true for this throwaway chain only: it signs and sends");
    // As a deployment does: the schema's owner migrates, and grants the relayer's own role
    // (DATABASE_URL's) only what it needs.
    let (owner_url, app_role) = env.migration()?;
    let owner = relayer::db::pool(&owner_url)?;
    relayer::db::MIGRATOR.run(&owner).await?;
    if let Some(role) = app_role {
        relayer::db::grant_app_role(&owner, &role.name, role.password.as_ref()).await?;
        let role = role.name;
        say(&format!(
            "Postgres: migrated by the schema's owner; the relayer runs as {role}, which cannot alter the audit log"
        ));
    }
    let pool = relayer::db::pool(&config.database.url)?;
    let pipeline = Pipeline::new(
        pool.clone(),
        chain.clone(),
        signer,
        PipelineConfig {
            execute: true,
            confirm_poll: Duration::from_millis(100),
            max_attempts: config.queue.max_attempts,
            priority_fee_micro_lamports: 0,
        },
    );
    let (jwt, _) = relayer::auth::issue(config.secrets.jwt.expose(), &config.tokens, "demo", 3_600);
    let hmac = config.secrets.tracking[0].expose().to_vec();
    let app = Application::build(config, Role::All, Arc::new(Handler(pipeline)))
        .await?
        .with_chain(chain.clone())
        .with_reconciler(chain.clone(), Duration::from_secs(1));
    let base = format!("http://{}", app.local_addr().context("listening")?);
    tokio::spawn(app.run(stop.clone()));
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
        jwt,
    };
    api.wait_ready().await?;
    say(&format!(
        "listening on {base}: webhooks, Solana Actions, operator API, metrics"
    ));

    step("wallets and a token");
    let wallets = Wallets::new();
    let deal = setup::market(&*chain, &wallets, &relayer_key, DECIMALS, BUYER_FUNDS).await?;
    say(&format!(
        "buyer  {} holds {}",
        wallets.buyer.pubkey(),
        tokens(BUYER_FUNDS, DECIMALS)
    ));
    say(&format!("seller {}", wallets.seller.pubkey()));
    say(&format!("mint   {} ({DECIMALS} decimals)", deal.mint));

    step("the seller lists the deal; the marketplace registers it with the relayer");
    let now = chain.unix_time().await?;
    let offer = api
        .operator_post(
            "/v1/offers",
            json!({
                "buyer": wallets.buyer.pubkey().to_string(),
                "seller": wallets.seller.pubkey().to_string(),
                "mint": deal.mint.to_string(), "amount": PRICE,
                "tracking_number": "1ZDEMO0001", "carrier": "ups",
                "terms": {
                    "id": 1,
                    "approvers": [wallets.buyer.pubkey().to_string(),
                                  wallets.seller.pubkey().to_string(), relayer_key.to_string()],
                    "threshold": 2, "timelock_secs": timelock,
                    "refund_after": now + 7 * 86_400,
                },
            }),
        )
        .await?;
    let offer_id = offer["id"].as_str().context("offer id")?.to_owned();
    let escrow: Pubkey = offer["escrow"].as_str().context("escrow")?.parse()?;
    say(&format!(
        "offer {offer_id}, escrow {escrow} (not on-chain yet)"
    ));
    say(&format!("blink: {base}/api/actions/deposit/{offer_id}"));
    say(&format!(
        "deal page for buyer and seller: {base}/deals/{offer_id}"
    ));

    step("the buyer opens the blink in their wallet and signs");
    let action = api.get(&format!("/api/actions/deposit/{offer_id}")).await?;
    say(&format!(
        "“{}”",
        action["title"].as_str().unwrap_or_default()
    ));
    say(action["description"].as_str().unwrap_or_default());
    let signature = api
        .act(&*chain, "deposit", &offer_id, &wallets.buyer)
        .await?;
    let vault = escrow::client::vault_address(&escrow).0;
    say(&format!(
        "landed {signature}: the vault holds {}",
        tokens(setup::balance(&*chain, &vault).await?, DECIMALS)
    ));

    step("the carrier reports, with signed webhooks");
    let event = |id: &str, status: &str| {
        json!({ "event_id": id, "tracking_number": "1ZDEMO0001", "carrier": "ups",
                "status": status, "occurred_at": chrono::Utc::now().to_rfc3339() })
        .to_string()
    };
    let sent = api.webhook(&event("evt-1", "in_transit"), &hmac).await?;
    say(&format!("in transit                → {sent}"));
    let forged = api
        .webhook(&event("evt-2", "delivered"), b"not-the-secret")
        .await?;
    say(&format!(
        "a forged “delivered”      → {forged} (refused, nothing changes)"
    ));
    let delivered = event("evt-3", "delivered");
    let sent = api.webhook(&delivered, &hmac).await?;
    say(&format!("delivered                 → {sent}"));
    let again = api.webhook(&delivered, &hmac).await?;
    say(&format!(
        "the carrier retries it    → {again} (recorded once)"
    ));

    step("the relayer approves the release, signed by OpenBao");
    let job = api.wait_job(&offer_id, "approve_release").await?;
    say(job["result"].as_str().unwrap_or_default());

    step("the seller approves from their wallet");
    let signature = api
        .act(&*chain, "approve", &offer_id, &wallets.seller)
        .await?;
    say(&format!("landed {signature}"));
    let state = setup::escrow_state(&*chain, &escrow)
        .await?
        .context("the escrow")?;
    if state.scheduled() != Some(escrow::Outcome::Release) {
        bail!("two approvals should have scheduled the release");
    }
    let eta = state.eta;
    say(&format!(
        "2 of 3 approvals: release scheduled; either party may dispute for {timelock} s"
    ));

    step("the dispute window");
    loop {
        let left = eta - chain.unix_time().await?;
        if left <= 0 {
            break;
        }
        say(&format!("release executable in {left:>2} s"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    say("no dispute: the window has closed");

    step("the relayer cranks the release");
    let job = api.wait_job(&offer_id, "crank_release").await?;
    say(job["result"].as_str().unwrap_or_default());

    step("final balances");
    let seller_token = setup::wallet_token(&wallets.seller.pubkey(), &deal);
    let buyer_token = setup::wallet_token(&wallets.buyer.pubkey(), &deal);
    say(&format!(
        "buyer   {}",
        tokens(setup::balance(&*chain, &buyer_token).await?, DECIMALS)
    ));
    say(&format!(
        "seller  {}",
        tokens(setup::balance(&*chain, &seller_token).await?, DECIMALS)
    ));
    if chain.account(&escrow).await?.is_some() || chain.account(&vault).await?.is_some() {
        bail!("the escrow or its vault is still open after the release");
    }
    say("escrow and vault closed; their rent went back to the buyer");

    step("where to look");
    let metrics = api.text("/metrics").await?;
    say(&format!("metrics      {base}/metrics"));
    for line in metrics.lines().filter(|l| !l.ends_with(" 0")).filter(|l| {
        l.starts_with("relayer_webhooks_total")
            || l.starts_with("relayer_actions_total")
            || l.starts_with("relayer_offers_settled{")
            || l.starts_with("relayer_jobs{")
    }) {
        say(&format!("    {line}"));
    }
    say(&format!("offer record {base}/v1/offers/{offer_id}"));
    let page = api.text(&format!("/deals/{offer_id}")).await?;
    if !page.contains("Released: the seller has been paid.") {
        bail!("the deal page does not show the release: {base}/deals/{offer_id}");
    }
    say(&format!(
        "deal page    {base}/deals/{offer_id}: \"Released: the seller has been paid.\""
    ));
    let trail: Vec<(String, String)> = sqlx::query_as(
        "SELECT j.action, c.signature FROM chain_txs c JOIN jobs j ON j.id = c.job_id
         WHERE j.offer_id = $1::uuid ORDER BY c.id",
    )
    .bind(&offer_id)
    .fetch_all(&pool)
    .await?;
    say("what the relayer signed and sent (chain_txs):");
    for (action, signature) in trail {
        say(&format!("    {action:<16} {signature}"));
    }
    let entries = api.get(&format!("/v1/audit/offers/{offer_id}")).await?;
    let kinds: Vec<&str> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    say(&format!(
        "audit log    {base}/v1/audit/offers/{offer_id}: {} entries, hash-chained:",
        kinds.len()
    ));
    say(&format!("    {}", kinds.join(" → ")));
    let checkpoint = relayer::audit::checkpoint(&pool, &*checkpoint_signer)
        .await?
        .context("a checkpoint of the log")?;
    say(&format!(
        "checkpoint   {} entries, head {}…, signed by the relayer's OpenBao key",
        checkpoint.tree_size,
        &hex_prefix(&checkpoint.head_hash)
    ));
    say(&format!(
        "verify it    relayer audit verify --url {base} --pubkey {relayer_key}"
    ));
    if std::io::stdin().is_terminal() {
        println!("\nThe relayer keeps running so you can look around; operator token for the API:");
        println!(
            "  curl -H 'Authorization: Bearer {}' {base}/v1/offers/{offer_id}",
            api.jwt
        );
        println!("Press Enter (or Ctrl-C) to stop and clean up.");
        let mut line = String::new();
        tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await??;
    }
    stop.cancel();
    println!("\ndone.");
    Ok(())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The in-process chain's clock follows the wall clock, as a validator's does.
fn follow_wall_clock(chain: EmbeddedChain, stop: CancellationToken) {
    let sync = move || {
        let mut svm = chain.svm();
        let mut clock = svm.get_sysvar::<anchor_lang::prelude::Clock>();
        clock.unix_timestamp = chrono::Utc::now().timestamp();
        svm.set_sysvar(&clock);
    };
    sync();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        while tokio::select! { _ = tick.tick() => true, _ = stop.cancelled() => false } {
            sync();
        }
    });
}

struct Api {
    http: reqwest::Client,
    base: String,
    jwt: String,
}

impl Api {
    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..100 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the relayer did not become ready (is Postgres up?)")
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .json()
            .await?)
    }

    /// GET as an operator.
    async fn text(&self, path: &str) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.jwt)
            .send()
            .await?
            .text()
            .await?)
    }

    async fn operator_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.jwt)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    /// Posts a tracking event signed with `secret`; returns the status line.
    async fn webhook(&self, body: &str, secret: &[u8]) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/webhooks/tracking", self.base))
            .header(
                "X-Tracking-Signature",
                tracking_signature(secret, body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        Ok(resp.status().to_string())
    }

    /// What a wallet does with an action: POST its account, sign what comes back, send it.
    async fn act(
        &self,
        chain: &dyn Chain,
        action: &str,
        offer: &str,
        wallet: &Keypair,
    ) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/api/actions/{action}/{offer}", self.base))
            .json(&json!({ "account": wallet.pubkey().to_string() }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("action {action}: {status} {}", body["message"]);
        }
        say(&format!(
            "wallet shows: {}",
            body["message"].as_str().unwrap_or_default()
        ));
        setup::sign_and_send(chain, &body, wallet).await
    }

    /// Waits for the offer's job `action` to succeed; returns it.
    async fn wait_job(&self, offer: &str, action: &str) -> anyhow::Result<Value> {
        for _ in 0..600 {
            let resp = self
                .http
                .get(format!("{}/v1/offers/{offer}", self.base))
                .bearer_auth(&self.jwt)
                .send()
                .await?
                .json::<Value>()
                .await?;
            if let Some(job) = resp["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|j| j["action"] == action)
            {
                match job["state"].as_str() {
                    Some("succeeded") => return Ok(job.clone()),
                    Some("dead") => bail!("job {action} is dead: {}", job["last_error"]),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("job {action} did not finish within a minute")
    }
}
