//! HashiCorp Vault / OpenBao Transit: an ed25519 key that never leaves the server.
//!
//! At start-up the key is read once: it must be ed25519 and not exportable, and the version is
//! pinned (`VAULT_KEY_VERSION`, or the latest at start-up). Each signature is requested at that
//! version, returned as `vault:v<N>:<base64>`, and checked to be from version N before the
//! caller verifies it against the pinned public key. A rotation in Vault therefore never
//! changes the relayer's address under a running process.
//!
//! The token: with `VAULT_TOKEN_FILE` (as Vault Agent writes it) the file is read again when it
//! changes (looked at every few seconds) and whenever Vault answers 401 or 403, and the request is
//! retried once with the new token; a renewable token is renewed at half its TTL.
use std::{
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};

use anchor_lang::prelude::Pubkey;
use base64::{engine::general_purpose::STANDARD, Engine};
use vaultrs::{
    api::transit::{requests::SignDataRequestBuilder, responses::ReadKeyData, KeyType},
    client::{Client as _, VaultClient, VaultClientSettingsBuilder},
    error::ClientError,
    transit,
};

use super::{SignFuture, SignerError, TxSigner};
use crate::config::Secret;

#[derive(Clone, Debug)]
pub struct VaultConfig {
    pub url: String,
    pub token: Secret,
    /// Where `token` came from, to read again when it changes.
    pub token_file: Option<std::path::PathBuf>,
    pub mount: String,
    pub key: String,
    /// Pinned key version; `None` pins the latest at start-up.
    pub version: Option<u64>,
    /// How long one Vault request may take before the signer counts as unavailable.
    pub timeout: Duration,
}

pub struct VaultSigner {
    // vaultrs' settings derive Debug with the token inside: this struct deliberately does not.
    client: Arc<tokio::sync::RwLock<VaultClient>>,
    token: Arc<TokenSource>,
    mount: String,
    key: String,
    version: u64,
    pubkey: Pubkey,
}

fn classify(e: ClientError, what: &str) -> SignerError {
    match e {
        // Retryable: an expired or rotated token gives the same answer as a missing policy, and
        // a renewed token (VAULT_TOKEN_FILE via Vault Agent) must not find every job dead.
        ClientError::APIError {
            code: 401 | 403, ..
        } => SignerError::Unavailable(format!(
            "{what}: permission denied (token expired, or its policy lacks this key's transit/sign and transit/keys paths)"
        )),
        ClientError::APIError {
            code: 400 | 404,
            errors,
        } => SignerError::Refused(format!("{what}: {}", errors.join("; "))),
        ClientError::APIError { code, errors } => {
            SignerError::Unavailable(format!("{what}: HTTP {code} {}", errors.join("; ")))
        }
        other => SignerError::Unavailable(format!("{what}: {other}")),
    }
}

impl VaultSigner {
    pub async fn connect(config: &VaultConfig) -> anyhow::Result<Self> {
        let token_text = String::from_utf8(config.token.expose().to_vec())
            .map_err(|_| anyhow::anyhow!("VAULT_TOKEN is not UTF-8"))?;
        let settings = VaultClientSettingsBuilder::default()
            .address(&config.url)
            .token(token_text.clone())
            .timeout(Some(config.timeout))
            .build()
            .map_err(|e| anyhow::anyhow!("VAULT_URL {:?} is not usable: {e}", config.url))?;
        let client =
            VaultClient::new(settings).map_err(|e| anyhow::anyhow!("Vault client: {e}"))?;
        let what = format!("reading transit key {}/{}", config.mount, config.key);
        let key = transit::key::read(&client, &config.mount, &config.key)
            .await
            .map_err(|e| classify(e, &what))?;
        if !matches!(key.key_type, KeyType::Ed25519) {
            anyhow::bail!(
                "transit key {} is {:?}; the relayer needs an ed25519 key",
                config.key,
                key.key_type
            );
        }
        if key.exportable || key.allow_plaintext_backup {
            anyhow::bail!("transit key {} is exportable or allows plaintext backup; create a non-exportable key", config.key);
        }
        let ReadKeyData::Asymmetric(versions) = key.keys else {
            anyhow::bail!("transit key {} has no public keys", config.key);
        };
        let latest = versions
            .keys()
            .filter_map(|v| v.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let version = config.version.unwrap_or(latest);
        let entry = versions.get(&version.to_string()).ok_or_else(|| {
            anyhow::anyhow!(
                "transit key {} has no version {version} (latest is {latest})",
                config.key
            )
        })?;
        let bytes: [u8; 32] = STANDARD
            .decode(&entry.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "transit key {} v{version}: public key is not 32 bytes of base64",
                    config.key
                )
            })?;
        let pubkey = Pubkey::new_from_array(bytes);
        tracing::info!(key = %config.key, version, address = %pubkey, "vault transit signer ready");
        let client = Arc::new(tokio::sync::RwLock::new(client));
        let token = Arc::new(TokenSource {
            file: config.token_file.clone(),
            current: std::sync::Mutex::new(token_text.clone()),
            modified: std::sync::Mutex::new(modified(config.token_file.as_deref())),
        });
        tokio::spawn(maintain(Arc::downgrade(&client), token.clone()));
        Ok(Self {
            client,
            token,
            mount: config.mount.clone(),
            key: config.key.clone(),
            version,
            pubkey,
        })
    }

    pub fn version(&self) -> u64 {
        self.version
    }
}

impl TxSigner for VaultSigner {
    fn pubkey(&self) -> Pubkey {
        self.pubkey
    }

    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            let input = STANDARD.encode(message);
            let request = || async {
                let mut opts = SignDataRequestBuilder::default();
                opts.key_version(self.version);
                let client = self.client.read().await;
                transit::data::sign(&*client, &self.mount, &self.key, &input, Some(&mut opts)).await
            };
            let response = match request().await {
                // The token may have been replaced under us (Vault Agent): read it and try once more.
                Err(ClientError::APIError {
                    code: 401 | 403, ..
                }) if self.token.reload(&self.client).await => request().await,
                other => other,
            }
            .map_err(|e| classify(e, "transit sign"))?;
            let expected_prefix = format!("vault:v{}:", self.version);
            let encoded = response
                .signature
                .strip_prefix(&expected_prefix)
                .ok_or_else(|| {
                    SignerError::Refused(format!(
                        "signature is not from key version {}",
                        self.version
                    ))
                })?;
            STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or(SignerError::BadSignature(self.pubkey))
        })
    }
}

/// The token in use, and the file it comes from.
struct TokenSource {
    file: Option<std::path::PathBuf>,
    current: std::sync::Mutex<String>,
    modified: std::sync::Mutex<Option<SystemTime>>,
}

fn modified(file: Option<&std::path::Path>) -> Option<SystemTime> {
    std::fs::metadata(file?).and_then(|m| m.modified()).ok()
}

impl TokenSource {
    /// Reads the file again; when it holds another token, the client uses it from now on.
    /// Returns whether the token changed.
    async fn reload(&self, client: &tokio::sync::RwLock<VaultClient>) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let fresh = match std::fs::read_to_string(file) {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "VAULT_TOKEN_FILE cannot be read; keeping the token in use");
                return false;
            }
        };
        *self.modified.lock().expect("token lock poisoned") = modified(Some(file));
        let changed = {
            let mut current = self.current.lock().expect("token lock poisoned");
            let changed = !fresh.is_empty() && *current != fresh;
            if changed {
                current.clone_from(&fresh);
            }
            changed
        };
        if changed {
            client.write().await.set_token(&fresh);
            tracing::info!(file = %file.display(), "Vault token read again from VAULT_TOKEN_FILE");
        }
        changed
    }

    fn file_changed(&self) -> bool {
        let now = modified(self.file.as_deref());
        now.is_some() && now != *self.modified.lock().expect("token lock poisoned")
    }
}

/// How often the token file is looked at for a change.
const TOKEN_FILE_EVERY: Duration = Duration::from_secs(3);

/// Keeps the token fresh while the signer lives: reads the file again when it changed, and renews
/// a renewable token at half its TTL. Ends when the signer is dropped.
async fn maintain(client: Weak<tokio::sync::RwLock<VaultClient>>, token: Arc<TokenSource>) {
    let mut renew_at = renewal(&client).await;
    loop {
        tokio::time::sleep(TOKEN_FILE_EVERY).await;
        let Some(strong) = client.upgrade() else {
            return;
        };
        if token.file_changed() && token.reload(&strong).await {
            renew_at = renewal(&client).await;
        }
        if renew_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
            let renewed = vaultrs::token::renew_self(&*strong.read().await, None).await;
            match renewed {
                Ok(auth) => {
                    tracing::debug!(lease_secs = auth.lease_duration, "Vault token renewed");
                    renew_at = Some(half(auth.lease_duration));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Vault token not renewed; retrying shortly (check its max TTL, or let Vault Agent renew it)");
                    renew_at = Some(tokio::time::Instant::now() + TOKEN_FILE_EVERY);
                }
            }
        }
    }
}

/// When to renew the token in use: at half its TTL, if it is renewable and expires at all.
async fn renewal(client: &Weak<tokio::sync::RwLock<VaultClient>>) -> Option<tokio::time::Instant> {
    let client = client.upgrade()?;
    let info = vaultrs::token::lookup_self(&*client.read().await)
        .await
        .ok()?;
    (info.renewable == Some(true) && info.ttl > 0).then(|| half(info.ttl))
}

fn half(ttl_secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs((ttl_secs / 2).max(1))
}
