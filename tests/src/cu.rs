//! Compute units of each instruction, measured in LiteSVM on the real `.so` with SPL Token.
//! `cu-report` prints them; `tests/cu_budget.rs` fails when one exceeds its budget.
use escrow::Outcome;
use solana_signer::Signer;

use anchor_lang::{
    prelude::Pubkey,
    solana_program::{instruction::Instruction, program_pack::Pack},
};

use crate::fixtures::{Who, World, TIMELOCK};

/// Sends `ixs` as the harness does and returns (compute units, transaction bytes).
fn run(
    svm: &mut crate::Svm,
    ixs: &[Instruction],
    signers: &[&solana_keypair::Keypair],
) -> (u64, usize) {
    let bytes = tx_bytes(ixs, &svm.payer.pubkey());
    (svm.ok(ixs, signers), bytes)
}

pub struct Measurement {
    pub instruction: &'static str,
    pub compute_units: u64,
    /// What the budget test allows: just above today's figure.
    pub budget: u64,
    /// The signed transaction's wire size (the limit is 1,232 bytes).
    pub tx_bytes: usize,
}

/// Wire size of a legacy transaction of `ixs` paid by `payer`: the message plus a compact
/// signature count and 64 bytes per required signature.
pub fn tx_bytes(ixs: &[Instruction], payer: &Pubkey) -> usize {
    let message = solana_message::Message::new(ixs, Some(payer));
    let signatures = usize::from(message.header.num_required_signatures);
    message.serialize().len() + 1 + 64 * signatures
}

/// What one escrow holds in rent while open: its state account and its token vault (SPL
/// Token), both returned to the buyer when the escrow closes.
pub struct Rent {
    pub escrow_bytes: usize,
    pub escrow_lamports: u64,
    pub vault_bytes: usize,
    pub vault_lamports: u64,
}

pub fn rent() -> Rent {
    let svm = crate::Svm::new();
    let vault_bytes = anchor_spl::token::spl_token::state::Account::LEN;
    Rent {
        escrow_bytes: escrow::Escrow::SPACE,
        escrow_lamports: svm
            .svm
            .minimum_balance_for_rent_exemption(escrow::Escrow::SPACE),
        vault_bytes,
        vault_lamports: svm.svm.minimum_balance_for_rent_exemption(vault_bytes),
    }
}

/// Runs each instruction once in a fresh deal and records its compute units.
pub fn measure() -> Vec<Measurement> {
    let mut out = Vec::new();
    let mut record = |instruction, (compute_units, tx_bytes), budget| {
        out.push(Measurement {
            instruction,
            compute_units,
            budget,
            tx_bytes,
        })
    };

    let mut w = World::new();
    let ix = w.create_ix();
    record(
        "create",
        run(&mut w.svm, &[ix], &[&w.buyer]),
        budgets::CREATE,
    );
    w.learn_created_slot();
    let ix = w.deal.deposit(&w.buyer_token);
    record(
        "deposit",
        run(&mut w.svm, &[ix], &[&w.buyer]),
        budgets::DEPOSIT,
    );
    let ix = w.deal.approve(&w.relayer.pubkey(), Outcome::Release);
    record(
        "approve",
        run(&mut w.svm, &[ix], &[&w.relayer]),
        budgets::APPROVE,
    );
    let ix = w.deal.revoke(&w.relayer.pubkey(), Outcome::Release);
    record(
        "revoke",
        run(&mut w.svm, &[ix], &[&w.relayer]),
        budgets::REVOKE,
    );
    w.approve(Who::Relayer, Outcome::Release).expect("approve");
    let ix = w.deal.approve(&w.seller.pubkey(), Outcome::Release);
    record(
        "approve (schedules)",
        run(&mut w.svm, &[ix], &[&w.seller]),
        budgets::APPROVE_SCHEDULES,
    );
    let ix = w.deal.dispute(&w.buyer.pubkey());
    record(
        "dispute",
        run(&mut w.svm, &[ix], &[&w.buyer]),
        budgets::DISPUTE,
    );
    w.schedule(Outcome::Release);
    w.svm.advance(i64::from(TIMELOCK));
    let ix = w.deal.release(&w.seller_token);
    record("release", run(&mut w.svm, &[ix], &[]), budgets::RELEASE);

    let mut w = World::new();
    let ixs = [w.create_ix(), w.deal.deposit(&w.buyer_token)];
    record(
        "create + deposit (one tx)",
        run(&mut w.svm, &ixs, &[&w.buyer]),
        budgets::CREATE_DEPOSIT,
    );
    w.learn_created_slot();
    let ix = w.deal.refund(&w.seller.pubkey(), &w.buyer_token);
    record(
        "refund (seller waives)",
        run(&mut w.svm, &[ix], &[&w.seller]),
        budgets::REFUND,
    );

    let mut w = World::new();
    w.create().expect("create");
    let ix = w.deal.cancel(&w.buyer_token);
    record(
        "cancel",
        run(&mut w.svm, &[ix], &[&w.buyer]),
        budgets::CANCEL,
    );
    out
}

/// Budgets ~3% above the figures measured when they were set (LiteSVM 0.16, p-token, the fixture's
/// fixed keys, the registry-built `.so`); raise one only with a reason in the commit.
pub mod budgets {
    pub const CREATE: u64 = 16_300;
    pub const DEPOSIT: u64 = 5_790;
    pub const CREATE_DEPOSIT: u64 = 22_080;
    pub const APPROVE: u64 = 1_555;
    pub const APPROVE_SCHEDULES: u64 = 1_860;
    pub const REVOKE: u64 = 1_355;
    pub const DISPUTE: u64 = 1_445;
    pub const RELEASE: u64 = 8_065;
    pub const REFUND: u64 = 8_250;
    pub const CANCEL: u64 = 6_105;
}

/// The table the README carries.
pub fn markdown(measurements: &[Measurement], so_bytes: u64, rent: &Rent) -> String {
    let mut s = String::from(
        "| instruction | compute units | budget | transaction bytes |\n|---|---:|---:|---:|\n",
    );
    for m in measurements {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            m.instruction,
            thousands(m.compute_units),
            thousands(m.budget),
            thousands(m.tx_bytes as u64)
        );
    }
    let total = rent.escrow_lamports + rent.vault_lamports;
    s += &format!(
        "\nRent per open escrow: escrow account {} bytes, {} lamports; vault {} bytes, {} lamports; \
         {} lamports ({:.5} SOL) in all, returned to the buyer when it closes.\n",
        rent.escrow_bytes,
        thousands(rent.escrow_lamports),
        rent.vault_bytes,
        thousands(rent.vault_lamports),
        thousands(total),
        total as f64 / 1e9
    );
    s += &format!("\n`escrow.so`: {} bytes\n", thousands(so_bytes));
    s
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
