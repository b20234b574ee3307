//! The in-memory store: one process's cache (the library's default), a mutex and a
//! condition variable so that a waiting worker wakes as soon as the holder finishes.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

#[derive(Default)]
struct State {
    values: HashMap<String, (Vec<u8>, Instant)>,
    leases: HashMap<String, (String, Instant)>,
}

/// Cached uploads in this process's memory, gone when it exits.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    changed: Condvar,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.lock().values.len();
        f.debug_struct("MemoryStore").field("entries", &n).finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left whole values behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn until(ttl: Duration) -> Instant {
    let now = Instant::now();
    // A ttl too large to represent is as good as forever (a century).
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut s = self.lock();
        match s.values.get(key) {
            Some((v, t)) if *t > Instant::now() => Ok(Some(v.clone())),
            Some(_) => {
                s.values.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let mut s = self.lock();
        let now = Instant::now();
        s.values.retain(|_, (_, t)| *t > now);
        s.values
            .insert(key.to_owned(), (value.to_vec(), until(ttl)));
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.lock().values.remove(key);
        self.changed.notify_all();
        Ok(())
    }

    fn try_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.leases.get(key) {
            Some((h, t)) if *t > now && h != holder => Ok(false),
            _ => {
                s.leases
                    .insert(key.to_owned(), (holder.to_owned(), until(ttl)));
                Ok(true)
            }
        }
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.leases.get(key).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(key);
        }
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    fn wait(&self, key: &str, max: Duration) {
        let s = self.lock();
        // Wake at the latest when the lease runs out (a crashed holder's).
        let lease_end = s
            .leases
            .get(key)
            .map(|(_, t)| t.saturating_duration_since(Instant::now()));
        let max = lease_end.map_or(max, |l| l.min(max));
        let _ = self.changed.wait_timeout(s, max);
    }
}
