//! Tracking providers' webhooks as the providers send them: bodies shaped like each provider's
//! documented example (the data are ours), signed each provider's way, and ShipEngine's JWKS
//! served from a local server with an RSA key made for the test.
use std::{
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use relayer::{
    config::{Config, Secret},
    providers::{easypost, sign, Provider},
};
use serde_json::{json, Value};

/// Non-ASCII on purpose: EasyPost keys its HMAC with the NFKD form.
pub const EASYPOST_SECRET: &str = "sécret-easypost-webhook";
pub const AFTERSHIP_SECRET: &str = "aftership-webhook-secret-1";
pub const SHIPPO_SECRET: &str = "shippo-hmac-secret-1";
pub const SEVENTEENTRACK_KEY: &str = "17track-security-key-1";

/// Turns every provider on in `cfg` (ShipEngine with `jwks_url`).
pub fn enable(cfg: &mut Config, jwks_url: &str) {
    let p = &mut cfg.secrets.providers;
    p.easypost = vec![Secret::new(easypost::normalise(EASYPOST_SECRET))];
    p.aftership = vec![Secret::new(AFTERSHIP_SECRET.as_bytes().to_vec())];
    p.shippo = vec![Secret::new(SHIPPO_SECRET.as_bytes().to_vec())];
    p.seventeen_track = vec![Secret::new(SEVENTEENTRACK_KEY.as_bytes().to_vec())];
    cfg.http.shipengine_jwks_url = Some(jwks_url.into());
}

/// The carrier an offer must name to match each provider's events: the provider's own name for
/// it (17TRACK numbers its carriers: 100002 is UPS).
pub fn carrier(provider: Provider) -> &'static str {
    match provider {
        Provider::SeventeenTrack => "100002",
        _ => "ups",
    }
}

/// The provider's own words for one of our statuses (status, and sub-status where it has one).
pub fn words(provider: Provider, ours: &str) -> (&'static str, &'static str) {
    match (provider, ours) {
        (Provider::EasyPost, "delivered") => ("delivered", ""),
        (Provider::EasyPost, "returned") => ("return_to_sender", ""),
        (Provider::EasyPost, "in_transit") => ("in_transit", ""),
        (Provider::EasyPost, _) => ("pre_transit", ""),
        (Provider::AfterShip, "delivered") => ("Delivered", "Delivered_001"),
        (Provider::AfterShip, "returned") => ("Exception", "Exception_011"),
        (Provider::AfterShip, "in_transit") => ("InTransit", "InTransit_002"),
        (Provider::AfterShip, _) => ("InfoReceived", "InfoReceived_001"),
        (Provider::Shippo, "delivered") => ("DELIVERED", "delivered"),
        (Provider::Shippo, "returned") => ("RETURNED", "return_to_sender"),
        (Provider::Shippo, "in_transit") => ("TRANSIT", "package_departed"),
        (Provider::Shippo, _) => ("PRE_TRANSIT", "information_received"),
        (Provider::SeventeenTrack, "delivered") => ("Delivered", "Delivered_Other"),
        (Provider::SeventeenTrack, "returned") => ("Exception", "Exception_Returned"),
        (Provider::SeventeenTrack, "in_transit") => ("InTransit", "InTransit_Other"),
        (Provider::SeventeenTrack, _) => ("InfoReceived", "InfoReceived"),
        (Provider::ShipEngine, "delivered") => ("DE", ""),
        (Provider::ShipEngine, "returned") => ("EX", "RETURN_TO_SENDER"),
        (Provider::ShipEngine, "in_transit") => ("IT", ""),
        (Provider::ShipEngine, _) => ("NY", ""),
    }
}

/// A tracking update for `tracking` in `provider`'s format, its status in the provider's words.
pub fn body(
    provider: Provider,
    tracking: &str,
    (status, sub): (&str, &str),
    at: DateTime<Utc>,
) -> String {
    let t = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = uuid::Uuid::new_v4();
    let value = match provider {
        // https://docs.easypost.com/docs/webhooks (Event) and /docs/trackers (Tracker).
        Provider::EasyPost => json!({
            "id": format!("evt_{}", id.simple()), "object": "Event", "description": "tracker.updated",
            "mode": "production", "created_at": t, "updated_at": t,
            "previous_attributes": { "status": "out_for_delivery" },
            "pending_urls": ["https://shop.example/webhooks/easypost"], "completed_urls": [],
            "user_id": "user_0a1b2c", "status": "pending",
            "result": {
                "id": format!("trk_{}", &id.simple().to_string()[..16]), "object": "Tracker",
                "mode": "production", "tracking_code": tracking, "carrier": "UPS", "status": status,
                "status_detail": "arrived_at_destination", "signed_by": "J SMITH",
                "created_at": "2026-11-28T14:45:27Z", "updated_at": t, "is_return": false,
                "tracking_details": [
                    { "object": "TrackingDetail", "message": "Picked up", "status": "in_transit",
                      "status_detail": "arrived_at_facility", "datetime": "2026-11-28T19:27:00Z",
                      "source": "UPS", "carrier_code": "PU",
                      "tracking_location": { "object": "TrackingLocation", "city": "ORLANDO", "state": "FL", "country": "US", "zip": "32809" } },
                    { "object": "TrackingDetail", "message": "Latest scan", "status": status,
                      "status_detail": "arrived_at_destination", "datetime": t, "source": "UPS",
                      "carrier_code": "DL",
                      "tracking_location": { "object": "TrackingLocation", "city": "BROOKLYN", "state": "NY", "country": "US", "zip": "11201" } }
                ]
            }
        }),
        // https://www.aftership.com/docs/tracking/2025-01/webhook/webhook-specifications
        Provider::AfterShip => json!({
            "event": "tracking_update", "event_id": id.to_string(), "is_tracking_first_tag": true,
            "ts": at.timestamp(),
            "msg": {
                "id": id.simple().to_string(), "legacy_id": "grhrexm6t3hiwkjwq37jd003",
                "tracking_number": tracking, "slug": "ups", "active": false, "tag": status,
                "subtag": sub, "subtag_message": status, "return_to_sender": sub == "Exception_011",
                "created_at": "2026-11-28T14:45:27Z", "updated_at": t,
                "checkpoints": [{ "slug": "ups", "checkpoint_time": "2026-12-01T12:58:00",
                    "created_at": t, "tag": status, "subtag": sub, "message": "Latest scan",
                    "city": "BROOKLYN", "state": "NY", "zip": "11201", "country_region": "USA" }]
            }
        }),
        // https://docs.goshippo.com/docs/Tracking/Tracking (track_updated)
        Provider::Shippo => json!({
            "event": "track_updated", "test": false,
            "data": {
                "carrier": "ups", "tracking_number": tracking,
                "transaction": "1275c67d754f45bf9d6e4d7a3e205314", "metadata": "Order 000123",
                "eta": t, "original_eta": t, "messages": [],
                "address_from": { "city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US" },
                "address_to": { "city": "Spotsylvania", "state": "VA", "zip": "22551", "country": "US" },
                "servicelevel": { "token": "ups_ground", "name": "Ground" },
                "tracking_status": {
                    "object_created": t, "object_updated": t, "object_id": id.simple().to_string(),
                    "status": status, "status_details": "Latest scan.", "status_date": t,
                    "substatus": { "code": sub, "text": sub, "action_required": false },
                    "location": { "city": "Spotsylvania", "state": "VA", "zip": "22551", "country": "US" }
                },
                "tracking_history": []
            }
        }),
        // https://asset.17track.net/api/document/v2.2_en/index.html (Webhook, TRACKING_UPDATED)
        Provider::SeventeenTrack => json!({
            "event": "TRACKING_UPDATED",
            "data": {
                "number": tracking, "carrier": 100002, "param": null, "tag": null,
                "track_info": {
                    "shipping_info": { "shipper_address": { "country": "US", "state": "CA" },
                                       "recipient_address": { "country": "US", "state": "CA" } },
                    "latest_status": { "status": status, "sub_status": sub, "sub_status_descr": null },
                    "latest_event": { "time_iso": t, "time_utc": t, "description": "Latest scan",
                                      "location": "GASQUET, CA, US", "stage": status },
                    "milestone": [],
                    "tracking": { "providers_hash": -595601716, "providers": [] }
                }
            }
        }),
        // https://www.shipengine.com/docs/reference/webhooks-schemas/ (API_TRACK)
        Provider::ShipEngine => json!({
            "resource_url": format!("https://api.shipengine.com/v1/tracking?carrier_code=ups&tracking_number={tracking}"),
            "resource_type": "API_TRACK",
            "data": {
                "label_url": null, "tracking_number": tracking, "status_code": status,
                "status_description": status, "carrier_status_code": "01",
                "carrier_status_description": "Latest scan", "ship_date": "2026-11-28T14:12:00Z",
                "estimated_delivery_date": t, "actual_delivery_date": t, "exception_description": null,
                "events": [{ "occurred_at": t, "carrier_occurred_at": "2026-12-01T12:58:00",
                    "description": "Latest scan", "city_locality": "BROOKLYN", "state_province": "NY",
                    "postal_code": "11201", "country_code": "US", "status_code": status,
                    "status_detail_code": sub, "carrier_status_code": "01" }]
            }
        }),
    };
    value.to_string()
}

/// ShipEngine's side: an RSA key pair, and the JWKS endpoint that publishes it.
pub struct ShipEngine {
    dir: std::path::PathBuf,
    pub kid: String,
    /// The keys the JWKS serves now.
    keys: Arc<Mutex<Vec<Value>>>,
    pub fetches: Arc<AtomicUsize>,
    pub jwks_url: String,
}

impl ShipEngine {
    pub async fn start() -> Self {
        let dir = super::tempfile_dir();
        let keys: Arc<Mutex<Vec<Value>>> = Default::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let keys = served.lock().unwrap().clone();
                counted.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(json!({ "keys": keys })) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut se = Self {
            dir,
            kid: String::new(),
            keys,
            fetches,
            jwks_url,
        };
        se.rotate();
        se
    }

    fn pem(&self, kid: &str) -> std::path::PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// A new key pair, published beside the old ones; it signs from now on.
    pub fn rotate(&mut self) {
        self.kid = format!("kid-{}", uuid::Uuid::new_v4().simple());
        let (pem, n) = super::rsa_key();
        std::fs::write(self.pem(&self.kid), pem).unwrap();
        let jwk = json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": n, "e": "AQAB" });
        self.keys.lock().unwrap().push(jwk);
    }

    /// The three signature headers for `body` sent at `timestamp`, signed with `kid`'s key.
    pub fn headers_with(
        &self,
        kid: &str,
        timestamp: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let message = self
            .dir
            .join(format!("message-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&message, [timestamp.as_bytes(), b".", body].concat()).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.pem(kid))
            .arg(&message)
            .output()
            .expect("openssl");
        assert!(out.status.success());
        vec![
            (
                "x-shipengine-rsa-sha256-signature",
                STANDARD.encode(out.stdout),
            ),
            ("x-shipengine-rsa-sha256-key-id", kid.to_owned()),
            ("x-shipengine-timestamp", timestamp.to_owned()),
        ]
    }
}

impl Drop for ShipEngine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The headers `provider` sends with `body` at `now`.
pub fn headers(
    provider: Provider,
    body: &str,
    now: DateTime<Utc>,
    shipengine: &ShipEngine,
) -> Vec<(&'static str, String)> {
    let b = body.as_bytes();
    match provider {
        Provider::EasyPost => vec![("X-Hmac-Signature", sign::easypost(EASYPOST_SECRET, b))],
        Provider::AfterShip => vec![(
            "aftership-hmac-sha256",
            sign::aftership(AFTERSHIP_SECRET, b),
        )],
        Provider::Shippo => vec![(
            "Shippo-Auth-Signature",
            sign::shippo(SHIPPO_SECRET, now.timestamp(), b),
        )],
        Provider::SeventeenTrack => vec![("sign", sign::seventeen_track(SEVENTEENTRACK_KEY, b))],
        Provider::ShipEngine => shipengine.headers_with(
            &shipengine.kid,
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            b,
        ),
    }
}

/// The same headers signed with secrets the relayer does not hold (ShipEngine: a timestamp the
/// signature does not cover).
pub fn forged_headers(
    provider: Provider,
    body: &str,
    now: DateTime<Utc>,
    shipengine: &ShipEngine,
) -> Vec<(&'static str, String)> {
    let b = body.as_bytes();
    match provider {
        Provider::EasyPost => vec![("X-Hmac-Signature", sign::easypost("not-the-secret", b))],
        Provider::AfterShip => vec![(
            "aftership-hmac-sha256",
            sign::aftership("not-the-secret", b),
        )],
        Provider::Shippo => vec![(
            "Shippo-Auth-Signature",
            sign::shippo("not-the-secret", now.timestamp(), b),
        )],
        Provider::SeventeenTrack => vec![("sign", sign::seventeen_track("not-the-key", b))],
        Provider::ShipEngine => {
            let mut h = headers(provider, body, now, shipengine);
            h[2].1 = (now - chrono::Duration::seconds(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            h
        }
    }
}
