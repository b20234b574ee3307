//! # wamedia-surf — WhatsApp media over surf, on async-std or smol
//!
//! ```no_run
//! use wamedia_surf::{Client, MediaConn, MediaType};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(|force: bool| async move {
//!     // Ask your WhatsApp client for a media connection, fresh when `force`.
//!     let json = r#"{"auth":"…","ttl":3600,"hosts":["mmg.whatsapp.net"]}"#;
//!     MediaConn::from_json(json, std::time::Instant::now())
//! });
//! let up = client.upload(std::path::Path::new("note.ogg"), MediaType::Ptt).await?;
//! println!("{} {}", up.direct_path, up.file_length);
//! # Ok(()) }
//! ```
//!
//! [`Client`] is [`wamedia_driver::Client`] over [`SurfHttp`] on [`AsyncStd`] (whose
//! timers and blocking pool also serve smol executors). surf's default backend is
//! async-h1 without TLS (feature `h1-client-no-tls`, for the loopback CDN and tests);
//! turn on `h1-client` (async-h1 with native-tls) or `curl-client` for the real CDN.
//!
//! - **HTTP**: no redirects, no middleware, no content coding asked for, no
//!   `User-Agent` unless [`Options::user_agent`] sets one. A body delimited only by the
//!   connection's end, which async-h1 cannot read, is refused with a reason.
//! - **Connections**: with the async-h1 backends, one per request (no keep-alive): their
//!   pool would reuse a connection whose exchange was abandoned half-way.
//! - **Time**: async-h1 has no connect timeout of its own, so the driver allows a request
//!   [`Options::connect_timeout`] before it first moves (a body byte taken, or the answer's
//!   head); then the idle timeout and each request's deadline, as for every transport.
//! - **Off the executor**: the first pass, upload body chunks, the decryption of
//!   download chunks and file writes run on async-std's blocking pool.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::time::Instant;

use futures_lite::AsyncReadExt;
pub use wamedia::{DownloadResult, DownloadSpec, MediaConn, MediaKey, MediaType, UploadResult};
pub use wamedia_driver::{
    Cancel, Error, ErrorKind, Http, Incoming, MediaConnSource, Options, Outgoing, PreparedUpload,
    ResponseBody, Runtime, Threads, Transfer, UploadData, UploadJob,
};

/// The client: the driver over surf on async-std.
pub type Client = wamedia_driver::Client<SurfHttp, AsyncStd>;

/// async-std's timers and blocking pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send + 'static {
        async_std::task::sleep(t.saturating_duration_since(Instant::now()))
    }

    fn spawn_blocking<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        async_std::task::spawn_blocking(f)
    }
}

/// One exchange over a surf client.
#[derive(Clone)]
pub struct SurfHttp {
    http: surf::Client,
    user_agent: Option<String>,
}

impl std::fmt::Debug for SurfHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurfHttp").finish_non_exhaustive()
    }
}

impl Http for SurfHttp {
    type Body = SurfBody;

    fn with_options(opts: &Options) -> io::Result<Self> {
        // async-h1's pool (http-client's) takes back a connection whose exchange was
        // abandoned half-way (an idle timeout, a cancellation, a dropped future, a body
        // not read to its end) and hands it to the next request, which then reads the
        // old answer or nothing. So the h1 backends open a connection per request.
        let keep_alive = !cfg!(any(feature = "h1-client", feature = "h1-client-no-tls"));
        let http: surf::Client = surf::Config::new()
            .set_timeout(None)
            .set_http_keep_alive(keep_alive)
            .try_into()
            .unwrap_or_else(|e: std::convert::Infallible| match e {});
        Ok(SurfHttp {
            http,
            user_agent: opts.user_agent.clone(),
        })
    }

    /// async-h1 has none: the driver holds a request to the connect timeout until it moves.
    fn has_connect_timeout(&self) -> bool {
        false
    }

    fn send(
        &self,
        req: Outgoing,
    ) -> impl Future<Output = Result<Incoming<SurfBody>, String>> + Send {
        let http = self.http.clone();
        let ua = self.user_agent.clone();
        async move {
            let shown = req.redacted_url();
            let url = surf::Url::parse(&req.url).map_err(|e| format!("bad URL {shown}: {e}"))?;
            let method = match req.method {
                http::Method::POST => surf::http::Method::Post,
                http::Method::DELETE => surf::http::Method::Delete,
                _ => surf::http::Method::Get,
            };
            let mut r = surf::Request::new(method, url);
            for (k, v) in &req.headers {
                r.insert_header(k.as_str(), v.to_str().unwrap_or_default());
            }
            if let Some(ua) = &ua {
                r.insert_header("user-agent", ua.as_str());
            }
            match req.body {
                Some(body) => {
                    let len = usize::try_from(body.len())
                        .map_err(|_| "body too large for this platform".to_string())?;
                    r.set_body(surf::Body::from_reader(
                        futures_lite::io::BufReader::new(body),
                        Some(len),
                    ));
                }
                None if req.method == http::Method::POST => r.set_body(surf::Body::empty()),
                None => {}
            }
            let resp = http
                .send(r)
                .await
                .map_err(|e| e.to_string().replace(&req.url, &shown))?;
            if close_delimited(&resp) {
                // async-h1 reads a body that ends with the connection as empty: say so,
                // rather than let the media look corrupt.
                return Err("the CDN answered without Content-Length or chunking (a close-delimited body), which surf cannot read".into());
            }
            let headers = to_header_map(&resp);
            Ok(Incoming::new(
                u16::from(resp.status()),
                headers,
                SurfBody { resp },
            ))
        }
    }
}

/// An answer's body.
pub struct SurfBody {
    resp: surf::Response,
}

impl std::fmt::Debug for SurfBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurfBody").finish_non_exhaustive()
    }
}

impl ResponseBody for SurfBody {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.resp.read(buf).await
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
