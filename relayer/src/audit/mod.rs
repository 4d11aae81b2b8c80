//! The audit log: every state change the relayer makes, hash-chained, append-only, with
//! checkpoints signed by the relayer's KMS key so anyone holding its public key can check it.
//!
//! Entry `n` hashes its own fields and entry `n-1`'s hash:
//!
//! ```text
//! hash = sha256({"at":…,"kind":…,"offer_id":…,"payload":…,"prev_hash":"<hex>","seq":n})
//! ```
//!
//! as canonical JSON (keys sorted, no whitespace; `at` in UTC with microseconds), with
//! `prev_hash` of entry 1 all zeros. An edited entry no longer matches its hash, a removed one
//! leaves a gap in `seq`, and reordered ones break the links. A checkpoint signs
//! `"\xffsolana offchain" || "openclaw-escrow audit checkpoint\n<tree_size>\n<head hash hex>\n<signed_at>"`:
//! the off-chain prefix can never begin a Solana transaction, so the key cannot be tricked into
//! signing one this way.
//!
//! Appends happen inside the transaction of the change they record, as its last statement. The
//! database chains them (migration 0005's trigger, one round trip per append) under a
//! transaction-scoped advisory lock that orders them: a transaction holding that lock waits for
//! nothing else, so it cannot deadlock, and `seq` has no gaps because a rolled-back transaction
//! takes its entries with it. This module's `entry_hash` is the independent check of what the
//! database wrote: `relayer audit verify` recomputes every hash with it.
pub mod operators;
pub mod verify;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use anchor_lang::prelude::Pubkey;

use crate::signer::TxSigner;

/// Solana's off-chain message signing domain: never the first bytes of a transaction.
const OFFCHAIN_DOMAIN: &[u8] = b"\xffsolana offchain";

/// One record of a state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub offer_id: Option<Uuid>,
    /// Canonical JSON text.
    pub payload: String,
    #[serde(with = "hex::serde")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub hash: Vec<u8>,
}

/// A signed statement: "the log had `tree_size` entries and this head".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Checkpoint {
    pub tree_size: i64,
    #[serde(with = "hex::serde")]
    pub head_hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub signer: String,
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
}

/// One line of an export: an entry or a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Entry(Entry),
    Checkpoint(Checkpoint),
}

/// Keys sorted, no whitespace: the one text a JSON value hashes as.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        scalar => scalar.to_string(),
    }
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The hash an entry with these fields must carry.
pub fn entry_hash(
    seq: i64,
    at: &DateTime<Utc>,
    kind: &str,
    offer_id: Option<Uuid>,
    payload: &str,
    prev_hash: &[u8],
) -> Vec<u8> {
    let payload: Value = serde_json::from_str(payload).unwrap_or(Value::String(payload.into()));
    let leaf = serde_json::json!({
        "at": timestamp(at), "kind": kind, "offer_id": offer_id, "payload": payload,
        "prev_hash": hex::encode(prev_hash), "seq": seq,
    });
    Sha256::digest(canonical_json(&leaf).as_bytes()).to_vec()
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(tree_size: i64, head_hash: &[u8], signed_at: &DateTime<Utc>) -> Vec<u8> {
    let mut m = OFFCHAIN_DOMAIN.to_vec();
    m.extend_from_slice(
        format!(
            "openclaw-escrow audit checkpoint\n{tree_size}\n{}\n{}",
            hex::encode(head_hash),
            timestamp(signed_at)
        )
        .as_bytes(),
    );
    m
}

/// An entry to append: what happened, to which offer.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub kind: String,
    pub offer_id: Option<Uuid>,
    pub payload: Value,
}

impl NewEntry {
    pub fn new(kind: &str, offer_id: Option<Uuid>, payload: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            offer_id,
            payload,
        }
    }
}

/// Appends one entry in the caller's transaction; call it last, after every row lock the
/// transaction needs (see the module docs).
pub async fn append(
    conn: &mut PgConnection,
    kind: &str,
    offer_id: Option<Uuid>,
    payload: Value,
) -> sqlx::Result<i64> {
    append_all(conn, vec![NewEntry::new(kind, offer_id, payload)]).await
}

/// Appends entries in order in one statement, like `append`: a batch of webhooks records all
/// of theirs at once. The database numbers, links and hashes them (`audit_chain()`, migration
/// 0005). Returns the last `seq`.
pub async fn append_all(conn: &mut PgConnection, entries: Vec<NewEntry>) -> sqlx::Result<i64> {
    let (mut kinds, mut offers, mut payloads) = (vec![], vec![], vec![]);
    for entry in entries {
        kinds.push(entry.kind);
        offers.push(entry.offer_id);
        payloads.push(canonical_json(&entry.payload));
    }
    let seqs: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO audit_log (kind, offer_id, payload)
         SELECT kind, offer_id, payload
         FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS e (kind, offer_id, payload, n)
         ORDER BY n
         RETURNING seq",
    )
    .bind(&kinds)
    .bind(&offers)
    .bind(&payloads)
    .fetch_all(&mut *conn)
    .await?;
    Ok(seqs.into_iter().max().unwrap_or_default())
}

/// Appends an entry in a transaction of its own.
pub async fn append_now(
    pool: &PgPool,
    kind: &str,
    offer_id: Option<Uuid>,
    payload: Value,
) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let seq = append(&mut tx, kind, offer_id, payload).await?;
    tx.commit().await?;
    Ok(seq)
}

pub async fn entries_after(pool: &PgPool, after: i64, limit: i64) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn entries_of_offer(pool: &PgPool, offer: Uuid) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as("SELECT * FROM audit_log WHERE offer_id = $1 ORDER BY seq")
        .bind(offer)
        .fetch_all(pool)
        .await
}

pub async fn checkpoints(pool: &PgPool) -> sqlx::Result<Vec<Checkpoint>> {
    sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY tree_size")
        .fetch_all(pool)
        .await
}

/// The first checkpoint of a log holding at least `seq` entries.
pub async fn checkpoint_covering(pool: &PgPool, seq: i64) -> sqlx::Result<Option<Checkpoint>> {
    sqlx::query_as(
        "SELECT * FROM audit_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT 1",
    )
    .bind(seq)
    .fetch_optional(pool)
    .await
}

/// Records a new relayer key in the log when `signer` is not the key of the last checkpoint, so
/// that `relayer audit verify` accepts the new key's checkpoints (see `verify`). Returns whether
/// it did.
pub async fn announce_signer(pool: &PgPool, signer: &Pubkey) -> sqlx::Result<bool> {
    let last: Option<(String, i64)> = sqlx::query_as(
        "SELECT signer, tree_size FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let signer = signer.to_string();
    // Announced already, by an earlier start that has not signed a checkpoint yet.
    let pending: Option<String> = match &last {
        Some((_, signed)) => sqlx::query_scalar(
            "SELECT payload::jsonb->>'to' FROM audit_log
             WHERE kind = 'signer_rotated' AND seq > $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(signed)
        .fetch_optional(pool)
        .await?
        .flatten(),
        None => None,
    };
    match last {
        Some((from, _)) if from != signer && pending.as_deref() != Some(signer.as_str()) => {
            append_now(
                pool,
                "signer_rotated",
                None,
                serde_json::json!({ "from": from, "to": signer }),
            )
            .await?;
            tracing::info!(%from, to = %signer, "the relayer's key changed: rotation recorded in the audit log");
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Signs the current head if the log grew since the last checkpoint; returns the new one.
pub async fn checkpoint(
    pool: &PgPool,
    signer: &dyn TxSigner,
) -> anyhow::Result<Option<Checkpoint>> {
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    let Some((tree_size, head_hash)) = head else {
        return Ok(None);
    };
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT tree_size, head_hash FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    if let Some((signed_size, signed_head)) = &last {
        if *signed_size >= tree_size {
            return Ok(None);
        }
        // Sign only a log that extends what was signed before: a rewritten history must not
        // get a fresh signature.
        let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(signed_size)
            .fetch_optional(pool)
            .await?;
        if hash.as_ref() != Some(signed_head) {
            anyhow::bail!(
                "the audit log no longer extends the checkpoint at size {signed_size}: it was \
                 rewritten; not signing (run relayer audit verify and investigate)"
            );
        }
    }
    let signed_at = Utc::now().trunc_subsecs(6);
    let signature = signer
        .sign(&checkpoint_message(tree_size, &head_hash, &signed_at))
        .await?;
    let checkpoint = Checkpoint {
        tree_size,
        head_hash,
        signed_at,
        signer: signer.pubkey().to_string(),
        signature: signature.to_vec(),
    };
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, head_hash, signed_at, signer, signature)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(checkpoint.tree_size)
    .bind(&checkpoint.head_hash)
    .bind(checkpoint.signed_at)
    .bind(&checkpoint.signer)
    .bind(&checkpoint.signature)
    .execute(pool)
    .await?;
    Ok(Some(checkpoint))
}

/// Checkpoints every `interval` until `shutdown`; failures are logged and retried next time.
pub async fn run_checkpoints(
    pool: PgPool,
    signer: std::sync::Arc<dyn TxSigner>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
        match checkpoint(&pool, &*signer).await {
            Ok(Some(c)) => tracing::info!(tree_size = c.tree_size, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed; retrying next interval"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({ "b": [ { "z": 1, "a": "x" } ], "a": null, "c": "é\"" });
        assert_eq!(
            canonical_json(&v),
            r#"{"a":null,"b":[{"a":"x","z":1}],"c":"é\""}"#
        );
    }

    #[test]
    fn the_hash_covers_every_field() {
        let at = Utc::now().trunc_subsecs(6);
        let base = entry_hash(2, &at, "k", None, r#"{"a":1}"#, &[0; 32]);
        assert_ne!(base, entry_hash(3, &at, "k", None, r#"{"a":1}"#, &[0; 32]));
        assert_ne!(base, entry_hash(2, &at, "j", None, r#"{"a":1}"#, &[0; 32]));
        assert_ne!(
            base,
            entry_hash(2, &at, "k", Some(Uuid::nil()), r#"{"a":1}"#, &[0; 32])
        );
        assert_ne!(base, entry_hash(2, &at, "k", None, r#"{"a":2}"#, &[0; 32]));
        assert_ne!(base, entry_hash(2, &at, "k", None, r#"{"a":1}"#, &[1; 32]));
        let later = at + chrono::Duration::microseconds(1);
        assert_ne!(
            base,
            entry_hash(2, &later, "k", None, r#"{"a":1}"#, &[0; 32])
        );
    }
}
