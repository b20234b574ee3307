//! The server of `wamedia stream`: decrypted, sidecar-verified plaintext for a local
//! player, and for no one else.
//!
//! It listens on loopback only unless `--allow-remote`; answers only requests whose
//! `Host` names that loopback address (a page whose name was rebound to 127.0.0.1 sends
//! its own name, and gets 421) and whose path carries the random token of the printed
//! URL (others get 404). Every connection is bounded: its request head to 32 KiB
//! (else 431) arriving within 10 s, each write to 20 s. Eight connections are served at
//! once; a ninth evicts a connection still waiting for its head, else the oldest one, so
//! idle or slow clients cannot lock the player out, and at most 64 connection threads
//! (those evicted and still winding down included) exist at once.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::{client_opts, conn_provider};
use crate::session::Stream;
use crate::{Fail, Net};

/// Connections served at once.
const SLOTS: usize = 8;
/// Connections alive at once, evicted ones still winding down included; a connection
/// past it is closed at once.
const MAX_ALIVE: usize = 8 * SLOTS;
/// How long a request head may take to arrive, as a whole.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to the player may wait.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest request or header line.
const MAX_LINE: usize = 8 * 1024;
/// The largest request head as a whole.
const MAX_HEAD: usize = 32 * 1024;
/// Most header lines.
const MAX_HEADERS: usize = 100;

/// `wamedia stream`: serves the media's plaintext on `addr` (loopback unless
/// `allow_remote`), answering `Range` requests from ranged downloads whose every window
/// is checked against the sidecar before a byte goes to the player. Prints
/// `{"url": …}` (with its random token) and serves until stopped.
pub fn serve(s: Stream, addr: &str, allow_remote: bool, net: &Net) -> Result<(), Fail> {
    let listener = bind(addr, allow_remote)?;
    let local = listener
        .local_addr()
        .map_err(|e| Fail::usage(format!("--addr {addr}: {e}")))?;
    conn_provider(net)?.ok_or_else(|| {
        Fail::usage(
            "stream needs a media connection: --media-conn-command, --media-conn, or --auth/--host",
        )
    })?;
    let site = Arc::new(Site {
        path: format!("/{}/media", token()?),
        hosts: (!allow_remote).then(|| allowed_hosts(local)),
        stream: s,
    });
    let url = format!("http://{local}{}", site.path);
    println!("{}", serde_json::json!({ "url": url }));
    let _ = io::stdout().flush();
    if !net.quiet {
        eprintln!("wamedia: streaming verified plaintext on {url} (Ctrl-C to stop)");
    }
    let slots = Arc::new(Slots::default());
    let mut failures = 0u32;
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // Out of file descriptors, say: the next accept fails at once too.
                failures = failures.saturating_add(1);
                std::thread::sleep(accept_backoff(failures));
                continue;
            }
        };
        let Some(slot) = Slots::admit(&slots, &conn) else {
            continue;
        };
        let (site, net) = (site.clone(), net.clone());
        let _ = std::thread::Builder::new().spawn(move || {
            let _ = serve_player(conn, &site, &slot.serving, &net);
            drop(slot);
        });
    }
    Ok(())
}

/// The pause after `failures` accept errors in a row: 10 ms, doubling, at most 1 s.
fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1u64 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// Binds `addr`: one of its loopback addresses, or any of them with `allow_remote`.
fn bind(addr: &str, allow_remote: bool) -> Result<TcpListener, Fail> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Fail::usage(format!("--addr {addr}: not an address HOST:PORT ({e})")))?
        .collect();
    let candidates: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| allow_remote || a.ip().is_loopback())
        .collect();
    if candidates.is_empty() && !addrs.is_empty() {
        return Err(Fail::usage(format!(
            "--addr {addr} is not a loopback address: stream serves decrypted media, so it \
             listens on 127.0.0.1, [::1] or localhost unless --allow-remote is given"
        )));
    }
    let mut last = format!("--addr {addr}: the name resolves to no address");
    for a in candidates {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = format!("cannot listen on {a} (--addr {addr}): {e}"),
        }
    }
    Err(Fail::usage(last))
}

/// The `Host` values a local player sends for `local` (lower case).
fn allowed_hosts(local: SocketAddr) -> Vec<String> {
    let p = local.port();
    let mut hosts = vec![
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        format!("[::1]:{p}"),
        local.to_string(),
    ];
    if p == 80 {
        hosts.extend(["127.0.0.1".into(), "localhost".into(), "[::1]".into()]);
        hosts.push(match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        });
    }
    hosts
}

/// 128 bits from the OS, as 32 hex digits: the path nobody else can guess.
fn token() -> Result<String, Fail> {
    let mut t = [0u8; 16];
    getrandom::fill(&mut t).map_err(|e| Fail::usage(format!("no randomness: {e}")))?;
    Ok(t.iter().map(|b| format!("{b:02x}")).collect())
}

/// What every connection answers from.
struct Site {
    stream: Stream,
    /// `/{token}/media`.
    path: String,
    /// The `Host` values taken; `None` (any) with `--allow-remote`.
    hosts: Option<Vec<String>>,
}

/// One connection in [`Slots`].
struct Entry {
    id: u64,
    /// Its request head was read and found good: it is serving the player.
    serving: Arc<AtomicBool>,
    /// A handle to shut it down with.
    conn: TcpStream,
    evicted: bool,
}

/// The connections alive.
#[derive(Default)]
struct Slots {
    list: Mutex<Vec<Entry>>,
    next: std::sync::atomic::AtomicU64,
}

/// A connection's place in [`Slots`], given up when dropped.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    serving: Arc<AtomicBool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().retain(|e| e.id != self.id);
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for `conn`, evicting another connection when all [`SLOTS`] are taken: one
    /// still waiting for its head first, else the oldest. `None` (close it) when
    /// [`MAX_ALIVE`] connections are still winding down.
    fn admit(this: &Arc<Slots>, conn: &TcpStream) -> Option<Slot> {
        let handle = conn.try_clone().ok()?;
        let mut list = this.lock();
        if list.len() >= MAX_ALIVE {
            return None;
        }
        if list.iter().filter(|e| !e.evicted).count() >= SLOTS {
            let victim = list
                .iter_mut()
                .filter(|e| !e.evicted)
                .min_by_key(|e| (e.serving.load(Ordering::SeqCst), e.id));
            if let Some(v) = victim {
                let _ = v.conn.shutdown(Shutdown::Both);
                v.evicted = true;
            }
        }
        let id = this.next.fetch_add(1, Ordering::SeqCst);
        let serving = Arc::new(AtomicBool::new(false));
        list.push(Entry {
            id,
            serving: serving.clone(),
            conn: handle,
            evicted: false,
        });
        Some(Slot {
            slots: this.clone(),
            id,
            serving,
        })
    }
}

/// A request head, as far as the stream needs it.
#[derive(Debug, Default)]
struct Head {
    method: String,
    target: String,
    host: Option<String>,
    range: Option<String>,
}

/// Why no request head was read.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// Over [`MAX_LINE`], [`MAX_HEAD`] or [`MAX_HEADERS`] (answer 431).
    TooLarge,
    /// Not a request head (answer 400).
    Malformed,
    /// Closed, failed, or not whole by the deadline (close).
    Gone,
}

/// One head line without its line end, at most [`MAX_LINE`] bytes and what is `left` of
/// the head, read by `deadline`.
fn read_line(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
    left: &mut usize,
) -> Result<String, HeadError> {
    let max = MAX_LINE.min(*left);
    let mut line = Vec::new();
    loop {
        if r.buffer().is_empty() {
            let rest = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(HeadError::Gone)?;
            r.get_ref()
                .set_read_timeout(Some(rest))
                .map_err(|_| HeadError::Gone)?;
        }
        let buf = r.fill_buf().map_err(|_| HeadError::Gone)?;
        if buf.is_empty() {
            return Err(HeadError::Gone);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len().saturating_add(take) > max {
            return Err(HeadError::TooLarge);
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            *left = left.saturating_sub(line.len());
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            return String::from_utf8(text.to_vec()).map_err(|_| HeadError::Malformed);
        }
    }
}

/// Reads a request head, whole, by `deadline`.
fn read_head(r: &mut BufReader<TcpStream>, deadline: Instant) -> Result<Head, HeadError> {
    let mut left = MAX_HEAD;
    let line = read_line(r, deadline, &mut left)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    let mut head = Head {
        method: method.to_owned(),
        target: target.to_owned(),
        ..Head::default()
    };
    for _ in 0..=MAX_HEADERS {
        let h = read_line(r, deadline, &mut left)?;
        if h.is_empty() {
            return Ok(head);
        }
        let (k, v) = h.split_once(':').ok_or(HeadError::Malformed)?;
        let k = k.trim();
        if k.eq_ignore_ascii_case("host") {
            if head.host.is_some() {
                return Err(HeadError::Malformed);
            }
            head.host = Some(v.trim().to_ascii_lowercase());
        } else if k.eq_ignore_ascii_case("range") {
            head.range = Some(v.trim().to_owned());
        }
    }
    Err(HeadError::TooLarge)
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Writes a bodiless answer.
fn answer(w: &mut TcpStream, status: &str, extra: &str) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    w.flush()
}

/// After an answer sent before the request was read whole: stops sending and drops what
/// the client still sends (at most 1 MiB, for at most 2 s), so that it reads the answer
/// rather than a reset.
fn linger(r: &mut BufReader<TcpStream>, w: &TcpStream) {
    let _ = w.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0usize;
    while total < 1 << 20 {
        let Some(rest) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        let _ = w.set_read_timeout(Some(rest));
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total = total.saturating_add(n),
        }
    }
}

fn serve_player(conn: TcpStream, site: &Site, serving: &AtomicBool, net: &Net) -> io::Result<()> {
    conn.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let head = match read_head(&mut r, Instant::now() + HEAD_TIMEOUT) {
        Ok(h) => h,
        Err(HeadError::Gone) => return Ok(()),
        Err(e) => {
            let status = if e == HeadError::TooLarge {
                "431 Request Header Fields Too Large"
            } else {
                "400 Bad Request"
            };
            answer(&mut w, status, "")?;
            linger(&mut r, &w);
            return Ok(());
        }
    };
    if let Some(hosts) = &site.hosts {
        if !head.host.as_ref().is_some_and(|h| hosts.contains(h)) {
            // A page whose name was rebound to 127.0.0.1 sends its own name.
            return answer(&mut w, "421 Misdirected Request", "");
        }
    }
    let path = head
        .target
        .split_once('?')
        .map_or(head.target.as_str(), |(p, _)| p);
    if !same(path, &site.path) {
        return answer(&mut w, "404 Not Found", "");
    }
    let method = head.method.as_str();
    if !(method == "GET" || method == "HEAD") {
        return answer(&mut w, "405 Method Not Allowed", "Allow: GET, HEAD\r\n");
    }
    serving.store(true, Ordering::SeqCst);
    let s = &site.stream;
    let len = s.spec.expected.file_length.unwrap_or(0);
    let (status, (a, b)) = match head.range.as_deref().map(|v| parse_range(v, len)) {
        None => ("200 OK", (0, len)),
        Some(Some(ab)) => ("206 Partial Content", ab),
        Some(None) => {
            return answer(
                &mut w,
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{len}\r\n"),
            )
        }
    };
    let count = b.saturating_sub(a);
    // `[a, b)` is not empty here: `last` is `b - 1`.
    let last = b.checked_sub(1);
    let content_range = match (status.starts_with("206"), last) {
        (true, Some(last)) => format!("Content-Range: bytes {a}-{last}/{len}\r\n"),
        _ => String::new(),
    };
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {count}\r\n{content_range}Connection: close\r\n\r\n",
        s.content_type,
    )?;
    // Nothing to send (a HEAD, or empty media): the CDN is not asked.
    let Some(last) = last.filter(|_| method == "GET" && count > 0) else {
        return w.flush();
    };
    let Ok(Some(provider)) = conn_provider(net) else {
        return Ok(());
    };
    let started = Instant::now();
    let r = crate::net::run(
        net,
        client_opts(net, false),
        &crate::net::share(provider),
        crate::net::Range {
            spec: s.spec.clone(),
            range: a..b,
            out: &mut w,
        },
    );
    if let (Err(e), false) = (r, net.quiet) {
        eprintln!(
            "wamedia: bytes {a}-{last} not served after {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            wamedia::escape(&e.to_string())
        );
    }
    w.flush()
}

/// A decimal `u64` of ASCII digits only (no sign, no spaces).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → `a..b+1` within `len`; `None` when unsatisfiable
/// (empty media included: no range of it is).
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let r = v.trim().strip_prefix("bytes=")?;
    if r.contains(',') {
        return None;
    }
    let (a, b) = r.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => (len.saturating_sub(decimal(n)?), len),
        (a, "") => (decimal(a)?, len),
        (a, b) => {
            let (a, b) = (decimal(a)?, decimal(b)?);
            if b < a {
                return None;
            }
            (a, b.saturating_add(1).min(len))
        }
    };
    (a < b && a < len).then_some((a, b))
}

#[cfg(all(test, feature = "ureq"))]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn ranges_at_the_edges_of_u64_and_of_empty_media() {
        for r in ["bytes=0-", "bytes=-1", "bytes=0-0", "bytes=-0", "bytes=5-"] {
            assert_eq!(parse_range(r, 0), None, "{r}");
        }
        assert_eq!(parse_range("bytes=-0", 10), None);
        assert_eq!(parse_range("bytes=9-3", 10), None);
        assert_eq!(parse_range("bytes=+1-2", 10), None);
        assert_eq!(parse_range("bytes=0-0", 1), Some((0, 1)));
        let max = u64::MAX;
        assert_eq!(parse_range(&format!("bytes=0-{max}"), max), Some((0, max)));
        assert_eq!(parse_range(&format!("bytes=-{max}"), max), Some((0, max)));
        assert_eq!(parse_range(&format!("bytes={max}-"), max), None);
        assert_eq!(parse_range("bytes=-99999999999999999999", 5), None);
    }

    #[test]
    fn the_token_is_128_random_bits() {
        let (Ok(a), Ok(b)) = (token(), token()) else {
            panic!("no randomness");
        };
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
