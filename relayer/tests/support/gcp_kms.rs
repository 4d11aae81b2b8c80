//! A GCP Cloud KMS test server: no emulator exists on the registries, so this one speaks the
//! part of Cloud KMS's REST/JSON wire protocol the relayer uses, as Google documents it
//! (https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys.cryptoKeyVersions),
//! with real keys and real checks:
//! - `GET /v1/{version}/publicKey` and `POST /v1/{version}:asymmetricSign` (pure ed25519 over
//!   `data`), proto3 JSON (camelCase, base64 bytes, int64 CRC32C values as decimal strings,
//!   enums as names, or as numbers under `$alt=json;enum-encoding=int`), unknown request fields
//!   refused, `dataCrc32c` checked and `verifiedDataCrc32c`/`signatureCrc32c`/`pemCrc32c`
//!   answered;
//! - errors as google.rpc.Status: 401 UNAUTHENTICATED, 403 PERMISSION_DENIED "(or it may not
//!   exist)" without a role on the key, 404 NOT_FOUND for an unknown version with one,
//!   400 FAILED_PRECONDITION for a version that is not ENABLED, 400 INVALID_ARGUMENT for a
//!   checksum mismatch, 503 UNAVAILABLE when told to fail;
//! - credentials as Application Default Credentials make them: a service account's self-signed
//!   RS256 JWT (verified with the account's public key, by `kid`), or a token from the metadata
//!   server (`/computeMetadata/v1/instance/service-accounts/default/token`, which it also serves).
//!
//! IAM is modelled as roles on a crypto key: `roles/cloudkms.signerVerifier` (useToSign,
//! viewPublicKey) and `roles/cloudkms.publicKeyViewer` (viewPublicKey).
// A refusal is an axum `Response`, returned as the handler's answer: its size is no concern here.
#![allow(clippy::result_large_err)]
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use ed25519_dalek::Signer as _;
use relayer::signer::gcp::crc32c;
use serde_json::{json, Value};

pub const SIGNER_VERIFIER: &str = "roles/cloudkms.signerVerifier";
/// The relayer's service account in the tests.
pub const RELAYER_SA: &str = "relayer@openclaw-test.iam.gserviceaccount.com";
pub const PUBLIC_KEY_VIEWER: &str = "roles/cloudkms.publicKeyViewer";

enum Material {
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 key's public half (the relayer must refuse it before signing).
    P256 {
        pem: String,
    },
}

struct Version {
    material: Material,
    state: &'static str,
}

#[derive(Default)]
struct Model {
    versions: HashMap<String, Version>,
    /// Principal (service account email) -> crypto key name -> role.
    roles: HashMap<String, HashMap<String, &'static str>>,
    /// Service-account key id -> (email, RSA modulus, base64url).
    account_keys: HashMap<String, (String, String)>,
    /// Metadata-server tokens -> email.
    access_tokens: HashMap<String, String>,
    metadata_account: Option<String>,
    /// Answer this many KMS requests with 503 UNAVAILABLE.
    fail_next: u32,
    /// Damage this many signatures in transit (their CRC32C then no longer matches).
    corrupt_next: u32,
    requests: u32,
}

#[derive(Clone)]
pub struct FakeCloudKms {
    model: Arc<Mutex<Model>>,
    pub url: String,
    addr: std::net::SocketAddr,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

fn status(code: StatusCode, status: &str, message: String, details: Value) -> Response {
    let mut error = json!({ "code": code.as_u16(), "message": message, "status": status });
    if !details.is_null() {
        error["details"] = details;
    }
    (code, Json(json!({ "error": error }))).into_response()
}

/// The crypto key a version belongs to (where IAM bindings live).
fn crypto_key(version: &str) -> &str {
    version
        .rsplit_once("/cryptoKeyVersions/")
        .map_or(version, |(key, _)| key)
}

impl FakeCloudKms {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Self {
            model: Default::default(),
            url: format!("http://{addr}"),
            addr,
            server: Default::default(),
        };
        fake.serve(listener);
        fake
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/v1/{*resource}", get(get_resource).post(post_resource))
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(metadata_token),
            )
            .route(
                "/computeMetadata/v1/universe/universe-domain",
                get(|| async { "googleapis.com" }),
            )
            .with_state(self.model.clone());
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *self.server.lock().unwrap() = Some(handle);
    }

    /// Stops listening: connections are refused until `up`.
    pub fn down(&self) {
        if let Some(handle) = self.server.lock().unwrap().take() {
            handle.abort();
        }
    }

    /// Listens again on the same address, with the same keys.
    pub async fn up(&self) {
        for _ in 0..100 {
            if let Ok(listener) = tokio::net::TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("cannot listen on {} again", self.addr);
    }

    /// A server with an ed25519 version `RELAYER_SA` may sign with: the server, the account's
    /// key file, the version's name and its address.
    pub async fn with_relayer_key() -> (Self, Value, String, anchor_lang::prelude::Pubkey) {
        let kms = Self::start().await;
        let (version, address) = kms.create_ed25519("relayer");
        let key_file = kms.service_account(RELAYER_SA);
        kms.grant(RELAYER_SA, &version, SIGNER_VERIFIER);
        (kms, key_file, version, address)
    }

    /// The relayer's signer for `version` here, with `key_file`'s credentials.
    pub async fn connect(
        &self,
        key_file: &Value,
        version: &str,
    ) -> anyhow::Result<relayer::signer::gcp::GcpKmsSigner> {
        let config = relayer::signer::gcp::GcpKmsConfig {
            key_version: version.into(),
            endpoint: self.url.clone(),
            timeout: std::time::Duration::from_secs(5),
        };
        relayer::signer::gcp::GcpKmsSigner::connect_with(credentials(key_file.clone()), &config)
            .await
    }

    /// Creates an ENABLED EC_SIGN_ED25519 version; returns its name and address.
    pub fn create_ed25519(&self, key: &str) -> (String, anchor_lang::prelude::Pubkey) {
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let address =
            anchor_lang::prelude::Pubkey::new_from_array(signing.verifying_key().to_bytes());
        let name = format!("{}/cryptoKeyVersions/1", self.key_name(key));
        self.model.lock().unwrap().versions.insert(
            name.clone(),
            Version {
                material: Material::Ed25519(signing),
                state: "ENABLED",
            },
        );
        (name, address)
    }

    /// Creates an ENABLED EC_SIGN_P256_SHA256 version; returns its name.
    pub fn create_p256(&self, key: &str) -> String {
        let private = super::openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            None,
        );
        let pem = super::openssl(&["pkey", "-pubout"], Some(&private));
        let name = format!("{}/cryptoKeyVersions/1", self.key_name(key));
        self.model.lock().unwrap().versions.insert(
            name.clone(),
            Version {
                material: Material::P256 { pem },
                state: "ENABLED",
            },
        );
        name
    }

    pub fn key_name(&self, key: &str) -> String {
        format!("projects/openclaw-test/locations/global/keyRings/relayer/cryptoKeys/{key}")
    }

    pub fn set_state(&self, version: &str, state: &'static str) {
        self.model
            .lock()
            .unwrap()
            .versions
            .get_mut(version)
            .expect("version")
            .state = state;
    }

    /// Grants `role` on the crypto key of `version` to `email`.
    pub fn grant(&self, email: &str, version: &str, role: &'static str) {
        self.model
            .lock()
            .unwrap()
            .roles
            .entry(email.into())
            .or_default()
            .insert(crypto_key(version).to_owned(), role);
    }

    pub fn fail_next(&self, n: u32) {
        self.model.lock().unwrap().fail_next = n;
    }

    pub fn corrupt_next(&self, n: u32) {
        self.model.lock().unwrap().corrupt_next = n;
    }

    /// KMS requests answered so far (retries included).
    pub fn requests(&self) -> u32 {
        self.model.lock().unwrap().requests
    }

    /// A service account with a fresh RSA key, registered here; returns its key file's JSON
    /// (what `gcloud iam service-accounts keys create` writes).
    pub fn service_account(&self, email: &str) -> Value {
        let (private, public) = super::rsa_key();
        let kid = format!("{:040x}", rand::random::<u128>());
        self.model
            .lock()
            .unwrap()
            .account_keys
            .insert(kid.clone(), (email.into(), public));
        json!({
            "type": "service_account",
            "project_id": "openclaw-test",
            "private_key_id": kid,
            "private_key": private,
            "client_email": email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            // Self-signed JWTs are used directly with a scope: nothing is exchanged here.
            "token_uri": format!("{}/token-exchange-not-expected", self.url),
            "universe_domain": "googleapis.com",
        })
    }

    /// The metadata server hands out tokens for `email` (GCE_METADATA_HOST=<host:port>).
    pub fn metadata_account(&self, email: &str) {
        self.model.lock().unwrap().metadata_account = Some(email.into());
    }

    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }
}

/// Credentials from a service account's key file, scoped to Cloud KMS, as ADC builds them.
pub fn credentials(key_file: Value) -> google_cloud_auth::credentials::Credentials {
    use google_cloud_auth::credentials::service_account::{AccessSpecifier, Builder};
    Builder::new(key_file)
        .with_access_specifier(AccessSpecifier::from_scopes([
            "https://www.googleapis.com/auth/cloudkms",
        ]))
        .build()
        .expect("service account credentials")
}

/// The principal a bearer credential proves, or why not.
fn principal(model: &Model, headers: &HeaderMap) -> Result<String, Response> {
    let unauthenticated = || {
        status(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.".into(),
            Value::Null,
        )
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthenticated)?;
    if let Some(email) = model.access_tokens.get(token) {
        return Ok(email.clone());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| unauthenticated())?;
    let (email, public) = header
        .kid
        .and_then(|kid| model.account_keys.get(&kid))
        .ok_or_else(unauthenticated)?;
    let key = jsonwebtoken::DecodingKey::from_rsa_components(public, "AQAB").unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[email]);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| unauthenticated())?
        .claims;
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| {
        s == "https://www.googleapis.com/auth/cloudkms"
            || s == "https://www.googleapis.com/auth/cloud-platform"
    }) {
        return Err(status(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Request had insufficient authentication scopes.".into(),
            Value::Null,
        ));
    }
    Ok(email.clone())
}

/// Authenticates, checks `permission` on the version's key, then finds the version.
fn authorize<'m>(
    model: &'m mut Model,
    headers: &HeaderMap,
    name: &str,
    permission: &str,
) -> Result<&'m mut Version, Response> {
    model.requests += 1;
    if model.fail_next > 0 {
        model.fail_next -= 1;
        return Err(status(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.".into(),
            Value::Null,
        ));
    }
    let who = principal(model, headers)?;
    let role = model
        .roles
        .get(&who)
        .and_then(|keys| keys.get(crypto_key(name)))
        .copied();
    let allowed = matches!(
        (role, permission),
        (Some(SIGNER_VERIFIER), _)
            | (
                Some(PUBLIC_KEY_VIEWER),
                "cloudkms.cryptoKeyVersions.viewPublicKey"
            )
    );
    if !allowed {
        return Err(status(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("Permission '{permission}' denied on resource '{name}' (or it may not exist)."),
            Value::Null,
        ));
    }
    let version = model.versions.get_mut(name).ok_or_else(|| {
        status(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("CryptoKeyVersion {name} not found."),
            Value::Null,
        )
    })?;
    if version.state != "ENABLED" {
        return Err(status(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            format!(
                "{name} is not enabled, current state is: {}.",
                version.state
            ),
            json!([{
                "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                "violations": [{ "type": "KEY_DISABLED", "subject": name, "description": format!("{name} is not enabled.") }],
            }]),
        ));
    }
    Ok(version)
}

fn enums_as_ints(query: &Option<String>) -> bool {
    query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "$alt=json;enum-encoding=int" || p == "%24alt=json%3Benum-encoding%3Dint")
    })
}

fn algorithm(material: &Material, ints: bool) -> Value {
    match (material, ints) {
        (Material::Ed25519(_), false) => json!("EC_SIGN_ED25519"),
        (Material::Ed25519(_), true) => json!(40),
        (Material::P256 { .. }, false) => json!("EC_SIGN_P256_SHA256"),
        (Material::P256 { .. }, true) => json!(12),
    }
}

fn protection_level(ints: bool) -> Value {
    if ints {
        json!(2)
    } else {
        json!("HSM")
    }
}

async fn get_resource(
    State(model): State<Arc<Mutex<Model>>>,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(name) = resource.strip_suffix("/publicKey") else {
        return status(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Not found.".into(),
            Value::Null,
        );
    };
    let mut model = model.lock().unwrap();
    let version = match authorize(
        &mut model,
        &headers,
        name,
        "cloudkms.cryptoKeyVersions.viewPublicKey",
    ) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let ints = enums_as_ints(&query);
    let pem = match &version.material {
        Material::Ed25519(key) => {
            let mut der = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            der.extend_from_slice(key.verifying_key().as_bytes());
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                STANDARD.encode(der)
            )
        }
        Material::P256 { pem } => pem.clone(),
    };
    Json(json!({
        "pem": pem,
        "algorithm": algorithm(&version.material, ints),
        "pemCrc32c": crc32c(pem.as_bytes()).to_string(),
        "name": name,
        "protectionLevel": protection_level(ints),
    }))
    .into_response()
}

async fn post_resource(
    State(model): State<Arc<Mutex<Model>>>,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(name) = resource.strip_suffix(":asymmetricSign") else {
        return status(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Not found.".into(),
            Value::Null,
        );
    };
    let invalid = |message: String| {
        status(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            message,
            Value::Null,
        )
    };
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("Invalid JSON payload received.".into());
    };
    if let Some(unknown) = request
        .keys()
        .find(|k| !["data", "dataCrc32c", "digest", "digestCrc32c"].contains(&k.as_str()))
    {
        return invalid(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        ));
    }
    let mut model = model.lock().unwrap();
    let corrupt = model.corrupt_next > 0;
    let version = match authorize(
        &mut model,
        &headers,
        name,
        "cloudkms.cryptoKeyVersions.useToSign",
    ) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let Material::Ed25519(key) = &version.material else {
        return invalid(format!(
            "Algorithm EC_SIGN_P256_SHA256 of {name} signs a digest, not data."
        ));
    };
    if request.contains_key("digest") {
        return invalid("Pure Ed25519 signs data; digest is not supported.".into());
    }
    let Some(data) = request["data"]
        .as_str()
        .and_then(|d| STANDARD.decode(d).ok())
    else {
        return invalid("Invalid value at 'data' (TYPE_BYTES).".into());
    };
    let checked = match request.get("dataCrc32c") {
        None => false,
        Some(crc) => {
            if crc.as_str().and_then(|c| c.parse::<u32>().ok()) != Some(crc32c(&data)) {
                return invalid(
                    "The checksum in field data_crc32c did not match the data in field data."
                        .into(),
                );
            }
            true
        }
    };
    let signature = key.sign(&data).to_bytes();
    let crc = crc32c(&signature);
    let mut sent = signature;
    if corrupt {
        sent[0] ^= 1;
    }
    let ints = enums_as_ints(&query);
    if corrupt {
        model.corrupt_next -= 1;
    }
    Json(json!({
        "signature": STANDARD.encode(sent),
        "signatureCrc32c": crc.to_string(),
        "verifiedDataCrc32c": checked,
        "name": name,
        "protectionLevel": protection_level(ints),
    }))
    .into_response()
}

async fn metadata_token(State(model): State<Arc<Mutex<Model>>>, headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    let mut model = model.lock().unwrap();
    let Some(email) = model.metadata_account.clone() else {
        return (StatusCode::NOT_FOUND, "no service account on this instance").into_response();
    };
    let token = format!("ya29.test-{}", uuid::Uuid::new_v4().simple());
    model.access_tokens.insert(token.clone(), email);
    Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}
