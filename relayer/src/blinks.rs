//! Solana Actions ("blinks") for an offer's parties: unsigned transactions that the buyer or
//! seller signs in their own wallet. (In this crate "action" is a job's; the Solana Actions
//! surface is called blinks, though its URLs and metric keep the spec's name.) The relayer never sees their keys; it builds, simulates and explains, and
//! hands out only transactions that would succeed for the account that asked.
use std::str::FromStr;

use anchor_lang::prelude::Pubkey;
use chrono::{DateTime, Utc};
use escrow::{
    client::{self, Deal},
    CreateArgs, Escrow, EscrowStatus, Outcome,
};
use solana_message::Message;
use solana_transaction::Transaction;
use spl_associated_token_account_interface::address::get_associated_token_address_with_program_id;

use crate::{
    chain::{Chain, ChainError},
    deal::{self, EscrowAt},
    domain::offer::{deal_ref, Offer, OnChainTerms},
};

/// What a party can do to an offer's escrow from a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// The buyer creates and funds the escrow with the registered terms.
    Deposit,
    /// An approver (seller: shipped; buyer: received) approves the release.
    Approve,
    /// The buyer or seller disputes a scheduled outcome within its window.
    Dispute,
    /// Returns the deposit to the buyer once a refund is due.
    Refund,
}

impl ActionKind {
    pub const ALL: [Self; 4] = [Self::Deposit, Self::Approve, Self::Dispute, Self::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Approve => "approve",
            Self::Dispute => "dispute",
            Self::Refund => "refund",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Deposit => "Fund escrow",
            Self::Approve => "Approve release",
            Self::Dispute => "Dispute",
            Self::Refund => "Refund buyer",
        }
    }
}

impl FromStr for ActionKind {
    type Err = ActionError;
    fn from_str(s: &str) -> Result<Self, ActionError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ActionError::Refused(format!(
                    "unknown action {s:?}: use deposit, approve, dispute or refund"
                ))
            })
    }
}

/// Why an action was not built; the message goes to the wallet (the spec's `{message}`).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request cannot be served as asked: 400.
    #[error("{0}")]
    Refused(String),
    /// The chain could not be read: 503, try again.
    #[error("the chain is unavailable right now, try again shortly")]
    Unavailable(#[from] ChainError),
}

fn refused(message: impl Into<String>) -> ActionError {
    ActionError::Refused(message.into())
}

/// The deal as an escrow would hold it: from the registered terms before the escrow exists,
/// from the escrow afterwards.
#[derive(Clone, Debug)]
pub struct Policy {
    pub approvers: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
}

impl Policy {
    pub fn from_offer(offer: &Offer) -> Option<Self> {
        let terms = offer.terms.as_ref()?;
        Some(Self {
            approvers: terms.approvers.clone(),
            threshold: terms.threshold,
            timelock_secs: terms.timelock_secs,
            refund_after: terms.refund_after,
        })
    }

    pub fn from_escrow(state: &Escrow) -> Self {
        Self {
            approvers: state.approvers().to_vec(),
            threshold: state.threshold,
            timelock_secs: state.timelock_secs,
            refund_after: state.refund_after,
        }
    }

    /// "2 of buyer, seller, arbiter 4vJ9…, then a 1 h dispute window; refundable to the buyer
    /// after 2026-12-03 10:00 UTC".
    pub fn summary(&self, offer: &Offer) -> String {
        let names: Vec<String> = self
            .approvers
            .iter()
            .map(|a| {
                if *a == offer.buyer {
                    "buyer".into()
                } else if *a == offer.seller {
                    "seller".into()
                } else {
                    let a = a.to_string();
                    format!("{}…{}", &a[..4], &a[a.len() - 4..])
                }
            })
            .collect();
        format!(
            "Released to the seller once {} of {} ({}) approve, after a {} dispute window; \
             refundable to the buyer after {}.",
            self.threshold,
            self.approvers.len(),
            names.join(", "),
            human_duration(self.timelock_secs),
            human_time(self.refund_after),
        )
    }
}

pub fn human_duration(secs: u32) -> String {
    match secs {
        0 => "no".into(),
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub fn human_time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// What the GET of an action shows: the offer, its policy and whether the action is open.
pub struct Metadata {
    pub title: String,
    pub description: String,
    pub label: &'static str,
    /// Why the action cannot be taken now, if so.
    pub closed: Option<String>,
}

/// The chain's view of an offer: its escrow, if it exists, and the mint's decimals.
pub struct OnChain {
    /// The offer's own deal: refused (`read_chain`) when the escrow there is another deal.
    pub escrow: Option<Escrow>,
    pub decimals: Option<u8>,
    token_program: Option<Pubkey>,
}

pub async fn read_chain(chain: &dyn Chain, offer: &Offer) -> Result<OnChain, ActionError> {
    let escrow = match deal::read(chain, &offer.escrow).await? {
        EscrowAt::Nothing => None,
        EscrowAt::Foreign(why) => return Err(refused(why)),
        EscrowAt::Open(state) => Some(*state),
    };
    if let Some(state) = &escrow {
        if offer
            .deal_slot
            .is_some_and(|slot| slot != state.created_slot)
        {
            return Err(refused(
                "the escrow at this address is a later deal than this offer's, which has closed; \
                 do not sign anything for it",
            ));
        }
        if offer.check_deal(&OnChainTerms::from(state)).is_err() {
            return Err(refused(
                "the escrow on-chain does not match this offer; do not sign anything for it",
            ));
        }
    }
    // A mint's decimals sit at byte 44 of its base layout, for SPL Token and Token-2022 alike.
    let mint = chain.account(&offer.mint).await?;
    let token_program = mint
        .as_ref()
        .map(|m| m.owner)
        .filter(|o| *o == anchor_spl::token::ID || *o == anchor_spl::token_2022::ID);
    let decimals = mint
        .filter(|_| token_program.is_some())
        .and_then(|m| m.data.get(44).copied());
    Ok(OnChain {
        escrow,
        decimals,
        token_program,
    })
}

pub async fn describe(
    chain: Option<&dyn Chain>,
    offer: &Offer,
    kind: ActionKind,
) -> Result<Metadata, ActionError> {
    let on_chain = match chain {
        Some(chain) => Some(read_chain(chain, offer).await?),
        None => None,
    };
    let escrow = on_chain.as_ref().and_then(|c| c.escrow.as_ref());
    let policy = escrow
        .map(Policy::from_escrow)
        .or_else(|| Policy::from_offer(offer));
    let amount = match on_chain.as_ref().and_then(|c| c.decimals) {
        Some(d) => format!(
            "{} tokens of mint {}",
            client::ui_amount(offer.amount, d),
            offer.mint
        ),
        None => format!("{} base units of mint {}", offer.amount, offer.mint),
    };
    let what = match kind {
        ActionKind::Deposit => "Lock the payment in escrow",
        ActionKind::Approve => "Approve releasing the payment to the seller",
        ActionKind::Dispute => "Dispute the scheduled outcome",
        ActionKind::Refund => "Return the payment to the buyer",
    };
    let mut description = format!(
        "{what}: {amount}, from buyer {} to seller {}, escrow {}.",
        offer.buyer, offer.seller, offer.escrow
    );
    if let Some(policy) = &policy {
        description = format!("{description} {}", policy.summary(offer));
    }
    Ok(Metadata {
        title: format!("Escrow for offer {}", offer.id),
        description,
        label: kind.label(),
        closed: closed(kind, on_chain.as_ref(), policy.is_some()),
    })
}

/// Why `kind` cannot be taken now, given the chain as read (`None`: no chain configured).
pub fn closed(kind: ActionKind, on_chain: Option<&OnChain>, has_policy: bool) -> Option<String> {
    let Some(on_chain) = on_chain else {
        return Some("the relayer has no chain configured".to_owned());
    };
    let funded = on_chain
        .escrow
        .as_ref()
        .is_some_and(|e| e.status() == EscrowStatus::Funded);
    match kind {
        ActionKind::Deposit if funded => Some("this offer is already funded".into()),
        ActionKind::Deposit if !has_policy => Some(NO_TERMS.into()),
        ActionKind::Deposit => None,
        _ if !funded => Some("the escrow is not funded (yet, or any more)".into()),
        _ => None,
    }
}

pub const NO_TERMS: &str =
    "this offer was registered without deal terms, so there is no escrow to create; ask the seller";

/// The transaction `account` asked for, unsigned, with its fee payer set to `account`, and a
/// line saying what signing it does. It has been simulated and would succeed right now.
pub async fn build(
    chain: &dyn Chain,
    offer: &Offer,
    kind: ActionKind,
    account: Pubkey,
) -> Result<(Transaction, String), ActionError> {
    let on_chain = read_chain(chain, offer).await?;
    let escrow_address = offer.escrow;
    let buyer = offer.buyer;
    let (instructions, message) = match kind {
        ActionKind::Deposit => {
            if account != buyer {
                return Err(refused(format!(
                    "this offer is for buyer {buyer}; connect that wallet"
                )));
            }
            let policy = Policy::from_offer(offer).ok_or_else(|| refused(NO_TERMS))?;
            let token_program = on_chain.token_program.ok_or_else(|| {
                refused(format!(
                    "mint {} is not a token mint on this cluster",
                    offer.mint
                ))
            })?;
            let mint = offer.mint;
            let buyer_token =
                get_associated_token_address_with_program_id(&buyer, &mint, &token_program);
            let seller = offer.seller;
            let amount = offer.amount;
            let mut ixs = Vec::with_capacity(2);
            let deal = match &on_chain.escrow {
                Some(e) if e.status() == EscrowStatus::Funded => {
                    return Err(refused("this offer is already funded"))
                }
                Some(e) => Deal::from_state(escrow_address, e),
                None => {
                    let id = offer.terms.as_ref().ok_or_else(|| refused(NO_TERMS))?.id;
                    let deal = Deal::before_create(&buyer, id, &seller, &mint, &token_program);
                    if deal.escrow != escrow_address {
                        return Err(refused(
                            "the offer's escrow is not the address of its terms",
                        ));
                    }
                    ixs.push(client::create(
                        &buyer,
                        &mint,
                        &token_program,
                        CreateArgs {
                            id,
                            seller,
                            amount,
                            deal_ref: deal_ref(offer.id),
                            approvers: policy.approvers.clone(),
                            threshold: policy.threshold,
                            timelock_secs: policy.timelock_secs,
                            refund_after: policy.refund_after,
                        },
                    ));
                    deal
                }
            };
            ixs.push(deal.deposit(&buyer_token));
            let shown = on_chain.decimals.map_or_else(
                || format!("{amount} base units"),
                |d| client::ui_amount(offer.amount, d),
            );
            (
                ixs,
                format!(
                    "Locks {shown} in escrow {escrow_address}. {}",
                    policy.summary(offer)
                ),
            )
        }
        ActionKind::Approve | ActionKind::Dispute | ActionKind::Refund => {
            let state = on_chain
                .escrow
                .filter(|e| e.status() == EscrowStatus::Funded)
                .ok_or_else(|| refused("the escrow is not funded (yet, or any more)"))?;
            let deal = Deal::from_state(escrow_address, &state);
            match kind {
                ActionKind::Approve => {
                    if !state.approvers().contains(&account) {
                        return Err(refused(format!(
                            "{account} is not an approver of this escrow"
                        )));
                    }
                    let who = if account == state.seller {
                        "As the seller, you confirm the goods were shipped"
                    } else if account == state.buyer {
                        "As the buyer, you confirm the goods arrived"
                    } else {
                        "You approve"
                    };
                    (
                        vec![deal.approve(&account, Outcome::Release)],
                        format!(
                            "{who}: one of {} approvals to release the payment to the seller.",
                            state.threshold
                        ),
                    )
                }
                ActionKind::Dispute => {
                    if account != state.buyer && account != state.seller {
                        return Err(refused("only the buyer or the seller can dispute"));
                    }
                    (
                        vec![deal.dispute(&account)],
                        "Disputes the scheduled outcome: it is cancelled and must be approved again."
                            .into(),
                    )
                }
                _ => {
                    let buyer_token = get_associated_token_address_with_program_id(
                        &state.buyer,
                        &state.mint,
                        &state.token_program,
                    );
                    (
                        vec![deal.refund(&account, &buyer_token)],
                        "Returns the deposit to the buyer and closes the escrow.".into(),
                    )
                }
            }
        }
    };
    let blockhash = chain.latest_blockhash().await?;
    let tx = Transaction::new_unsigned(Message::new_with_blockhash(
        &instructions,
        Some(&account),
        &blockhash.hash,
    ));
    if let Some(reason) = chain.simulate(&tx).await?.failure() {
        return Err(refused(format!("this transaction would fail: {reason}")));
    }
    Ok((tx, message))
}
