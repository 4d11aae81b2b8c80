//! A PKCS#11 HSM (the deploy checklist's hardware-backed signer): an ed25519 key pair on a token,
//! signing with CKM_EDDSA. Tested against SoftHSM2; the same code drives YubiHSM, Nitrokey,
//! CloudHSM and other PKCS#11 modules.
//!
//! The private key must be sensitive and not extractable; start-up refuses it otherwise.
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error as CkError, RvError},
    mechanism::{
        eddsa::{EddsaParams, EddsaSignatureScheme},
        Mechanism,
    },
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    types::AuthPin,
};

use super::{SignFuture, SignerError, TxSigner};
use crate::config::Secret;

#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// The vendor's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: String,
    pub token_label: String,
    pub pin: Secret,
    pub key_label: String,
}

pub struct Pkcs11Signer {
    // PKCS#11 sessions are not to be used from two threads at once.
    session: Arc<Mutex<Session>>,
    key: ObjectHandle,
    pubkey: Pubkey,
}

impl Pkcs11Signer {
    pub fn connect(config: &Pkcs11Config) -> anyhow::Result<Self> {
        let ctx = Pkcs11::new(&config.module)
            .map_err(|e| anyhow::anyhow!("PKCS11_MODULE {}: {e}", config.module))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => anyhow::bail!("initialising {}: {e}", config.module),
        }
        let slot = ctx
            .get_slots_with_token()?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|t| t.label() == config.token_label)
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no token labelled {:?} (PKCS11_TOKEN_LABEL)",
                    config.token_label
                )
            })?;
        let session = ctx.open_ro_session(slot)?;
        let pin = std::str::from_utf8(config.pin.expose())
            .map_err(|_| anyhow::anyhow!("PKCS11_PIN is not UTF-8"))?;
        // Login is per application, not per session: a second signer in this process finds the
        // user logged in already.
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => anyhow::bail!(
                "login to token {:?} failed (check PKCS11_PIN): {e}",
                config.token_label
            ),
        }
        let find = |class: ObjectClass| {
            session.find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Label(config.key_label.as_bytes().to_vec()),
            ])
        };
        let [key] = find(ObjectClass::PRIVATE_KEY)?[..] else {
            anyhow::bail!(
                "expected exactly one ed25519 private key labelled {:?} (PKCS11_KEY_LABEL)",
                config.key_label
            );
        };
        let flags =
            session.get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])?;
        let sensitive = flags
            .iter()
            .any(|a| matches!(a, Attribute::Sensitive(true)));
        let extractable = flags
            .iter()
            .any(|a| matches!(a, Attribute::Extractable(true)));
        if !sensitive || extractable {
            anyhow::bail!(
                "key {:?} must be sensitive and not extractable",
                config.key_label
            );
        }
        let [public] = find(ObjectClass::PUBLIC_KEY)?[..] else {
            anyhow::bail!(
                "expected exactly one ed25519 public key labelled {:?}",
                config.key_label
            );
        };
        let point = session
            .get_attributes(public, &[AttributeType::EcPoint])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| {
                anyhow::anyhow!("public key {:?} has no CKA_EC_POINT", config.key_label)
            })?;
        let pubkey = Pubkey::new_from_array(ec_point_bytes(&point).ok_or_else(|| {
            anyhow::anyhow!(
                "public key {:?}: CKA_EC_POINT is not a 32-byte ed25519 point",
                config.key_label
            )
        })?);
        tracing::info!(token = %config.token_label, key = %config.key_label, address = %pubkey, "pkcs11 signer ready");
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            key,
            pubkey,
        })
    }
}

/// CKA_EC_POINT holds the 32-byte point, DER-wrapped as an OCTET STRING by most modules
/// (`04 20 <point>`) and raw by some.
fn ec_point_bytes(point: &[u8]) -> Option<[u8; 32]> {
    match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

impl TxSigner for Pkcs11Signer {
    fn pubkey(&self) -> Pubkey {
        self.pubkey
    }

    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        let session = self.session.clone();
        let (key, message) = (self.key, message.to_vec());
        Box::pin(async move {
            let signature = tokio::task::spawn_blocking(move || {
                let session = session
                    .lock()
                    .map_err(|_| SignerError::Unavailable("pkcs11 session lock poisoned".into()))?;
                session
                    .sign(
                        &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                        key,
                        &message,
                    )
                    .map_err(|e| SignerError::Unavailable(format!("pkcs11 sign: {e}")))
            })
            .await
            .map_err(|e| SignerError::Unavailable(format!("pkcs11 sign task: {e}")))??;
            <[u8; 64]>::try_from(signature).map_err(|_| SignerError::BadSignature(self.pubkey))
        })
    }
}
