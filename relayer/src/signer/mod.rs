//! Transaction signing. The relayer's key lives in a KMS; the process holds only a handle.
//!
//! Backends (chosen by `SIGNER_MODE` / `KMS_PROVIDER`):
//! - `vault`: HashiCorp Vault or OpenBao Transit, an ed25519 key that is never exportable;
//! - `pkcs11`: a PKCS#11 HSM (tested with SoftHSM2), CKM_EDDSA on a non-extractable key;
//! - `local`: a Solana keypair file, for tests and simulation only (refused with
//!   `OPENCLAW_EXECUTE=true`);
//! - AWS KMS and GCP KMS are refused at start-up as not supported yet: nothing here can run
//!   their real wire protocol, and untested signing code does not ship.
//!
//! Every signature a backend returns is verified locally against the pinned public key before
//! anyone uses it.
pub mod local;
pub mod pkcs11;
pub mod vault;

use std::{future::Future, pin::Pin, sync::Arc};

use anchor_lang::prelude::Pubkey;

use crate::config::{ConfigError, Env, Secret};

pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<[u8; 64], SignerError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The KMS could not be reached or failed; retrying later may work.
    #[error("signer unavailable: {0}")]
    Unavailable(String),
    /// The KMS answered no (permissions, missing key); retrying will not help.
    #[error("signer refused: {0}")]
    Refused(String),
    /// The KMS returned something that is not a valid signature by the pinned key.
    #[error("signature from the signer does not verify against {0}; refusing to use it")]
    BadSignature(Pubkey),
}

/// A key that signs Solana messages: ed25519 over the raw message bytes.
pub trait TxSigner: Send + Sync + 'static {
    fn pubkey(&self) -> Pubkey;

    /// The backend's raw signature; callers use `sign`.
    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;

    /// Signs and verifies the result locally before returning it; failures are counted in
    /// `relayer_signer_errors_total`.
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            let result = match self.sign_unchecked(message).await {
                Ok(signature) if verify(&self.pubkey(), message, &signature) => Ok(signature),
                Ok(_) => Err(SignerError::BadSignature(self.pubkey())),
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                SIGNER_ERRORS.with_label_values(&[e.kind()]).inc();
            }
            result
        })
    }
}

impl SignerError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Refused(_) => "refused",
            Self::BadSignature(_) => "bad_signature",
        }
    }
}

/// Signing failures by kind, process-wide (every signer in the process shares it); the metrics
/// registry exports it.
pub static SIGNER_ERRORS: std::sync::LazyLock<prometheus::IntCounterVec> =
    std::sync::LazyLock::new(|| {
        prometheus::IntCounterVec::new(
            prometheus::Opts::new("signer_errors_total", "Failed signing requests by kind"),
            &["kind"],
        )
        .expect("metric")
    });

/// Strict ed25519 verification (no malleable or small-order encodings).
pub fn verify(pubkey: &Pubkey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&pubkey.to_bytes()) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .is_ok()
}

/// Which backend, from the environment.
#[derive(Clone, Debug)]
pub enum SignerConfig {
    Vault(vault::VaultConfig),
    Pkcs11(pkcs11::Pkcs11Config),
    Local { keypair_file: String },
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// `VAULT_TOKEN`, or the contents of `VAULT_TOKEN_FILE` (which Vault Agent keeps fresh).
    pub fn vault_token(&self) -> Result<Secret, ConfigError> {
        let token = match (
            self.optional("VAULT_TOKEN"),
            self.optional("VAULT_TOKEN_FILE"),
        ) {
            (Some(token), _) => token,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| ConfigError {
                    var: "VAULT_TOKEN_FILE",
                    problem: format!("cannot be read ({path}): {e}"),
                })?,
            (None, None) => {
                return Err(ConfigError {
                    var: "VAULT_TOKEN",
                    problem: "is not set (or set VAULT_TOKEN_FILE)".into(),
                })
            }
        };
        Ok(Secret::new(token.into_bytes()))
    }

    /// `SIGNER_MODE=vault` (Vault/OpenBao Transit, key `VAULT_KEY_ID`), `SIGNER_MODE=kms` with
    /// `KMS_PROVIDER=vault` (key `KMS_KEY_ID`), or `SIGNER_MODE=local` (`SIGNER_KEYPAIR_FILE`).
    pub fn signer(&self) -> Result<SignerConfig, ConfigError> {
        let mode = self.required("SIGNER_MODE", "vault, kms, pkcs11 or local")?;
        let key = match mode.as_str() {
            "local" => {
                return Ok(SignerConfig::Local {
                    keypair_file: self.required("SIGNER_KEYPAIR_FILE", "~/.config/solana/relayer.json")?,
                })
            }
            "vault" => self.required("VAULT_KEY_ID", "relayer")?,
            "pkcs11" => {
                let pin = match (self.optional("PKCS11_PIN"), self.optional("PKCS11_PIN_FILE")) {
                    (Some(pin), _) => pin,
                    (None, Some(path)) => std::fs::read_to_string(&path).map(|p| p.trim().to_owned()).map_err(|e| {
                        ConfigError { var: "PKCS11_PIN_FILE", problem: format!("cannot be read ({path}): {e}") }
                    })?,
                    (None, None) => {
                        return Err(ConfigError { var: "PKCS11_PIN", problem: "is not set (or set PKCS11_PIN_FILE)".into() })
                    }
                };
                return Ok(SignerConfig::Pkcs11(pkcs11::Pkcs11Config {
                    module: self.required("PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")?,
                    token_label: self.required("PKCS11_TOKEN_LABEL", "relayer")?,
                    pin: Secret::new(pin.into_bytes()),
                    key_label: self.required("PKCS11_KEY_LABEL", "relayer")?,
                }));
            }
            "kms" => match self.required("KMS_PROVIDER", "vault")?.as_str() {
                "vault" => self.required("KMS_KEY_ID", "relayer")?,
                p @ ("aws" | "gcp") => {
                    return Err(ConfigError {
                        var: "KMS_PROVIDER",
                        problem: format!("is {p}, which is not supported yet: use vault (HashiCorp Vault or OpenBao Transit)"),
                    })
                }
                other => {
                    return Err(ConfigError { var: "KMS_PROVIDER", problem: format!("is {other:?}, expected vault, aws or gcp") })
                }
            },
            other => return Err(ConfigError { var: "SIGNER_MODE", problem: format!("is {other:?}, expected vault, kms, pkcs11 or local") }),
        };
        let token = self.vault_token()?;
        let version = match self.optional("VAULT_KEY_VERSION") {
            None => None,
            Some(v) => Some(
                v.parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| ConfigError {
                        var: "VAULT_KEY_VERSION",
                        problem: format!("is {v:?}, expected a key version (1, 2, ...)"),
                    })?,
            ),
        };
        Ok(SignerConfig::Vault(vault::VaultConfig {
            url: self.required("VAULT_URL", "https://vault.internal:8200")?,
            token,
            mount: self
                .optional("VAULT_TRANSIT_MOUNT")
                .unwrap_or_else(|| "transit".into()),
            key,
            version,
            timeout: std::time::Duration::from_secs(self.parsed(
                "VAULT_TIMEOUT_SECS",
                10,
                "seconds",
            )?),
        }))
    }

    /// `RELAYER_ADDRESS`: the address the signer must have, when set.
    pub fn relayer_address(&self) -> Result<Option<Pubkey>, ConfigError> {
        self.optional("RELAYER_ADDRESS")
            .map(|v| {
                v.parse().map_err(|_| ConfigError {
                    var: "RELAYER_ADDRESS",
                    problem: format!("is {v:?}, not a base58 address"),
                })
            })
            .transpose()
    }
}

/// Connects the configured backend. With `expected`, refuses a key with another address; with
/// `execute`, refuses the local keypair signer.
pub async fn connect(
    config: &SignerConfig,
    expected: Option<Pubkey>,
    execute: bool,
) -> anyhow::Result<Arc<dyn TxSigner>> {
    let signer: Arc<dyn TxSigner> = match config {
        SignerConfig::Vault(v) => Arc::new(vault::VaultSigner::connect(v).await?),
        SignerConfig::Pkcs11(p) => {
            let p = p.clone();
            Arc::new(tokio::task::spawn_blocking(move || pkcs11::Pkcs11Signer::connect(&p)).await??)
        }
        SignerConfig::Local { keypair_file } => {
            if execute {
                anyhow::bail!("SIGNER_MODE=local keeps the key on disk and is refused with OPENCLAW_EXECUTE=true; use vault");
            }
            Arc::new(local::LocalSigner::from_file(keypair_file)?)
        }
    };
    if let Some(expected) = expected {
        if signer.pubkey() != expected {
            anyhow::bail!(
                "the signer's key is {} but RELAYER_ADDRESS is {expected}; fix the key id/version or RELAYER_ADDRESS",
                signer.pubkey()
            );
        }
    }
    Ok(signer)
}
