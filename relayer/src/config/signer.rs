//! Which signer holds the relayer's key (`SIGNER_MODE`, `KMS_PROVIDER` and each backend's
//! variables).
use super::{ConfigError, Env, Secret};
use crate::signer::{
    aws::AwsKmsConfig,
    gcp::{self, GcpKmsConfig},
    pkcs11::Pkcs11Config,
    vault::VaultConfig,
    SignerConfig,
};

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
    /// `KMS_PROVIDER=vault|aws|gcp` (key `KMS_KEY_ID`), `SIGNER_MODE=pkcs11`, or `SIGNER_MODE=local`
    /// (`SIGNER_KEYPAIR_FILE`, refused when `execute`: it keeps the key on disk).
    pub fn signer(&self, execute: bool) -> Result<SignerConfig, ConfigError> {
        let mode = self.required("SIGNER_MODE", "vault, kms, pkcs11 or local")?;
        let key = match mode.as_str() {
            "local" if execute => {
                return Err(ConfigError {
                    var: "SIGNER_MODE",
                    problem: "is local, which keeps the key on disk and is refused with \
                              OPENCLAW_EXECUTE=true; use vault"
                        .into(),
                })
            }
            "local" => {
                return Ok(SignerConfig::Local {
                    keypair_file: self
                        .required("SIGNER_KEYPAIR_FILE", "~/.config/solana/relayer.json")?,
                })
            }
            "pkcs11" => return Ok(SignerConfig::Pkcs11(self.pkcs11()?)),
            "vault" => self.required("VAULT_KEY_ID", "relayer")?,
            "kms" => match self.required("KMS_PROVIDER", "vault")?.as_str() {
                "vault" => self.required("KMS_KEY_ID", "relayer")?,
                "aws" => return Ok(SignerConfig::Aws(self.aws_kms()?)),
                "gcp" => return Ok(SignerConfig::Gcp(self.gcp_kms()?)),
                other => {
                    return Err(ConfigError {
                        var: "KMS_PROVIDER",
                        problem: format!("is {other:?}, expected vault, aws or gcp"),
                    })
                }
            },
            other => {
                return Err(ConfigError {
                    var: "SIGNER_MODE",
                    problem: format!("is {other:?}, expected vault, kms, pkcs11 or local"),
                })
            }
        };
        let version: Option<u64> =
            self.parsed_opt("VAULT_KEY_VERSION", "a key version (1, 2, ...)")?;
        if version == Some(0) {
            return Err(ConfigError {
                var: "VAULT_KEY_VERSION",
                problem: "is 0, expected a key version (1, 2, ...)".into(),
            });
        }
        Ok(SignerConfig::Vault(VaultConfig {
            url: self.required("VAULT_URL", "https://vault.internal:8200")?,
            token: self.vault_token()?,
            // With VAULT_TOKEN set, the file is not the token's source.
            token_file: match self.optional("VAULT_TOKEN") {
                Some(_) => None,
                None => self.optional("VAULT_TOKEN_FILE").map(Into::into),
            },
            mount: self.required("VAULT_TRANSIT_MOUNT", "transit")?,
            key,
            version,
            timeout: self.secs("VAULT_TIMEOUT_SECS", 1)?,
        }))
    }

    /// `KMS_PROVIDER=aws`: region and credentials come from the AWS SDK's own chain.
    fn aws_kms(&self) -> Result<AwsKmsConfig, ConfigError> {
        Ok(AwsKmsConfig {
            key_id: self.required(
                "KMS_KEY_ID",
                "alias/openclaw-relayer or arn:aws:kms:eu-west-1:111122223333:key/...",
            )?,
            timeout: self.secs("KMS_TIMEOUT_SECS", 1)?,
        })
    }

    /// `KMS_PROVIDER=gcp`: `KMS_KEY_ID` names one key version; credentials are ADC.
    fn gcp_kms(&self) -> Result<GcpKmsConfig, ConfigError> {
        let key_version = self.required(
            "KMS_KEY_ID",
            "projects/p/locations/global/keyRings/r/cryptoKeys/relayer/cryptoKeyVersions/1",
        )?;
        if !gcp::is_key_version_name(&key_version) {
            return Err(ConfigError {
                var: "KMS_KEY_ID",
                problem: format!(
                    "is {key_version:?}; with KMS_PROVIDER=gcp it is a key version's full name, \
                     projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N"
                ),
            });
        }
        Ok(GcpKmsConfig {
            key_version,
            endpoint: self.required("GCP_KMS_ENDPOINT", gcp::DEFAULT_ENDPOINT)?,
            timeout: self.secs("KMS_TIMEOUT_SECS", 1)?,
        })
    }

    fn pkcs11(&self) -> Result<Pkcs11Config, ConfigError> {
        let pin = match (
            self.optional("PKCS11_PIN"),
            self.optional("PKCS11_PIN_FILE"),
        ) {
            (Some(pin), _) => pin,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|p| p.trim().to_owned())
                .map_err(|e| ConfigError {
                    var: "PKCS11_PIN_FILE",
                    problem: format!("cannot be read ({path}): {e}"),
                })?,
            (None, None) => {
                return Err(ConfigError {
                    var: "PKCS11_PIN",
                    problem: "is not set (or set PKCS11_PIN_FILE)".into(),
                })
            }
        };
        Ok(Pkcs11Config {
            module: self.required("PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")?,
            token_label: self.required("PKCS11_TOKEN_LABEL", "relayer")?,
            pin: Secret::new(pin.into_bytes()),
            key_label: self.required("PKCS11_KEY_LABEL", "relayer")?,
        })
    }
}
