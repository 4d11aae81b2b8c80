//! Registering an offer (`POST /v1/offers`): the body as sent, and the checked offer and deal
//! terms it becomes, refused at the edge when the program would refuse them.
use anchor_lang::prelude::Pubkey;
use serde::Deserialize;

use crate::domain::tracking::{check_len, ParseError};
use escrow::state::{MAX_APPROVERS, MAX_TIMELOCK_SECS};

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
}
