//! A dev OpenBao (`bao server -dev`) per test, on a random port, with Transit mounted.
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use relayer::{config::Secret, signer::vault::VaultConfig};
use serde_json::{json, Value};

pub const TOKEN: &str = "test-root-token";

/// A dev OpenBao with Transit mounted; killed on drop.
pub struct OpenBao {
    pub child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl OpenBao {
    /// Starts a server; a port lost to another process between choosing and binding it makes
    /// the server exit, and the next try takes another port.
    pub async fn start() -> Self {
        for _ in 0..5 {
            if let Some(bao) = Self::try_start().await {
                bao.api("POST", "sys/mounts/transit", json!({ "type": "transit" }))
                    .await;
                return bao;
            }
        }
        panic!("OpenBao did not start after 5 tries");
    }

    async fn try_start() -> Option<Self> {
        let bin = std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new(&bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={TOKEN}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {bin} ({e}): run `scripts/openbao.sh install` and set BAO_BIN")
            });
        let mut bao = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        // Generous: on a loaded 2-core machine a dev server can take several seconds.
        for _ in 0..600 {
            if bao.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            let health = bao
                .http
                .get(format!("{}/v1/sys/health", bao.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return Some(bao);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    pub async fn api(&self, method: &str, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{}/v1/{path}", self.url))
            .header("X-Vault-Token", TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "{method} {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    /// A new non-exportable ed25519 transit key `name`, connected as the relayer's signer.
    pub async fn signer(&self, name: &str) -> std::sync::Arc<dyn relayer::signer::TxSigner> {
        self.create_key(name, json!({ "type": "ed25519" })).await;
        relayer::signer::connect(
            &relayer::signer::SignerConfig::Vault(self.config(name, None)),
            None,
        )
        .await
        .unwrap()
    }

    pub async fn create_key(&self, name: &str, body: Value) {
        self.api("POST", &format!("transit/keys/{name}"), body)
            .await;
    }

    /// The key's public key at `version`, as OpenBao reports it.
    pub async fn public_key(&self, name: &str, version: u64) -> Pubkey {
        let v = self
            .api("GET", &format!("transit/keys/{name}"), Value::Null)
            .await;
        let b64 = v["data"]["keys"][version.to_string()]["public_key"]
            .as_str()
            .unwrap();
        use base64::Engine;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
            .try_into()
            .unwrap();
        Pubkey::new_from_array(bytes)
    }

    pub fn config(&self, key: &str, version: Option<u64>) -> VaultConfig {
        VaultConfig {
            url: self.url.clone(),
            token: Secret::new(TOKEN.as_bytes().to_vec()),
            mount: "transit".into(),
            key: key.into(),
            version,
            timeout: Duration::from_secs(2),
            token_file: None,
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
