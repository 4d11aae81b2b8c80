//! The measurements `scripts/bench.sh` runs and tabulates. Figures only: nothing here asserts
//! a speed.
//!
//! - `ingest`: signed webhooks against a running `relayer serve` on loopback, from `concurrency`
//!   connections, each event distinct; accepted events/s and latency percentiles, then a count of
//!   the rows that were committed. `soak`: the same at a fixed rate for a long while.
//! - `queue`: no-op jobs through the relayer's own queue and workers on the same Postgres:
//!   jobs/s with 1, 2, 4 workers, and the queue lag seen while they run.
//! - `pipeline`: the release path on a real node, from an accepted "delivered" webhook to the
//!   relayer's approval confirmed, beside the node's own confirmation time.
mod ingest;
mod pipeline;
mod queue;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signed webhooks against a running relayer; prints one JSON line of results.
    Ingest {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The relayer's database, to count what was committed.
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        events: usize,
    },
    /// Webhooks at a fixed rate for a while, watching the relayer's memory; one JSON line.
    Soak {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The relayer's process id, for its resident memory (/proc/<pid>/status).
        #[arg(long)]
        pid: u32,
        /// Events per second.
        #[arg(long)]
        rate: u64,
        #[arg(long)]
        seconds: u64,
        /// Client connections the rate is spread over.
        #[arg(long, default_value_t = 64)]
        connections: u64,
    },
    /// The release pipeline against a running `relayer serve` that executes on `rpc_url`; one
    /// JSON line.
    Pipeline(pipeline::Args),
    /// No-op jobs through the relayer's queue; prints one JSON line of results.
    Queue {
        /// An empty database (migrated here).
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        workers: usize,
        #[arg(long)]
        jobs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest {
            url,
            secret,
            database_url,
            concurrency,
            events,
        } => ingest::run(&url, secret.as_bytes(), &database_url, concurrency, events).await,
        Command::Queue {
            database_url,
            workers,
            jobs,
        } => queue::run(&database_url, workers, jobs).await,
        Command::Pipeline(args) => pipeline::run(args).await,
        Command::Soak {
            url,
            secret,
            pid,
            rate,
            seconds,
            connections,
        } => ingest::soak(&url, secret.as_bytes(), pid, rate, seconds, connections).await,
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}
