//! Offers: an on-chain escrow linked to a shipment, and how tracking moves its status.
use std::str::FromStr;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use super::tracking::{check_len, ParseError, TrackingStatus};

/// Where the shipment behind an offer is. `Delivered` and `Returned` are final: later events are
/// stored for audit but change nothing, so an offer never asks for both a release and a refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    AwaitingShipment,
    InTransit,
    OutForDelivery,
    Delivered,
    Returned,
    Exception,
}

/// What a status change asks the chain side to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    ApproveRelease,
    ApproveRefund,
    /// Executes a scheduled release once its eta has come.
    CrankRelease,
    /// Executes a scheduled refund once its eta has come.
    CrankRefund,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApproveRelease => "approve_release",
            Self::ApproveRefund => "approve_refund",
            Self::CrankRelease => "crank_release",
            Self::CrankRefund => "crank_refund",
        }
    }
}

impl FromStr for JobAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve_release" => Ok(Self::ApproveRelease),
            "approve_refund" => Ok(Self::ApproveRefund),
            "crank_release" => Ok(Self::CrankRelease),
            "crank_refund" => Ok(Self::CrankRefund),
            other => Err(format!("unknown job action {other:?}")),
        }
    }
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 6] = [
        Self::AwaitingShipment,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Returned,
        Self::Exception,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingShipment => "awaiting_shipment",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Returned => "returned",
            Self::Exception => "exception",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Returned)
    }

    /// The status after a tracking event, and the job it implies, or `None` when the event
    /// changes nothing (the offer is final already).
    pub fn apply(self, event: TrackingStatus) -> Option<(OfferStatus, Option<JobAction>)> {
        if self.is_final() {
            return None;
        }
        Some(match event {
            TrackingStatus::InTransit => (Self::InTransit, None),
            TrackingStatus::OutForDelivery => (Self::OutForDelivery, None),
            TrackingStatus::Exception => (Self::Exception, None),
            TrackingStatus::Delivered => (Self::Delivered, Some(JobAction::ApproveRelease)),
            TrackingStatus::Returned => (Self::Returned, Some(JobAction::ApproveRefund)),
        })
    }
}

impl FromStr for OfferStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown offer status {s:?}"))
    }
}

/// `POST /v1/offers` body.
#[derive(Debug, Deserialize)]
pub struct NewOfferBody {
    pub escrow: String,
    pub tracking_number: String,
    pub carrier: String,
    pub buyer: String,
    pub seller: String,
    pub mint: String,
    pub amount: u64,
}

/// A checked new offer: addresses are valid non-default keys, the amount fits Postgres' bigint.
#[derive(Debug)]
pub struct NewOffer {
    pub escrow: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub mint: Pubkey,
    pub tracking_number: String,
    pub carrier: String,
    pub amount: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("{0} is not a valid base58 address")]
    BadAddress(&'static str),
    #[error("amount must be between 1 and {}", i64::MAX)]
    BadAmount,
    #[error(transparent)]
    Field(#[from] ParseError),
}

impl TryFrom<NewOfferBody> for NewOffer {
    type Error = OfferError;
    fn try_from(b: NewOfferBody) -> Result<Self, OfferError> {
        let key = |name: &'static str, v: &str| {
            v.parse::<Pubkey>()
                .ok()
                .filter(|k| *k != Pubkey::default())
                .ok_or(OfferError::BadAddress(name))
        };
        check_len("tracking_number", &b.tracking_number, 64)?;
        check_len("carrier", &b.carrier, 32)?;
        Ok(Self {
            escrow: key("escrow", &b.escrow)?,
            buyer: key("buyer", &b.buyer)?,
            seller: key("seller", &b.seller)?,
            mint: key("mint", &b.mint)?,
            amount: i64::try_from(b.amount)
                .ok()
                .filter(|a| *a > 0)
                .ok_or(OfferError::BadAmount)?,
            tracking_number: b.tracking_number,
            carrier: b.carrier.trim().to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_absorb_everything() {
        for event in [
            TrackingStatus::InTransit,
            TrackingStatus::Delivered,
            TrackingStatus::Returned,
        ] {
            assert_eq!(OfferStatus::Delivered.apply(event), None);
            assert_eq!(OfferStatus::Returned.apply(event), None);
        }
        assert_eq!(
            OfferStatus::Exception.apply(TrackingStatus::Delivered),
            Some((OfferStatus::Delivered, Some(JobAction::ApproveRelease)))
        );
        assert_eq!(
            OfferStatus::AwaitingShipment
                .apply(TrackingStatus::Returned)
                .unwrap()
                .1,
            Some(JobAction::ApproveRefund)
        );
    }
}
