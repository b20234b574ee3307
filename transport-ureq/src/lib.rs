//! # wamedia-ureq — WhatsApp media over blocking HTTP (ureq 3, rustls)
//!
//! ```no_run
//! use wamedia_ureq::{Client, MediaConn, MediaType};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(|force: bool| {
//!     // Ask your WhatsApp client for a media connection, fresh when `force`.
//!     let json = r#"{"auth":"…","ttl":3600,"hosts":["mmg.whatsapp.net"]}"#;
//!     MediaConn::from_json(json, std::time::Instant::now())
//! });
//! let up = client.upload(std::path::Path::new("report.pdf"), MediaType::Document)?;
//! println!("{} {} {}", up.url, up.direct_path, up.file_length);
//! # Ok(()) }
//! ```
//!
//! [`Client`] is the one driver of [`wamedia_driver`] over [`UreqHttp`], run on the
//! calling thread ([`Blocking`]): the same retries, resume, progress, cancellation,
//! partial files and ranged downloads as the async transports, without `.await`. Options
//! go on [`Client::upload_with`] and on the [`Download`] builder.
//!
//! - **HTTP**: no redirects followed, non-2xx answers handed to the core, no content
//!   coding asked for, no `User-Agent` unless [`Options::user_agent`] sets one, rustls
//!   with ring and the Mozilla roots; proxies from the usual environment variables.
//! - **Time**: connect timeout, the idle timeout per read and per write, and each
//!   request's deadline as ureq's global timeout.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use wamedia::{DeleteResult, DeleteSpec};
pub use wamedia::{DownloadResult, DownloadSpec, MediaConn, MediaKey, MediaType, UploadResult};
pub use wamedia_driver::{
    Blocking, BlockingSource, Cancel, Error, ErrorKind, Http, Incoming, Options, Outgoing,
    PreparedUpload, ResponseBody, Threads, Transfer, UploadData, UploadJob,
};
use wamedia_driver::{DeleteCall, FromBlocking, UploadCall};

/// The driver over ureq, on the calling thread.
pub type Driver = wamedia_driver::Client<UreqHttp, Blocking>;

/// A blocking client. Cheap to clone; clones share the connection pool and the media
/// connection, and may run on as many threads as you like.
#[derive(Clone, Debug)]
pub struct Client {
    driver: Driver,
}

impl Client {
    /// A client with default [`Options`] that asks `source` (a [`MediaConn`], or a
    /// closure `|force| -> Result<MediaConn, E>`) for media connections.
    pub fn new(source: impl BlockingSource) -> Self {
        Client {
            driver: Driver::new(FromBlocking(source)),
        }
    }

    /// A client with `opts`.
    ///
    /// # Errors
    /// Settings ureq refuses.
    pub fn with_options(source: impl BlockingSource, opts: Options) -> io::Result<Self> {
        Ok(Client {
            driver: Driver::with_options(FromBlocking(source), opts)?,
        })
    }

    /// The driver underneath (its calls finish with `.wait()`).
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Uploads `data` (bytes, a path, a file, or [`UploadData::reader`]) as `media_type`.
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, I/O, the source, or cancellation.
    pub fn upload(
        &self,
        data: impl Into<UploadData>,
        media_type: MediaType,
    ) -> Result<UploadResult, Error> {
        self.driver.upload(data, media_type).wait()
    }

    /// An upload with options: set them, then `.wait()`.
    ///
    /// ```no_run
    /// # fn run(client: wamedia_ureq::Client) -> Result<(), wamedia_ureq::Error> {
    /// use wamedia_ureq::MediaType;
    /// let up = client
    ///     .upload_with(std::path::Path::new("clip.mp4"), MediaType::Video)
    ///     .progress(|done, total| eprintln!("{done}/{total:?}"))
    ///     .wait()?;
    /// # Ok(()) }
    /// ```
    pub fn upload_with(
        &self,
        data: impl Into<UploadData>,
        media_type: MediaType,
    ) -> UploadCall<'_, UreqHttp, Blocking> {
        self.driver.upload(data, media_type)
    }

    /// Uploads `data` whose first pass `prepared` was made before; finish with `.wait()`.
    pub fn upload_prepared(
        &self,
        prepared: wamedia_driver::PreparedUpload,
        data: impl Into<UploadData>,
    ) -> UploadCall<'_, UreqHttp, Blocking> {
        self.driver.upload_prepared(prepared, data)
    }

    /// A download of `spec`: finish with [`Download::to_path`], [`Download::to_vec`] or
    /// [`Download::to_writer`].
    pub fn download(&self, spec: DownloadSpec) -> Download<'_> {
        Download {
            call: self.driver.download(spec),
        }
    }

    /// Deletes a history-sync blob from the CDN (PROTOCOL §6).
    ///
    /// # Errors
    /// [`Error`]: the machine's final error, the source, or cancellation.
    pub fn delete(&self, spec: DeleteSpec) -> Result<DeleteResult, Error> {
        self.driver.delete(spec).wait()
    }

    /// A delete with options (progress, cancellation, an observer): set them, then
    /// `.wait()`.
    pub fn delete_with(&self, spec: DeleteSpec) -> DeleteCall<'_, UreqHttp, Blocking> {
        self.driver.delete(spec)
    }
}

/// A blocking download to set options on, then finish.
#[must_use = "a download does nothing until it is finished with to_path, to_vec or to_writer"]
pub struct Download<'a> {
    call: wamedia_driver::DownloadCall<'a, UreqHttp, Blocking>,
}

impl<'a> Download<'a> {
    /// Calls `f(bytes_done, total)` as the body moves.
    pub fn progress(self, f: impl FnMut(u64, Option<u64>) + Send + 'a) -> Self {
        Download {
            call: self.call.progress(f),
        }
    }
    /// Stops with [`Error::Cancelled`] once `cancel` is cancelled.
    pub fn cancel(self, cancel: Cancel) -> Self {
        Download {
            call: self.call.cancel(cancel),
        }
    }
    /// Progress, cancellation and observer at once.
    pub fn transfer(self, transfer: Transfer<'a>) -> Self {
        Download {
            call: self.call.transfer(transfer),
        }
    }
    /// Only plaintext bytes `range`, each window verified before it is written.
    pub fn range(self, range: Range<u64>) -> Self {
        Download {
            call: self.call.range(range),
        }
    }
    /// Verified, then renamed into `path` (see
    /// [`DownloadCall::to_path`](wamedia_driver::DownloadCall::to_path)).
    ///
    /// # Errors
    /// [`Error`].
    pub fn to_path(self, path: impl AsRef<Path>) -> Result<DownloadResult, Error> {
        wamedia_driver::block_on(self.call.to_path(path))
    }
    /// The verified plaintext in memory.
    ///
    /// # Errors
    /// [`Error`].
    pub fn to_vec(self) -> Result<(Vec<u8>, DownloadResult), Error> {
        wamedia_driver::block_on(self.call.to_vec())
    }
    /// Into `out` as it comes (unverified until this returns `Ok`).
    ///
    /// # Errors
    /// [`Error`].
    pub fn to_writer(self, out: &mut (dyn Write + Send)) -> Result<DownloadResult, Error> {
        wamedia_driver::block_on(self.call.to_writer(out))
    }
}

/// One exchange over a ureq agent (and its connection pool).
#[derive(Clone, Debug)]
pub struct UreqHttp {
    agent: ureq::Agent,
}

impl Http for UreqHttp {
    type Body = UreqBody;

    fn with_options(opts: &Options) -> io::Result<Self> {
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
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .build()
            .new_agent();
        Ok(UreqHttp { agent })
    }

    /// Runs the exchange up to the answer's head on a thread of its own, so the driving
    /// thread keeps its timers, cancellation and progress while the body goes out; the
    /// answer's body is then read on the driving thread.
    fn send(
        &self,
        req: Outgoing,
    ) -> impl Future<Output = Result<Incoming<UreqBody>, String>> + Send {
        let agent = self.agent.clone();
        let slot: Arc<Slot> = Arc::default();
        let filled = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("wamedia-ureq".into())
            .spawn(move || {
                let r = run(&agent, req);
                *filled.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                filled.waker.wake();
            });
        let mut failed = spawned
            .err()
            .map(|e| format!("cannot start the request's thread: {e}"));
        std::future::poll_fn(move |cx| {
            if let Some(e) = failed.take() {
                return Poll::Ready(Err(e));
            }
            slot.waker.register(cx.waker());
            match slot.answer.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
    }
}

/// Where a request's thread leaves its answer.
#[derive(Default)]
struct Slot {
    answer: Mutex<Option<Result<Incoming<UreqBody>, String>>>,
    waker: AtomicWaker,
}

/// One exchange up to the answer's head, blocking.
fn run(agent: &ureq::Agent, req: Outgoing) -> Result<Incoming<UreqBody>, String> {
    use ureq::RequestExt;
    let shown = req.redacted_url();
    let timeout = req
        .deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let mut b = http::Request::builder().method(req.method).uri(&req.url);
    if let Some(h) = b.headers_mut() {
        *h = req.headers;
    }
    let result = match req.body {
        Some(mut body) => b
            .body(ureq::SendBody::from_reader(&mut body))
            .map_err(|e| format!("bad request for {shown}: {e}"))?
            .with_agent(agent)
            .configure()
            .timeout_global(Some(timeout))
            .run(),
        None => b
            .body(ureq::SendBody::none())
            .map_err(|e| format!("bad request for {shown}: {e}"))?
            .with_agent(agent)
            .configure()
            .timeout_global(Some(timeout))
            .run(),
    };
    let resp = result.map_err(|e| e.to_string().replace(&req.url, &shown))?;
    let (parts, body) = resp.into_parts();
    Ok(Incoming::new(
        parts.status.as_u16(),
        parts.headers,
        UreqBody {
            reader: body.into_reader(),
        },
    ))
}

/// An answer's body, read on the calling thread.
pub struct UreqBody {
    reader: ureq::BodyReader<'static>,
}

impl std::fmt::Debug for UreqBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UreqBody").finish_non_exhaustive()
    }
}

impl ResponseBody for UreqBody {
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        std::future::ready(self.reader.read(buf))
    }
}
