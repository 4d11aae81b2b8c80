//! Starts the real relayer on a random port against a fresh Postgres database.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod doubles;
pub mod gcp_kms;
pub mod ledger;
pub mod ministack;
pub mod node;
pub mod openbao;
pub mod postgres;
pub mod providers;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use relayer::{
    config::{Config, DatabaseConfig, HttpConfig, QueueConfig, Secret, Secrets, TokenConfig},
    domain::{offer::JobAction, signature},
    queue,
    startup::{Application, Role},
    worker::{JobHandler, Simulate},
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const HMAC_SECRET: &[u8] = b"tracking-secret-for-tests-0001";
pub const OLD_HMAC_SECRET: &[u8] = b"tracking-secret-being-rotated-out";
pub const JWT_SECRET: &[u8] = b"jwt-secret-for-tests-0123456789abcdef";
pub const OLD_JWT_SECRET: &[u8] = b"jwt-secret-previous-0123456789abcdef";

/// Where tests create their databases: `TEST_DATABASE_URL`, or the local trust-auth server.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The role tests run the relayer as: what `relayer migrate --app-role` grants, nothing more.
pub const APP_ROLE: &str = "relayer_app_test";

/// A new database, migrated by its owner (the admin user) with [`APP_ROLE`] granted what serve
/// needs; returns the URL that connects as that role, as a deployment's `DATABASE_URL` would.
pub async fn fresh_database() -> String {
    let admin = PgPool::connect(&admin_url())
        .await
        .expect("connect to Postgres (is it running?)");
    let name = format!("relayer_test_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    let base = admin_url();
    let url = format!(
        "{}/{name}",
        &base[..base.rfind('/').expect("database URL has a path")]
    );
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to the test database");
    relayer::db::MIGRATOR.run(&pool).await.expect("migrate");
    // The role is the cluster's, shared by concurrent tests: whoever comes second finds it.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )))
    .execute(&pool)
    .await
    .expect("create the app role");
    relayer::db::grant_app_role(&pool, APP_ROLE, None)
        .await
        .expect("grant the app role");
    pool.close().await;
    with_user(&url, APP_ROLE)
}

/// `url` connecting as `user` instead (no password: the test server trusts local connections).
pub fn with_user(url: &str, user: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("a database URL");
    url.set_username(user).expect("a URL with a host");
    url.set_password(None).expect("a URL with a host");
    url.to_string()
}

/// The database of `url` as its owner, for what tests do behind the relayer's back (altering
/// tables, editing the audit log) that the relayer's own role may not.
pub fn owner_url(url: &str) -> String {
    let admin = reqwest::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    let mut url = reqwest::Url::parse(url).expect("a database URL");
    url.set_username(admin.username())
        .expect("a URL with a host");
    url.set_password(admin.password())
        .expect("a URL with a host");
    url.to_string()
}

pub fn config(database_url: &str) -> Config {
    Config {
        database: DatabaseConfig {
            url: database_url.into(),
            allow_privileged: false,
        },
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            trusted_proxies: Vec::new(),
            webhook_rate_per_minute: 10_000,
            webhook_max_body: 64 * 1024,
            shipengine_jwks_url: None,
            actions_rate_per_minute: 10_000,
            operator_rate_per_minute: 10_000,
            auth_failures_per_minute: 10_000,
            audit_rate_per_minute: 10_000,
            limits: relayer::server::Limits {
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                max_connections: 512,
            },
            metrics_bind: None,
            public_url: None,
            tls: None,
            page_script: None,
            explorer_tx_url: None,
        },
        secrets: Secrets {
            tracking: vec![
                Secret::new(OLD_HMAC_SECRET.to_vec()),
                Secret::new(HMAC_SECRET.to_vec()),
            ],
            jwt: Secret::new(JWT_SECRET.to_vec()),
            jwt_previous: Some(Secret::new(OLD_JWT_SECRET.to_vec())),
            // Off unless a test turns a provider on (`providers.rs`).
            providers: Default::default(),
        },
        secrets_kv: None,
        tokens: tokens(),
        queue: QueueConfig {
            workers: 2,
            claim_batch: 8,
            max_attempts: 5,
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
        },
        execute: false,
        stuck: relayer::config::StuckConfig {
            settle_after: Duration::from_secs(86_400),
            silent_after: Duration::from_secs(14 * 86_400),
        },
        chain: None,
        signer: None,
        relayer_address: None,
        audit_checkpoint_every: Duration::from_secs(300),
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener, with `METRICS_BIND_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    pub pool: PgPool,
    pub database_url: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// An app serving HTTP only (jobs stay where the request left them).
pub async fn spawn_http() -> TestApp {
    let url = fresh_database().await;
    spawn(config(&url), Role::Http, Arc::new(Simulate)).await
}

pub async fn spawn(config: Config, role: Role, handler: Arc<dyn JobHandler>) -> TestApp {
    let database_url = config.database.url.clone();
    let app = Application::build(config, role, handler)
        .await
        .expect("build app");
    start(app, database_url)
}

/// An app serving HTTP whose Solana Actions build transactions for `chain`.
pub async fn spawn_with_chain(config: Config, chain: Arc<dyn relayer::chain::Chain>) -> TestApp {
    let database_url = config.database.url.clone();
    let app = Application::build(config, Role::Http, Arc::new(Simulate))
        .await
        .expect("build app")
        .with_chain(chain);
    start(app, database_url)
}

pub fn start(app: Application, database_url: String) -> TestApp {
    let addr = app
        .local_addr()
        .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap());
    // Tests reach behind the relayer as the owner; the relayer itself runs as its own role.
    let pool = PgPool::connect_lazy(&owner_url(&database_url)).expect("a database URL");
    let metrics_addr = app.metrics_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        addr,
        metrics_addr,
        pool,
        database_url,
        http: reqwest::Client::new(),
        shutdown,
        task,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("app task").expect("app ran cleanly");
    }

    /// Posts a webhook body signed with `X-Tracking-Signature`.
    pub async fn webhook(&self, body: &str) -> (u16, Value) {
        let sig = signature::tracking_signature(HMAC_SECRET, body.as_bytes());
        self.webhook_with(body, &[("X-Tracking-Signature", sig)])
            .await
    }

    pub async fn webhook_with(&self, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        self.post_webhook("/webhooks/tracking", body, headers).await
    }

    /// A provider's webhook, `POST /webhooks/{provider}`.
    pub async fn provider_webhook(
        &self,
        provider: relayer::providers::Provider,
        body: &str,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let path = format!("/webhooks/{}", provider.name());
        self.post_webhook(&path, body, headers).await
    }

    pub async fn post_webhook(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub fn token(&self) -> String {
        token(JWT_SECRET, 3600)
    }

    /// GET with a valid operator token.
    pub async fn get_as_operator(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(self.token())
            .send()
            .await
            .expect("request")
    }

    /// POST (no body) with a valid operator token.
    pub async fn post_as_operator(&self, path: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(self.token())
            .send()
            .await
            .expect("request")
    }

    pub async fn register_offer(&self, tracking_number: &str) -> Uuid {
        self.create_offer(&offer_body(tracking_number)).await
    }

    /// `POST /v1/offers` as an operator, which must answer 201; the new offer's id.
    pub async fn create_offer(&self, body: &Value) -> Uuid {
        let resp = self
            .http
            .post(self.url("/v1/offers"))
            .bearer_auth(self.token())
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "register offer");
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn offer_status(&self, id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM offers WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A metric's value, from the metrics listener when there is one, else with a token.
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let resp = match self.metrics_addr {
            Some(addr) => self
                .http
                .get(format!("http://{addr}/metrics"))
                .send()
                .await
                .unwrap(),
            None => self.get_as_operator("/metrics").await,
        };
        assert_eq!(resp.status(), 200, "/metrics");
        let text = resp.text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

/// The token rules of [`config`]: the defaults.
pub fn tokens() -> TokenConfig {
    TokenConfig {
        issuer: "openclaw-relayer".into(),
        audience: "openclaw-relayer-operator-api".into(),
        max_ttl: Duration::from_secs(7 * 86_400),
    }
}

/// A JWT signed with `secret`, issued a minute ago and expiring `ttl_secs` from now (negative:
/// already expired).
pub fn token(secret: &[u8], ttl_secs: i64) -> String {
    token_with(secret, |claims| {
        claims.exp = (claims.iat as i64 + 60 + ttl_secs) as u64;
    })
}

/// A JWT signed with `secret` after `edit` changed what [`token`] would claim.
pub fn token_with(secret: &[u8], edit: impl FnOnce(&mut relayer::auth::Claims)) -> String {
    let (_, mut claims) = relayer::auth::issue(secret, &tokens(), "ops@test", 3600);
    claims.iat -= 60;
    edit(&mut claims);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

pub fn offer_body(tracking_number: &str) -> Value {
    let key = || anchor_lang::prelude::Pubkey::new_unique().to_string();
    json!({
        "escrow": key(), "buyer": key(), "seller": key(), "mint": key(),
        "tracking_number": tracking_number, "carrier": "ups", "amount": 1_000_000u64,
    })
}

pub fn event(event_id: &str, tracking_number: &str, status: &str) -> String {
    event_at(event_id, tracking_number, status, "2026-11-26T10:00:00Z")
}

pub fn event_at(event_id: &str, tracking_number: &str, status: &str, occurred_at: &str) -> String {
    json!({ "event_id": event_id, "tracking_number": tracking_number, "carrier": "ups",
            "status": status, "occurred_at": occurred_at })
    .to_string()
}

/// An offer and a pending job straight in the database, for queue tests.
pub async fn insert_job(pool: &PgPool, max_attempts: i32) -> i64 {
    let offer = Uuid::new_v4();
    let key = || anchor_lang::prelude::Pubkey::new_unique().to_string();
    sqlx::query(
        "INSERT INTO offers (id, escrow, tracking_number, carrier, buyer, seller, mint, amount)
         VALUES ($1, $2, $3, 'ups', $4, $5, $6, 1)",
    )
    .bind(offer)
    .bind(key())
    .bind(offer.to_string())
    .bind(key())
    .bind(key())
    .bind(key())
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        queue::enqueue(&mut conn, offer, JobAction::ApproveRelease, max_attempts)
            .await
            .unwrap()
    );
    sqlx::query_scalar("SELECT id FROM jobs WHERE offer_id = $1")
        .bind(offer)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Polls `check` until it holds; panics with `what` after 30 s (a hang guard, not a timing
/// assertion: the checks normally pass within milliseconds).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(30), check).await
}

/// `eventually` with another hang guard, for waits that are slow by nature (a validator
/// expiring a blockhash takes ~150 slots, about a minute).
pub async fn eventually_within<F, Fut>(what: &str, guard: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + guard;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the `relayer` binary; returns (success, stdout + stderr). Async: the binary may call
/// back into the app this test's runtime serves.
pub async fn relayer_bin(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `relayer serve` with nothing in its environment but `database_url`, the test secrets and a
/// listener on 127.0.0.1:`port`; the caller adds the rest.
pub fn serve_command(database_url: &str, port: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_relayer"));
    cmd.arg("serve")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env(
            "TRACKING_HMAC_SECRET",
            std::str::from_utf8(HMAC_SECRET).unwrap(),
        )
        .env(
            "ACCESS_JWT_SECRET",
            std::str::from_utf8(JWT_SECRET).unwrap(),
        )
        .env("BIND_ADDR", format!("127.0.0.1:{port}"));
    cmd
}

/// A new empty directory under the system temp dir.
pub fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("relayer-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `openssl` with `input` on its stdin; what it prints. Test keys are made fresh by each test,
/// never committed.
pub fn openssl(args: &[&str], input: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh 2048-bit RSA key: its PEM, and its modulus in base64url as a JWK writes `n` (the
/// exponent is openssl's default, 65537: `AQAB`).
pub fn rsa_key() -> (String, String) {
    use base64::Engine;
    let private = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        None,
    );
    let modulus = openssl(&["rsa", "-modulus", "-noout"], Some(&private));
    let modulus = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(modulus);
    (private, n)
}

/// `relayer signer check` with only `vars` (and `RELAYER_ADDRESS` when given) in its environment.
pub fn signer_check(
    vars: &[(&str, String)],
    relayer_address: Option<String>,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_relayer"));
    cmd.args(["signer", "check"])
        .env_clear()
        .env("RUST_LOG", "off")
        .envs(vars.iter().map(|(k, v)| (*k, v)));
    if let Some(a) = relayer_address {
        cmd.env("RELAYER_ADDRESS", a);
    }
    cmd.output().unwrap()
}
