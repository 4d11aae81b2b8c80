//! This program's events read back from a transaction's log messages, for watchers that must
//! not be fooled by what other programs log.
//!
//! `emit!` writes `Program data: <base64>` while this program executes. Any program can write
//! such a line with the same bytes, so a line counts only when the runtime's own
//! `Program <id> invoke [n]` / `Program <id> success|failed` lines say this program is the one
//! executing at that point. Programs cannot forge those structural lines: what they log is
//! always prefixed (`Program log:`, `Program data:`, `Program consumption:`). Callers must
//! also skip failed transactions, whose events describe changes that were rolled back: the log
//! alone does not say whether the whole transaction succeeded.
use anchor_lang::{prelude::Pubkey, AnchorDeserialize, Discriminator};
use base64::Engine;

use crate::events::{Cancelled, Created, Refunded, Released};

/// A creation or settlement event this program emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DealEvent {
    Created(Created),
    Released(Released),
    Refunded(Refunded),
    Cancelled(Cancelled),
}

impl DealEvent {
    /// The deal the event belongs to: its escrow's address and creation slot.
    pub fn deal(&self) -> (Pubkey, u64) {
        match self {
            Self::Created(e) => (e.escrow, e.created_slot),
            Self::Released(e) => (e.escrow, e.created_slot),
            Self::Refunded(e) => (e.escrow, e.created_slot),
            Self::Cancelled(e) => (e.escrow, e.created_slot),
        }
    }
}

/// The bytes this program logged with `sol_log_data`, in order. Stops at `Log truncated`:
/// after it, which program wrote a line can no longer be told.
pub fn emitted_by_program(logs: &[String]) -> Vec<Vec<u8>> {
    let program = crate::ID.to_string();
    let mut stack: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in logs {
        if line == "Log truncated" {
            break;
        }
        let Some(rest) = line.strip_prefix("Program ") else {
            continue;
        };
        if let Some(data) = rest.strip_prefix("data: ") {
            if stack.last() == Some(&program.as_str()) {
                // One base64 field per slice; `emit!` logs a single slice.
                let bytes = data
                    .split(' ')
                    .map(|part| base64::engine::general_purpose::STANDARD.decode(part))
                    .collect::<Result<Vec<_>, _>>();
                if let Ok(parts) = bytes {
                    out.push(parts.concat());
                }
            }
            continue;
        }
        let mut words = rest.split(' ');
        let (Some(id), Some(verb)) = (words.next(), words.next()) else {
            continue;
        };
        // `Program log: …`, `Program consumption: …`, `Program return: …` name no program.
        if id.parse::<Pubkey>().is_err() {
            continue;
        }
        match verb {
            "invoke" => stack.push(id),
            "success" | "failed:" if stack.last() == Some(&id) => {
                stack.pop();
            }
            _ => {}
        }
    }
    out
}

/// The creation and settlement events this program emitted, in log order.
pub fn deal_events(logs: &[String]) -> Vec<DealEvent> {
    emitted_by_program(logs)
        .iter()
        .filter_map(|bytes| decode(bytes))
        .collect()
}

fn decode(bytes: &[u8]) -> Option<DealEvent> {
    let (discriminator, mut body) = bytes.split_at_checked(8)?;
    let event = match discriminator {
        d if d == Created::DISCRIMINATOR => {
            DealEvent::Created(Created::deserialize(&mut body).ok()?)
        }
        d if d == Released::DISCRIMINATOR => {
            DealEvent::Released(Released::deserialize(&mut body).ok()?)
        }
        d if d == Refunded::DISCRIMINATOR => {
            DealEvent::Refunded(Refunded::deserialize(&mut body).ok()?)
        }
        d if d == Cancelled::DISCRIMINATOR => {
            DealEvent::Cancelled(Cancelled::deserialize(&mut body).ok()?)
        }
        _ => return None,
    };
    // Exactly the event's bytes: trailing data means these are not this event's bytes.
    body.is_empty().then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::Event;

    fn released(escrow: Pubkey, created_slot: u64) -> Released {
        Released {
            escrow,
            created_slot,
            seller: Pubkey::new_unique(),
            seller_token_account: Pubkey::new_unique(),
            amount: 5,
        }
    }

    fn line(event: &Released) -> String {
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(event.data())
        )
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_lines_written_while_this_program_runs_count() {
        let escrow = Pubkey::new_unique();
        let me = crate::ID.to_string();
        let other = Pubkey::new_unique().to_string();
        let token = anchor_spl::token::ID.to_string();
        let genuine = released(escrow, 7);
        let spoof = line(&released(escrow, 8));
        let logs = lines(&[
            &format!("Program {other} invoke [1]"),
            &spoof,
            &format!("Program {other} success"),
            &format!("Program {me} invoke [1]"),
            "Program log: Instruction: Release",
            &format!("Program {token} invoke [2]"),
            &spoof,
            &format!("Program {token} success"),
            &line(&genuine),
            &format!("Program {me} consumed 7000 of 200000 compute units"),
            &format!("Program {me} success"),
            &format!("Program {other} invoke [1]"),
            &spoof,
            &format!("Program {other} failed: custom program error: 0x1"),
        ]);
        assert_eq!(deal_events(&logs), vec![DealEvent::Released(genuine)]);
    }

    #[test]
    fn a_program_logging_the_invoke_line_as_text_is_not_this_program() {
        let escrow = Pubkey::new_unique();
        let me = crate::ID.to_string();
        let other = Pubkey::new_unique().to_string();
        let genuine = released(escrow, 9);
        let logs = lines(&[
            &format!("Program {other} invoke [1]"),
            &format!("Program log: Program {me} invoke [2]"),
            "Program log: invoke",
            &line(&released(escrow, 7)),
            &format!("Program {other} success"),
            &format!("Program {me} invoke [1]"),
            "Program log: x success",
            &line(&genuine),
            &format!("Program {me} success"),
        ]);
        assert_eq!(deal_events(&logs), vec![DealEvent::Released(genuine)]);
    }

    #[test]
    fn nothing_after_a_truncated_log_counts() {
        let me = crate::ID.to_string();
        let logs = lines(&[
            &format!("Program {me} invoke [1]"),
            "Log truncated",
            &line(&released(Pubkey::new_unique(), 7)),
        ]);
        assert!(deal_events(&logs).is_empty());
    }

    #[test]
    fn bytes_with_a_tail_are_not_an_event() {
        let me = crate::ID.to_string();
        let mut data = released(Pubkey::new_unique(), 7).data();
        data.push(0);
        let logs = lines(&[
            &format!("Program {me} invoke [1]"),
            &format!(
                "Program data: {}",
                base64::engine::general_purpose::STANDARD.encode(data)
            ),
            &format!("Program {me} success"),
        ]);
        assert!(deal_events(&logs).is_empty());
    }
}
