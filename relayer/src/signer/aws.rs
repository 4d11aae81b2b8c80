//! AWS KMS: an `ECC_NIST_EDWARDS25519` key with usage `SIGN_VERIFY`, signing pure ed25519
//! (`ED25519_SHA_512` over the `RAW` message; the pre-hashed `ED25519_PH_SHA_512` makes
//! signatures Solana does not accept).
//!
//! Region, credentials and `AWS_ENDPOINT_URL` come from the SDK's standard chain (environment,
//! profile, web identity / IRSA, IMDS). At start-up `KMS_KEY_ID` (a key id, ARN or alias) is
//! resolved once by `GetPublicKey` and the signer is pinned to the key ARN it names, so moving the
//! alias never changes the relayer's address under a running process. A probe signature, verified
//! locally, then proves the key is enabled and signs what the public key says. The relayer's
//! identity needs nothing but `kms:GetPublicKey` and `kms:Sign` on that one key.
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use aws_sdk_kms::{
    config::{retry::RetryConfig, timeout::TimeoutConfig},
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    primitives::Blob,
    types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec},
    Client,
};

use super::{ed25519_from_spki, probe, SignFuture, SignerError, TxSigner};

#[derive(Clone, Debug)]
pub struct AwsKmsConfig {
    /// `KMS_KEY_ID`: key id, key ARN, alias name (`alias/relayer`) or alias ARN.
    pub key_id: String,
    /// How long one attempt may take; the SDK retries transient failures (3 attempts in all).
    pub timeout: Duration,
}

pub struct AwsKmsSigner {
    client: Client,
    key_arn: String,
    pubkey: Pubkey,
}

impl AwsKmsSigner {
    /// Connects with the SDK's standard configuration chain.
    pub async fn connect(config: &AwsKmsConfig) -> anyhow::Result<Self> {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::connect_with(&sdk, config).await
    }

    /// Connects with an SDK configuration built elsewhere (region, endpoint, credentials).
    pub async fn connect_with(
        sdk: &aws_config::SdkConfig,
        config: &AwsKmsConfig,
    ) -> anyhow::Result<Self> {
        let Some(region) = sdk.region() else {
            anyhow::bail!(
                "AWS KMS needs a region (keys are regional): set AWS_REGION or the profile's region"
            );
        };
        let kms_config = aws_sdk_kms::config::Builder::from(sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.timeout)
                    .operation_attempt_timeout(config.timeout)
                    .build(),
            )
            .build();
        let client = Client::from_conf(kms_config);
        let what = format!("GetPublicKey for KMS_KEY_ID {} in {region}", config.key_id);
        let key = client
            .get_public_key()
            .key_id(&config.key_id)
            .send()
            .await
            .map_err(|e| classify(e, &what, &config.key_id))?;
        let key_arn = key
            .key_id()
            .ok_or_else(|| anyhow::anyhow!("{what}: the answer names no key ARN"))?
            .to_owned();
        if key.key_spec() != Some(&KeySpec::EccNistEdwards25519)
            || key.key_usage() != Some(&KeyUsageType::SignVerify)
            || !key
                .signing_algorithms()
                .contains(&SigningAlgorithmSpec::Ed25519Sha512)
        {
            anyhow::bail!(
                "KMS key {key_arn} is {} for {}; the relayer needs an ECC_NIST_EDWARDS25519 key with usage SIGN_VERIFY",
                key.key_spec().map_or("of no key spec", |s| s.as_str()),
                key.key_usage().map_or("no usage", |u| u.as_str()),
            );
        }
        let pubkey = key
            .public_key()
            .and_then(|der| ed25519_from_spki(der.as_ref()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "KMS key {key_arn}: the public key is not an Ed25519 SubjectPublicKeyInfo"
                )
            })?;
        let signer = Self {
            client,
            key_arn,
            pubkey,
        };
        // A disabled key still answers GetPublicKey on some servers: signing tells.
        signer
            .sign(&probe(&pubkey))
            .await
            .map_err(|e| anyhow::anyhow!("start-up probe signature: {e}"))?;
        if signer.key_arn != config.key_id {
            tracing::info!(key_id = %config.key_id, key_arn = %signer.key_arn, "KMS_KEY_ID resolved and pinned to the key ARN");
        }
        tracing::info!(key_arn = %signer.key_arn, %region, address = %pubkey, "aws kms signer ready");
        Ok(signer)
    }

    /// The key ARN every request names (an alias is resolved once, at start-up).
    pub fn key_arn(&self) -> &str {
        &self.key_arn
    }
}

impl TxSigner for AwsKmsSigner {
    fn pubkey(&self) -> Pubkey {
        self.pubkey
    }

    fn sign_unchecked<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            let out = self
                .client
                .sign()
                .key_id(&self.key_arn)
                .message(Blob::new(message))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
                .send()
                .await
                .map_err(|e| classify(e, "KMS Sign", &self.key_arn))?;
            if out.key_id() != Some(self.key_arn.as_str()) {
                return Err(SignerError::Refused(format!(
                    "KMS Sign answered for key {:?}, not the pinned {}",
                    out.key_id(),
                    self.key_arn
                )));
            }
            out.signature()
                .and_then(|s| <[u8; 64]>::try_from(s.as_ref()).ok())
                .ok_or(SignerError::BadSignature(self.pubkey))
        })
    }
}

/// What an AWS KMS error means for the operator. Permission, a disabled key and throttling are
/// retried (an operator or IAM propagation can cure them, and the SignerErrors alert fires
/// meanwhile); a missing key or one of the wrong kind is refused.
fn classify<E, R>(e: SdkError<E, R>, what: &str, key: &str) -> SignerError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = e.message().unwrap_or_default().to_owned();
    match e.code() {
        Some("AccessDeniedException") => SignerError::Unavailable(format!(
            "{what}: permission denied ({detail}); the relayer's AWS identity needs kms:Sign and kms:GetPublicKey on {key}"
        )),
        Some("DisabledException") => SignerError::Unavailable(format!(
            "{what}: the KMS key is disabled; enable it (aws kms enable-key --key-id {key})"
        )),
        Some("KMSInvalidStateException") => SignerError::Unavailable(format!(
            "{what}: the KMS key cannot sign in its state ({detail}); cancel a scheduled deletion and enable it"
        )),
        Some(
            "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException"
            | "IncompleteSignature" | "InvalidClientTokenId",
        ) => SignerError::Unavailable(format!(
            "{what}: AWS rejected the credentials ({detail}); check the relayer's AWS credentials and their region"
        )),
        Some("NotFoundException" | "InvalidArnException") => SignerError::Refused(format!(
            "{what}: no such key ({detail}); check KMS_KEY_ID and AWS_REGION"
        )),
        Some("UnsupportedOperationException") => SignerError::Refused(format!(
            "{what}: {detail}; the relayer needs an ECC_NIST_EDWARDS25519 key with usage SIGN_VERIFY"
        )),
        Some("InvalidKeyUsageException") => SignerError::Refused(format!(
            "{what}: the key cannot sign ED25519_SHA_512 ({detail}); use an ECC_NIST_EDWARDS25519 SIGN_VERIFY key"
        )),
        Some(code) => SignerError::Unavailable(format!("{what}: {code}: {detail}")),
        None => SignerError::Unavailable(format!(
            "{what}: AWS KMS not reachable or not answering ({}); check AWS_ENDPOINT_URL / the network, and that credentials are configured",
            DisplayErrorContext(&e)
        )),
    }
}
