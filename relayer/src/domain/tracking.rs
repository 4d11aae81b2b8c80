//! A carrier's tracking update, parsed and checked at the edge.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The statuses a provider may report. Anything else is a malformed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    InTransit,
    OutForDelivery,
    Delivered,
    Returned,
    Exception,
    /// A provider's status with no meaning here (label created, unknown, expired): stored,
    /// changes nothing. Never read from the relayer's own body format.
    #[serde(skip_deserializing)]
    Unrecognised,
}

impl TrackingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Returned => "returned",
            Self::Exception => "exception",
            Self::Unrecognised => "unrecognised",
        }
    }

    /// The shipment's end: delivered to the buyer or returned to the seller.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Returned)
    }
}

/// The webhook body. Unknown fields are ignored; `details` is kept as given.
#[derive(Debug, Deserialize)]
pub struct TrackingEventBody {
    /// Optional when the Standard Webhooks `webhook-id` header carries the id.
    pub event_id: Option<String>,
    pub tracking_number: String,
    pub carrier: String,
    pub status: TrackingStatus,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

/// What a tracking provider's webhook says, read from its own format (`crate::providers`).
#[derive(Debug)]
pub struct Reported {
    pub event_id: String,
    pub tracking_number: String,
    pub carrier: String,
    pub status: TrackingStatus,
    pub occurred_at: DateTime<Utc>,
}

/// A verified, well-formed event with its id settled.
#[derive(Debug)]
pub struct TrackingEvent {
    pub event_id: String,
    pub tracking_number: String,
    pub carrier: String,
    pub status: TrackingStatus,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("body is not a valid tracking event: {0}")]
    Json(String),
    #[error("event id missing: send event_id or the webhook-id header")]
    NoEventId,
    #[error("{0} must be 1 to {1} characters")]
    BadLength(&'static str, usize),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("body must not contain NUL characters (\\u0000)")]
    NulCharacter,
    #[error("{0} must not contain control characters")]
    ControlCharacter(&'static str),
    #[error("{0}")]
    DuplicateKey(String),
    #[error("occurred_at is more than {} minutes ahead of this server's clock: check the sender's clock", MAX_CLOCK_SKEW.num_minutes())]
    FromTheFuture,
}

/// How far ahead of the relayer's clock an event may be dated. Beyond it the event is refused: a
/// signed but wrong date far ahead would otherwise outrank every later genuine event and freeze
/// the offer (`Offer::status_at` orders events).
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// Postgres stores neither in text nor in jsonb a NUL character: refuse it here, as a bad
/// request, rather than fail every redelivery at insert.
fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v))
        }
        _ => false,
    }
}

impl TrackingEvent {
    /// `header_id` (Standard Webhooks `webhook-id`) wins over the body's `event_id`: it is the
    /// value the signature covers. `now` bounds `occurred_at` (`MAX_CLOCK_SKEW`).
    pub fn parse(
        body: &[u8],
        header_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, ParseError> {
        super::json::reject_duplicate_keys(body).map_err(ParseError::DuplicateKey)?;
        let parsed: TrackingEventBody =
            serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        let payload: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        // serde also reads a struct from an array, in field order: only objects are events.
        if !payload.is_object() {
            return Err(ParseError::NotAnObject);
        }
        let event_id = header_id.or(parsed.event_id).ok_or(ParseError::NoEventId)?;
        Self::reported(
            Reported {
                event_id,
                tracking_number: parsed.tracking_number,
                carrier: parsed.carrier,
                status: parsed.status,
                occurred_at: parsed.occurred_at,
            },
            payload,
            now,
        )
    }

    /// The same checks for every format: lengths, control characters, NUL anywhere in the
    /// payload, and a date at most `MAX_CLOCK_SKEW` ahead of `now`.
    pub fn reported(
        r: Reported,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Self, ParseError> {
        if contains_nul(&payload) || r.event_id.contains('\0') {
            return Err(ParseError::NulCharacter);
        }
        check_len("event_id", &r.event_id, 128)?;
        check_len("tracking_number", &r.tracking_number, 64)?;
        check_len("carrier", &r.carrier, 32)?;
        if r.occurred_at > now + MAX_CLOCK_SKEW {
            return Err(ParseError::FromTheFuture);
        }
        Ok(Self {
            event_id: r.event_id,
            tracking_number: r.tracking_number,
            // Carriers are matched case-insensitively: "UPS" and "ups" are one carrier.
            carrier: r.carrier.trim().to_ascii_lowercase(),
            status: r.status,
            occurred_at: r.occurred_at,
            payload,
        })
    }
}

/// A short identifier as people and carriers write them: 1 to `max` bytes, not blank, no
/// control characters (NUL among them, which Postgres cannot store).
pub fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.trim().is_empty() || value.len() > max {
        return Err(ParseError::BadLength(field, max));
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::ControlCharacter(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_nul_characters_are_refused() {
        let array = br#"["e1","1Z9","ups","delivered","2026-01-01T00:00:00Z",null]"#;
        assert_eq!(
            TrackingEvent::parse(array, None, Utc::now()).unwrap_err(),
            ParseError::NotAnObject
        );
        let nul = br#"{"event_id":"e1","tracking_number":"1Z\u00009","carrier":"ups",
                       "status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert_eq!(
            TrackingEvent::parse(nul, None, Utc::now()).unwrap_err(),
            ParseError::NulCharacter
        );
        let nested = br#"{"event_id":"e1","tracking_number":"1Z9","carrier":"ups",
                          "status":"delivered","occurred_at":"2026-11-26T10:00:00Z","details":{"x":["\u0000"]}}"#;
        assert_eq!(
            TrackingEvent::parse(nested, None, Utc::now()).unwrap_err(),
            ParseError::NulCharacter
        );
    }

    #[test]
    fn parses_and_ignores_unknown_fields() {
        let body = br#"{"event_id":"e1","tracking_number":"1Z9","carrier":"ups","status":"delivered",
                        "occurred_at":"2026-11-26T10:00:00Z","details":{"signed_by":"J"},"extra":true}"#;
        let e = TrackingEvent::parse(body, None, Utc::now()).unwrap();
        assert_eq!(
            (e.event_id.as_str(), e.status),
            ("e1", TrackingStatus::Delivered)
        );
        assert_eq!(
            TrackingEvent::parse(body, Some("h1".into()), Utc::now())
                .unwrap()
                .event_id,
            "h1"
        );
    }

    #[test]
    fn refuses_missing_mistyped_or_unknown_values() {
        let missing = br#"{"event_id":"e1","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert!(matches!(
            TrackingEvent::parse(missing, None, Utc::now()),
            Err(ParseError::Json(_))
        ));
        let bad_status = br#"{"event_id":"e1","tracking_number":"1","carrier":"ups","status":"lost","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert!(matches!(
            TrackingEvent::parse(bad_status, None, Utc::now()),
            Err(ParseError::Json(_))
        ));
        let bad_time = br#"{"event_id":"e1","tracking_number":"1","carrier":"ups","status":"delivered","occurred_at":"yesterday"}"#;
        assert!(matches!(
            TrackingEvent::parse(bad_time, None, Utc::now()),
            Err(ParseError::Json(_))
        ));
        let no_id = br#"{"tracking_number":"1","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert_eq!(
            TrackingEvent::parse(no_id, None, Utc::now()).unwrap_err(),
            ParseError::NoEventId
        );
        let empty = br#"{"event_id":"e1","tracking_number":" ","carrier":"ups","status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert_eq!(
            TrackingEvent::parse(empty, None, Utc::now()).unwrap_err(),
            ParseError::BadLength("tracking_number", 64)
        );
    }

    #[test]
    fn duplicate_keys_control_characters_and_far_future_dates_are_refused() {
        let now = Utc::now();
        let twice =
            br#"{"event_id":"e1","tracking_number":"1Z9","carrier":"ups","status":"in_transit",
                         "status":"delivered","occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert!(matches!(
            TrackingEvent::parse(twice, None, now),
            Err(ParseError::DuplicateKey(_))
        ));
        let tab =
            br#"{"event_id":"e1","tracking_number":"1Z\t9","carrier":"ups","status":"delivered",
                       "occurred_at":"2026-11-26T10:00:00Z"}"#;
        assert_eq!(
            TrackingEvent::parse(tab, None, now).unwrap_err(),
            ParseError::ControlCharacter("tracking_number")
        );
        let at = |t: chrono::DateTime<Utc>| {
            format!(
                r#"{{"event_id":"e1","tracking_number":"1Z9","carrier":"ups","status":"delivered","occurred_at":"{}"}}"#,
                t.to_rfc3339()
            )
        };
        let ahead = at(now + chrono::Duration::hours(1));
        assert_eq!(
            TrackingEvent::parse(ahead.as_bytes(), None, now).unwrap_err(),
            ParseError::FromTheFuture
        );
        let skewed = at(now + chrono::Duration::minutes(5));
        assert!(
            TrackingEvent::parse(skewed.as_bytes(), None, now).is_ok(),
            "within the skew"
        );
    }
}
