//! 17TRACK, API v2.2/v2.4 (https://asset.17track.net/api/document/v2.2_en/index.html, statuses:
//! https://help.17track.net/hc/en-us/articles/37471096573337): the `sign` header is the hex
//! SHA-256 of `body + "/" + <API security key>` (a keyed hash, not an HMAC; no timestamp). The
//! event is `TRACKING_UPDATED` with the shipment in `data`; 17TRACK sends no event id, and its
//! `TRACKING_STOPPED` notices come unsigned, so they are refused like any unsigned body.
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{date, derived_id, event, header, text, Parsed, Provider};
use crate::{
    config::Secret,
    domain::{
        signature::SignatureError,
        tracking::{ParseError, Reported, TrackingStatus},
    },
};

pub const SIGNATURE: &str = "sign";

pub fn verify(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    keys: &[Secret],
) -> Result<(), SignatureError> {
    let expected =
        hex::decode(header(headers, SIGNATURE)?).map_err(|_| SignatureError::Malformed)?;
    let ok = keys.iter().any(|key| {
        let mut h = Sha256::new();
        h.update(body);
        h.update(b"/");
        h.update(key.expose());
        bool::from(h.finalize().as_slice().ct_eq(&expected))
    });
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `latest_status.status` (and `sub_status`) → ours. A return is an exception sub-status:
/// `Exception_Returned` (the sender has it back) ends the shipment, `Exception_Returning` does
/// not yet. `NotFound`, `InfoReceived` and `Expired` change nothing.
pub fn status(status: &str, sub_status: &str) -> TrackingStatus {
    match (status, sub_status) {
        ("Exception", "Exception_Returned") => TrackingStatus::Returned,
        ("InTransit" | "AvailableForPickup", _) => TrackingStatus::InTransit,
        ("OutForDelivery", _) => TrackingStatus::OutForDelivery,
        ("Delivered", _) => TrackingStatus::Delivered,
        ("DeliveryFailure" | "Exception", _) => TrackingStatus::Exception,
        _ => TrackingStatus::Unrecognised,
    }
}

pub fn parse(payload: Value, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let kind = text(&payload, "/event")?;
    if kind != "TRACKING_UPDATED" {
        return Ok(Parsed::Ignored(format!("17TRACK event {kind}")));
    }
    let number = text(&payload, "/data/number")?;
    // A numeric carrier key (100002 is UPS), kept as 17TRACK writes it.
    let carrier = match payload.pointer("/data/carrier") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ParseError::Json("/data/carrier is missing".into())),
    };
    let latest = "/data/track_info/latest_status";
    let raw_status = text(&payload, &format!("{latest}/status"))?;
    let sub_status = payload
        .pointer(&format!("{latest}/sub_status"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let time = "/data/track_info/latest_event/time_utc";
    let reported = Reported {
        event_id: derived_id(
            Provider::SeventeenTrack,
            &[
                number,
                &carrier,
                raw_status,
                sub_status,
                text(&payload, time)?,
            ],
        ),
        tracking_number: number.to_owned(),
        carrier,
        status: status(raw_status, sub_status),
        occurred_at: date(&payload, time)?,
    };
    event(reported, payload, now)
}
