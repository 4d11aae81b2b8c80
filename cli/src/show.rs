//! `escrow show`: an escrow decoded for people.
use std::fmt::Write;

use anchor_lang::prelude::Pubkey;
use escrow::{client::ui_amount as amount, Escrow, EscrowStatus, Outcome};

use crate::when::{human, span};

pub fn render(address: &Pubkey, e: &Escrow, now: i64) -> String {
    let mut s = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(s, "{label:<11} {value}");
    };
    line("escrow", address.to_string());
    line(
        "status",
        match e.status() {
            EscrowStatus::AwaitingDeposit => "awaiting deposit".into(),
            EscrowStatus::Funded => format!("funded ({} received)", amount(e.received, e.decimals)),
        },
    );
    line(
        "amount",
        format!("{} ({} base units)", amount(e.amount, e.decimals), e.amount),
    );
    line("buyer", e.buyer.to_string());
    line("seller", e.seller.to_string());
    let program = if e.token_program == anchor_spl::token_2022::ID {
        "Token-2022"
    } else {
        "SPL Token"
    };
    line("mint", format!("{} ({program})", e.mint));
    line("vault", e.vault.to_string());
    line("id", e.id.to_string());
    // What signed instructions name the deal by: the address is reused once it closes.
    line("created", format!("slot {}", e.created_slot));
    line(
        "policy",
        format!(
            "{} of {} approvals, then a {} dispute window",
            e.threshold,
            e.approver_count,
            if e.timelock_secs == 0 {
                "0 s".into()
            } else {
                span(u64::from(e.timelock_secs))
            }
        ),
    );
    for (i, approver) in e.approvers().iter().enumerate() {
        let role = if *approver == e.buyer {
            " (buyer)"
        } else if *approver == e.seller {
            " (seller)"
        } else {
            ""
        };
        let approved: Vec<&str> = [(Outcome::Release, "release"), (Outcome::Refund, "refund")]
            .into_iter()
            .filter(|(o, _)| e.approvals(*o) & (1 << i) != 0)
            .map(|(_, name)| name)
            .collect();
        let approved = if approved.is_empty() {
            String::new()
        } else {
            format!("  approved {}", approved.join(", "))
        };
        line(
            if i == 0 { "approvers" } else { "" },
            format!("{approver}{role}{approved}"),
        );
    }
    line(
        "approvals",
        format!(
            "release {}/{}, refund {}/{}",
            e.approvals(Outcome::Release).count_ones(),
            e.threshold,
            e.approvals(Outcome::Refund).count_ones(),
            e.threshold
        ),
    );
    line(
        "scheduled",
        match e.scheduled() {
            None => "nothing".into(),
            Some(o) => {
                let what = if o == Outcome::Release {
                    "release"
                } else {
                    "refund"
                };
                let due = if e.eta <= now {
                    "due now"
                } else {
                    "disputable until then"
                };
                format!("{what}, executable from {}; {due}", human(e.eta, now))
            }
        },
    );
    line(
        "refundable",
        format!("after {}", human(e.refund_after, now)),
    );
    let disputes: Vec<&str> = [(1, "buyer"), (2, "seller")]
        .into_iter()
        .filter(|(bit, _)| e.disputes & bit != 0)
        .map(|(_, who)| who)
        .collect();
    line(
        "disputed by",
        if disputes.is_empty() {
            "nobody".into()
        } else {
            disputes.join(", ")
        },
    );
    line(
        "deal ref",
        e.deal_ref.iter().map(|b| format!("{b:02x}")).collect(),
    );
    s
}
