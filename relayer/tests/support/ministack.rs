//! ministack (PyPI `ministack`, installed by `scripts/ministack.sh install`), a real AWS KMS wire
//! server: one per test on a random loopback port, with real ed25519 keys. Its state is saved
//! to a directory of its own on a clean stop, so `stop` then `start_again` keeps the keys (a KMS
//! that went down and came back). With IAM on, it checks SigV4 and evaluates identity policies.
//!
//! Administration here (creating keys and users) uses ministack's root credentials `test`,
//! whose signatures it does not check; the signer under test always signs real SigV4 requests
//! with the AWS SDK.
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anchor_lang::prelude::Pubkey;
use relayer::signer::aws::{AwsKmsConfig, AwsKmsSigner};
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ROOT: (&str, &str) = ("test", "test");

pub struct Ministack {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    state: PathBuf,
    iam: bool,
    http: reqwest::Client,
}

impl Ministack {
    /// KMS only, without authorization checks.
    pub async fn start() -> Self {
        Self::launch(false).await
    }

    /// KMS with IAM: SigV4 checked, identity policies enforced for IAM users.
    pub async fn start_with_iam() -> Self {
        Self::launch(true).await
    }

    async fn launch(iam: bool) -> Self {
        let state = super::tempfile_dir();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut ms = Self {
                child: None,
                port,
                url: format!("http://127.0.0.1:{port}"),
                state: state.clone(),
                iam,
                http: reqwest::Client::new(),
            };
            if ms.spawn().await {
                return ms;
            }
        }
        panic!("ministack did not start after 5 tries");
    }

    async fn spawn(&mut self) -> bool {
        let bin = std::env::var("MINISTACK_BIN").unwrap_or_else(|_| "ministack".into());
        let mut cmd = Command::new(&bin);
        cmd.env("SERVICES", if self.iam { "kms,iam,sts" } else { "kms" })
            .env("GATEWAY_PORT", self.port.to_string())
            // Loopback only, and no IoT mTLS listener on another port.
            .env("BIND_HOST", "127.0.0.1")
            .env("IOT_MTLS_ENABLED", "0")
            .env("PERSIST_STATE", "1")
            .env("STATE_DIR", &self.state)
            .env("TMPDIR", &self.state)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.iam {
            cmd.env("AUTH", "true");
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {bin} ({e}): run `scripts/ministack.sh install` and set MINISTACK_BIN"
            )
        });
        self.child = Some(child);
        for _ in 0..600 {
            if self
                .child
                .as_mut()
                .unwrap()
                .try_wait()
                .ok()
                .flatten()
                .is_some()
            {
                return false;
            }
            let ready = self
                .http
                .get(format!("{}/_ministack/ready", self.url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Stops the server cleanly (SIGTERM: it saves its state); connections are refused after.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the keys it had.
    pub async fn start_again(&mut self) {
        assert!(
            self.spawn().await,
            "ministack did not come back on {}",
            self.port
        );
    }

    /// A KMS call with the root credentials.
    pub async fn kms(&self, operation: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("TrentService.{operation}"))
            .header("authorization", root_authorization("kms"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "KMS {operation}: {status} {value}");
        value
    }

    /// Creates a key; returns its ARN.
    pub async fn create_key(&self, spec: &str, usage: &str) -> String {
        let key = self
            .kms("CreateKey", json!({ "KeySpec": spec, "KeyUsage": usage }))
            .await;
        key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned()
    }

    pub async fn public_key(&self, key: &str) -> Pubkey {
        let out = self.kms("GetPublicKey", json!({ "KeyId": key })).await;
        let der = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            out["PublicKey"].as_str().unwrap(),
        )
        .unwrap();
        relayer::signer::ed25519_from_spki(&der).expect("an ed25519 key")
    }

    /// An IAM call (Query protocol) with the root credentials; returns the XML answer.
    pub async fn iam(&self, params: &[(&str, &str)]) -> String {
        let resp = self
            .http
            .post(&self.url)
            .header("authorization", root_authorization("iam"))
            .form(&[params, &[("Version", "2010-05-08")]].concat())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// An IAM user with an access key and, if given, an inline identity policy; returns the
    /// access key id and secret.
    pub async fn user(&self, name: &str, policy: Option<Value>) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)])
            .await;
        if let Some(policy) = policy {
            self.iam(&[
                ("Action", "PutUserPolicy"),
                ("UserName", name),
                ("PolicyName", "relayer-kms"),
                ("PolicyDocument", &policy.to_string()),
            ])
            .await;
        }
        let xml = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", name)])
            .await;
        (
            xml_text(&xml, "AccessKeyId"),
            xml_text(&xml, "SecretAccessKey"),
        )
    }

    /// The relayer's signer for `key_id` here, with the root credentials.
    pub async fn signer(&self, key_id: &str) -> anyhow::Result<AwsKmsSigner> {
        self.signer_as(ROOT, key_id).await
    }

    /// The relayer's signer for `key_id` here, as the holder of `(access key id, secret)`.
    pub async fn signer_as(
        &self,
        (id, secret): (&str, &str),
        key_id: &str,
    ) -> anyhow::Result<AwsKmsSigner> {
        let config = AwsKmsConfig {
            key_id: key_id.into(),
            timeout: Duration::from_secs(5),
        };
        AwsKmsSigner::connect_with(&self.sdk_config(id, secret).await, &config).await
    }

    /// The AWS SDK configuration a relayer with these credentials would load.
    pub async fn sdk_config(&self, access_key: &str, secret: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                access_key, secret, None, None, "test",
            ))
            .load()
            .await
    }
}

impl Drop for Ministack {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// An Authorization header naming ministack's root key (whose signature it does not check).
fn root_authorization(service: &str) -> String {
    let date = chrono::Utc::now().format("%Y%m%d");
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{date}/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0",
        ROOT.0
    )
}

fn xml_text(xml: &str, tag: &str) -> String {
    let start = xml.find(&format!("<{tag}>")).expect(tag) + tag.len() + 2;
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].to_owned()
}
