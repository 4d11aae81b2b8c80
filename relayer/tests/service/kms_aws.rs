//! The AWS KMS signer against ministack, a real AWS KMS wire server (JSON 1.1, SigV4, IAM
//! policies), one per test: pure ed25519 that verifies, an alias pinned to its key ARN, every key
//! that must be refused, the IAM policy SECURITY.md gives (and nothing less), a KMS that goes down
//! and comes back, and `relayer signer check` from the SDK's standard environment.
use anchor_lang::prelude::Pubkey;
use relayer::signer::{self, aws::AwsKmsSigner, SignerError, TxSigner};
use serde_json::json;

use crate::support::{
    ministack::{Ministack, REGION, ROOT},
    signer_check, tempfile_dir,
};

const ED25519: &str = "ECC_NIST_EDWARDS25519";

fn refusal(result: anyhow::Result<AwsKmsSigner>) -> String {
    match result {
        Ok(s) => panic!("connected to {}", s.key_arn()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn aws_kms_signs_pure_ed25519_and_pins_an_alias_to_its_key_arn() {
    let ms = Ministack::start().await;
    let arn = ms.create_key(ED25519, "SIGN_VERIFY").await;
    let address = ms.public_key(&arn).await;
    ms.kms(
        "CreateAlias",
        json!({ "AliasName": "alias/relayer", "TargetKeyId": arn }),
    )
    .await;

    let signer = ms.signer("alias/relayer").await.expect("connect");
    assert_eq!(signer.pubkey(), address);
    assert_eq!(signer.key_arn(), arn, "the alias resolved to the key ARN");
    let message = b"a solana message signed by AWS KMS";
    let signature = signer.sign(message).await.expect("sign");
    assert!(signer::verify(&address, message, &signature));
    assert!(!signer::verify(&address, b"another message", &signature));

    // The alias moves to another key: the running signer keeps its key and address.
    let other = ms.create_key(ED25519, "SIGN_VERIFY").await;
    ms.kms(
        "UpdateAlias",
        json!({ "AliasName": "alias/relayer", "TargetKeyId": other }),
    )
    .await;
    let signature = signer.sign(b"after the alias moved").await.unwrap();
    assert!(signer::verify(
        &address,
        b"after the alias moved",
        &signature
    ));
    let fresh = ms.signer("alias/relayer").await.unwrap();
    assert_eq!(fresh.key_arn(), other);
    assert_ne!(fresh.pubkey(), address);
}

#[tokio::test]
async fn unsuitable_aws_keys_are_refused_with_what_to_fix() {
    let ms = Ministack::start().await;
    let p256 = ms.create_key("ECC_NIST_P256", "SIGN_VERIFY").await;
    let err = refusal(ms.signer(&p256).await);
    assert!(err.contains("ECC_NIST_P256"), "{err}");
    assert!(
        err.contains("needs an ECC_NIST_EDWARDS25519 key with usage SIGN_VERIFY"),
        "{err}"
    );

    let aes = ms.create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT").await;
    let err = refusal(ms.signer(&aes).await);
    assert!(err.contains("needs an ECC_NIST_EDWARDS25519"), "{err}");

    let err = refusal(ms.signer("alias/no-such-key").await);
    assert!(err.contains("check KMS_KEY_ID and AWS_REGION"), "{err}");

    // A disabled key is refused at start-up, and a running signer's key disabled under it
    // fails as unavailable (the SignerErrors alert) until it is enabled again.
    let arn = ms.create_key(ED25519, "SIGN_VERIFY").await;
    let signer = ms.signer(&arn).await.expect("enabled key");
    ms.kms("DisableKey", json!({ "KeyId": arn })).await;
    let err = refusal(ms.signer(&arn).await);
    assert!(err.contains("disabled; enable it"), "{err}");
    let err = signer.sign(b"while disabled").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("aws kms enable-key"), "{err}");
    ms.kms("EnableKey", json!({ "KeyId": arn })).await;
    let signature = signer.sign(b"enabled again").await.expect("signs again");
    assert!(signer::verify(
        &signer.pubkey(),
        b"enabled again",
        &signature
    ));
}

/// SECURITY.md's policy for the relayer's identity: these two actions on this one key.
fn relayer_policy(arn: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["kms:GetPublicKey", "kms:Sign"],
            "Resource": arn,
        }],
    })
}

#[tokio::test]
async fn the_documented_iam_policy_is_enough_and_less_is_refused() {
    let ms = Ministack::start_with_iam().await;
    let arn = ms.create_key(ED25519, "SIGN_VERIFY").await;
    let other = ms.create_key(ED25519, "SIGN_VERIFY").await;
    let as_user = |(id, secret): (String, String)| {
        let (ms, arn) = (&ms, arn.clone());
        async move { ms.signer_as((&id, &secret), &arn).await }
    };

    let relayer = ms.user("relayer", Some(relayer_policy(&arn))).await;
    let signer = as_user(relayer.clone())
        .await
        .expect("the documented policy suffices");
    let signature = signer.sign(b"m").await.unwrap();
    assert!(signer::verify(&signer.pubkey(), b"m", &signature));

    let nobody = ms.user("nobody", None).await;
    let err = refusal(as_user(nobody).await);
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains("needs kms:Sign and kms:GetPublicKey on"),
        "{err}"
    );

    let elsewhere = ms.user("elsewhere", Some(relayer_policy(&other))).await;
    let err = refusal(as_user(elsewhere).await);
    assert!(err.contains("permission denied"), "{err}");

    let mut read_only = relayer_policy(&arn);
    read_only["Statement"][0]["Action"] = json!(["kms:GetPublicKey"]);
    let viewer = ms.user("viewer", Some(read_only)).await;
    let err = refusal(as_user(viewer).await);
    assert!(err.contains("start-up probe signature"), "{err}");
    assert!(err.contains("permission denied"), "{err}");

    let forged = (relayer.0, "not-the-secret".to_owned());
    let err = refusal(as_user(forged).await);
    assert!(err.contains("rejected the credentials"), "{err}");
}

#[tokio::test]
async fn aws_kms_down_then_back_means_unavailable_then_signing_again() {
    let mut ms = Ministack::start().await;
    let arn = ms.create_key(ED25519, "SIGN_VERIFY").await;
    let signer = ms.signer(&arn).await.unwrap();
    let address = signer.pubkey();

    ms.stop();
    let unavailable = signer::SIGNER_ERRORS.with_label_values(&["unavailable"]);
    let before = unavailable.get();
    let err = signer.sign(b"while down").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("not reachable"), "{err}");
    assert!(
        unavailable.get() > before,
        "counted for the SignerErrors alert"
    );

    ms.start_again().await;
    let signature = signer.sign(b"back").await.expect("signs once KMS is back");
    assert!(signer::verify(&address, b"back", &signature));
}

#[tokio::test]
async fn signer_check_runs_on_aws_kms_from_the_sdk_standard_environment() {
    let ms = Ministack::start().await;
    let arn = ms.create_key(ED25519, "SIGN_VERIFY").await;
    ms.kms(
        "CreateAlias",
        json!({ "AliasName": "alias/openclaw-relayer", "TargetKeyId": arn }),
    )
    .await;
    let address = ms.public_key(&arn).await;
    let home = tempfile_dir();
    let run = |region: Option<&str>, relayer_address: Option<String>| {
        let mut vars = vec![
            ("HOME", home.display().to_string()),
            ("SIGNER_MODE", "kms".into()),
            ("KMS_PROVIDER", "aws".into()),
            ("KMS_KEY_ID", "alias/openclaw-relayer".into()),
            ("AWS_ACCESS_KEY_ID", ROOT.0.into()),
            ("AWS_SECRET_ACCESS_KEY", ROOT.1.into()),
            ("AWS_ENDPOINT_URL", ms.url.clone()),
            // Not on EC2: the SDK must not wait for an instance metadata service.
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ];
        if let Some(region) = region {
            vars.push(("AWS_REGION", region.into()));
        }
        signer_check(&vars, relayer_address)
    };
    let ok = run(Some(REGION), Some(address.to_string()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert!(stdout.contains(&format!("address: {address}")), "{stdout}");
    assert!(stdout.contains("probe signed and verified"), "{stdout}");

    let wrong = run(Some(REGION), Some(Pubkey::new_unique().to_string()));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("RELAYER_ADDRESS"));

    let no_region = run(None, None);
    assert_eq!(no_region.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_region.stderr);
    assert!(stderr.contains("set AWS_REGION"), "{stderr}");
    let _ = std::fs::remove_dir_all(home);
}
