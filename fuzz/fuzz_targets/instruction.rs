//! Arbitrary bytes as the escrow program's instruction data, decoded as the program decodes them.
//!
//! Anchor 1.2.2 generates, for each handler in `#[program] mod escrow`, a struct in
//! `escrow::instruction` with the handler's arguments (borsh) and an 8-byte discriminator;
//! `dispatch` picks the first instruction whose discriminator the data starts with and the
//! handler decodes the rest with `AnchorDeserialize::deserialize(&mut &data[8..])`, which ignores
//! trailing bytes. `Create`'s accounts struct (`#[instruction(args: CreateArgs)]`) decodes the same
//! bytes again as `CreateArgs`.
//!
//! Checked: decoding never panics nor allocates beyond what the input can fill; whatever decodes re-encodes
//! (`InstructionData::data`) to exactly the bytes it consumed; the discriminators tell the
//! instructions apart.
#![no_main]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};

use anchor_lang::{AnchorDeserialize, AnchorSerialize, Discriminator, InstructionData};
use escrow::{instruction as ix, CreateArgs};
use libfuzzer_sys::fuzz_target;

/// The system allocator, noting the largest single allocation, so that a length prefix that
/// makes the decoder reserve memory the input cannot fill is caught here, with or without a
/// sanitizer.
struct Noting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Noting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Noting = Noting;

/// Decodes with `f`, asserting that no single allocation exceeded what `input` can justify:
/// borsh reserves at most 4 KiB up front for a vector and grows it as elements arrive, so a
/// vector never takes more than twice the bytes it was decoded from.
fn bounded<R>(input: &[u8], f: impl FnOnce() -> R) -> R {
    LARGEST.store(0, Relaxed);
    let result = f();
    let largest = LARGEST.load(Relaxed);
    assert!(
        largest <= 4096.max(2 * input.len()),
        "decoding {} bytes allocated {largest} bytes at once",
        input.len()
    );
    result
}

/// The program's instructions in dispatch order (the order of `#[program] mod escrow`).
const DISCRIMINATORS: [(&str, &[u8]); 8] = [
    ("create", ix::Create::DISCRIMINATOR),
    ("deposit", ix::Deposit::DISCRIMINATOR),
    ("cancel", ix::Cancel::DISCRIMINATOR),
    ("approve", ix::Approve::DISCRIMINATOR),
    ("revoke", ix::Revoke::DISCRIMINATOR),
    ("dispute", ix::Dispute::DISCRIMINATOR),
    ("release", ix::Release::DISCRIMINATOR),
    ("refund", ix::Refund::DISCRIMINATOR),
];

fuzz_target!(
    init: {
        // No discriminator is a prefix of another, so dispatch order cannot shadow one.
        for (i, (a, da)) in DISCRIMINATORS.iter().enumerate() {
            assert_eq!(da.len(), 8, "{a}");
            for (b, db) in &DISCRIMINATORS[i + 1..] {
                assert!(!da.starts_with(db) && !db.starts_with(da), "{a} and {b}");
            }
        }
    },
    |data: &[u8]| {
        // The program's dispatch, then the handler's decoding.
        let dispatched = DISCRIMINATORS
            .iter()
            .find(|(_, d)| data.starts_with(d))
            .map(|(name, d)| (*name, &data[d.len()..]));
        match dispatched {
            Some(("create", args)) => {
                // The accounts struct decodes the same bytes as `CreateArgs`.
                assert_eq!(
                    decode_args(args),
                    decode::<ix::Create>(args),
                    "CreateArgs and instruction::Create disagree"
                );
            }
            Some(("deposit", args)) => {
                decode::<ix::Deposit>(args);
            }
            Some(("cancel", args)) => {
                decode::<ix::Cancel>(args);
            }
            Some(("approve", args)) => {
                decode::<ix::Approve>(args);
            }
            Some(("revoke", args)) => {
                decode::<ix::Revoke>(args);
            }
            Some(("dispute", args)) => {
                decode::<ix::Dispute>(args);
            }
            Some(("release", args)) => {
                decode::<ix::Release>(args);
            }
            Some(("refund", args)) => {
                decode::<ix::Refund>(args);
            }
            Some(_) => unreachable!(),
            // Anchor's fallback: InstructionFallbackNotFound.
            None => {}
        }

        // Each instruction's arguments from the raw bytes, whatever the discriminator.
        decode_args(data);
        decode::<ix::Create>(data);
        decode::<ix::Deposit>(data);
        decode::<ix::Cancel>(data);
        decode::<ix::Approve>(data);
        decode::<ix::Revoke>(data);
        decode::<ix::Dispute>(data);
        decode::<ix::Release>(data);
        decode::<ix::Refund>(data);
    }
);

/// Decodes `T`'s arguments as the handler does; when they decode, `T::data()` is the
/// discriminator followed by exactly the bytes consumed. Returns how many were consumed.
fn decode<T: AnchorDeserialize + InstructionData>(args: &[u8]) -> Option<usize> {
    let mut rest = args;
    let value = bounded(args, || T::deserialize(&mut rest)).ok()?;
    let consumed = args.len() - rest.len();
    let data = value.data();
    let (discriminator, encoded) = data.split_at(T::DISCRIMINATOR.len());
    assert_eq!(discriminator, T::DISCRIMINATOR);
    assert_eq!(
        encoded,
        &args[..consumed],
        "re-encoding differs from the input"
    );
    Some(consumed)
}

/// `CreateArgs` alone: decodes within the input's size (the approvers vector's length prefix is
/// attacker-chosen) and re-encodes to the bytes consumed.
fn decode_args(args: &[u8]) -> Option<usize> {
    let mut rest = args;
    let value = bounded(args, || CreateArgs::deserialize(&mut rest)).ok()?;
    let consumed = args.len() - rest.len();
    // id, seller, amount, deal_ref, the vector's length, threshold, timelock_secs, refund_after.
    const FIXED: usize = 8 + 32 + 8 + 32 + 4 + 1 + 4 + 8;
    assert_eq!(consumed, FIXED + 32 * value.approvers.len());
    let mut encoded = Vec::new();
    value.serialize(&mut encoded).unwrap();
    assert_eq!(
        encoded,
        &args[..consumed],
        "re-encoding differs from the input"
    );
    Some(consumed)
}
