//! TLS terminated by the relayer, and client certificates on the operator API, with a CA, server
//! and client certificates generated here.

use std::{path::Path, sync::Arc};

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use relayer::{startup::Role, tls::TlsConfig, worker::Simulate};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A certificate for `names`, and its key, both PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn client(ca: &Ca, identity: Option<(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.issuer.pem().as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn https_for_everyone_and_client_certificates_for_operators() {
    let dir = std::env::temp_dir().join(format!("tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let server_ca = Ca::new("relayer server CA");
    let operator_ca = Ca::new("operators CA");
    let rogue_ca = Ca::new("someone else");
    let (cert, key) = server_ca.issue(&["localhost"]);
    let mut cfg = config(&fresh_database().await);
    cfg.http.tls = Some(TlsConfig {
        cert_file: write(&dir, "server.pem", &cert),
        key_file: write(&dir, "server.key", &key),
        client_ca_file: Some(write(&dir, "operators.pem", &operator_ca.issuer.pem())),
    });
    let app = spawn(cfg, Role::Http, Arc::new(Simulate)).await;
    let url = |path: &str| format!("https://localhost:{}{path}", app.addr.port());

    // Carriers and wallets have no client certificate: HTTPS works for them.
    let anonymous = client(&server_ca, None);
    let resp = anonymous.get(url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains",
        "HTTPS from the relayer itself: browsers are told to stay on it"
    );
    let body = event("tls-1", "1ZTLS", "in_transit");
    let sig = relayer::domain::signature::tracking_signature(HMAC_SECRET, body.as_bytes());
    let resp = anonymous
        .post(url("/webhooks/tracking"))
        .header("X-Tracking-Signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        202,
        "a webhook over HTTPS without a client certificate"
    );

    // The operator API wants a certificate from the operators' CA as well as the token.
    let resp = anonymous
        .get(url("/v1/jobs"))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "client certificate required"
    );
    let operator = client(&server_ca, Some(operator_ca.issue(&["ops@example"])));
    let resp = operator
        .get(url("/v1/jobs"))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = operator.get(url("/v1/jobs")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a certificate does not replace the token"
    );

    // A certificate from another CA fails the handshake itself.
    let rogue = client(&server_ca, Some(rogue_ca.issue(&["mallory"])));
    assert!(rogue.get(url("/healthz")).send().await.is_err());
    // And plain HTTP on the TLS port gets nothing.
    assert!(reqwest::get(app.url("/healthz")).await.is_err());

    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}

#[test]
fn tls_settings_fail_start_up_naming_the_variable() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        relayer::config::Env(move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .or_else(|| match name {
                    "DATABASE_URL" => Some("postgres://x@127.0.0.1/x".into()),
                    "TRACKING_HMAC_SECRET" => Some("a-tracking-secret-of-32-characters".into()),
                    "ACCESS_JWT_SECRET" => Some("a-jwt-secret-of-at-least-32-characters!".into()),
                    _ => None,
                })
        })
    };
    let err = env(&[("TLS_CERT_FILE", "/c.pem")]).http().unwrap_err();
    assert_eq!(err.var, "TLS_KEY_FILE");
    let err = env(&[("TLS_CLIENT_CA_FILE", "/ca.pem")])
        .http()
        .unwrap_err();
    assert_eq!(err.var, "TLS_CLIENT_CA_FILE");
    let http = env(&[
        ("TLS_CERT_FILE", "/nonexistent.pem"),
        ("TLS_KEY_FILE", "/k.pem"),
    ])
    .http()
    .unwrap();
    let Err(err) = relayer::tls::acceptor(http.tls.as_ref().unwrap()) else {
        panic!("a missing certificate file must fail start-up");
    };
    assert!(
        err.to_string()
            .starts_with("TLS_CERT_FILE /nonexistent.pem"),
        "{err}"
    );
}
