//! Making room at `--max-connections`: connections waiting for a request register here, and when
//! a new connection arrives while every slot is taken (or accept runs out of file descriptors),
//! the one that has waited longest is closed: idle ones (no request bytes) first, then those
//! whose request head is still incomplete (slow-header clients, answered 408). A connection busy
//! with a request whose head has arrived is never chosen.
//!
//! Without this, idle or dribbling connections holding every slot would keep a device's
//! connection in the kernel's accept backlog (or drop its SYNs once that is full) until their
//! timeouts expire.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, Notify};

/// What a waiting connection is waiting for (evicted in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Waiting {
    /// For the first byte of a request (fresh or keep-alive connection).
    Idle,
    /// For the rest of a request head.
    Head,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// Oldest first within each class.
    waiting: BTreeMap<(Waiting, u64), oneshot::Sender<()>>,
}

/// The connections that may be closed to make room.
#[derive(Default)]
pub(crate) struct Evictor {
    inner: Mutex<Inner>,
    /// Signalled when a connection starts waiting (something may have become evictable).
    pub(crate) registered: Notify,
}

impl Evictor {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a connection waiting for `what`; it is evictable until the returned ticket is
    /// dropped or [`Ticket::leave`]s.
    pub(crate) fn wait(self: &Arc<Self>, what: Waiting) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut g = self.lock();
            g.next = g.next.wrapping_add(1);
            let key = (what, g.next);
            g.waiting.insert(key, tx);
            key
        };
        self.registered.notify_one();
        Ticket {
            set: self.clone(),
            key,
            rx,
        }
    }

    /// Close the connection that has waited longest (idle before slow heads). Returns what it was
    /// waiting for, or `None` when no connection is evictable.
    pub(crate) fn evict_one(&self) -> Option<Waiting> {
        let mut g = self.lock();
        while let Some(((what, _), tx)) = g.waiting.pop_first() {
            // A ticket whose connection is gone cannot be sent to; try the next.
            if tx.send(()).is_ok() {
                return Some(what);
            }
        }
        None
    }

    /// Connections evictable now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// A connection's registration as waiting.
pub(crate) struct Ticket {
    set: Arc<Evictor>,
    key: (Waiting, u64),
    rx: oneshot::Receiver<()>,
}

impl Ticket {
    pub(crate) fn what(&self) -> Waiting {
        self.key.0
    }

    /// Resolves when the connection is chosen to make room (never otherwise).
    pub(crate) async fn evicted(&mut self) {
        if (&mut self.rx).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stop waiting. True if the connection was chosen to make room meanwhile (it must then close
    /// as soon as it is not in the middle of a request).
    pub(crate) fn leave(self) -> bool {
        let present = self.set.lock().waiting.remove(&self.key).is_some();
        !present
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.set.lock().waiting.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_idle_first_then_oldest_head_and_leaving_reports_eviction() {
        let e = Arc::new(Evictor::default());
        let h1 = e.wait(Waiting::Head);
        let i1 = e.wait(Waiting::Idle);
        let i2 = e.wait(Waiting::Idle);
        assert_eq!(e.len(), 3);
        assert_eq!(e.evict_one(), Some(Waiting::Idle));
        assert!(i1.leave(), "i1 was the oldest idle one");
        assert!(!i2.leave(), "i2 was not evicted");
        assert_eq!(e.evict_one(), Some(Waiting::Head));
        assert!(h1.leave());
        assert_eq!(e.evict_one(), None);
        // Dropped tickets are not evictable.
        let t = e.wait(Waiting::Idle);
        drop(t);
        assert_eq!(e.evict_one(), None);
        assert_eq!(e.len(), 0);
    }

    #[tokio::test]
    async fn eviction_wakes_the_waiting_connection() {
        let e = Arc::new(Evictor::default());
        let mut t = e.wait(Waiting::Idle);
        let e2 = e.clone();
        let h = tokio::spawn(async move { e2.evict_one() });
        tokio::time::timeout(std::time::Duration::from_secs(5), t.evicted())
            .await
            .unwrap();
        assert_eq!(h.await.unwrap(), Some(Waiting::Idle));
    }
}
