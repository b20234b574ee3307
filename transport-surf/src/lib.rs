//! # wamedia-surf — the wamedia machines over async HTTP (surf 2.3)
//!
//! The same surface as `wamedia-ureq`, as `async fn`s. All protocol decisions stay in the
//! [`wamedia`] core. Backoff waits on the runtime's timer (`async_std::task::sleep`), never
//! a blocking sleep; many transfers can run concurrently, each with its own machine.
//!
//! The HTTP backend is chosen by features passed through to surf: `h1-client-no-tls`
//! (default; plain http, for loopback tests and the local CDN), `h1-client` (async-h1 with
//! native-tls, i.e. the system OpenSSL) or `curl-client`.
//!
//! Upload bodies are produced by the core's `BodyReader` (re-encryption from the
//! plaintext) inside `poll_read`: a file read and AES over at most 256 KiB per poll,
//! short enough not to starve the executor, and what keeps memory flat.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
pub use wamedia::driver::Transfer;
use wamedia::driver::{feed, Error, Partial};
use wamedia::transfer::Machine;
use wamedia::{
    BodySpec, Cancel, Delete, DeleteResult, DeleteSpec, Download, DownloadOptions, DownloadResult,
    DownloadSpec, Input, MediaConnProvider, Output, PreparedUpload, Request, Upload, UploadJob,
    UploadOptions, UploadResult,
};

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Upload behaviour (retries, resume).
    pub upload: UploadOptions,
    /// Download behaviour (retries, size limit).
    pub download: DownloadOptions,
    /// The `User-Agent` header; `None` (the default) sends none (PROTOCOL §4).
    pub user_agent: Option<String>,
    /// Longest silence while reading an answer's body; each request's whole deadline
    /// comes from the machine, never past the transfer's total.
    pub idle_timeout: Duration,
    /// A non-seekable upload source is spooled in memory up to this many bytes, then to a
    /// temporary file.
    pub spool_in_memory: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            upload: UploadOptions::default(),
            download: DownloadOptions::default(),
            user_agent: None,
            idle_timeout: Duration::from_secs(30),
            spool_in_memory: 8 << 20,
        }
    }
}

/// An async client: one surf client and its settings.
#[derive(Clone)]
pub struct Client {
    http: surf::Client,
    opts: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// A seekable plaintext shared between the attempts of one upload.
type Shared = Arc<Mutex<Box<dyn ReadSeekSend>>>;

trait ReadSeekSend: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeekSend for T {}

struct SharedSource(Shared);

impl Read for SharedSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).read(buf)
    }
}

impl Seek for SharedSource {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).seek(pos)
    }
}

/// Turns the core's blocking body reader into an `AsyncRead` that counts and cancels.
struct BodyStream<R> {
    inner: R,
    sent: Arc<AtomicU64>,
    cancel: Cancel,
}

impl<R: Read + Unpin> AsyncRead for BodyStream<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.cancel.is_cancelled() {
            return Poll::Ready(Err(io::Error::other("cancelled")));
        }
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

impl Client {
    /// A client over surf's default backend (the one the features select), with no
    /// redirects and no middleware.
    pub fn new(opts: ClientOptions) -> Self {
        Client {
            http: surf::Client::new(),
            opts,
        }
    }

    /// Uploads from a seekable source (a file), regenerating the body on the fly.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, I/O, the provider, or cancellation.
    pub async fn upload<R: Read + Seek + Send + 'static>(
        &self,
        mut source: R,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        source.seek(SeekFrom::Start(0))?;
        let prepared = job.prepare(&mut source)?;
        self.upload_prepared(&prepared, source, conn, transfer)
            .await
    }

    /// Uploads bytes held in memory.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub async fn upload_bytes(
        &self,
        data: Vec<u8>,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        self.upload(io::Cursor::new(data), job, conn, transfer)
            .await
    }

    /// Uploads from a non-seekable reader, spooled first (memory, then a temporary file).
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub async fn upload_stream<R: Read>(
        &self,
        mut source: R,
        job: &UploadJob,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let mut spool = tempfile::SpooledTempFile::new(self.opts.spool_in_memory);
        io::copy(&mut source, &mut spool)?;
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
        let shared: Shared = Arc::new(Mutex::new(Box::new(source)));
        let outcome = self
            .drive(
                &mut up,
                conn,
                transfer,
                Some((prepared, &shared)),
                &mut NoSink,
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
            .drive(&mut d, conn, transfer, None, &mut NoSink)
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
    pub async fn download<W: AsyncWrite + Unpin>(
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

    async fn run_download<W: AsyncWrite + Unpin>(
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
    /// leaves the partial file, and the next run of the same download resumes from it,
    /// verified over the whole body ([`wamedia::driver::Partial`]); an integrity failure
    /// removes it.
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
        let mut partial = Partial::open(path, &spec)?;
        let mut d = self.download_machine(spec);
        let run = match partial.resume(&mut d) {
            Ok(_) => {
                let mut file = async_std::fs::File::from(partial.file().try_clone()?);
                let r = self.run_download(&mut d, conn, &mut file, transfer).await;
                drop(file);
                r
            }
            Err(e) => Err(e),
        };
        match run {
            Ok(r) => {
                partial.publish()?;
                Ok(r)
            }
            Err(e) => {
                partial.fail(&e);
                Err(e)
            }
        }
    }

    /// The drive loop: the machine decides, this moves bytes.
    async fn drive<M: Machine, W: AsyncWrite + Unpin>(
        &self,
        m: &mut M,
        conn: &mut (dyn MediaConnProvider + Send),
        transfer: &mut Transfer<'_>,
        upload: Option<(&PreparedUpload, &Shared)>,
        sink: &mut W,
    ) -> Result<M::Outcome, Error> {
        let mut current: Option<(wamedia::RequestId, surf::Response, Instant)> = None;
        // Answers to uploads are a few hundred bytes of JSON; media bodies want room.
        // Allocated on the first answer, so a thousand waiting uploads cost nothing here.
        let read_size = if upload.is_some() {
            4 * 1024
        } else {
            64 * 1024
        };
        let mut buf: Vec<u8> = Vec::new();
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
                            let headers = to_header_map(&resp);
                            if close_delimited(&resp) {
                                // async-h1 reads a body that ends with the connection as
                                // empty: say so, rather than let the media look corrupt.
                                let reason = "the CDN answered without Content-Length or chunking (a close-delimited body), which surf cannot read".to_string();
                                feed(m, transfer, Input::Failed { id, reason })?;
                                continue;
                            }
                            let status = u16::from(resp.status());
                            feed(
                                m,
                                transfer,
                                Input::Head {
                                    id,
                                    status,
                                    headers: &headers,
                                },
                            )?;
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
                        if transfer.cancel_handle().is_cancelled() {
                            return Err(Error::Cancelled);
                        }
                        let id = *id;
                        let left = deadline
                            .saturating_duration_since(Instant::now())
                            .min(self.opts.idle_timeout);
                        let input = match async_std::future::timeout(left, {
                            buf.resize(read_size, 0);
                            resp.read(&mut buf)
                        })
                        .await
                        {
                            Ok(Ok(0)) => Input::End { id },
                            Ok(Ok(n)) => Input::Body {
                                id,
                                data: &buf[..n],
                            },
                            Ok(Err(e)) => Input::Failed {
                                id,
                                reason: e.to_string(),
                            },
                            Err(_) => Input::Failed {
                                id,
                                reason: "timed out reading the body".into(),
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

    /// Sends `req`; the answer (or failure) and how many body bytes were read out.
    async fn send(
        &self,
        req: &Request,
        upload: Option<(&PreparedUpload, &Shared)>,
        transfer: &mut Transfer<'_>,
    ) -> (Result<surf::Response, String>, u64) {
        let sent = Arc::new(AtomicU64::new(0));
        let r = self.send_counted(req, upload, transfer, &sent).await;
        (r, sent.load(Ordering::Relaxed))
    }

    async fn send_counted(
        &self,
        req: &Request,
        upload: Option<(&PreparedUpload, &Shared)>,
        transfer: &mut Transfer<'_>,
        sent: &Arc<AtomicU64>,
    ) -> Result<surf::Response, String> {
        let url = surf::Url::parse(&req.url)
            .map_err(|e| format!("bad URL {}: {e}", req.redacted_url()))?;
        let method = match req.method {
            http::Method::POST => surf::http::Method::Post,
            http::Method::DELETE => surf::http::Method::Delete,
            _ => surf::http::Method::Get,
        };
        let mut r = surf::Request::new(method, url);
        for (k, v) in &req.headers {
            r.insert_header(k.as_str(), v.to_str().unwrap_or_default());
        }
        if let Some(ua) = &self.opts.user_agent {
            r.insert_header("user-agent", ua.as_str());
        }
        let span = match (req.body, upload) {
            (BodySpec::UploadBody { from, to }, Some((prepared, shared))) => {
                let reader = prepared
                    .body_reader(SharedSource(shared.clone()), from)
                    .map_err(|e| format!("reading the source: {e}"))?;
                let stream = BodyStream {
                    inner: reader.take(to.saturating_sub(from)),
                    sent: sent.clone(),
                    cancel: transfer.cancel_handle().clone(),
                };
                let len = usize::try_from(to.saturating_sub(from))
                    .map_err(|_| "body too large for this platform".to_string())?;
                r.set_body(surf::Body::from_reader(
                    futures_lite::io::BufReader::new(stream),
                    Some(len),
                ));
                Some((from, to))
            }
            _ => {
                if req.method == http::Method::POST {
                    r.set_body(surf::Body::empty());
                }
                None
            }
        };
        let left = req.deadline.saturating_duration_since(Instant::now());
        let mut fut = std::pin::pin!(self.http.send(r));
        let mut reported = 0;
        // Poll the request ourselves so progress is reported whenever it moves.
        let polled = futures_lite::future::poll_fn(|cx| {
            if let Some((from, to)) = span {
                let n = sent.load(Ordering::Relaxed);
                if n != reported {
                    reported = n;
                    transfer.report(from + n, Some(to));
                }
            }
            fut.as_mut().poll(cx)
        });
        match async_std::future::timeout(left, polled).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(e.to_string().replace(&req.url, &req.redacted_url())),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// Writes nothing: uploads have no plaintext output.
struct NoSink;

impl AsyncWrite for NoSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A body delimited only by the connection's end: no length, no chunking, and a status
/// that carries a body.
fn close_delimited(resp: &surf::Response) -> bool {
    let status = u16::from(resp.status());
    let bodiless = status < 200 || status == 204 || status == 304;
    !bodiless
        && resp.header("content-length").is_none()
        && resp.header("transfer-encoding").is_none()
}

fn to_header_map(resp: &surf::Response) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (name, values) in resp.iter() {
        for v in values.iter() {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_str().as_bytes()),
                http::HeaderValue::from_str(v.as_str()),
            ) {
                h.append(n, v);
            }
        }
    }
    h
}

/// Waits until `t` on the runtime's timer, in slices so a cancellation is noticed.
async fn sleep_until(t: Instant, cancel: &Cancel) -> Result<(), Error> {
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        async_std::task::sleep(left.min(Duration::from_millis(50))).await;
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
    client.upload(File::open(path)?, job, conn, transfer).await
}
