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
//! Appends happen inside the transaction of the change they record, as its last statements,
//! under a transaction-scoped advisory lock that orders them: a transaction holding that lock
//! waits for nothing else, so it cannot deadlock, and `seq` has no gaps because a rolled-back
//! transaction takes its entries with it.
pub mod verify;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::signer::TxSigner;

/// `pg_advisory_xact_lock` key that orders appends ("audit" in ASCII).
const APPEND_LOCK: i64 = 0x0061_7564_6974;
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

/// Appends one entry in the caller's transaction; call it last, after every row lock the
/// transaction needs (see the module docs).
pub async fn append(
    conn: &mut PgConnection,
    kind: &str,
    offer_id: Option<Uuid>,
    payload: Value,
) -> sqlx::Result<i64> {
    append_all(conn, offer_id, vec![(kind, payload)]).await
}

/// Appends entries of one offer in order, under one lock, one read of the head and one insert:
/// a webhook records up to three. Returns the last `seq`.
pub async fn append_all(
    conn: &mut PgConnection,
    offer_id: Option<Uuid>,
    entries: Vec<(&str, Value)>,
) -> sqlx::Result<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *conn)
        .await?;
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (mut seq, mut prev_hash) = last.unwrap_or((0, vec![0; 32]));
    // Postgres keeps microseconds: hash what will be read back.
    let at = Utc::now().trunc_subsecs(6);
    let (mut seqs, mut kinds, mut payloads, mut prevs, mut hashes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (kind, payload) in entries {
        seq += 1;
        let payload = canonical_json(&payload);
        let hash = entry_hash(seq, &at, kind, offer_id, &payload, &prev_hash);
        seqs.push(seq);
        kinds.push(kind.to_owned());
        payloads.push(payload);
        prevs.push(std::mem::replace(&mut prev_hash, hash.clone()));
        hashes.push(hash);
    }
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, offer_id, payload, prev_hash, hash)
         SELECT seq, $2, kind, $3, payload, prev_hash, hash
         FROM unnest($1::bigint[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])
              AS e (seq, kind, payload, prev_hash, hash)",
    )
    .bind(&seqs)
    .bind(at)
    .bind(offer_id)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&prevs)
    .bind(&hashes)
    .execute(&mut *conn)
    .await?;
    Ok(seq)
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
