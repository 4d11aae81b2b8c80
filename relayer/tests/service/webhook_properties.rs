//! The offer state machine against the real relayer and Postgres: random carrier histories (any
//! order, late and repeated events) always leave an offer in a valid status with at most one
//! job, and that job agrees with the status; the first end to arrive (delivered or returned) is
//! where the offer ends, whatever the dates.

use crate::support::*;
use proptest::{prelude::*, test_runner::TestRunner};

const STATUSES: [&str; 5] = [
    "in_transit",
    "out_for_delivery",
    "exception",
    "delivered",
    "returned",
];

#[derive(Clone, Debug)]
struct Event {
    status: usize,
    /// Minutes after the shipment's start: events may arrive out of order.
    minute: u32,
    /// Send the previous event again instead (a carrier's retry).
    redeliver: bool,
}

fn history() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        (0..STATUSES.len(), 0u32..120, proptest::bool::weighted(0.2)).prop_map(
            |(status, minute, redeliver)| Event {
                status,
                minute,
                redeliver,
            },
        ),
        1..14,
    )
}

#[test]
fn any_carrier_history_leaves_one_consistent_outcome() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_http());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(24));
    runner
        .run(&history(), |events| {
            // Shrinking replays cases: each run gets its own shipment.
            let tracking = format!("1ZP{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            rt.block_on(async {
                let offer = app.register_offer(&tracking).await;
                let mut last: Option<String> = None;
                let mut distinct = 0;
                let mut first_end: Option<&str> = None;
                for (i, e) in events.iter().enumerate() {
                    let body = match (&last, e.redeliver) {
                        (Some(previous), true) => previous.clone(),
                        _ => {
                            distinct += 1;
                            if STATUSES[e.status] == "delivered" || STATUSES[e.status] == "returned"
                            {
                                first_end = first_end.or(Some(STATUSES[e.status]));
                            }
                            event_at(
                                &format!("{tracking}-{i}"),
                                &tracking,
                                STATUSES[e.status],
                                &format!(
                                    "2026-11-26T{:02}:{:02}:00Z",
                                    8 + e.minute / 60,
                                    e.minute % 60
                                ),
                            )
                        }
                    };
                    let (code, reply) = app.webhook(&body).await;
                    assert_eq!(code, 200, "{reply}");
                    last = Some(body);
                }
                let status = app.offer_status(offer).await;
                let jobs: Vec<String> =
                    sqlx::query_scalar("SELECT action FROM jobs WHERE offer_id = $1")
                        .bind(offer)
                        .fetch_all(&app.pool)
                        .await
                        .unwrap();
                let stored: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM tracking_events WHERE offer_id = $1")
                        .bind(offer)
                        .fetch_one(&app.pool)
                        .await
                        .unwrap();
                let expected: &[&str] = match status.as_str() {
                    "delivered" => &["approve_release"],
                    "returned" => &["approve_refund"],
                    "awaiting_shipment" | "in_transit" | "out_for_delivery" | "exception" => &[],
                    other => panic!("invalid status {other}"),
                };
                prop_assert_eq!(jobs.as_slice(), expected, "status {}", status);
                prop_assert_eq!(stored, distinct, "each distinct event stored once");
                if let Some(end) = first_end {
                    prop_assert_eq!(status.as_str(), end, "the first end to arrive");
                }
                Ok(())
            })
        })
        .unwrap();
    rt.block_on(app.stop());
}

/// The database applies the state machine itself (`ingest_events()`, migration 0010): on every
/// offer status, every event status (the providers' `unrecognised` too) and every order of
/// dates, it gives the domain model's answer (`OfferStatus::after`), and the audit entries it
/// writes are canonical JSON that hash as `relayer audit verify` recomputes.
#[tokio::test]
async fn the_database_moves_an_offer_exactly_as_the_domain_model() {
    use chrono::{DateTime, Duration, Utc};
    use relayer::{
        audit,
        domain::{offer::OfferStatus, tracking::TrackingEvent, tracking::TrackingStatus},
        ingest::{Ingest, Recorded},
    };
    use serde_json::{json, Value};
    use sqlx::PgPool;
    use uuid::Uuid;

    let pool = PgPool::connect(&fresh_database().await).await.unwrap();
    let ingest = Ingest::start(pool.clone(), 5);
    let at: DateTime<Utc> = "2026-11-26T08:00:00.123456Z".parse().unwrap();
    let events = [
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::Exception,
        TrackingStatus::Delivered,
        TrackingStatus::Returned,
        TrackingStatus::Unrecognised,
    ];
    let dates = [
        None,
        Some(at - Duration::minutes(1)),
        Some(at),
        Some(at + Duration::minutes(1)),
    ];
    let mut cases = 0;
    for status in OfferStatus::ALL {
        for event in events {
            for status_at in dates {
                cases += 1;
                let offer = Uuid::new_v4();
                let tracking = format!("MODEL{cases}");
                sqlx::query(
                    "INSERT INTO offers (id, escrow, tracking_number, carrier, status, status_at,
                                         buyer, seller, mint, amount)
                     VALUES ($1, $2, $3, 'ups', $4, $5, 'b', 's', 'm', 1)",
                )
                .bind(offer)
                .bind(format!("escrow{cases}"))
                .bind(&tracking)
                .bind(status.as_str())
                .bind(status_at)
                .execute(&pool)
                .await
                .unwrap();
                let recorded = ingest
                    .record(TrackingEvent {
                        // A sender's id with characters JSON must escape.
                        event_id: format!("evt \"{cases}\" \\ é"),
                        tracking_number: tracking,
                        carrier: "ups".into(),
                        status: event,
                        occurred_at: at,
                        payload: json!({ "case": cases }),
                    })
                    .await
                    .unwrap();
                let expected = status.after(event, at, status_at);
                let what = format!("{status:?} at {status_at:?}, then {event:?}");
                let Recorded::Accepted {
                    status: now,
                    job_enqueued,
                    ..
                } = recorded
                else {
                    panic!("{what}: {recorded:?}");
                };
                assert_eq!(now, expected.map_or(status, |(next, _)| next), "{what}");
                let job = expected.and_then(|(_, job)| job).map(|job| job.as_str());
                assert_eq!(job_enqueued, job.is_some(), "{what}");
                let jobs: Vec<String> =
                    sqlx::query_scalar("SELECT action FROM jobs WHERE offer_id = $1")
                        .bind(offer)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                assert_eq!(jobs, job.into_iter().collect::<Vec<_>>(), "{what}");
            }
        }
    }
    assert_eq!(cases, 6 * 6 * 4);

    let entries = audit::entries_after(&pool, 0, 10_000).await.unwrap();
    assert!(entries.len() > cases, "an entry per event, and the moves");
    let mut prev = vec![0u8; 32];
    for e in &entries {
        let parsed: Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(e.payload, audit::canonical_json(&parsed), "entry {}", e.seq);
        assert_eq!(e.prev_hash, prev, "entry {}", e.seq);
        let hash = audit::entry_hash(e.seq, &e.at, &e.kind, e.offer_id, &e.payload, &e.prev_hash);
        assert_eq!(e.hash, hash, "entry {}", e.seq);
        prev = e.hash.clone();
    }
    let first: Value = serde_json::from_str(&entries[0].payload).unwrap();
    assert_eq!(first["event_id"], "evt \"1\" \\ é");
    assert_eq!(first["occurred_at"], "2026-11-26T08:00:00.123456Z");
}
