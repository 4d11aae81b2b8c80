//! Crash points for the fault-injection tests (`relayer/tests/faults.rs`).
//!
//! Inert unless `RELAYER_FAILPOINT` is set: then the process aborts the first time it reaches
//! the step of that name, the way `kill -9` would stop it there (no destructors, no graceful
//! shutdown, no hand-back of claimed jobs, connections cut). The tests restart the binary on the
//! same database and check that every offer still reaches its final state with no transaction
//! sent twice. Never set it in production.
//!
//! The steps, in pipeline order: `after_event_commit` (a webhook's event, status change and job
//! committed), `after_claim` (a worker claimed a job), `after_sign` (a signed transaction recorded
//! and committed, not sent), `after_send` (sent, not confirmed), `before_confirm` (landed on-chain,
//! not recorded as confirmed).
use std::sync::OnceLock;

/// The armed step, set once at start-up: `hit` sits on hot paths.
static ARMED: OnceLock<String> = OnceLock::new();

/// Arms `step` (from `RELAYER_FAILPOINT`, read by `crate::config`); a second call changes nothing.
pub fn arm(step: Option<String>) {
    if let Some(step) = step {
        let _ = ARMED.set(step);
    }
}

/// The armed step, if any (`relayer serve` warns about it at start-up).
pub fn armed() -> Option<&'static str> {
    ARMED.get().map(String::as_str)
}

/// Aborts the process when the armed step is `name`; otherwise does nothing.
pub fn hit(name: &'static str) {
    if armed() == Some(name) {
        eprintln!("relayer: failpoint {name} reached (RELAYER_FAILPOINT); aborting");
        std::process::abort();
    }
}
