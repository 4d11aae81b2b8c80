//! HashiCorp Vault / OpenBao Transit: an ed25519 key that never leaves the server.
//!
//! At start-up the key is read once: it must be ed25519 and not exportable, and the version is
//! pinned (`VAULT_KEY_VERSION`, or the latest at start-up). Each signature is requested at that
//! version, returned as `vault:v<N>:<base64>`, and checked to be from version N before the
//! caller verifies it against the pinned public key. A rotation in Vault therefore never
//! changes the relayer's address under a running process.
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use base64::{engine::general_purpose::STANDARD, Engine};
use vaultrs::{
    api::transit::{requests::SignDataRequestBuilder, responses::ReadKeyData, KeyType},
    client::{VaultClient, VaultClientSettingsBuilder},
    error::ClientError,
    transit,
};

use super::{SignFuture, SignerError, TxSigner};
use crate::config::Secret;

#[derive(Clone, Debug)]
pub struct VaultConfig {
    pub url: String,
    pub token: Secret,
    pub mount: String,
    pub key: String,
    /// Pinned key version; `None` pins the latest at start-up.
    pub version: Option<u64>,
    /// How long one Vault request may take before the signer counts as unavailable.
    pub timeout: Duration,
}

pub struct VaultSigner {
    // vaultrs' settings derive Debug with the token inside: this struct deliberately does not.
    client: VaultClient,
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
        let token = String::from_utf8(config.token.expose().to_vec())
            .map_err(|_| anyhow::anyhow!("VAULT_TOKEN is not UTF-8"))?;
        let settings = VaultClientSettingsBuilder::default()
            .address(&config.url)
            .token(token)
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
        Ok(Self {
            client,
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
            let mut opts = SignDataRequestBuilder::default();
            opts.key_version(self.version);
            let input = STANDARD.encode(message);
            let response = transit::data::sign(
                &self.client,
                &self.mount,
                &self.key,
                &input,
                Some(&mut opts),
            )
            .await
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
