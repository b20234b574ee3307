//! # wamedia-ureq — the wamedia machines over blocking HTTP (ureq 3, rustls)
//!
//! All protocol decisions (hosts, retries, resume, renewal, verification) are made by the
//! [`wamedia`] core; this crate only moves bytes.
//!
//! ```no_run
//! use wamedia::{MediaConn, MediaType, StaticConn, UploadJob};
//! use wamedia_ureq::{Client, Transfer};
//! # fn main() -> Result<(), wamedia::driver::Error> {
//! let conn = MediaConn::from_json(r#"{"auth":"...","ttl":300,"hosts":["mmg.whatsapp.net"]}"#, std::time::Instant::now())
//!     .map_err(wamedia::driver::Error::MediaConn)?;
//! let client = Client::new(Default::default());
//! let file = std::fs::File::open("photo.jpg")?;
//! let up = client.upload(file, &UploadJob::new(MediaType::Image), &mut StaticConn(conn), &mut Transfer::new())?;
//! println!("{}", up.to_json());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

pub use wamedia::driver::Transfer;
use wamedia::driver::{feed, Counting, Error, Partial};
use wamedia::transfer::Machine;
use wamedia::{
    BodySpec, Cancel, Delete, DeleteResult, DeleteSpec, Download, DownloadOptions, DownloadResult,
    DownloadSpec, Input, MediaConnProvider, Output, PreparedUpload, Request, Upload, UploadJob,
    UploadOptions, UploadResult,
};

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading or writing a connection (a trickling peer is cut,
    /// and the machine resumes or retries). Each request's whole deadline comes from the
    /// machine, never past the transfer's total.
    pub idle_timeout: Duration,
    /// The `User-Agent` header; `None` (the default) sends none, so nothing names this
    /// library or ureq on the wire (PROTOCOL §4).
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

/// A blocking client: one ureq agent and its settings.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
}

impl Client {
    /// A client with `opts`. Non-2xx answers go to the machine (never ureq errors), no
    /// redirects are followed, and response bodies are streamed without ureq's 10 MB cap.
    pub fn new(opts: ClientOptions) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_per_read(Some(opts.idle_timeout))
            .timeout_per_write(Some(opts.idle_timeout))
            .user_agent(match &opts.user_agent {
                Some(ua) => {
                    ureq::config::AutoHeaderValue::Provided(std::sync::Arc::new(ua.clone()))
                }
                None => ureq::config::AutoHeaderValue::None,
            })
            .build()
            .new_agent();
        Client { agent, opts }
    }

    /// Uploads from a seekable source (a file): one pass to hash and encrypt, then the
    /// body is regenerated on the fly while sending, so memory stays flat.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, I/O, the provider, or cancellation.
    pub fn upload<R: Read + Seek>(
        &self,
        mut source: R,
        job: &UploadJob,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        source.seek(SeekFrom::Start(0))?;
        let prepared = job.prepare(&mut source)?;
        self.upload_prepared(&prepared, source, conn, transfer)
    }

    /// Uploads bytes held in memory.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub fn upload_bytes(
        &self,
        data: &[u8],
        job: &UploadJob,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        self.upload(io::Cursor::new(data), job, conn, transfer)
    }

    /// Uploads from a non-seekable reader (a pipe): it is spooled first, in memory up to
    /// [`ClientOptions::spool_in_memory`], then in a temporary file.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub fn upload_stream<R: Read>(
        &self,
        mut source: R,
        job: &UploadJob,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let mut spool = tempfile::SpooledTempFile::new(self.opts.spool_in_memory);
        io::copy(&mut source, &mut spool)?;
        self.upload(spool, job, conn, transfer)
    }

    /// Runs the upload machine for a prepared upload whose plaintext is `source`.
    ///
    /// # Errors
    /// As [`upload`](Self::upload).
    pub fn upload_prepared<R: Read + Seek>(
        &self,
        prepared: &PreparedUpload,
        mut source: R,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
    ) -> Result<UploadResult, Error> {
        let mut up = Upload::new(
            prepared.spec.clone(),
            self.opts.upload.clone(),
            Instant::now(),
        );
        let outcome = self.drive(
            &mut up,
            conn,
            transfer,
            Some((prepared, &mut source)),
            &mut |_| Ok(()),
        )?;
        Ok(outcome?)
    }

    /// Plaintext bytes `start..end` of the media (a player seeking), into `out` as they
    /// are verified: only the ciphertext windows covering them are fetched, each checked
    /// against the message's streaming sidecar (`spec.streaming_sidecar`, required, with
    /// `file_length`) before its bytes reach `out`
    /// ([`Download::with_plaintext_range`]).
    ///
    /// # Errors
    /// [`Error`]: a range that cannot be made, the machine's final error, I/O, the
    /// provider, or cancellation.
    pub fn download_range(
        &self,
        spec: DownloadSpec,
        start: u64,
        end: u64,
        conn: &mut dyn MediaConnProvider,
        out: &mut dyn Write,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let mut d = self
            .download_machine(spec)
            .with_plaintext_range(start, end)?;
        self.run_download(&mut d, conn, out, transfer)
    }

    /// Deletes a history-sync blob from the CDN (PROTOCOL §6).
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, the provider, or cancellation.
    pub fn delete(
        &self,
        spec: DeleteSpec,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
    ) -> Result<DeleteResult, Error> {
        let mut d = Delete::new(spec, self.opts.upload.retry.clone(), Instant::now());
        let outcome = self.drive(&mut d, conn, transfer, None, &mut |_| Ok(()))?;
        Ok(outcome?)
    }

    /// Downloads, verifies and decrypts into `out`. What reaches `out` before this returns
    /// `Ok` is **unverified**; use [`download_to_path`](Self::download_to_path) to publish
    /// only verified files.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error (integrity failures included), I/O, the
    /// provider, or cancellation.
    pub fn download(
        &self,
        spec: DownloadSpec,
        conn: &mut dyn MediaConnProvider,
        out: &mut dyn Write,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let mut d = self.download_machine(spec);
        self.run_download(&mut d, conn, out, transfer)
    }

    fn download_machine(&self, spec: DownloadSpec) -> Download {
        Download::new(
            spec,
            self.opts.download.clone(),
            Instant::now(),
            SystemTime::now(),
        )
    }

    fn run_download(
        &self,
        d: &mut Download,
        conn: &mut dyn MediaConnProvider,
        out: &mut dyn Write,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let outcome = self.drive(d, conn, transfer, None, &mut |p| out.write_all(p))?;
        out.flush()?;
        Ok(outcome?)
    }

    /// Downloads into `.<name>.wamedia-partial` beside `path` and renames it to `path`
    /// only after verification: a failed download leaves nothing at `path`. An
    /// interrupted run (network, cancellation, `kill -9`) leaves the partial file, and the
    /// next run of the same download resumes from it, verified over the whole body
    /// ([`wamedia::driver::Partial`]); an integrity failure removes it.
    ///
    /// # Errors
    /// As [`download`](Self::download).
    pub fn download_to_path(
        &self,
        spec: DownloadSpec,
        conn: &mut dyn MediaConnProvider,
        path: &Path,
        transfer: &mut Transfer<'_>,
    ) -> Result<DownloadResult, Error> {
        let mut partial = Partial::open(path, &spec)?;
        let mut d = self.download_machine(spec);
        let run = partial.resume(&mut d).and_then(|_| {
            let mut w = io::BufWriter::new(partial.file());
            self.run_download(&mut d, conn, &mut w, transfer)
        });
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
    fn drive<M: Machine>(
        &self,
        m: &mut M,
        conn: &mut dyn MediaConnProvider,
        transfer: &mut Transfer<'_>,
        mut upload: Option<(&PreparedUpload, &mut dyn ReadSeek)>,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<M::Outcome, Error> {
        let mut current: Option<(wamedia::RequestId, ureq::BodyReader<'static>)> = None;
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
                Output::Plaintext(p) | Output::Verified(p) => sink(p)?,
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
                    let source = upload.as_mut().map(|(p, s)| (*p, &mut **s));
                    let (result, sent) = self.send(&req, source, transfer);
                    if sent > 0 {
                        // The machine needs to know what moved (to resume on the same host).
                        m.handle_input(Instant::now(), Input::Sent { id, bytes: sent })?;
                    }
                    match result {
                        Ok(resp) => {
                            let (parts, body) = resp.into_parts();
                            let input = Input::Head {
                                id,
                                status: parts.status.as_u16(),
                                headers: &parts.headers,
                            };
                            feed(m, transfer, input)?;
                            current = Some((id, body.into_reader()));
                        }
                        Err(e) if transfer.cancel_handle().is_cancelled() => {
                            let _ = e;
                            return Err(Error::Cancelled);
                        }
                        Err(e) => {
                            let reason = redact(&e.to_string(), &req);
                            feed(m, transfer, Input::Failed { id, reason })?;
                        }
                    }
                }
                Output::Wait(t) => match current.as_mut() {
                    Some((id, reader)) => {
                        if transfer.cancel_handle().is_cancelled() {
                            return Err(Error::Cancelled);
                        }
                        let id = *id;
                        buf.resize(read_size, 0);
                        let input = match reader.read(&mut buf) {
                            Ok(0) => Input::End { id },
                            Ok(n) => Input::Body {
                                id,
                                data: &buf[..n],
                            },
                            Err(e) => Input::Failed {
                                id,
                                reason: e.to_string(),
                            },
                        };
                        if !matches!(input, Input::Body { .. }) {
                            current = None;
                        }
                        feed(m, transfer, input)?;
                    }
                    None => {
                        sleep_until(t, transfer.cancel_handle())?;
                        m.handle_input(Instant::now(), Input::Timeout)?;
                    }
                },
                // An output of a later wamedia: nothing to do (like progress).
                _ => {}
            }
        }
    }

    /// Sends `req`; the answer (or failure) and how many body bytes were read out.
    fn send<'s, 'r: 's>(
        &self,
        req: &Request,
        upload: Option<(&PreparedUpload, &'s mut (dyn ReadSeek + 'r))>,
        transfer: &mut Transfer<'_>,
    ) -> (Result<http::Response<ureq::Body>, ureq::Error>, u64) {
        let timeout = req
            .deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let (parts, spec) = match req.to_http() {
            Ok(r) => r.into_parts(),
            Err(e) => return (Err(ureq::Error::from(e)), 0),
        };
        match (spec, upload) {
            (BodySpec::UploadBody { from, to }, Some((prepared, source))) => {
                let reader = match prepared.body_reader(source, from) {
                    Ok(r) => r,
                    Err(e) => return (Err(ureq::Error::Io(e)), 0),
                };
                let cancel = transfer.cancel_handle().clone();
                let mut progress = |n: u64| transfer.report(from + n, Some(to));
                let mut counting = Counting {
                    inner: reader.take(to.saturating_sub(from)),
                    count: 0,
                    on_read: Some(&mut progress),
                    cancel,
                };
                let r = self.run(parts, ureq::SendBody::from_reader(&mut counting), timeout);
                (r, counting.count)
            }
            _ => (self.run(parts, ureq::SendBody::none(), timeout), 0),
        }
    }

    fn run(
        &self,
        parts: http::request::Parts,
        body: ureq::SendBody<'_>,
        timeout: Duration,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        use ureq::RequestExt;
        http::Request::from_parts(parts, body)
            .with_agent(&self.agent)
            .configure()
            .timeout_global(Some(timeout))
            .run()
    }
}

/// A seekable plaintext source.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek + ?Sized> ReadSeek for T {}

fn redact(msg: &str, req: &Request) -> String {
    msg.replace(&req.url, &req.redacted_url())
}

/// Sleeps until `t` in slices, so a cancellation is noticed within 50 ms.
fn sleep_until(t: Instant, cancel: &Cancel) -> Result<(), Error> {
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Opens `path` and uploads it.
///
/// # Errors
/// As [`Client::upload`].
pub fn upload_file(
    client: &Client,
    path: &Path,
    job: &UploadJob,
    conn: &mut dyn MediaConnProvider,
    transfer: &mut Transfer<'_>,
) -> Result<UploadResult, Error> {
    client.upload(File::open(path)?, job, conn, transfer)
}
