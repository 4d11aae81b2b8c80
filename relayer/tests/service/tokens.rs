//! Operator tokens: every claim checked, revocation on every request, `relayer token issue|revoke`,
//! and failed authentications throttled per address.
use std::sync::Arc;

use relayer::{startup::Role, worker::Simulate};
use serde_json::{json, Value};

use crate::support::*;

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// `GET /v1/jobs` with `token`; the status.
async fn jobs_with(app: &TestApp, token: &str) -> u16 {
    app.http
        .get(app.url("/v1/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A token of raw claims (whatever they are) signed with the test secret.
fn raw_token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn every_claim_is_checked() {
    let app = spawn_http().await;
    let t = now();
    assert_eq!(jobs_with(&app, &app.token()).await, 200);
    assert_eq!(
        jobs_with(&app, &token_with(JWT_SECRET, |c| c.nbf = Some(t - 5))).await,
        200,
        "an nbf in the past"
    );
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(json!({ "sub": "ops", "jti": "x", "iss": "openclaw-relayer",
                    "aud": "openclaw-relayer-operator-api", "iat": t, "exp": t + 60 }))
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "nbf an hour ahead",
            token_with(JWT_SECRET, |c| c.nbf = Some(t + 3600)),
        ),
        (
            "issued in the future",
            token_with(JWT_SECRET, |c| {
                c.iat = t + 600;
                c.exp = t + 1200;
            }),
        ),
        (
            "valid for 100 years",
            token_with(JWT_SECRET, |c| c.exp = c.iat + 100 * 365 * 86_400),
        ),
        (
            "one second over the maximum lifetime",
            token_with(JWT_SECRET, |c| c.exp = c.iat + 7 * 86_400 + 1),
        ),
        ("an empty sub", token_with(JWT_SECRET, |c| c.sub.clear())),
        (
            "a blank sub",
            token_with(JWT_SECRET, |c| c.sub = "   ".into()),
        ),
        (
            "a control character in sub",
            token_with(JWT_SECRET, |c| c.sub = "ops\u{1b}[31m".into()),
        ),
        ("an empty jti", token_with(JWT_SECRET, |c| c.jti.clear())),
        (
            "another issuer",
            token_with(JWT_SECRET, |c| c.iss = "someone-else".into()),
        ),
        (
            "another audience",
            token_with(JWT_SECRET, |c| c.aud = "another-api".into()),
        ),
        (
            "no jti",
            raw_token(json!({ "sub": "ops", "iss": "openclaw-relayer",
                "aud": "openclaw-relayer-operator-api", "iat": t - 10, "exp": t + 60 })),
        ),
        (
            "no iat",
            raw_token(json!({ "sub": "ops", "jti": "j", "iss": "openclaw-relayer",
                "aud": "openclaw-relayer-operator-api", "exp": t + 60 })),
        ),
        ("alg none", unsigned),
    ];
    for (name, token) in cases {
        let resp = app
            .http
            .get(app.url("/v1/jobs"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{name}");
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({ "error": "unauthorized" }),
            "{name}: the same answer for every failure"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn issued_tokens_work_and_revoked_ones_stop_on_every_request() {
    let app = spawn_http().await;
    let env = [
        ("DATABASE_URL", app.database_url.as_str()),
        (
            "ACCESS_JWT_SECRET",
            std::str::from_utf8(JWT_SECRET).unwrap(),
        ),
        (
            "ACCESS_JWT_SECRET_PREVIOUS",
            std::str::from_utf8(OLD_JWT_SECRET).unwrap(),
        ),
        (
            "TRACKING_HMAC_SECRET",
            std::str::from_utf8(HMAC_SECRET).unwrap(),
        ),
    ];
    // Issue: the token on stdout, its id and expiry on stderr.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_relayer"))
        .args([
            "token",
            "issue",
            "--subject",
            "alice@ops",
            "--ttl-secs",
            "600",
        ])
        .envs(env)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let alice = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("jti "), "{stderr}");
    assert_eq!(jobs_with(&app, &alice).await, 200);
    let bob = app.token();
    assert_eq!(jobs_with(&app, &bob).await, 200);

    for (args, why) in [
        (
            &["token", "issue", "--subject", "x", "--ttl-secs", "31536000"][..],
            "longer than ACCESS_JWT_MAX_TTL_SECS",
        ),
        (&["token", "issue", "--subject", " "][..], "a blank subject"),
        (&["token", "revoke", "--jti", ""][..], "an empty id"),
        (
            &["token", "revoke", "--token", "not.a.token"][..],
            "not a token of these secrets",
        ),
    ] {
        let (ok, out) = relayer_bin(args, &env).await;
        assert!(!ok, "{why}: {out}");
    }

    // Revoked by the token itself: refused from the next request on; bob is unaffected.
    let (ok, out) = relayer_bin(&["token", "revoke", "--token", &alice], &env).await;
    assert!(ok, "{out}");
    assert_eq!(jobs_with(&app, &alice).await, 401);
    assert_eq!(jobs_with(&app, &bob).await, 200);
    let (ok, out) = relayer_bin(&["token", "revoke", "--token", &alice], &env).await;
    assert!(ok, "revoking twice is fine: {out}");
    // Revoked by id (from the logs, or `issue`'s stderr).
    let bob_jti = jti_of(&bob);
    let (ok, out) = relayer_bin(
        &[
            "token",
            "revoke",
            "--jti",
            &bob_jti,
            "--reason",
            "laptop lost",
        ],
        &env,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(jobs_with(&app, &bob).await, 401);
    assert_eq!(app.count("revoked_tokens").await, 2);
    let reason: String = sqlx::query_scalar("SELECT reason FROM revoked_tokens WHERE jti = $1")
        .bind(&bob_jti)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(reason, "laptop lost");
    // The audit log records each revocation once, without the operator's note.
    let revocations: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM audit_log WHERE kind = 'token_revoked'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(revocations.len(), 2, "{revocations:?}");
    assert!(
        revocations.iter().all(|p| !p.contains("laptop")),
        "{revocations:?}"
    );
    app.stop().await;
}

fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn failed_authentications_lock_out_the_address_not_everyone() {
    let mut cfg = config(&fresh_database().await);
    cfg.http.auth_failures_per_minute = 3;
    cfg.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn(cfg, Role::Http, Arc::new(Simulate)).await;
    let from = |ip: &'static str, token: String| {
        app.http
            .get(app.url("/v1/jobs"))
            .header("X-Forwarded-For", ip)
            .bearer_auth(token)
            .send()
    };
    let wrong = || token(b"guessed-secret-0123456789abcdefghij", 60);
    // Three failures a minute are allowed; the fourth locks the address out.
    for _ in 0..4 {
        assert_eq!(from("198.51.100.7", wrong()).await.unwrap().status(), 401);
    }
    let locked = from("198.51.100.7", wrong()).await.unwrap();
    assert_eq!(locked.status(), 429);
    assert_eq!(
        from("198.51.100.7", app.token()).await.unwrap().status(),
        429,
        "locked out for the minute, even with a good token: guessing gains nothing"
    );
    assert_eq!(
        from("198.51.100.8", app.token()).await.unwrap().status(),
        200,
        "another address is not affected"
    );
    app.stop().await;
}

#[tokio::test]
async fn operator_requests_are_limited_per_address_and_per_token() {
    let mut cfg = config(&fresh_database().await);
    cfg.http.operator_rate_per_minute = 3;
    cfg.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn(cfg, Role::Http, Arc::new(Simulate)).await;
    let from = |ip: &'static str, token: &str| {
        app.http
            .get(app.url("/v1/jobs"))
            .header("X-Forwarded-For", ip)
            .bearer_auth(token)
            .send()
    };
    let (one, two) = (app.token(), app.token());
    // Per address: the fourth request from one address is refused, whatever the token.
    assert_eq!(from("203.0.113.1", &one).await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.1", &two).await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.1", &two).await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.1", &two).await.unwrap().status(), 429);
    // Per token: `two` has its third request left, then none, from any address.
    assert_eq!(from("203.0.113.2", &two).await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.3", &two).await.unwrap().status(), 429);
    assert_eq!(from("203.0.113.3", &one).await.unwrap().status(), 200);
    app.stop().await;
}
