//! Which connections are open and what each is doing, so that a full server can make room.
//!
//! A connection is *idle* until its request's headers are complete and again between requests,
//! *busy* while a request is being handled. When the server is at `HTTP_MAX_CONNECTIONS` and a
//! new client connects, the connection idle the longest is closed to make room: slow and silent
//! clients (slowloris, sockets held open and never written to) are always idle, so they cannot
//! keep a real request out, which sends its headers at once and is then busy. A busy connection is
//! bounded by the body and request timeouts instead.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use tokio_util::sync::CancellationToken;

struct Entry {
    /// `None` while busy.
    idle_since: Option<Instant>,
    /// Cancelled to close the connection at once.
    close: CancellationToken,
}

#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Entry>,
}

/// One connection's place in the registry; it leaves when this is dropped.
pub struct Slot {
    pub id: u64,
    pub close: CancellationToken,
    registry: Connections,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("connections lock poisoned")
    }

    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Registers a new, idle connection. With `max` open already, closes the one idle the
    /// longest first; `None` when every open connection is busy (refuse the new one).
    pub fn admit(&self, max: usize) -> Option<Slot> {
        let mut inner = self.lock();
        if inner.open.len() >= max {
            let (&oldest, _) = inner
                .open
                .iter()
                .filter_map(|(id, e)| e.idle_since.map(|t| (id, t)))
                .min_by_key(|(_, t)| *t)?;
            if let Some(evicted) = inner.open.remove(&oldest) {
                evicted.close.cancel();
            }
        }
        let id = inner.next;
        inner.next += 1;
        let close = CancellationToken::new();
        inner.open.insert(
            id,
            Entry {
                idle_since: Some(Instant::now()),
                close: close.clone(),
            },
        );
        Some(Slot {
            id,
            close,
            registry: self.clone(),
        })
    }

    pub fn busy(&self, id: u64) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            e.idle_since = None;
        }
    }

    pub fn idle(&self, id: u64) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            e.idle_since = Some(Instant::now());
        }
    }

    /// Closes every connection that is idle now (graceful shutdown: nothing is in flight there).
    pub fn close_idle(&self) {
        for e in self.lock().open.values() {
            if e.idle_since.is_some() {
                e.close.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_server_closes_the_longest_idle_connection_and_never_a_busy_one() {
        let c = Connections::default();
        let first = c.admit(2).unwrap();
        let second = c.admit(2).unwrap();
        c.busy(second.id);
        let third = c.admit(2).expect("room made");
        assert!(first.close.is_cancelled(), "the idle one went");
        assert!(!second.close.is_cancelled() && !third.close.is_cancelled());
        drop(first);
        assert_eq!(c.open(), 2);
        c.busy(third.id);
        assert!(c.admit(2).is_none(), "all busy: the newcomer is refused");
        drop(second);
        assert!(c.admit(2).is_some(), "a slot freed");
    }
}
