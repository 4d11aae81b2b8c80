//! Webhook authentication, done on the raw body before anything is parsed or stored.
//!
//! Two schemes, each checked against every configured secret (several during rotation):
//! - the deploy checklist's `X-Tracking-Signature`: lowercase hex HMAC-SHA256 of the body;
//! - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> …`
//!   over `id.timestamp.body`, with a ±5 minute window against replays.
//!
//! Comparisons are constant-time (`Mac::verify_slice`).
use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

pub const TRACKING_SIGNATURE: &str = "x-tracking-signature";
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// How far a Standard Webhooks timestamp may be from our clock.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a request was refused, as told to the caller (short, reveals nothing about secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature")]
    Missing,
    #[error("malformed signature header")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    #[error("timestamp outside the tolerance window")]
    Stale,
}

/// A verified request: the event id from the Standard Webhooks header, when that scheme was used.
#[derive(Debug)]
pub struct Verified {
    pub header_id: Option<String>,
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC accepts any key length")
}

pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    now_unix: i64,
) -> Result<Verified, SignatureError> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| SignatureError::Malformed))
    };
    if let Some(signature) = header(TRACKING_SIGNATURE) {
        let expected = hex::decode(signature?.trim()).map_err(|_| SignatureError::Malformed)?;
        let ok = secrets.iter().any(|s| {
            let mut m = mac(s);
            m.update(body);
            m.verify_slice(&expected).is_ok()
        });
        return if ok {
            Ok(Verified { header_id: None })
        } else {
            Err(SignatureError::Mismatch)
        };
    }
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header(WEBHOOK_ID),
        header(WEBHOOK_TIMESTAMP),
        header(WEBHOOK_SIGNATURE),
    ) else {
        return Err(SignatureError::Missing);
    };
    let (id, timestamp, signatures) = (id?, timestamp?, signatures?);
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    // Checked: the timestamp is attacker-chosen and read before the signature is verified.
    if now_unix
        .checked_sub(sent)
        .is_none_or(|d| d.abs() > TOLERANCE_SECS)
    {
        return Err(SignatureError::Stale);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let ok = secrets.iter().any(|s| {
        candidates.iter().any(|candidate| {
            let mut m = mac(s);
            m.update(id.as_bytes());
            m.update(b".");
            m.update(timestamp.as_bytes());
            m.update(b".");
            m.update(body);
            m.verify_slice(candidate).is_ok()
        })
    });
    if ok {
        Ok(Verified {
            header_id: Some(id.to_owned()),
        })
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs like a provider would: the `X-Tracking-Signature` value for `body`.
pub fn tracking_signature(secret: &[u8], body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Signs like a Standard Webhooks provider: the `webhook-signature` value.
pub fn standard_signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const KEY: &[u8] = b"0123456789abcdef0123";
    const NOW: i64 = 1_767_225_600;

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new(b"old-secret-old-secret".to_vec()),
            Secret::new(KEY.to_vec()),
        ]
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn tracking_signature_with_any_configured_secret_verifies() {
        let body = br#"{"a":1}"#;
        let h = headers(&[(TRACKING_SIGNATURE, tracking_signature(KEY, body))]);
        assert!(verify(&h, body, &secrets(), NOW).is_ok());
        let h = headers(&[(
            TRACKING_SIGNATURE,
            tracking_signature(b"old-secret-old-secret", body),
        )]);
        assert!(
            verify(&h, body, &secrets(), NOW).is_ok(),
            "rotated-out secret still accepted"
        );
    }

    #[test]
    fn signature_of_another_body_or_key_is_refused() {
        let h = headers(&[(TRACKING_SIGNATURE, tracking_signature(KEY, b"other"))]);
        assert_eq!(
            verify(&h, b"body", &secrets(), NOW).unwrap_err(),
            SignatureError::Mismatch
        );
        let h = headers(&[(
            TRACKING_SIGNATURE,
            tracking_signature(b"wrong-key-wrong-key", b"body"),
        )]);
        assert_eq!(
            verify(&h, b"body", &secrets(), NOW).unwrap_err(),
            SignatureError::Mismatch
        );
        let h = headers(&[(TRACKING_SIGNATURE, "zz".into())]);
        assert_eq!(
            verify(&h, b"body", &secrets(), NOW).unwrap_err(),
            SignatureError::Malformed
        );
        assert_eq!(
            verify(&HeaderMap::new(), b"body", &secrets(), NOW).unwrap_err(),
            SignatureError::Missing
        );
    }

    #[test]
    fn standard_webhooks_verify_within_the_window_only() {
        let body = b"{}";
        let sig = standard_signature(KEY, "msg_1", NOW, body);
        let h = headers(&[
            (WEBHOOK_ID, "msg_1".into()),
            (WEBHOOK_TIMESTAMP, NOW.to_string()),
            (WEBHOOK_SIGNATURE, format!("v1,bm90LWl0 {sig}")),
        ]);
        assert_eq!(
            verify(&h, body, &secrets(), NOW + TOLERANCE_SECS)
                .unwrap()
                .header_id
                .as_deref(),
            Some("msg_1")
        );
        assert_eq!(
            verify(&h, body, &secrets(), NOW + TOLERANCE_SECS + 1).unwrap_err(),
            SignatureError::Stale
        );
        assert_eq!(
            verify(&h, body, &secrets(), NOW - TOLERANCE_SECS - 1).unwrap_err(),
            SignatureError::Stale
        );
        // The id is signed: replaying the body under a new id fails.
        let mut replay = h.clone();
        replay.insert(WEBHOOK_ID, HeaderValue::from_static("msg_2"));
        assert_eq!(
            verify(&replay, body, &secrets(), NOW).unwrap_err(),
            SignatureError::Mismatch
        );
    }
}
