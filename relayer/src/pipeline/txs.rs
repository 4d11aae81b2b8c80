//! `chain_txs`: every transaction the relayer signed, recorded (committed) before it is sent, so
//! that after a crash the confirm stage finds it and no second one is signed while it may land.
use std::str::FromStr;

use serde_json::json;
use solana_signature::Signature;
use sqlx::{PgConnection, PgPool};

use crate::{audit, queue::Job};

/// A sent transaction not yet known to have landed, failed or expired, with its job.
pub struct InFlight {
    pub job: Job,
    pub signature: Signature,
    pub last_valid_block_height: u64,
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    job: Job,
    signature: String,
    last_valid_block_height: i64,
}

/// Up to `limit` transactions in flight, oldest first.
pub async fn in_flight(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<InFlight>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT j.*, c.signature, c.last_valid_block_height
         FROM chain_txs c JOIN jobs j ON j.id = c.job_id
         WHERE c.state = 'sent' ORDER BY c.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(InFlight {
                signature: Signature::from_str(&r.signature)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                last_valid_block_height: u64::try_from(r.last_valid_block_height)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                job: r.job,
            })
        })
        .collect()
}

/// How many of the job's transactions may still land.
pub async fn count_in_flight(conn: &mut PgConnection, job_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM chain_txs WHERE job_id = $1 AND state = 'sent'")
        .bind(job_id)
        .fetch_one(conn)
        .await
}

/// Records a signed transaction, with its audit entry, in the caller's (fenced) transaction.
pub async fn record(
    conn: &mut PgConnection,
    job: &Job,
    signature: &Signature,
    last_valid_block_height: u64,
    signer: &str,
    escrow: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO chain_txs (job_id, signature, last_valid_block_height) VALUES ($1, $2, $3)",
    )
    .bind(job.id)
    .bind(signature.to_string())
    .bind(last_valid_block_height as i64)
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        "tx_signed",
        Some(job.offer_id),
        json!({ "job_id": job.id, "action": job.action, "signature": signature.to_string(),
                "signer": signer, "escrow": escrow }),
    )
    .await?;
    Ok(())
}

/// Moves a sent transaction to `state` (confirmed, failed, expired): the offer it was for, or
/// `None` when it was no longer `sent` (another process got there first; the caller does nothing
/// more). The audit entry is `audit_settled`'s, appended last in the caller's transaction.
pub async fn settle(
    conn: &mut PgConnection,
    signature: &Signature,
    state: &str,
    error: Option<&str>,
) -> sqlx::Result<Option<uuid::Uuid>> {
    sqlx::query_scalar(
        "UPDATE chain_txs c SET state = $2, error = $3, updated_at = now() FROM jobs j
         WHERE c.signature = $1 AND c.state = 'sent' AND j.id = c.job_id
         RETURNING j.offer_id",
    )
    .bind(signature.to_string())
    .bind(state)
    .bind(error)
    .fetch_optional(conn)
    .await
}

pub async fn audit_settled(
    conn: &mut PgConnection,
    offer: uuid::Uuid,
    signature: &Signature,
    state: &str,
    error: Option<&str>,
) -> sqlx::Result<()> {
    audit::append(
        conn,
        &format!("tx_{state}"),
        Some(offer),
        json!({ "signature": signature.to_string(), "error": error }),
    )
    .await?;
    Ok(())
}
