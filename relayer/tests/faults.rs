//! Fault injection. Each fault must end with every offer in its final state, nothing accepted
//! lost, and no transaction sent twice:
//! - the `relayer` binary killed (abort, as kill -9) at each step of the release pipeline on a
//!   real `solana-test-validator`, then restarted on the same database;
//! - Postgres stopped and started again under a stream of webhooks;
//! - the RPC node down, then back.
//!
//! OpenBao down is the story `openbao_down_means_retries_then_success` in `chain/stories.rs`, on
//! both backends: retries, `relayer_signer_errors_total{kind="unavailable"}` moving, then success.
mod support;

use std::{
    fs::File,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Stdio},
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anchor_lang::{prelude::Pubkey, AnchorDeserialize, Discriminator};
use escrow::{
    events::{Approved, Released},
    Outcome,
};
use relayer::{chain::Chain, domain::signature, startup::Role, worker::Simulate};
use serde_json::Value;
use solana_commitment_config::CommitmentConfig;
use solana_signer::Signer;
use sqlx::PgPool;
use support::{
    doubles::Network,
    ledger::Ledger,
    node::{ata, free_port, Node, NodeDeal, AMOUNT},
    postgres::PrivatePostgres,
    *,
};
use tokio_util::sync::CancellationToken;

/// The release pipeline's crash points, in order (`relayer/src/failpoint.rs`).
const STEPS: [&str; 5] = [
    "after_event_commit",
    "after_claim",
    "after_sign",
    "after_send",
    "before_confirm",
];

/// One validator for every step (it costs ~1 core while running): the steps run in sequence,
/// each with its own escrow, offer, database and relayer processes.
#[tokio::test]
async fn a_relayer_killed_at_any_step_of_the_release_pipeline_settles_once_after_restart() {
    let node = Node::start().await;
    for (i, step) in STEPS.into_iter().enumerate() {
        killed_at(&node, step, &format!("1ZKILL{i}")).await;
    }
}

async fn killed_at(node: &Node, step: &'static str, tracking: &str) {
    // Buyer, seller and relayer approve; two of them release. The seller has approved already,
    // so the relayer's approval schedules the release, 3 s later.
    let d = node.open_escrow(tracking, 3, &[]).await;
    node.send(
        &[d.deal.approve(&d.seller.pubkey(), Outcome::Release)],
        &[&d.seller],
    )
    .await;
    let database_url = fresh_database().await;
    let mut first = Serve::start(node, &database_url, Some(step)).await;
    first.register(&d).await;
    let delivered = event(&format!("{tracking}-1"), &d.tracking, "delivered");
    let answer = first.webhook(&delivered).await;
    if step == "after_event_commit" {
        assert!(
            answer.is_err(),
            "{step}: the process died before answering, yet: {answer:?}"
        );
    }
    // Later steps may die before or after the answer is written: either is a crash.
    first.aborted_at(step).await;

    // A supervisor restarts it: same database, no failpoint.
    let second = Serve::start(node, &database_url, None).await;
    // The provider retries a delivery whose answer it may not have seen: stored once already.
    let (status, reply) = second.webhook(&delivered).await.expect("answered");
    assert_eq!(
        (status, reply["result"].as_str()),
        (200, Some("duplicate")),
        "{step}"
    );
    let pool = PgPool::connect(&database_url).await.unwrap();
    // A crash after signing leaves a signature that never left: the restarted relayer signs
    // again only once its blockhash has expired, ~150 slots later.
    eventually_within(
        &format!("{step}: released after the restart, every job finished"),
        Duration::from_secs(240),
        || async { settlement(&pool).await.as_deref() == Some("released") && idle(&pool).await },
    )
    .await;

    // On-chain: paid once, closed, one approval by the relayer, one release, nothing failed.
    assert_eq!(
        node.token_balance(&ata(&d.seller.pubkey(), &d.deal.mint))
            .await,
        AMOUNT,
        "{step}: the seller got the amount once"
    );
    assert_eq!(
        node.token_balance(&ata(&d.buyer.pubkey(), &d.deal.mint))
            .await,
        4 * AMOUNT,
        "{step}: the buyer paid once"
    );
    let closed = node
        .rpc
        .get_account_with_commitment(&d.deal.escrow, CommitmentConfig::confirmed())
        .await
        .unwrap()
        .value
        .is_none();
    assert!(closed, "{step}: the escrow account is closed");
    let history = History::of(node, &d).await;
    assert_eq!(
        history,
        History {
            relayer_approvals: 1,
            seller_approvals: 1,
            releases: 1,
            failed: 0
        },
        "{step}: the escrow's transactions on-chain"
    );

    // In the database: both jobs done, and every KMS-signed transaction accounted for.
    let jobs: Vec<(String, String)> =
        sqlx::query_as("SELECT action, state FROM jobs ORDER BY action")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![
            ("approve_release".to_owned(), "succeeded".to_owned()),
            ("crank_release".into(), "succeeded".into())
        ],
        "{step}"
    );
    let mut expected = vec![
        ("approve_release".to_owned(), "confirmed".to_owned(), 1),
        ("crank_release".into(), "confirmed".into(), 1),
    ];
    if step == "after_sign" {
        // The one extra signature: recorded, never sent, expired, then replaced.
        expected.insert(1, ("approve_release".into(), "expired".into(), 1));
    }
    assert_eq!(signed_transactions(&pool).await, expected, "{step}");
    if matches!(step, "after_send" | "before_confirm") {
        let result: String =
            sqlx::query_scalar("SELECT result FROM jobs WHERE action = 'approve_release'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            result.contains("(sent by an earlier attempt) landed"),
            "{step}: the restarted relayer confirmed the first transaction: {result}"
        );
    }
    pool.close().await;
}

/// `relayer serve` as its own process, executing on the node and signing with OpenBao; killed
/// on drop (its log is printed when the test failed).
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Serve {
    /// Starts it and waits until it is ready. A port taken by another process between choosing
    /// and binding it makes the relayer exit; the next try takes another.
    async fn start(node: &Node, database_url: &str, failpoint: Option<&str>) -> Self {
        for _ in 0..5 {
            if let Some(serve) = Self::try_start(node, database_url, failpoint).await {
                return serve;
            }
        }
        panic!("relayer serve could not bind a port after 5 tries");
    }

    async fn try_start(node: &Node, database_url: &str, failpoint: Option<&str>) -> Option<Self> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("relayer-{}.log", uuid::Uuid::new_v4()));
        let mut cmd = support::serve_command(database_url, port);
        cmd.env("CLUSTER", &node.validator.url)
            .env("OPENCLAW_EXECUTE", "true")
            .env("SIGNER_MODE", "vault")
            .env("VAULT_URL", &node.bao.url)
            .env("VAULT_TOKEN", support::openbao::TOKEN)
            .env("VAULT_KEY_ID", "relayer")
            .env("RELAYER_ADDRESS", node.kms.pubkey().to_string())
            // The watchtower notices the crank's eta quickly.
            .env("RECONCILE_INTERVAL_SECS", "1")
            // A dead worker's job is claimable again 5 s later (the shortest lease allowed).
            .env("JOB_LEASE_SECS", "5")
            .env("JOB_BACKOFF_BASE_MS", "200")
            .env("JOB_BACKOFF_MAX_SECS", "2")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        if let Some(step) = failpoint {
            cmd.env("RELAYER_FAILPOINT", step);
        }
        let mut serve = Self {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::new(),
        };
        let mut exited = None;
        eventually("relayer serve is ready (or exited)", || {
            exited = exited.or_else(|| serve.child.try_wait().unwrap());
            let gone = exited.is_some();
            let ready = serve.http.get(format!("{}/readyz", serve.base)).send();
            async move { gone || ready.await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        let Some(status) = exited else {
            return Some(serve);
        };
        let log = std::fs::read_to_string(&serve.log).unwrap();
        assert!(
            log.contains("cannot listen on BIND_ADDR"),
            "relayer serve exited ({status}): {log}"
        );
        None
    }

    /// Waits for the process to die at `step`: aborted (SIGABRT), having said where.
    async fn aborted_at(&mut self, step: &str) {
        let mut exited = None;
        eventually(&format!("the relayer aborted at {step}"), || {
            exited = exited.or_else(|| self.child.try_wait().unwrap());
            let done = exited.is_some();
            async move { done }
        })
        .await;
        assert_eq!(exited.unwrap().signal(), Some(6), "SIGABRT");
        let log = std::fs::read_to_string(&self.log).unwrap();
        assert!(log.contains(&format!("failpoint {step} reached")), "{log}");
    }

    async fn register(&self, d: &NodeDeal) {
        let resp = self
            .http
            .post(format!("{}/v1/offers", self.base))
            .bearer_auth(token(JWT_SECRET, 3600))
            .json(&d.offer_body())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }

    /// Posts a signed webhook; `Err` when the connection closed without an answer.
    async fn webhook(&self, body: &str) -> reqwest::Result<(u16, Value)> {
        post_webhook(
            &self.http,
            &format!("{}/webhooks/tracking", self.base),
            body,
        )
        .await
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- relayer log (last lines) ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn post_webhook(
    http: &reqwest::Client,
    url: &str,
    body: &str,
) -> reqwest::Result<(u16, Value)> {
    let sig = signature::tracking_signature(HMAC_SECRET, body.as_bytes());
    let resp = http
        .post(url)
        .header("X-Tracking-Signature", sig)
        .body(body.to_owned())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn settlement(pool: &PgPool) -> Option<String> {
    sqlx::query_scalar("SELECT settlement FROM offers")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// No job waiting, running or confirming. (The watchtower may record the settlement it reads
/// on-chain before the crank's own job has seen its transaction confirmed.)
async fn idle(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running', 'confirming')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
        == 0
}

/// (action, state, count) of the transactions the relayer signed: each was recorded before
/// it could leave, so this is every transaction signature the KMS produced.
async fn signed_transactions(pool: &PgPool) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT j.action, c.state, count(*) FROM chain_txs c JOIN jobs j ON j.id = c.job_id
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What the escrow's transactions did, read back from the node: the program's events in the
/// successful ones, and how many failed (a second approval or release would fail on-chain).
#[derive(Debug, PartialEq, Eq)]
struct History {
    relayer_approvals: usize,
    seller_approvals: usize,
    releases: usize,
    failed: usize,
}

impl History {
    async fn of(node: &Node, d: &NodeDeal) -> Self {
        let escrow = d.deal.escrow;
        let failed = node
            .rpc
            .get_signatures_for_address(&escrow)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.err.is_some())
            .count();
        let mut history = Self {
            relayer_approvals: 0,
            seller_approvals: 0,
            releases: 0,
            failed,
        };
        let txs = node.chain.transactions(&escrow, 50).await.unwrap();
        let relayer = node.kms.pubkey();
        for bytes in txs
            .iter()
            .filter(|tx| tx.succeeded())
            .flat_map(|tx| escrow::event_log::emitted_by_program(&tx.logs))
        {
            let (discriminator, mut body) = bytes.split_at(8);
            if discriminator == Approved::DISCRIMINATOR {
                let e = Approved::deserialize(&mut body).unwrap();
                assert_eq!((e.escrow, e.outcome), (escrow, Outcome::Release));
                let who: Pubkey = e.approver;
                if who == relayer {
                    history.relayer_approvals += 1;
                } else if who == d.seller.pubkey() {
                    history.seller_approvals += 1;
                }
            } else if discriminator == Released::DISCRIMINATOR {
                let e = Released::deserialize(&mut body).unwrap();
                assert_eq!(e.escrow, escrow);
                history.releases += 1;
            }
        }
        history
    }
}

#[tokio::test]
async fn postgres_restarted_under_load_loses_nothing_accepted() {
    let pg = PrivatePostgres::start().await;
    let pool = PgPool::connect(&pg.url()).await.unwrap();
    relayer::db::MIGRATOR.run(&pool).await.unwrap();
    pool.close().await;
    // Workers too: they must find their way back without a restart as well.
    let app = spawn(config(&pg.url()), Role::All, Arc::new(Simulate)).await;
    app.register_offer("1ZLOAD").await;
    let load = Load::start(&app, 4);

    load.until("accepted before the outage", |s| {
        s.iter().filter(|r| r.answer == Ok(200)).count() >= 20
    })
    .await;
    // Stopped with requests in flight.
    pg.stop().await;
    load.phase.store(DOWN, Ordering::SeqCst);
    load.until("refused during the outage", |s| {
        s.iter()
            .filter(|r| r.phase == DOWN && r.answer == Ok(503))
            .count()
            >= 5
    })
    .await;
    pg.start_again().await;
    load.phase.store(BACK, Ordering::SeqCst);
    load.until("accepted after the restart", |s| {
        s.iter().filter(|r| r.phase == BACK).count() >= 20
    })
    .await;
    let sent = load.stop().await;

    let unexpected: Vec<&Sent> = sent
        .iter()
        .filter(|r| !matches!(r.answer, Ok(200 | 202 | 503)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 200/202 or 503 (retry later), but: {unexpected:#?}"
    );
    let back: Vec<&Sent> = sent.iter().filter(|r| r.phase == BACK).collect();
    assert!(
        back.iter().all(|r| r.answer == Ok(200)),
        "the relayer reconnected by itself once Postgres was back: {back:#?}"
    );
    // Nothing accepted is lost.
    let accepted: Vec<String> = sent
        .iter()
        .filter(|r| matches!(r.answer, Ok(200 | 202)))
        .map(|r| r.event_id.clone())
        .collect();
    assert_eq!(stored(&app.pool, &accepted).await, accepted.len());
    let refused: Vec<&Sent> = sent.iter().filter(|r| r.answer == Ok(503)).collect();
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"unavailable\"}")
            .await,
        refused.len() as f64
    );
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"error\"}")
            .await,
        0.0
    );
    // The provider retries what was refused: everything it sent is stored, once.
    for r in &refused {
        let (status, _) = app.webhook(&r.body).await;
        assert_eq!(status, 200, "{}", r.event_id);
    }
    let all: Vec<String> = sent.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(stored(&app.pool, &all).await, all.len());
    // The workers are back too: a delivery's job runs.
    assert_eq!(
        app.webhook(&event("load-delivered", "1ZLOAD", "delivered"))
            .await
            .0,
        200
    );
    eventually("the delivery's job ran", || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM jobs")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .as_deref()
            == Some("succeeded")
    })
    .await;
    assert_eq!(app.metric("relayer_database_up ").await, 1.0);
    app.stop().await;
}

/// When a request was sent: before the outage, while Postgres was stopped, or after it was back.
const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;

#[derive(Debug)]
struct Sent {
    event_id: String,
    /// The phase when the request was sent (it may be answered in the next one).
    phase: u8,
    answer: Result<u16, String>,
    body: String,
}

/// Webhooks from `senders` concurrent providers, each event new.
struct Load {
    phase: Arc<AtomicU8>,
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(app: &TestApp, senders: usize) -> Self {
        let phase = Arc::new(AtomicU8::new(UP));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..senders {
            let (phase, sent, stop, next) =
                (phase.clone(), sent.clone(), stop.clone(), next.clone());
            let (http, url) = (app.http.clone(), app.url("/webhooks/tracking"));
            tasks.spawn(async move {
                while !stop.is_cancelled() {
                    let event_id = format!("load-{}", next.fetch_add(1, Ordering::SeqCst));
                    let body = event(&event_id, "1ZLOAD", "in_transit");
                    let phase = phase.load(Ordering::SeqCst);
                    let answer = post_webhook(&http, &url, &body)
                        .await
                        .map(|(status, _)| status)
                        .map_err(|e| e.to_string());
                    sent.lock().unwrap().push(Sent {
                        event_id,
                        phase,
                        answer,
                        body,
                    });
                }
            });
        }
        Self {
            phase,
            sent,
            stop,
            tasks,
        }
    }

    async fn until(&self, what: &str, check: impl Fn(&[Sent]) -> bool) {
        eventually(what, || {
            let done = check(&self.sent.lock().unwrap());
            async move { done }
        })
        .await;
    }

    /// Stops sending; every request sent, answered.
    async fn stop(mut self) -> Vec<Sent> {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        std::mem::take(&mut self.sent.lock().unwrap())
    }
}

/// How many of `event_ids` are stored.
async fn stored(pool: &PgPool, event_ids: &[String]) -> usize {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tracking_events WHERE event_id = ANY($1)")
            .bind(event_ids)
            .fetch_one(pool)
            .await
            .unwrap();
    n as usize
}

#[tokio::test]
async fn an_rpc_node_down_means_retries_then_the_approval_lands() {
    let ledger = Ledger::embedded().await;
    let p = ledger.parties().await;
    let deal = ledger
        .open(
            &p,
            p.args(ledger.kms.pubkey(), ledger.now().await, 3_600, 3_600),
        )
        .await;
    let node = Arc::new(Network::new(ledger.chain.clone()));
    node.down.store(true, Ordering::SeqCst);
    // Enough attempts that the outage ends before the attempt budget does.
    let r = ledger.relayer(node.clone()).await;
    let app = &r.app;
    r.register(&p, &deal, "1ZRPC").await;
    assert_eq!(
        app.webhook(&event("rpc-1", "1ZRPC", "delivered")).await.0,
        200
    );
    eventually("the approval failed and was retried", || async {
        let (attempts, error): (i32, Option<String>) = sqlx::query_as(
            "SELECT attempts, last_error FROM jobs WHERE action = 'approve_release'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        attempts >= 3 && error.is_some_and(|e| e.contains("chain unavailable"))
    })
    .await;
    // The alert's metrics (ReleaseJobsFailing) move.
    assert!(
        app.metric("relayer_job_runs_total{outcome=\"failed\"}")
            .await
            >= 2.0
    );
    assert!(app.metric("relayer_job_retries_total").await >= 2.0);
    assert_eq!(app.metric("relayer_jobs_dead_total").await, 0.0);
    assert_eq!(
        r.signer.signed.load(Ordering::SeqCst),
        0,
        "nothing signed while the node is down"
    );
    assert_eq!(app.count("chain_txs").await, 0);
    assert!(node.calls_while_down.load(Ordering::SeqCst) >= 3);

    node.down.store(false, Ordering::SeqCst);
    eventually("approve_release succeeded", || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM jobs WHERE action = 'approve_release'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == "succeeded"
    })
    .await;
    assert_eq!(
        ledger.escrow(&deal.escrow).await.unwrap().release_approvals,
        1 << 3,
        "the relayer's approval landed"
    );
    assert_eq!(r.signer.signed.load(Ordering::SeqCst), 1, "signed once");
    let confirmed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_txs WHERE state = 'confirmed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((app.count("chain_txs").await, confirmed), (1, 1));
    r.app.stop().await;
}
