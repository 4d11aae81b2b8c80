//! `POST /webhooks/tracking` against the real server and Postgres.

use crate::support::*;
use chrono::Utc;
use relayer::domain::signature;

#[tokio::test]
async fn delivered_webhook_stores_event_moves_offer_and_enqueues_one_job() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z001").await;
    let (status, body) = app.webhook(&event("evt-1", "1Z001", "delivered")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "accepted");
    assert_eq!(body["job_enqueued"], true);
    assert_eq!(app.offer_status(offer).await, "delivered");
    let (event_offer,): (Option<uuid::Uuid>,) =
        sqlx::query_as("SELECT offer_id FROM tracking_events WHERE event_id = 'evt-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(event_offer, Some(offer));
    let (action, state): (String, String) =
        sqlx::query_as("SELECT action, state FROM jobs WHERE offer_id = $1")
            .bind(offer)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (action.as_str(), state.as_str()),
        ("approve_release", "pending")
    );
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"accepted\"}")
            .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn returned_webhook_enqueues_a_refund_and_later_events_change_nothing() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z002").await;
    assert_eq!(
        app.webhook(&event("e1", "1Z002", "in_transit")).await.0,
        200
    );
    assert_eq!(app.offer_status(offer).await, "in_transit");
    assert_eq!(app.webhook(&event("e2", "1Z002", "returned")).await.0, 200);
    // Final: a later "delivered" is stored for audit but asks for no release.
    let (status, body) = app.webhook(&event("e3", "1Z002", "delivered")).await;
    assert_eq!((status, body["job_enqueued"].clone()), (200, false.into()));
    assert_eq!(app.offer_status(offer).await, "returned");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, ["approve_refund"]);
    assert_eq!(app.count("tracking_events").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn an_older_event_arriving_late_does_not_move_the_status_back() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z003").await;
    app.webhook(&event_at(
        "e1",
        "1Z003",
        "out_for_delivery",
        "2026-11-26T12:00:00Z",
    ))
    .await;
    app.webhook(&event_at(
        "e0",
        "1Z003",
        "in_transit",
        "2026-11-26T08:00:00Z",
    ))
    .await;
    assert_eq!(app.offer_status(offer).await, "out_for_delivery");
    app.stop().await;
}

#[tokio::test]
async fn redelivery_of_an_event_id_changes_nothing() {
    let app = spawn_http().await;
    app.register_offer("1Z004").await;
    let body = event("evt-dup", "1Z004", "delivered");
    assert_eq!(app.webhook(&body).await.0, 200);
    let counts = (app.count("tracking_events").await, app.count("jobs").await);
    let (status, reply) = app.webhook(&body).await;
    assert_eq!((status, reply["result"].as_str()), (200, Some("duplicate")));
    assert_eq!(
        (app.count("tracking_events").await, app.count("jobs").await),
        counts
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_tracking_number_is_stored_and_answered_202() {
    let app = spawn_http().await;
    let (status, body) = app.webhook(&event("evt-x", "NOPE", "delivered")).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (202, Some("unknown_tracking"))
    );
    let offer: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT offer_id FROM tracking_events WHERE event_id = 'evt-x'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(offer, None);
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

/// Every refusal: the status, a short reason, nothing stored, and a metric.
#[tokio::test]
async fn bad_requests_are_refused_and_store_nothing() {
    let app = spawn_http().await;
    app.register_offer("1Z005").await;
    let good = event("evt-bad", "1Z005", "delivered");
    let sig = |body: &str| signature::tracking_signature(HMAC_SECRET, body.as_bytes());
    struct Case(
        &'static str,
        String,
        Vec<(&'static str, String)>,
        u16,
        &'static str,
    );
    let cases = vec![
        Case("unsigned", good.clone(), vec![], 401, "unsigned"),
        Case("wrong key", good.clone(), vec![("X-Tracking-Signature", signature::tracking_signature(b"not-our-secret-at-all", good.as_bytes()))], 401, "bad_signature"),
        Case("signature for another body", good.clone(), vec![("X-Tracking-Signature", sig(&event("evt-other", "1Z005", "delivered")))], 401, "bad_signature"),
        Case("not hex", good.clone(), vec![("X-Tracking-Signature", "xyz".into())], 401, "bad_signature"),
        Case("not JSON", "{not json".into(), vec![("X-Tracking-Signature", sig("{not json"))], 400, "malformed"),
        Case("missing field", r#"{"event_id":"m1","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#.into(),
            vec![("X-Tracking-Signature", sig(r#"{"event_id":"m1","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#))], 400, "malformed"),
        Case("unknown status", event("m2", "1Z005", "lost"), vec![("X-Tracking-Signature", sig(&event("m2", "1Z005", "lost")))], 400, "malformed"),
    ];
    for Case(name, body, headers, want, metric) in cases {
        let before = app
            .metric(&format!(
                "relayer_webhooks_total{{provider=\"tracking\",result=\"{metric}\"}}"
            ))
            .await;
        let (status, reply) = app.webhook_with(&body, &headers).await;
        assert_eq!(status, want, "{name}: {reply}");
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: a reason is given"
        );
        let after = app
            .metric(&format!(
                "relayer_webhooks_total{{provider=\"tracking\",result=\"{metric}\"}}"
            ))
            .await;
        assert_eq!(after, before + 1.0, "{name}: counted as {metric}");
    }
    // Oversized: one byte over the cap.
    let big = "x".repeat(64 * 1024 + 1);
    let (status, _) = app
        .webhook_with(&big, &[("X-Tracking-Signature", sig(&big))])
        .await;
    assert_eq!(status, 413);
    assert_eq!(app.count("tracking_events").await, 0);
    assert_eq!(app.count("jobs").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_secret_being_rotated_out_is_still_accepted() {
    let app = spawn_http().await;
    app.register_offer("1Z006").await;
    let body = event("evt-rot", "1Z006", "in_transit");
    let old = signature::tracking_signature(OLD_HMAC_SECRET, body.as_bytes());
    assert_eq!(
        app.webhook_with(&body, &[("X-Tracking-Signature", old)])
            .await
            .0,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn standard_webhooks_are_verified_and_replays_outside_the_window_refused() {
    let app = spawn_http().await;
    app.register_offer("1Z007").await;
    // The webhook-id header carries the event id; the body need not.
    let body = r#"{"tracking_number":"1Z007","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
    let now = Utc::now().timestamp();
    let headers = |ts: i64| {
        vec![
            ("webhook-id", "msg_42".to_string()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                signature::standard_signature(HMAC_SECRET, "msg_42", ts, body.as_bytes()),
            ),
        ]
    };
    let (status, reply) = app.webhook_with(body, &headers(now)).await;
    assert_eq!((status, reply["event_id"].as_str()), (200, Some("msg_42")));
    // A captured request replayed ten minutes later: stale.
    let (status, reply) = app.webhook_with(body, &headers(now - 600)).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("timestamp outside the tolerance window"))
    );
    // Re-signed within the window with the same id: a duplicate, nothing new.
    let (status, reply) = app.webhook_with(body, &headers(now + 1)).await;
    assert_eq!((status, reply["result"].as_str()), (200, Some("duplicate")));
    assert_eq!(app.count("tracking_events").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn event_status_and_job_commit_together_or_not_at_all() {
    let app = spawn_http().await;
    let offer = app.register_offer("1Z008").await;
    // Make the job insert fail inside the webhook's transaction.
    sqlx::query("ALTER TABLE jobs ADD CONSTRAINT test_block_jobs CHECK (false) NOT VALID")
        .execute(&app.pool)
        .await
        .unwrap();
    let body = event("evt-atomic", "1Z008", "delivered");
    let (status, _) = app.webhook(&body).await;
    assert_eq!(status, 500);
    assert_eq!(
        app.count("tracking_events").await,
        0,
        "the event was rolled back"
    );
    assert_eq!(
        app.offer_status(offer).await,
        "awaiting_shipment",
        "the status was rolled back"
    );
    // Once the fault is gone, the provider's retry of the same event goes through.
    sqlx::query("ALTER TABLE jobs DROP CONSTRAINT test_block_jobs")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.webhook(&body).await.0, 200);
    assert_eq!(app.count("jobs").await, 1);
    app.stop().await;
}

/// Webhooks arriving together are stored in one transaction (group commit); one that fails
/// must not take the others down with it.
#[tokio::test]
async fn a_failing_event_does_not_fail_the_events_arriving_with_it() {
    let app = spawn_http().await;
    let mut offers = Vec::new();
    for i in 0..10 {
        offers.push(app.register_offer(&format!("1ZGROUP{i}")).await);
    }
    sqlx::query("ALTER TABLE tracking_events ADD CONSTRAINT test_poison CHECK (event_id <> 'evt-poison') NOT VALID")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut bodies = vec![event("evt-poison", "1ZGROUP0", "in_transit")];
    bodies
        .extend((0..10).map(|i| event(&format!("evt-d{i}"), &format!("1ZGROUP{i}"), "delivered")));
    bodies
        .extend((0..29).map(|i| event(&format!("evt-u{i}"), &format!("1ZELSE{i}"), "in_transit")));
    let answers = futures_util::future::join_all(bodies.iter().map(|body| app.webhook(body))).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses[0], 500, "the poisoned event is refused");
    assert!(statuses[1..11].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[11..].iter().all(|s| *s == 202), "{statuses:?}");
    assert_eq!(app.count("tracking_events").await, 39);
    assert_eq!(app.count("jobs").await, 10);
    for offer in offers {
        assert_eq!(app.offer_status(offer).await, "delivered");
    }
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"error\"}")
            .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_rate_limited_per_ip_and_forwarded_for_is_not_trusted_by_default() {
    let url = fresh_database().await;
    let mut cfg = config(&url);
    cfg.http.webhook_rate_per_minute = 3;
    let app = spawn(
        cfg,
        relayer::startup::Role::Http,
        std::sync::Arc::new(relayer::worker::Simulate),
    )
    .await;
    for i in 0..3 {
        let spoof = [("X-Forwarded-For", format!("10.0.0.{i}"))];
        assert_eq!(
            app.webhook_with("{}", &spoof).await.0,
            401,
            "within the limit: refused for its signature"
        );
    }
    let (status, _) = app
        .webhook_with("{}", &[("X-Forwarded-For", "10.9.9.9".into())])
        .await;
    assert_eq!(
        status, 429,
        "a forged X-Forwarded-For does not buy a new bucket"
    );
    assert_eq!(
        app.metric("relayer_webhooks_total{provider=\"tracking\",result=\"rate_limited\"}")
            .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let url = fresh_database().await;
    let mut cfg = config(&url);
    cfg.http.webhook_rate_per_minute = 1;
    cfg.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn(
        cfg,
        relayer::startup::Role::Http,
        std::sync::Arc::new(relayer::worker::Simulate),
    )
    .await;
    let from = |ip: &str| [("X-Forwarded-For", format!("203.0.113.7, {ip}"))];
    assert_eq!(app.webhook_with("{}", &from("198.51.100.1")).await.0, 401);
    assert_eq!(app.webhook_with("{}", &from("198.51.100.2")).await.0, 401);
    assert_eq!(app.webhook_with("{}", &from("198.51.100.1")).await.0, 429);
    // A proxy that appends its own header line: the last line's last hop is the client.
    let two_lines = [
        ("X-Forwarded-For", "198.51.100.1".to_string()),
        ("X-Forwarded-For", "198.51.100.3".to_string()),
    ];
    assert_eq!(
        app.webhook_with("{}", &two_lines).await.0,
        401,
        "a new client, not the first line's"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_event_dated_in_the_future_cannot_freeze_an_offer() {
    let app = spawn_http().await;
    let offer = app.register_offer("1ZFUTURE").await;
    let at = |d: chrono::Duration| (Utc::now() + d).to_rfc3339();
    // Signed, but dated a year ahead: refused, nothing stored.
    let (status, reply) = app
        .webhook(&event_at(
            "e-year",
            "1ZFUTURE",
            "in_transit",
            &at(chrono::Duration::days(365)),
        ))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("ahead of this server's clock"),
        "{reply}"
    );
    assert_eq!(app.count("tracking_events").await, 0);
    // Within the clock-skew bound (a carrier's clock running ahead): accepted...
    let (status, _) = app
        .webhook(&event_at(
            "e-ahead",
            "1ZFUTURE",
            "out_for_delivery",
            &at(chrono::Duration::minutes(9)),
        ))
        .await;
    assert_eq!(status, 200);
    // ...and a genuine delivered dated now, "older" than it, still ends the shipment.
    let (status, reply) = app
        .webhook(&event_at(
            "e-delivered",
            "1ZFUTURE",
            "delivered",
            &at(chrono::Duration::zero()),
        ))
        .await;
    assert_eq!((status, reply["job_enqueued"].clone()), (200, true.into()));
    assert_eq!(app.offer_status(offer).await, "delivered");
    app.stop().await;
}

#[tokio::test]
async fn offers_frozen_or_silent_in_transit_count_as_stuck() {
    let app = spawn_http().await;
    let stuck = |reason: &'static str| {
        let app = &app;
        async move {
            app.metric(&format!("relayer_offers_stuck{{reason=\"{reason}\"}}"))
                .await
        }
    };
    let frozen = app.register_offer("1ZFROZEN").await;
    let silent = app.register_offer("1ZSILENT").await;
    app.register_offer("1ZFINE").await;
    for tracking in ["1ZFROZEN", "1ZSILENT", "1ZFINE"] {
        let body = event_at(
            &format!("{tracking}-1"),
            tracking,
            "in_transit",
            &Utc::now().to_rfc3339(),
        );
        assert_eq!(app.webhook(&body).await.0, 200);
    }
    for reason in ["frozen_in_transit", "silent_in_transit", "settle_overdue"] {
        assert_eq!(stuck(reason).await, 0.0, "{reason}");
    }
    // A status dated a day ahead (written before webhooks refused such dates), and a shipment
    // without news for three weeks.
    sqlx::query("UPDATE offers SET status_at = now() + interval '1 day' WHERE id = $1")
        .bind(frozen)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE offers SET status_at = now() - interval '21 days' WHERE id = $1")
        .bind(silent)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(stuck("frozen_in_transit").await, 1.0);
    assert_eq!(stuck("silent_in_transit").await, 1.0);
    assert_eq!(stuck("settle_overdue").await, 0.0);
    app.stop().await;
}
