//! A Solana CLI keypair file (a JSON array of 64 bytes). Tests and simulation only.
use anchor_lang::prelude::Pubkey;
use ed25519_dalek::{Signer as _, SigningKey};

use super::{SignFuture, TxSigner};

pub struct LocalSigner {
    key: SigningKey,
}

impl LocalSigner {
    pub fn from_file(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("SIGNER_KEYPAIR_FILE {path}: {e}"))?;
        let bytes: Vec<u8> = serde_json::from_str(&text)
            .map_err(|_| anyhow::anyhow!("SIGNER_KEYPAIR_FILE {path} is not a Solana keypair file (a JSON array of 64 bytes)"))?;
        Self::from_keypair_bytes(&bytes).ok_or_else(|| {
            anyhow::anyhow!("SIGNER_KEYPAIR_FILE {path}: not a valid 64-byte ed25519 keypair")
        })
    }

    pub fn from_keypair_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 64] = bytes.try_into().ok()?;
        SigningKey::from_keypair_bytes(bytes)
            .ok()
            .map(|key| Self { key })
    }
}

impl TxSigner for LocalSigner {
    fn pubkey(&self) -> Pubkey {
        Pubkey::new_from_array(self.key.verifying_key().to_bytes())
    }

    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move { Ok(self.key.sign(message).to_bytes()) })
    }
}
