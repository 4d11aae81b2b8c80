//! Tracking providers' own webhooks, `POST /webhooks/{provider}`: each verified its provider's
//! way on the raw body, then read into a `TrackingEvent` through one status table per provider.
//!
//! | provider | proof | event id |
//! |---|---|---|
//! | `easypost` | `X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256(body)>`, key NFKD-normalised | `id` |
//! | `aftership` | `aftership-hmac-sha256: <base64 HMAC-SHA256(body)>` | `event_id` |
//! | `shippo` | `Shippo-Auth-Signature: t=<unix>,v1=<hex HMAC-SHA256("{t}.{body}")>`, ±5 min | derived |
//! | `17track` | `sign: <hex SHA-256(body + "/" + API key)>` | derived |
//! | `shipengine` | RSA-SHA256 over `"{timestamp}.{body}"`, key from its JWKS by key id, ±5 min | derived |
//!
//! A derived id hashes the tracking number, the provider's status and its date, so a provider's
//! redelivery of the same update is a duplicate. Ids are prefixed with the provider's name.
//! Providers that sign no timestamp rely on that id store and on delivered/returned being final.
//! A provider whose secret is not configured answers 404: nothing unsigned is ever accepted.
pub mod aftership;
pub mod easypost;
pub mod seventeen_track;
pub mod shipengine;
pub mod shippo;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    config::Secret,
    domain::{
        signature::SignatureError,
        tracking::{ParseError, Reported, TrackingEvent},
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    EasyPost,
    AfterShip,
    Shippo,
    SeventeenTrack,
    ShipEngine,
}

impl Provider {
    pub const ALL: [Self; 5] = [
        Self::EasyPost,
        Self::AfterShip,
        Self::Shippo,
        Self::SeventeenTrack,
        Self::ShipEngine,
    ];

    /// The path segment, the metrics label and the event ids' prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::EasyPost => "easypost",
            Self::AfterShip => "aftership",
            Self::Shippo => "shippo",
            Self::SeventeenTrack => "17track",
            Self::ShipEngine => "shipengine",
        }
    }

    pub fn from_path(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == segment)
    }

    /// Reads a verified body: an event, or something this relayer has no use for.
    pub fn parse(self, body: &[u8], now: DateTime<Utc>) -> Result<Parsed, ParseError> {
        let payload = checked_json(body)?;
        match self {
            Self::EasyPost => easypost::parse(payload, now),
            Self::AfterShip => aftership::parse(payload, now),
            Self::Shippo => shippo::parse(payload, now),
            Self::SeventeenTrack => seventeen_track::parse(payload, now),
            Self::ShipEngine => shipengine::parse(payload, now),
        }
    }
}

/// What a verified provider body holds.
#[derive(Debug)]
pub enum Parsed {
    Event(TrackingEvent),
    /// Another kind of notification (a label bought, a test ping): acknowledged, not stored.
    Ignored(String),
}

/// The HMAC keys each provider's webhooks are checked with (several while rotating); empty: the
/// provider's endpoint answers 404.
#[derive(Clone, Debug, Default)]
pub struct ProviderSecrets {
    /// NFKD-normalised, as EasyPost's own libraries key the HMAC.
    pub easypost: Vec<Secret>,
    pub aftership: Vec<Secret>,
    pub shippo: Vec<Secret>,
    /// 17TRACK's API security key: it is what `sign` hashes with.
    pub seventeen_track: Vec<Secret>,
}

impl ProviderSecrets {
    pub fn of(&self, provider: Provider) -> &[Secret] {
        match provider {
            Provider::EasyPost => &self.easypost,
            Provider::AfterShip => &self.aftership,
            Provider::Shippo => &self.shippo,
            Provider::SeventeenTrack => &self.seventeen_track,
            Provider::ShipEngine => &[],
        }
    }

    pub fn same_as(&self, other: &Self) -> bool {
        let same = |a: &[Secret], b: &[Secret]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.expose() == y.expose())
        };
        Provider::ALL
            .into_iter()
            .all(|p| same(self.of(p), other.of(p)))
    }
}

/// How far a signed timestamp may be from our clock (Shippo, ShipEngine).
pub const TOLERANCE_SECS: i64 = 5 * 60;

pub(crate) fn header<'h>(
    headers: &'h axum::http::HeaderMap,
    name: &str,
) -> Result<&'h str, SignatureError> {
    headers
        .get(name)
        .ok_or(SignatureError::Missing)?
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureError::Malformed)
}

/// Whether some secret's HMAC-SHA256 over `parts` is `expected` (constant-time).
pub(crate) fn hmac_matches(secrets: &[Secret], parts: &[&[u8]], expected: &[u8]) -> bool {
    secrets.iter().any(|s| {
        let mut m =
            Hmac::<Sha256>::new_from_slice(s.expose()).expect("HMAC accepts any key length");
        for part in parts {
            m.update(part);
        }
        m.verify_slice(expected).is_ok()
    })
}

/// Refuses a timestamp outside the window; checked arithmetic, the value is attacker-chosen.
pub(crate) fn fresh(sent_unix: i64, now_unix: i64) -> Result<(), SignatureError> {
    match now_unix.checked_sub(sent_unix) {
        Some(d) if d.abs() <= TOLERANCE_SECS => Ok(()),
        _ => Err(SignatureError::Stale),
    }
}

/// One JSON object with distinct keys and no NUL, as every event body must be.
fn checked_json(body: &[u8]) -> Result<Value, ParseError> {
    crate::domain::json::reject_duplicate_keys(body).map_err(ParseError::DuplicateKey)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(ParseError::NotAnObject);
    }
    Ok(value)
}

/// A string field at `path` (`/a/b`), or why not.
pub(crate) fn text<'v>(value: &'v Value, path: &str) -> Result<&'v str, ParseError> {
    value
        .pointer(path)
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::Json(format!("{path} is missing or not a string")))
}

/// A provider's date: RFC 3339 (with its offset), or a date-time without one, read as UTC.
pub(crate) fn date(value: &Value, path: &str) -> Result<DateTime<Utc>, ParseError> {
    let raw = text(value, path)?;
    DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").map(|d| d.and_utc())
        })
        .map_err(|_| ParseError::Json(format!("{path} is not a date: {raw:?}")))
}

/// An id for providers that send none: the same update delivered twice gets the same id.
pub(crate) fn derived_id(provider: Provider, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("{}:{}", provider.name(), &hex::encode(h.finalize())[..40])
}

pub(crate) fn event(
    reported: Reported,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Parsed, ParseError> {
    TrackingEvent::reported(reported, payload, now).map(Parsed::Event)
}

/// Test and demo helpers: sign a body the way each provider does.
pub mod sign {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    /// `X-Hmac-Signature` (the secret NFKD-normalised first, as EasyPost does).
    pub fn easypost(secret: &str, body: &[u8]) -> String {
        let key = super::easypost::normalise(secret);
        format!("hmac-sha256-hex={}", hex::encode(hmac(&key, &[body])))
    }

    /// `aftership-hmac-sha256`.
    pub fn aftership(secret: &str, body: &[u8]) -> String {
        STANDARD.encode(hmac(secret.as_bytes(), &[body]))
    }

    /// `Shippo-Auth-Signature` for a body sent at `t`.
    pub fn shippo(secret: &str, t: i64, body: &[u8]) -> String {
        let signed = hmac(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
        format!("t={t},v1={}", hex::encode(signed))
    }

    /// 17TRACK's `sign`.
    pub fn seventeen_track(key: &str, body: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(body);
        h.update(b"/");
        h.update(key.as_bytes());
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn keys(secret: &str) -> Vec<Secret> {
        vec![
            Secret::new(b"an-old-secret-still-listed".to_vec()),
            Secret::new(secret.as_bytes().to_vec()),
        ]
    }

    #[test]
    fn easypost_keys_the_hmac_with_the_nfkd_form_of_the_secret() {
        // "é" precomposed (NFC) and decomposed (NFKD) are one secret to EasyPost.
        assert_eq!(
            easypost::normalise("s\u{e9}cret"),
            "se\u{301}cret".as_bytes()
        );
        let body = br#"{"id":"evt_1"}"#;
        let signed = sign::easypost("s\u{e9}cret", body);
        let key = vec![Secret::new(easypost::normalise("s\u{e9}cret"))];
        assert_eq!(
            easypost::verify(&headers(easypost::SIGNATURE, &signed), body, &key),
            Ok(())
        );
        let nfc = vec![Secret::new("s\u{e9}cret".as_bytes().to_vec())];
        assert_eq!(
            easypost::verify(&headers(easypost::SIGNATURE, &signed), body, &nfc),
            Err(SignatureError::Mismatch)
        );
        let bare = signed.trim_start_matches("hmac-sha256-hex=");
        assert_eq!(
            easypost::verify(&headers(easypost::SIGNATURE, bare), body, &key),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn each_scheme_accepts_its_own_signature_and_nothing_else() {
        let body = br#"{"event":"x"}"#;
        let tampered = br#"{"event":"y"}"#;
        let ok = headers(aftership::SIGNATURE, &sign::aftership("after-secret", body));
        assert_eq!(aftership::verify(&ok, body, &keys("after-secret")), Ok(()));
        assert_eq!(
            aftership::verify(&ok, tampered, &keys("after-secret")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            aftership::verify(&HeaderMap::new(), body, &keys("after-secret")),
            Err(SignatureError::Missing)
        );

        let ok = headers(
            seventeen_track::SIGNATURE,
            &sign::seventeen_track("key-17", body),
        );
        assert_eq!(seventeen_track::verify(&ok, body, &keys("key-17")), Ok(()));
        assert_eq!(
            seventeen_track::verify(&ok, tampered, &keys("key-17")),
            Err(SignatureError::Mismatch)
        );

        let now = 1_800_000_000;
        let ok = headers(shippo::SIGNATURE, &sign::shippo("shippo-secret", now, body));
        assert_eq!(
            shippo::verify(&ok, body, &keys("shippo-secret"), now + 60),
            Ok(())
        );
        assert_eq!(
            shippo::verify(&ok, body, &keys("shippo-secret"), now + TOLERANCE_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            shippo::verify(&ok, tampered, &keys("shippo-secret"), now),
            Err(SignatureError::Mismatch)
        );
        let overflow = headers(shippo::SIGNATURE, &format!("t={},v1=00", i64::MIN));
        assert_eq!(
            shippo::verify(&overflow, body, &keys("shippo-secret"), now),
            Err(SignatureError::Stale)
        );
        let no_t = headers(shippo::SIGNATURE, "v1=00");
        assert_eq!(
            shippo::verify(&no_t, body, &keys("shippo-secret"), now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn derived_ids_are_stable_and_separate_fields() {
        let a = derived_id(
            Provider::Shippo,
            &["1Z", "DELIVERED", "2026-12-01T00:00:00Z"],
        );
        assert_eq!(
            a,
            derived_id(
                Provider::Shippo,
                &["1Z", "DELIVERED", "2026-12-01T00:00:00Z"]
            )
        );
        assert_ne!(
            a,
            derived_id(
                Provider::Shippo,
                &["1ZD", "ELIVERED", "2026-12-01T00:00:00Z"]
            )
        );
        assert!(a.starts_with("shippo:"));
    }
}

/// Every status each provider documents, with what it means here (the tables' full coverage).
#[cfg(test)]
mod status_tables {
    use crate::domain::tracking::TrackingStatus::{self, *};

    fn check(table: &[(&str, &str, TrackingStatus)], map: impl Fn(&str, &str) -> TrackingStatus) {
        for (status, sub, ours) in table {
            assert_eq!(map(status, sub), *ours, "{status} {sub}");
        }
    }

    #[test]
    fn easypost() {
        // https://docs.easypost.com/docs/trackers: Tracker status.
        check(
            &[
                ("unknown", "", Unrecognised),
                ("pre_transit", "", Unrecognised),
                ("in_transit", "", InTransit),
                ("out_for_delivery", "", OutForDelivery),
                ("delivered", "", Delivered),
                ("available_for_pickup", "", InTransit),
                ("return_to_sender", "", Returned),
                ("failure", "", Exception),
                ("cancelled", "", Unrecognised),
                ("error", "", Unrecognised),
            ],
            |s, _| super::easypost::status(s),
        );
    }

    #[test]
    fn aftership() {
        // https://www.aftership.com/docs/tracking/enum/delivery-statuses and sub-statuses.
        check(
            &[
                ("Pending", "Pending_001", Unrecognised),
                ("InfoReceived", "InfoReceived_001", Unrecognised),
                ("InTransit", "InTransit_001", InTransit),
                ("OutForDelivery", "OutForDelivery_001", OutForDelivery),
                ("AttemptFail", "AttemptFail_001", Exception),
                ("Delivered", "Delivered_001", Delivered),
                ("AvailableForPickup", "AvailableForPickup_001", InTransit),
                ("Exception", "Exception_010", Exception),
                ("Exception", "Exception_011", Returned),
                ("Exception", "Exception_004", Exception),
                ("Expired", "Expired_001", Unrecognised),
            ],
            super::aftership::status,
        );
    }

    #[test]
    fn shippo() {
        // https://docs.goshippo.com/docs/Tracking/Tracking: status and substatus codes.
        check(
            &[
                ("PRE_TRANSIT", "information_received", Unrecognised),
                ("TRANSIT", "package_departed", InTransit),
                ("TRANSIT", "out_for_delivery", OutForDelivery),
                ("TRANSIT", "delivery_attempted", InTransit),
                ("DELIVERED", "delivered", Delivered),
                ("RETURNED", "return_to_sender", Returned),
                ("RETURNED", "package_unclaimed", Returned),
                ("FAILURE", "package_lost", Exception),
                ("UNKNOWN", "other", Unrecognised),
            ],
            super::shippo::status,
        );
    }

    #[test]
    fn seventeen_track() {
        // https://help.17track.net/hc/en-us/articles/37471096573337: main status and sub-status.
        check(
            &[
                ("NotFound", "NotFound_Other", Unrecognised),
                ("InfoReceived", "InfoReceived", Unrecognised),
                ("InTransit", "InTransit_PickedUp", InTransit),
                ("Expired", "Expired_Other", Unrecognised),
                ("AvailableForPickup", "AvailableForPickup_Other", InTransit),
                ("OutForDelivery", "OutForDelivery_Other", OutForDelivery),
                ("DeliveryFailure", "DeliveryFailure_Rejected", Exception),
                ("Delivered", "Delivered_Other", Delivered),
                ("Exception", "Exception_Returning", Exception),
                ("Exception", "Exception_Returned", Returned),
                ("Exception", "Exception_Other", Exception),
            ],
            super::seventeen_track::status,
        );
    }

    #[test]
    fn shipengine() {
        // https://www.shipengine.com/docs/reference/webhooks-schemas/: status_code, and the
        // status_detail_code of a return.
        check(
            &[
                ("UN", "", Unrecognised),
                ("AC", "", InTransit),
                ("IT", "", InTransit),
                ("DE", "", Delivered),
                ("EX", "", Exception),
                ("EX", "RETURN_TO_SENDER", Returned),
                ("AT", "", Exception),
                ("NY", "", Unrecognised),
                ("SP", "", InTransit),
            ],
            super::shipengine::status,
        );
    }
}
