//! The webhook path of `POST /webhooks/tracking` without a database: `signature::verify` on the
//! raw headers and body, then `TrackingEvent::parse` on what verified (relayer/src/routes/webhooks.rs).
//!
//! Each input is checked three ways:
//! 1. as received (headers and body from the input; see `openclaw_escrow_fuzz::WebhookInput`);
//! 2. with the body signed with the secret in `X-Tracking-Signature`;
//! 3. with the body signed with the secret by the Standard Webhooks scheme,
//!
//! so that the parser sees most inputs, not only the rare one that carries a valid signature;
//! 4. as each tracking provider's webhook (`POST /webhooks/{provider}`, relayer/src/providers):
//!    its verifier on the input's headers, then on the body signed its way, then its parser.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use openclaw_escrow_fuzz::{WebhookInput, NOW, OTHER_SECRET, SECRET};
use relayer::{
    config::Secret,
    domain::{
        signature::{
            self, standard_signature, tracking_signature, SignatureError, TOLERANCE_SECS,
            TRACKING_SIGNATURE, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
        },
        tracking::{TrackingEvent, MAX_CLOCK_SKEW},
    },
    providers::{self, sign, Parsed, Provider},
};

fuzz_target!(|data: &[u8]| {
    let input = WebhookInput::decode(data);
    let secrets = [Secret::new(SECRET)];
    let other = [Secret::new(OTHER_SECRET)];
    let body = input.body;

    // 1. As received: never panics, whatever the headers.
    let received = signature::verify(&input.headers, body, &secrets, NOW);
    let _ = signature::verify(&input.headers, body, &other, NOW);
    assert!(
        signature::verify(&input.headers, body, &[], NOW).is_err(),
        "verified with no secret configured"
    );
    let has = |name: &str| input.headers.contains_key(name);
    let with_headers = has(TRACKING_SIGNATURE)
        || (has(WEBHOOK_ID) && has(WEBHOOK_TIMESTAMP) && has(WEBHOOK_SIGNATURE));
    if !with_headers {
        assert_eq!(received.as_ref().unwrap_err(), &SignatureError::Missing);
    }
    if let Ok(verified) = received {
        // Only the secret's signature gets here: the same request fails with another secret
        // (unless it lists a Standard Webhooks candidate for each).
        let candidates = input
            .headers
            .get(WEBHOOK_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .map_or(0, |v| {
                v.split_whitespace()
                    .filter(|s| s.starts_with("v1,"))
                    .count()
            });
        if has(TRACKING_SIGNATURE) || candidates == 1 {
            assert!(signature::verify(&input.headers, body, &other, NOW).is_err());
        }
        if has(TRACKING_SIGNATURE) {
            assert!(verified.header_id.is_none());
        } else {
            assert_eq!(
                verified.header_id.as_deref(),
                input.headers.get(WEBHOOK_ID).and_then(|v| v.to_str().ok())
            );
        }
        check_parse(body, verified.header_id);
    }

    // 2. X-Tracking-Signature with the secret: verifies, also during a rotation; fails with
    // another secret and for a changed body.
    let headers = one_header(TRACKING_SIGNATURE, &tracking_signature(SECRET, body));
    let verified = signature::verify(&headers, body, &secrets, NOW).expect("signed body verifies");
    assert!(verified.header_id.is_none());
    let rotating = [Secret::new(OTHER_SECRET), Secret::new(SECRET)];
    assert!(signature::verify(&headers, body, &rotating, NOW).is_ok());
    assert_eq!(
        signature::verify(&headers, body, &other, NOW).unwrap_err(),
        SignatureError::Mismatch
    );
    let tampered = [body, b" "].concat();
    assert_eq!(
        signature::verify(&headers, &tampered, &secrets, NOW).unwrap_err(),
        SignatureError::Mismatch
    );
    let by_body = check_parse(body, None);

    // 3. Standard Webhooks with the secret, under the input's webhook-id when it is one a
    // provider can send, at a timestamp inside the window.
    let id = input
        .headers
        .get(WEBHOOK_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("msg_fuzz")
        .to_owned();
    let skew = (body.len() as i64 % (2 * TOLERANCE_SECS + 1)) - TOLERANCE_SECS;
    let standard = |timestamp: i64, secret: &[u8]| {
        let mut h = HeaderMap::new();
        h.insert(WEBHOOK_ID, HeaderValue::from_str(&id).unwrap());
        h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        h.insert(
            WEBHOOK_SIGNATURE,
            HeaderValue::from_str(&standard_signature(secret, &id, timestamp, body)).unwrap(),
        );
        h
    };
    let headers = standard(NOW + skew, SECRET);
    let verified =
        signature::verify(&headers, body, &secrets, NOW).expect("standard signed body verifies");
    assert_eq!(verified.header_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        signature::verify(&headers, body, &other, NOW).unwrap_err(),
        SignatureError::Mismatch
    );
    assert_eq!(
        signature::verify(&headers, &tampered, &secrets, NOW).unwrap_err(),
        SignatureError::Mismatch
    );
    assert_eq!(
        signature::verify(
            &standard(NOW - TOLERANCE_SECS - 1, SECRET),
            body,
            &secrets,
            NOW
        )
        .unwrap_err(),
        SignatureError::Stale
    );
    let by_header = check_parse(body, verified.header_id);
    check_providers(&input.headers, body);

    // The header id wins over the body's: with a usable id, a body that parses with its own
    // event_id parses the same under the header's.
    if let (Some(a), true) = (&by_body, usable_id(&id)) {
        let b = by_header.expect("body parsed with its own event_id but not with webhook-id");
        assert_eq!(b.event_id, id);
        assert_eq!(
            (
                &a.tracking_number,
                &a.carrier,
                a.status,
                a.occurred_at,
                &a.payload
            ),
            (
                &b.tracking_number,
                &b.carrier,
                b.status,
                b.occurred_at,
                &b.payload
            )
        );
    }
});

/// Each HMAC-signed provider: the input's own headers never verify without its secret (nor panic);
/// the body signed the provider's way verifies, and not once changed; its parser either refuses
/// the body or returns an event within the limits. ShipEngine's RSA scheme needs its JWKS (an
/// HTTP fetch) and is covered by the service tests instead.
fn check_providers(headers: &HeaderMap, body: &[u8]) {
    let secret = std::str::from_utf8(SECRET).unwrap();
    let keys = [Secret::new(SECRET)];
    let easypost_keys = [Secret::new(providers::easypost::normalise(secret))];
    let tampered = [body, b" "].concat();
    type Verify = fn(&HeaderMap, &[u8], &[Secret]) -> Result<(), SignatureError>;
    let shippo: Verify = |h, b, k| providers::shippo::verify(h, b, k, NOW);
    let schemes: [(Provider, Verify, &[Secret], &'static str, String); 4] = [
        (
            Provider::EasyPost,
            providers::easypost::verify,
            &easypost_keys,
            providers::easypost::SIGNATURE,
            sign::easypost(secret, body),
        ),
        (
            Provider::AfterShip,
            providers::aftership::verify,
            &keys,
            providers::aftership::SIGNATURE,
            sign::aftership(secret, body),
        ),
        (
            Provider::Shippo,
            shippo,
            &keys,
            providers::shippo::SIGNATURE,
            sign::shippo(secret, NOW, body),
        ),
        (
            Provider::SeventeenTrack,
            providers::seventeen_track::verify,
            &keys,
            providers::seventeen_track::SIGNATURE,
            sign::seventeen_track(secret, body),
        ),
    ];
    for (provider, verify, keys, header, signature) in schemes {
        let _ = verify(headers, body, keys);
        assert!(
            verify(headers, body, &[]).is_err(),
            "{provider:?} verified with no secret"
        );
        let signed = one_header(header, &signature);
        assert!(
            verify(&signed, body, keys).is_ok(),
            "{provider:?}: signed body refused"
        );
        assert!(
            verify(&signed, &tampered, keys).is_err(),
            "{provider:?}: changed body verified"
        );
        let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
        if let Ok(Parsed::Event(event)) = provider.parse(body, now) {
            check_event(&event);
            assert!(event.event_id.starts_with(&format!("{}:", provider.name())));
        }
    }
    let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
    if let Ok(Parsed::Event(event)) = Provider::ShipEngine.parse(body, now) {
        check_event(&event);
    }
}

fn one_header(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_str(value).unwrap());
    h
}

/// An id the parser takes as event_id: 1..=128 bytes, not blank, no control character (a
/// `webhook-id` header may carry a tab, which the parser refuses).
fn usable_id(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= 128 && !id.chars().any(char::is_control)
}

/// `TrackingEvent::parse` either refuses the body or returns an event within the limits it
/// enforces (relayer/src/domain/tracking.rs): event_id 1..=128 bytes, tracking_number 1..=64,
/// carrier 1..=32, none blank nor holding a control character; the carrier trimmed and
/// lowercased; the header id wins; never dated beyond the clock-skew bound.
fn check_parse(body: &[u8], header_id: Option<String>) -> Option<TrackingEvent> {
    let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
    let event = TrackingEvent::parse(body, header_id.clone(), now).ok()?;
    check_event(&event);
    if let Some(id) = header_id {
        assert_eq!(event.event_id, id);
    }
    // The relayer's own format never yields a status it has no meaning for.
    assert_ne!(
        event.status,
        relayer::domain::tracking::TrackingStatus::Unrecognised
    );
    Some(event)
}

/// The limits every stored event keeps, whatever its format.
fn check_event(event: &TrackingEvent) {
    let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
    assert!(
        event.occurred_at <= now + MAX_CLOCK_SKEW,
        "{}",
        event.occurred_at
    );
    let within = |v: &str, max: usize| {
        !v.trim().is_empty() && v.len() <= max && !v.chars().any(char::is_control)
    };
    assert!(
        within(&event.event_id, 128),
        "event_id {:?}",
        event.event_id
    );
    assert!(
        within(&event.tracking_number, 64),
        "tracking_number {:?}",
        event.tracking_number
    );
    assert!(within(&event.carrier, 32), "carrier {:?}", event.carrier);
    assert_eq!(event.carrier, event.carrier.trim());
    assert!(!event.carrier.bytes().any(|b| b.is_ascii_uppercase()));
    // The status is stored by `as_str`: it must be the name the body spells it with.
    assert_eq!(
        serde_json::to_value(event.status).unwrap(),
        serde_json::Value::from(event.status.as_str())
    );
}
