//! Transaction signing. The relayer's key lives in a KMS; the process holds only a handle.
//!
//! Backends (chosen by `SIGNER_MODE` / `KMS_PROVIDER`):
//! - `vault`: HashiCorp Vault or OpenBao Transit, an ed25519 key that is never exportable;
//! - `pkcs11`: a PKCS#11 HSM (tested with SoftHSM2), CKM_EDDSA on a non-extractable key;
//! - `local`: a Solana keypair file, for tests and simulation only (refused with
//!   `OPENCLAW_EXECUTE=true`);
//! - `aws`: AWS KMS, an `ECC_NIST_EDWARDS25519` key signing `ED25519_SHA_512`;
//! - `gcp`: GCP Cloud KMS, an `EC_SIGN_ED25519` key version.
//!
//! Every signature a backend returns is verified locally against the pinned public key before
//! anyone uses it.
pub mod aws;
pub mod gcp;
pub mod local;
pub mod pkcs11;
pub mod vault;

use std::{future::Future, pin::Pin, sync::Arc};

use anchor_lang::prelude::Pubkey;

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

/// DER SubjectPublicKeyInfo of an Ed25519 key up to the 32 key bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The 32-byte key inside an Ed25519 SubjectPublicKeyInfo, or `None` for anything else.
pub fn ed25519_from_spki(der: &[u8]) -> Option<Pubkey> {
    let key = der.strip_prefix(&ED25519_SPKI_PREFIX)?;
    Some(Pubkey::new_from_array(key.try_into().ok()?))
}

/// Signed at start-up to prove the key signs for the address it claims; it is not a Solana
/// message (those start with a signature count, not with text).
pub(super) fn probe(pubkey: &Pubkey) -> Vec<u8> {
    format!("openclaw-escrow signer start-up probe for {pubkey}").into_bytes()
}

/// Which backend (read by `crate::config`).
#[derive(Clone, Debug)]
pub enum SignerConfig {
    Vault(vault::VaultConfig),
    Pkcs11(pkcs11::Pkcs11Config),
    Aws(aws::AwsKmsConfig),
    Gcp(gcp::GcpKmsConfig),
    Local { keypair_file: String },
}

/// Connects the configured backend. With `expected`, refuses a key with another address.
pub async fn connect(
    config: &SignerConfig,
    expected: Option<Pubkey>,
) -> anyhow::Result<Arc<dyn TxSigner>> {
    let signer: Arc<dyn TxSigner> = match config {
        SignerConfig::Vault(v) => Arc::new(vault::VaultSigner::connect(v).await?),
        SignerConfig::Pkcs11(p) => {
            let p = p.clone();
            Arc::new(tokio::task::spawn_blocking(move || pkcs11::Pkcs11Signer::connect(&p)).await??)
        }
        SignerConfig::Aws(a) => Arc::new(aws::AwsKmsSigner::connect(a).await?),
        SignerConfig::Gcp(g) => Arc::new(gcp::GcpKmsSigner::connect(g).await?),
        SignerConfig::Local { keypair_file } => {
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
