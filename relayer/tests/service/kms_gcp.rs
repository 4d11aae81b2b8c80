//! The GCP Cloud KMS signer against `support::gcp_kms`, a test server speaking Cloud KMS's
//! REST/JSON wire protocol (no emulator exists on the registries), with credentials made the way
//! Application Default Credentials make them: pure ed25519 with CRC32C checked both ways, every
//! version that must be refused, IAM roles, a KMS that fails and goes down then comes back, and
//! `relayer signer check` from a key file and from the metadata server.
use anchor_lang::prelude::Pubkey;
use relayer::signer::{self, gcp::GcpKmsSigner, SignerError, TxSigner};
use serde_json::Value;

use crate::support::{
    gcp_kms::{credentials, FakeCloudKms, PUBLIC_KEY_VIEWER, RELAYER_SA, SIGNER_VERIFIER},
    signer_check, tempfile_dir,
};

fn refusal(result: anyhow::Result<GcpKmsSigner>) -> String {
    match result {
        Ok(s) => panic!("connected as {}", s.pubkey()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn cloud_kms_signs_pure_ed25519_with_crc32c_checked_both_ways() {
    let (kms, key_file, version, address) = FakeCloudKms::with_relayer_key().await;
    let signer = kms.connect(&key_file, &version).await.expect("connect");
    assert_eq!(signer.pubkey(), address);
    let message = b"a solana message signed by Cloud KMS";
    let signature = signer.sign(message).await.expect("sign");
    assert!(signer::verify(&address, message, &signature));
    assert!(!signer::verify(&address, b"another message", &signature));

    // A signature damaged in transit fails its CRC32C: asked again, never used.
    let before = kms.requests();
    kms.corrupt_next(1);
    let signature = signer.sign(b"damaged once").await.expect("signed on retry");
    assert!(signer::verify(&address, b"damaged once", &signature));
    assert_eq!(kms.requests() - before, 2, "one damaged answer, one good");
}

#[tokio::test]
async fn unsuitable_cloud_kms_versions_are_refused_with_what_to_fix() {
    let (kms, key_file, version, _) = FakeCloudKms::with_relayer_key().await;
    let p256 = kms.create_p256("p256");
    kms.grant(RELAYER_SA, &p256, SIGNER_VERIFIER);
    let err = refusal(kms.connect(&key_file, &p256).await);
    assert!(err.contains("EC_SIGN_P256_SHA256"), "{err}");
    assert!(err.contains("needs an EC_SIGN_ED25519 key"), "{err}");

    let missing = version.replace("cryptoKeyVersions/1", "cryptoKeyVersions/9");
    let err = refusal(kms.connect(&key_file, &missing).await);
    assert!(err.contains("no such Cloud KMS key version"), "{err}");
    assert!(err.contains("check KMS_KEY_ID"), "{err}");

    let key_only = kms.key_name("relayer");
    let err = refusal(kms.connect(&key_file, &key_only).await);
    assert!(err.contains("is not a key version name"), "{err}");

    // Disabled: refused at start-up; under a running signer, unavailable until enabled again.
    let signer = kms.connect(&key_file, &version).await.unwrap();
    kms.set_state(&version, "DISABLED");
    let err = refusal(kms.connect(&key_file, &version).await);
    assert!(err.contains("current state is: DISABLED"), "{err}");
    assert!(err.contains("gcloud kms keys versions enable"), "{err}");
    let err = signer.sign(b"while disabled").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    kms.set_state(&version, "ENABLED");
    let signature = signer.sign(b"enabled again").await.expect("signs again");
    assert!(signer::verify(
        &signer.pubkey(),
        b"enabled again",
        &signature
    ));
}

#[tokio::test]
async fn signing_needs_the_signer_verifier_role_on_the_key() {
    let kms = FakeCloudKms::start().await;
    let (version, _) = kms.create_ed25519("relayer");

    let nobody = kms.service_account("nobody@openclaw-test.iam.gserviceaccount.com");
    let err = refusal(kms.connect(&nobody, &version).await);
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("roles/cloudkms.signerVerifier"), "{err}");

    let viewer_sa = "viewer@openclaw-test.iam.gserviceaccount.com";
    let viewer = kms.service_account(viewer_sa);
    kms.grant(viewer_sa, &version, PUBLIC_KEY_VIEWER);
    let err = refusal(kms.connect(&viewer, &version).await);
    assert!(err.contains("start-up probe signature"), "{err}");
    assert!(err.contains("useToSign"), "{err}");

    // A key file the server does not know (deleted key, another project's account).
    let stranger = FakeCloudKms::start()
        .await
        .service_account("stranger@elsewhere.iam.gserviceaccount.com");
    let err = refusal(kms.connect(&stranger, &version).await);
    assert!(err.contains("rejected the credentials"), "{err}");

    let relayer = kms.service_account(RELAYER_SA);
    kms.grant(RELAYER_SA, &version, SIGNER_VERIFIER);
    kms.connect(&relayer, &version)
        .await
        .expect("the documented role suffices");
}

#[tokio::test]
async fn cloud_kms_failing_then_down_then_back_means_retries_then_success() {
    let (kms, key_file, version, address) = FakeCloudKms::with_relayer_key().await;
    let signer = kms.connect(&key_file, &version).await.unwrap();

    // Two 503s: retried within one signing request, which then succeeds.
    let before = kms.requests();
    kms.fail_next(2);
    let signature = signer.sign(b"after two 503s").await.expect("retried");
    assert!(signer::verify(&address, b"after two 503s", &signature));
    assert_eq!(kms.requests() - before, 3);

    // Failing longer than the retries: unavailable, counted for the alert.
    let unavailable = signer::SIGNER_ERRORS.with_label_values(&["unavailable"]);
    let counted = unavailable.get();
    kms.fail_next(100);
    let err = signer.sign(b"m").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    kms.fail_next(0);

    kms.down();
    let err = signer.sign(b"while down").await.unwrap_err();
    assert!(err.to_string().contains("not reachable"), "{err}");
    assert!(unavailable.get() >= counted + 2);

    kms.up().await;
    let signature = signer.sign(b"back").await.expect("signs once KMS is back");
    assert!(signer::verify(&address, b"back", &signature));
}

#[tokio::test]
async fn the_test_server_speaks_the_cloud_kms_wire_format() {
    let (kms, key_file, version, _) = FakeCloudKms::with_relayer_key().await;
    let http = reqwest::Client::new();
    let token = {
        let headers = credentials(key_file)
            .headers(http::Extensions::new())
            .await
            .unwrap();
        let google_cloud_auth::credentials::CacheableResource::New { data, .. } = headers else {
            panic!("no headers");
        };
        data
    };
    let url = |suffix: &str| format!("{}/v1/{version}{suffix}", kms.url);

    let ints: Value = http
        .get(url("/publicKey?$alt=json;enum-encoding=int"))
        .headers(token.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ints["algorithm"].as_i64(), ints["protectionLevel"].as_i64()),
        (Some(40), Some(2))
    );
    assert!(
        ints["pemCrc32c"].is_string(),
        "int64 as a decimal string: {ints}"
    );

    let error = |resp: reqwest::Response| async move {
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        (
            code,
            body["error"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let bad_crc = http
        .post(url(":asymmetricSign"))
        .headers(token.clone())
        .json(&serde_json::json!({ "data": "aGVsbG8=", "dataCrc32c": "1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error(bad_crc).await, (400, "INVALID_ARGUMENT".into()));
    let unknown_field = http
        .post(url(":asymmetricSign"))
        .headers(token.clone())
        .json(&serde_json::json!({ "data": "aGVsbG8=", "plaintext": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error(unknown_field).await, (400, "INVALID_ARGUMENT".into()));
    let anonymous = http.get(url("/publicKey")).send().await.unwrap();
    assert_eq!(error(anonymous).await, (401, "UNAUTHENTICATED".into()));
    // "hello world" under CRC32C (Castagnoli), the check value Google's docs use.
    assert_eq!(relayer::signer::gcp::crc32c(b"hello world"), 3_381_945_770);
    assert_eq!(relayer::signer::gcp::crc32c(b"123456789"), 0xE306_9283);
}

// The test server runs in this test's runtime while `relayer signer check` runs: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_check_runs_on_cloud_kms_with_application_default_credentials() {
    let (kms, key_file, version, address) = FakeCloudKms::with_relayer_key().await;
    let home = tempfile_dir();
    let key_path = home.join("relayer-sa.json");
    std::fs::write(&key_path, key_file.to_string()).unwrap();
    let run = |adc: &[(&str, String)], relayer_address: Option<String>| {
        let mut vars = vec![
            // An empty home: no gcloud ADC file, so only what each run names applies.
            ("HOME", home.display().to_string()),
            ("SIGNER_MODE", "kms".into()),
            ("KMS_PROVIDER", "gcp".into()),
            ("KMS_KEY_ID", version.clone()),
            ("GCP_KMS_ENDPOINT", kms.url.clone()),
        ];
        vars.extend_from_slice(adc);
        signer_check(&vars, relayer_address)
    };
    let from_file = [(
        "GOOGLE_APPLICATION_CREDENTIALS",
        key_path.display().to_string(),
    )];
    let ok = run(&from_file, Some(address.to_string()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert!(stdout.contains(&format!("address: {address}")), "{stdout}");
    assert!(stdout.contains("probe signed and verified"), "{stdout}");

    let wrong = run(&from_file, Some(Pubkey::new_unique().to_string()));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("RELAYER_ADDRESS"));

    // On GCE/GKE/Cloud Run: the metadata server's service account.
    let metadata = [("GCE_METADATA_HOST", kms.metadata_host())];
    let unbound = run(&metadata, None);
    assert_eq!(
        unbound.status.code(),
        Some(1),
        "no account on the instance yet"
    );
    kms.metadata_account(RELAYER_SA);
    let ok = run(&metadata, None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("address: {address}")));
    let _ = std::fs::remove_dir_all(home);
}
