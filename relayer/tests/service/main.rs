//! The relayer as a service, against a real Postgres (a fresh database per test) and, where a
//! suite needs them, a real OpenBao and the compiled program in the embedded chain: webhooks,
//! the operator API, the job queue, the audit log, TLS, secrets from Vault KV, the signer, and
//! the Solana Actions. One binary: one link, one process, the suites' tests in parallel.
#[path = "../support/mod.rs"]
mod support;

mod audit;
mod blinks;
mod operator_api;
mod queue;
mod secrets;
mod signer;
mod tls;
mod webhook_properties;
mod webhooks;
