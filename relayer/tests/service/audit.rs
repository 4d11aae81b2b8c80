//! The audit log: every state change appended and hash-chained, the database refusing edits,
//! checkpoints signed by a real OpenBao key, and `relayer audit verify` catching each kind of
//! tampering.

use std::sync::Arc;

use crate::support::{openbao::OpenBao, *};
use anchor_lang::prelude::Pubkey;
use relayer::{
    audit::{
        self, entry_hash,
        verify::{verify, Finding},
        Checkpoint, Entry, Record,
    },
    signer::TxSigner,
    startup::Role,
    worker::Simulate,
};
use serde_json::{json, Value};

async fn signer(bao: &OpenBao, key: &str) -> Arc<dyn TxSigner> {
    bao.signer(key).await
}

/// A relayer that has registered an offer, taken its shipment to delivered, run the job, and
/// signed a checkpoint; returns the app, the signer and the log as the public endpoints serve it.
async fn history(bao: &OpenBao) -> (TestApp, Arc<dyn TxSigner>, Vec<Record>) {
    let app = spawn(
        config(&fresh_database().await),
        Role::All,
        Arc::new(Simulate),
    )
    .await;
    let key = signer(bao, "relayer").await;
    let offer = app.register_offer("1ZAUDIT").await;
    assert_eq!(
        app.webhook(&event("a-1", "1ZAUDIT", "in_transit")).await.0,
        200
    );
    assert_eq!(
        app.webhook(&event("a-0", "1ZUNKNOWN", "in_transit"))
            .await
            .0,
        202
    );
    for _redelivered in 0..2 {
        assert_eq!(
            app.webhook(&event("a-2", "1ZAUDIT", "delivered")).await.0,
            200
        );
    }
    eventually("the approval job ran", || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM jobs WHERE offer_id = $1")
            .bind(offer)
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .as_deref()
            == Some("succeeded")
    })
    .await;
    audit::checkpoint(&app.pool, &*key)
        .await
        .unwrap()
        .expect("a new checkpoint");
    let records = fetch(&app).await;
    (app, key, records)
}

async fn fetch(app: &TestApp) -> Vec<Record> {
    let entries: Vec<Entry> = get(app, "/v1/audit/entries").await;
    let checkpoints: Vec<Checkpoint> = get(app, "/v1/audit/checkpoints").await;
    entries
        .into_iter()
        .map(Record::Entry)
        .chain(checkpoints.into_iter().map(Record::Checkpoint))
        .collect()
}

async fn get<T: serde::de::DeserializeOwned>(app: &TestApp, path: &str) -> T {
    app.http
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn entry(records: &mut [Record], seq: i64) -> &mut Entry {
    records
        .iter_mut()
        .find_map(|r| match r {
            Record::Entry(e) if e.seq == seq => Some(e),
            _ => None,
        })
        .unwrap()
}

fn checkpoint(records: &mut [Record]) -> &mut Checkpoint {
    records
        .iter_mut()
        .find_map(|r| match r {
            Record::Checkpoint(c) => Some(c),
            _ => None,
        })
        .unwrap()
}

/// `relayer audit verify --url|--file <source> --pubkey <key>…`: (success, output).
async fn verify_bin(source: (&str, &str), keys: &[String]) -> (bool, String) {
    let mut args = vec!["audit", "verify", source.0, source.1];
    for key in keys {
        args.extend(["--pubkey", key.as_str()]);
    }
    relayer_bin(&args, &[]).await
}

#[tokio::test]
async fn every_change_is_chained_and_the_log_verifies_against_the_relayer_key() {
    let bao = OpenBao::start().await;
    let (app, key, records) = history(&bao).await;
    let kinds: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Entry(e) => Some(e.kind.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "offer_registered",
            "tracking_event",
            "offer_status",
            "tracking_event", // the unknown tracking number
            "tracking_event", // delivered; its redelivery added nothing
            "offer_status",
            "job_enqueued",
            "job_attempt",
        ]
    );
    let report = verify(&records, &[key.pubkey()]).unwrap();
    assert_eq!(
        (report.entries, report.checkpoints, report.signed_size),
        (8, 1, 8)
    );

    let Record::Entry(first) = &records[0] else {
        panic!()
    };
    let offer = first.offer_id.unwrap();
    let of_offer: Vec<Entry> = get(&app, &format!("/v1/audit/offers/{offer}")).await;
    assert_eq!(
        of_offer.len(),
        7,
        "all but the unknown tracking number's event"
    );
    let payload: Value = serde_json::from_str(&of_offer[2].payload).unwrap();
    assert_eq!(
        payload,
        json!({ "offer_id": offer, "from": "awaiting_shipment", "to": "in_transit" })
    );

    // The binary, against the live endpoints and against an export file.
    let pubkey = key.pubkey().to_string();
    let (ok, out) = verify_bin(("--url", &app.url("")), std::slice::from_ref(&pubkey)).await;
    assert!(ok, "{out}");
    assert!(out.contains("audit log valid: 8 entries"), "{out}");
    let dir = tempfile_dir();
    let export = dir.join("audit.jsonl");
    let (ok, out) = relayer_bin(
        &["audit", "export", "--out", export.to_str().unwrap()],
        &[("DATABASE_URL", &app.database_url)],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = verify_bin(
        ("--file", export.to_str().unwrap()),
        std::slice::from_ref(&pubkey),
    )
    .await;
    assert!(ok, "{out}");
    // Verified against another key, the same log fails.
    let (ok, out) = verify_bin(
        ("--file", export.to_str().unwrap()),
        &[Pubkey::new_unique().to_string()],
    )
    .await;
    assert!(!ok);
    assert!(
        out.contains("audit log INVALID: checkpoint at size 8: signed by"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
    app.stop().await;
}

#[tokio::test]
async fn the_database_refuses_to_edit_or_remove_entries() {
    let bao = OpenBao::start().await;
    let (app, key, _) = history(&bao).await;
    for statement in [
        "UPDATE audit_log SET payload = '{}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 8",
        "TRUNCATE audit_log",
        "UPDATE audit_checkpoints SET tree_size = 1",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&app.pool)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("is append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(app.count("audit_log").await, 8);

    // An insert cannot choose its place or its hashes: the database numbers, links and hashes
    // every entry itself, so the log stays a valid chain.
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, payload, prev_hash, hash)
         VALUES (3, '2000-01-01', 'forged', '{}', $1, $1)",
    )
    .bind(vec![0xee_u8; 32])
    .execute(&app.pool)
    .await
    .unwrap();
    let records = fetch(&app).await;
    let last = records
        .iter()
        .filter_map(|r| match r {
            Record::Entry(e) => Some(e),
            Record::Checkpoint(_) => None,
        })
        .max_by_key(|e| e.seq)
        .unwrap();
    assert_eq!((last.seq, last.kind.as_str()), (9, "forged"));
    assert_ne!(last.hash, vec![0xee_u8; 32]);
    assert!(last.at > chrono::Utc::now() - chrono::Duration::minutes(5));
    verify(&records, &[key.pubkey()]).expect("the log is still one valid chain");
    app.stop().await;
}

#[tokio::test]
async fn each_kind_of_tampering_is_caught() {
    let bao = OpenBao::start().await;
    let (app, key, records) = history(&bao).await;
    let relayer = key.pubkey();

    let mut edited = records.clone();
    entry(&mut edited, 3).payload =
        r#"{"from":"awaiting_shipment","offer_id":null,"to":"returned"}"#.into();
    assert_eq!(
        verify(&edited, &[relayer]),
        Err(Finding::Altered { seq: 3 })
    );

    let mut removed = records.clone();
    removed.remove(3);
    assert_eq!(
        verify(&removed, &[relayer]),
        Err(Finding::Gap {
            position: 4,
            expected: 4,
            found: 5
        })
    );

    let mut reordered = records.clone();
    reordered.swap(1, 2);
    assert_eq!(
        verify(&reordered, &[relayer]),
        Err(Finding::Gap {
            position: 2,
            expected: 2,
            found: 3
        })
    );

    // Renumbering after a removal re-links nothing: the next entry's prev_hash names the
    // removed one.
    let mut renumbered = removed.clone();
    for (i, r) in renumbered.iter_mut().enumerate() {
        if let Record::Entry(e) = r {
            e.seq = i as i64 + 1;
        }
    }
    assert_eq!(
        verify(&renumbered, &[relayer]),
        Err(Finding::BrokenLink { seq: 4 })
    );

    // An edit with every later hash recomputed is a consistent chain, but not the one signed.
    let mut rewritten = records.clone();
    entry(&mut rewritten, 5).payload =
        r#"{"from":"in_transit","offer_id":null,"to":"returned"}"#.into();
    let mut prev = entry(&mut rewritten, 4).hash.clone();
    for seq in 5..=8 {
        let e = entry(&mut rewritten, seq);
        e.prev_hash.clone_from(&prev);
        e.hash = entry_hash(e.seq, &e.at, &e.kind, e.offer_id, &e.payload, &e.prev_hash);
        prev.clone_from(&e.hash);
    }
    assert_eq!(
        verify(&rewritten, &[relayer]),
        Err(Finding::HeadMismatch { tree_size: 8 })
    );

    // Forged checkpoints: a moved head, a flipped signature bit, another key's signature.
    let mut moved = records.clone();
    checkpoint(&mut moved).head_hash = entry(&mut moved.clone(), 7).hash.clone();
    assert_eq!(
        verify(&moved, &[relayer]),
        Err(Finding::BadSignature {
            tree_size: 8,
            expected: relayer
        })
    );
    let mut flipped = records.clone();
    checkpoint(&mut flipped).signature[0] ^= 1;
    assert!(matches!(
        verify(&flipped, &[relayer]),
        Err(Finding::BadSignature { .. })
    ));
    let impostor = signer(&bao, "impostor").await;
    let mut forged = records.clone();
    let c = checkpoint(&mut forged);
    c.signature = impostor
        .sign(&audit::checkpoint_message(
            c.tree_size,
            &c.head_hash,
            &c.signed_at,
        ))
        .await
        .unwrap()
        .to_vec();
    assert!(matches!(
        verify(&forged, &[relayer]),
        Err(Finding::BadSignature { .. })
    ));
    c_signer_is(&mut forged, &impostor.pubkey());
    assert!(matches!(
        verify(&forged, &[relayer]),
        Err(Finding::WrongSigner { .. })
    ));

    // A checkpoint vouching for entries that are gone.
    let truncated: Vec<Record> = records
        .iter()
        .filter(|r| !matches!(r, Record::Entry(e) if e.seq > 6))
        .cloned()
        .collect();
    assert_eq!(
        verify(&truncated, &[relayer]),
        Err(Finding::BeyondLog {
            tree_size: 8,
            entries: 6
        })
    );

    // Someone with superuser rights edits the live table behind the triggers' back.
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_log SET payload = replace(payload, 'in_transit', 'delivered') WHERE seq = 2",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (ok, out) = verify_bin(("--url", &app.url("")), &[relayer.to_string()]).await;
    assert!(!ok);
    assert!(
        out.contains("audit log INVALID: entry 2: its hash does not match its contents"),
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_signer_refuses_to_checkpoint_a_rewritten_log() {
    let bao = OpenBao::start().await;
    let (app, key, _) = history(&bao).await;
    // Behind the triggers' back: the signed head (entry 8) altered, then new activity.
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET hash = sha256(hash) WHERE seq = 8")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.webhook(&event("a-9", "1ZAUDIT", "returned")).await.0,
        200
    );
    let err = audit::checkpoint(&app.pool, &*key).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no longer extends the checkpoint at size 8"),
        "{err}"
    );
    assert_eq!(
        app.count("audit_checkpoints").await,
        1,
        "nothing new signed"
    );
    app.stop().await;
}

fn c_signer_is(records: &mut [Record], key: &Pubkey) {
    checkpoint(records).signer = key.to_string();
}

#[tokio::test]
async fn the_log_verifies_across_a_key_rotation_with_the_keys_in_order() {
    let bao = OpenBao::start().await;
    let (app, old, _) = history(&bao).await;
    let new = signer(&bao, "relayer-2").await;
    // The new key announces itself in the log (serve does this at start-up), then signs.
    assert!(audit::announce_signer(&app.pool, &new.pubkey())
        .await
        .unwrap());
    assert!(
        !audit::announce_signer(&app.pool, &new.pubkey())
            .await
            .unwrap(),
        "once"
    );
    app.webhook(&event("r-1", "1ZAUDIT2", "in_transit")).await;
    audit::checkpoint(&app.pool, &*new).await.unwrap().unwrap();
    let records = fetch(&app).await;
    let (a, b) = (old.pubkey(), new.pubkey());
    let report = verify(&records, &[a, b]).expect("both keys, in order");
    assert_eq!(report.checkpoints, 2);
    assert!(matches!(
        verify(&records, &[a]),
        Err(Finding::WrongSigner { .. })
    ));
    assert!(matches!(
        verify(&records, &[b]),
        Err(Finding::WrongSigner { .. })
    ));
    assert!(matches!(
        verify(&records, &[b, a]),
        Err(Finding::UnannouncedRotation { .. })
    ));

    // The binary takes the keys in order, each with --pubkey.
    let (ok, out) = verify_bin(("--url", &app.url("")), &[a.to_string(), b.to_string()]).await;
    assert!(ok, "{out}");
    let (ok, out) = verify_bin(("--url", &app.url("")), &[b.to_string()]).await;
    assert!(!ok, "{out}");

    // The old key signing again after the rotation: a retired key.
    app.webhook(&event("r-2", "1ZAUDIT2", "out_for_delivery"))
        .await;
    audit::checkpoint(&app.pool, &*old).await.unwrap().unwrap();
    assert!(matches!(
        verify(&fetch(&app).await, &[a, b]),
        Err(Finding::RetiredKey { .. })
    ));
    app.stop().await;
}

#[tokio::test]
async fn a_new_key_without_its_announcement_is_refused() {
    let bao = OpenBao::start().await;
    let (app, old, _) = history(&bao).await;
    let intruder = signer(&bao, "relayer-2").await;
    app.webhook(&event("u-1", "1ZAUDIT3", "in_transit")).await;
    audit::checkpoint(&app.pool, &*intruder)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        verify(&fetch(&app).await, &[old.pubkey(), intruder.pubkey()]),
        Err(Finding::UnannouncedRotation { .. })
    ));
    app.stop().await;
}
