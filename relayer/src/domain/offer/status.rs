//! Where an offer's shipment is, and how tracking moves it: the offer's state machine.
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::tracking::TrackingStatus;

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
            TrackingStatus::Unrecognised => return None,
            TrackingStatus::InTransit => (Self::InTransit, None),
            TrackingStatus::OutForDelivery => (Self::OutForDelivery, None),
            TrackingStatus::Exception => (Self::Exception, None),
            TrackingStatus::Delivered => (Self::Delivered, Some(JobAction::ApproveRelease)),
            TrackingStatus::Returned => (Self::Returned, Some(JobAction::ApproveRefund)),
        })
    }
}

impl OfferStatus {
    /// `apply` with the carrier's dates: progress in transit follows them, so a late event does
    /// not move the status back (`status_at` is the date of the event that set the status); an
    /// end applies whatever its date, since a timestamp, right or wrong, must never keep a
    /// shipment from ending. The database applies this rule in `ingest_events()` (migration
    /// 0010); a test holds the two to the same answers.
    pub fn after(
        self,
        event: TrackingStatus,
        occurred_at: DateTime<Utc>,
        status_at: Option<DateTime<Utc>>,
    ) -> Option<(OfferStatus, Option<JobAction>)> {
        let in_order = event.is_final() || status_at.is_none_or(|at| occurred_at >= at);
        self.apply(event).filter(|_| in_order)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tracking::TrackingStatus;

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
