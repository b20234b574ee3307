//! # wamedia-reqwest — WhatsApp media over reqwest, on Tokio
//!
//! ```no_run
//! use wamedia_reqwest::{Client, MediaConn, MediaType};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(|force: bool| async move {
//!     // Ask your WhatsApp client for a media connection, fresh when `force`.
//!     let json = r#"{"auth":"…","ttl":3600,"hosts":["mmg.whatsapp.net"]}"#;
//!     MediaConn::from_json(json, std::time::Instant::now())
//! });
//! let up = client.upload(std::path::Path::new("photo.jpg"), MediaType::Image).await?;
//! println!("{} {} {}", up.url, up.direct_path, up.file_length);
//! # Ok(()) }
//! ```
//!
//! [`Client`] is [`wamedia_driver::Client`] over [`ReqwestHttp`] on [`Tokio`]: every
//! protocol decision is the [`wamedia`] core's, every byte moved by the one driver; this
//! crate is the HTTP glue.
//!
//! - **HTTP**: HTTP/1.1, rustls with ring and the Mozilla roots, no redirects followed,
//!   no retries of its own, no cookies, no content coding asked for, no `User-Agent`
//!   unless [`Options::user_agent`] sets one. Proxies named by the usual environment
//!   variables (`HTTPS_PROXY`, `NO_PROXY`, …) are used.
//! - **Time**: connect timeout from [`Options::connect_timeout`]; each request's
//!   deadline and the idle timeout enforced by the driver on Tokio's timer.
//! - **Off the executor**: the first pass over the plaintext, every upload body chunk,
//!   the decryption of every download chunk and every file write run on Tokio's blocking
//!   pool.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The repository's README: its snippets compile as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct Readme;

/// docs/ARCHITECTURE.md's snippets, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../../docs/ARCHITECTURE.md")]
struct Architecture;

/// media-info/README.md's snippets, compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../../media-info/README.md")]
struct MediaInfoReadme;

use std::future::Future;
use std::io;
use std::time::Instant;

pub use wamedia::{DownloadResult, DownloadSpec, MediaConn, MediaKey, MediaType, UploadResult};
pub use wamedia_driver::{
    Cancel, Error, ErrorKind, Http, Incoming, MediaConnSource, Options, Outgoing, PreparedUpload,
    ResponseBody, Runtime, Threads, Transfer, UploadData, UploadJob,
};

/// The client: the driver over reqwest on Tokio.
pub type Client = wamedia_driver::Client<ReqwestHttp, Tokio>;

/// The Tokio runtime (the one the calls are awaited on).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(t.into())
    }

    fn spawn_blocking<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let handle = tokio::task::spawn_blocking(f);
        async move {
            match handle.await {
                Ok(v) => v,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The runtime is shutting down: nothing will poll this again.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// One exchange over a reqwest client (and its connection pool).
#[derive(Clone, Debug)]
pub struct ReqwestHttp {
    http: reqwest::Client,
}

impl ReqwestHttp {
    /// The reqwest client underneath.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Http for ReqwestHttp {
    type Body = ReqwestBody;

    fn with_options(opts: &Options) -> io::Result<Self> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
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
        Ok(ReqwestHttp { http })
    }

    fn send(
        &self,
        req: Outgoing,
    ) -> impl Future<Output = Result<Incoming<ReqwestBody>, String>> + Send {
        let http = self.http.clone();
        async move {
            let shown = req.redacted_url();
            let url = reqwest::Url::parse(&req.url).map_err(|e| format!("bad URL {shown}: {e}"))?;
            let method = match req.method {
                http::Method::POST => reqwest::Method::POST,
                http::Method::DELETE => reqwest::Method::DELETE,
                _ => reqwest::Method::GET,
            };
            let mut r = reqwest::Request::new(method, url);
            *r.headers_mut() = req.headers;
            if let Some(body) = req.body {
                // Content-Length is among the headers: hyper sends exactly that.
                *r.body_mut() = Some(reqwest::Body::wrap_stream(body));
            }
            let resp = http.execute(r).await.map_err(describe)?;
            Ok(Incoming::new(
                resp.status().as_u16(),
                resp.headers().clone(),
                ReqwestBody {
                    resp,
                    held: bytes::Bytes::new(),
                },
            ))
        }
    }
}

/// An answer's body, chunk by chunk.
#[derive(Debug)]
pub struct ReqwestBody {
    resp: reqwest::Response,
    held: bytes::Bytes,
}

impl ResponseBody for ReqwestBody {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.held.is_empty() {
            match self.resp.chunk().await {
                Ok(Some(b)) => self.held = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(io::Error::other(describe(e))),
            }
        }
        let n = self.held.len().min(buf.len());
        buf[..n].copy_from_slice(&self.held.split_to(n));
        Ok(n)
    }
}

/// A reqwest error with its causes, without the URL (which carries the auth token).
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
