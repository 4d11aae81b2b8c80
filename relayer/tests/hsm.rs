//! The PKCS#11 signer against SoftHSM2 (Debian's `softhsm2`): a token made for this test, an
//! ed25519 key pair generated inside it, CKM_EDDSA signatures verified outside it.
use std::process::Command;

use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    mechanism::Mechanism,
    object::Attribute,
    session::UserType,
    types::AuthPin,
};
use relayer::{
    config::Secret,
    signer::{self, pkcs11::Pkcs11Config, SignerConfig},
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "2468";
/// DER of the Ed25519 curve OID 1.3.101.112, as CKA_EC_PARAMS.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// A fresh SoftHSM token directory with one token; returns its label.
fn init_token() -> String {
    let dir = std::env::temp_dir().join(format!("softhsm-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    // SoftHSM reads its configuration from the environment when the module initialises; this
    // test binary holds a single test, so nothing else reads it concurrently.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let label = "relayer-test".to_string();
    let status = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            &label,
            "--pin",
            PIN,
            "--so-pin",
            "13579135",
        ])
        .output()
        .expect("softhsm2-util (apt-get install softhsm2)");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    label
}

/// Generates an ed25519 key pair inside the token, as a key ceremony would.
fn generate_key(token: &str, label: &str, extractable: bool) {
    let ctx = Pkcs11::new(MODULE).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == token)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    let name = label.as_bytes().to_vec();
    session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(ED25519_PARAMS.to_vec()),
                Attribute::Label(name.clone()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Sensitive(!extractable),
                Attribute::Extractable(extractable),
                Attribute::Label(name),
            ],
        )
        .unwrap();
}

fn config(token: &str, key: &str, pin: &str) -> SignerConfig {
    SignerConfig::Pkcs11(Pkcs11Config {
        module: MODULE.into(),
        token_label: token.into(),
        pin: Secret::new(pin.as_bytes().to_vec()),
        key_label: key.into(),
    })
}

#[tokio::test]
async fn softhsm_signs_with_a_non_extractable_key_and_refuses_everything_else() {
    let token = init_token();
    generate_key(&token, "relayer", false);
    generate_key(&token, "leaky", true);

    let signer = signer::connect(&config(&token, "relayer", PIN), None)
        .await
        .expect("connect");
    let message = b"solana message signed in an HSM";
    let signature = signer.sign(message).await.expect("sign");
    assert!(signer::verify(&signer.pubkey(), message, &signature));
    // The address is stable across sessions: it comes from the token, not from this process.
    let again = signer::connect(&config(&token, "relayer", PIN), Some(signer.pubkey()))
        .await
        .expect("reconnect");
    assert_eq!(again.pubkey(), signer.pubkey());

    for (cfg, expect) in [
        (
            config(&token, "leaky", PIN),
            "must be sensitive and not extractable",
        ),
        (config(&token, "missing", PIN), "PKCS11_KEY_LABEL"),
        (
            config("no-such-token", "relayer", PIN),
            "PKCS11_TOKEN_LABEL",
        ),
    ] {
        let err = signer::connect(&cfg, None).await.err().expect("refused");
        assert!(err.to_string().contains(expect), "{err}");
    }
}
