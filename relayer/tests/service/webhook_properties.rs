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
