//! ShipEngine / ShipStation API (https://docs.shipstation.com/apis/docs/guides/webhooks-validation,
//! https://www.shipengine.com/docs/reference/webhooks-schemas/): RSA-SHA256 (PKCS#1 v1.5) over
//! `"{x-shipengine-timestamp}.{body}"`, base64 in `x-shipengine-rsa-sha256-signature`, by the key
//! `x-shipengine-rsa-sha256-key-id` names in ShipEngine's JWKS (`SHIPENGINE_JWKS_URL`), within
//! ±5 minutes. The JWKS is cached; a key id it does not hold makes it fetched again (ShipEngine
//! rotated), then not again for `REFETCH_EVERY`, so forged key ids cannot make the relayer
//! hammer the JWKS host. The
//! event is `API_TRACK` with the tracking information in `data`; ShipEngine sends no event id.
use std::time::{Duration, Instant};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use chrono::{DateTime, Utc};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey};
use serde_json::Value;

use super::{date, derived_id, event, fresh, header, text, Parsed, Provider};
use crate::domain::{
    signature::SignatureError,
    tracking::{ParseError, Reported, TrackingStatus},
};

pub const SIGNATURE: &str = "x-shipengine-rsa-sha256-signature";
pub const KEY_ID: &str = "x-shipengine-rsa-sha256-key-id";
pub const TIMESTAMP: &str = "x-shipengine-timestamp";
/// Shortest time between two fetches of the JWKS caused by unknown key ids.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Shortest time between two tries while no JWKS was ever read (its host is down).
const FIRST_FETCH_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The JWKS could not be read: ShipEngine retries a 503.
    #[error("ShipEngine's JWKS is unavailable: {0}")]
    KeysUnavailable(String),
}

/// ShipEngine's public keys, fetched from its JWKS and kept.
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Option<JwkSet>,
    /// The last try, whatever its cause and outcome.
    tried: Option<Instant>,
    /// The last fetch made because a key id was unknown.
    refetched: Option<Instant>,
    fetches: u64,
}

impl Jwks {
    pub fn new(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("static client settings"),
            cache: Default::default(),
        }
    }

    /// How many times the JWKS was fetched.
    pub async fn fetches(&self) -> u64 {
        self.cache.lock().await.fetches
    }

    /// The key `kid` names, fetching the set first when it is not known (yet).
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, Refusal> {
        let mut cache = self.cache.lock().await;
        let known = |c: &Cache| c.keys.as_ref().and_then(|k| k.find(kid)).cloned();
        let due = |at: Option<Instant>, every| at.is_none_or(|at: Instant| at.elapsed() >= every);
        let may_fetch = match cache.keys {
            None => due(cache.tried, FIRST_FETCH_RETRY),
            Some(_) => due(cache.refetched, REFETCH_EVERY),
        };
        if known(&cache).is_none() && may_fetch {
            let now = Instant::now();
            if cache.keys.is_some() {
                cache.refetched = Some(now);
            }
            cache.tried = Some(now);
            cache.fetches += 1;
            let set = self
                .http
                .get(&self.url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| Refusal::KeysUnavailable(format!("{}: {e}", self.url)))?
                .json::<JwkSet>()
                .await
                .map_err(|e| Refusal::KeysUnavailable(format!("{}: not a JWKS: {e}", self.url)))?;
            cache.keys = Some(set);
        }
        Ok(known(&cache).and_then(|jwk| DecodingKey::from_jwk(&jwk).ok()))
    }

    pub async fn verify(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), Refusal> {
        let (signature, kid, timestamp) = (
            header(headers, SIGNATURE)?,
            header(headers, KEY_ID)?,
            header(headers, TIMESTAMP)?,
        );
        let sent = DateTime::parse_from_rfc3339(timestamp)
            .map(|t| t.timestamp())
            .or_else(|_| timestamp.parse::<i64>())
            .map_err(|_| SignatureError::Malformed)?;
        fresh(sent, now_unix)?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| SignatureError::Malformed)?;
        let Some(key) = self.key(kid).await? else {
            return Err(SignatureError::Mismatch.into());
        };
        let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.push(b'.');
        message.extend_from_slice(body);
        match jsonwebtoken::crypto::verify(
            &URL_SAFE_NO_PAD.encode(signature),
            &message,
            &key,
            Algorithm::RS256,
        ) {
            Ok(true) => Ok(()),
            _ => Err(SignatureError::Mismatch.into()),
        }
    }
}

/// `status_code` (and `status_detail_code`) → ours. There is no "returned" code: a return is an
/// exception whose detail is `RETURN_TO_SENDER`. `SP` is a collection point, not the buyer's
/// door; `UN` and `NY` change nothing.
pub fn status(code: &str, detail: &str) -> TrackingStatus {
    match (code, detail) {
        (_, "RETURN_TO_SENDER") => TrackingStatus::Returned,
        ("AC" | "IT" | "SP", _) => TrackingStatus::InTransit,
        ("DE", _) => TrackingStatus::Delivered,
        ("EX" | "AT", _) => TrackingStatus::Exception,
        _ => TrackingStatus::Unrecognised,
    }
}

/// The `carrier_code` in `resource_url`'s query (where ShipEngine names the carrier).
fn carrier(payload: &Value) -> Option<String> {
    let url = payload.get("resource_url")?.as_str()?;
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        pair.strip_prefix("carrier_code=").map(|c| {
            percent_encoding::percent_decode_str(c)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

pub fn parse(payload: Value, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let kind = text(&payload, "/resource_type")?;
    if kind != "API_TRACK" {
        return Ok(Parsed::Ignored(format!("ShipEngine event {kind}")));
    }
    let tracking_number = text(&payload, "/data/tracking_number")?;
    let code = text(&payload, "/data/status_code")?;
    // Events come newest first.
    let detail = [
        "/data/status_detail_code",
        "/data/events/0/status_detail_code",
    ]
    .into_iter()
    .find_map(|p| payload.pointer(p).and_then(Value::as_str))
    .unwrap_or_default();
    let time = match payload.pointer("/data/events/0/occurred_at") {
        Some(Value::String(_)) => "/data/events/0/occurred_at",
        _ => "/data/actual_delivery_date",
    };
    let carrier = carrier(&payload)
        .or_else(|| {
            payload
                .pointer("/data/carrier_code")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| ParseError::Json("no carrier_code in resource_url or data".into()))?;
    let reported = Reported {
        event_id: derived_id(
            Provider::ShipEngine,
            &[
                tracking_number,
                &carrier,
                code,
                detail,
                text(&payload, time)?,
            ],
        ),
        tracking_number: tracking_number.to_owned(),
        carrier,
        status: status(code, detail),
        occurred_at: date(&payload, time)?,
    };
    event(reported, payload, now)
}
