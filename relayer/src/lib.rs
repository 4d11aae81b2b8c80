//! The openclaw-escrow relayer: verified tracking webhooks, durable Postgres state, and a job
//! queue whose workers turn deliveries into on-chain approvals.
//!
//! The path of a delivery, module by module:
//!
//! ```text
//! POST /webhooks/tracking ─ routes::webhooks: rate limit, size cap, signature (domain::signature)
//!   │                        on the raw body, then parse (domain::tracking)
//!   ▼
//! ingest ── one statement per batch (group commit), the database's ingest_events(): the
//!   │       event, the offer's status (domain::offer's state machine, OfferStatus::after), the
//!   │       job it implies, the audit entries
//!   ▼
//! worker ── claims the job under a lease (queue), runs its handler:
//!   │
//!   ├─ pipeline::plan    pure: what to do, given the offer and the escrow as read (deal::read)
//!   ├─ pipeline::submit  simulate, fee, KMS signature (signer) under the job's fence, record it
//!   │                    and hand the job over (pipeline::txs, queue), send; the worker is free
//!   ▼
//! pipeline::confirm ── every transaction in flight, one status call per tick: complete the job
//!                      (and queue the crank, or record the settlement), or re-arm it
//!
//! reconcile ── the watchtower: cranks for outcomes others scheduled, settlements others made,
//!              read only for the deal each offer is bound to (deal)
//! ```
//!
//! Configuration is one tree (`config`), read once at start-up; `commands` and `startup` turn it
//! into a running process.
pub mod audit;
pub mod auth;
pub mod batch;
pub mod blinks;
pub mod commands;
pub mod config;
pub mod db;
pub mod deal;
pub mod deal_page;
pub mod domain;
pub mod error;
pub mod failpoint;
pub mod ingest;
pub mod metrics;
pub mod offers;
pub mod pipeline;
pub mod providers;
pub mod queue;
pub mod reconcile;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod signer;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod worker;

/// The chain interface and its backends, in their own crate so the CLI shares them.
pub use escrow_chain as chain;
