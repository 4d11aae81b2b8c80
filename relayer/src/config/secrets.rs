//! The secrets requests are checked with, and how their variables are read and checked.
use std::fmt;

use super::{ConfigError, Env};

/// A secret value: never printed, not even by `{:?}`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The secrets requests are checked with; rotated without a restart when they come from Vault
/// KV (see `crate::secrets`).
#[derive(Clone, Debug)]
pub struct Secrets {
    /// Every webhook secret accepted (several during a rotation).
    pub tracking: Vec<Secret>,
    pub jwt: Secret,
    pub jwt_previous: Option<Secret>,
    /// The tracking providers' webhook secrets (`crate::providers`).
    pub providers: crate::providers::ProviderSecrets,
}

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Secret, b: &Secret| a.expose() == b.expose();
        self.tracking.len() == other.tracking.len()
            && self
                .tracking
                .iter()
                .zip(&other.tracking)
                .all(|(a, b)| same(a, b))
            && same(&self.jwt, &other.jwt)
            && match (&self.jwt_previous, &other.jwt_previous) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
            && self.providers.same_as(&other.providers)
    }
}

/// The names of the secrets, as variables and as keys of the Vault KV secret.
pub const SECRET_NAMES: [&str; 7] = [
    "TRACKING_HMAC_SECRET",
    "ACCESS_JWT_SECRET",
    "ACCESS_JWT_SECRET_PREVIOUS",
    "EASYPOST_WEBHOOK_SECRET",
    "AFTERSHIP_WEBHOOK_SECRET",
    "SHIPPO_WEBHOOK_SECRET",
    "SEVENTEENTRACK_API_KEY",
];

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The webhook and operator-token secrets, checked (also when re-read from Vault KV).
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        let tracking = self
            .required("TRACKING_HMAC_SECRET", "a random string of 32+ characters")?
            .split(',')
            .map(|s| parse_hmac_secret(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let jwt = self.jwt_secret("ACCESS_JWT_SECRET")?;
        let jwt_previous = match self.optional("ACCESS_JWT_SECRET_PREVIOUS") {
            None => None,
            Some(_) => Some(self.jwt_secret("ACCESS_JWT_SECRET_PREVIOUS")?),
        };
        Ok(Secrets {
            tracking,
            jwt,
            jwt_previous,
            providers: self.provider_secrets()?,
        })
    }

    /// Each provider's webhook secrets, comma-separated while rotating; unset: the provider's
    /// endpoint is off.
    fn provider_secrets(&self) -> Result<crate::providers::ProviderSecrets, ConfigError> {
        let list =
            |var: &'static str, key: fn(&str) -> Vec<u8>| -> Result<Vec<Secret>, ConfigError> {
                let Some(value) = self.optional(var) else {
                    return Ok(Vec::new());
                };
                value
                    .split(',')
                    .map(str::trim)
                    .map(|s| {
                        if s.len() < 8 {
                            return Err(ConfigError {
                                var,
                                problem: "has a secret shorter than 8 characters".into(),
                            });
                        }
                        Ok(Secret::new(key(s)))
                    })
                    .collect()
            };
        let plain = |s: &str| s.as_bytes().to_vec();
        Ok(crate::providers::ProviderSecrets {
            easypost: list(
                "EASYPOST_WEBHOOK_SECRET",
                crate::providers::easypost::normalise,
            )?,
            aftership: list("AFTERSHIP_WEBHOOK_SECRET", plain)?,
            shippo: list("SHIPPO_WEBHOOK_SECRET", plain)?,
            seventeen_track: list("SEVENTEENTRACK_API_KEY", plain)?,
        })
    }

    /// An operator-token secret: at least 32 characters.
    pub fn jwt_secret(&self, var: &'static str) -> Result<Secret, ConfigError> {
        let value = self.required(var, "a random string of 32+ characters")?;
        if value.len() < 32 {
            return Err(ConfigError {
                var,
                problem: "must be at least 32 characters".into(),
            });
        }
        Ok(Secret::new(value.into_bytes()))
    }
}

/// A plain secret is used as bytes; `whsec_<base64>` (Standard Webhooks) is decoded first.
fn parse_hmac_secret(value: &str) -> Result<Secret, ConfigError> {
    use base64::Engine;
    let var = "TRACKING_HMAC_SECRET";
    let bytes = match value.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| ConfigError {
                var,
                problem: "has a whsec_ value that is not base64".into(),
            })?,
        None => value.as_bytes().to_vec(),
    };
    if bytes.len() < 16 {
        return Err(ConfigError {
            var,
            problem: "has a secret shorter than 16 bytes".into(),
        });
    }
    Ok(Secret::new(bytes))
}
