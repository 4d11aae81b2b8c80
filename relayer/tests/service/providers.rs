//! `POST /webhooks/{provider}` for EasyPost, AfterShip, Shippo, 17TRACK and ShipEngine against
//! the real server and Postgres: each provider's documented body, signed its way, is accepted
//! once and moves the offer; a duplicate, a forgery, a wrong secret, an unsigned body and a stale
//! timestamp (where one is signed) change nothing; a provider not configured is not there.
use std::sync::Arc;

use chrono::{Duration, Utc};
use relayer::{providers::Provider, startup::Role, worker::Simulate};
use serde_json::Value;

use crate::support::{
    config, fresh_database, offer_body,
    providers::{self as fixtures, ShipEngine},
    spawn, TestApp,
};

async fn app_with_providers(shipengine: &ShipEngine) -> TestApp {
    let mut cfg = config(&fresh_database().await);
    fixtures::enable(&mut cfg, &shipengine.jwks_url);
    spawn(cfg, Role::Http, Arc::new(Simulate)).await
}

async fn offer(app: &TestApp, provider: Provider, tracking: &str) -> uuid::Uuid {
    let mut body = offer_body(tracking);
    body["carrier"] = Value::from(fixtures::carrier(provider));
    app.create_offer(&body).await
}

async fn events(app: &TestApp) -> i64 {
    app.count("tracking_events").await
}

#[tokio::test]
async fn each_provider_signed_its_way_moves_the_offer_once_and_forgeries_change_nothing() {
    let se = ShipEngine::start().await;
    let app = app_with_providers(&se).await;
    for provider in Provider::ALL {
        let name = provider.name();
        let tracking = format!("1Z{}", name.to_uppercase());
        let id = offer(&app, provider, &tracking).await;
        let now = Utc::now();
        let delivered = fixtures::body(
            provider,
            &tracking,
            fixtures::words(provider, "delivered"),
            now,
        );

        let before = events(&app).await;
        for headers in [
            fixtures::forged_headers(provider, &delivered, now, &se),
            Vec::new(),
        ] {
            let (code, body) = app.provider_webhook(provider, &delivered, &headers).await;
            assert_eq!(code, 401, "{name}: {body}");
        }
        assert_eq!(
            events(&app).await,
            before,
            "{name}: refused bodies change nothing"
        );
        assert_eq!(app.offer_status(id).await, "awaiting_shipment", "{name}");

        let headers = fixtures::headers(provider, &delivered, now, &se);
        let (code, body) = app.provider_webhook(provider, &delivered, &headers).await;
        assert_eq!(code, 200, "{name}: {body}");
        assert_eq!(body["result"], "accepted", "{name}: {body}");
        assert_eq!(body["job_enqueued"], true, "{name}: {body}");
        assert!(
            body["event_id"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name}:")),
            "{body}"
        );
        assert_eq!(app.offer_status(id).await, "delivered", "{name}");

        // The provider delivers the same update again.
        let (code, body) = app.provider_webhook(provider, &delivered, &headers).await;
        assert_eq!(
            (code, body["result"].as_str()),
            (200, Some("duplicate")),
            "{name}: {body}"
        );
        assert_eq!(events(&app).await, before + 1, "{name}");
        let accepted = format!("relayer_webhooks_total{{provider=\"{name}\",result=\"accepted\"}}");
        assert_eq!(app.metric(&accepted).await, 1.0, "{name}");
        let forged =
            format!("relayer_webhooks_total{{provider=\"{name}\",result=\"bad_signature\"}}");
        assert_eq!(app.metric(&forged).await, 1.0, "{name}");
    }
    app.stop().await;
}

#[tokio::test]
async fn each_provider_status_table_maps_returns_transit_and_the_statuses_that_change_nothing() {
    let se = ShipEngine::start().await;
    let app = app_with_providers(&se).await;
    for provider in Provider::ALL {
        let name = provider.name();
        let send = |tracking: String, ours: &'static str, minutes_ago: i64| {
            let app = &app;
            let se = &se;
            async move {
                let at = Utc::now() - Duration::minutes(minutes_ago);
                let body = fixtures::body(provider, &tracking, fixtures::words(provider, ours), at);
                let headers = fixtures::headers(provider, &body, Utc::now(), se);
                let (code, answer) = app.provider_webhook(provider, &body, &headers).await;
                assert_eq!(code, 200, "{name} {ours}: {answer}");
            }
        };
        let moving = format!("MOVE-{name}");
        let id = offer(&app, provider, &moving).await;
        // Not shipped yet (a label, information received): stored, the offer stays.
        send(moving.clone(), "not_shipped", 30).await;
        assert_eq!(app.offer_status(id).await, "awaiting_shipment", "{name}");
        send(moving.clone(), "in_transit", 20).await;
        assert_eq!(app.offer_status(id).await, "in_transit", "{name}");
        send(moving.clone(), "returned", 10).await;
        assert_eq!(app.offer_status(id).await, "returned", "{name}");
        let (action,): (String,) = sqlx::query_as("SELECT action FROM jobs WHERE offer_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(action, "approve_refund", "{name}");
    }
    let (unrecognised,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM tracking_events WHERE status = 'unrecognised'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unrecognised, 5, "one not-shipped event per provider, kept");
    app.stop().await;
}

#[tokio::test]
async fn signed_timestamps_outside_five_minutes_are_refused() {
    let se = ShipEngine::start().await;
    let app = app_with_providers(&se).await;
    for provider in [Provider::Shippo, Provider::ShipEngine] {
        let tracking = format!("STALE-{}", provider.name());
        let id = offer(&app, provider, &tracking).await;
        let long_ago = Utc::now() - Duration::minutes(10);
        let body = fixtures::body(
            provider,
            &tracking,
            fixtures::words(provider, "delivered"),
            long_ago,
        );
        let headers = fixtures::headers(provider, &body, long_ago, &se);
        let (code, answer) = app.provider_webhook(provider, &body, &headers).await;
        assert_eq!(code, 401, "{answer}");
        assert_eq!(
            answer["error"], "timestamp outside the tolerance window",
            "{answer}"
        );
        assert_eq!(app.offer_status(id).await, "awaiting_shipment");
    }
    app.stop().await;
}

#[tokio::test]
async fn shipengine_keys_come_from_its_jwks_and_an_unknown_key_id_is_fetched_once() {
    let mut se = ShipEngine::start().await;
    let app = app_with_providers(&se).await;
    let p = Provider::ShipEngine;
    let send = |se: &ShipEngine, tracking: &str, kid: Option<&str>| {
        let body = fixtures::body(p, tracking, fixtures::words(p, "in_transit"), Utc::now());
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let headers = se.headers_with(kid.unwrap_or(&se.kid), &now, body.as_bytes());
        (body, headers)
    };
    let fetches = || se.fetches.load(std::sync::atomic::Ordering::SeqCst);
    let (body, headers) = send(&se, "SE-1", None);
    assert_eq!(
        app.provider_webhook(p, &body, &headers).await.0,
        202,
        "verified: stored as an unknown tracking number"
    );
    let (body, headers) = send(&se, "SE-2", None);
    assert_eq!(
        app.provider_webhook(p, &body, &headers).await.0,
        202,
        "verified: stored as an unknown tracking number"
    );
    assert_eq!(fetches(), 1, "fetched once, then cached");

    // ShipEngine rotates: the new key id is not cached, so the JWKS is fetched once more.
    se.rotate();
    let fetches = || se.fetches.load(std::sync::atomic::Ordering::SeqCst);
    let (body, headers) = send(&se, "SE-3", None);
    assert_eq!(
        app.provider_webhook(p, &body, &headers).await.0,
        202,
        "verified: stored as an unknown tracking number"
    );
    assert_eq!(fetches(), 2);

    // Forged key ids do not make the relayer fetch again and again.
    for i in 0..5 {
        let (body, mut headers) = send(&se, &format!("SE-F{i}"), None);
        headers[1].1 = format!("made-up-{i}");
        assert_eq!(app.provider_webhook(p, &body, &headers).await.0, 401);
    }
    assert_eq!(
        fetches(),
        2,
        "at most one fetch per {:?}",
        relayer::providers::shipengine::REFETCH_EVERY
    );
    app.stop().await;
}

#[tokio::test]
async fn providers_without_a_secret_are_not_there_and_other_notifications_are_acknowledged() {
    // The default test configuration turns no provider on.
    let app = crate::support::spawn_http().await;
    for provider in Provider::ALL {
        let body = fixtures::body(
            provider,
            "1Z404",
            fixtures::words(provider, "delivered"),
            Utc::now(),
        );
        let (code, _) = app.provider_webhook(provider, &body, &[]).await;
        assert_eq!(code, 404, "{}", provider.name());
    }
    let (code, _) = app.post_webhook("/webhooks/ship24", "{}", &[]).await;
    assert_eq!(code, 404, "Ship24 cannot sign its bodies: not accepted");
    app.stop().await;

    let se = ShipEngine::start().await;
    let app = app_with_providers(&se).await;
    let label = r#"{"event":"transaction_created","test":false,"data":{"object_id":"x"}}"#;
    let headers = fixtures::headers(Provider::Shippo, label, Utc::now(), &se);
    let (code, answer) = app
        .provider_webhook(Provider::Shippo, label, &headers)
        .await;
    assert_eq!(
        (code, answer["result"].as_str()),
        (202, Some("ignored")),
        "{answer}"
    );
    assert_eq!(events(&app).await, 0);
    // Duplicate keys are refused after the signature, as on the relayer's own endpoint.
    let twice = r#"{"event":"track_updated","event":"transaction_created"}"#;
    let headers = fixtures::headers(Provider::Shippo, twice, Utc::now(), &se);
    assert_eq!(
        app.provider_webhook(Provider::Shippo, twice, &headers)
            .await
            .0,
        400
    );
    app.stop().await;
}
