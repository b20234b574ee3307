//! The fake CDN as a long-running server (`wamedia serve`) facing hostile clients: what it
//! keeps, how many it serves, and how long a request head may take. One behaviour per
//! test; no assertion depends on how fast the machine is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wamedia_fake_cdn::{CdnConfig, FakeCdn};

/// Sends `head` and reads the answer's status line (`None`: closed without one).
fn status_of(cdn: &FakeCdn, head: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(cdn.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(head);
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).into_owned();
    text.lines().next().map(str::to_owned)
}

/// A `GET` of `target` with `n` headers of `len` bytes each.
fn head_with_headers(target: &str, n: usize, len: usize) -> Vec<u8> {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
    for i in 0..n {
        head.push_str(&format!("X-Pad-{i}: {}\r\n", "a".repeat(len)));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[test]
fn the_request_log_keeps_only_the_last_requests_cut_to_size() {
    let cdn = FakeCdn::with_config(CdnConfig {
        seen_limit: 16,
        ..CdnConfig::default()
    })
    .unwrap();
    // 40 heads of about 40 KiB each: kept whole, they would be 1.6 MB of log.
    for i in 0..40 {
        let status = status_of(&cdn, &head_with_headers(&format!("/probe/{i}"), 20, 2000));
        assert!(status.is_some_and(|s| s.contains(" 404 ")), "request {i}");
    }
    let seen = cdn.seen();
    assert_eq!(seen.len(), 16, "only the last 16 are kept");
    assert_eq!(cdn.seen_count(), 40, "all 40 were numbered");
    for (e, i) in seen.iter().zip(24..) {
        assert_eq!(e.target, format!("/probe/{i}"), "arrival order");
        assert_eq!(e.status, 404, "filled in when answered");
        assert!(e.truncated);
        let bytes: usize = e.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= 8 * 1024, "{bytes} header bytes kept");
        assert_eq!(e.headers[0], ("host".into(), "x".into()));
    }
}

#[test]
fn a_default_request_log_is_bounded() {
    let c = CdnConfig::default();
    assert!(c.seen_limit <= 4096, "{}", c.seen_limit);
    assert!(c.max_connections <= 1024, "{}", c.max_connections);
}

#[test]
fn answers_503_to_connections_over_the_cap_and_serves_again_once_they_go() {
    let cdn = FakeCdn::with_config(CdnConfig {
        max_connections: 4,
        // Longer than the test: the idle connections are not timed out under it.
        head_timeout: Duration::from_secs(600),
        ..CdnConfig::default()
    })
    .unwrap();
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(cdn.addr()).unwrap())
        .collect();
    let status = status_of(&cdn, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        status.as_deref().is_none_or(|s| s.contains(" 503 ")),
        "{status:?}"
    );
    drop(idle);
    // The idle connections' threads see them close; then there is room again.
    let mut answered = None;
    for _ in 0..600 {
        answered = status_of(&cdn, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
        if answered.as_deref().is_some_and(|s| s.contains(" 404 ")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        answered.as_deref().is_some_and(|s| s.contains(" 404 ")),
        "{answered:?}"
    );
}

#[test]
fn a_head_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let cdn = FakeCdn::with_config(CdnConfig {
        head_timeout: Duration::from_secs(1),
        ..CdnConfig::default()
    })
    .unwrap();
    let mut s = TcpStream::connect(cdn.addr()).unwrap();
    // Each read waits 100 ms: far less than the 30 s a silence may last, so only a
    // deadline for the head as a whole ends this.
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nX-Slow: ").unwrap();
    let mut answer = Vec::new();
    let mut closed = false;
    for _ in 0..600 {
        if s.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed || !answer.is_empty(),
        "still reading the head after 600 bytes"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[test]
fn a_head_over_64_kib_is_answered_431() {
    let cdn = FakeCdn::start().unwrap();
    // 90 headers of 1 KiB: each line within bounds, the head as a whole not.
    let status = status_of(&cdn, &head_with_headers("/x", 90, 1024));
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 431 ")),
        "{status:?}"
    );
    let status = status_of(&cdn, &head_with_headers("/x", 50, 1024));
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 404 ")),
        "a 50 KiB head is taken: {status:?}"
    );
}
