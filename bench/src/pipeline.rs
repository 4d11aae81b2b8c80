//! The release pipeline on a real node, end to end: a buyer funds escrows whose approvers are
//! buyer, seller and the relayer; the offers are registered with a running `relayer serve` that
//! executes (`OPENCLAW_EXECUTE=true`, KMS-signed); then signed "delivered" webhooks arrive. The
//! figure is the time from an accepted webhook to its `approve_release` job done, which the
//! relayer records only once it has seen its transaction confirmed on the node.
//!
//! - one at a time: each webhook after the previous approval is done (the latency of one);
//! - a burst: every webhook at once (the latency under load, and how long the whole burst takes);
//! - the floor: transfers signed here, sent to the same node and polled for confirmation every
//!   10 ms. No relayer can confirm faster than the node does.
//!
//! Afterwards every escrow is read back: the relayer's approval must be on-chain, once.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anchor_lang::{
    prelude::{Pubkey, Rent},
    solana_program::system_instruction,
    AccountDeserialize,
};
use anchor_spl::associated_token::get_associated_token_address_with_program_id;
use anyhow::{bail, ensure, Context};
use escrow::{client, CreateArgs, Escrow, Outcome};
use relayer::{
    chain::{
        airdrop_and_confirm, rpc::RpcChain, sign_send_and_confirm, Chain, ConfirmError, TxStatus,
    },
    domain::signature::tracking_signature,
};
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use tokio::task::JoinSet;

use crate::percentile;

const TOKEN: Pubkey = anchor_spl::token::ID;
const AMOUNT: u64 = 1_000_000;
/// How often this bench looks: at the node for the floor, in the relayer's database for jobs.
const POLL: Duration = Duration::from_millis(10);
/// Setup transactions (airdrops, escrows) are not measured.
const SETUP_POLL: Duration = Duration::from_millis(200);
/// No approval may take longer; past it the run fails, naming the job.
const GIVE_UP: Duration = Duration::from_secs(180);

#[derive(clap::Args)]
pub struct Args {
    /// The node's JSON-RPC URL (the relayer's CLUSTER).
    #[arg(long)]
    rpc_url: String,
    /// `relayer serve` with every role, executing with its KMS key on that node.
    #[arg(long)]
    relayer_url: String,
    /// The relayer's database, where its jobs are read.
    #[arg(long)]
    database_url: String,
    /// TRACKING_HMAC_SECRET.
    #[arg(long)]
    secret: String,
    /// ACCESS_JWT_SECRET, to register the offers.
    #[arg(long)]
    jwt_secret: String,
    /// The relayer's address (its KMS key): an approver of every escrow; funded here.
    #[arg(long)]
    relayer: Pubkey,
    /// Offers per phase (one at a time, then a burst).
    #[arg(long, default_value_t = 100)]
    offers: usize,
}

/// An escrow on the node and its offer at the relayer.
struct Offer {
    escrow: Pubkey,
    id: String,
    tracking: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let chain = Arc::new(RpcChain::new(&args.rpc_url));
    let pool = sqlx::PgPool::connect(&args.database_url).await?;
    let http = reqwest::Client::new();
    let buyer = Arc::new(Keypair::new());
    let seller = Keypair::new().pubkey();
    for who in [buyer.pubkey(), args.relayer] {
        airdrop_and_confirm(&*chain, &who, 20_000_000_000, SETUP_POLL).await?;
    }
    let mint = fund_buyer(&*chain, &buyer, 2 * args.offers as u64 * AMOUNT).await?;
    let escrows = open_escrows(&chain, &buyer, seller, mint, args.relayer, 2 * args.offers).await?;
    // The relayers under test run with the default token rules (ACCESS_JWT_ISSUER, _AUDIENCE).
    let rules = relayer::config::Env::process().tokens()?;
    let (jwt, _) = relayer::auth::issue(args.jwt_secret.as_bytes(), &rules, "bench", 3_600);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut offers = Vec::with_capacity(escrows.len());
    for (i, escrow) in escrows.into_iter().enumerate() {
        let tracking = format!("1ZP{}{i:04}", &run[..12]);
        let body = json!({
            "escrow": escrow.to_string(), "buyer": buyer.pubkey().to_string(),
            "seller": seller.to_string(), "mint": mint.to_string(), "amount": AMOUNT,
            "tracking_number": tracking, "carrier": "ups",
        });
        let resp = http
            .post(format!("{}/v1/offers", args.relayer_url))
            .bearer_auth(&jwt)
            .json(&body)
            .send()
            .await?;
        ensure!(
            resp.status() == 201,
            "registering an offer: {}",
            resp.text().await?
        );
        let id = resp.json::<Value>().await?["id"]
            .as_str()
            .context("no offer id")?
            .to_owned();
        offers.push(Offer {
            escrow,
            id,
            tracking,
        });
    }
    let (first, burst) = offers.split_at(args.offers);
    let webhooks = Webhooks {
        http: http.clone(),
        url: format!("{}/webhooks/tracking", args.relayer_url),
        secret: args.secret.into_bytes(),
    };

    let floor = floor(&*chain, &buyer, &args.relayer, args.offers).await?;

    let mut one_at_a_time = Vec::with_capacity(first.len());
    for offer in first {
        let accepted = webhooks.delivered(&offer.tracking).await?;
        let done = approved(&pool, std::slice::from_ref(offer)).await?;
        one_at_a_time.push(done[&offer.id] - accepted);
    }

    let started = Instant::now();
    let mut posting = JoinSet::new();
    for offer in burst {
        let (webhooks, id, tracking) = (webhooks.clone(), offer.id.clone(), offer.tracking.clone());
        posting.spawn(async move { anyhow::Ok((id, webhooks.delivered(&tracking).await?)) });
    }
    let done = approved(&pool, burst).await?;
    let burst_seconds = started.elapsed().as_secs_f64();
    let mut under_load = Vec::with_capacity(burst.len());
    let mut last_accepted = started;
    while let Some(posted) = posting.join_next().await {
        let (id, accepted) = posted??;
        under_load.push(done[&id] - accepted);
        last_accepted = last_accepted.max(accepted);
    }
    // The figure the relayer is judged by: every approval confirmed how long after the last
    // webhook was answered.
    let last_done = done.values().max().copied().unwrap_or(last_accepted);
    let after_last_webhook_ms = last_done
        .saturating_duration_since(last_accepted)
        .as_secs_f64()
        * 1e3;

    let mut approvals_on_chain = 0;
    for offer in &offers {
        let account = chain.account(&offer.escrow).await?.context("escrow gone")?;
        let state = Escrow::try_deserialize(&mut account.data.as_slice())?;
        let index = state
            .approvers()
            .iter()
            .position(|a| *a == args.relayer)
            .context("relayer not an approver")?;
        if state.approvals(Outcome::Release) & (1 << index) != 0 {
            approvals_on_chain += 1;
        }
    }

    let figures = |mut d: Vec<Duration>| {
        d.sort();
        json!({ "p50_ms": percentile(&d, 0.50), "p99_ms": percentile(&d, 0.99),
                "max_ms": percentile(&d, 1.0) })
    };
    println!(
        "{}",
        json!({
            "offers": args.offers, "one_at_a_time": figures(one_at_a_time),
            "burst": figures(under_load), "burst_seconds": burst_seconds,
            "burst_after_last_webhook_ms": after_last_webhook_ms,
            "floor": figures(floor), "approvals_on_chain": approvals_on_chain,
            "escrows": offers.len(),
        })
    );
    Ok(())
}

/// A new mint, with `amount` of it in the buyer's wallet (the buyer is its authority).
async fn fund_buyer(chain: &dyn Chain, buyer: &Keypair, amount: u64) -> anyhow::Result<Pubkey> {
    let mint = Keypair::new();
    let (buyer_key, mint_key) = (buyer.pubkey(), mint.pubkey());
    let rent = Rent::default().minimum_balance(82);
    let ixs = client::new_mint_with_balance(
        &buyer_key, &mint_key, &buyer_key, 6, &buyer_key, amount, rent,
    )?;
    sign_send_and_confirm(chain, &ixs, &[buyer, &mint], SETUP_POLL).await?;
    Ok(mint_key)
}

fn buyer_token(buyer: &Pubkey, mint: &Pubkey) -> Pubkey {
    get_associated_token_address_with_program_id(buyer, mint, &TOKEN)
}

/// `count` funded escrows of the buyer (ids 1..=count): buyer, seller and relayer approve,
/// two of them settle; a day's dispute window, so nothing is released while this runs.
async fn open_escrows(
    chain: &Arc<RpcChain>,
    buyer: &Arc<Keypair>,
    seller: Pubkey,
    mint: Pubkey,
    relayer: Pubkey,
    count: usize,
) -> anyhow::Result<Vec<Pubkey>> {
    let refund_after = chain.unix_time().await? + 7 * 86_400;
    let mut escrows = Vec::with_capacity(count);
    // 16 in flight: the buyer's token account is written by each, so they land one after another.
    for ids in (1..=count as u64).collect::<Vec<_>>().chunks(16) {
        let mut sending = JoinSet::new();
        for &id in ids {
            let (chain, buyer) = (chain.clone(), buyer.clone());
            let args = CreateArgs {
                id,
                seller,
                amount: AMOUNT,
                deal_ref: [7; 32],
                approvers: vec![buyer.pubkey(), seller, relayer],
                threshold: 2,
                timelock_secs: 86_400,
                refund_after,
            };
            let deal = client::Deal::before_create(&buyer.pubkey(), id, &seller, &mint, &TOKEN);
            escrows.push(deal.escrow);
            sending.spawn(async move {
                let ixs = [
                    client::create(&buyer.pubkey(), &mint, &TOKEN, args),
                    deal.deposit(&buyer_token(&buyer.pubkey(), &mint)),
                ];
                sign_send_and_confirm(&*chain, &ixs, &[&buyer], SETUP_POLL).await
            });
        }
        while let Some(sent) = sending.join_next().await {
            sent??;
        }
    }
    Ok(escrows)
}

/// The node's own send-to-confirmed time: transfers of distinct amounts signed here, one at a
/// time, polled every `POLL`.
async fn floor(
    chain: &dyn Chain,
    payer: &Keypair,
    to: &Pubkey,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(count);
    for lamports in 1..=count as u64 {
        let blockhash = chain.latest_blockhash().await?;
        let tx = Transaction::new_signed_with_payer(
            &[system_instruction::transfer(&payer.pubkey(), to, lamports)],
            Some(&payer.pubkey()),
            &[payer],
            blockhash.hash,
        );
        let sent = Instant::now();
        let signature = chain.send(&tx).await?;
        loop {
            match chain.status(&signature).await? {
                TxStatus::Landed { err: None } => break,
                TxStatus::Landed { err: Some(e) } => {
                    return Err(ConfirmError::Failed(signature, e).into())
                }
                TxStatus::Unknown if sent.elapsed() > GIVE_UP => {
                    bail!("transfer {signature} not confirmed after {GIVE_UP:?}")
                }
                TxStatus::Unknown => tokio::time::sleep(POLL).await,
            }
        }
        times.push(sent.elapsed());
    }
    Ok(times)
}

#[derive(Clone)]
struct Webhooks {
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl Webhooks {
    /// Posts the carrier's "delivered" for a shipment; when the relayer answered that it
    /// accepted it and queued the approval.
    async fn delivered(&self, tracking: &str) -> anyhow::Result<Instant> {
        let body = json!({
            "event_id": format!("{tracking}-delivered"), "tracking_number": tracking,
            "carrier": "ups", "status": "delivered",
            "occurred_at": chrono::Utc::now().to_rfc3339(),
        })
        .to_string();
        let resp = self
            .http
            .post(&self.url)
            .header(
                "X-Tracking-Signature",
                tracking_signature(&self.secret, body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let accepted = Instant::now();
        let status = resp.status();
        let reply: Value = resp.json().await?;
        ensure!(
            status == 200 && reply["job_enqueued"] == true,
            "webhook for {tracking} not accepted: {status} {reply}"
        );
        Ok(accepted)
    }
}

/// Waits until every offer's approval job is done; when each was first seen done.
async fn approved(
    pool: &sqlx::PgPool,
    offers: &[Offer],
) -> anyhow::Result<HashMap<String, Instant>> {
    let ids: Vec<String> = offers.iter().map(|o| o.id.clone()).collect();
    let mut seen = HashMap::with_capacity(ids.len());
    let started = Instant::now();
    while seen.len() < ids.len() {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT offer_id::text, state, last_error FROM jobs
             WHERE action = 'approve_release' AND offer_id::text = ANY($1)
               AND state IN ('succeeded', 'dead')",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?;
        let now = Instant::now();
        for (id, state, error) in rows {
            ensure!(
                state == "succeeded",
                "the approval of offer {id} is dead: {}",
                error.unwrap_or_default()
            );
            seen.entry(id).or_insert(now);
        }
        if started.elapsed() > GIVE_UP {
            bail!(
                "{} of {} approvals not done after {GIVE_UP:?}",
                ids.len() - seen.len(),
                ids.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(seen)
}
