//! `wamedia stream` and `wamedia serve` facing hostile clients on loopback: who is
//! answered, how much a connection may send or hold, and edge lengths. No assertion
//! depends on how fast the machine is; every loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn wamedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    c.env("XDG_CACHE_HOME", fresh_cache());
    c
}

/// A cache folder no other run uses.
fn fresh_cache() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("servers-cache")
        .join(format!("{}-{n}", std::process::id()))
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Starts `wamedia ARGS...` and reads its first stdout line.
    fn start(args: &[&str]) -> (Running, String) {
        let mut child = Running(
            wamedia()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (child, line)
    }

    /// VmRSS of the process, in KiB.
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// `wamedia stream` of a media of `file_length` bytes behind a CDN nobody listens on
/// (enough for everything that never reaches the CDN); its URL.
fn stream_of_length(file_length: &str, extra: &[&str]) -> (Running, String) {
    let mut args = vec![
        "stream",
        "--type",
        "video",
        "--auth",
        "a",
        "--host",
        "http://127.0.0.1:9",
        "--direct-path",
        "/v/t62.7161-24/1?ccb=11-4",
        "--media-key",
        KEY_HEX,
        "--file-length",
        file_length,
        "--streaming-sidecar",
        "AAAAAAAAAAA=",
    ];
    args.extend(extra);
    let (child, line) = Running::start(&args);
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, v["url"].as_str().unwrap().to_owned())
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (hostport, path) = rest.split_once('/').unwrap();
    (hostport.to_owned(), format!("/{path}"))
}

/// Sends `head` to `hostport` and reads the whole answer: `(head, body)`, or `None` when
/// the connection closed without one.
fn exchange(hostport: &str, head: &str) -> Option<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).ok()?;
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    ))
}

/// A `GET` (or `method`) of `path` with these header lines.
fn request(
    hostport: &str,
    method: &str,
    path: &str,
    headers: &[String],
) -> Option<(String, Vec<u8>)> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    exchange(hostport, &head)
}

fn status(answer: &Option<(String, Vec<u8>)>) -> Option<u16> {
    answer.as_ref()?.0.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn stream_refuses_a_non_loopback_addr_without_allow_remote() {
    let mut child = Running(
        wamedia()
            .args([
                "stream",
                "--type",
                "video",
                "--auth",
                "a",
                "--host",
                "http://127.0.0.1:9",
                "--direct-path",
                "/v/x",
                "--media-key",
                KEY_HEX,
                "--file-length",
                "10",
                "--streaming-sidecar",
                "AAAAAAAAAAA=",
                "--addr",
                "0.0.0.0:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut code = None;
    for _ in 0..1200 {
        if let Some(s) = child.0.try_wait().unwrap() {
            code = s.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        code,
        Some(2),
        "still listening on 0.0.0.0 (or another exit)"
    );
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("--allow-remote"), "{err}");
}

#[test]
fn stream_refuses_a_host_header_other_than_its_loopback_address() {
    let (_child, url) = stream_of_length("0", &[]);
    let (hostport, path) = split_url(&url);
    let port = hostport.rsplit_once(':').unwrap().1;
    // A DNS-rebinding page reaches 127.0.0.1 under its own name.
    for host in [
        format!("Host: evil.example:{port}"),
        "Host: evil.example".to_owned(),
        format!("Host: 127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
    ] {
        let a = request(&hostport, "GET", &path, std::slice::from_ref(&host));
        assert_eq!(status(&a), Some(421), "{host}: {a:?}");
    }
    let a = request(&hostport, "GET", &path, &[]);
    assert_eq!(status(&a), Some(421), "no Host: {a:?}");
    for host in [
        format!("Host: 127.0.0.1:{port}"),
        format!("Host: LOCALHOST:{port}"),
        format!("Host: [::1]:{port}"),
    ] {
        let a = request(&hostport, "GET", &path, std::slice::from_ref(&host));
        assert_eq!(status(&a), Some(200), "{host}: {a:?}");
    }
}

#[test]
fn stream_serves_only_the_random_token_path_of_its_url() {
    let (_child, url) = stream_of_length("0", &[]);
    let (hostport, path) = split_url(&url);
    let token = path.split('/').nth(1).unwrap();
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url}"
    );
    let (_other, url2) = stream_of_length("0", &[]);
    assert_ne!(split_url(&url2).1, path, "each stream has its own token");
    let host = format!("Host: {hostport}");
    for p in [
        "/media".to_owned(),
        "/".to_owned(),
        format!("/{}/media", "0".repeat(32)),
        format!("{path}x"),
        path.trim_end_matches("/media").to_owned(),
    ] {
        let a = request(&hostport, "GET", &p, std::slice::from_ref(&host));
        assert_eq!(status(&a), Some(404), "{p}: {a:?}");
    }
    assert_eq!(
        status(&request(&hostport, "GET", &path, &[host])),
        Some(200)
    );
}

#[test]
fn stream_with_file_length_zero_answers_empty_and_keeps_serving() {
    // `--file-length 0` once underflowed (`b - 1`): a debug build's thread panicked.
    let (child, url) = stream_of_length("0", &[]);
    let (hostport, path) = split_url(&url);
    let host = format!("Host: {hostport}");
    // More requests than the stream has slots: none may be leaked.
    for i in 0..24 {
        let a = request(&hostport, "GET", &path, std::slice::from_ref(&host));
        let (head, body) = a
            .as_ref()
            .unwrap_or_else(|| panic!("request {i}: no answer"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Length: 0"), "{head}");
        assert!(body.is_empty());
        for r in ["bytes=0-", "bytes=-1", "bytes=0-0"] {
            let a = request(
                &hostport,
                "GET",
                &path,
                &[host.clone(), format!("Range: {r}")],
            );
            let head = &a.as_ref().expect("an answer").0;
            assert!(head.starts_with("HTTP/1.1 416"), "{r}: {head}");
            assert!(head.contains("Content-Range: bytes */0"), "{r}: {head}");
        }
    }
    drop(child);
}

#[test]
fn stream_answers_edge_lengths_with_exact_ranges() {
    let max = u64::MAX.to_string();
    let cases: &[(&str, &str, &str)] = &[
        ("1", "bytes=0-0", "bytes 0-0/1"),
        ("1", "bytes=-5", "bytes 0-0/1"),
        (
            &max,
            "bytes=0-",
            "bytes 0-18446744073709551614/18446744073709551615",
        ),
        (
            &max,
            "bytes=18446744073709551613-",
            "bytes 18446744073709551613-18446744073709551614/18446744073709551615",
        ),
    ];
    for (len, range, want) in cases {
        let (_child, url) = stream_of_length(len, &[]);
        let (hostport, path) = split_url(&url);
        // HEAD: the answer's head without asking the CDN.
        let a = request(
            &hostport,
            "HEAD",
            &path,
            &[format!("Host: {hostport}"), format!("Range: {range}")],
        );
        let head = &a.as_ref().expect("an answer").0;
        assert!(head.starts_with("HTTP/1.1 206"), "{len} {range}: {head}");
        assert!(head.contains(&format!("Content-Range: {want}")), "{head}");
    }
}

#[test]
fn stream_bounds_a_request_line_that_never_ends() {
    let (child, url) = stream_of_length("10", &[]);
    let (hostport, _) = split_url(&url);
    let mut s = TcpStream::connect(&hostport).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // Up to 64 MiB of request line: the stream must stop reading long before.
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    s.write_all(b"GET /").unwrap();
    while sent < 64 << 20 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(
        sent < 64 << 20,
        "the stream took {sent} bytes of one request line"
    );
    if let Some(kib) = child.rss_kib() {
        assert!(kib < 256 * 1024, "{kib} KiB resident");
    }
}

#[test]
fn stream_keeps_serving_the_player_while_idle_clients_hold_every_slot() {
    let (_child, url) = stream_of_length("0", &[]);
    let (hostport, path) = split_url(&url);
    // Twice as many idle connections as the stream serves at once, some silent, some
    // stuck halfway through their head.
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut s = TcpStream::connect(&hostport).unwrap();
        if i % 2 == 0 {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ");
        }
        idle.push(s);
    }
    let a = request(&hostport, "GET", &path, &[format!("Host: {hostport}")]);
    assert_eq!(status(&a), Some(200), "the player is locked out: {a:?}");
    drop(idle);
}

#[test]
fn serve_answers_503_past_its_connection_cap_rather_than_a_thread_each() {
    // The default cap is 256; the fake CDN's own tests check 503 with a small cap. Here:
    // many idle connections do not stop `serve` from answering once they close, and its
    // thread count stays under the cap plus a few.
    let (child, conn) = Running::start(&["serve", "--addr", "127.0.0.1:0", "--auth", "x"]);
    let v: serde_json::Value = serde_json::from_str(&conn).unwrap();
    let host = v["hosts"][0].as_str().unwrap().to_owned();
    let hostport = host.strip_prefix("http://").unwrap().to_owned();
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&hostport).unwrap())
        .collect();
    // The 300 connections are accepted (or refused) in order; one more request shows
    // the accept loop has seen them all.
    // (404 only if the machine is so slow that the first ones' heads timed out.)
    let a = request(&hostport, "GET", "/x", &["Host: x".to_owned()]);
    assert!(matches!(status(&a), None | Some(503) | Some(404)), "{a:?}");
    let threads = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
        });
    if let Some(t) = threads {
        assert!(t <= 256 + 8, "{t} threads for 300 idle connections");
    }
    drop(idle);
    let mut answered = None;
    for _ in 0..600 {
        answered = status(&request(&hostport, "GET", "/x", &["Host: x".to_owned()]));
        if answered == Some(404) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answered, Some(404));
}

#[test]
fn serve_keeps_bounded_memory_after_requests_with_large_headers() {
    let (child, conn) = Running::start(&["serve", "--addr", "127.0.0.1:0", "--auth", "x"]);
    let v: serde_json::Value = serde_json::from_str(&conn).unwrap();
    let hostport = v["hosts"][0]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    let pad = "a".repeat(8000);
    let headers: Vec<String> = (0..99).map(|i| format!("X-Pad-{i}: {pad}")).collect();
    // 400 heads of 800 KB: 320 MB resident once, when the log kept every head whole.
    for i in 0..400 {
        let a = request(&hostport, "GET", &format!("/x/{i}"), &headers);
        assert!(
            matches!(status(&a), None | Some(431)),
            "request {i}: {:?}",
            status(&a)
        );
    }
    if let Some(kib) = child.rss_kib() {
        eprintln!("wamedia serve after 400 requests of 800 KB heads: VmRSS {kib} KiB");
        assert!(kib < 128 * 1024, "{kib} KiB resident");
    }
}

/// Sends a request for `path` and reads only the answer's head (the body may never come).
fn head_only(hostport: &str, path: &str) -> (TcpStream, Option<String>) {
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nRange: bytes=0-\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return (s, None),
        }
    }
    (s, Some(String::from_utf8_lossy(&head).into_owned()))
}

#[test]
fn stream_serves_the_player_while_stalled_downloads_hold_every_slot() {
    // A CDN that takes connections and never answers: every download stalls.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cdn = format!("http://{}", silent.local_addr().unwrap());
    let (_child, line) = Running::start(&[
        "stream",
        "--quiet",
        "--type",
        "video",
        "--auth",
        "a",
        "--host",
        &cdn,
        "--direct-path",
        "/v/t62.7161-24/1?ccb=11-4",
        "--media-key",
        KEY_HEX,
        "--file-length",
        "1000000",
        "--streaming-sidecar",
        "AAAAAAAAAAA=",
    ]);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().to_owned();
    let (hostport, path) = split_url(&url);
    // Three times the stream's slots, each past its head and waiting on the CDN.
    let mut held = Vec::new();
    for i in 0..24 {
        let (s, head) = head_only(&hostport, &path);
        let head = head.unwrap_or_else(|| panic!("client {i} was not answered"));
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        held.push(s);
    }
    drop(held);
}
