use std::{cell::RefCell, collections::BTreeSet};

use super::*;

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> Env<impl Fn(&str) -> Option<String> + 'a> {
    Env(move |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

const BASE: [(&str, &str); 3] = [
    ("DATABASE_URL", "postgres://u@h/db"),
    ("TRACKING_HMAC_SECRET", "0123456789abcdef0123"),
    ("ACCESS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
    let vars: Vec<(&str, &str)> = extra.iter().chain(BASE.iter()).copied().collect();
    let e = env(&vars);
    e.config(e.secrets()?, None)
}

#[test]
fn defaults_are_safe() {
    let c = with(&[]).unwrap();
    assert!(!c.execute, "OPENCLAW_EXECUTE defaults to simulation");
    assert_eq!(c.http.webhook_max_body, 65_536);
    assert!(
        c.http.trusted_proxies.is_empty(),
        "no proxy believed by default"
    );
    assert_eq!(c.queue.workers, 2);
    assert!(
        c.chain.is_none() && c.signer.is_none(),
        "no CLUSTER: record only"
    );
}

#[test]
fn every_bad_value_names_its_variable() {
    for (var, value) in [
        ("OPENCLAW_EXECUTE", "maybe"),
        ("BIND_ADDR", "nowhere"),
        ("WORKERS", "-1"),
        ("JOB_MAX_ATTEMPTS", "0"),
        ("JOB_LEASE_SECS", "1"),
        ("WEBHOOK_RATE_LIMIT_PER_MINUTE", "0"),
        ("TRACKING_HMAC_SECRET", "short"),
        ("TRACKING_HMAC_SECRET", "whsec_***"),
        ("ACCESS_JWT_SECRET", "short"),
        ("ACCESS_JWT_SECRET_PREVIOUS", "short"),
        ("DATABASE_URL", "mysql://x"),
        ("STUCK_AFTER_SECS", "0"),
        ("TRUST_FORWARDED_FOR", "true"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
        ("HTTP_MAX_CONNECTIONS", "0"),
        ("HTTP_HEADER_TIMEOUT_SECS", "0"),
        ("METRICS_BIND_ADDR", "nowhere"),
        ("ACCESS_JWT_MAX_TTL_SECS", "5"),
        ("EXPLORER_TX_URL", "https://explorer.solana.com/tx/"),
        ("EXPLORER_TX_URL", "javascript:alert(1)//{signature}"),
    ] {
        let e = with(&[(var, value)]).unwrap_err();
        assert_eq!(e.var, var, "{var}={value}: {e}");
        assert!(!e.to_string().contains('\n'), "one line");
    }
    let e = env(&[]).database().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configuration: DATABASE_URL is not set (e.g. postgres://relayer@127.0.0.1:5432/relayer)"
    );
}

#[test]
fn migrations_run_as_the_owner_and_grant_the_apps_role() {
    let app = "postgres://relayer_app:p%40ss%3Aword@db:5432/relayer?sslmode=require";
    let owner = "postgres://relayer_owner:pw@db:5432/relayer";
    let (url, role) = env(&[("DATABASE_URL", app)]).migration().unwrap();
    assert_eq!(url, app);
    assert!(
        role.is_none(),
        "without an owner URL, DATABASE_URL migrates and nothing is granted"
    );
    let (url, role) = env(&[("DATABASE_URL", app), ("DATABASE_OWNER_URL", owner)])
        .migration()
        .unwrap();
    assert_eq!(url, owner);
    let role = role.expect("DATABASE_URL's user is granted");
    assert_eq!(role.name, "relayer_app");
    assert_eq!(
        role.password.unwrap().expose(),
        b"p@ss:word",
        "percent-decoded"
    );
    let (_, role) = env(&[
        ("DATABASE_URL", "postgres://relayer_app@db/relayer"),
        ("DATABASE_OWNER_URL", owner),
    ])
    .migration()
    .unwrap();
    assert!(role.unwrap().password.is_none());
    let e = env(&[
        ("DATABASE_URL", "postgres://db/relayer"),
        ("DATABASE_OWNER_URL", owner),
    ])
    .migration()
    .unwrap_err();
    assert_eq!(e.var, "DATABASE_URL", "{e}");
}

#[test]
fn chain_settings_have_defaults_and_name_bad_values() {
    let chain = |extra: &[(&'static str, &'static str)]| {
        let vars: Vec<(&str, &str)> = extra
            .iter()
            .copied()
            .chain([("CLUSTER", "localnet")])
            .collect();
        let result = env(&vars).chain();
        result
    };
    let c = chain(&[]).unwrap().expect("CLUSTER is set");
    assert_eq!(c.confirm_poll, Duration::from_millis(100));
    assert_eq!(c.reconcile_interval, Duration::from_secs(30));
    for (var, value) in [
        ("CONFIRM_POLL_MS", "5"),
        ("CONFIRM_POLL_MS", "soon"),
        ("RECONCILE_INTERVAL_SECS", "0"),
    ] {
        assert_eq!(
            chain(&[(var, value)]).unwrap_err().var,
            var,
            "{var}={value}"
        );
    }
}

#[test]
fn executing_needs_a_cluster_a_kms_signer_and_the_address_it_must_have() {
    let address = Pubkey::new_unique().to_string();
    for (extra, var) in [
        (vec![("OPENCLAW_EXECUTE", "true")], "OPENCLAW_EXECUTE"),
        (
            vec![("OPENCLAW_EXECUTE", "true"), ("CLUSTER", "localnet")],
            "RELAYER_ADDRESS",
        ),
        (
            vec![
                ("OPENCLAW_EXECUTE", "true"),
                ("CLUSTER", "localnet"),
                ("RELAYER_ADDRESS", address.as_str()),
                ("SIGNER_MODE", "local"),
                ("SIGNER_KEYPAIR_FILE", "/k.json"),
            ],
            "SIGNER_MODE",
        ),
        (vec![("CLUSTER", "localnet")], "SIGNER_MODE"),
    ] {
        let vars: Vec<(&str, &str)> = extra.iter().chain(BASE.iter()).copied().collect();
        let e = env(&vars);
        assert_eq!(e.config(e.secrets().unwrap(), None).unwrap_err().var, var);
    }
}

#[test]
fn several_tracking_secrets_and_standard_webhooks_secrets() {
    let c = with(&[(
        "TRACKING_HMAC_SECRET",
        "first-secret-0123456, whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
    )])
    .unwrap();
    assert_eq!(c.secrets.tracking.len(), 2);
    assert_eq!(c.secrets.tracking[1].expose(), b"0123456789abcdef");
    assert_eq!(
        format!("{:?}", c.secrets.tracking[0]),
        "Secret(***)",
        "secrets never print"
    );
}

#[test]
#[should_panic(expected = "has no entry in config::vars::VARS")]
fn reading_a_variable_without_a_help_entry_is_a_bug() {
    env(&[]).optional("NOT_IN_THE_TABLE");
}

/// Every path through the configuration, each reading what it reads through a lookup that
/// records the names: together they read every variable of the table, and only those.
#[test]
fn the_table_lists_exactly_the_variables_read() {
    let read = RefCell::new(BTreeSet::new());
    let configs: &[&[(&str, &str)]] = &[
        &[
            ("CLUSTER", "localnet"),
            ("SIGNER_MODE", "vault"),
            ("VAULT_KEY_ID", "k"),
        ],
        &[
            ("CLUSTER", "localnet"),
            ("SIGNER_MODE", "kms"),
            ("KMS_PROVIDER", "vault"),
            ("KMS_KEY_ID", "k"),
        ],
        &[
            ("CLUSTER", "localnet"),
            ("SIGNER_MODE", "pkcs11"),
            ("PKCS11_MODULE", "/m.so"),
            ("PKCS11_TOKEN_LABEL", "t"),
        ],
        &[("CLUSTER", "localnet"), ("SIGNER_MODE", "local")],
        &[
            ("CLUSTER", "localnet"),
            ("SIGNER_MODE", "kms"),
            ("KMS_PROVIDER", "gcp"),
            (
                "KMS_KEY_ID",
                "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            ),
        ],
        &[
            ("SECRETS_VAULT_KV", "secret/relayer"),
            ("VAULT_TOKEN_FILE", "/nonexistent"),
        ],
        &[("TLS_CERT_FILE", "c.pem"), ("TLS_KEY_FILE", "k.pem")],
    ];
    for extra in configs {
        let vars: Vec<(&str, &str)> = extra
            .iter()
            .chain(BASE.iter())
            .chain(
                [
                    ("VAULT_URL", "http://v"),
                    ("VAULT_TOKEN", "t"),
                    ("PKCS11_PIN", "1"),
                ]
                .iter(),
            )
            .copied()
            .collect();
        let e = Env(|name: &str| {
            read.borrow_mut().insert(name.to_owned());
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        let _ = e.kv();
        let _ = e.secrets().map(|s| e.config(s, None));
        let _ = e.log_filter();
        let _ = e.failpoint();
        let _ = e.migration();
    }
    let listed: BTreeSet<String> = vars::VARS.iter().map(|v| v.name.to_owned()).collect();
    let read = read.into_inner();
    let unread: Vec<&String> = listed.difference(&read).collect();
    assert!(unread.is_empty(), "listed but never read: {unread:?}");
}

#[test]
fn every_default_in_the_table_is_valid() {
    let c = with(&[]).unwrap();
    assert_eq!(c.queue.lease, Duration::from_secs(60));
    assert_eq!(c.audit_checkpoint_every, Duration::from_secs(300));
    assert!(vars::help()
        .contains("WORKERS                        job workers in this process (default 2)"));
}
