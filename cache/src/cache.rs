//! The cache itself: look up before the first pass, answer from the CDN's `complete`,
//! remember after a full upload, and keep two workers from uploading one file twice.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wamedia::{hash_reader, UploadResult};
use wamedia_driver::unix_now;
use wamedia_driver::{PreparedUpload, UploadJob};

use crate::entry::Entry;
use crate::key::CacheKey;
use crate::memory::MemoryStore;
use crate::store::Store;

/// What the cache tells its caller while it works (for a log line or a progress note).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Another worker holds the lease on this file: waiting for its upload.
    Waiting,
    /// The other worker took longer than [`Policy::max_wait`]: uploading without it.
    WaitedTooLong,
    /// The store failed; the upload goes on without the cache. The message names the
    /// store and never a media key.
    StoreFailed(String),
    /// A stored entry could not be used (malformed, or another plaintext); it is
    /// replaced after this upload.
    Unusable(String),
}

/// A callback for [`Event`]s.
pub type OnEvent = Arc<dyn Fn(&Event) + Send + Sync>;

/// How long entries and leases live, and how long to wait for another worker.
#[derive(Clone)]
pub struct Policy {
    /// Entries older than this (counted from the media key's timestamp) are not used:
    /// a fresh key and a full upload instead. Default 14 days (CDN objects live two to
    /// three weeks, PROTOCOL v3 §9).
    pub max_age: Duration,
    /// Entries whose direct path's `oe` is less than this ahead are not used (a
    /// receiver needs time to download). Default one day.
    pub oe_margin: Duration,
    /// A lease lasts this long unless renewed; its holder renews it every third of it
    /// while it uploads, so a crashed holder blocks the others at most this long.
    /// Default 30 s.
    pub lease_ttl: Duration,
    /// The longest a worker waits for another's upload of the same file before
    /// uploading itself. Default 10 minutes.
    pub max_wait: Duration,
    /// Told about waits and store failures.
    pub on_event: Option<OnEvent>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_age: Duration::from_secs(14 * 86400),
            oe_margin: Duration::from_secs(86400),
            lease_ttl: Duration::from_secs(30),
            max_wait: Duration::from_secs(600),
            on_event: None,
        }
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("max_age", &self.max_age)
            .field("oe_margin", &self.oe_margin)
            .field("lease_ttl", &self.lease_ttl)
            .field("max_wait", &self.max_wait)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

/// A content-addressed cache of uploads: (media type, channel or not, plaintext
/// SHA-256) → the media key, its timestamp, the first pass's summary and the CDN's answer.
#[derive(Clone)]
pub struct UploadCache {
    store: Arc<dyn Store>,
    policy: Policy,
}

impl std::fmt::Debug for UploadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadCache")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for UploadCache {
    /// An in-memory cache: this process only.
    fn default() -> Self {
        UploadCache::new(MemoryStore::new())
    }
}

/// What [`UploadCache::begin`] found: a hit (an upload ready to run with the stored key),
/// or a miss holding the lease on the file until [`UploadCache::finish`] or drop.
#[derive(Debug)]
pub struct Lookup {
    key: Option<CacheKey>,
    entry: Option<Entry>,
    prepared: Option<PreparedUpload>,
    lease: Option<Lease>,
    waited: bool,
}

impl Lookup {
    fn bypass() -> Self {
        Lookup {
            key: None,
            entry: None,
            prepared: None,
            lease: None,
            waited: false,
        }
    }

    /// True when an earlier upload of the same plaintext was found: run
    /// [`take_prepared`](Self::take_prepared)'s upload (no first pass needed).
    pub fn is_hit(&self) -> bool {
        self.entry.is_some()
    }

    /// True when the cache was not consulted (newsletter or unencrypted media, a key given
    /// by the caller, a type without a name).
    pub fn is_bypassed(&self) -> bool {
        self.key.is_none()
    }

    /// True on a miss that holds the lease on the file: other workers wait for this
    /// upload.
    pub fn holds_lease(&self) -> bool {
        self.lease.is_some()
    }

    /// True when this worker waited for another's upload of the same file.
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// On a hit, the upload to run: the stored key (marked reused, so the CDN is asked
    /// first) and the stored summary. `None` on a miss: run the normal first pass.
    pub fn take_prepared(&mut self) -> Option<PreparedUpload> {
        self.prepared.take()
    }
}

/// A lease held on one key, renewed by a thread while held, released on drop.
struct Lease {
    store: Arc<dyn Store>,
    key: String,
    holder: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish()
    }
}

impl Lease {
    fn hold(store: Arc<dyn Store>, key: String, holder: String, ttl: Duration) -> Lease {
        let (stop, stopped) = mpsc::channel::<()>();
        let (s, k, h) = (store.clone(), key.clone(), holder.clone());
        let every = (ttl / 3).max(Duration::from_millis(10));
        let renewer = std::thread::Builder::new()
            .name("wamedia-cache-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if !matches!(s.try_lease(&k, &h, ttl), Ok(true)) {
                        return;
                    }
                }
            })
            .ok();
        Lease {
            store,
            key,
            holder,
            stop: Some(stop),
            renewer,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let _ = self.store.release(&self.key, &self.holder);
    }
}

fn holder_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough within one machine when the OS has no randomness to give.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl UploadCache {
    /// A cache over `store`, with the default [`Policy`].
    pub fn new(store: impl Store + 'static) -> Self {
        UploadCache {
            store: Arc::new(store),
            policy: Policy::default(),
        }
    }

    /// Uses `policy`.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    fn tell(&self, e: Event) {
        if let Some(f) = &self.policy.on_event {
            f(&e);
        }
    }

    /// Looks `source` up: one SHA-256 pass over it (then back to its start), and on a hit
    /// an upload ready to run with the stored key. On a miss it takes the lease on the
    /// file, waiting (at most [`Policy::max_wait`]) while another worker holds it, and
    /// looks again when that worker is done.
    ///
    /// Newsletter and unencrypted media (no key to reuse, and the upload machine never
    /// probes for them), a job that brings its own key, and types without a name are not
    /// looked up ([`Lookup::is_bypassed`]), and `source` is not read.
    ///
    /// # Errors
    /// Reading or seeking `source`. A failing store is never an error: the upload goes
    /// on without the cache ([`Event::StoreFailed`]).
    pub fn begin<R: Read + Seek>(&self, job: &UploadJob, source: &mut R) -> io::Result<Lookup> {
        if !Self::consults(job) {
            return Ok(Lookup::bypass());
        }
        let (sha, len) = hash_reader(&mut *source)?;
        source.seek(SeekFrom::Start(0))?;
        Ok(self.begin_hashed(job, sha, len))
    }

    /// True when [`begin`](Self::begin) would look `job` up (and read the source): an
    /// encrypted type with a name, not for a channel, with no key of the caller's.
    pub fn consults(job: &UploadJob) -> bool {
        job.media_type.name().is_some()
            && !job.newsletter
            && job.media_type.is_encrypted()
            && job.media_key.is_none()
    }

    /// [`begin`](Self::begin) for a caller that hashed the plaintext itself
    /// ([`wamedia::hash_reader`], to show its own progress): `file_sha256` and
    /// `file_length` of the source the upload will read.
    pub fn begin_hashed(&self, job: &UploadJob, file_sha256: [u8; 32], file_length: u64) -> Lookup {
        match job.media_type.name() {
            Some(name) if Self::consults(job) => self.lookup(
                job,
                CacheKey::new(name, job.newsletter, file_sha256),
                file_length,
            ),
            _ => Lookup::bypass(),
        }
    }

    /// A hit for `key`, if the store has a usable entry.
    fn find(&self, job: &UploadJob, key: &CacheKey, len: u64) -> Option<Lookup> {
        let bytes = match self.store.get(&key.as_text()) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                self.tell(Event::StoreFailed(e.to_string()));
                return None;
            }
        };
        let entry = match Entry::decode(&bytes) {
            Ok(e) => e,
            Err(e) => {
                self.tell(Event::Unusable(e.to_string()));
                return None;
            }
        };
        if entry.media.file_sha256 != *key.file_sha256()
            || entry.media.file_length != len
            || entry.media.first_frame_length != job.first_frame_length
            || (entry.media.streaming_sidecar.is_some() && !job.streaming_sidecar)
        {
            self.tell(Event::Unusable(
                "a stored entry was made for another plaintext or other options".into(),
            ));
            return None;
        }
        let now = unix_now();
        // A key "made" in the future is not ours to trust (a clock gone back, or a
        // tampered store): its age could not be told.
        if entry.expires_at(self.policy.max_age, self.policy.oe_margin) <= now
            || entry.media_key_timestamp > now.saturating_add(86400)
        {
            return None;
        }
        let prepared = job
            .clone()
            .with_media_key(entry.media.media_key.clone())
            .with_media_key_timestamp(entry.media_key_timestamp)
            .prepare_known(entry.media.clone());
        match prepared {
            Ok(p) => Some(Lookup {
                key: Some(key.clone()),
                entry: Some(entry),
                prepared: Some(p),
                lease: None,
                waited: false,
            }),
            Err(e) => {
                self.tell(Event::Unusable(e.to_string()));
                None
            }
        }
    }

    fn lookup(&self, job: &UploadJob, key: CacheKey, len: u64) -> Lookup {
        if let Some(hit) = self.find(job, &key, len) {
            return hit;
        }
        let text = key.as_text();
        let holder = holder_id();
        let started = Instant::now();
        let mut waited = false;
        let miss = |lease: Option<Lease>, waited: bool| Lookup {
            key: Some(key.clone()),
            entry: None,
            prepared: None,
            lease,
            waited,
        };
        loop {
            match self.store.try_lease(&text, &holder, self.policy.lease_ttl) {
                Ok(true) => {
                    let lease = Lease::hold(
                        self.store.clone(),
                        text.clone(),
                        holder,
                        self.policy.lease_ttl,
                    );
                    // The holder before us may have finished between our look and now.
                    if let Some(mut hit) = self.find(job, &key, len) {
                        hit.waited = waited;
                        return hit;
                    }
                    return miss(Some(lease), waited);
                }
                Ok(false) => {}
                Err(e) => {
                    self.tell(Event::StoreFailed(e.to_string()));
                    return miss(None, waited);
                }
            }
            let spent = started.elapsed();
            if spent >= self.policy.max_wait {
                self.tell(Event::WaitedTooLong);
                return miss(None, waited);
            }
            if !waited {
                waited = true;
                self.tell(Event::Waiting);
            }
            let left = self.policy.max_wait.saturating_sub(spent);
            self.store.wait(&text, left.min(Duration::from_secs(1)));
            if let Some(mut hit) = self.find(job, &key, len) {
                hit.waited = true;
                return hit;
            }
        }
    }

    /// After the upload of `prepared` (from [`Lookup::take_prepared`] or the normal
    /// first pass) succeeded with `result`: a hit the CDN confirmed (its probe answered
    /// `complete`) gets the stored answer's other fields and `cached: true`; a full upload
    /// (a miss, or a hit whose object the CDN had lost) is remembered. Then the lease is
    /// released. A failed upload is simply not passed here (dropping the lookup releases
    /// the lease).
    pub fn finish(&self, lookup: Lookup, prepared: &PreparedUpload, result: &mut UploadResult) {
        let Some(key) = &lookup.key else {
            return;
        };
        if let (Some(entry), true) = (&lookup.entry, result.already_stored) {
            entry.complete(result);
            return;
        }
        let now = unix_now();
        let Some(entry) = Entry::of(prepared, result, now) else {
            return;
        };
        if entry.media.file_sha256 != *key.file_sha256() {
            return;
        }
        let left = entry
            .expires_at(self.policy.max_age, self.policy.oe_margin)
            .saturating_sub(now);
        let Some(ttl) = u64::try_from(left).ok().filter(|&s| s > 0) else {
            return;
        };
        if let Err(e) = self
            .store
            .put(&key.as_text(), &entry.encode(), Duration::from_secs(ttl))
        {
            self.tell(Event::StoreFailed(e.to_string()));
        }
        drop(lookup);
    }

    /// The whole flow for one upload: [`begin`](Self::begin), the first pass on a miss,
    /// `run` (the transport's `upload_prepared`, given the prepared upload and the source
    /// at its start), [`finish`](Self::finish). `run` is called once.
    ///
    /// # Errors
    /// Reading `source` (as `E::from(io::Error)`), or what `run` returned.
    pub fn upload<R, E, F>(&self, job: &UploadJob, mut source: R, run: F) -> Result<UploadResult, E>
    where
        R: Read + Seek,
        E: From<io::Error>,
        F: FnOnce(&PreparedUpload, R) -> Result<UploadResult, E>,
    {
        let mut lookup = self.begin(job, &mut source)?;
        let prepared = match lookup.take_prepared() {
            Some(p) => p,
            None => {
                let p = job.prepare(&mut source)?;
                source.seek(SeekFrom::Start(0))?;
                p
            }
        };
        let mut result = run(&prepared, source)?;
        self.finish(lookup, &prepared, &mut result);
        Ok(result)
    }
}
