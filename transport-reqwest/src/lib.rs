//! # wamedia-reqwest — the wamedia machines over reqwest, on Tokio (rustls)
//!
//! The same surface as `wamedia-ureq` and `wamedia-surf`, as `async fn`s that run on a
//! Tokio runtime. All protocol decisions (hosts, retries, resume, renewal, verification)
//! are made by the [`wamedia`] core; this crate only moves bytes:
//!
//! - **Upload bodies are streamed**, regenerated from the seekable plaintext by the core's
//!   body reader ([`PreparedUpload::body_reader`]) one 32 KiB chunk at a time on Tokio's
//!   blocking pool, and handed to hyper as they are made: a 4 GiB video needs no 4 GiB
//!   buffer, and no runtime thread waits on a disk or on AES. The first pass over the
//!   plaintext (hashes, MAC) runs on the blocking pool too.
//! - **Answers are read chunk by chunk**, each fed to the machine as it arrives; a body
//!   without a length is read to the connection's end.
//! - **Time**: each request's deadline comes from the machine ([`Request::deadline`]) and
//!   is enforced with Tokio's timer; [`ClientOptions::idle_timeout`] cuts a peer that stops
//!   taking the body or stops answering, [`ClientOptions::connect_timeout`] a connect that
//!   hangs; backoff waits on `tokio::time`.
//! - **HTTP**: HTTP/1.1, rustls with ring and the Mozilla roots (as `wamedia-ureq`), no
//!   redirects followed, no retries of its own, no cookies, no `User-Agent` unless
//!   [`ClientOptions::user_agent`] sets one. Non-2xx answers go to the machine.
//! - **Concurrency**: a [`Client`] is `Clone + Send + Sync` and cheap to clone; its
//!   connection pool is shared by every transfer it runs, and its futures are `Send`, so
//!   run as many transfers at once as you like (`tokio::spawn` each).
//!
//! ```no_run
//! use wamedia::{MediaConn, MediaType, StaticConn, UploadJob};
//! use wamedia_reqwest::{Client, Transfer};
//! # async fn run() -> Result<(), wamedia::driver::Error> {
//! let conn = MediaConn::from_json(r#"{"auth":"...","ttl":300,"hosts":["mmg.whatsapp.net"]}"#, std::time::Instant::now())
//!     .map_err(wamedia::driver::Error::MediaConn)?;
//! let client = Client::new(Default::default());
//! let file = std::fs::File::open("photo.jpg")?;
//! let up = client.upload(file, &UploadJob::new(MediaType::Image), &mut StaticConn(conn), &mut Transfer::new()).await?;
//! println!("{}", up.to_json());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
pub use wamedia::driver::Transfer;
use wamedia::driver::{feed, Error, Partial};
use wamedia::transfer::Machine;
use wamedia::{
    BodyReader, BodySpec, Cancel, Delete, DeleteResult, DeleteSpec, Download, DownloadOptions,
    DownloadResult, DownloadSpec, Input, MediaConnProvider, Output, PreparedUpload, Request,
    RequestId, Upload, UploadJob, UploadOptions, UploadResult,
};

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Time to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest silence on a request: no body bytes taken by the peer, no answer head, no
    /// answer bytes (a stalled or trickling peer is cut, and the machine resumes or
    /// retries). Each request's whole deadline comes from the machine, never past the
    /// transfer's total.
    pub idle_timeout: Duration,
    /// The `User-Agent` header; `None` (the default) sends none, so nothing names this
    /// library or reqwest on the wire (PROTOCOL §4).
    pub user_agent: Option<String>,
    /// Upload behaviour (retries, resume).
    pub upload: UploadOptions,
    /// Download behaviour (retries, size limit).
    pub download: DownloadOptions,
    /// A non-seekable upload source is spooled in memory up to this many bytes, then to a
    /// temporary file.
    pub spool_in_memory: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            user_agent: None,
            upload: UploadOptions::default(),
            download: DownloadOptions::default(),
            spool_in_memory: 8 << 20,
        }
    }
}

/// An async client: one reqwest client (and so one connection pool) and its settings.
/// Clones share the pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    opts: Arc<ClientOptions>,
}

/// Upload body bytes are made and handed to hyper this many at a time.
const CHUNK: usize = 32 * 1024;

/// A cancellation is noticed within this long, even while a peer is silent.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl Client {
    /// A client with `opts`: see [`try_new`](Self::try_new).
    ///
    /// # Panics
    /// When [`try_new`](Self::try_new) fails: a `user_agent` that is not a valid header
    /// value.
    pub fn new(opts: ClientOptions) -> Self {
        match Self::try_new(opts) {
            Ok(c) => c,
            Err(e) => panic!("wamedia-reqwest: {e}"),
        }
    }

    /// A client with `opts`: HTTP/1.1 over rustls (ring, the Mozilla root certificates of
    /// `webpki-roots`), no redirects followed, no retries (the machine decides them), no
    /// cookies, and a `User-Agent` only when `opts.user_agent` sets one. Proxies named by
    /// the usual environment variables (`HTTPS_PROXY`, `NO_PROXY`, …) are used, as with
    /// `wamedia-ureq`.
    ///
    /// # Errors
    /// A `user_agent` that is not a valid header value, or a TLS setup that cannot be
    /// built.
    pub fn try_new(opts: ClientOptions) -> io::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .connect_timeout(opts.connect_timeout)
            .http1_only();
        if let Some(ua) = &opts.user_agent {
            b = b.user_agent(ua.as_str());
        }
        let http = b.build().map_err(io::Error::other)?;
        Ok(Client {
            http,
            opts: Arc::new(opts),
        })
    }

    /// The settings this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Uploads from a seekable source (a file): one pass to hash and encrypt, then the
    /// body is regenerated on the fly while it is sent, so memory stays flat. Both read
    /// `source` on Tokio's blocking pool.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, I/O, the provider, or cancellation.
    pub async fn upload<R: Read + Seek + Send + 'static>(
        &self,
        source: R,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let job = job.clone();
        let (prepared, source) = blocking(move || {
            let mut source = source;
            source.seek(SeekFrom::Start(0))?;
            let prepared = job.prepare(&mut source)?;
            Ok((prepared, source))
        })
        .await?;
        self.upload_prepared(&prepared, source, conn, transfer)
            .await
    }

    /// Uploads bytes held in memory.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub async fn upload_bytes(
        &self,
        data: impl Into<Bytes>,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        self.upload(io::Cursor::new(data.into()), job, conn, transfer)
            .await
    }

    /// Uploads from a non-seekable blocking reader (a pipe, stdin): it is spooled first, on
    /// Tokio's blocking pool, in memory up to [`ClientOptions::spool_in_memory`], then in
    /// a temporary file.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub async fn upload_stream<R: Read + Send + 'static>(
        &self,
        source: R,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let limit = self.opts.spool_in_memory;
        let spool = blocking(move || {
            let mut source = source;
            let mut spool = tempfile::SpooledTempFile::new(limit);
            io::copy(&mut source, &mut spool)?;
            Ok(spool)
        })
        .await?;
        self.upload(spool, job, conn, transfer).await
    }

    /// Runs the upload machine for a prepared upload whose plaintext is `source`.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub async fn upload_prepared<R: Read + Seek + Send + 'static>(
        &self,
        prepared: &PreparedUpload,
        source: R,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let mut up = Upload::new(
            prepared.spec.clone(),
            self.opts.upload.clone(),
            Instant::now(),
        );
        let plaintext = Plaintext::new(prepared.clone(), source);
        let outcome = self
            .drive(
                &mut up,
                conn,
                transfer,
                Some(&plaintext),
                &mut tokio::io::sink(),
            )
            .await?;
        Ok(outcome?)
    }

    /// Deletes a history-sync blob from the CDN (PROTOCOL §6).
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, the provider, or cancellation.
    pub async fn delete(
        &self,
        spec: DeleteSpec,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<DeleteResult, Error> {
        let mut d = Delete::new(spec, self.opts.upload.retry.clone(), Instant::now());
        let outcome = self
            .drive(&mut d, conn, transfer, None, &mut tokio::io::sink())
            .await?;
        Ok(outcome?)
    }

    /// Downloads, verifies and decrypts into `out`. What reaches `out` before this returns
    /// `Ok` is **unverified**; [`download_to_path`](Self::download_to_path) publishes only
    /// verified files.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error (integrity failures included), I/O, the
    /// provider, or cancellation.
    pub async fn download<W: AsyncWrite + Unpin + Send>(
        &self,
        spec: DownloadSpec,
        conn: &mut (dyn MediaConnProvider + Send),
        out: &mut W,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let mut d = self.download_machine(spec);
        self.run_download(&mut d, conn, out, transfer).await
    }

    fn download_machine(&self, spec: DownloadSpec) -> Download {
        Download::new(
            spec,
            self.opts.download.clone(),
            Instant::now(),
            SystemTime::now(),
        )
    }

    async fn run_download<W: AsyncWrite + Unpin + Send>(
        &self,
        d: &mut Download,
        conn: &mut (dyn MediaConnProvider + Send),
        out: &mut W,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let outcome = self.drive(d, conn, transfer, None, out).await?;
        out.flush().await?;
        Ok(outcome?)
    }

    /// Downloads into `.<name>.wamedia-partial` beside `path`, renamed to `path` only after
    /// verification: a failed download leaves nothing at `path`. An interrupted run
    /// (network, cancellation, a killed process) leaves the partial file, and the next run
    /// of the same download resumes from it, verified over the whole body
    /// ([`wamedia::driver::Partial`]); an integrity failure removes it. File work (reading
    /// back the partial file, writing, syncing, renaming) runs on Tokio's blocking pool.
    ///
    /// # Errors
    /// As [`download`](Self::download).
    pub async fn download_to_path(
        &self,
        spec: DownloadSpec,
        conn: &mut (dyn MediaConnProvider + Send),
        path: &Path,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let path = path.to_owned();
        let mut d = self.download_machine(spec.clone());
        // Opening the partial file and feeding back what it holds (up to the whole body)
        // read and decrypt: blocking work.
        let (partial, d, resumed) = blocking(move || {
            let mut partial = Partial::open(&path, &spec)?;
            // When the prefix itself settles the download (a tampered partial failing a
            // sidecar window), `resume` stops feeding and the drive loop reports it.
            let resumed = partial.resume(&mut d);
            Ok((partial, d, resumed))
        })
        .await?;
        let mut d = d;
        let mut partial = partial;
        let run = match resumed {
            Ok(_) => {
                let mut file = tokio::fs::File::from_std(partial.file().try_clone()?);
                let r = self.run_download(&mut d, conn, &mut file, transfer).await;
                // Whatever happened, what was written reaches the file before it is judged.
                let flushed = file.flush().await;
                drop(file);
                match (r, flushed) {
                    (Ok(_), Err(e)) => Err(Error::Io(e)),
                    (r, _) => r,
                }
            }
            Err(e) => Err(e),
        };
        match run {
            Ok(r) => {
                blocking(move || Ok(partial.publish()?)).await?;
                Ok(r)
            }
            Err(e) => {
                let e = blocking(move || {
                    partial.fail(&e);
                    Ok(e)
                })
                .await?;
                Err(e)
            }
        }
    }

    /// The drive loop: the machine decides, this moves bytes.
    async fn drive<M: Machine, W: AsyncWrite + Unpin + Send>(
        &self,
        m: &mut M,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
        upload: Option<&Plaintext>,
        sink: &mut W,
    ) -> Result<M::Outcome, Error> {
        let mut current: Option<(RequestId, reqwest::Response, Instant)> = None;
        loop {
            let now = Instant::now();
            match m.poll_output(now) {
                Output::Done(o) => return Ok(o),
                Output::Plaintext(p) | Output::Verified(p) => sink.write_all(p).await?,
                Output::Progress { done, total } => transfer.report(done, total),
                Output::NeedMediaConn { force } => {
                    let c = conn.media_conn(force, now).map_err(Error::MediaConn)?;
                    if let Some(o) = transfer.observer() {
                        o.media_conn(&c, force);
                    }
                    m.handle_input(Instant::now(), Input::MediaConn(c))?;
                }
                Output::Transmit(req) => {
                    if transfer.cancel_handle().is_cancelled() {
                        return Err(Error::Cancelled);
                    }
                    let id = req.id;
                    if let Some(o) = transfer.observer() {
                        o.request(&req);
                    }
                    let (result, sent) = self.send(&req, upload, transfer).await;
                    if sent > 0 {
                        // The machine needs to know what moved (to resume on the same host).
                        m.handle_input(Instant::now(), Input::Sent { id, bytes: sent })?;
                    }
                    match result {
                        Ok(resp) => {
                            let input = Input::Head {
                                id,
                                status: resp.status().as_u16(),
                                headers: resp.headers(),
                            };
                            feed(m, transfer, input)?;
                            current = Some((id, resp, req.deadline));
                        }
                        Err(_) if transfer.cancel_handle().is_cancelled() => {
                            return Err(Error::Cancelled)
                        }
                        Err(reason) => feed(m, transfer, Input::Failed { id, reason })?,
                    }
                }
                Output::Wait(t) => match current.as_mut() {
                    Some((id, resp, deadline)) => {
                        let id = *id;
                        let next = watched(
                            resp.chunk(),
                            *deadline,
                            self.opts.idle_timeout,
                            transfer.cancel_handle(),
                        )
                        .await;
                        let chunk;
                        let input = match next {
                            Ok(Ok(Some(c))) => {
                                chunk = c;
                                Input::Body { id, data: &chunk }
                            }
                            Ok(Ok(None)) => Input::End { id },
                            Ok(Err(e)) => Input::Failed {
                                id,
                                reason: describe(e),
                            },
                            Err(Stop::Cancelled) => return Err(Error::Cancelled),
                            Err(stop) => Input::Failed {
                                id,
                                reason: stop.reason(self.opts.idle_timeout, "answer"),
                            },
                        };
                        if !matches!(input, Input::Body { .. }) {
                            current = None;
                        }
                        feed(m, transfer, input)?;
                    }
                    None => {
                        sleep_until(t, transfer.cancel_handle()).await?;
                        m.handle_input(Instant::now(), Input::Timeout)?;
                    }
                },
                // An output of a later wamedia: nothing to do (like progress).
                _ => {}
            }
        }
    }

    /// Sends `req` and waits for its answer's head; the answer (or why none came) and how
    /// many body bytes were handed to the connection.
    async fn send(
        &self,
        req: &Request,
        upload: Option<&Plaintext>,
        transfer: &mut Transfer<'_>,
    ) -> (Result<reqwest::Response, String>, u64) {
        let method = match req.method {
            http::Method::POST => reqwest::Method::POST,
            http::Method::DELETE => reqwest::Method::DELETE,
            _ => reqwest::Method::GET,
        };
        let url = match reqwest::Url::parse(&req.url) {
            Ok(u) => u,
            Err(e) => return (Err(format!("bad URL {}: {e}", req.redacted_url())), 0),
        };
        let mut r = reqwest::Request::new(method, url);
        *r.headers_mut() = req.headers.clone();
        let cancel = transfer.cancel_handle().clone();
        let progress = Arc::new(Progress::default());
        let span = match (req.body, upload) {
            (BodySpec::UploadBody { from, to }, Some(plaintext)) => {
                // Content-Length is among the machine's headers: hyper sends exactly that.
                let stream = BodyStream {
                    next: Next::Start(plaintext.attempt(from, to.saturating_sub(from))),
                    last: None,
                    progress: progress.clone(),
                    cancel: cancel.clone(),
                };
                *r.body_mut() = Some(reqwest::Body::wrap_stream(stream));
                Some((from, to))
            }
            _ => None,
        };
        let mut reported = 0;
        let mut report = |transfer: &mut Transfer<'_>| {
            let n = progress.sent.load(Ordering::Relaxed);
            if let Some((from, to)) = span {
                if n != reported {
                    reported = n;
                    transfer.report(from.saturating_add(n), Some(to));
                }
            }
            n
        };
        let mut fut = std::pin::pin!(self.http.execute(r));
        let mut deadline = std::pin::pin!(tokio::time::sleep_until(req.deadline.into()));
        let idle = self.opts.idle_timeout;
        let mut quiet = std::pin::pin!(tokio::time::sleep_until(later(idle)));
        let mut tick = ticker();
        let mut last = 0;
        let outcome = std::future::poll_fn(|cx| {
            progress.waker.register(cx.waker());
            let n = report(transfer);
            if n != last {
                last = n;
                quiet.as_mut().reset(later(idle));
            }
            if cancel.is_cancelled() {
                return Poll::Ready(Err(Stop::Cancelled));
            }
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(r));
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Stop::Deadline));
            }
            if quiet.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Stop::Idle));
            }
            while tick.poll_tick(cx).is_ready() {}
            Poll::Pending
        })
        .await;
        let sent = report(transfer);
        let result = match outcome {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(describe(e).replace(&req.url, &req.redacted_url())),
            Err(stop) => Err(stop.reason(idle, "request")),
        };
        (result, sent)
    }
}

/// Why waiting on the network stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The request's deadline passed.
    Deadline,
    /// Nothing moved for `idle_timeout`.
    Idle,
    /// The transfer was cancelled.
    Cancelled,
}

impl Stop {
    fn reason(self, idle: Duration, what: &str) -> String {
        match self {
            Stop::Deadline => format!("timed out: the {what} passed its deadline"),
            Stop::Idle => format!("timed out: nothing moved for {} ms", idle.as_millis()),
            Stop::Cancelled => "cancelled".into(),
        }
    }
}

/// Awaits `fut` within the request's `deadline`, at most `idle` of silence, and until
/// `cancel`.
async fn watched<T>(
    fut: impl Future<Output = T>,
    deadline: Instant,
    idle: Duration,
    cancel: &Cancel,
) -> Result<T, Stop> {
    if cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    let now = Instant::now();
    let (until, stop) = match now.checked_add(idle) {
        Some(i) if i < deadline => (i, Stop::Idle),
        _ => (deadline, Stop::Deadline),
    };
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(until.into()));
    let mut tick = ticker();
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(stop));
        }
        if cancel.is_cancelled() {
            return Poll::Ready(Err(Stop::Cancelled));
        }
        while tick.poll_tick(cx).is_ready() {}
        Poll::Pending
    })
    .await
}

/// `d` from now on Tokio's clock; a year for a duration beyond what the clock holds.
fn later(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// Wakes a waiting request every [`CANCEL_POLL`], so a cancellation is seen even while
/// the peer is silent. Missed ticks are not made up.
fn ticker() -> tokio::time::Interval {
    let mut t = tokio::time::interval(CANCEL_POLL);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A reqwest error with its causes, without the URL (which may carry the auth token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// Runs blocking work (file I/O, hashing, AES) on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(io::Error::other(format!("blocking task failed: {e}"))))?
}

/// Waits until `t` on Tokio's timer, in slices so a cancellation is noticed.
async fn sleep_until(t: Instant, cancel: &Cancel) -> Result<(), Error> {
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(CANCEL_POLL)).await;
    }
}

/// A seekable plaintext shared between the attempts of one upload, and what regenerates
/// its body. Each attempt reads through its own [`AttemptSource`]; starting an attempt
/// retires the previous one, so a chunk still being made for an abandoned attempt can
/// never move the position under the new one.
struct Plaintext {
    prepared: Arc<PreparedUpload>,
    shared: Arc<Mutex<Current>>,
}

struct Current {
    source: Box<dyn ReadSeekSend>,
    attempt: u64,
}

trait ReadSeekSend: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeekSend for T {}

impl Plaintext {
    fn new<R: Read + Seek + Send + 'static>(prepared: PreparedUpload, source: R) -> Self {
        Plaintext {
            prepared: Arc::new(prepared),
            shared: Arc::new(Mutex::new(Current {
                source: Box::new(source),
                attempt: 0,
            })),
        }
    }

    /// What the body of a new attempt, `len` bytes from `from`, is made from.
    fn attempt(&self, from: u64, len: u64) -> Box<Chunks> {
        let mut c = lock(&self.shared);
        c.attempt = c.attempt.wrapping_add(1);
        Box::new(Chunks {
            prepared: self.prepared.clone(),
            source: Some(AttemptSource {
                shared: self.shared.clone(),
                attempt: c.attempt,
            }),
            from,
            left: len,
            reader: None,
        })
    }
}

fn lock(m: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The plaintext as one attempt sees it: refuses to move once a newer attempt started.
struct AttemptSource {
    shared: Arc<Mutex<Current>>,
    attempt: u64,
}

impl AttemptSource {
    fn with<T>(&self, f: impl FnOnce(&mut dyn ReadSeekSend) -> io::Result<T>) -> io::Result<T> {
        let mut c = lock(&self.shared);
        if c.attempt != self.attempt {
            return Err(io::Error::other("a newer attempt took over the source"));
        }
        f(&mut *c.source)
    }
}

impl Read for AttemptSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|s| s.read(buf))
    }
}

impl Seek for AttemptSource {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.with(|s| s.seek(pos))
    }
}

/// The body of one attempt, made chunk by chunk (blocking work: reads and AES).
struct Chunks {
    prepared: Arc<PreparedUpload>,
    source: Option<AttemptSource>,
    from: u64,
    left: u64,
    reader: Option<BodyReader<AttemptSource>>,
}

impl Chunks {
    /// The next chunk, at most [`CHUNK`] bytes; empty at the end.
    fn next_chunk(&mut self) -> io::Result<Bytes> {
        if self.left == 0 {
            return Ok(Bytes::new());
        }
        let reader = match (&mut self.reader, self.source.take()) {
            (Some(r), _) => r,
            (None, Some(source)) => self
                .reader
                .insert(self.prepared.body_reader(source, self.from)?),
            (None, None) => return Err(io::Error::other("the body reader failed earlier")),
        };
        let n = usize::try_from(self.left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; n];
        reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::other("the source ended before the body did (was it changed?)")
            } else {
                e
            }
        })?;
        self.left = self.left.saturating_sub(n as u64);
        if self.left == 0 {
            // The reader's buffers go now, not when the request ends.
            self.reader = None;
        }
        Ok(Bytes::from(buf))
    }

    /// One blocking step: the next chunk, and the last one with it when no more than a
    /// chunk would be left, so the reader (and its buffers) never waits in the blocking
    /// pool's queue for the tail of a small body.
    fn step(&mut self) -> io::Result<(Bytes, Option<Bytes>)> {
        let first = self.next_chunk()?;
        let last = if self.left > 0 && self.left <= CHUNK as u64 {
            Some(self.next_chunk()?)
        } else {
            None
        };
        Ok((first, last))
    }

    /// Makes the next chunk (or two) on the blocking pool.
    fn spawn(mut self: Box<Self>) -> JoinHandle<(Box<Chunks>, Made)> {
        tokio::task::spawn_blocking(move || {
            let r = self.step();
            (self, r)
        })
    }
}

/// What the body stream tells the request's driver: bytes handed to the connection, and
/// a waker to report them.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    waker: AtomicWaker,
}

/// What one blocking step made: a chunk, and maybe the last one too.
type Made = io::Result<(Bytes, Option<Bytes>)>;

/// Where a body stream is.
enum Next {
    /// Nothing being made (the first chunk is not asked for yet).
    Start(Box<Chunks>),
    /// A chunk is being made on the blocking pool.
    Making(JoinHandle<(Box<Chunks>, Made)>),
    /// The end, or a failure already reported.
    Done,
}

/// An upload body as a stream of chunks made on the blocking pool: the next chunk is made
/// while the connection sends the current one, so at most two are held at a time.
struct BodyStream {
    next: Next,
    /// The body's last chunk, made with the one before it.
    last: Option<Bytes>,
    progress: Arc<Progress>,
    cancel: Cancel,
}

impl futures_core::Stream for BodyStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.cancel.is_cancelled() && !matches!(self.next, Next::Done) {
                self.next = Next::Done;
                return Poll::Ready(Some(Err(io::Error::other("cancelled"))));
            }
            if let Some(bytes) = self.last.take() {
                return Poll::Ready(Some(Ok(self.handed(bytes))));
            }
            match std::mem::replace(&mut self.next, Next::Done) {
                Next::Done => return Poll::Ready(None),
                Next::Start(chunks) => self.next = Next::Making(chunks.spawn()),
                Next::Making(mut h) => {
                    let (chunks, made) = match Pin::new(&mut h).poll(cx) {
                        Poll::Pending => {
                            self.next = Next::Making(h);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(r)) => r,
                        Poll::Ready(Err(e)) => {
                            let e = io::Error::other(format!("making the body failed: {e}"));
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    let bytes = match made {
                        Ok((b, _)) if b.is_empty() => return Poll::Ready(None),
                        Ok((b, last)) => {
                            self.last = last;
                            b
                        }
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    };
                    if chunks.left > 0 {
                        self.next = Next::Making(chunks.spawn());
                    }
                    return Poll::Ready(Some(Ok(self.handed(bytes))));
                }
            }
        }
    }
}

impl BodyStream {
    /// Counts `bytes` as handed to the connection and wakes the request's driver.
    fn handed(&self, bytes: Bytes) -> Bytes {
        let sent = &self.progress.sent;
        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.progress.waker.wake();
        bytes
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        // A chunk not yet started is of no use now (one already running finishes alone).
        if let Next::Making(h) = &self.next {
            h.abort();
        }
    }
}

/// Opens `path` and uploads it.
///
/// # Errors
/// As [`Client::upload`].
pub async fn upload_file(
    client: &Client,
    path: &Path,
    job: &UploadJob,
    conn: &mut (dyn MediaConnProvider + Send),
    transfer: &mut Transfer<'_>,
) -> Result<UploadResult, Error> {
    let file = tokio::fs::File::open(path).await?.into_std().await;
    client.upload(file, job, conn, transfer).await
}
