//! The openclaw-escrow relayer: verified tracking webhooks, durable Postgres state, and a job
//! queue whose workers turn deliveries into on-chain approvals.
pub mod audit;
pub mod auth;
pub mod batch;
pub mod blinks;
pub mod commands;
pub mod config;
pub mod db;
pub mod deal;
pub mod domain;
pub mod error;
pub mod failpoint;
pub mod ingest;
pub mod metrics;
pub mod offers;
pub mod pipeline;
pub mod queue;
pub mod reconcile;
pub mod routes;
pub mod secrets;
pub mod signer;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod worker;

/// The chain interface and its backends, in their own crate so the CLI shares them.
pub use escrow_chain as chain;
