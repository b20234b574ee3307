//! What every transport shares, so that `wamedia-ureq`, `wamedia-surf` and your own stay
//! small and alike: where media connections come from, cancellation, preparing an
//! upload from a reader, and one error type for a whole transfer.

use std::io::{self, Read, Seek};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::body::{encrypt_reader_threads, hash_reader, BodyReader};
use crate::conn::MediaConn;
use crate::encrypt::{EncryptedMedia, Encryptor};
use crate::error::{DownloadError, Misuse, UploadError};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::pipeline::{encrypt_stream, Threads};
use crate::upload::{MediaId, UploadSpec};

/// Where a transport gets media connections: asked on first use, on expiry, and with
/// `force` after the CDN rejected the auth.
pub trait MediaConnProvider {
    /// A media connection; a fresh one (not a cached one) when `force`.
    ///
    /// # Errors
    /// A message saying why none could be had.
    fn media_conn(&mut self, force: bool, now: Instant) -> Result<MediaConn, String>;
}

impl<F: FnMut(bool, Instant) -> Result<MediaConn, String>> MediaConnProvider for F {
    fn media_conn(&mut self, force: bool, now: Instant) -> Result<MediaConn, String> {
        self(force, now)
    }
}

/// The trivial provider: always the same connection.
#[derive(Clone, Debug)]
pub struct StaticConn(pub MediaConn);

impl MediaConnProvider for StaticConn {
    fn media_conn(&mut self, _force: bool, _now: Instant) -> Result<MediaConn, String> {
        Ok(self.0.clone())
    }
}

/// A cancellation handle: clone it, give one to the transfer, call
/// [`cancel`](Self::cancel) from anywhere. Transports check it between chunks.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the transfer to stop at the next chunk.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sees every exchange a transport makes, in order: how record mode captures cassettes.
/// Transports call these; an observer never changes what happens.
pub trait Observer: Send {
    /// A media connection was handed to the machine (after it asked, `force` as asked).
    fn media_conn(&mut self, conn: &MediaConn, force: bool);
    /// A request is about to be sent.
    fn request(&mut self, req: &crate::Request);
    /// The head of its answer arrived.
    fn response_head(&mut self, id: crate::RequestId, status: u16, headers: &http::HeaderMap);
    /// Bytes of its answer's body arrived.
    fn response_body(&mut self, id: crate::RequestId, data: &[u8]);
    /// The answer is complete.
    fn response_end(&mut self, id: crate::RequestId);
    /// The request failed in the transport (after a head: the body was cut short).
    fn failed(&mut self, id: crate::RequestId, reason: &str);
}

/// A progress callback: `(bytes_done, total)`.
pub type ProgressFn<'a> = Box<dyn FnMut(u64, Option<u64>) + Send + 'a>;

/// Progress callback and cancellation for one transfer run by a transport.
#[derive(Default)]
pub struct Transfer<'a> {
    progress: Option<ProgressFn<'a>>,
    cancel: Cancel,
    observer: Option<&'a mut dyn Observer>,
}

impl std::fmt::Debug for Transfer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl<'a> Transfer<'a> {
    /// No progress callback, not cancellable from outside.
    pub fn new() -> Self {
        Self::default()
    }
    /// Calls `f(bytes_done, total)` as the body moves.
    pub fn on_progress(mut self, f: impl FnMut(u64, Option<u64>) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
    /// Stops the transfer (with [`Error::Cancelled`]) once `cancel` is cancelled.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }
    /// Shows every exchange to `observer` (record mode).
    pub fn observe(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }
    /// The observer, if any (for transports).
    pub fn observer(&mut self) -> Option<&mut (dyn Observer + 'a)> {
        self.observer.as_deref_mut()
    }
    /// Reports progress to the callback, if any (for transports).
    pub fn report(&mut self, done: u64, total: Option<u64>) {
        if let Some(f) = self.progress.as_mut() {
            f(done, total);
        }
    }
    /// The cancellation handle (for transports).
    pub fn cancel_handle(&self) -> &Cancel {
        &self.cancel
    }
}

/// Why a transfer run by a transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The upload failed for good.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The download failed for good.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Reading the source or writing the destination failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The media connection provider had none to give.
    #[error("media connection unavailable: {0}")]
    MediaConn(String),
    /// The transfer was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The transport broke the machine's contract (a bug in the transport).
    #[error("transport bug: {0}")]
    Misuse(#[from] Misuse),
}

/// What to upload, besides the bytes.
#[derive(Clone, Debug)]
pub struct UploadJob {
    /// The media type.
    pub media_type: MediaType,
    /// Reuse this key (an interrupted upload run again: the first attempt asks the CDN
    /// what it holds); `None` draws a fresh one from the OS.
    pub media_key: Option<MediaKey>,
    /// With a reused key, the timestamp it was first made at (the message's
    /// `mediaKeyTimestamp`); a fresh key is stamped with the current time.
    pub media_key_timestamp: Option<i64>,
    /// The upload's `media_id`; `None` draws one from the OS.
    pub media_id: Option<MediaId>,
    /// Newsletter (channel) media: uploaded unencrypted on the newsletter path.
    pub newsletter: bool,
    /// Threads the first pass's crypto may use ([`Threads::Auto`]: a second one from
    /// 8 MiB on; [`Threads::One`] for the least CPU per byte).
    pub threads: Threads,
    /// Make a streaming sidecar when the media type has one (video, audio; PROTOCOL §2.7).
    /// `false` for a video whose `moov` box comes after its media data, which the
    /// receiver's streaming player cannot open.
    pub streaming_sidecar: bool,
}

impl UploadJob {
    /// An upload of `media_type`: encrypted under a fresh key, or unencrypted for a type
    /// that is not encrypted (product catalog images).
    pub fn new(media_type: MediaType) -> Self {
        UploadJob {
            media_type,
            media_key: None,
            media_key_timestamp: None,
            media_id: None,
            newsletter: false,
            threads: Threads::Auto,
            streaming_sidecar: true,
        }
    }
    /// Reuses `key` instead of a fresh one.
    pub fn with_media_key(mut self, key: MediaKey) -> Self {
        self.media_key = Some(key);
        self
    }
    /// The reused key's timestamp (Unix seconds).
    pub fn with_media_key_timestamp(mut self, unix_seconds: i64) -> Self {
        self.media_key_timestamp = Some(unix_seconds);
        self
    }
    /// Uses this `media_id` (to resume an upload with the id it had).
    pub fn with_media_id(mut self, id: MediaId) -> Self {
        self.media_id = Some(id);
        self
    }
    /// Lets the first pass use `threads` (see [`crate::pipeline`]).
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }
    /// Whether to make a streaming sidecar for a type that has one (the default); `false`
    /// uploads a video or audio file without one (see [`UploadJob::streaming_sidecar`]).
    pub fn with_streaming_sidecar(mut self, on: bool) -> Self {
        self.streaming_sidecar = on;
        self
    }
    /// Makes it a newsletter (unencrypted) upload.
    pub fn newsletter(mut self) -> Self {
        self.newsletter = true;
        self
    }

    /// The first pass over the plaintext: hashes (and the MAC and checkpoints when
    /// encrypted). Reads `source` to its end. Draws the key and `media_id` when not given
    /// and stamps a fresh key with the current time.
    ///
    /// # Errors
    /// Read errors, no randomness, or a media type WhatsApp has no path for.
    pub fn prepare<R: Read>(&self, source: R) -> io::Result<PreparedUpload> {
        let media_id = match self.media_id {
            Some(id) => id,
            None => MediaId::generate().map_err(io::Error::other)?,
        };
        if self.newsletter || !self.media_type.is_encrypted() {
            let (sha, len) = hash_reader(source)?;
            let spec = if self.newsletter {
                UploadSpec::newsletter(self.media_type.clone(), sha, len, media_id)
            } else {
                UploadSpec::unencrypted(self.media_type.clone(), sha, len, media_id)
            };
            spec.upload_path().map_err(io::Error::other)?;
            return Ok(PreparedUpload { spec, media: None });
        }
        self.media_type.upload_path().map_err(io::Error::other)?;
        let (key, reused) = match &self.media_key {
            Some(k) => (k.clone(), true),
            None => (MediaKey::generate().map_err(io::Error::other)?, false),
        };
        let media = if self.streaming_sidecar {
            encrypt_reader_threads(key, &self.media_type, source, self.threads)?
        } else {
            let enc = Encryptor::new(key, &self.media_type)
                .map_err(io::Error::other)?
                .with_streaming_sidecar(false);
            encrypt_stream(enc, source, io::sink(), self.threads)?
        };
        let mut spec = UploadSpec::encrypted(self.media_type.clone(), &media, media_id)
            .with_key_reused(reused);
        spec.media_key_timestamp = if reused {
            self.media_key_timestamp
        } else {
            Some(unix_now())
        };
        Ok(PreparedUpload {
            spec,
            media: Some(media),
        })
    }
}

/// An upload after its first pass: the machine's spec, and what regenerates the body.
#[derive(Clone, Debug)]
pub struct PreparedUpload {
    /// Give this to [`Upload::new`](crate::Upload::new).
    pub spec: UploadSpec,
    media: Option<EncryptedMedia>,
}

impl PreparedUpload {
    /// Body bytes `from..` read out of the seekable plaintext `source`.
    ///
    /// # Errors
    /// Seek errors, or `from` past the end.
    pub fn body_reader<R: Read + Seek>(&self, source: R, from: u64) -> io::Result<BodyReader<R>> {
        match &self.media {
            Some(m) => BodyReader::encrypted(source, m, &self.spec.media_type, from),
            None => BodyReader::plain(source, from, self.spec.file_length),
        }
    }
}

/// Seconds since the Unix epoch, for `media_key_timestamp` (transports call this; the
/// machines never read a clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A `Read` that counts bytes and stops when cancelled: what transports wrap request
/// bodies in.
pub struct Counting<'a, R> {
    /// The body.
    pub inner: R,
    /// Bytes read so far.
    pub count: u64,
    /// Called with the running count after each read.
    pub on_read: Option<&'a mut dyn FnMut(u64)>,
    /// Checked before each read.
    pub cancel: Cancel,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.count = self.count.saturating_add(n as u64);
        if let Some(f) = self.on_read.as_mut() {
            f(self.count);
        }
        Ok(n)
    }
}

/// Feeds `input` to the machine, showing answers to the transfer's observer first: the
/// one place transports pass answers through, so record mode sees exactly what the
/// machine sees.
///
/// # Errors
/// The machine's [`Misuse`].
pub fn feed<M: crate::Machine>(
    m: &mut M,
    transfer: &mut Transfer<'_>,
    input: crate::Input<'_>,
) -> Result<(), Misuse> {
    use crate::Input;
    if let Some(o) = transfer.observer() {
        match &input {
            Input::Head {
                id,
                status,
                headers,
            } => o.response_head(*id, *status, headers),
            Input::Body { id, data } => o.response_body(*id, data),
            Input::End { id } => o.response_end(*id),
            Input::Failed { id, reason } => o.failed(*id, reason),
            Input::MediaConn(_) | Input::Sent { .. } | Input::Timeout => {}
        }
    }
    m.handle_input(Instant::now(), input)
}

/// The plaintext of a download to `target` while it is unverified:
/// `.<name>.wamedia-partial` beside it (mode 0600), with `.<name>.wamedia-partial.id`
/// naming which download it belongs to. A run interrupted by a network failure, a
/// cancellation or `kill -9` leaves it; the next run of the **same** download resumes
/// from it ([`Download::feed_prefix`](crate::Download::feed_prefix): the MAC still covers
/// the whole body), and a run of another download to the same target replaces it. It is
/// renamed to `target` only after verification and removed after an integrity failure.
#[derive(Debug)]
pub struct Partial {
    path: std::path::PathBuf,
    id_path: std::path::PathBuf,
    target: std::path::PathBuf,
    file: std::fs::File,
}

/// A file readable and writable by its owner only.
fn private(path: &std::path::Path, truncate: bool) -> io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

impl Partial {
    /// Opens the partial file of `spec` beside `target`: resumable when an earlier run of
    /// the same download left one, otherwise empty (a stale one is replaced).
    ///
    /// # Errors
    /// The folder cannot be written, or `target` names no file.
    pub fn open(target: &std::path::Path, spec: &crate::DownloadSpec) -> io::Result<Partial> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::other(format!("{} names no file", target.display())))?
            .to_string_lossy()
            .into_owned();
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let path = dir.join(format!(".{name}.wamedia-partial"));
        let id_path = dir.join(format!(".{name}.wamedia-partial.id"));
        let id = spec.resume_id();
        let same = std::fs::read_to_string(&id_path).is_ok_and(|s| s.trim() == id);
        let file = private(&path, !same)?;
        if !same {
            std::io::Write::write_all(&mut private(&id_path, true)?, id.as_bytes())?;
        }
        Ok(Partial {
            path,
            id_path,
            target: target.to_owned(),
            file,
        })
    }

    /// Feeds what the partial file holds to `download` and cuts the file to what the
    /// machine keeps; returns that length (0 for a fresh start).
    ///
    /// # Errors
    /// Reading the file, or a machine that already started.
    pub fn resume(&mut self, download: &mut crate::Download) -> Result<u64, Error> {
        use std::io::{Seek as _, SeekFrom};
        self.file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 1 << 20];
        // A partial that fails verification on the way (a window of its sidecar) ends
        // the machine: stop feeding, and let its outcome say why.
        while !crate::transfer::Machine::is_finished(download) {
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            download.feed_prefix(&buf[..n])?;
        }
        let kept = download.prefix_kept();
        self.file.set_len(kept)?;
        self.file.seek(SeekFrom::Start(kept))?;
        Ok(kept)
    }

    /// The file, positioned where the machine's plaintext continues.
    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Where the partial plaintext lives.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// After a verified download: flushes it to disk and renames it to the target.
    ///
    /// # Errors
    /// Syncing or renaming.
    pub fn publish(self) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, &self.target)?;
        let _ = std::fs::remove_file(&self.id_path);
        Ok(())
    }

    /// Ends a download that failed: an integrity failure removes the unverified
    /// plaintext; any other failure keeps it for the next run to resume.
    pub fn fail(self, error: &Error) {
        let integrity = matches!(error, Error::Download(d) if d.is_integrity());
        let refused = matches!(
            error,
            Error::Download(
                DownloadError::MediaGone { .. }
                    | DownloadError::MediaExpired { .. }
                    | DownloadError::MaliciousPath { .. }
                    | DownloadError::UntrustedUrl { .. }
                    | DownloadError::Unsupported(_)
                    | DownloadError::NothingToVerify
            )
        );
        let empty = self.file.metadata().map_or(true, |m| m.len() == 0);
        if integrity || refused || empty {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(&self.id_path);
        } else {
            let _ = self.file.sync_all();
        }
    }
}
