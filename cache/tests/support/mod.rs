//! What the cache's scenarios share: a fake CDN, the blocking transport as the closure,
//! and a real `redis-server` when one is installed.

#![allow(dead_code)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use wamedia::{MediaType, UploadResult};
use wamedia_cache::UploadCache;
use wamedia_driver::Error;
use wamedia_driver::UploadJob;
use wamedia_fake_cdn::FakeCdn;
use wamedia_ureq::{Client, Options, UploadData};

pub fn client(cdn: &FakeCdn) -> Client {
    let mut o = Options::default();
    o.upload.retry.backoff_base = Duration::from_millis(10);
    Client::with_options(cdn.media_conn(Instant::now()), o).unwrap()
}

/// Plaintext that differs per `seed`.
pub fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

pub fn job() -> UploadJob {
    UploadJob::new(MediaType::Video)
}

/// One upload of `plain` through `cache` to `cdn`.
pub fn upload(cache: &UploadCache, cdn: &FakeCdn, plain: &[u8]) -> Result<UploadResult, Error> {
    cache.upload(&job(), Cursor::new(plain.to_vec()), |prepared, src| {
        client(cdn)
            .upload_prepared(prepared.clone(), UploadData::seekable(src))
            .wait()
    })
}

/// Upload `POST`s that carried a body, and resume probes, as the CDN saw them.
pub fn bodies_and_probes(cdn: &FakeCdn) -> (usize, usize) {
    let seen = cdn.seen();
    let probes = seen
        .iter()
        .filter(|r| r.target.contains("resume=1"))
        .count();
    let bodies = seen
        .iter()
        .filter(|r| r.method == "POST" && r.body_len > 0)
        .count();
    (bodies, probes)
}

/// A `redis-server` of its own on a free loopback port, killed on drop.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// `None` (after saying why) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let child = match std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: redis-server not found");
                return None;
            }
            Err(e) => panic!("starting redis-server: {e}"),
        };
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
            _dir: dir,
        };
        // Ready once it answers (a loaded machine may take a while to start it).
        for _ in 0..300 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() {
                    return Some(server);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server on port {port} never answered");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
