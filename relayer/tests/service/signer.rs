//! The signer backends against a real OpenBao (`bao server -dev`, one per test, random port):
//! Transit ed25519 signing with a pinned version, the token kept fresh (renewed, read again from
//! its file), and every way it must refuse.

use std::time::Duration;

use crate::support::{
    openbao::{OpenBao, TOKEN},
    signer_check, tempfile_dir,
};
use anchor_lang::prelude::Pubkey;
use relayer::{
    config::{Env, Secret},
    signer::{self, local::LocalSigner, SignerConfig, SignerError, TxSigner},
};
use serde_json::{json, Value};

#[tokio::test]
async fn transit_signs_solana_messages_that_verify_against_the_transit_public_key() {
    let bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    let expected = bao.public_key("relayer", 1).await;
    let cfg = SignerConfig::Vault(bao.config("relayer", None));
    let signer = signer::connect(&cfg, Some(expected))
        .await
        .expect("connect");
    assert_eq!(signer.pubkey(), expected);
    let message = b"a solana message";
    let signature = signer.sign(message).await.expect("sign");
    assert!(signer::verify(&expected, message, &signature));
    assert!(!signer::verify(&expected, b"another message", &signature));
}

#[tokio::test]
async fn the_pinned_version_survives_a_rotation() {
    let bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    let v1 = bao.public_key("relayer", 1).await;
    let pinned = signer::vault::VaultSigner::connect(&bao.config("relayer", Some(1)))
        .await
        .unwrap();
    bao.api("POST", "transit/keys/relayer/rotate", Value::Null)
        .await;
    let v2 = bao.public_key("relayer", 2).await;
    assert_ne!(v1, v2);
    // The running signer keeps signing with version 1: its address does not change.
    let sig = pinned.sign(b"after rotation").await.unwrap();
    assert!(signer::verify(&v1, b"after rotation", &sig));
    // A signer started now without a pin takes the latest version.
    let fresh = signer::vault::VaultSigner::connect(&bao.config("relayer", None))
        .await
        .unwrap();
    assert_eq!((fresh.pubkey(), fresh.version()), (v2, 2));
    // A pin to a version that does not exist is refused at start-up.
    let err = signer::vault::VaultSigner::connect(&bao.config("relayer", Some(7)))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("no version 7"), "{err}");
}

#[tokio::test]
async fn a_different_relayer_address_is_refused_at_start_up() {
    let bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    let cfg = SignerConfig::Vault(bao.config("relayer", None));
    let err = signer::connect(&cfg, Some(Pubkey::new_unique()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("RELAYER_ADDRESS"), "{err}");
}

#[tokio::test]
async fn unsuitable_keys_are_refused() {
    let bao = OpenBao::start().await;
    bao.create_key("aes", json!({ "type": "aes256-gcm96" }))
        .await;
    bao.create_key(
        "exportable",
        json!({ "type": "ed25519", "exportable": true }),
    )
    .await;
    let err = signer::vault::VaultSigner::connect(&bao.config("aes", None))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("needs an ed25519 key"), "{err}");
    let err = signer::vault::VaultSigner::connect(&bao.config("exportable", None))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("exportable"), "{err}");
    let err = signer::vault::VaultSigner::connect(&bao.config("missing", None))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("signer refused"), "{err}");
}

#[tokio::test]
async fn a_token_without_permission_and_a_dead_server_are_reported_as_unavailable() {
    let mut bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    let signer = signer::vault::VaultSigner::connect(&bao.config("relayer", None))
        .await
        .unwrap();
    // A token whose policy allows reading the key but not signing with it.
    bao.api(
        "PUT",
        "sys/policies/acl/read-only",
        json!({ "policy": "path \"transit/keys/relayer\" { capabilities = [\"read\"] }" }),
    )
    .await;
    let t = bao
        .api(
            "POST",
            "auth/token/create",
            json!({ "policies": ["read-only"] }),
        )
        .await;
    let mut cfg = bao.config("relayer", None);
    cfg.token = Secret::new(
        t["auth"]["client_token"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    let limited = signer::vault::VaultSigner::connect(&cfg)
        .await
        .expect("reading the key is allowed");
    let err = limited.sign(b"m").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("permission denied"), "{err}");

    let _ = bao.child.kill();
    let _ = bao.child.wait();
    let unavailable = signer::SIGNER_ERRORS.with_label_values(&["unavailable"]);
    let before = unavailable.get();
    let err = signer.sign(b"m").await.unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)), "{err}");
    assert!(
        unavailable.get() > before,
        "counted for the SignerErrors alert"
    );
}

#[tokio::test]
async fn the_local_keypair_signer_is_refused_when_executing() {
    let dir = std::env::temp_dir().join(format!("relayer-key-{}", uuid::Uuid::new_v4()));
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    std::fs::write(
        &dir,
        serde_json::to_string(&key.to_keypair_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let path = dir.display().to_string();
    let env = Env(|n: &str| match n {
        "SIGNER_MODE" => Some("local".to_owned()),
        "SIGNER_KEYPAIR_FILE" => Some(path.clone()),
        _ => None,
    });
    let err = env.signer(true).unwrap_err();
    assert_eq!(err.var, "SIGNER_MODE");
    assert!(
        err.to_string()
            .contains("refused with OPENCLAW_EXECUTE=true"),
        "{err}"
    );
    let cfg = env.signer(false).expect("allowed in simulation");
    assert!(matches!(cfg, SignerConfig::Local { .. }));
    let simulating = signer::connect(&cfg, None)
        .await
        .expect("allowed in simulation");
    let sig = simulating.sign(b"m").await.unwrap();
    assert!(signer::verify(&simulating.pubkey(), b"m", &sig));
    assert!(LocalSigner::from_keypair_bytes(&[0; 10]).is_none());
    std::fs::remove_file(dir).unwrap();
}

#[test]
fn signer_configuration_names_its_variables() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        Env(move |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    };
    let e = env(&[("SIGNER_MODE", "kms"), ("KMS_PROVIDER", "aws")])
        .signer(false)
        .unwrap_err();
    assert_eq!(e.var, "KMS_KEY_ID");
    let aws = env(&[
        ("SIGNER_MODE", "kms"),
        ("KMS_PROVIDER", "aws"),
        ("KMS_KEY_ID", "alias/relayer"),
    ])
    .signer(false)
    .unwrap();
    assert!(matches!(aws, SignerConfig::Aws(ref a) if a.key_id == "alias/relayer"));
    // A GCP key, not a version, would let the address follow the primary version: refused.
    let e = env(&[
        ("SIGNER_MODE", "kms"),
        ("KMS_PROVIDER", "gcp"),
        (
            "KMS_KEY_ID",
            "projects/p/locations/global/keyRings/r/cryptoKeys/relayer",
        ),
    ])
    .signer(false)
    .unwrap_err();
    assert_eq!(e.var, "KMS_KEY_ID");
    assert!(e.to_string().contains("cryptoKeyVersions/N"), "{e}");
    let gcp = env(&[
        ("SIGNER_MODE", "kms"),
        ("KMS_PROVIDER", "gcp"),
        (
            "KMS_KEY_ID",
            "projects/p/locations/global/keyRings/r/cryptoKeys/relayer/cryptoKeyVersions/1",
        ),
    ])
    .signer(false)
    .unwrap();
    assert!(
        matches!(gcp, SignerConfig::Gcp(ref g) if g.endpoint == "https://cloudkms.googleapis.com")
    );
    let e = env(&[("SIGNER_MODE", "kms"), ("KMS_PROVIDER", "azure")])
        .signer(false)
        .unwrap_err();
    assert_eq!(e.var, "KMS_PROVIDER");
    let e = env(&[
        ("SIGNER_MODE", "vault"),
        ("VAULT_KEY_ID", "k"),
        ("VAULT_URL", "http://x"),
    ])
    .signer(false)
    .unwrap_err();
    assert_eq!(e.var, "VAULT_TOKEN");
    let e = env(&[("SIGNER_MODE", "hsm")]).signer(false).unwrap_err();
    assert_eq!(e.var, "SIGNER_MODE");
    let e = env(&[("RELAYER_ADDRESS", "nope")])
        .relayer_address()
        .unwrap_err();
    assert_eq!(e.var, "RELAYER_ADDRESS");
    let ok = env(&[
        ("SIGNER_MODE", "kms"),
        ("KMS_PROVIDER", "vault"),
        ("KMS_KEY_ID", "relayer"),
        ("VAULT_URL", "http://x"),
        ("VAULT_TOKEN", "t"),
    ])
    .signer(false)
    .unwrap();
    assert!(matches!(ok, SignerConfig::Vault(ref v) if v.key == "relayer" && v.version.is_none()));
}

#[tokio::test]
async fn signer_check_prints_the_address_and_fails_with_the_reason_on_a_mismatch() {
    let bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    let address = bao.public_key("relayer", 1).await;
    let vars = [
        ("SIGNER_MODE", "vault".to_owned()),
        ("VAULT_URL", bao.url.clone()),
        ("VAULT_TOKEN", TOKEN.to_owned()),
        ("VAULT_KEY_ID", "relayer".to_owned()),
    ];
    let run = |relayer_address: Option<String>| signer_check(&vars, relayer_address);
    let ok = run(Some(address.to_string()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert!(stdout.contains(&format!("address: {address}")), "{stdout}");
    assert!(stdout.contains("probe signed and verified"), "{stdout}");

    let bad = run(Some(Pubkey::new_unique().to_string()));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RELAYER_ADDRESS"));
}

/// A token for the `relayer` key's signing policy, with `body`'s options (ttl, renewable).
async fn signing_token(bao: &OpenBao, body: serde_json::Value) -> String {
    bao.api(
        "PUT",
        "sys/policies/acl/relayer-sign",
        json!({ "policy": "path \"transit/keys/relayer\" { capabilities = [\"read\"] }\n\
                           path \"transit/sign/relayer\" { capabilities = [\"update\"] }\n\
                           path \"auth/token/renew-self\" { capabilities = [\"update\"] }\n\
                           path \"auth/token/lookup-self\" { capabilities = [\"read\"] }" }),
    )
    .await;
    let mut body = body;
    body["policies"] = json!(["relayer-sign"]);
    let t = bao.api("POST", "auth/token/create", body).await;
    t["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_replaced_in_vault_token_file_is_used_and_a_renewable_token_is_renewed() {
    let bao = OpenBao::start().await;
    bao.create_key("relayer", json!({ "type": "ed25519" }))
        .await;
    // Renewable, 12 s at a time: expired within the test unless the signer renews it.
    let first = signing_token(&bao, json!({ "ttl": "12s", "explicit_max_ttl": "10m" })).await;
    let dir = tempfile_dir();
    let file = dir.join("vault-token");
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let mut cfg = bao.config("relayer", None);
    cfg.token = Secret::new(first.as_bytes().to_vec());
    cfg.token_file = Some(file.clone());
    let signer = signer::vault::VaultSigner::connect(&cfg).await.unwrap();
    signer
        .sign(b"first")
        .await
        .expect("signs with the first token");

    tokio::time::sleep(Duration::from_secs(16)).await;
    signer
        .sign(b"after its first ttl")
        .await
        .expect("the token was renewed before it expired");

    // Vault Agent writes a new token and the old one is revoked: the next signature uses the new
    // one, read again on the 403.
    let second = signing_token(&bao, json!({ "ttl": "10m" })).await;
    std::fs::write(&file, format!("{second}\n")).unwrap();
    bao.api("POST", "auth/token/revoke", json!({ "token": first }))
        .await;
    signer
        .sign(b"after the rotation")
        .await
        .expect("the file's new token is used");
    // An unreadable file keeps the token in use.
    std::fs::remove_file(&file).unwrap();
    signer
        .sign(b"file gone")
        .await
        .expect("still the second token");
    let _ = std::fs::remove_dir_all(dir);
}
