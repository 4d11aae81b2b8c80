use tracing_subscriber::{fmt, EnvFilter};

/// JSON log lines on stderr, filtered by `filter` (`RUST_LOG`, read by `crate::config`).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
