//! Serving a cassette's recorded answers over real sockets, so the same recordings hold
//! every transport to the contract: each host of the cassette gets its own listener on
//! 127.0.0.1, each request that arrives is checked against the next recorded one
//! (method, path and query, the headers that matter, body length and SHA-256 of the bytes
//! that really crossed the wire), and the recorded answer goes back — a drop for a
//! transport failure, a head and part of a body for a cut.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wamedia::{b64, MediaConn};

use crate::cassette::{Cassette, ConnSpec, Event, ResponseSpec, SourceSpec};

struct State {
    events: Vec<Event>,
    next: usize,
    mismatches: Vec<String>,
    media_body: Vec<u8>,
}

/// A cassette served on loopback. Dropping it stops the listeners.
pub struct ReplayServer {
    hosts: Vec<(String, String)>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<(SocketAddr, JoinHandle<()>)>,
    conns: Vec<ConnSpec>,
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host part of an https URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    Some(rest.split(['/', '?']).next()?.to_owned())
}

impl ReplayServer {
    /// Serves `c`; `media_body` is the encrypted body of its input (for media answers).
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub fn start(c: &Cassette, media_body: Vec<u8>) -> io::Result<ReplayServer> {
        let mut names: Vec<String> = Vec::new();
        let conns: Vec<ConnSpec> = c
            .events
            .iter()
            .filter_map(|e| match e {
                Event::MediaConn { media_conn, .. } => Some(media_conn.clone()),
                _ => None,
            })
            .collect();
        for h in conns.iter().flat_map(ConnSpec::names) {
            if !names.contains(&h) {
                names.push(h);
            }
        }
        if let Some(SourceSpec::Url(u)) = &c.input.source {
            if let Some(h) = url_host(u) {
                if !names.contains(&h) {
                    names.push(h);
                }
            }
        }
        let state = Arc::new(Mutex::new(State {
            events: c
                .events
                .iter()
                .filter(|e| e.request().is_some())
                .cloned()
                .collect(),
            next: 0,
            mismatches: Vec::new(),
            media_body,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut hosts = Vec::new();
        let mut threads = Vec::new();
        for name in names {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            hosts.push((name, format!("http://{addr}")));
            let (st, sp) = (state.clone(), stop.clone());
            let t = std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let st = st.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = serve_one(conn, &st) {
                                lock(&st).mismatches.push(format!("server I/O: {e}"));
                            }
                        });
                    }
                }
            });
            threads.push((addr, t));
        }
        Ok(ReplayServer {
            hosts,
            state,
            stop,
            threads,
            conns,
        })
    }

    /// Replaces each recorded host's `https://host` (or a bare host) with its listener.
    pub fn rewrite(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (name, base) in &self.hosts {
            if out == *name {
                return base.clone();
            }
            out = out.replace(&format!("https://{name}"), base);
        }
        out
    }

    /// A media connection provider handing out the cassette's connections (hosts
    /// rewritten): the current one, or the next one when `force`.
    pub fn provider(
        &self,
    ) -> impl FnMut(bool, Instant) -> Result<MediaConn, String> + Send + 'static {
        let conns: Vec<ConnSpec> = self
            .conns
            .iter()
            .map(|c| c.map_names(|h| self.rewrite(h)))
            .collect();
        let mut idx = 0usize;
        move |force, now| {
            if force {
                idx = (idx + 1).min(conns.len().saturating_sub(1));
            }
            let c = conns
                .get(idx)
                .ok_or("the cassette has no media connection")?;
            Ok(c.to_media_conn(now))
        }
    }

    /// Stops serving; every recorded request must have arrived, each as recorded.
    ///
    /// # Errors
    /// The mismatches and missing requests.
    pub fn finish(mut self) -> Result<(), String> {
        // Wait briefly for connections still being answered.
        std::thread::sleep(Duration::from_millis(20));
        let s = lock(&self.state);
        let mut problems = s.mismatches.clone();
        if s.next < s.events.len() {
            problems.push(format!(
                "{} recorded requests never arrived",
                s.events.len() - s.next
            ));
        }
        drop(s);
        self.shutdown();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (addr, t) in self.threads.drain(..) {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            let _ = t.join();
        }
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Serves the requests of one connection. Answers say `Connection: close`, yet a client
/// that sends another request on the same connection anyway (surf's pool can) is served
/// too, rather than left to fail on a closed socket.
fn serve_one(stream: TcpStream, st: &Mutex<State>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    for _ in 0..64 {
        if !serve_request(&mut r, &mut w, st)? {
            break;
        }
        r.get_ref().set_read_timeout(Some(Duration::from_secs(2)))?;
    }
    Ok(())
}

/// One request; `true` when the connection may carry another.
fn serve_request(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    st: &Mutex<State>,
) -> io::Result<bool> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => return Ok(false),
        Ok(_) => {}
        // An idle kept-alive connection timing out is not an error.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: u64 = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    r.by_ref().take(len).read_to_end(&mut body)?;
    let mut s = lock(st);
    let n = s.next;
    let Some(ev) = s.events.get(n).cloned() else {
        s.mismatches
            .push(format!("request beyond the recording: {method} {target}"));
        drop(s);
        return respond(
            w,
            &ResponseSpec {
                status: 599,
                headers: vec![],
                body: crate::cassette::BodySpec::Text("beyond the recording".into()),
            },
            b"beyond",
        )
        .map(|()| false);
    };
    s.next += 1;
    let rec = ev.request().expect("only request events are kept").clone();
    let rec_target = rec
        .url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|r| r.find('/').map(|i| &r[i..]))
        .unwrap_or("");
    let mut diffs = Vec::new();
    if rec.method != method {
        diffs.push(format!("method: recorded {}, got {method}", rec.method));
    }
    if rec_target != target {
        diffs.push(format!("target: recorded {rec_target}, got {target}"));
    }
    for (k, v) in &rec.headers {
        if headers.get(k) != Some(v) {
            diffs.push(format!(
                "header {k}: recorded {v:?}, got {:?}",
                headers.get(k)
            ));
        }
    }
    let sha = (!body.is_empty()).then(|| b64::std(&Sha256::digest(&body)));
    if rec.body_len != body.len() as u64 || rec.body_sha256 != sha {
        diffs.push(format!(
            "body: recorded {} bytes {:?}, got {} bytes {:?}",
            rec.body_len,
            rec.body_sha256,
            body.len(),
            sha
        ));
    }
    if !diffs.is_empty() {
        s.mismatches
            .push(format!("request #{n} differs:\n  {}", diffs.join("\n  ")));
    }
    let media = s.media_body.clone();
    drop(s);
    match ev {
        Event::Response { response, .. } => {
            let bytes = response.body.bytes(&media).map_err(io::Error::other)?;
            respond(w, &response, &bytes).map(|()| true)
        }
        Event::Cut { cut, .. } => {
            let bytes = cut.body.bytes(&media).map_err(io::Error::other)?;
            let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", cut.status);
            for (k, v) in &cut.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes())?;
            w.write_all(&bytes)?;
            w.flush().map(|()| false)
        }
        // A transport failure: close without a word.
        Event::Failure { .. } => Ok(false),
        Event::Silence { .. } => {
            let _ = io::copy(r, &mut io::sink());
            Ok(false)
        }
        Event::MediaConn { .. } => unreachable!("only request events are kept"),
    }
}

/// Real time: a `Retry-After` a client would honour (at most the default 30 s backoff
/// cap) is served as 0 s, so replays do not sleep; longer ones stay (the client must
/// give up on them, as recorded).
fn scaled<'a>(name: &str, value: &'a str) -> &'a str {
    let honoured = value.trim().parse::<u64>().is_ok_and(|s| s <= 30);
    if name.eq_ignore_ascii_case("retry-after") && honoured {
        "0"
    } else {
        value
    }
}

fn respond(w: &mut TcpStream, r: &ResponseSpec, body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", r.status);
    let mut has_len = false;
    for (k, v) in &r.headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{k}: {}\r\n", scaled(k, v)));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}
