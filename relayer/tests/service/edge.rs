//! What the relayer refuses at the edge, on every surface: control characters, duplicate JSON
//! keys, compressed and oversized bodies; what it says about itself: security headers, no
//! operator in public answers, no URL built from `Host`, metrics only for operators; and the
//! rate limits of the public surfaces.
use std::sync::Arc;

use relayer::{domain::signature, startup::Role, worker::Simulate};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn post_offer(app: &TestApp, body: String) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url("/v1/offers"))
        .bearer_auth(app.token())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_characters_and_bad_values_are_400_everywhere_and_change_nothing() {
    let app = spawn_http().await;
    let with = |field: &str, value: Value| {
        let mut body = offer_body("1ZEDGE");
        body[field] = value;
        body.to_string()
    };
    for (what, body) in [
        (
            "NUL in tracking_number",
            with("tracking_number", "1Z\u{0}9".into()),
        ),
        ("NUL in carrier", with("carrier", "ups\u{0}".into())),
        ("escape in carrier", with("carrier", "ups\u{1b}[2J".into())),
        (
            "newline in tracking_number",
            with("tracking_number", "1Z\n9".into()),
        ),
        ("NUL in an address", with("seller", "\u{0}".into())),
        (
            "tracking_number too long",
            with("tracking_number", "7".repeat(65).into()),
        ),
        ("blank carrier", with("carrier", " ".into())),
        ("amount negative", with("amount", json!(-1))),
        ("amount over i64", with("amount", json!(u64::MAX))),
        ("amount a string", with("amount", json!("1"))),
        ("not an object", "[1,2]".into()),
        ("not JSON", "{".into()),
    ] {
        let (status, reply) = post_offer(&app, body).await;
        assert_eq!(status, 400, "{what}: {reply}");
        let message = reply["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty() && !message.contains('\0'), "{what}");
    }
    assert_eq!(app.count("offers").await, 0);
    // Paths and queries of the operator API, the public audit log and the Actions.
    for path in [
        "/v1/offers/%00",
        "/v1/jobs?state=%00",
        "/v1/jobs?state=dead%0a",
        "/v1/jobs/%00/retry",
        "/v1/audit/operators/%00",
        "/v1/audit/offers/%00",
        "/v1/audit/entries?after=%00",
        "/api/actions/deposit/%00",
        "/api/actions/%00/x",
    ] {
        let get = app.get_as_operator(path).await.status().as_u16();
        let post = app.post_as_operator(path).await.status().as_u16();
        for status in [get, post] {
            assert!(
                (400..500).contains(&status),
                "{path}: {status}, a client error and never a 5xx"
            );
        }
    }
    let resp = app
        .http
        .post(app.url(&format!("/api/actions/deposit/{}", uuid::Uuid::new_v4())))
        .json(&json!({ "account": "\u{0}" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn a_body_means_one_thing_duplicate_keys_are_refused() {
    let app = spawn_http().await;
    app.register_offer("1ZDUP").await;
    // Signed as it is: with duplicate keys one reader could see in_transit, another delivered.
    let body = r#"{"event_id":"dup-1","tracking_number":"1ZDUP","carrier":"ups","status":"in_transit","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
    let (status, reply) = app.webhook(body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("status"),
        "{reply}"
    );
    assert_eq!(app.count("tracking_events").await, 0);
    let nested = r#"{"event_id":"dup-2","tracking_number":"1ZDUP","carrier":"ups","status":"in_transit","occurred_at":"2026-11-26T10:00:00Z","details":{"a":1,"a":2}}"#;
    assert_eq!(app.webhook(nested).await.0, 400, "nested objects too");

    let mut offer = offer_body("1ZDUP2").to_string();
    offer.insert_str(1, r#""amount":5,"#);
    let (status, reply) = post_offer(&app, offer).await;
    assert_eq!(status, 400, "{reply}");
    let resp = app
        .http
        .post(app.url(&format!("/api/actions/deposit/{}", uuid::Uuid::new_v4())))
        .header("content-type", "application/json")
        .body(r#"{"account":"11111111111111111111111111111111","account":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(app.count("offers").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn compressed_bodies_are_refused() {
    let app = spawn_http().await;
    let body = event("enc-1", "1ZENC", "delivered");
    let sig = signature::tracking_signature(HMAC_SECRET, body.as_bytes());
    for encoding in ["gzip", "deflate", "br", "GZIP"] {
        let (status, reply) = app
            .webhook_with(
                &body,
                &[
                    ("X-Tracking-Signature", sig.clone()),
                    ("Content-Encoding", encoding.into()),
                ],
            )
            .await;
        assert_eq!(status, 415, "{encoding}: {reply}");
        let resp = app
            .http
            .post(app.url("/v1/offers"))
            .bearer_auth(app.token())
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(offer_body("1ZENC").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{encoding}");
    }
    assert_eq!(app.count("tracking_events").await, 0);
    assert_eq!(app.count("offers").await, 0);
    app.stop().await;
}

/// Sends `POST path` as an operator with a chunked body that never ends, chunk after chunk, until
/// the server answers; returns its status line and how many body bytes went out. (Without a
/// token the operator API answers 401 before reading any of it.)
async fn endless_chunked_post(app: &TestApp, path: &str) -> (String, usize) {
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/json\r\n\
         X-Tracking-Signature: 00\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.token()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8192, "a".repeat(8192));
    let (mut r, mut w) = s.split();
    let mut sent = 0usize;
    let mut answer = vec![0u8; 512];
    // Guard: 64 MiB. The server must answer long before.
    while sent < 64 << 20 {
        tokio::select! {
            read = r.read(&mut answer) => {
                let n = read.unwrap_or(0);
                let text = String::from_utf8_lossy(&answer[..n]).into_owned();
                return (text.lines().next().unwrap_or("").to_owned(), sent);
            }
            written = w.write_all(chunk.as_bytes()) => {
                if written.is_err() {
                    break;
                }
                sent += 8192;
            }
        }
    }
    let n = r.read(&mut answer).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    (text.lines().next().unwrap_or("").to_owned(), sent)
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off_early() {
    let app = spawn_http().await;
    for (path, limit) in [
        ("/webhooks/tracking", 64 << 10),
        ("/v1/offers", 16 << 10),
        ("/api/actions/deposit/x", 16 << 10),
    ] {
        let (status, sent) = endless_chunked_post(&app, path).await;
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status:?}");
        // Socket buffers hold a few hundred KiB in flight; the server read about the limit.
        assert!(sent < limit + (4 << 20), "{path}: {sent} bytes went out");
    }
    assert_eq!(app.count("tracking_events").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_http().await;
    let offer = app.register_offer("1ZHDR").await;
    let answers = [
        app.http.get(app.url("/healthz")).send().await.unwrap(),
        app.http.get(app.url("/nowhere")).send().await.unwrap(),
        app.http.get(app.url("/v1/jobs")).send().await.unwrap(),
        app.http.get(app.url("/actions.json")).send().await.unwrap(),
        app.http
            .get(app.url("/actions/icon.svg"))
            .send()
            .await
            .unwrap(),
        app.get_as_operator(&format!("/v1/offers/{offer}")).await,
        app.http
            .post(app.url("/webhooks/tracking"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    ];
    for resp in answers {
        let h = resp.headers();
        let what = format!("{} {}", resp.url().path(), resp.status());
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{what}"
        );
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert!(h.get("server").is_none(), "{what}: no server banner");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{what}: HSTS only over TLS (tls.rs)"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn public_answers_name_no_operator_and_build_no_url_from_host() {
    let app = spawn_http().await;
    let offer = app.register_offer("1ZPUB").await;
    let public = app
        .http
        .get(app.url(&format!("/v1/audit/offers/{offer}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(public.contains("offer_registered"), "{public}");
    assert!(!public.contains("ops@test"), "{public}");
    let entries: Vec<Value> = serde_json::from_str(&public).unwrap();
    let payload: Value = serde_json::from_str(entries[0]["payload"].as_str().unwrap()).unwrap();
    let commitment = payload["operator_commitment"]
        .as_str()
        .expect("a commitment in place of the operator")
        .to_owned();
    let all = app
        .http
        .get(app.url("/v1/audit/entries"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!all.contains("ops@test"), "{all}");
    // Only an operator opens it, and it opens to who acted.
    let path = format!("/v1/audit/operators/{commitment}");
    assert_eq!(
        app.http.get(app.url(&path)).send().await.unwrap().status(),
        401
    );
    let opened: Value = app.get_as_operator(&path).await.json().await.unwrap();
    assert_eq!(opened["operator"], "ops@test");
    let nonce = hex::decode(opened["nonce"].as_str().unwrap()).unwrap();
    assert_eq!(
        relayer::audit::operators::commitment_of(&nonce.try_into().unwrap(), "ops@test"),
        commitment
    );

    // A forged Host changes nothing a wallet is shown.
    let action: Value = app
        .http
        .get(app.url(&format!("/api/actions/deposit/{offer}")))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let icon = action["icon"].as_str().expect("an icon");
    assert_eq!(icon, format!("http://{}/actions/icon.svg", app.addr));
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_an_operator_token_or_their_own_listener() {
    let app = spawn_http().await;
    let anonymous = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.get_as_operator("/metrics").await.status(), 200);
    app.stop().await;

    let mut cfg = config(&fresh_database().await);
    cfg.http.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn(cfg, Role::Http, Arc::new(Simulate)).await;
    let metrics = app.metrics_addr.expect("a metrics listener");
    let text = app
        .http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("relayer_database_up 1"), "{text}");
    assert_eq!(
        app.get_as_operator("/metrics").await.status(),
        404,
        "not on the public listener at all"
    );
    let only_metrics = app
        .http
        .get(format!("http://{metrics}/v1/jobs"))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap();
    assert_eq!(only_metrics.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn actions_and_the_public_audit_log_are_rate_limited_per_address() {
    let mut cfg = config(&fresh_database().await);
    cfg.http.actions_rate_per_minute = 2;
    cfg.http.audit_rate_per_minute = 2;
    let app = spawn(cfg, Role::Http, Arc::new(Simulate)).await;
    let offer = app.register_offer("1ZRATE").await;
    let describe = app.url(&format!("/api/actions/deposit/{offer}"));
    for _ in 0..2 {
        assert_eq!(app.http.get(&describe).send().await.unwrap().status(), 200);
    }
    let limited = app.http.get(&describe).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let body: Value = limited.json().await.unwrap();
    assert!(
        body["message"].is_string(),
        "the Actions error shape: {body}"
    );
    let post = app
        .http
        .post(&describe)
        .json(&json!({ "account": "11111111111111111111111111111111" }))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 429, "GET and POST share the bucket");
    for path in ["/v1/audit/entries", "/v1/audit/checkpoints"] {
        assert_eq!(
            app.http.get(app.url(path)).send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        app.http
            .get(app.url(&format!("/v1/audit/offers/{offer}")))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        app.get_as_operator("/v1/jobs").await.status(),
        200,
        "each surface has its own bucket"
    );
    app.stop().await;
}
