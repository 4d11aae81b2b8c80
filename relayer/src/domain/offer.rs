//! Offers: an on-chain escrow linked to a shipment, and how tracking moves its status.
use std::str::FromStr;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use super::tracking::{check_len, ParseError, TrackingStatus};
use escrow::state::{MAX_APPROVERS, MAX_TIMELOCK_SECS};

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

/// `POST /v1/offers` body. With `terms`, the escrow does not exist yet: its address follows from
/// the buyer and `terms.id`, and the buyer funds it through the deposit action.
#[derive(Debug, Deserialize)]
pub struct NewOfferBody {
    pub escrow: Option<String>,
    pub terms: Option<DealTermsBody>,
    pub tracking_number: String,
    pub carrier: String,
    pub buyer: String,
    pub seller: String,
    pub mint: String,
    pub amount: u64,
}

/// The policy the buyer's create instruction will carry (see the program's `CreateArgs`).
#[derive(Debug, Deserialize)]
pub struct DealTermsBody {
    pub id: u64,
    pub approvers: Vec<String>,
    pub threshold: u8,
    pub timelock_secs: u32,
    /// Unix seconds.
    pub refund_after: i64,
}

/// Deal terms the program will accept: checked here with the program's own bounds, so a buyer
/// is never handed a transaction that must fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealTerms {
    pub id: u64,
    pub approvers: Vec<Pubkey>,
    pub threshold: u8,
    pub timelock_secs: u32,
    pub refund_after: i64,
}

/// A checked new offer: addresses are valid non-default keys, the amount fits Postgres' bigint.
#[derive(Debug)]
pub struct NewOffer {
    pub escrow: Pubkey,
    pub terms: Option<DealTerms>,
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
    #[error("send escrow, or terms to derive it from")]
    NoEscrow,
    #[error("escrow {given} is not the address of terms.id {id} for this buyer ({derived})")]
    EscrowMismatch {
        given: Pubkey,
        id: u64,
        derived: Pubkey,
    },
    #[error("terms.id must be at most {}", i64::MAX)]
    BadEscrowId,
    #[error("terms.approvers must list 1 to {MAX_APPROVERS} distinct keys")]
    BadApprovers,
    #[error("terms.threshold must be between 1 and the number of approvers")]
    BadThreshold,
    #[error("terms.timelock_secs must be at most {MAX_TIMELOCK_SECS} (30 days)")]
    BadTimelock,
    #[error("terms.refund_after must be a future unix time")]
    RefundDeadlineInPast,
}

impl DealTermsBody {
    fn check(self, now: i64) -> Result<DealTerms, OfferError> {
        if i64::try_from(self.id).is_err() {
            return Err(OfferError::BadEscrowId);
        }
        let approvers = self
            .approvers
            .iter()
            .map(|a| a.parse::<Pubkey>().ok().filter(|k| *k != Pubkey::default()))
            .collect::<Option<Vec<_>>>()
            .ok_or(OfferError::BadAddress("terms.approvers"))?;
        let distinct = approvers
            .iter()
            .enumerate()
            .all(|(i, a)| !approvers[..i].contains(a));
        if approvers.is_empty() || approvers.len() > MAX_APPROVERS || !distinct {
            return Err(OfferError::BadApprovers);
        }
        if self.threshold == 0 || usize::from(self.threshold) > approvers.len() {
            return Err(OfferError::BadThreshold);
        }
        if self.timelock_secs > MAX_TIMELOCK_SECS {
            return Err(OfferError::BadTimelock);
        }
        if self.refund_after <= now {
            return Err(OfferError::RefundDeadlineInPast);
        }
        Ok(DealTerms {
            id: self.id,
            approvers,
            threshold: self.threshold,
            timelock_secs: self.timelock_secs,
            refund_after: self.refund_after,
        })
    }
}

/// The `deal_ref` an offer's escrow carries on-chain: the offer id, zero-padded, so anyone can
/// tell which offer an escrow pays for.
pub fn deal_ref(offer_id: uuid::Uuid) -> [u8; 32] {
    let mut r = [0; 32];
    r[..16].copy_from_slice(offer_id.as_bytes());
    r
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
        let buyer = key("buyer", &b.buyer)?;
        let given = b.escrow.as_deref().map(|e| key("escrow", e)).transpose()?;
        let terms = b
            .terms
            .map(|t| t.check(chrono::Utc::now().timestamp()))
            .transpose()?;
        let escrow = match (&terms, given) {
            (None, None) => return Err(OfferError::NoEscrow),
            (None, Some(given)) => given,
            (Some(terms), given) => {
                let derived = escrow::client::escrow_address(&buyer, terms.id).0;
                match given {
                    Some(given) if given != derived => {
                        return Err(OfferError::EscrowMismatch {
                            given,
                            id: terms.id,
                            derived,
                        })
                    }
                    _ => derived,
                }
            }
        };
        Ok(Self {
            escrow,
            terms,
            buyer,
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

    fn body(terms: Option<DealTermsBody>, escrow: Option<String>) -> NewOfferBody {
        NewOfferBody {
            escrow,
            terms,
            tracking_number: "1Z".into(),
            carrier: "UPS".into(),
            buyer: Pubkey::new_unique().to_string(),
            seller: Pubkey::new_unique().to_string(),
            mint: Pubkey::new_unique().to_string(),
            amount: 1,
        }
    }

    fn terms(approvers: Vec<String>, threshold: u8) -> DealTermsBody {
        DealTermsBody {
            id: 7,
            approvers,
            threshold,
            timelock_secs: 60,
            refund_after: chrono::Utc::now().timestamp() + 3_600,
        }
    }

    #[test]
    fn terms_are_checked_with_the_programs_bounds() {
        let [a, b] = [Pubkey::new_unique(), Pubkey::new_unique()].map(|k| k.to_string());
        let ok =
            NewOffer::try_from(body(Some(terms(vec![a.clone(), b.clone()], 2)), None)).unwrap();
        let t = ok.terms.as_ref().unwrap();
        assert_eq!(ok.escrow, escrow::client::escrow_address(&ok.buyer, 7).0);
        assert_eq!((t.approvers.len(), t.threshold), (2, 2));

        let err = |b| NewOffer::try_from(b).unwrap_err();
        assert_eq!(
            err(body(Some(terms(vec![a.clone(), a.clone()], 1)), None)),
            OfferError::BadApprovers
        );
        assert_eq!(
            err(body(Some(terms(vec![], 1)), None)),
            OfferError::BadApprovers
        );
        assert_eq!(
            err(body(Some(terms(vec![a.clone()], 2)), None)),
            OfferError::BadThreshold
        );
        assert_eq!(
            err(body(Some(terms(vec![a.clone()], 0)), None)),
            OfferError::BadThreshold
        );
        let mut late = terms(vec![a.clone()], 1);
        late.refund_after = 1;
        assert_eq!(
            err(body(Some(late), None)),
            OfferError::RefundDeadlineInPast
        );
        let mut long = terms(vec![a.clone()], 1);
        long.timelock_secs = MAX_TIMELOCK_SECS + 1;
        assert_eq!(err(body(Some(long), None)), OfferError::BadTimelock);
        let other = Pubkey::new_unique().to_string();
        assert!(matches!(
            err(body(Some(terms(vec![a], 1)), Some(other))),
            OfferError::EscrowMismatch { id: 7, .. }
        ));
        assert_eq!(err(body(None, None)), OfferError::NoEscrow);
    }

    use proptest::prelude::*;

    fn any_event() -> impl Strategy<Value = TrackingStatus> {
        prop_oneof![
            Just(TrackingStatus::InTransit),
            Just(TrackingStatus::OutForDelivery),
            Just(TrackingStatus::Exception),
            Just(TrackingStatus::Delivered),
            Just(TrackingStatus::Returned),
        ]
    }

    proptest! {
        /// Whatever the carrier sends, in whatever order: once final, an offer stays as it is,
        /// it asks for at most one job, and that job agrees with where the shipment ended.
        #[test]
        fn every_sequence_ends_in_one_consistent_outcome(
            events in proptest::collection::vec(any_event(), 0..24)
        ) {
            let mut status = OfferStatus::AwaitingShipment;
            let mut jobs = Vec::new();
            let mut final_at = None;
            for (i, event) in events.iter().enumerate() {
                if let Some((next, job)) = status.apply(*event) {
                    prop_assert!(final_at.is_none(), "a final status moved at event {i}");
                    status = next;
                    jobs.extend(job);
                    if status.is_final() {
                        final_at = Some(i);
                    }
                }
            }
            prop_assert!(jobs.len() <= 1, "two jobs: {jobs:?}");
            let expected = match status {
                OfferStatus::Delivered => Some(JobAction::ApproveRelease),
                OfferStatus::Returned => Some(JobAction::ApproveRefund),
                _ => None,
            };
            prop_assert_eq!(jobs.first().copied(), expected);
            let first_final = events
                .iter()
                .position(|e| matches!(e, TrackingStatus::Delivered | TrackingStatus::Returned));
            prop_assert_eq!(final_at, first_final, "the first final event decides");
        }
    }

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
