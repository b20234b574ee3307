//! The HTTP/1.1 the fake CDN speaks: a bounded request head, request bodies framed by
//! `Content-Length` or `Transfer-Encoding: chunked`, and answers that close the connection.
//!
//! Everything here reads hostile bytes: lines and chunk sizes are bounded, numbers are
//! parsed with checks, and a framing error is an `InvalidData` error (a 400), never a panic.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Longest request line (method, target, version).
const MAX_REQUEST_LINE: usize = 16 * 1024;
/// Longest header line, and longest trailer line of a chunked body.
const MAX_HEADER_LINE: usize = 8 * 1024;
/// Most header (or trailer) lines.
const MAX_HEADERS: usize = 100;
/// The largest request head as a whole (request line and header lines): larger is a 431.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// How long [`linger`] waits for a client to close, in all.
const LINGER_FOR: Duration = Duration::from_secs(10);
/// Longest chunk-size line (`hex[;extensions]`).
const MAX_CHUNK_LINE: usize = 1024;
/// Largest single chunk; a bigger size is a malformed chunk.
const MAX_CHUNK: u64 = 1 << 32;
/// At most this many body bytes are drained before an error answer; a client still
/// sending after that may see its connection reset.
pub(super) const DRAIN_LIMIT: u64 = 256 << 20;

/// A request head.
pub(super) struct Req {
    /// The method, as sent.
    pub method: String,
    /// The request target, as sent.
    pub target: String,
    /// The target's path, percent-decoded (`+` stays `+`).
    pub path: String,
    /// The target's query pairs, form-decoded (`%XX` and `+`).
    pub query: Vec<(String, String)>,
    /// Header lines, in order, with lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Req {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query value of that name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// The request head is larger than [`MAX_HEAD`] (answer 431).
#[derive(Debug)]
struct HeadTooLarge;

impl std::fmt::Display for HeadTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request head larger than {MAX_HEAD} bytes")
    }
}

impl std::error::Error for HeadTooLarge {}

/// Whether `e` is [`read_head`]'s error for a head larger than [`MAX_HEAD`].
pub(super) fn is_head_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<HeadTooLarge>())
}

/// A connection's reader while its request head arrives: no read waits past `deadline`,
/// so a client trickling its head a byte at a time is cut off when the head's time is up
/// (a `TimedOut` error), not only after a silence.
pub(super) struct HeadReader<'a> {
    r: &'a mut BufReader<TcpStream>,
    deadline: Instant,
}

impl<'a> HeadReader<'a> {
    /// Reads from `r` until `deadline`.
    pub fn new(r: &'a mut BufReader<TcpStream>, deadline: Instant) -> Self {
        HeadReader { r, deadline }
    }
}

impl Read for HeadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let got = self.fill_buf()?;
            let n = got.len().min(buf.len());
            buf[..n].copy_from_slice(&got[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for HeadReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.r.buffer().is_empty() {
            let left = self
                .deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "request head too slow"))?;
            self.r.get_ref().set_read_timeout(Some(left))?;
        }
        self.r.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.r.consume(n);
    }
}

/// One line up to and including its LF, at most `max` bytes; `None` at a clean EOF.
fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "line cut short",
                ))
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len().saturating_add(take) > max {
            return Err(invalid("line too long"));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            return Ok(Some(line));
        }
    }
}

/// A head line without its `\r\n` or `\n`, as text.
fn head_line(line: &[u8]) -> io::Result<&str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).map_err(|_| invalid("head is not UTF-8"))
}

/// One head line: at most `max` bytes, and at most what is left of the head's
/// [`MAX_HEAD`] bytes (`left`, reduced by the line's length).
fn read_head_line(
    r: &mut impl BufRead,
    max: usize,
    left: &mut usize,
) -> io::Result<Option<Vec<u8>>> {
    let line = if *left < max {
        // A line too long for what is left of the head makes the head too large.
        read_line(r, *left).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                io::Error::new(io::ErrorKind::InvalidData, HeadTooLarge)
            } else {
                e
            }
        })?
    } else {
        read_line(r, max)?
    };
    if let Some(l) = &line {
        *left = left.saturating_sub(l.len());
    }
    Ok(line)
}

/// Reads a request head; `None` when the client closed without sending one.
///
/// # Errors
/// `InvalidData` for a malformed or oversized head (answer 400; 431 when the head as a
/// whole is over [`MAX_HEAD`], see [`is_head_too_large`]), else I/O errors.
pub(super) fn read_head(r: &mut impl BufRead) -> io::Result<Option<Req>> {
    let mut left = MAX_HEAD;
    let Some(line) = read_head_line(r, MAX_REQUEST_LINE, &mut left)? else {
        return Ok(None);
    };
    let line = head_line(&line)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(invalid("malformed request line"));
    }
    let mut headers = Vec::new();
    loop {
        let Some(h) = read_head_line(r, MAX_HEADER_LINE, &mut left)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "head cut short",
            ));
        };
        let h = head_line(&h)?;
        if h.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| invalid("header without ':'"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    Ok(Some(Req {
        method: method.to_owned(),
        target: target.to_owned(),
        path: percent_decode(path, false),
        query,
        headers,
    }))
}

/// Decodes `%XX` (and `+` as a space when `form`); a `%` not followed by two hex digits
/// stays as it is.
fn percent_decode(s: &str, form: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                // Two hex digits: at most 0xff.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) if form => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request target would change the host it is resolved against, if it would.
///
/// A target must start with exactly one `/`, hold no `\` and no `@` before the first
/// `/` (as sent and percent-decoded): `//evil.example/x`, `@evil.example/x` and
/// `\\evil.example` all name another host once a client prefixes `https://{host}`.
pub(super) fn target_problem(req: &Req) -> Option<&'static str> {
    let raw = req
        .target
        .split_once('?')
        .map_or(req.target.as_str(), |(p, _)| p);
    for p in [raw, req.path.as_str()] {
        let at = p.find('@');
        let slash = p.find('/');
        if !p.starts_with('/') || p.starts_with("//") {
            return Some("the request target must start with exactly one '/'");
        }
        if p.contains('\\') || req.target.contains('\\') {
            return Some("the request target contains '\\'");
        }
        if let (Some(a), Some(s)) = (at, slash) {
            if a < s {
                return Some("the request target has '@' before its first '/'");
            }
        }
    }
    None
}

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The body framing a head declares.
///
/// # Errors
/// Both `Content-Length` and `Transfer-Encoding`, a transfer coding other than
/// `chunked`, or a `Content-Length` that is not one decimal number (answer 400 and close:
/// the body cannot be told from what follows).
pub(super) fn framing(req: &Req) -> Result<Framing, &'static str> {
    let lengths: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let te = req.header("transfer-encoding");
    match (te, lengths.as_slice()) {
        (Some(_), [_, ..]) => Err("both Content-Length and Transfer-Encoding"),
        (Some(t), []) if t.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        (Some(_), []) => Err("unsupported Transfer-Encoding (only chunked)"),
        (None, []) => Ok(Framing::None),
        (None, [first, rest @ ..]) => {
            if rest.iter().any(|v| v != first) {
                return Err("conflicting Content-Length headers");
            }
            parse_decimal(first)
                .map(Framing::Length)
                .ok_or("Content-Length is not a decimal number")
        }
    }
}

/// A decimal `u64` of ASCII digits only (no sign, no spaces, no overflow).
pub(super) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A request body as a reader: `Ok(0)` at its proper end, `UnexpectedEof` when the
/// connection ends first, `InvalidData` for a malformed chunk.
pub(super) struct Body<'a, R> {
    r: &'a mut R,
    framing: Framing,
    /// Bytes left in the body (`Length`) or in the current chunk (`Chunked`).
    left: u64,
    /// A chunk's data was read and its CRLF is still due.
    crlf_due: bool,
    done: bool,
    received: u64,
}

impl<'a, R: BufRead> Body<'a, R> {
    /// The body that follows a head with this framing.
    pub fn new(r: &'a mut R, framing: Framing) -> Self {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Body {
            r,
            framing,
            left,
            crlf_due: false,
            done: framing == Framing::None,
            received: 0,
        }
    }

    /// How the body is framed.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Body bytes received so far (decoded, for chunked bodies).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the whole body is known to have been read, without reading further (a
    /// chunked body knows only once its last chunk is read).
    pub fn is_at_end(&self) -> bool {
        self.done || matches!(self.framing, Framing::Length(_)) && self.left == 0
    }

    /// Reads the next chunk-size line (after the previous chunk's CRLF); at the last
    /// chunk, reads the trailers and marks the body done.
    fn next_chunk(&mut self) -> io::Result<()> {
        if self.crlf_due {
            let mut crlf = [0u8; 2];
            self.r.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            self.crlf_due = false;
        }
        let line = read_line(self.r, MAX_CHUNK_LINE)?.ok_or_else(eof)?;
        let line = line
            .strip_suffix(b"\r\n")
            .ok_or_else(|| invalid("chunk size line not ended by CRLF"))?;
        let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let size = trim_ows(size);
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(invalid("malformed chunk size"));
        }
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| invalid("malformed chunk size"))?;
        if size > MAX_CHUNK {
            return Err(invalid("chunk too large"));
        }
        if size > 0 {
            self.left = size;
            return Ok(());
        }
        for _ in 0..=MAX_HEADERS {
            let t = read_line(self.r, MAX_HEADER_LINE)?.ok_or_else(eof)?;
            match t.as_slice() {
                b"\r\n" => {
                    self.done = true;
                    return Ok(());
                }
                t if t.ends_with(b"\r\n") => {}
                _ => return Err(invalid("trailer not ended by CRLF")),
            }
        }
        Err(invalid("too many trailers"))
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short")
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl<R: BufRead> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            match self.framing {
                Framing::Chunked => {
                    self.next_chunk()?;
                    if self.done {
                        return Ok(0);
                    }
                }
                _ => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let got = self.r.read(&mut buf[..want])?;
        if got == 0 {
            return Err(eof());
        }
        // got <= want <= left
        self.left -= got as u64;
        self.received = self.received.saturating_add(got as u64);
        if self.left == 0 && self.framing == Framing::Chunked {
            self.crlf_due = true;
        }
        Ok(got)
    }
}

/// Reads and drops the rest of a body, up to [`DRAIN_LIMIT`] bytes in all, so a client
/// that sends its whole body before reading gets to read the answer. Errors (a cut or
/// malformed body) end the draining quietly.
pub(super) fn drain<R: BufRead>(body: &mut Body<'_, R>) {
    let mut buf = vec![0u8; 64 * 1024];
    while !body.is_done() && body.received() < DRAIN_LIMIT {
        match body.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// The reason phrase of a status.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Status",
    }
}

/// Writes an answer head for a body of `len` bytes (the connection then closes).
pub(super) fn write_head(
    w: &mut impl Write,
    status: u16,
    len: u64,
    headers: &[(&str, String)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        reason(status)
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

/// Writes a whole answer.
pub(super) fn respond(
    w: &mut impl Write,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<u16> {
    write_head(w, status, body.len() as u64, headers)?;
    w.write_all(body)?;
    w.flush()?;
    Ok(status)
}

/// Writes a JSON answer.
pub(super) fn json(w: &mut impl Write, status: u16, v: &serde_json::Value) -> io::Result<u16> {
    respond(
        w,
        status,
        &[("Content-Type", "application/json".into())],
        v.to_string().as_bytes(),
    )
}

/// Drains the body (bounded), then answers `{"error": why}` with `status`.
pub(super) fn reject<R: BufRead>(
    w: &mut impl Write,
    body: &mut Body<'_, R>,
    status: u16,
    why: &str,
) -> io::Result<u16> {
    drain(body);
    json(w, status, &serde_json::json!({ "error": why }))
}

/// After answering a request whose body was not read to its end (a malformed chunk, a
/// body past [`DRAIN_LIMIT`]): stops sending, then reads and drops what the client still
/// sends (at most [`DRAIN_LIMIT`] bytes, 2 s of silence, 10 s in all) until it closes, so
/// that it reads the answer rather than a reset.
pub(super) fn linger(r: &mut impl Read, stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER_FOR;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    while total < DRAIN_LIMIT {
        let Some(left) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        let _ = stream.set_read_timeout(Some(left.min(Duration::from_secs(2))));
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total = total.saturating_add(n as u64),
        }
    }
}

/// `100 Continue`, for a client that waits for it before sending its body.
pub(super) fn write_continue(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    w.flush()
}

/// `bytes=a-` or `bytes=a-b` → `[a, b+1)` within `total`.
pub(super) fn parse_range(v: &str, total: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a = parse_decimal(a.trim())?;
    let end = if b.trim().is_empty() {
        total
    } else {
        parse_decimal(b.trim())?.saturating_add(1).min(total)
    };
    (a < end).then_some((a, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(wire: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = io::BufReader::new(wire);
        let mut out = Vec::new();
        Body::new(&mut r, Framing::Chunked).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let wire = b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(chunked(wire).unwrap(), b"abcde");
    }

    #[test]
    fn refuses_malformed_chunks() {
        for wire in [
            &b"3\r\nabcd\r\n0\r\n\r\n"[..],
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"200000000\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"-1\r\n",
        ] {
            let e = chunked(wire).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{wire:?}");
        }
        let e = chunked(b"5\r\nab").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn decodes_form_values_without_panicking_on_odd_percents() {
        assert_eq!(percent_decode("a%3D+b", true), "a= b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%aé%", true), "%aé%");
        assert_eq!(percent_decode("%", true), "%");
    }
}
