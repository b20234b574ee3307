//! A fake WhatsApp media CDN on 127.0.0.1, speaking PROTOCOL §4–5 over real HTTP/1.1.
//!
//! It checks the auth token, that the upload token is base64url(SHA-256(body)) and that an
//! encrypted body has the `16k + 10` shape; it stores bodies (in memory, or in a folder),
//! answers resume checks and `file_offset` uploads, and serves downloads with `Range`.
//! A script of [`Fault`]s injects what real networks do: error statuses, dropped
//! connections, slow answers, garbage bodies, tampered downloads.
//!
//! One request per connection (`Connection: close`); each connection has its own thread
//! with read and write timeouts, and the server stops when the [`FakeCdn`] is dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use wamedia::MediaConn;

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Upload `POST`s that carry a body (not resume checks).
    Upload,
    /// Resume checks (`resume=1`).
    ResumeCheck,
    /// Download `GET`s.
    Download,
    /// Any request.
    Any,
}

/// A misbehaviour to inject, once, into the next matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (with `Retry-After` when given) and a short body.
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
    /// Body bytes received.
    pub body_len: u64,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
}

#[derive(Debug, Default)]
struct Stored {
    body: Vec<u8>,
    mms_type: String,
}

#[derive(Debug)]
struct State {
    auth: String,
    /// token → complete body.
    objects: BTreeMap<String, Stored>,
    /// token → partial upload.
    partial: BTreeMap<String, Vec<u8>>,
    faults: VecDeque<(On, Fault)>,
    seen: Vec<SeenRequest>,
    store_dir: Option<PathBuf>,
    /// Connections being handled (their requests not yet in `seen`).
    active: usize,
}

/// Settings of a fake CDN.
#[derive(Clone, Debug)]
pub struct CdnConfig {
    /// The auth token uploads must carry.
    pub auth: String,
    /// Also write stored bodies into this folder (named by token).
    pub store_dir: Option<PathBuf>,
    /// Address to bind; port 0 picks a free one.
    pub addr: SocketAddr,
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            auth: "fake-cdn-auth".into(),
            store_dir: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A running fake CDN. Dropping it stops the server.
pub struct FakeCdn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeCdn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCdn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeCdn {
    /// Starts a fake CDN on 127.0.0.1 with a free port.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn start() -> io::Result<FakeCdn> {
        Self::with_config(CdnConfig::default())
    }

    /// Starts a fake CDN with `config`.
    ///
    /// # Errors
    /// When the socket cannot be bound or the store folder made.
    pub fn with_config(config: CdnConfig) -> io::Result<FakeCdn> {
        if let Some(d) = &config.store_dir {
            std::fs::create_dir_all(d)?;
        }
        let listener = TcpListener::bind(config.addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            auth: config.auth,
            objects: BTreeMap::new(),
            partial: BTreeMap::new(),
            faults: VecDeque::new(),
            seen: Vec::new(),
            store_dir: config.store_dir,
            active: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                lock(&st).active += 1;
                std::thread::spawn(move || {
                    let _ = handle(conn, addr, &st);
                    lock(&st).active -= 1;
                });
            }
        });
        Ok(FakeCdn {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host string for a media connection: `http://127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The auth token currently accepted.
    pub fn auth(&self) -> String {
        self.lock().auth.clone()
    }

    /// Rotates the auth token: requests with the old one now get 401.
    pub fn set_auth(&self, auth: &str) {
        self.lock().auth = auth.to_owned();
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
        self.lock().faults.push_back((on, fault));
    }

    /// Every request seen so far. Waits (up to 2 s) for connections still being handled,
    /// so that an answer the client already has is in the log.
    pub fn seen(&self) -> Vec<SeenRequest> {
        for _ in 0..200 {
            if self.lock().active == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lock().seen.clone()
    }

    /// The stored body of a complete upload, by token.
    pub fn stored(&self, token: &str) -> Option<Vec<u8>> {
        self.lock()
            .objects
            .get(&canonical_token(token))
            .map(|s| s.body.clone())
    }

    /// Number of complete uploads stored.
    pub fn object_count(&self) -> usize {
        self.lock().objects.len()
    }

    /// Pretends the first bytes of an upload already arrived (for resume tests).
    pub fn put_partial(&self, token: &str, bytes: &[u8]) {
        self.lock()
            .partial
            .insert(canonical_token(token), bytes.to_vec());
    }

    /// Stores a complete body directly, as if uploaded; returns its direct path.
    pub fn put_object(&self, body: &[u8], mms_type: &str) -> String {
        let token = URL_SAFE_NO_PAD.encode(Sha256::digest(body));
        let path = direct_path(&token);
        self.lock().objects.insert(
            token,
            Stored {
                body: body.to_vec(),
                mms_type: mms_type.into(),
            },
        );
        path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

/// Tokens may come padded or not: store them unpadded.
fn canonical_token(token: &str) -> String {
    match URL_SAFE
        .decode(token)
        .or_else(|_| URL_SAFE_NO_PAD.decode(token))
    {
        Ok(b) => URL_SAFE_NO_PAD.encode(b),
        Err(_) => token.to_owned(),
    }
}

/// The direct path the fake CDN hands out, shaped like a real one (it has a query).
pub fn direct_path(token: &str) -> String {
    let oh: String = token.bytes().take(8).map(|b| format!("{b:02x}")).collect();
    format!("/v/t62.7118-24/f1/m1/{token}.enc?ccb=9-4&oh=01_{oh}&oe=6A000000&_nc_sid=e6ed6c")
}

struct Req {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<Req>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        if headers.len() > 100 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many headers",
            ));
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Some(Req {
        method,
        path: percent_decode(path),
        query,
        target: wamedia::transfer::redact_auth(&target),
        headers,
    }))
}

fn respond(
    w: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn json(w: &mut TcpStream, status: u16, v: serde_json::Value) -> io::Result<u16> {
    respond(
        w,
        status,
        &[("Content-Type", "application/json".into())],
        v.to_string().as_bytes(),
    )?;
    Ok(status)
}

fn lock(st: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|e| e.into_inner())
}

fn handle(stream: TcpStream, addr: SocketAddr, st: &Mutex<State>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let Some(req) = read_head(&mut r)? else {
        return Ok(());
    };
    let is_upload = req.method == "POST";
    let is_check = req.param("resume") == Some("1");
    let kind = match (is_upload, is_check) {
        (true, true) => On::ResumeCheck,
        (true, false) => On::Upload,
        _ => On::Download,
    };
    let fault = {
        let mut s = lock(st);
        let i = s
            .faults
            .iter()
            .position(|(on, _)| *on == kind || *on == On::Any);
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    let mut seen = SeenRequest {
        method: req.method.clone(),
        target: req.target.clone(),
        headers: req.headers.clone(),
        body_len: 0,
        status: 0,
    };
    let result = serve(&mut r, &mut w, addr, st, &req, kind, fault, &mut seen);
    lock(st).seen.push(seen);
    result
}

#[allow(clippy::too_many_arguments)]
fn serve(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    addr: SocketAddr,
    st: &Mutex<State>,
    req: &Req,
    kind: On,
    fault: Option<Fault>,
    seen: &mut SeenRequest,
) -> io::Result<()> {
    match &fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Delay(d)) => std::thread::sleep(*d),
        Some(Fault::Status(code, retry)) => {
            let mut h = vec![];
            if let Some(s) = retry {
                h.push(("Retry-After", s.to_string()));
            }
            // Read the body so the client sees the answer rather than a reset.
            let len: u64 = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let _ = io::copy(&mut r.by_ref().take(len), &mut io::sink());
            respond(w, *code, &h, format!("injected status {code}").as_bytes())?;
            seen.status = *code;
            return Ok(());
        }
        _ => {}
    }
    seen.status = if kind == On::Download {
        download(w, st, req, &fault)?
    } else {
        upload(r, w, addr, st, req, kind, &fault, seen)?
    };
    Ok(())
}

/// Answers an error after reading (and dropping) the request body, so the client gets
/// to read the answer instead of a broken pipe.
fn reject(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    req: &Req,
    status: u16,
    why: &str,
) -> io::Result<u16> {
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = io::copy(&mut r.by_ref().take(len.min(256 << 20)), &mut io::sink());
    json(w, status, serde_json::json!({ "error": why }))
}

#[allow(clippy::too_many_arguments)]
fn upload(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    addr: SocketAddr,
    st: &Mutex<State>,
    req: &Req,
    kind: On,
    fault: &Option<Fault>,
    seen: &mut SeenRequest,
) -> io::Result<u16> {
    // /mms/{type}/{token}, /product/image/{token}, /newsletter/newsletter-{type}/{token}
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let (mms_type, token, newsletter) = match segs.as_slice() {
        ["mms", t, token] => (t.to_string(), *token, false),
        ["product", "image", token] => ("product-catalog-image".to_string(), *token, false),
        ["newsletter", t, token] if t.starts_with("newsletter-") => {
            (t["newsletter-".len()..].to_string(), *token, true)
        }
        _ => return reject(r, w, req, 404, "unknown upload path"),
    };
    let token = canonical_token(token);
    if req.param("auth") != Some(lock(st).auth.as_str()) {
        return reject(r, w, req, 401, "bad auth");
    }
    if req.param("token").map(canonical_token).as_deref() != Some(token.as_str()) {
        return json(
            w,
            400,
            serde_json::json!({"error": "token parameter differs from the path"}),
        );
    }
    let url_for = |token: &str, newsletter: bool| {
        let dp = direct_path(token);
        let mut v =
            serde_json::json!({"url": format!("http://{addr}{dp}&mms3=true"), "direct_path": dp});
        if newsletter {
            v["handle"] = serde_json::Value::String(format!("handle-{}", &token[..8]));
        }
        v
    };
    if kind == On::ResumeCheck {
        let s = lock(st);
        let answer = if s.objects.contains_key(&token) {
            let mut v = url_for(&token, newsletter);
            v["resume"] = "complete".into();
            v
        } else {
            let n = s.partial.get(&token).map_or(0, |p| p.len());
            serde_json::json!({"resume": n})
        };
        drop(s);
        return json(w, 200, answer);
    }
    let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return json(
            w,
            411,
            serde_json::json!({"error": "Content-Length required"}),
        );
    };
    if len > 256 << 20 {
        return reject(r, w, req, 413, "too large");
    }
    let offset: u64 = match req.param("file_offset") {
        None => 0,
        Some(v) => match v.parse() {
            Ok(n) => n,
            Err(_) => return reject(r, w, req, 400, "bad file_offset"),
        },
    };
    let mut body = Vec::with_capacity(len.min(64 << 20) as usize);
    let limit = match fault {
        Some(Fault::DropUploadAfter(n)) => (*n).min(len),
        _ => len,
    };
    r.by_ref().take(limit).read_to_end(&mut body)?;
    seen.body_len = body.len() as u64;
    let mut s = lock(st);
    let mut full = if offset > 0 {
        match s.partial.get(&token) {
            Some(p) if p.len() as u64 >= offset => p[..offset as usize].to_vec(),
            _ => {
                drop(s);
                return json(
                    w,
                    400,
                    serde_json::json!({"error": "file_offset beyond what is stored"}),
                );
            }
        }
    } else {
        Vec::new()
    };
    full.extend_from_slice(&body);
    if (body.len() as u64) < len {
        // Cut short (or a scripted drop): keep what arrived, as a real CDN would.
        s.partial.insert(token, full);
        return Ok(0);
    }
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&full));
    if digest != token {
        drop(s);
        return json(
            w,
            400,
            serde_json::json!({"error": "token is not base64url(sha256(body))"}),
        );
    }
    if !newsletter && (full.len() < 26 || (full.len() - 10) % 16 != 0) {
        drop(s);
        return json(
            w,
            400,
            serde_json::json!({"error": "body is not 16k+10 bytes"}),
        );
    }
    s.partial.remove(&token);
    if let Some(d) = &s.store_dir {
        let _ = std::fs::write(d.join(&token), &full);
    }
    s.objects.insert(
        token.clone(),
        Stored {
            body: full,
            mms_type,
        },
    );
    drop(s);
    match fault {
        Some(Fault::Garbage) => {
            respond(w, 200, &[], b"<html>502 upstream hiccup</html>")?;
            Ok(200)
        }
        Some(Fault::NoUrl) => json(w, 200, serde_json::json!({"status": "ok"})),
        _ => {
            let mut v = url_for(&token, newsletter);
            v["object_id"] = format!("obj-{}", &token[..8]).into();
            json(w, 200, v)
        }
    }
}

fn download(
    w: &mut TcpStream,
    st: &Mutex<State>,
    req: &Req,
    fault: &Option<Fault>,
) -> io::Result<u16> {
    let token = req
        .path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".enc")
        .to_owned();
    let token = canonical_token(&token);
    let body = {
        let s = lock(st);
        match s.objects.get(&token) {
            Some(o)
                if req
                    .param("mms-type")
                    .is_none_or(|m| m == o.mms_type || o.mms_type.is_empty()) =>
            {
                o.body.clone()
            }
            _ => {
                drop(s);
                respond(w, 404, &[], b"not found")?;
                return Ok(404);
            }
        }
    };
    if let Some(h) = req.param("hash") {
        if canonical_token(h) != token {
            respond(w, 404, &[], b"hash mismatch")?;
            return Ok(404);
        }
    }
    let mut body = body;
    if let Some(Fault::Tamper) = fault {
        if let Some(b) = body.last_mut() {
            *b ^= 1;
        }
    }
    let total = body.len() as u64;
    let (status, from, to) = match req.header("range") {
        None => (200, 0, total),
        Some(r) => match parse_range(r, total) {
            Some((a, b)) => (206, a, b),
            None => {
                respond(
                    w,
                    416,
                    &[("Content-Range", format!("bytes */{total}"))],
                    b"",
                )?;
                return Ok(416);
            }
        },
    };
    let mut headers = vec![("Content-Type", "application/octet-stream".to_owned())];
    if status == 206 {
        headers.push(("Content-Range", format!("bytes {from}-{}/{total}", to - 1)));
    }
    let slice = &body[from as usize..to as usize];
    match fault {
        Some(Fault::CutDownload(n)) => {
            let mut head = format!(
                "HTTP/1.1 {status} OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                slice.len()
            );
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes())?;
            w.write_all(&slice[..(*n as usize).min(slice.len())])?;
            w.flush()?;
            Ok(status)
        }
        _ => {
            respond(w, status, &headers, slice)?;
            Ok(status)
        }
    }
}

/// `bytes=a-` or `bytes=a-b` → `[a, b+1)` within `total`.
fn parse_range(v: &str, total: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() {
        total
    } else {
        b.trim().parse::<u64>().ok()?.saturating_add(1).min(total)
    };
    (a < end).then_some((a, end))
}
