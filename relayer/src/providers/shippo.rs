//! Shippo (https://docs.goshippo.com/docs/tracking/webhooksecurity,
//! https://docs.goshippo.com/docs/Tracking/Tracking): in HMAC mode,
//! `Shippo-Auth-Signature: t=<unix>,v1=<hex>` with HMAC-SHA256 over `"{t}.{body}"`, accepted
//! within ±5 minutes. Unsigned mode (an IP allow-list or a `?token=` in the URL) is refused. The
//! event is `track_updated` with the Track in `data`; Shippo sends no event id.
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{date, derived_id, event, fresh, header, hmac_matches, text, Parsed, Provider};
use crate::{
    config::Secret,
    domain::{
        signature::SignatureError,
        tracking::{ParseError, Reported, TrackingStatus},
    },
};

pub const SIGNATURE: &str = "shippo-auth-signature";

pub fn verify(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let value = header(headers, SIGNATURE)?;
    let (mut t, mut v1) = (None, Vec::new());
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", ts)) => t = Some(ts),
            Some(("v1", sig)) => v1.push(hex::decode(sig).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    fresh(t.parse().map_err(|_| SignatureError::Malformed)?, now_unix)?;
    if v1
        .iter()
        .any(|sig| hmac_matches(secrets, &[t.as_bytes(), b".", body], sig))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `tracking_status.status` (and `substatus.code`) → ours. `PRE_TRANSIT` and `UNKNOWN` change
/// nothing.
pub fn status(status: &str, substatus: &str) -> TrackingStatus {
    match (status, substatus) {
        ("TRANSIT", "out_for_delivery") => TrackingStatus::OutForDelivery,
        ("TRANSIT", _) => TrackingStatus::InTransit,
        ("DELIVERED", _) => TrackingStatus::Delivered,
        ("RETURNED", _) => TrackingStatus::Returned,
        ("FAILURE", _) => TrackingStatus::Exception,
        _ => TrackingStatus::Unrecognised,
    }
}

pub fn parse(payload: Value, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let kind = text(&payload, "/event")?;
    if kind != "track_updated" {
        return Ok(Parsed::Ignored(format!("Shippo event {kind}")));
    }
    let tracking_number = text(&payload, "/data/tracking_number")?;
    let raw_status = text(&payload, "/data/tracking_status/status")?;
    let substatus = payload
        .pointer("/data/tracking_status/substatus/code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status_date = text(&payload, "/data/tracking_status/status_date")?;
    let reported = Reported {
        event_id: derived_id(
            Provider::Shippo,
            &[tracking_number, raw_status, substatus, status_date],
        ),
        tracking_number: tracking_number.to_owned(),
        carrier: text(&payload, "/data/carrier")?.to_owned(),
        status: status(raw_status, substatus),
        occurred_at: date(&payload, "/data/tracking_status/status_date")?,
    };
    event(reported, payload, now)
}
