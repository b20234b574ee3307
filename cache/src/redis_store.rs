//! The Redis store (feature `redis`): one Redis (or Valkey) shared by a fleet of
//! workers. Values are `SET … PX` (Redis drops them when their time runs out); a lease is
//! `SET lease NX PX ttl`, renewed and released only by its holder (a short Lua script
//! compares the holder first), so a crashed holder's lease runs out by itself.
//!
//! Keys are `{prefix}upload:{key}` and `{prefix}lease:{key}`, prefix `wamedia:` unless
//! set. The values hold media keys: see the crate docs on securing Redis.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection};

use crate::store::{Store, StoreError};

/// Extends the lease when `holder` has it or nobody does.
const TAKE_OR_RENEW: &str = r"
local h = redis.call('GET', KEYS[1])
if h == false or h == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Deletes the lease only when `holder` has it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Cached uploads in Redis.
pub struct RedisStore {
    client: Client,
    shown: String,
    prefix: String,
    timeout: Duration,
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.shown)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// The store at `url` (`redis://[user:password@]host:port[/db]`), keys under
    /// `wamedia:`. Connects now, so that a wrong address is said at once.
    ///
    /// # Errors
    /// A malformed URL, or the server cannot be reached.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::new("redis", e))?;
        let info = client.get_connection_info();
        // Shown in errors: the address and the database, never the password.
        let shown = format!("redis {}/{}", info.addr(), info.redis_settings().db());
        let store = RedisStore {
            client,
            shown,
            prefix: "wamedia:".into(),
            timeout: Duration::from_secs(5),
            conn: Mutex::new(None),
        };
        store.with_conn(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    /// Puts every key under `prefix` instead of `wamedia:` (to share one Redis between
    /// deployments, or to give each an ACL of its own: `~prefix*`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}upload:{key}", self.prefix)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}lease:{key}", self.prefix)
    }

    /// Runs `f` on the connection, reconnecting once when it broke.
    fn with_conn<T>(
        &self,
        f: impl Fn(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = None;
        for _ in 0..2 {
            if slot.is_none() {
                let c = self
                    .client
                    .get_connection_with_timeout(self.timeout)
                    .and_then(|c| {
                        c.set_read_timeout(Some(self.timeout))?;
                        c.set_write_timeout(Some(self.timeout))?;
                        Ok(c)
                    });
                match c {
                    Ok(c) => *slot = Some(c),
                    Err(e) => return Err(StoreError::new(&self.shown, e)),
                }
            }
            let Some(c) = slot.as_mut() else { break };
            match f(c) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                    *slot = None;
                    last = Some(e);
                }
                Err(e) => return Err(StoreError::new(&self.shown, e)),
            }
        }
        Err(StoreError::new(
            &self.shown,
            last.map_or("no connection".to_string(), |e| e.to_string()),
        ))
    }
}

impl Store for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.value_key(key);
        self.with_conn(|c| redis::cmd("GET").arg(&k).query::<Option<Vec<u8>>>(c))
    }

    fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let k = self.value_key(key);
        self.with_conn(|c| {
            redis::cmd("SET")
                .arg(&k)
                .arg(value)
                .arg("PX")
                .arg(ms(ttl))
                .exec(c)
        })
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        let k = self.value_key(key);
        self.with_conn(|c| redis::cmd("DEL").arg(&k).exec(c))
    }

    fn try_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let k = self.lease_key(key);
        self.with_conn(|c| {
            let set: Option<String> = redis::cmd("SET")
                .arg(&k)
                .arg(holder)
                .arg("NX")
                .arg("PX")
                .arg(ms(ttl))
                .query(c)?;
            if set.is_some() {
                return Ok(true);
            }
            // Held: by us (a renewal) or by another.
            let renewed: i64 = redis::cmd("EVAL")
                .arg(TAKE_OR_RENEW)
                .arg(1)
                .arg(&k)
                .arg(holder)
                .arg(ms(ttl))
                .query(c)?;
            Ok(renewed == 1)
        })
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let k = self.lease_key(key);
        self.with_conn(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&k)
                .arg(holder)
                .exec(c)
        })
    }
}
