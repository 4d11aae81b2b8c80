//! The operator API: JWT authentication, offers, jobs; and the health endpoints.

use crate::support::*;
use serde_json::Value;

#[tokio::test]
async fn tokens_good_previous_expired_wrong_and_missing() {
    let app = spawn_http().await;
    let post = |token: Option<String>| {
        let mut req = app
            .http
            .post(app.url("/v1/offers"))
            .json(&offer_body(&uuid::Uuid::new_v4().to_string()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(
        post(Some(token(JWT_SECRET, 60))).await.unwrap().status(),
        201
    );
    assert_eq!(
        post(Some(token(OLD_JWT_SECRET, 60)))
            .await
            .unwrap()
            .status(),
        201,
        "previous secret during rotation"
    );
    for (name, t) in [
        ("expired", Some(token(JWT_SECRET, -3600))),
        (
            "wrong secret",
            Some(token(b"someone-elses-secret-0123456789abcdef", 60)),
        ),
        ("garbage", Some("not.a.jwt".into())),
        ("missing", None),
    ] {
        let resp = post(t).await.unwrap();
        assert_eq!(resp.status(), 401, "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error"], "unauthorized",
            "{name}: the same answer for every failure"
        );
    }
    assert_eq!(app.count("offers").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn nothing_leaks_about_what_exists_without_a_valid_token() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z100").await;
    for id in [offer, uuid::Uuid::new_v4()] {
        let resp = app
            .http
            .get(app.url(&format!("/v1/offers/{id}")))
            .bearer_auth(token(JWT_SECRET, -10))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let missing = app
        .get_as_operator(&format!("/v1/offers/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn offers_are_validated_and_unique() {
    let app = spawn_http().await;
    let send = |body: Value| {
        app.http
            .post(app.url("/v1/offers"))
            .bearer_auth(app.token())
            .json(&body)
            .send()
    };
    let mut bad = offer_body("1Z101");
    bad["seller"] = "not-a-key".into();
    let resp = send(bad).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "seller is not a valid base58 address"
    );
    let mut zero = offer_body("1Z101");
    zero["amount"] = 0.into();
    assert_eq!(send(zero).await.unwrap().status(), 400);
    let mut missing = offer_body("1Z101");
    missing.as_object_mut().unwrap().remove("mint");
    assert_eq!(send(missing).await.unwrap().status(), 400);

    let body = offer_body("1Z101");
    assert_eq!(send(body.clone()).await.unwrap().status(), 201);
    assert_eq!(send(body).await.unwrap().status(), 409, "same escrow twice");
    assert_eq!(
        send(offer_body("1Z101")).await.unwrap().status(),
        409,
        "same carrier and tracking number"
    );
    assert_eq!(app.count("offers").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_offer_is_read_with_its_events_and_jobs() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z102").await;
    app.webhook(&event("e1", "1Z102", "in_transit")).await;
    app.webhook(&event_at(
        "e2",
        "1Z102",
        "delivered",
        "2026-11-26T11:00:00Z",
    ))
    .await;
    let v: Value = app
        .http
        .get(app.url(&format!("/v1/offers/{offer}")))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["offer"]["status"], "delivered");
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["e1", "e2"]);
    assert_eq!(v["jobs"][0]["action"], "approve_release");
    app.stop().await;
}

#[tokio::test]
async fn healthz_and_readyz_answer_as_health_json() {
    let app = spawn_http().await;
    for path in ["/healthz", "/readyz"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/health+json");
    }
    assert_eq!(app.metric("relayer_database_up ").await, 1.0);
    app.stop().await;
}

#[tokio::test]
async fn when_postgres_is_unreachable_readyz_fails_and_webhooks_ask_for_a_retry() {
    // Nothing listens on port 1: every connection attempt is refused.
    let mut cfg = config("postgres://postgres@127.0.0.1:1/none");
    // Prometheus scrapes a listener of its own, which needs no database to authenticate.
    cfg.http.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn(
        cfg,
        relayer::startup::Role::Http,
        std::sync::Arc::new(relayer::worker::Simulate),
    )
    .await;
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "fail");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the process is alive"
    );
    let (status, reply) = app.webhook(&event("e-down", "1Z", "delivered")).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"], "database unavailable, retry later");
    // A token's revocation cannot be checked: the operator API fails closed.
    assert_eq!(app.get_as_operator("/v1/jobs").await.status(), 503);
    // Metrics still answer, saying what is wrong, and count the refusal.
    assert_eq!(app.metric("relayer_database_up ").await, 0.0);
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"unavailable\"}")
            .await,
        1.0
    );
    app.shutdown.cancel();
}
