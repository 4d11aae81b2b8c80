//! The deal page (`/deals/{offer}`): what it shows and withholds over HTTP, and the whole story
//! in a real browser (headless Chromium driven by clients/ts/page/test/browser.mjs): the buyer
//! pays from a Wallet Standard wallet, the seller approves, the release lands, and the page's
//! timeline and in-browser audit check follow, with no console error on the way.

use std::{path::PathBuf, process::Command, sync::Arc};

use crate::market::*;
use anchor_lang::prelude::Pubkey;
use axum::{extract::State, http::StatusCode, routing::post, Json, Router};
use base64::Engine;
use escrow::{EscrowStatus, Outcome};
use escrow_tests::fixtures::{AMOUNT, BUYER_FUNDS};
use relayer::{chain::embedded::EmbeddedChain, signer::local::LocalSigner};
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use uuid::Uuid;

/// Markup, quotes, an ampersand and a non-ASCII letter, within a carrier's 32 bytes.
const HOSTILE_CARRIER: &str = "<b onclick=alert(1)>ü\"'&</b>";
const TRACKING_NUMBER: &str = "1ZSECRET0000000001";

async fn text(m: &Market, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = m.app.http.get(m.app.url(path)).send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.headers().clone(), resp.text().await.unwrap())
}

#[tokio::test]
async fn the_page_states_the_deal_escaped_under_a_strict_policy_and_hides_the_tracking_number() {
    let m = market().await;
    let (offer, _) = m.register_shipment(HOSTILE_CARRIER, TRACKING_NUMBER).await;

    let (status, headers, html) = text(&m, &format!("/deals/{offer}")).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(
        html.contains("&lt;b onclick=alert(1)&gt;ü&quot;&#39;&amp;&lt;/b&gt;"),
        "the carrier is escaped"
    );
    assert!(!html.contains("<b onclick"), "no markup from a party");
    assert!(!html.contains(TRACKING_NUMBER));
    assert!(html.contains(&m.world.seller.pubkey().to_string()));
    assert!(
        html.contains("1.000000 tokens"),
        "the amount in the mint's decimals"
    );
    assert!(html.contains("Not funded yet"));
    assert!(
        !html.contains("<script"),
        "without PAGE_SCRIPT the page carries no script tag"
    );
    let (status, _, _) = text(&m, "/deals/assets/deal.js").await;
    assert_eq!(status, 404);
    let (status, headers, css) = text(&m, "/deals/assets/deal.css").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.contains("main {"));

    let (status, _, view) = m.get(&format!("/api/deals/{offer}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        view["carrier"], HOSTILE_CARRIER,
        "JSON carries the value as it is"
    );
    assert_eq!(view["amount"], AMOUNT.to_string());
    assert_eq!(view["policy"]["threshold"], 2);
    assert_eq!(view["policy"]["approvers"][1]["role"], "seller");
    assert_eq!(view["actions"][0]["kind"], "deposit");
    assert!(view["actions"][0]["closed"].is_null(), "{view}");
    assert_eq!(
        view["actions"][1]["closed"],
        "the escrow is not funded (yet, or any more)"
    );
    assert!(!view.to_string().contains(TRACKING_NUMBER));

    // Unknown and malformed ids: a page that says so, without echoing what was typed.
    for id in [Uuid::new_v4().to_string(), "<b>nope".to_owned()] {
        let (status, headers, html) = text(&m, &format!("/deals/{id}")).await;
        assert_eq!(status, 404);
        assert!(html.contains("No such deal"));
        assert!(!html.contains("nope"), "the id is not echoed");
        assert!(headers.contains_key("content-security-policy"));
        let (status, _, _) = m.get(&format!("/api/deals/{id}")).await;
        assert_eq!(status, 404);
    }
    let (status, _, checkpoint) = m.get("/v1/audit/checkpoints/covering/1").await;
    assert_eq!(
        (status.as_u16(), checkpoint),
        (200, Value::Null),
        "none signed yet"
    );

    // An offer registered without the escrow's terms cannot be funded from the page.
    let (bare, _) = m.register_offer("ups", "1ZNOTERMS", None).await;
    let (_, _, html) = text(&m, &format!("/deals/{bare}")).await;
    assert!(
        html.contains("Not funded yet: this offer was registered without deal terms"),
        "{html}"
    );
    let (_, _, view) = m.get(&format!("/api/deals/{bare}")).await;
    assert_eq!(view["actions"][0]["closed"], relayer::blinks::NO_TERMS);
    m.app.stop().await;
}

/// What the browser test needs from scripts/test.sh: the built script, Chromium and Node.
struct Browser {
    script: PathBuf,
    chromium: String,
    driver: PathBuf,
}

fn browser() -> Browser {
    let script = std::env::var("PAGE_SCRIPT").unwrap_or_else(|_| {
        panic!("PAGE_SCRIPT is not set: run `scripts/page.sh build` and set it to the path it prints (scripts/test.sh does)")
    });
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run `scripts/page.sh browser` and set CHROMIUM"
    );
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../clients/ts/page/test/browser.mjs")
        .canonicalize()
        .expect("the browser driver");
    Browser {
        script: script.into(),
        chromium,
        driver,
    }
}

/// The test wallet's keys, held here as an extension holds them outside the page: it signs
/// what the page's wallet hands it with the named wallet's key and lands it on the chain.
#[derive(Clone)]
struct Keyring {
    chain: EmbeddedChain,
    keys: Arc<Vec<Keypair>>,
}

async fn sign_and_send(
    State(ring): State<Keyring>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let refuse = |e: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": e })));
    let wallet: Pubkey = body["wallet"].as_str().unwrap_or("").parse().unwrap();
    let Some(key) = ring.keys.iter().find(|k| k.pubkey() == wallet) else {
        return refuse("no such wallet".into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body["transaction"].as_str().unwrap_or(""))
        .unwrap();
    let mut tx: Transaction = bincode::deserialize(&bytes).unwrap();
    let blockhash = tx.message.recent_blockhash;
    if let Err(e) = tx.try_sign(&[key], blockhash) {
        return refuse(format!("cannot sign: {e}"));
    }
    match ring.chain.submit(&tx) {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({
                "signature": base64::engine::general_purpose::STANDARD.encode(tx.signatures[0].as_ref())
            })),
        ),
        Err(e) => refuse(format!("failed on-chain: {:?}", e.err)),
    }
}

async fn keyring(ring: Keyring) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/sign", post(sign_and_send))
        .with_state(ring);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/sign")
}

/// One deal's page, visited in Chromium by a party's wallet.
struct DealPage<'a> {
    browser: &'a Browser,
    market: &'a Market,
    offer: Uuid,
    sign_url: &'a str,
}

impl DealPage<'_> {
    /// Opens the page with `wallet` (its name and key) installed and runs `steps`.
    async fn visit(&self, wallet: (&str, &Keypair), steps: Value) {
        let (b, m, offer, sign_url) = (self.browser, self.market, self.offer, self.sign_url);
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deal_page");
        std::fs::create_dir_all(&out).unwrap();
        let plan = json!({
            "url": m.app.url(&format!("/deals/{offer}")),
            "chromium": b.chromium,
            "out": out,
            "wallet": { "name": wallet.0, "address": wallet.1.pubkey().to_string(),
                        "sign_url": sign_url, "chain": "solana:localnet" },
            "steps": steps,
        });
        let plan_file = out.join(format!("plan-{}.json", wallet.0.replace(' ', "-")));
        std::fs::write(&plan_file, plan.to_string()).unwrap();
        let driver = b.driver.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(driver)
                .arg(plan_file)
                .output()
                .expect("node runs (scripts/test.sh installs the page's packages)")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "the page in Chromium, as {}:\n{}{}\n(screenshots in {})",
            wallet.0,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            out.display()
        );
    }
}

#[tokio::test]
async fn a_buyer_pays_and_the_seller_approves_from_the_page_in_a_real_browser() {
    let b = browser();
    let script = b.script.clone();
    let m = market_with(|c, world| {
        c.http.page_script = Some(script);
        c.relayer_address = Some(world.relayer.pubkey());
    })
    .await;
    let ring = Keyring {
        chain: m.chain.clone(),
        keys: Arc::new(vec![
            m.world.buyer.insecure_clone(),
            m.world.seller.insecure_clone(),
        ]),
    };
    let sign_url = keyring(ring).await;
    let (offer, _) = m.register_shipment(HOSTILE_CARRIER, TRACKING_NUMBER).await;
    let shipped = json!({
        "event_id": "evt-page-1", "tracking_number": TRACKING_NUMBER, "carrier": HOSTILE_CARRIER,
        "status": "in_transit", "occurred_at": "2026-01-01T00:00:00Z",
    });
    assert_eq!(m.app.webhook(&shipped.to_string()).await.0, 200);
    let (_, _, audit) = m.get(&format!("/v1/audit/offers/{offer}")).await;
    assert!(!audit.to_string().contains(TRACKING_NUMBER), "{audit}");
    let page = DealPage {
        browser: &b,
        market: &m,
        offer,
        sign_url: &sign_url,
    };
    let buyer = ("Test Wallet (buyer)", &m.world.buyer);
    let seller = ("Test Wallet (seller)", &m.world.seller);

    // The buyer pays into the escrow from the page.
    page.visit(
        buyer,
        json!([
            { "text": "#state", "has": "Not funded yet" },
            { "text": "#audit-events", "has": format!("The carrier ({HOSTILE_CARRIER}) reported: in transit") },
            { "text": "#shipment", "has": "in transit" },
            { "absent": TRACKING_NUMBER },
            { "screenshot": "1-before-paying" },
            { "connect": true },
            { "click": "Fund escrow" },
            { "text": "#wallet-status", "has": "Fund escrow: sent" },
            { "text": "#chain-events", "has": "Funded: 1.000000 tokens locked in the vault" },
            { "text": "#state", "has": "Funded: 1.000000 tokens held in the escrow" },
            { "text": "#audit-events", "has": "The seller registered the offer" },
            { "text": "#verify", "has": "No signed checkpoint covers them yet" },
            { "screenshot": "2-funded" },
        ]),
    )
    .await;
    let escrow = m.escrow().expect("the buyer's deposit created the escrow");
    assert_eq!(escrow.status(), EscrowStatus::Funded);
    assert_eq!(escrow.received, AMOUNT);
    assert_eq!(m.balance(&m.buyer_token), BUYER_FUNDS - AMOUNT);

    // The relayer signs a checkpoint of its log; the page checks it against the escrow's
    // approvers (the relayer's key is one of them).
    let signer = LocalSigner::from_keypair_bytes(&m.world.relayer.to_bytes()).unwrap();
    relayer::audit::checkpoint(&m.app.pool, &signer)
        .await
        .unwrap()
        .expect("a checkpoint");

    // The seller approves; the action they cannot take shows the relayer's refusal.
    page.visit(seller, json!([
        { "text": "#verify", "has": "the key this escrow lists as its relayer" },
        { "connect": true },
        { "click": "Approve release" },
        { "text": "#chain-events", "has": "The seller approved the release (1 of 2)" },
        { "allow_console": "the server responded with a status of 400" },
        { "click": "Approve release" },
        { "text": "#wallet-status", "has": "Approve release refused: this transaction would fail" },
        { "screenshot": "3-seller-approved" },
    ])).await;
    assert_eq!(m.escrow().unwrap().approvals(Outcome::Release), 0b10);

    // The buyer confirms receipt: the release is scheduled and its dispute window counts down.
    page.visit(
        buyer,
        json!([
            { "connect": true },
            { "click": "Approve release" },
            { "text": "#chain-events", "has": "The buyer approved the release (2 of 2)" },
            { "text": "#chain-events", "has": "The release is scheduled" },
            { "text": "#countdown", "has": "Dispute window:" },
            { "screenshot": "4-release-scheduled" },
        ]),
    )
    .await;
    let escrow = m.escrow().unwrap();
    assert_eq!(escrow.scheduled(), Some(Outcome::Release));

    // The window passes and the release is cranked, as the relayer's watchtower would.
    m.set_chain_time(escrow.eta + 1);
    let payer = Keypair::new();
    m.chain
        .svm()
        .airdrop(&payer.pubkey(), 1_000_000_000)
        .unwrap();
    let release =
        escrow::client::Deal::from_state(m.world.deal.escrow, &escrow).release(&m.seller_token);
    let blockhash = m.chain.svm().latest_blockhash();
    let tx =
        Transaction::new_signed_with_payer(&[release], Some(&payer.pubkey()), &[&payer], blockhash);
    m.chain.submit(&tx).expect("the release lands");
    assert_eq!(m.balance(&m.seller_token), AMOUNT);

    page.visit(
        seller,
        json!([
            { "text": "#state", "has": "Released: the seller has been paid" },
            { "text": "#chain-events", "has": "Released: 1.000000 tokens paid to the seller" },
            { "text": "#verify", "has": "match their hashes" },
            { "screenshot": "5-released" },
        ]),
    )
    .await;

    // Someone edits the offer's first entry behind the append-only trigger: the page says so.
    for statement in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "UPDATE audit_log SET payload = replace(payload, '\"amount\":1000000', '\"amount\":1') \
         WHERE seq = (SELECT min(seq) FROM audit_log WHERE kind = 'offer_registered')",
    ] {
        sqlx::query(statement).execute(&m.app.pool).await.unwrap();
    }
    page.visit(
        seller,
        json!([
            { "text": "#verify", "has": "does not match its hash: it was changed" },
            { "screenshot": "6-record-tampered" },
        ]),
    )
    .await;
    m.app.stop().await;
}
