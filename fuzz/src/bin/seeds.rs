//! Writes the seed corpus, `<dir>/webhook/seed-*` and `<dir>/instruction/seed-*`, from the
//! relayer's signers and the program's instruction encoders, so that the seeds are what a
//! provider and a client really send. `scripts/fuzz.sh --seeds` runs it on `fuzz/corpus`.
use std::{fs, path::Path};

use anchor_lang::{prelude::Pubkey, InstructionData};
use escrow::{instruction as ix, CreateArgs, Outcome};
use openclaw_escrow_fuzz::{encode, NOW, OTHER_SECRET, SECRET};
use relayer::domain::signature::{
    standard_signature, tracking_signature, TOLERANCE_SECS, TRACKING_SIGNATURE, WEBHOOK_ID,
    WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    let dir = Path::new(&dir);
    let mut n = 0;
    for (name, data) in webhook() {
        write(&dir.join("webhook"), name, &data);
        n += 1;
    }
    for (name, data) in instruction() {
        write(&dir.join("instruction"), name, &data);
        n += 1;
    }
    println!("wrote {n} seeds under {}", dir.display());
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn event(event_id: Option<&str>, tracking: &str, carrier: &str, status: &str) -> String {
    let id = event_id.map_or(String::new(), |id| format!(r#""event_id":"{id}","#));
    format!(
        r#"{{{id}"tracking_number":"{tracking}","carrier":"{carrier}","status":"{status}","occurred_at":"2026-01-01T00:00:00Z"}}"#
    )
}

/// The body signed in `X-Tracking-Signature`.
fn tracking(body: &str) -> Vec<u8> {
    let sig = tracking_signature(SECRET, body.as_bytes());
    encode(&[(TRACKING_SIGNATURE, &sig)], body.as_bytes())
}

/// The body signed by the Standard Webhooks scheme with `secrets` (one candidate each).
fn standard(id: &str, timestamp: i64, secrets: &[&[u8]], body: &str) -> Vec<u8> {
    let sigs: Vec<String> = secrets
        .iter()
        .map(|s| standard_signature(s, id, timestamp, body.as_bytes()))
        .collect();
    encode(
        &[
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, &timestamp.to_string()),
            (WEBHOOK_SIGNATURE, &sigs.join(" ")),
        ],
        body.as_bytes(),
    )
}

fn webhook() -> Vec<(&'static str, Vec<u8>)> {
    let delivered = event(Some("evt_1"), "1Z999AA10123456784", "ups", "delivered");
    let no_id = event(None, "1Z999AA10123456784", "ups", "in_transit");
    let sig = tracking_signature(SECRET, delivered.as_bytes());
    let mut seeds = vec![
        ("tracking-delivered", tracking(&delivered)),
        (
            "tracking-details-unknown-fields",
            tracking(
                r#"{"event_id":"evt_2","tracking_number":"940011189922385","carrier":"usps","status":"out_for_delivery","occurred_at":"2026-01-01T01:30:00+02:00","details":{"location":{"city":"Berlin","geo":[52.5,13.4]},"signed_by":null},"extra":true}"#,
            ),
        ),
        (
            "tracking-carrier-case-space",
            tracking(&event(
                Some("evt_3"),
                "JD0002",
                "  DHL Express ",
                "returned",
            )),
        ),
        (
            "tracking-uppercase-hex",
            encode(
                &[(TRACKING_SIGNATURE, &sig.to_uppercase())],
                delivered.as_bytes(),
            ),
        ),
        (
            "tracking-at-limits",
            tracking(&event(
                Some(&"e".repeat(128)),
                &"7".repeat(64),
                &"c".repeat(32),
                "exception",
            )),
        ),
        (
            "tracking-over-limits",
            tracking(&event(
                Some(&"e".repeat(129)),
                &"7".repeat(65),
                &"c".repeat(33),
                "delivered",
            )),
        ),
        (
            "tracking-blank-tracking-number",
            tracking(&event(Some("evt_4"), " ", "ups", "delivered")),
        ),
        (
            "tracking-unknown-status",
            tracking(&event(Some("evt_5"), "1Z9", "ups", "lost")),
        ),
        ("tracking-no-event-id", tracking(&no_id)),
        (
            // Beyond the clock-skew bound: refused, so it cannot freeze an offer.
            "tracking-from-the-future",
            tracking(
                r#"{"event_id":"evt_7","tracking_number":"1Z9","carrier":"ups","status":"in_transit","occurred_at":"2026-01-01T00:10:01Z"}"#,
            ),
        ),
        (
            "tracking-duplicate-key",
            tracking(
                r#"{"event_id":"evt_8","tracking_number":"1Z9","carrier":"ups","status":"in_transit","status":"delivered","occurred_at":"2026-01-01T00:00:00Z"}"#,
            ),
        ),
        (
            "tracking-control-character",
            tracking(&event(Some("evt_9"), "1Z\\u001b9", "ups", "delivered")),
        ),
        (
            // serde reads a struct from a JSON array too: the fields in declaration order.
            "tracking-array-body",
            tracking(r#"["evt_6","1Z9","ups","delivered","2026-01-01T00:00:00Z",null]"#),
        ),
        (
            "tracking-wrong-secret",
            encode(
                &[(
                    TRACKING_SIGNATURE,
                    &tracking_signature(OTHER_SECRET, delivered.as_bytes()),
                )],
                delivered.as_bytes(),
            ),
        ),
        (
            "tracking-malformed-hex",
            encode(&[(TRACKING_SIGNATURE, "zz")], delivered.as_bytes()),
        ),
        (
            "standard-header-id",
            standard("msg_1", NOW, &[SECRET], &no_id),
        ),
        (
            "standard-rotation-two-candidates",
            standard("msg_2", NOW - 60, &[OTHER_SECRET, SECRET], &delivered),
        ),
        (
            "standard-edge-of-window",
            standard("msg_3", NOW + TOLERANCE_SECS, &[SECRET], &delivered),
        ),
        (
            "standard-stale",
            standard("msg_4", NOW - TOLERANCE_SECS - 1, &[SECRET], &delivered),
        ),
        (
            "standard-wrong-secret",
            standard("msg_5", NOW, &[OTHER_SECRET], &delivered),
        ),
        (
            "standard-missing-signature",
            encode(
                &[(WEBHOOK_ID, "msg_6"), (WEBHOOK_TIMESTAMP, &NOW.to_string())],
                delivered.as_bytes(),
            ),
        ),
        ("unsigned", delivered.clone().into_bytes()),
    ];
    for status in ["in_transit", "out_for_delivery", "returned", "exception"] {
        let name = match status {
            "in_transit" => "standard-in-transit",
            "out_for_delivery" => "standard-out-for-delivery",
            "returned" => "standard-returned",
            _ => "standard-exception",
        };
        let body = event(None, "1Z999AA10123456784", "fedex", status);
        seeds.push((name, standard("msg_status", NOW, &[SECRET], &body)));
    }
    seeds
}

fn key(n: u8) -> Pubkey {
    Pubkey::new_from_array([n; 32])
}

fn create(approvers: usize, threshold: u8) -> ix::Create {
    ix::Create {
        args: CreateArgs {
            id: 42,
            seller: key(2),
            amount: 1_000_000,
            deal_ref: [7; 32],
            approvers: (0..approvers as u8).map(|i| key(10 + i)).collect(),
            threshold,
            timelock_secs: 86_400,
            refund_after: NOW + 30 * 86_400,
        },
    }
}

fn instruction() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_vec = create(1, 1).data();
    // The approvers' length prefix (after discriminator, id, seller, amount, deal_ref) set to
    // u32::MAX with one key behind it: must fail without reserving 128 GiB.
    huge_vec[8 + 8 + 32 + 8 + 32..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
    vec![
        ("create-1-of-1", create(1, 1).data()),
        ("create-2-of-3", create(3, 2).data()),
        ("create-8-of-8", create(8, 8).data()),
        ("create-approvers-len-u32-max", huge_vec),
        ("deposit", ix::Deposit {}.data()),
        ("cancel", ix::Cancel {}.data()),
        (
            "approve-release",
            ix::Approve {
                outcome: Outcome::Release,
                created_slot: 351_000_000,
            }
            .data(),
        ),
        (
            "approve-refund",
            ix::Approve {
                outcome: Outcome::Refund,
                created_slot: 351_000_000,
            }
            .data(),
        ),
        (
            "revoke-release",
            ix::Revoke {
                outcome: Outcome::Release,
                created_slot: 351_000_000,
            }
            .data(),
        ),
        (
            "revoke-refund",
            ix::Revoke {
                outcome: Outcome::Refund,
                created_slot: 351_000_000,
            }
            .data(),
        ),
        ("dispute", ix::Dispute { created_slot: 7 }.data()),
        ("release", ix::Release { created_slot: u64::MAX }.data()),
        ("refund", ix::Refund { created_slot: 0 }.data()),
    ]
}
