//! The on-disk store: one [redb](https://www.redb.org) file (pure Rust, ACID, crash-safe
//! commits), the CLI's default at `$XDG_CACHE_HOME/wamedia/uploads.redb` (or
//! `~/.cache/wamedia/`). Folder 0700, file 0600, never through a symbolic link: it holds
//! media keys.
//!
//! redb lets one open handle at a time hold the file (an exclusive `flock`), so each
//! operation opens it, runs one transaction and closes it: several processes share one
//! store, taking turns that last milliseconds. A lease is a row written in a write
//! transaction (which redb serialises), with its end time in Unix milliseconds: a crashed
//! holder's lease simply runs out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, ReadableTable, TableDefinition};

use crate::store::{Store, StoreError};

const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");

/// How long an operation waits for another process to close the file.
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Any redb error, boxed (they are large).
struct DbError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for DbError {
    fn from(e: E) -> Self {
        DbError(Box::new(e.into()))
    }
}

/// Cached uploads in a redb file shared by the processes of this user.
#[derive(Debug)]
pub struct DiskStore {
    path: PathBuf,
    /// Keeps this process's threads from racing each other for the file lock.
    turn: Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn end_ms(ttl: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// `value` prefixed with its end time (big-endian Unix milliseconds).
fn stamped(end: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len().saturating_add(8));
    v.extend_from_slice(&end.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// The end time and the value of a stamped row; `None` for a row too short to be one.
fn unstamp(row: &[u8]) -> Option<(u64, &[u8])> {
    let (end, value) = row.split_at_checked(8)?;
    Some((u64::from_be_bytes(end.try_into().ok()?), value))
}

/// Makes `dir` (and its parents) and restricts it to this user (0700).
///
/// # Errors
/// It cannot be made or restricted.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl DiskStore {
    /// The store in the file `path`, made (0600, in a folder made 0700) when missing.
    ///
    /// # Errors
    /// The folder or the file cannot be made, or the file is not a redb database.
    pub fn open(path: impl Into<PathBuf>) -> Result<DiskStore, StoreError> {
        let path = path.into();
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)
                .map_err(|e| StoreError::new(&shown, format!("cannot make its folder: {e}")))?;
        }
        let store = DiskStore {
            path,
            turn: Mutex::new(()),
        };
        // Made (and checked to be a database) now, not at the first upload.
        store.with_db(|_| Ok(()))?;
        Ok(store)
    }

    /// The default place: `uploads.redb` in `dir`.
    pub fn in_dir(dir: &Path) -> Result<DiskStore, StoreError> {
        Self::open(dir.join("uploads.redb"))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, why: impl std::fmt::Display) -> StoreError {
        StoreError::new(self.path.display().to_string(), why)
    }

    /// Opens the file (waiting for another process to close it), runs `f`, closes it.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            // Never through a symbolic link, never another user's file; 0600. Two
            // processes making it at once: one of them makes it, the other opens it.
            let file = match wamedia_driver::outfile::open_private(&self.path) {
                Ok((f, _)) => f,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && started.elapsed() < BUSY_WAIT =>
                {
                    continue;
                }
                Err(e) => return Err(self.err(format!("cannot open: {e}"))),
            };
            match Database::builder().create_file(file) {
                Ok(db) => return f(&db),
                Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < BUSY_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, DbError>,
    ) -> Result<T, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(|e| self.err(e))?;
            let out = f(&tx).map_err(|e| self.err(e.0))?;
            tx.commit().map_err(|e| self.err(e))?;
            Ok(out)
        })
    }
}

impl Store for DiskStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(|e| self.err(e))?;
            let table = match tx.open_table(VALUES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(e)),
            };
            let row = table.get(key).map_err(|e| self.err(e))?;
            Ok(row.and_then(|r| {
                let (end, value) = unstamp(r.value())?;
                (end > now_ms()).then(|| value.to_vec())
            }))
        })
    }

    fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let row = stamped(end_ms(ttl), value);
        self.write(|tx| {
            let mut t = tx.open_table(VALUES)?;
            // Entries past their time go when another is written.
            let now = now_ms();
            t.retain(|_, row| unstamp(row).is_some_and(|(end, _)| end > now))?;
            t.insert(key, row.as_slice())?;
            Ok(())
        })
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(VALUES)?.remove(key)?;
            Ok(())
        })
    }

    fn try_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let row = stamped(end_ms(ttl), holder.as_bytes());
        self.write(|tx| {
            let mut t = tx.open_table(LEASES)?;
            let held_by_other = match t.get(key)? {
                Some(r) => unstamp(r.value())
                    .is_some_and(|(end, h)| end > now_ms() && h != holder.as_bytes()),
                None => false,
            };
            if held_by_other {
                return Ok(false);
            }
            t.insert(key, row.as_slice())?;
            Ok(true)
        })
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut t = tx.open_table(LEASES)?;
            let ours = t
                .get(key)?
                .is_some_and(|r| unstamp(r.value()).is_some_and(|(_, h)| h == holder.as_bytes()));
            if ours {
                t.remove(key)?;
            }
            Ok(())
        })
    }
}
