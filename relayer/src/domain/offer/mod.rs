//! Offers: an escrow deal linked to the shipment that decides it. `Offer` is the one model of it
//! (the API, the Actions, the pipeline and the watchtower all use it); `crate::offers` is the one
//! place that stores and loads it.
mod deal;
mod registration;
mod status;

use anchor_lang::prelude::Pubkey;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use self::{
    deal::{DealMismatch, OnChainTerms},
    registration::{deal_ref, DealTerms, DealTermsBody, NewOffer, NewOfferBody, OfferError},
    status::{JobAction, OfferStatus},
};

/// How the offer's deal settled on-chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    Released,
    Refunded,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "released" => Some(Self::Released),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

/// An offer as stored: every field was checked at registration, and is checked again when it is
/// loaded (`crate::offers`).
#[derive(Clone, Debug)]
pub struct Offer {
    pub id: Uuid,
    /// The escrow's address; the deal there is named by `deal_slot` once bound.
    pub escrow: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    /// In the mint's base units; fits Postgres' bigint.
    pub amount: u64,
    pub tracking_number: String,
    pub carrier: String,
    pub status: OfferStatus,
    /// `occurred_at` of the event that set `status`: older events arriving late change nothing.
    pub status_at: Option<DateTime<Utc>>,
    /// The policy the buyer's `create` carries, when the offer was registered before its escrow
    /// existed; the deposit Action builds the buyer's transaction from it.
    pub terms: Option<DealTerms>,
    /// The creation slot of the deal at `escrow` this offer is bound to, once the relayer has
    /// seen it (an escrow address is reused after its deal closes; see `crate::deal`).
    pub deal_slot: Option<u64>,
    pub settlement: Option<Settlement>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Offer {
    /// Whether `deal` is this offer's deal: the same parties, mint and amount, and with
    /// registered terms exactly that policy (a dispute may only move the deadline later).
    pub fn check_deal(&self, deal: &OnChainTerms) -> Result<(), DealMismatch> {
        deal::check(self, deal)
    }
}

/// The operator API's view: flat, addresses in base58, as the API has always answered.
impl Serialize for Offer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            id: Uuid,
            escrow: String,
            tracking_number: &'a str,
            carrier: &'a str,
            status: &'static str,
            status_at: Option<DateTime<Utc>>,
            buyer: String,
            seller: String,
            mint: String,
            amount: u64,
            escrow_id: Option<u64>,
            approvers: Option<Vec<String>>,
            threshold: Option<u8>,
            timelock_secs: Option<u32>,
            refund_after: Option<i64>,
            escrow_created_slot: Option<u64>,
            settlement: Option<&'static str>,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
        }
        let terms = self.terms.as_ref();
        View {
            id: self.id,
            escrow: self.escrow.to_string(),
            tracking_number: &self.tracking_number,
            carrier: &self.carrier,
            status: self.status.as_str(),
            status_at: self.status_at,
            buyer: self.buyer.to_string(),
            seller: self.seller.to_string(),
            mint: self.mint.to_string(),
            amount: self.amount,
            escrow_id: terms.map(|t| t.id),
            approvers: terms.map(|t| t.approvers.iter().map(Pubkey::to_string).collect()),
            threshold: terms.map(|t| t.threshold),
            timelock_secs: terms.map(|t| t.timelock_secs),
            refund_after: terms.map(|t| t.refund_after),
            escrow_created_slot: self.deal_slot,
            settlement: self.settlement.map(Settlement::as_str),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
        .serialize(serializer)
    }
}
