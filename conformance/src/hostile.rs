//! A hostile HTTP peer on 127.0.0.1: it answers every request the same wrong way
//! (an enormous JSON answer, an endless body, a trickle, a redirect, 401 forever, a
//! close-delimited body, a cut), so the transports' handling of a misbehaving CDN is
//! tested over real sockets. It counts the connections it saw and stops when dropped;
//! every write loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How every request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `200` with a `Content-Length` of this many bytes of JSON-looking filler.
    HugeJson(u64),
    /// `200`, chunked, never ending (until the client goes away or 8 GiB were sent).
    Endless,
    /// `200` with `Content-Length: len`, one byte every `every`.
    Trickle {
        /// Declared length.
        len: u64,
        /// Pause between bytes.
        every: Duration,
    },
    /// `302` to another address.
    Redirect(String),
    /// `401` to everything.
    Unauthorized,
    /// `200` with no length and no chunking: the body ends when the connection closes.
    CloseDelimited(Vec<u8>),
    /// `200` declaring this body's length, sending its first half, then closing.
    Cut(Vec<u8>),
    /// This status and body, with a `Content-Type`.
    Status(u16, &'static str, Vec<u8>),
}

/// A running hostile peer. Dropping it stops it.
pub struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hostile").field("addr", &self.addr).finish()
    }
}

impl Hostile {
    /// Starts serving `behaviour` on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub fn start(behaviour: Behaviour) -> std::io::Result<Hostile> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let (b, s2) = (behaviour.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = answer(conn, &b, &s2);
                });
            }
        });
        Ok(Hostile {
            addr,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:port`: a host string for a media connection.
    pub fn host(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads the request (head and a `Content-Length` body, bounded) and answers it.
fn answer(conn: TcpStream, b: &Behaviour, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut len = 0u64;
    for _ in 0..200 {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    std::io::copy(&mut r.by_ref().take(len.min(1 << 31)), &mut std::io::sink())?;
    let head = |w: &mut TcpStream, status: u16, extra: &str| {
        write!(w, "HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}\r\n")
    };
    match b {
        Behaviour::HugeJson(n) => {
            head(
                &mut w,
                200,
                &format!("Content-Type: application/json\r\nContent-Length: {n}\r\n"),
            )?;
            w.write_all(b"{\"url\":\"")?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = n.saturating_sub(8);
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let k = left.min(chunk.len() as u64);
                w.write_all(&chunk[..k as usize])?;
                left -= k;
            }
        }
        Behaviour::Endless => {
            head(&mut w, 200, "Transfer-Encoding: chunked\r\n")?;
            let chunk = vec![0x5a; 64 * 1024];
            for _ in 0..(8u64 << 30) / (64 * 1024) {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                write!(w, "{:x}\r\n", chunk.len())?;
                w.write_all(&chunk)?;
                w.write_all(b"\r\n")?;
            }
        }
        Behaviour::Trickle { len, every } => {
            head(&mut w, 200, &format!("Content-Length: {len}\r\n"))?;
            for _ in 0..*len {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                w.write_all(b"a")?;
                w.flush()?;
                std::thread::sleep(*every);
            }
        }
        Behaviour::Redirect(to) => {
            head(
                &mut w,
                302,
                &format!("Location: {to}\r\nContent-Length: 0\r\n"),
            )?;
        }
        Behaviour::Unauthorized => {
            head(&mut w, 401, "Content-Length: 12\r\n")?;
            w.write_all(b"unauthorized")?;
        }
        Behaviour::CloseDelimited(body) => {
            head(&mut w, 200, "")?;
            w.write_all(body)?;
        }
        Behaviour::Cut(body) => {
            head(&mut w, 200, &format!("Content-Length: {}\r\n", body.len()))?;
            w.write_all(&body[..body.len() / 2])?;
        }
        Behaviour::Status(code, ctype, body) => {
            head(
                &mut w,
                *code,
                &format!(
                    "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
                    body.len()
                ),
            )?;
            w.write_all(body)?;
        }
    }
    w.flush()
}

/// The plaintext every scenario moves.
pub const SAMPLE: &[u8] = b"a small picture, moved through a hostile network";

/// The test key of [`SAMPLE`].
pub fn sample_key() -> wamedia::MediaKey {
    wamedia::MediaKey::from_bytes([9; 32])
}

/// The encrypted body of [`SAMPLE`].
pub fn sample_body() -> Vec<u8> {
    wamedia::encrypt(sample_key(), &wamedia::MediaType::Image, SAMPLE)
        .expect("images are encrypted")
        .0
}

/// What a download scenario asks for: [`SAMPLE`] at `/d/x`, every check armed.
pub fn sample_download() -> wamedia::DownloadSpec {
    let (_, media) = wamedia::encrypt(sample_key(), &wamedia::MediaType::Image, SAMPLE)
        .expect("images are encrypted");
    wamedia::DownloadSpec {
        media_type: wamedia::MediaType::Image,
        media_key: Some(sample_key()),
        source: wamedia::Source::DirectPath("/d/x".into()),
        expected: wamedia::Expected {
            file_enc_sha256: Some(media.file_enc_sha256),
            file_sha256: Some(media.file_sha256),
            file_length: Some(SAMPLE.len() as u64),
        },
        streaming_sidecar: None,
    }
}
