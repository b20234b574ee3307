//! A fake WhatsApp media CDN on 127.0.0.1, speaking the v2 contract (PROTOCOL §1, §4–5)
//! over real HTTP/1.1, strict where the real CDN is strict and lenient where it is lenient,
//! so that a client passing against it is not only passing against itself.
//!
//! **Uploads** `POST {upload path}/{T}?auth=…&token={T}[&resume=1][&bytestart=n&byteend=len]&media_id=…[&server_thumb_gen=1]`:
//!
//! - Every v2 upload path: `/mms/{image, sticker, video, gif, audio, ptt, document,
//!   md-msg-hist, md-app-state, sticker-pack, thumbnail-sticker-pack, thumbnail-link,
//!   thumbnail-image, thumbnail-video, thumbnail-document}` take encrypted bodies
//!   (`16k + 10` bytes, k ≥ 1, else 400); `/product/image` and
//!   `/newsletter/newsletter-{image, sticker, video, gif, ptv, audio, ptt, document,
//!   sticker-pack, thumbnail-link}` take plaintext. Any other path is 404.
//! - `auth` must be the current token (else 401). `T` is base64url of SHA-256(body), with
//!   or without `=` padding (`%3D` in the query); the path's and the query's `T` must name
//!   the same bytes (else 400). `media_id`, when present, is a decimal integer below 2^53
//!   (else 400). Query values are form-decoded.
//! - Bodies come with `Content-Length` or `Transfer-Encoding: chunked` (bounded chunk
//!   sizes and lines; a malformed chunk is a 400); neither is a 411. Bodies are streamed to
//!   files, never held whole in memory, and capped at [`MAX_BODY`] (2 GiB, configurable):
//!   beyond it, 413.
//! - SHA-256 of the complete body must equal `T`, else **415** (hash mismatch). That is
//!   what a partial body sent without `bytestart` gets; v1's `file_offset` means nothing.
//! - Resume: a probe (`resume=1`, no body) answers `{"resume":"complete","url",…}` for a
//!   stored object, `{"resume":n}` when a partial of n bytes is held (an upload whose
//!   connection dropped keeps what arrived), else `{"resume":0}`. An upload with
//!   `bytestart=n&byteend=len` carries `body[n..len]`: it needs a held partial of exactly
//!   n bytes (else 415, as the real CDN's hash check fails) and `n + body length = len`
//!   (else 400); the whole is then hash-checked.
//! - The answer is 200 JSON with `url` (this server's base + the direct path +
//!   `&mms3=true`, as real URLs end) and
//!   `direct_path`, `handle` for newsletter media, and with `server_thumb_gen=1` on an image
//!   or video path, `thumbnail_info.{thumbnail_direct_path, thumbnail_sha256}` naming a
//!   small plaintext thumbnail the server stores. Direct paths look like real ones:
//!   `/v/t62.7118-24/{id}?ccb=11-4&oh=…&oe=…&_nc_sid=5e03e0` (encrypted) and
//!   `/m1/v/t24/{id}?ccb=9-4&oh=…&oe=…&_nc_sid=5e03e0` (plaintext), `oe` being the
//!   expiry (now + 14 days) in hex Unix seconds and `oh` a signature over path and `oe`.
//!
//! **Downloads** `GET {direct_path}[&hash=…]&mms-type=…&__wa-mms=` serve the stored bytes
//! (ciphertext, or plaintext for plaintext media) from disk, with `Range: bytes=a-` → 206
//! and `Content-Range`. A past `oe` is a 403 `URL signature expired`, a bad `oh` a 403
//! `Bad URL hash`; `hash` (padded or not) must name the object (else 404); `mms-type` must
//! be one of PROTOCOL §1's download types (else 400) and fit the object (else 404): the
//! image, video and audio families share theirs (`sticker` ↔ `image`, `gif` ↔ `video`,
//! `ptt` ↔ `audio`), as peers upload stickers to `/mms/image` and the CDN takes both.
//!
//! **Any request** whose target does not start with exactly one `/`, holds a `\`, or has
//! an `@` before its first `/` (a path that would change the host) is a 400. Before any
//! error status the request body is read and dropped (up to 256 MiB), so a client that
//! sends its whole body before reading sees the status rather than a reset.
//!
//! A script of [`Fault`]s injects what real networks do: error statuses, dropped
//! connections, slow answers, garbage bodies, tampered and expired downloads.
//!
//! One request per connection (`Connection: close`); each connection has its own thread
//! with read and write timeouts, and the server stops when the [`FakeCdn`] is dropped.
//! A long-running server holds bounded state whatever its clients do: at most
//! [`CdnConfig::max_connections`] connections at once (more are answered 503), a request
//! head of at most 64 KiB (else 431) that must arrive whole within
//! [`CdnConfig::head_timeout`] (else 408), accept errors (out of file descriptors) waited
//! out rather than spun on, and a request log of the last [`CdnConfig::seen_limit`]
//! requests, each cut to a few KiB.
//! Bodies live in a temporary folder removed on drop, or in [`CdnConfig::store_dir`]
//! (named by unpadded token; partial uploads as `{token}.part`), which is not re-read on
//! start.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod download;
mod http;
mod routes;
mod seen;
mod upload;

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wamedia::MediaConn;

use self::http::{Body, Framing};
use self::routes::Route;
use self::seen::SeenLog;

/// The largest body the fake CDN takes by default: 2 GiB (2^31 bytes).
pub const MAX_BODY: u64 = 1 << 31;

/// How many connections the fake CDN serves at once by default.
pub const MAX_CONNECTIONS: usize = 256;

/// How long a request head may take to arrive, by default.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How many requests [`FakeCdn::seen`] keeps by default (the last ones).
pub const SEEN_LIMIT: usize = 1024;

/// How long a connection's read or write may wait once its head has arrived.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Upload `POST`s that carry a body (not resume checks).
    Upload,
    /// Resume checks (`resume=1`).
    ResumeCheck,
    /// Download `GET`s.
    Download,
    /// History-sync blob `DELETE`s.
    Delete,
    /// Any request.
    Any,
}

/// A misbehaviour to inject, once, into the next matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (with `Retry-After` seconds when given) and a short body, after
    /// reading the request body: 413, 415, 507, 429 or 503 with `Retry-After`, any other.
    Status(u16, Option<u64>),
    /// Close the connection without answering, after reading the request head.
    Drop,
    /// Read this many body bytes of an upload (kept as a partial upload), then close.
    DropUploadAfter(u64),
    /// Send the download's head and only this many body bytes, then close.
    CutDownload(u64),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// A 200 whose body is not JSON.
    Garbage,
    /// A 200 with JSON lacking `url` and `direct_path`.
    NoUrl,
    /// Serve the download with one bit flipped in its last byte (the MAC).
    Tamper,
    /// Answer 403 with the body `URL signature expired`, as the CDN does for a download
    /// URL past its `oe`.
    UrlExpired,
}

/// One request as the fake CDN saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query, with the auth value replaced by `<redacted>`.
    pub target: String,
    /// Request headers, in order, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body bytes received (decoded, for a chunked body).
    pub body_len: u64,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// The log cut this entry to size: a long method, target, or header value was
    /// shortened, or headers past the first 8 KiB of them were left out.
    pub truncated: bool,
}

impl SeenRequest {
    /// True when the request asked for a content coding (an `Accept-Encoding` other than
    /// `identity`, or a `TE` other than `trailers`): media bodies are encrypted, and a
    /// client that inflates what a hostile CDN compressed can be made to write without
    /// bound.
    pub fn asks_for_content_coding(&self) -> bool {
        self.headers.iter().any(|(k, v)| {
            let v = v.trim().to_ascii_lowercase();
            (k == "accept-encoding" && !v.is_empty() && v != "identity")
                || (k == "te" && v != "trailers")
        })
    }
}

/// Settings of a fake CDN.
#[derive(Clone, Debug)]
pub struct CdnConfig {
    /// The auth token uploads must carry.
    pub auth: String,
    /// Keep bodies in this folder (named by unpadded token) instead of a temporary folder
    /// removed when the server is dropped.
    pub store_dir: Option<PathBuf>,
    /// Address to bind; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The largest object taken, in bytes (a larger body is a 413); [`MAX_BODY`] by default.
    pub max_body: u64,
    /// The most connections served at once; a connection past it is answered 503 and
    /// closed. [`MAX_CONNECTIONS`] by default.
    pub max_connections: usize,
    /// How long a request head may take to arrive as a whole (a client trickling it is
    /// answered 408 and closed). [`HEAD_TIMEOUT`] by default.
    pub head_timeout: Duration,
    /// How many requests the log behind [`FakeCdn::seen`] keeps (the last ones).
    /// [`SEEN_LIMIT`] by default.
    pub seen_limit: usize,
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            auth: "fake-cdn-auth".into(),
            store_dir: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body: MAX_BODY,
            max_connections: MAX_CONNECTIONS,
            head_timeout: HEAD_TIMEOUT,
            seen_limit: SEEN_LIMIT,
        }
    }
}

/// A stored object (its bytes are the file named by its token).
#[derive(Clone, Debug)]
struct Object {
    route: &'static Route,
    /// The id in its direct paths.
    id: String,
    /// Made by the server (a thumbnail), not uploaded.
    generated: bool,
}

#[derive(Debug)]
struct State {
    auth: String,
    /// SHA-256 of the body → object.
    objects: BTreeMap<[u8; 32], Object>,
    /// Direct path id → SHA-256 of the body.
    ids: BTreeMap<String, [u8; 32]>,
    faults: VecDeque<(On, Fault)>,
    seen: SeenLog,
    /// Connections being handled (their requests not yet in `seen`).
    active: usize,
}

/// What every connection thread shares.
#[derive(Debug)]
struct Server {
    state: Mutex<State>,
    dir: PathBuf,
    max_body: u64,
    head_timeout: Duration,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Server {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn object_path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(routes::token_text(digest))
    }

    fn partial_path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}.part", routes::token_text(digest)))
    }

    /// A file no other request writes: where a body arrives before it is checked.
    fn tmp_path(&self, digest: &[u8; 32]) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{}.{n}.tmp", routes::token_text(digest)))
    }

    /// Bytes held of a partial upload (0 when none).
    fn partial_len(&self, digest: &[u8; 32]) -> u64 {
        std::fs::metadata(self.partial_path(digest)).map_or(0, |m| m.len())
    }

    /// Records an object whose bytes are already in its file.
    fn insert(&self, digest: [u8; 32], route: &'static Route, generated: bool) -> Object {
        let obj = Object {
            route,
            id: routes::object_id(&digest, route.encrypted),
            generated,
        };
        let mut s = self.lock();
        s.ids.insert(obj.id.clone(), digest);
        s.objects.insert(digest, obj.clone());
        obj
    }

    /// `url`, `direct_path` and (newsletter media) `handle` of a stored object.
    fn answer(&self, digest: &[u8; 32], obj: &Object) -> serde_json::Value {
        let dp = routes::direct_path(&obj.id, obj.route.encrypted);
        let mut v = serde_json::json!({
            "url": format!("{}{dp}&mms3=true", self.base),
            "direct_path": dp,
        });
        if obj.route.newsletter {
            let token = routes::token_text(digest);
            v["handle"] = format!("fake-handle-{}", &token[..16]).into();
        }
        v
    }
}

/// A running fake CDN. Dropping it stops the server (and removes its temporary folder).
pub struct FakeCdn {
    addr: SocketAddr,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The temporary store folder, when no `store_dir` was given.
    _tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for FakeCdn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCdn")
            .field("addr", &self.addr)
            .field("store_dir", &self.server.dir)
            .finish_non_exhaustive()
    }
}

impl FakeCdn {
    /// Starts a fake CDN on 127.0.0.1 with a free port and a temporary store folder.
    ///
    /// # Errors
    /// When the socket cannot be bound or the folder made.
    pub fn start() -> io::Result<FakeCdn> {
        Self::with_config(CdnConfig::default())
    }

    /// Starts a fake CDN with `config`.
    ///
    /// # Errors
    /// When the socket cannot be bound or the store folder made.
    pub fn with_config(config: CdnConfig) -> io::Result<FakeCdn> {
        let (dir, tmp) = match config.store_dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                (d, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("wamedia-fake-cdn-")
                    .tempdir()?;
                (t.path().to_owned(), Some(t))
            }
        };
        let listener = TcpListener::bind(config.addr)?;
        let addr = listener.local_addr()?;
        let server = Arc::new(Server {
            state: Mutex::new(State {
                auth: config.auth,
                objects: BTreeMap::new(),
                ids: BTreeMap::new(),
                faults: VecDeque::new(),
                seen: SeenLog::new(config.seen_limit),
                active: 0,
            }),
            dir,
            max_body: config.max_body,
            head_timeout: config.head_timeout,
            base: format!("http://{addr}"),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, sp) = (server.clone(), stop.clone());
        let max_connections = config.max_connections;
        let thread = std::thread::spawn(move || accept_loop(&listener, &srv, &sp, max_connections));
        Ok(FakeCdn {
            addr,
            server,
            stop,
            thread: Some(thread),
            _tmp: tmp,
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host string for a media connection: `http://127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.base.clone()
    }

    /// The folder holding stored bodies.
    pub fn store_dir(&self) -> &Path {
        &self.server.dir
    }

    /// The auth token currently accepted.
    pub fn auth(&self) -> String {
        self.server.lock().auth.clone()
    }

    /// Rotates the auth token: requests with the old one now get 401.
    pub fn set_auth(&self, auth: &str) {
        self.server.lock().auth = auth.to_owned();
    }

    /// A media connection to this CDN, fetched at `now`, valid for 300 s.
    pub fn media_conn(&self, now: Instant) -> MediaConn {
        MediaConn::new(
            self.auth(),
            vec![self.host()],
            Duration::from_secs(300),
            now,
        )
    }

    /// The media connection as the JSON the CLI reads.
    pub fn media_conn_json(&self) -> String {
        serde_json::json!({"auth": self.auth(), "ttl": 300, "auth_ttl": 300, "hosts": [self.host()]}).to_string()
    }

    /// Queues a fault for the next request matching `on`.
    pub fn push_fault(&self, on: On, fault: Fault) {
        self.server.lock().faults.push_back((on, fault));
    }

    /// The requests seen so far, in arrival order: the last [`CdnConfig::seen_limit`] of
    /// them, each cut to a few KiB (see [`SeenRequest::truncated`]). Waits (up to 30 s: a
    /// loaded machine can be slow to run the server thread's last step) for connections
    /// still being handled, so that an answer the client already has is in the log.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.settle();
        self.server.lock().seen.entries()
    }

    /// How many requests were ever logged, those dropped off [`FakeCdn::seen`] included.
    /// Waits as [`FakeCdn::seen`] does.
    pub fn seen_count(&self) -> u64 {
        self.settle();
        self.server.lock().seen.total()
    }

    /// Waits (up to 30 s) until no connection is being handled.
    fn settle(&self) {
        for _ in 0..3000 {
            if self.server.lock().active == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The stored bytes of a complete upload, by token (padded or not), read from disk.
    pub fn stored(&self, token: &str) -> Option<Vec<u8>> {
        let digest = routes::decode_token(token)?;
        if !self.server.lock().objects.contains_key(&digest) {
            return None;
        }
        std::fs::read(self.server.object_path(&digest)).ok()
    }

    /// Number of complete uploads stored (server-made thumbnails not counted).
    pub fn object_count(&self) -> usize {
        self.server
            .lock()
            .objects
            .values()
            .filter(|o| !o.generated)
            .count()
    }

    /// Pretends the first bytes of an upload already arrived (for resume tests).
    ///
    /// # Panics
    /// When `token` is not base64url of 32 bytes or the file cannot be written.
    pub fn put_partial(&self, token: &str, bytes: &[u8]) {
        let digest = routes::decode_token(token).expect("a base64url SHA-256 token");
        std::fs::write(self.server.partial_path(&digest), bytes).expect("writing a partial upload");
    }

    /// Stores `body` directly, as if uploaded to `upload_path` (`/mms/image`,
    /// `/product/image`, …; the body's shape is not checked); returns a direct path.
    ///
    /// # Errors
    /// An unknown upload path, or the file cannot be written.
    pub fn put_object(&self, upload_path: &str, body: &[u8]) -> io::Result<String> {
        let route = routes::route(upload_path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{upload_path} is not an upload path"),
            )
        })?;
        let digest: [u8; 32] = Sha256::digest(body).into();
        std::fs::write(self.server.object_path(&digest), body)?;
        let obj = self.server.insert(digest, route, false);
        Ok(routes::direct_path(&obj.id, route.encrypted))
    }
}

impl Drop for FakeCdn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The checks every upload and delete makes: the auth, and the path's token and the
/// `token` parameter naming the same SHA-256. `Err((status, why))` otherwise.
fn authorize(
    srv: &Server,
    req: &http::Req,
    path_token: &str,
) -> Result<[u8; 32], (u16, &'static str)> {
    if req.param("auth") != Some(srv.lock().auth.as_str()) {
        return Err((401, "bad auth"));
    }
    let digest = routes::decode_token(path_token)
        .ok_or((400, "the path's token is not base64url of a SHA-256"))?;
    if req.param("token").and_then(routes::decode_token) != Some(digest) {
        return Err((400, "the token parameter differs from the path's"));
    }
    Ok(digest)
}

/// `DELETE /mms/md-msg-hist/{T}?token={T}&d_md=…&auth=…` (PROTOCOL §6): removes a stored
/// history blob; 404 when there is none.
fn delete<R: io::BufRead>(
    srv: &Server,
    w: &mut TcpStream,
    req: &http::Req,
    body: &mut Body<'_, R>,
) -> io::Result<u16> {
    let Some(token) = req.path.strip_prefix("/mms/md-msg-hist/") else {
        return http::reject(w, body, 404, "only history blobs are deleted");
    };
    let digest = match authorize(srv, req, token) {
        Ok(d) => d,
        Err((status, why)) => return http::reject(w, body, status, why),
    };
    if req.param("d_md").is_none_or(|d| d.is_empty()) {
        return http::reject(w, body, 400, "d_md (the direct path, base64url) is missing");
    }
    http::drain(body);
    let removed = {
        let mut s = srv.lock();
        let obj = s.objects.remove(&digest);
        if let Some(o) = &obj {
            s.ids.remove(&o.id);
        }
        obj.is_some()
    };
    if removed {
        let _ = std::fs::remove_file(srv.object_path(&digest));
        http::json(w, 200, &serde_json::json!({ "deleted": true }))
    } else {
        http::reject(w, body, 404, "no such blob")
    }
}

/// The pause after `failures` accept errors in a row (1 for the first): 10 ms, doubling,
/// at most 1 s. An accept that fails for want of file descriptors (`EMFILE`, `ENFILE`)
/// fails again at once while the backlog holds the connection, so retrying without a
/// pause spins a core and starves the connections being served.
fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1u64 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// Takes connections until `stop`: each gets a thread, up to `max_connections` at once;
/// those past it are answered 503 and closed.
fn accept_loop(
    listener: &TcpListener,
    srv: &Arc<Server>,
    stop: &AtomicBool,
    max_connections: usize,
) {
    let mut failures = 0u32;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let conn = match conn {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                failures = failures.saturating_add(1);
                std::thread::sleep(accept_backoff(failures));
                continue;
            }
        };
        {
            let mut s = srv.lock();
            if s.active >= max_connections {
                drop(s);
                refuse_busy(conn);
                continue;
            }
            s.active += 1;
        }
        let guard = Active(srv.clone());
        // A thread that cannot be made drops the connection (and the guard).
        let _ = std::thread::Builder::new().spawn(move || {
            let _ = handle(conn, &guard.0);
            drop(guard);
        });
    }
}

/// One connection counted in [`State::active`] until dropped (a panicking handler
/// included).
struct Active(Arc<Server>);

impl Drop for Active {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.active = s.active.saturating_sub(1);
    }
}

/// Answers 503 on a connection past the cap, without waiting on it, and closes it.
fn refuse_busy(conn: TcpStream) {
    use std::io::Write as _;
    let _ = conn.set_nonblocking(true);
    let mut conn = conn;
    let _ = conn.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = conn.shutdown(std::net::Shutdown::Write);
}

fn handle(stream: TcpStream, srv: &Server) -> io::Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    // The head as a whole has `head_timeout`; the body, IO_TIMEOUT per read.
    let now = Instant::now();
    // A head_timeout too long to add is as good as a day.
    let deadline = now
        .checked_add(srv.head_timeout)
        .unwrap_or(now + Duration::from_secs(86_400));
    let head = http::read_head(&mut http::HeadReader::new(&mut r, deadline));
    r.get_ref().set_read_timeout(Some(IO_TIMEOUT))?;
    let req = match head {
        Ok(Some(req)) => req,
        Ok(None) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let status = if http::is_head_too_large(&e) {
                431
            } else {
                400
            };
            let why = e.to_string();
            http::json(&mut w, status, &serde_json::json!({ "error": why }))?;
            http::linger(&mut r, &w);
            return Ok(());
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            let why = "the request head did not arrive in time";
            http::json(&mut w, 408, &serde_json::json!({ "error": why }))?;
            http::linger(&mut r, &w);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut seen = seen::cut(SeenRequest {
        method: req.method.clone(),
        target: wamedia::redact_auth(&req.target),
        headers: req.headers.clone(),
        body_len: 0,
        status: 0,
        truncated: false,
    });
    // Logged in arrival order: a request's place is taken when its head is read, and
    // filled in once it is answered.
    let at = srv.lock().seen.push(seen.clone());
    let result = serve(&mut r, &mut w, srv, &req, &mut seen);
    srv.lock().seen.fill(at, seen);
    result
}

fn serve(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    srv: &Server,
    req: &http::Req,
    seen: &mut SeenRequest,
) -> io::Result<()> {
    let framing = match http::framing(req) {
        Ok(f) => f,
        Err(why) => {
            // The body cannot be told apart from what follows it: answer and close.
            seen.status = http::json(w, 400, &serde_json::json!({ "error": why }))?;
            http::linger(r, w);
            return Ok(());
        }
    };
    let mut body = Body::new(r, framing);
    let result = route_request(&mut body, w, srv, req);
    seen.body_len = body.received();
    let unread = !body.is_at_end();
    seen.status = result?;
    // A dropped connection (status 0) stays abrupt.
    if unread && seen.status != 0 {
        http::linger(r, w);
    }
    Ok(())
}

/// Answers one request; the status answered (0 when the connection is dropped).
fn route_request(
    body: &mut Body<'_, BufReader<TcpStream>>,
    w: &mut TcpStream,
    srv: &Server,
    req: &http::Req,
) -> io::Result<u16> {
    if let Some(why) = http::target_problem(req) {
        return http::reject(w, body, 400, why);
    }
    let kind = match req.method.as_str() {
        "POST" if req.param("resume") == Some("1") => On::ResumeCheck,
        "POST" => On::Upload,
        "GET" => On::Download,
        "DELETE" => On::Delete,
        _ => {
            http::drain(body);
            return http::respond(
                w,
                405,
                &[("Allow", "GET, POST, DELETE".into())],
                b"method not allowed",
            );
        }
    };
    if body.framing() != Framing::None
        && req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        http::write_continue(w)?;
    }
    let fault = {
        let mut s = srv.lock();
        let i = s
            .faults
            .iter()
            .position(|(on, _)| *on == kind || *on == On::Any);
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    match &fault {
        Some(Fault::Drop) => return Ok(0),
        Some(Fault::Delay(d)) => std::thread::sleep(*d),
        Some(Fault::Status(code, retry)) => {
            http::drain(body);
            let h: Vec<(&str, String)> = retry
                .iter()
                .map(|s| ("Retry-After", s.to_string()))
                .collect();
            return http::respond(w, *code, &h, format!("injected status {code}").as_bytes());
        }
        Some(Fault::UrlExpired) => {
            http::drain(body);
            return http::respond(
                w,
                403,
                &[("Content-Type", "text/plain".into())],
                b"URL signature expired",
            );
        }
        _ => {}
    }
    if kind == On::Download {
        download::serve(srv, w, req, body, fault.as_ref())
    } else if kind == On::Delete {
        delete(srv, w, req, body)
    } else {
        upload::serve(srv, w, req, body, kind, fault.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::accept_backoff;
    use std::time::Duration;

    #[test]
    fn backs_off_on_accept_errors_instead_of_spinning() {
        let pauses: Vec<Duration> = (1..=40).map(accept_backoff).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), Duration::from_secs(1));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }
}
