//! GCP Cloud KMS: an `EC_SIGN_ED25519` key version, signing pure ed25519 over the raw message
//! (`asymmetricSign` with `data`, never `digest`).
//!
//! `KMS_KEY_ID` is the full `projects/…/cryptoKeyVersions/N` name: a version, so the address is
//! pinned by construction. Credentials are Application Default Credentials (a service-account
//! key file in `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, or the metadata server on
//! GCE/GKE/Cloud Run) from Google's own `google-cloud-auth`; the two REST calls are made here.
//! Every exchange is checked end to end as Google asks: `dataCrc32c` sent and
//! `verifiedDataCrc32c` required, `signatureCrc32c` and `pemCrc32c` recomputed, the answering
//! version's `name` compared; then the signature is verified locally like every backend's.
//! The service account needs `roles/cloudkms.signerVerifier` on the one key (it grants
//! `useToSign` and `viewPublicKey`).
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use base64::{engine::general_purpose::STANDARD, Engine};
use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use serde::Deserialize;

use super::{ed25519_from_spki, probe, SignFuture, SignerError, TxSigner};

pub const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
/// Attempts per request: transient answers (429, 5xx, a failed integrity check, a network error)
/// are retried with a short backoff.
const ATTEMPTS: u32 = 3;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

#[derive(Clone, Debug)]
pub struct GcpKmsConfig {
    /// The key version's resource name (checked by `key_version_name`).
    pub key_version: String,
    /// `GCP_KMS_ENDPOINT`: Cloud KMS's REST root (a regional or private endpoint, or a test server).
    pub endpoint: String,
    /// How long one attempt may take.
    pub timeout: Duration,
}

/// Whether `name` is `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`.
pub fn is_key_version_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let labels = [
        "projects",
        "locations",
        "keyRings",
        "cryptoKeys",
        "cryptoKeyVersions",
    ];
    parts.len() == 10
        && parts.chunks(2).zip(labels).all(|(pair, label)| {
            pair[0] == label
                && !pair[1].is_empty()
                && pair[1]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

pub struct GcpKmsSigner {
    http: reqwest::Client,
    credentials: Credentials,
    endpoint: String,
    name: String,
    pubkey: Pubkey,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKey {
    pem: String,
    algorithm: String,
    /// int64 in proto3 JSON: a decimal string.
    pem_crc32c: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignResponse {
    signature: String,
    signature_crc32c: String,
    #[serde(default)]
    verified_data_crc32c: bool,
    name: String,
}

/// google.rpc.Status, as every Google REST API answers an error.
#[derive(Deserialize)]
struct ErrorBody {
    error: Status,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

impl GcpKmsSigner {
    /// Connects with Application Default Credentials.
    pub async fn connect(config: &GcpKmsConfig) -> anyhow::Result<Self> {
        let credentials = credentials::Builder::default()
            .with_scopes([SCOPE])
            .build()
            .map_err(|e| {
                anyhow::anyhow!(
                    "Google Application Default Credentials: {e}; set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run where the metadata server answers"
                )
            })?;
        Self::connect_with(credentials, config).await
    }

    /// Connects with credentials built elsewhere.
    pub async fn connect_with(
        credentials: Credentials,
        config: &GcpKmsConfig,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_key_version_name(&config.key_version),
            "KMS_KEY_ID {:?} is not a key version name (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N)",
            config.key_version
        );
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()?;
        let mut signer = Self {
            http,
            credentials,
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            name: config.key_version.clone(),
            pubkey: Pubkey::default(),
        };
        let key: PublicKey = signer
            .call(reqwest::Method::GET, "/publicKey", None)
            .await
            .map_err(|e| anyhow::anyhow!("getPublicKey for KMS_KEY_ID: {e}"))?;
        anyhow::ensure!(
            key.name == signer.name,
            "getPublicKey answered for {:?}, not KMS_KEY_ID {}",
            key.name,
            signer.name
        );
        anyhow::ensure!(
            key.pem_crc32c.parse::<u32>().ok() == Some(crc32c(key.pem.as_bytes())),
            "getPublicKey: the PEM does not match its pemCrc32c (corrupted in transit); retry"
        );
        anyhow::ensure!(
            key.algorithm == "EC_SIGN_ED25519",
            "KMS key version {} is {}; the relayer needs an EC_SIGN_ED25519 key (purpose ASYMMETRIC_SIGN)",
            signer.name,
            key.algorithm
        );
        signer.pubkey = pem_public_key(&key.pem).ok_or_else(|| {
            anyhow::anyhow!(
                "KMS key version {}: the PEM is not an Ed25519 public key",
                signer.name
            )
        })?;
        signer
            .sign(&probe(&signer.pubkey))
            .await
            .map_err(|e| anyhow::anyhow!("start-up probe signature: {e}"))?;
        tracing::info!(key_version = %signer.name, address = %signer.pubkey, "gcp kms signer ready");
        Ok(signer)
    }

    /// One REST call on the pinned key version, retried while the answer is transient.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        suffix: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, SignerError> {
        let url = format!("{}/v1/{}{suffix}", self.endpoint, self.name);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self.attempt(method.clone(), &url, body).await {
                Ok(value) => return Ok(value),
                Err(Attempt::Transient(e)) => last = Some(e),
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| SignerError::Unavailable("no attempt made".into())))
    }

    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Attempt> {
        let headers = match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => {
                return Err(Attempt::Final(SignerError::Unavailable(
                    "Google credentials returned no headers".into(),
                )))
            }
            Err(e) => {
                let transient = e.is_transient();
                let e = SignerError::Unavailable(format!(
                    "Google credentials: {e} (check GOOGLE_APPLICATION_CREDENTIALS or the metadata server)"
                ));
                return Err(if transient {
                    Attempt::Transient(e)
                } else {
                    Attempt::Final(e)
                });
            }
        };
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            Attempt::Transient(SignerError::Unavailable(format!(
                "Cloud KMS at {} not reachable: {e}; check GCP_KMS_ENDPOINT and the network",
                self.endpoint
            )))
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            Attempt::Transient(SignerError::Unavailable(format!(
                "Cloud KMS answer cut short: {e}"
            )))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Attempt::Final(SignerError::Unavailable(format!(
                    "Cloud KMS answered HTTP {status} with a body that is not the expected JSON: {e}"
                )))
            });
        }
        let error = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or(Status {
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                status: String::new(),
            });
        Err(self.classify(status.as_u16(), error))
    }

    /// What a google.rpc.Status means for the operator. Permission, credentials and a disabled
    /// version are retried as the SignerErrors alert fires (an operator can cure them); a
    /// missing version or a bad request is refused.
    fn classify(&self, http: u16, e: Status) -> Attempt {
        let (name, detail) = (&self.name, &e.message);
        match (http, e.status.as_str()) {
            (_, "PERMISSION_DENIED") => Attempt::Final(SignerError::Unavailable(format!(
                "Cloud KMS permission denied ({detail}); grant the relayer's service account roles/cloudkms.signerVerifier on the key of {name}"
            ))),
            (_, "UNAUTHENTICATED") => Attempt::Final(SignerError::Unavailable(format!(
                "Cloud KMS rejected the credentials ({detail}); check GOOGLE_APPLICATION_CREDENTIALS or the metadata server's service account"
            ))),
            (_, "FAILED_PRECONDITION") => Attempt::Final(SignerError::Unavailable(format!(
                "Cloud KMS key version cannot sign ({detail}); enable it (gcloud kms keys versions enable)"
            ))),
            (_, "NOT_FOUND") => Attempt::Final(SignerError::Refused(format!(
                "no such Cloud KMS key version ({detail}); check KMS_KEY_ID"
            ))),
            (_, "INVALID_ARGUMENT") if detail.contains("checksum") => Attempt::Transient(
                SignerError::Unavailable(format!("Cloud KMS saw a corrupted request ({detail})")),
            ),
            (_, "INVALID_ARGUMENT") => Attempt::Final(SignerError::Refused(format!(
                "Cloud KMS refused the request ({detail})"
            ))),
            (429 | 500 | 502 | 503 | 504, _) => Attempt::Transient(SignerError::Unavailable(
                format!("Cloud KMS HTTP {http} {} ({detail})", e.status),
            )),
            _ => Attempt::Final(SignerError::Unavailable(format!(
                "Cloud KMS HTTP {http} {} ({detail})",
                e.status
            ))),
        }
    }
}

enum Attempt {
    Transient(SignerError),
    Final(SignerError),
}

/// The Ed25519 key in a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block.
fn pem_public_key(pem: &str) -> Option<Pubkey> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let b64: String = body.split_whitespace().collect();
    ed25519_from_spki(&STANDARD.decode(b64).ok()?)
}

impl TxSigner for GcpKmsSigner {
    fn pubkey(&self) -> Pubkey {
        self.pubkey
    }

    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({
                "data": STANDARD.encode(message),
                "dataCrc32c": crc32c(message).to_string(),
            });
            for _ in 0..ATTEMPTS {
                let out: SignResponse = self
                    .call(reqwest::Method::POST, ":asymmetricSign", Some(&body))
                    .await?;
                if out.name != self.name {
                    return Err(SignerError::Refused(format!(
                        "asymmetricSign answered for {:?}, not the pinned {}",
                        out.name, self.name
                    )));
                }
                let signature = STANDARD.decode(&out.signature).unwrap_or_default();
                // Google's advice on a failed integrity check: retry a bounded number of times.
                if out.verified_data_crc32c
                    && out.signature_crc32c.parse::<u32>().ok() == Some(crc32c(&signature))
                {
                    return <[u8; 64]>::try_from(signature)
                        .map_err(|_| SignerError::BadSignature(self.pubkey));
                }
                tracing::warn!(key_version = %self.name, "asymmetricSign failed its CRC32C integrity check; retrying");
            }
            Err(SignerError::Unavailable(
                "asymmetricSign answers keep failing their CRC32C integrity checks".into(),
            ))
        })
    }
}
