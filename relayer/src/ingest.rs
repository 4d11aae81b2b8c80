//! Storing verified tracking events, with group commit (`crate::batch`).
//!
//! Each event is stored with what it implies (the offer's new status, the job to queue, the
//! audit entries) in one transaction. The audit log's order lock is held from the append until
//! the commit's flush, so one event per transaction would make every webhook wait for the
//! previous one's disk flush. Instead, events that arrive while a transaction commits are
//! queued and the next one stores all of them: one lock, one flush, then every caller gets its
//! own answer. An event alone is stored at once, as before. A batch is one statement, the
//! database function `ingest_events()` (migration 0010): one round trip and one commit.
//!
//! A batch is all or nothing. When one fails for a reason other than an unreachable database,
//! its events are stored again one per transaction, so one bad event cannot fail the others.
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    batch::Batcher,
    domain::{offer::OfferStatus, tracking::TrackingEvent},
    error::is_unavailable,
    queue,
};

/// Most events one transaction stores.
const MAX_BATCH: usize = 64;
/// Transactions in flight at once: one collects the next batch while the other commits.
const WRITERS: usize = 2;

/// What storing an event did.
#[derive(Debug)]
pub enum Recorded {
    Accepted {
        event_id: String,
        offer_id: Uuid,
        status: OfferStatus,
        job_enqueued: bool,
    },
    Duplicate {
        event_id: String,
    },
    UnknownTracking {
        event_id: String,
    },
}

impl Recorded {
    pub fn result(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Duplicate { .. } => "duplicate",
            Self::UnknownTracking { .. } => "unknown_tracking",
        }
    }
}

/// Why an event was not stored: nothing of it was.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// Postgres is not reachable right now; the sender should retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Failed(String),
}

impl From<&sqlx::Error> for StoreError {
    fn from(e: &sqlx::Error) -> Self {
        if is_unavailable(e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

/// The handle request handlers store events through.
#[derive(Clone)]
pub struct Ingest {
    writers: Batcher<TrackingEvent, Result<Recorded, StoreError>>,
}

impl Ingest {
    /// Starts the writers; they stop when the last handle is dropped.
    pub fn start(pool: PgPool, max_attempts: i32) -> Self {
        let writers = Batcher::start(WRITERS, MAX_BATCH, move |events| {
            write(pool.clone(), events, max_attempts)
        });
        Self { writers }
    }

    /// Stores the event; returns once it is committed (or not stored at all).
    pub async fn record(&self, event: TrackingEvent) -> Result<Recorded, StoreError> {
        self.writers
            .submit(event)
            .await
            .unwrap_or_else(|| Err(StoreError::Failed("the event writer stopped".into())))
    }
}

/// One batch, answered in the order the events came.
async fn write(
    pool: PgPool,
    events: Vec<TrackingEvent>,
    max_attempts: i32,
) -> Vec<Result<Recorded, StoreError>> {
    // Offers are locked in one order by every writer, so two batches cannot deadlock. The sort
    // is stable: events of one shipment keep their order of arrival.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        (&events[a].carrier, &events[a].tracking_number)
            .cmp(&(&events[b].carrier, &events[b].tracking_number))
    });
    let sorted: Vec<&TrackingEvent> = order.iter().map(|&i| &events[i]).collect();
    let results: Vec<Result<Recorded, StoreError>> = match store(&pool, &sorted, max_attempts).await
    {
        Ok(recorded) => recorded.into_iter().map(Ok).collect(),
        Err(e) if sorted.len() == 1 || is_unavailable(&e) => {
            let e = StoreError::from(&e);
            sorted.iter().map(|_| Err(e.clone())).collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, events = sorted.len(), "a batch of tracking events failed; storing them one by one");
            let mut results = Vec::with_capacity(sorted.len());
            for event in &sorted {
                results.push(
                    store(&pool, &[event], max_attempts)
                        .await
                        .map(|mut one| one.remove(0))
                        .map_err(|e| StoreError::from(&e)),
                );
            }
            results
        }
    };
    // Back to the order of arrival, which is the order of the callers.
    let mut answers: Vec<_> = order.into_iter().zip(results).collect();
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, result)| result).collect()
}

/// Stores `events` in one transaction, in order: one call of `ingest_events()` (migration
/// 0010), which locks each offer, inserts the event, moves the status, queues the job and
/// appends the audit entries, and commits as it returns. One round trip per batch.
async fn store(
    pool: &PgPool,
    events: &[&TrackingEvent],
    max_attempts: i32,
) -> sqlx::Result<Vec<Recorded>> {
    // What the audit entries quote of each event, JSON-encoded here as canonical_json does.
    let (mut event_ids, mut carriers, mut occurred) = (vec![], vec![], vec![]);
    for e in events {
        event_ids.push(json_text(&e.event_id)?);
        carriers.push(json_text(&e.carrier)?);
        occurred.push(json_text(&e.occurred_at)?);
    }
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT outcome, offer, offer_status, job_enqueued
         FROM ingest_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ORDER BY n",
    )
    .bind(
        events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.carrier.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.tracking_number.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.status.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.payload.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(event_ids)
    .bind(carriers)
    .bind(occurred)
    .bind(max_attempts)
    .bind(queue::CHANNEL)
    .fetch_all(pool)
    .await?;
    crate::failpoint::hit("after_event_commit");
    if rows.len() != events.len() {
        return Err(sqlx::Error::Protocol(format!(
            "ingest_events answered {} rows for {} events",
            rows.len(),
            events.len()
        )));
    }
    events
        .iter()
        .zip(rows)
        .map(|(event, stored)| {
            let event_id = event.event_id.clone();
            let job_enqueued = stored.job_enqueued;
            let recorded = match (stored.outcome.as_str(), stored.offer, stored.offer_status) {
                ("duplicate", ..) => Recorded::Duplicate { event_id },
                ("unknown_tracking", ..) => {
                    tracing::info!(%event_id, "event for an unknown tracking number stored");
                    Recorded::UnknownTracking { event_id }
                }
                ("accepted", Some(offer_id), Some(status)) => {
                    let status: OfferStatus = status.parse().map_err(sqlx::Error::Protocol)?;
                    tracing::info!(%event_id, %offer_id, status = status.as_str(), job_enqueued, "tracking event recorded");
                    Recorded::Accepted {
                        event_id,
                        offer_id,
                        status,
                        job_enqueued,
                    }
                }
                (other, ..) => {
                    return Err(sqlx::Error::Protocol(format!(
                        "ingest_events answered {other:?} for event {event_id}"
                    )))
                }
            };
            Ok(recorded)
        })
        .collect()
}

/// What `ingest_events()` answers for one event.
#[derive(sqlx::FromRow)]
struct Stored {
    /// `accepted`, `duplicate` or `unknown_tracking`.
    outcome: String,
    offer: Option<Uuid>,
    offer_status: Option<String>,
    job_enqueued: bool,
}

/// `value` as JSON text, exactly as `audit::canonical_json` writes a string.
fn json_text<T: Serialize>(value: &T) -> sqlx::Result<String> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// A stored tracking event, as the operator API shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: String,
    pub status: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub payload: Value,
}

/// The offer's tracking events, in the order they happened.
pub async fn events_of(pool: &PgPool, offer: Uuid) -> sqlx::Result<Vec<StoredEvent>> {
    sqlx::query_as(
        "SELECT event_id, status, occurred_at, received_at, payload FROM tracking_events
         WHERE offer_id = $1 ORDER BY occurred_at, id",
    )
    .bind(offer)
    .fetch_all(pool)
    .await
}
