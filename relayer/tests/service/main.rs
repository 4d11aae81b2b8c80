//! The relayer as a service, against a real Postgres (a fresh database per test, the relayer
//! running as its least-privileged role) and, where a suite needs them, a real OpenBao and the
//! compiled program in the embedded chain: webhooks, the operator API and its tokens, the job
//! queue, the tracking providers' own webhooks, the audit log, TLS, secrets from Vault KV, the signers (OpenBao, AWS KMS on ministack,
//! GCP Cloud KMS on its wire protocol), the Solana Actions, and what the edge refuses (bad input,
//! slow clients, rate limits). One binary: one link, one process, the suites' tests in parallel.
#[path = "../support/mod.rs"]
mod support;

mod audit;
mod blinks;
mod database_roles;
mod deal_page;
mod edge;
mod kms_aws;
mod kms_gcp;
mod market;
mod operator_api;
mod providers;
mod queue;
mod secrets;
mod signer;
mod slow_clients;
mod tls;
mod tokens;
mod webhook_properties;
mod webhooks;
