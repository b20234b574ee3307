//! Where cached uploads live: one small trait, three stores ([`MemoryStore`](crate::MemoryStore),
//! [`DiskStore`](crate::DiskStore), and `RedisStore` with the `redis` feature).
//!
//! A store keeps opaque values under text keys, each for a bounded time, and leases: a
//! lease on a key is held by one holder until released or until its time runs out (a
//! holder that crashed never blocks the others for longer than that).

use std::time::Duration;

/// Why a store could not answer. Never carries a stored value (they hold media keys).
#[derive(Debug, thiserror::Error)]
#[error("{store}: {why}")]
pub struct StoreError {
    /// Which store (`memory`, the disk store's path, the Redis address without password).
    pub store: String,
    /// What went wrong.
    pub why: String,
}

impl StoreError {
    /// An error of `store`.
    pub fn new(store: impl Into<String>, why: impl std::fmt::Display) -> Self {
        StoreError {
            store: store.into(),
            why: why.to_string(),
        }
    }
}

/// A place to keep cached uploads, shared by every worker that should upload each file
/// once.
pub trait Store: Send + Sync {
    /// The value under `key`, unless absent or past its time.
    ///
    /// # Errors
    /// The store cannot be reached or read.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps `value` under `key` for `ttl` (replacing any earlier value).
    ///
    /// # Errors
    /// The store cannot be reached or written.
    fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// Forgets `key`'s value.
    ///
    /// # Errors
    /// The store cannot be reached or written.
    fn remove(&self, key: &str) -> Result<(), StoreError>;

    /// Takes the lease on `key` for `holder` for `ttl`, unless another holder has one that
    /// has not run out; a holder that already has it gets `ttl` more. True when `holder`
    /// holds it now.
    ///
    /// # Errors
    /// The store cannot be reached or written.
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Ends `holder`'s lease on `key` (another holder's lease is left alone).
    ///
    /// # Errors
    /// The store cannot be reached or written.
    fn release(&self, key: &str, holder: &str) -> Result<(), StoreError>;

    /// Waits at most `max` for `key`'s value or lease to change (a store that cannot tell
    /// just sleeps a little: callers look again either way).
    fn wait(&self, key: &str, max: Duration) {
        let _ = key;
        std::thread::sleep(max.min(Duration::from_millis(50)));
    }
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }
    fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        (**self).put(key, value, ttl)
    }
    fn remove(&self, key: &str) -> Result<(), StoreError> {
        (**self).remove(key)
    }
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).try_lease(key, holder, ttl)
    }
    fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        (**self).release(key, holder)
    }
    fn wait(&self, key: &str, max: Duration) {
        (**self).wait(key, max)
    }
}
