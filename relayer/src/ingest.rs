//! Storing verified tracking events, with group commit (`crate::batch`).
//!
//! Each event is stored with what it implies (the offer's new status, the job to queue, the
//! audit entries) in one transaction. The audit log's order lock is held from the append until
//! the commit's flush, so one event per transaction would make every webhook wait for the
//! previous one's disk flush. Instead, events that arrive while a transaction commits are
//! queued and the next one stores all of them: one lock, one flush, then every caller gets its
//! own answer. An event alone is stored at once, as before.
//!
//! A batch is all or nothing. When one fails for a reason other than an unreachable database,
//! its events are stored again one per transaction, so one bad event cannot fail the others.
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    audit::{self, NewEntry},
    batch::Batcher,
    domain::{offer::OfferStatus, tracking::TrackingEvent},
    error::is_unavailable,
    offers, queue,
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

/// Stores `events` in one transaction, in order.
async fn store(
    pool: &PgPool,
    events: &[&TrackingEvent],
    max_attempts: i32,
) -> sqlx::Result<Vec<Recorded>> {
    let mut tx = pool.begin().await?;
    let mut entries = Vec::new();
    let mut recorded = Vec::with_capacity(events.len());
    for event in events {
        recorded.push(store_one(&mut tx, event, max_attempts, &mut entries).await?);
    }
    // Last, after every offer lock: the audit log's order lock is held until the commit.
    if !entries.is_empty() {
        audit::append_all(&mut tx, entries).await?;
    }
    tx.commit().await?;
    crate::failpoint::hit("after_event_commit");
    for r in &recorded {
        match r {
            Recorded::Accepted {
                event_id,
                offer_id,
                status,
                job_enqueued,
            } => {
                tracing::info!(%event_id, %offer_id, status = status.as_str(), job_enqueued, "tracking event recorded")
            }
            Recorded::UnknownTracking { event_id } => {
                tracing::info!(%event_id, "event for an unknown tracking number stored")
            }
            Recorded::Duplicate { .. } => {}
        }
    }
    Ok(recorded)
}

/// The event's rows, and its audit entries in `entries`.
async fn store_one(
    tx: &mut PgConnection,
    event: &TrackingEvent,
    max_attempts: i32,
    entries: &mut Vec<NewEntry>,
) -> sqlx::Result<Recorded> {
    // Lock the offer first, then insert: every webhook transaction takes locks in this order.
    let offer = offers::lock_by_shipment(tx, &event.carrier, &event.tracking_number).await?;
    let inserted = sqlx::query(
        "INSERT INTO tracking_events (event_id, offer_id, tracking_number, carrier, status, occurred_at, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.event_id)
    .bind(offer.as_ref().map(|o| o.id))
    .bind(&event.tracking_number)
    .bind(&event.carrier)
    .bind(event.status.as_str())
    .bind(event.occurred_at)
    .bind(&event.payload)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let event_id = event.event_id.clone();
    if !inserted {
        return Ok(Recorded::Duplicate { event_id });
    }
    let offer_id = offer.as_ref().map(|o| o.id);
    entries.push(NewEntry::new(
        "tracking_event",
        offer_id,
        json!({ "event_id": event.event_id, "carrier": event.carrier,
                "status": event.status.as_str(), "occurred_at": event.occurred_at, "offer_id": offer_id }),
    ));
    let Some(offer) = offer else {
        return Ok(Recorded::UnknownTracking { event_id });
    };
    let (offer_id, mut current) = (offer.id, offer.status);
    let mut job_enqueued = false;
    // Progress in transit follows the carrier's dates, so a late event does not move the status
    // back; an end (delivered, returned) applies whatever its date: a timestamp, right or
    // wrong, never keeps a shipment from ending.
    let in_order =
        event.status.is_final() || offer.status_at.is_none_or(|at| event.occurred_at >= at);
    if let Some((next, job)) = current.apply(event.status).filter(|_| in_order) {
        offers::set_status(tx, offer_id, next, event.occurred_at).await?;
        entries.push(NewEntry::new(
            "offer_status",
            Some(offer_id),
            json!({ "offer_id": offer_id, "from": current.as_str(), "to": next.as_str() }),
        ));
        if let Some(action) = job {
            job_enqueued = queue::enqueue(&mut *tx, offer_id, action, max_attempts).await?;
            if job_enqueued {
                entries.push(NewEntry::new(
                    "job_enqueued",
                    Some(offer_id),
                    json!({ "offer_id": offer_id, "action": action.as_str() }),
                ));
            }
        }
        current = next;
    }
    Ok(Recorded::Accepted {
        event_id,
        offer_id,
        status: current,
        job_enqueued,
    })
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
