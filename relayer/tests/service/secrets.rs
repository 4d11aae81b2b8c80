//! Secrets from OpenBao KV: read at start, rotated in KV, in force without a restart; a bad
//! value in KV is refused and the secrets in force stay.

use std::sync::Arc;

use crate::support::{openbao::OpenBao, *};
use relayer::{
    config::Env,
    domain::signature::tracking_signature,
    secrets::{self, REFRESHES},
    startup::{Application, Role},
    worker::Simulate,
};
use serde_json::{json, Value};

const A: &str = "tracking-secret-a-0123456789abcdef";
const B: &str = "tracking-secret-b-0123456789abcdef";
const J1: &str = "jwt-secret-one-0123456789abcdef0123456789";
const J2: &str = "jwt-secret-two-0123456789abcdef0123456789";

async fn put(bao: &OpenBao, data: Value) {
    bao.api(
        "POST",
        "secret/data/openclaw/relayer",
        json!({ "data": data }),
    )
    .await;
}

/// Posts a webhook signed with `secret`; returns the status.
async fn webhook(app: &TestApp, secret: &str, id: &str) -> u16 {
    let body = event(id, "1ZKV", "in_transit");
    let sig = tracking_signature(secret.as_bytes(), body.as_bytes());
    app.webhook_with(&body, &[("X-Tracking-Signature", sig)])
        .await
        .0
}

async fn operator(app: &TestApp, jwt_secret: &str) -> u16 {
    app.http
        .get(app.url("/v1/jobs"))
        .bearer_auth(token(jwt_secret.as_bytes(), 600))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A relayer whose secrets are in `bao`'s KV, re-read every second: what `relayer serve` does
/// (`Config::load`), the KV values standing in for the environment's.
async fn serve_reading_kv(bao: &OpenBao) -> TestApp {
    let url = bao.url.clone();
    let env = Env(move |name: &str| match name {
        "SECRETS_VAULT_KV" => Some("secret/openclaw/relayer".to_owned()),
        "VAULT_URL" => Some(url.clone()),
        "VAULT_TOKEN" => Some(crate::support::openbao::TOKEN.to_owned()),
        "SECRETS_REFRESH_SECS" => Some("1".to_owned()),
        _ => None,
    });
    let kv = env.kv().unwrap().expect("configured");
    let mut cfg = config(&fresh_database().await);
    cfg.secrets = secrets::read(&kv).await.unwrap();
    let database_url = cfg.database.url.clone();
    let app = Application::build(cfg, Role::Http, Arc::new(Simulate))
        .await
        .unwrap()
        .with_secret_refresh(Some(kv));
    start(app, database_url)
}

#[tokio::test]
async fn secrets_rotate_from_kv_without_a_restart() {
    let bao = OpenBao::start().await;
    put(
        &bao,
        json!({ "TRACKING_HMAC_SECRET": A, "ACCESS_JWT_SECRET": J1 }),
    )
    .await;
    let app = serve_reading_kv(&bao).await;

    assert_eq!(webhook(&app, A, "kv-1").await, 202);
    assert_eq!(webhook(&app, B, "kv-2").await, 401);
    assert_eq!(operator(&app, J1).await, 200);

    // Rotation, step 1: both webhook secrets, the new JWT secret with the old as previous.
    put(
        &bao,
        json!({ "TRACKING_HMAC_SECRET": format!("{B},{A}"),
                      "ACCESS_JWT_SECRET": J2, "ACCESS_JWT_SECRET_PREVIOUS": J1 }),
    )
    .await;
    eventually("the new webhook secret is in force", || async {
        webhook(&app, B, &uuid::Uuid::new_v4().to_string()).await == 202
    })
    .await;
    assert_eq!(
        webhook(&app, A, "kv-3").await,
        202,
        "the old one still, mid-rotation"
    );
    assert_eq!(
        (operator(&app, J2).await, operator(&app, J1).await),
        (200, 200)
    );

    // Step 2: the old ones retired.
    put(
        &bao,
        json!({ "TRACKING_HMAC_SECRET": B, "ACCESS_JWT_SECRET": J2 }),
    )
    .await;
    eventually("the old webhook secret is refused", || async {
        webhook(&app, A, &uuid::Uuid::new_v4().to_string()).await == 401
    })
    .await;
    assert_eq!(
        (operator(&app, J2).await, operator(&app, J1).await),
        (200, 401)
    );

    // A value that fails the checks is refused; the secrets in force stay.
    let failed = REFRESHES.with_label_values(&["failed"]);
    let before = failed.get();
    put(
        &bao,
        json!({ "TRACKING_HMAC_SECRET": "short", "ACCESS_JWT_SECRET": J2 }),
    )
    .await;
    eventually("a refresh refused the bad value", || async {
        failed.get() > before
    })
    .await;
    assert_eq!(webhook(&app, B, "kv-4").await, 202);
    assert_eq!(webhook(&app, "short", "kv-5").await, 401);
    app.stop().await;
}

#[test]
fn a_malformed_kv_location_fails_start_up_naming_the_variable() {
    let env = Env(|name: &str| (name == "SECRETS_VAULT_KV").then(|| "just-a-mount".to_owned()));
    let Err(err) = env.kv() else {
        panic!("accepted a location without a path");
    };
    assert_eq!(err.var, "SECRETS_VAULT_KV");
}

/// A provider's webhook secret from KV: its endpoint turns on when the secret appears there, and a
/// rotation written to KV is in force without a restart.
#[tokio::test]
async fn a_providers_webhook_secret_comes_from_kv_and_rotates_there() {
    use relayer::providers::{sign, Provider};
    let bao = OpenBao::start().await;
    put(
        &bao,
        json!({ "TRACKING_HMAC_SECRET": A, "ACCESS_JWT_SECRET": J1 }),
    )
    .await;
    let app = serve_reading_kv(&bao).await;
    let aftership = |secret: &'static str| {
        let app = &app;
        async move {
            let body = format!(
                r#"{{"event":"tracking_update","event_id":"{}","ts":1764547200,"msg":{{"tracking_number":"1ZKVAS","slug":"ups","tag":"InTransit","subtag":"InTransit_001"}}}}"#,
                uuid::Uuid::new_v4()
            );
            let signature = sign::aftership(secret, body.as_bytes());
            app.provider_webhook(
                Provider::AfterShip,
                &body,
                &[("aftership-hmac-sha256", signature)],
            )
            .await
            .0
        }
    };
    const S1: &str = "aftership-kv-secret-one";
    const S2: &str = "aftership-kv-secret-two";
    assert_eq!(aftership(S1).await, 404, "not configured yet");
    put(&bao, json!({ "TRACKING_HMAC_SECRET": A, "ACCESS_JWT_SECRET": J1, "AFTERSHIP_WEBHOOK_SECRET": S1 })).await;
    eventually("the AfterShip endpoint is on", || async {
        aftership(S1).await == 202
    })
    .await;
    assert_eq!(aftership(S2).await, 401);
    put(&bao, json!({ "TRACKING_HMAC_SECRET": A, "ACCESS_JWT_SECRET": J1, "AFTERSHIP_WEBHOOK_SECRET": S2 })).await;
    eventually("the rotated secret is in force", || async {
        aftership(S2).await == 202
    })
    .await;
    assert_eq!(aftership(S1).await, 401, "the old secret is retired");
    app.stop().await;
}
