//! The three seams the driver runs over: one HTTP exchange, a runtime, and (in
//! [`crate::source`]) where media connections come from.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use crate::body::RequestBody;
use crate::Options;

/// One request as the driver hands it to an [`Http`] adapter.
///
/// `url` carries the media connection's auth token in its query: never log it, print
/// [`redacted_url`](Self::redacted_url) instead.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outgoing {
    /// `GET`, `POST` or `DELETE`.
    pub method: http::Method,
    /// The whole URL, auth included.
    pub url: String,
    /// Every header to send, `Content-Length` of a body included; add none of your own
    /// (no `Accept-Encoding`: bodies are ciphertext, and a content coding would change
    /// what is hashed).
    pub headers: http::HeaderMap,
    /// The upload body, `None` for a request without one. Its length equals the
    /// `Content-Length` header.
    pub body: Option<RequestBody>,
    /// When the whole exchange (answer head included) must be over. The driver enforces
    /// it too; an adapter whose client can stop a blocking call should pass it on.
    pub deadline: Instant,
    /// The longest silence allowed while sending or waiting ([`Options::idle_timeout`]).
    pub idle_timeout: Duration,
}

impl Outgoing {
    /// The URL with the auth token replaced, for messages.
    pub fn redacted_url(&self) -> String {
        wamedia::redact_auth(&self.url)
    }
}

/// The head of an answer, and its body still to read.
#[derive(Debug)]
#[non_exhaustive]
pub struct Incoming<B> {
    /// The status code (any: non-2xx answers go to the machine, never errors).
    pub status: u16,
    /// The answer's headers.
    pub headers: http::HeaderMap,
    /// The body, read by the driver chunk by chunk.
    pub body: B,
}

impl<B> Incoming<B> {
    /// An answer head with its body.
    pub fn new(status: u16, headers: http::HeaderMap, body: B) -> Self {
        Incoming {
            status,
            headers,
            body,
        }
    }
}

/// The body of an answer, read in chunks.
pub trait ResponseBody: Send {
    /// Reads the next bytes into `buf`; `Ok(0)` at the end (a body without a length runs
    /// to the connection's end).
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

/// One HTTP exchange: what an adapter for an HTTP client implements.
///
/// Contract: follow no redirect, retry nothing, add no header (no `User-Agent` unless
/// [`Options::user_agent`] sets one, no `Accept-Encoding`), hand every status to the
/// driver as an [`Incoming`], and return `Err` only when no answer head came (connection
/// refused or cut, TLS failure, timeout) with a message that never holds the URL's auth.
pub trait Http: Send + Sync + 'static {
    /// The body of an answer.
    type Body: ResponseBody;

    /// An adapter set up with `opts` (connect and idle timeouts, `User-Agent`).
    ///
    /// # Errors
    /// Settings the HTTP client refuses (a `User-Agent` that is no header value, a TLS
    /// setup that cannot be built).
    fn with_options(opts: &Options) -> io::Result<Self>
    where
        Self: Sized;

    /// Whether the client itself cuts a connect that hangs at
    /// [`Options::connect_timeout`]. When not (surf's async-h1), the driver allows a
    /// request no longer than the connect timeout before it first moves (a body byte
    /// taken, or the answer's head).
    fn has_connect_timeout(&self) -> bool {
        true
    }

    /// Sends `req` and waits for the answer's head.
    fn send(
        &self,
        req: Outgoing,
    ) -> impl Future<Output = Result<Incoming<Self::Body>, String>> + Send;
}

/// What the driver needs from an async runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Completes at `t` (at once when it has passed).
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send + 'static;

    /// Runs blocking work (file I/O, hashing, AES over a whole body) off the executor's
    /// threads and awaits it.
    fn spawn_blocking<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;
}
