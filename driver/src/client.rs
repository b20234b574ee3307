//! The client: one HTTP adapter, one runtime, one media connection source, and the
//! calls (upload, download, delete) as builders you await.

use std::future::{Future, IntoFuture};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::{Observer, Partial, Transfer};
use wamedia::{
    Delete, DeleteResult, DeleteSpec, Download, DownloadOptions, DownloadResult, DownloadSpec,
    MediaId, MediaKey, MediaType, Upload, UploadOptions, UploadResult,
};

use crate::{Cancel, PreparedUpload, Threads, UploadJob};

use crate::body::{Plaintext, ReadSeekSend};
use crate::drive::{drive, FileSink, Sink};
use crate::source::{Conns, MediaConnSource};
use crate::{Error, Http, Runtime, UploadData};

/// Settings of a client, the same for every transport.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Time to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest silence on a request: no body bytes taken by the peer, no answer head, no
    /// answer bytes. A stalled or trickling peer is cut, and the machine resumes or
    /// retries. Each request's whole deadline comes from the machine.
    pub idle_timeout: Duration,
    /// The `User-Agent` header; `None` (the default) sends none, so nothing names this
    /// library or its HTTP client on the wire (PROTOCOL §4).
    pub user_agent: Option<String>,
    /// Upload behaviour (retries, resume).
    pub upload: UploadOptions,
    /// Download behaviour (retries, size limit, trust in a URL).
    pub download: DownloadOptions,
    /// A non-seekable upload source is spooled in memory up to this many bytes, then to a
    /// temporary file.
    pub spool_in_memory: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            user_agent: None,
            upload: UploadOptions::default(),
            download: DownloadOptions::default(),
            spool_in_memory: 8 << 20,
        }
    }
}

pub(crate) struct Inner<H, R> {
    pub(crate) http: H,
    pub(crate) rt: R,
    pub(crate) opts: Options,
    pub(crate) conns: Conns,
}

/// A client: an HTTP adapter `H` on runtime `R`, its [`Options`], and the
/// [`MediaConnSource`] it owns. Cheap to clone (clones share the connection pool and the
/// media connection); its futures are `Send`, so run as many transfers at once as you
/// like.
///
/// The transport crates name it: `wamedia_reqwest::Client`, `wamedia_surf::Client`, and
/// `wamedia_ureq::Client` (a blocking facade over it).
pub struct Client<H, R> {
    inner: Arc<Inner<H, R>>,
}

impl<H, R> Clone for Client<H, R> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<H, R> std::fmt::Debug for Client<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl<H: Http, R: Runtime + Default> Client<H, R> {
    /// A client with default [`Options`] that asks `source` for media connections.
    ///
    /// # Panics
    /// When the adapter cannot be set up with default options (no TLS backend); use
    /// [`with_options`](Self::with_options) to handle that as an error.
    pub fn new(source: impl MediaConnSource) -> Self {
        match Self::with_options(source, Options::default()) {
            Ok(c) => c,
            Err(e) => panic!("wamedia: the HTTP client cannot be set up: {e}"),
        }
    }

    /// A client with `opts`.
    ///
    /// # Errors
    /// Settings the HTTP client refuses (a `User-Agent` that is no header value).
    pub fn with_options(source: impl MediaConnSource, opts: Options) -> io::Result<Self> {
        let http = H::with_options(&opts)?;
        Ok(Self::from_parts(http, R::default(), source, opts))
    }
}

impl<H: Http, R: Runtime> Client<H, R> {
    /// A client over an adapter and a runtime you made.
    pub fn from_parts(http: H, rt: R, source: impl MediaConnSource, opts: Options) -> Self {
        Client {
            inner: Arc::new(Inner {
                http,
                rt,
                opts,
                conns: Conns::new(source),
            }),
        }
    }

    /// The settings this client was made with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// The HTTP adapter.
    pub fn http(&self) -> &H {
        &self.inner.http
    }

    /// Uploads `data` as `media_type`, encrypted under a fresh key (or as is, for a type
    /// WhatsApp does not encrypt). Await the call, or set options on it first:
    ///
    /// ```no_run
    /// # async fn run<H: wamedia_driver::Http, R: wamedia_driver::Runtime>(
    /// #     client: wamedia_driver::Client<H, R>,
    /// # ) -> Result<(), wamedia_driver::Error> {
    /// use wamedia::MediaType;
    /// let up = client.upload(std::path::Path::new("video.mp4"), MediaType::Video)
    ///     .progress(|done, total| eprintln!("{done}/{total:?}"))
    ///     .await?;
    /// println!("{}", up.direct_path);
    /// # Ok(()) }
    /// ```
    pub fn upload<'a>(
        &self,
        data: impl Into<UploadData>,
        media_type: MediaType,
    ) -> UploadCall<'a, H, R> {
        UploadCall {
            client: self.clone(),
            data: data.into(),
            job: UploadJob::new(media_type),
            prepared: None,
            transfer: Transfer::new(),
        }
    }

    /// Uploads `data`, whose first pass `prepared` was made before (by
    /// [`UploadJob::prepare`] or [`UploadJob::prepare_known`], as an upload cache does).
    pub fn upload_prepared<'a>(
        &self,
        prepared: PreparedUpload,
        data: impl Into<UploadData>,
    ) -> UploadCall<'a, H, R> {
        UploadCall {
            client: self.clone(),
            data: data.into(),
            job: UploadJob::new(prepared.spec.media_type.clone()),
            prepared: Some(prepared),
            transfer: Transfer::new(),
        }
    }

    /// Downloads, verifies and decrypts `spec` (made from a received message with
    /// [`DownloadSpec::from_message_json`](wamedia::DownloadSpec)); finish the call with
    /// [`to_path`](DownloadCall::to_path), [`to_vec`](DownloadCall::to_vec) or
    /// [`to_writer`](DownloadCall::to_writer).
    pub fn download<'a>(&self, spec: DownloadSpec) -> DownloadCall<'a, H, R> {
        DownloadCall {
            client: self.clone(),
            spec,
            range: None,
            transfer: Transfer::new(),
        }
    }

    /// Deletes a history-sync blob from the CDN (PROTOCOL §6).
    pub fn delete<'a>(&self, spec: DeleteSpec) -> DeleteCall<'a, H, R> {
        DeleteCall {
            client: self.clone(),
            spec,
            transfer: Transfer::new(),
        }
    }

    fn download_machine(&self, spec: DownloadSpec) -> Download {
        Download::new(
            spec,
            self.inner.opts.download.clone(),
            Instant::now(),
            SystemTime::now(),
        )
    }
}

/// A future the calls return, boxed so it can be named and is `Send`.
pub type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Options every call shares: progress, cancellation, an observer.
macro_rules! transfer_setters {
    () => {
        /// Calls `f(bytes_done, total)` as the body moves.
        pub fn progress(mut self, f: impl FnMut(u64, Option<u64>) + Send + 'a) -> Self {
            self.transfer = self.transfer.on_progress(f);
            self
        }
        /// Stops the call with [`Error::Cancelled`] once `cancel` is cancelled (dropping
        /// the future cancels too).
        pub fn cancel(mut self, cancel: Cancel) -> Self {
            self.transfer = self.transfer.with_cancel(cancel);
            self
        }
        /// Shows every exchange to `observer` (record mode).
        pub fn observe(mut self, observer: &'a mut dyn Observer) -> Self {
            self.transfer = self.transfer.observe(observer);
            self
        }
        /// Progress, cancellation and observer at once.
        pub fn transfer(mut self, transfer: Transfer<'a>) -> Self {
            self.transfer = transfer;
            self
        }
    };
}

/// An upload to set options on, then await (or [`wait`](Self::wait) on a blocking
/// client).
#[must_use = "an upload does nothing until it is awaited"]
pub struct UploadCall<'a, H, R> {
    client: Client<H, R>,
    data: UploadData,
    job: UploadJob,
    prepared: Option<PreparedUpload>,
    transfer: Transfer<'a>,
}

impl<'a, H: Http, R: Runtime> UploadCall<'a, H, R> {
    transfer_setters!();

    /// Encrypts under `key` (an interrupted upload run again: the first attempt asks the
    /// CDN whether it holds the body already).
    pub fn media_key(mut self, key: MediaKey) -> Self {
        self.job.media_key = Some(key);
        self
    }
    /// The reused key's timestamp (Unix seconds, the message's `mediaKeyTimestamp`).
    pub fn media_key_timestamp(mut self, unix_seconds: i64) -> Self {
        self.job.media_key_timestamp = Some(unix_seconds);
        self
    }
    /// Uses this `media_id` (to resume an upload with the id it had).
    pub fn media_id(mut self, id: MediaId) -> Self {
        self.job.media_id = Some(id);
        self
    }
    /// Channel (newsletter) media: uploaded unencrypted on the newsletter path.
    pub fn newsletter(mut self) -> Self {
        self.job.newsletter = true;
        self
    }
    /// Threads the first pass may use ([`Threads::Auto`]: a second one from 8 MiB on).
    pub fn threads(mut self, threads: Threads) -> Self {
        self.job.threads = threads;
        self
    }
    /// Whether to make a streaming sidecar for video and audio (the default: yes).
    pub fn streaming_sidecar(mut self, on: bool) -> Self {
        self.job.streaming_sidecar = on;
        self
    }
    /// An animated sticker's `firstFrameLength` (its first-frame sidecar is made too).
    pub fn first_frame_length(mut self, len: u64) -> Self {
        self.job.first_frame_length = Some(len);
        self
    }
    /// Every option at once, from a whole job (its media type replaces the call's).
    pub fn job(mut self, job: UploadJob) -> Self {
        self.job = job;
        self
    }

    /// Runs the upload.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, I/O, the source, or cancellation.
    pub async fn send(mut self) -> Result<UploadResult, Error> {
        let client = self.client.clone();
        let inner = &client.inner;
        let job = self.job;
        let prepared = self.prepared;
        let data = self.data;
        let spool = inner.opts.spool_in_memory;
        let Opened(prepared, source) = inner
            .rt
            .spawn_blocking(move || first_pass(data, spool, &job, prepared))
            .await?;
        let up = Upload::new(
            prepared.spec.clone(),
            inner.opts.upload.clone(),
            Instant::now(),
        );
        let plaintext = Plaintext::new(prepared, source, &inner.rt);
        let outcome = drive(
            inner,
            up,
            &mut self.transfer,
            Some(&plaintext),
            &mut Sink::None,
        )
        .await?;
        Ok(outcome?)
    }

    /// Runs the upload on the calling thread: for a client on
    /// [`Blocking`](crate::Blocking) (`wamedia-ureq`).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn wait(self) -> Result<UploadResult, Error> {
        crate::block_on(self.send())
    }
}

/// Opens or spools the plaintext and makes the first pass over it, unless it was made.
fn first_pass(
    data: UploadData,
    spool: usize,
    job: &UploadJob,
    prepared: Option<PreparedUpload>,
) -> Result<Opened, Error> {
    let mut source = data.into_source(spool)?;
    let prepared = match prepared {
        Some(p) => p,
        None => job.prepare(&mut source)?,
    };
    Ok(Opened(prepared, source))
}

/// A prepared upload and its plaintext. (A named type, not a tuple: with a trait object
/// in a tuple, rustc before 1.9x cannot prove the upload's future `Send`.)
struct Opened(PreparedUpload, Box<dyn ReadSeekSend + 'static>);

impl<'a, H: Http, R: Runtime> IntoFuture for UploadCall<'a, H, R> {
    type Output = Result<UploadResult, Error>;
    type IntoFuture = CallFuture<'a, UploadResult>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A download to set options on, then finish with where the plaintext goes.
#[must_use = "a download does nothing until it is finished with to_path, to_vec or to_writer"]
pub struct DownloadCall<'a, H, R> {
    client: Client<H, R>,
    spec: DownloadSpec,
    range: Option<Range<u64>>,
    transfer: Transfer<'a>,
}

impl<'a, H: Http, R: Runtime> DownloadCall<'a, H, R> {
    transfer_setters!();

    /// Only plaintext bytes `range` (a player seeking): just the ciphertext windows
    /// covering them are fetched, each verified against the message's streaming sidecar
    /// before its bytes are written. Needs the sidecar and `file_length` in the spec.
    pub fn range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }

    fn machine(&self) -> Result<Download, Error> {
        let d = self.client.download_machine(self.spec.clone());
        Ok(match &self.range {
            Some(r) => d.with_plaintext_range(r.start, r.end)?,
            None => d,
        })
    }

    /// Writes the plaintext into `out` as it comes. What reaches `out` before this
    /// returns `Ok` is **unverified** (with a range: verified window by window);
    /// [`to_path`](Self::to_path) publishes only verified files. `out` is written on the
    /// driving task: give a writer that does not block for long.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error (integrity failures included), I/O, the
    /// source, or cancellation.
    pub async fn to_writer(
        mut self,
        out: &mut (dyn Write + Send),
    ) -> Result<DownloadResult, Error> {
        let d = self.machine()?;
        let client = self.client.clone();
        let outcome = drive(
            &client.inner,
            d,
            &mut self.transfer,
            None,
            &mut Sink::Writer(out),
        )
        .await?;
        Ok(outcome?)
    }

    /// The verified plaintext in memory (bounded by the download options' size limit).
    ///
    /// # Errors
    /// As [`to_writer`](Self::to_writer).
    pub async fn to_vec(self) -> Result<(Vec<u8>, DownloadResult), Error> {
        let mut v = Vec::new();
        let r = self.to_writer(&mut v).await?;
        Ok((v, r))
    }

    /// Downloads into `.<name>.wamedia-partial` beside `path`, renamed to `path` only
    /// after verification: a failed download leaves nothing at `path`. An interrupted run
    /// (network, cancellation, a dropped future, a killed process) leaves the partial
    /// file, and the next run of the same download resumes from it, verified over the
    /// whole body; an integrity failure removes it. File work runs on the runtime's
    /// blocking threads.
    ///
    /// # Errors
    /// As [`to_writer`](Self::to_writer).
    pub async fn to_path(mut self, path: impl AsRef<Path>) -> Result<DownloadResult, Error> {
        let path: PathBuf = path.as_ref().to_owned();
        let client = self.client.clone();
        let inner = &client.inner;
        let d = self.machine()?;
        let spec = self.spec.clone();
        let (partial, d, resumed) = inner
            .rt
            .spawn_blocking(move || -> Result<_, Error> {
                let mut d = d;
                let mut partial = open_partial(&path, &spec)?;
                // When the prefix itself settles the download (a tampered partial failing
                // a sidecar window), `resume` stops feeding and the drive loop reports it.
                let resumed = partial.resume(&mut d);
                Ok((partial, d, resumed))
            })
            .await?;
        let mut partial = partial;
        let run = match resumed {
            Ok(_) => {
                let file = partial.file().try_clone()?;
                let mut sink = Sink::File(FileSink::new(file));
                drive(inner, d, &mut self.transfer, None, &mut sink)
                    .await
                    .and_then(|o| Ok(o?))
            }
            Err(e) => Err(e),
        };
        match run {
            Ok(r) => {
                inner.rt.spawn_blocking(move || partial.publish()).await?;
                Ok(r)
            }
            Err(e) => {
                let e = inner
                    .rt
                    .spawn_blocking(move || {
                        partial.fail(&e);
                        e
                    })
                    .await;
                Err(e)
            }
        }
    }
}

/// How long a download to a path waits for the lock of its partial file.
const PARTIAL_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the partial file beside `path`, waiting a little for its lock: a run of this
/// download whose future was just dropped may still have a file write in flight on a
/// blocking thread, holding the lock until that write ends. A run that keeps the lock
/// (another process writing the same target) is still refused.
fn open_partial(path: &Path, spec: &DownloadSpec) -> io::Result<Partial> {
    let until = Instant::now() + PARTIAL_LOCK_WAIT;
    loop {
        match Partial::open(path, spec) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A delete to set options on, then await.
#[must_use = "a delete does nothing until it is awaited"]
pub struct DeleteCall<'a, H, R> {
    client: Client<H, R>,
    spec: DeleteSpec,
    transfer: Transfer<'a>,
}

impl<'a, H: Http, R: Runtime> DeleteCall<'a, H, R> {
    transfer_setters!();

    /// Runs the delete.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, the source, or cancellation.
    pub async fn send(mut self) -> Result<DeleteResult, Error> {
        let client = self.client.clone();
        let inner = &client.inner;
        let d = Delete::new(self.spec, inner.opts.upload.retry.clone(), Instant::now());
        let outcome = drive(inner, d, &mut self.transfer, None, &mut Sink::None).await?;
        Ok(outcome?)
    }

    /// Runs the delete on the calling thread (a client on [`Blocking`](crate::Blocking)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn wait(self) -> Result<DeleteResult, Error> {
        crate::block_on(self.send())
    }
}

impl<'a, H: Http, R: Runtime> IntoFuture for DeleteCall<'a, H, R> {
    type Output = Result<DeleteResult, Error>;
    type IntoFuture = CallFuture<'a, DeleteResult>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
