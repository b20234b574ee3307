//! What every transport shares, so that `wamedia-ureq`, `wamedia-surf` and your own stay
//! small and alike: where media connections come from, cancellation, preparing an
//! upload from a reader, and one error type for a whole transfer.

use std::io::{self, Read, Seek};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::body::{hash_reader, BodyReader};
use crate::conn::MediaConn;
use crate::encrypt::{EncryptedMedia, Encryptor};
use crate::error::{DeleteError, DownloadError, Misuse, UploadError};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::pipeline::{encrypt_stream, Threads};
use crate::upload::{MediaId, UploadResult, UploadSpec};

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
    /// The delete failed for good.
    #[error(transparent)]
    Delete(#[from] DeleteError),
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
    /// An animated sticker's `firstFrameLength`: the first pass also computes its
    /// first-frame sidecar (PROTOCOL §2.8).
    pub first_frame_length: Option<u64>,
    /// With a given key: the body is new all the same (a thumbnail under its media's
    /// key), so the first attempt sends it instead of probing what the CDN holds.
    pub fresh_body: bool,
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
            first_frame_length: None,
            fresh_body: false,
            streaming_sidecar: true,
        }
    }

    /// The upload of `main`'s larger thumbnail, as WhatsApp Web makes it
    /// (`WAWebMediaUploadMediaWithPrep`): the media's own key, the thumbnail's type
    /// ([`MediaType::thumbnail_type`]: its HKDF info and path), the key's timestamp, and
    /// no resume probe. `None` when `main` has no key (unencrypted media) or its type has
    /// no thumbnail type.
    ///
    /// The thumbnail's body is new even though its key is not: the CDN can hold it only
    /// if this very thumbnail went up before, and a thumbnail is a few dozen KiB, so a
    /// probe would cost a round trip to save less than it costs. Prepare it from the
    /// JPEG's bytes, upload it like any media, then record it with
    /// [`UploadResult::attach_thumbnail`].
    ///
    /// ```no_run
    /// # fn thumbnail(
    /// #     main: wamedia::UploadResult,
    /// #     thumb: wamedia::UploadResult,
    /// #     jpeg: Vec<u8>,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let job = wamedia::UploadJob::thumbnail_for(&main).ok_or("no thumbnail for this type")?;
    /// let prepared = job.prepare(&jpeg[..])?;
    /// // … upload `prepared` with a transport (`upload_prepared`) to get `thumb`, then:
    /// let mut main = main;
    /// main.attach_thumbnail(&thumb, 480, 270);
    /// # Ok(()) }
    /// ```
    pub fn thumbnail_for(main: &UploadResult) -> Option<UploadJob> {
        let key = main.media_key.clone()?;
        let media_type = main.media_type.thumbnail_type()?;
        let mut job = UploadJob::new(media_type).with_media_key(key);
        job.media_key_timestamp = main.media_key_timestamp;
        job.fresh_body = true;
        Some(job)
    }

    /// Computes an animated sticker's first-frame sidecar in the first pass, for a
    /// `firstFrameLength` of `first_frame_length` (the file offset just past its first
    /// `ANMF` chunk; `wamedia_info::MediaInfo::first_frame_length` finds it).
    pub fn with_first_frame_length(mut self, first_frame_length: u64) -> Self {
        self.first_frame_length = Some(first_frame_length);
        self
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
            Some(k) => (k.clone(), !self.fresh_body),
            None => (MediaKey::generate().map_err(io::Error::other)?, false),
        };
        let mut enc = Encryptor::new(key, &self.media_type).map_err(io::Error::other)?;
        if let Some(l) = self.first_frame_length {
            enc = enc.with_first_frame_sidecar(l);
        }
        if !self.streaming_sidecar {
            enc = enc.with_streaming_sidecar(false);
        }
        let media = encrypt_stream(enc, source, io::sink(), self.threads)?;
        let mut spec = UploadSpec::encrypted(self.media_type.clone(), &media, media_id)
            .with_key_reused(reused);
        spec.media_key_timestamp = if self.media_key.is_some() {
            self.media_key_timestamp
        } else {
            Some(unix_now())
        };
        Ok(PreparedUpload {
            spec,
            media: Some(media),
        })
    }

    /// An upload whose first pass was made before: `media` is the summary an earlier
    /// [`prepare`](Self::prepare) made of **this very plaintext** (the caller checked its
    /// SHA-256 and length, as an upload cache does). No byte is read; the key is marked
    /// reused, so the first attempt asks the CDN whether it still holds the body, and a
    /// body that must be sent is regenerated from the plaintext with `media`'s
    /// checkpoints (a plaintext that differs is caught there). The timestamp is the job's
    /// [`media_key_timestamp`](Self::media_key_timestamp).
    ///
    /// # Errors
    /// Newsletter or unencrypted media (there is no first pass to skip), a media type
    /// WhatsApp has no path for, no randomness for the `media_id`, or a summary with more
    /// checkpoints than its length allows.
    pub fn prepare_known(&self, media: EncryptedMedia) -> io::Result<PreparedUpload> {
        if self.newsletter || !self.media_type.is_encrypted() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "prepare_known is for encrypted media only",
            ));
        }
        self.media_type.upload_path().map_err(io::Error::other)?;
        let most = (media.file_length / crate::encrypt::CHECKPOINT_INTERVAL).saturating_add(1);
        if media.checkpoints.len() as u64 > most {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the summary has more checkpoints than its length allows",
            ));
        }
        let media_id = match self.media_id {
            Some(id) => id,
            None => MediaId::generate().map_err(io::Error::other)?,
        };
        let mut spec =
            UploadSpec::encrypted(self.media_type.clone(), &media, media_id).with_key_reused(true);
        spec.media_key_timestamp = self.media_key_timestamp;
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
    /// The first pass's summary (key, MAC, checkpoints, sidecar); `None` for unencrypted
    /// media. What an upload cache keeps to skip the pass next time
    /// ([`UploadJob::prepare_known`]).
    pub fn encrypted_media(&self) -> Option<&EncryptedMedia> {
        self.media.as_ref()
    }

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
/// `.<name>.wamedia-partial` beside it (mode 0600; a shortened name with a hash when
/// `<name>` is long), with `.<name>.wamedia-partial.id` naming which download it belongs
/// to. A run interrupted by a network failure, a cancellation or `kill -9` leaves it; the
/// next run of the **same** download resumes from it
/// ([`Download::feed_prefix`](crate::Download::feed_prefix): the MAC still covers the whole
/// body), and a run of another download to the same target replaces it. It is renamed to
/// `target` only after verification and removed after an integrity failure.
///
/// Other users of the folder are hostile: neither file is ever followed through a symbolic
/// link or adopted unless it is a regular file of ours with one link
/// ([`outfile::open_private`](crate::outfile::open_private)), and the partial file is
/// locked for the whole run, so a second run to the same target is refused instead of
/// truncating what the first is writing. A `target` that is a device or a FIFO is written
/// into directly (never replaced: [`Partial::is_direct`]); a `target` that is a symbolic
/// link is refused (resolve it first to write through it).
#[derive(Debug)]
pub struct Partial {
    path: std::path::PathBuf,
    id_path: Option<std::path::PathBuf>,
    target: std::path::PathBuf,
    file: std::fs::File,
}

impl Partial {
    /// Opens the partial file of `spec` beside `target`: resumable when an earlier run of
    /// the same download left one, otherwise empty (a stale one is replaced).
    ///
    /// # Errors
    /// The folder cannot be written; `target` names no file, is a folder or a symbolic
    /// link; another run is writing the same target ([`io::ErrorKind::WouldBlock`]).
    pub fn open(target: &std::path::Path, spec: &crate::DownloadSpec) -> io::Result<Partial> {
        use crate::outfile::{existing, hidden_name, open_private, try_lock, Existing};
        let refuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {why}", target.display()),
            )
        };
        match existing(target)? {
            Existing::Symlink => {
                return Err(refuse(
                    "is a symbolic link; give the file it points to (it is never followed)",
                ))
            }
            Existing::Directory => return Err(refuse("is a folder; give a file name")),
            Existing::Special => {
                // A device or FIFO: never replaced by a rename, written into directly.
                let mut o = std::fs::OpenOptions::new();
                o.write(true);
                let file = o.open(target)?;
                return Ok(Partial {
                    path: target.to_owned(),
                    id_path: None,
                    target: target.to_owned(),
                    file,
                });
            }
            Existing::Missing | Existing::Regular => {}
        }
        let name = target
            .file_name()
            .ok_or_else(|| refuse("names no file"))?
            .to_string_lossy()
            .into_owned();
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let path = dir.join(hidden_name(&name, ".wamedia-partial"));
        let id_path = dir.join(hidden_name(&name, ".wamedia-partial.id"));
        let (mut file, _) = open_private(&path)?;
        if !try_lock(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another run is writing {} (its partial file {} is locked): wait for it to end, or write elsewhere",
                    target.display(),
                    path.display()
                ),
            ));
        }
        // Ours alone from here on: the id may be read, and the file cut.
        let id = spec.resume_id();
        let (mut id_file, _) = open_private(&id_path)?;
        let mut held = String::new();
        let same = (&mut id_file)
            .take(256)
            .read_to_string(&mut held)
            .is_ok_and(|_| held.trim() == id);
        if !same {
            file.set_len(0)?;
            id_file.set_len(0)?;
            use std::io::{Seek as _, Write as _};
            id_file.seek(std::io::SeekFrom::Start(0))?;
            id_file.write_all(id.as_bytes())?;
        }
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok(Partial {
            path,
            id_path: Some(id_path),
            target: target.to_owned(),
            file,
        })
    }

    /// True when the target is a device or a FIFO written into directly: what it received
    /// is unverified until the download returns `Ok`, and nothing can be taken back.
    pub fn is_direct(&self) -> bool {
        self.id_path.is_none()
    }

    /// Feeds what the partial file holds to `download` and cuts the file to what the
    /// machine keeps; returns that length (0 for a fresh start).
    ///
    /// # Errors
    /// Reading the file, or a machine that already started.
    pub fn resume(&mut self, download: &mut crate::Download) -> Result<u64, Error> {
        use std::io::{Seek as _, SeekFrom};
        if self.is_direct() {
            return Ok(0);
        }
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
    pub fn publish(mut self) -> io::Result<()> {
        use crate::outfile::{existing, Existing};
        if self.is_direct() {
            return std::io::Write::flush(&mut self.file);
        }
        self.file.sync_all()?;
        // Never renamed over what is not a regular file (it may have changed meanwhile).
        match existing(&self.target)? {
            Existing::Missing | Existing::Regular => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is no longer a regular file: the verified download stays in {}",
                        self.target.display(),
                        self.path.display()
                    ),
                ))
            }
        }
        std::fs::rename(&self.path, &self.target)?;
        if let Some(id) = &self.id_path {
            let _ = std::fs::remove_file(id);
        }
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
        if self.is_direct() {
            return;
        }
        let empty = self.file.metadata().map_or(true, |m| m.len() == 0);
        if integrity || refused || empty {
            let _ = std::fs::remove_file(&self.path);
            if let Some(id) = &self.id_path {
                let _ = std::fs::remove_file(id);
            }
        } else {
            let _ = self.file.sync_all();
        }
    }
}
