//! Checks an audit log export offline: the hash chain, then every checkpoint against the
//! relayer's public keys. Reports the first thing wrong.
//!
//! The relayer's key can be rotated: `keys` lists every key it has used, oldest first. A
//! checkpoint may be signed by the next key only after a `signer_rotated` entry from the current
//! key to it, written after the current key's last checkpoint (the relayer appends one when it
//! starts with a new key); an earlier key never signs again.
use anchor_lang::prelude::Pubkey;

use super::{checkpoint_message, entry_hash, Checkpoint, Entry, Record};

#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub entries: usize,
    pub checkpoints: usize,
    /// The largest tree size a valid checkpoint vouches for (0: none).
    pub signed_size: i64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("entry at position {position}: expected seq {expected}, found {found}: entries are missing or out of order")]
    Gap {
        position: usize,
        expected: i64,
        found: i64,
    },
    #[error("entry {seq}: prev_hash does not link to entry {}: the chain is broken there", seq - 1)]
    BrokenLink { seq: i64 },
    #[error("entry {seq}: its hash does not match its contents: it was altered")]
    Altered { seq: i64 },
    #[error("checkpoint at size {tree_size}: the log holds only {entries} entries: entries were removed")]
    BeyondLog { tree_size: i64, entries: usize },
    #[error("checkpoint at size {tree_size}: entry {tree_size} is not the head it signed: the log was rewritten")]
    HeadMismatch { tree_size: i64 },
    #[error("checkpoint at size {tree_size}: signed by {signer}, not the relayer key {expected}")]
    WrongSigner {
        tree_size: i64,
        signer: String,
        expected: Pubkey,
    },
    #[error("checkpoint at size {tree_size}: signed by {signer}, but no signer_rotated entry from {from} to it precedes it: an unannounced key")]
    UnannouncedRotation {
        tree_size: i64,
        signer: Pubkey,
        from: Pubkey,
    },
    #[error("checkpoint at size {tree_size}: signed by {signer}, a key rotated out before it")]
    RetiredKey { tree_size: i64, signer: Pubkey },
    #[error("checkpoint at size {tree_size}: the signature does not verify against {expected}")]
    BadSignature { tree_size: i64, expected: Pubkey },
}

/// The `signer_rotated` entries: (seq, from, to).
fn rotations(entries: &[&Entry]) -> Vec<(i64, String, String)> {
    entries
        .iter()
        .filter(|e| e.kind == "signer_rotated")
        .filter_map(|e| {
            let p: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
            Some((
                e.seq,
                p["from"].as_str()?.to_owned(),
                p["to"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

pub fn verify(records: &[Record], keys: &[Pubkey]) -> Result<Report, Finding> {
    let first = keys.first().copied().unwrap_or_default();
    let entries: Vec<&Entry> = records
        .iter()
        .filter_map(|r| match r {
            Record::Entry(e) => Some(e),
            Record::Checkpoint(_) => None,
        })
        .collect();
    let checkpoints: Vec<&Checkpoint> = records
        .iter()
        .filter_map(|r| match r {
            Record::Checkpoint(c) => Some(c),
            Record::Entry(_) => None,
        })
        .collect();

    let mut prev = vec![0u8; 32];
    for (i, e) in entries.iter().enumerate() {
        let expected = i as i64 + 1;
        if e.seq != expected {
            return Err(Finding::Gap {
                position: i + 1,
                expected,
                found: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(Finding::BrokenLink { seq: e.seq });
        }
        if entry_hash(e.seq, &e.at, &e.kind, e.offer_id, &e.payload, &e.prev_hash) != e.hash {
            return Err(Finding::Altered { seq: e.seq });
        }
        prev.clone_from(&e.hash);
    }

    let rotations = rotations(&entries);
    // The key in force, and the tree size of its last checkpoint.
    let (mut current, mut last_signed) = (0usize, 0i64);
    let mut signed_size = 0;
    let mut checkpoints = checkpoints;
    checkpoints.sort_by_key(|c| c.tree_size);
    for c in &checkpoints {
        let Some(head) = usize::try_from(c.tree_size)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| entries.get(i))
        else {
            return Err(Finding::BeyondLog {
                tree_size: c.tree_size,
                entries: entries.len(),
            });
        };
        let Some(k) = keys.iter().position(|key| c.signer == key.to_string()) else {
            return Err(Finding::WrongSigner {
                tree_size: c.tree_size,
                signer: c.signer.clone(),
                expected: keys.get(current).copied().unwrap_or(first),
            });
        };
        if k < current {
            return Err(Finding::RetiredKey {
                tree_size: c.tree_size,
                signer: keys[k],
            });
        }
        // Each step to a later key needs its announcement, after the last checkpoint of the key
        // it replaces and covered by this checkpoint.
        while current < k {
            let (from, to) = (keys[current].to_string(), keys[current + 1].to_string());
            let announced = rotations.iter().any(|(seq, f, t)| {
                *f == from && *t == to && *seq > last_signed && *seq <= c.tree_size
            });
            if !announced {
                return Err(Finding::UnannouncedRotation {
                    tree_size: c.tree_size,
                    signer: keys[current + 1],
                    from: keys[current],
                });
            }
            current += 1;
        }
        let relayer = &keys[k];
        let signature: Option<[u8; 64]> = c.signature.as_slice().try_into().ok();
        let message = checkpoint_message(c.tree_size, &c.head_hash, &c.signed_at);
        if !signature.is_some_and(|s| crate::signer::verify(relayer, &message, &s)) {
            return Err(Finding::BadSignature {
                tree_size: c.tree_size,
                expected: *relayer,
            });
        }
        last_signed = c.tree_size;
        if head.hash != c.head_hash {
            return Err(Finding::HeadMismatch {
                tree_size: c.tree_size,
            });
        }
        signed_size = signed_size.max(c.tree_size);
    }
    Ok(Report {
        entries: entries.len(),
        checkpoints: checkpoints.len(),
        signed_size,
    })
}

/// Parses an export: one JSON record per line.
pub fn parse_export(text: &str) -> anyhow::Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("line {}: not an audit record: {e}", i + 1))
        })
        .collect()
}
