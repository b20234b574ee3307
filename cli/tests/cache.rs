//! `wamedia upload`'s upload cache as a person (or a fleet) runs it: the same file sent
//! twice goes up once, and two processes sending it at the same moment send one body.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use wamedia_conformance::FakeCdn;

/// `wamedia` with a cache folder of the test's own (never the user's, never another
/// test's).
fn wamedia(cache_home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    c.env("XDG_CACHE_HOME", cache_home);
    c
}

fn upload_args(cdn: &FakeCdn, file: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["upload", "--quiet", "--no-info", "--type", "document"]
        .map(String::from)
        .to_vec();
    a.extend(["--auth".into(), cdn.auth(), "--host".into(), cdn.host()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(file.display().to_string());
    a
}

fn json_line(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "exactly one line on stdout: {s:?}");
    serde_json::from_str(s.trim()).unwrap()
}

/// Upload `POST`s with a body, and resume probes, as the CDN saw them.
fn bodies_and_probes(cdn: &FakeCdn) -> (usize, usize) {
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

fn file_of(dir: &Path, len: usize, seed: u32) -> PathBuf {
    let bytes: Vec<u8> = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect();
    let p = dir.join(format!("file-{seed}.bin"));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn the_same_file_twice_goes_up_once_and_the_second_says_cached() {
    let cdn = FakeCdn::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let file = file_of(home.path(), 700_000, 1);
    let run = |extra: &[&str]| {
        json_line(
            &wamedia(home.path())
                .args(upload_args(&cdn, &file, extra))
                .output()
                .unwrap(),
        )
    };
    let first = run(&[]);
    assert!(first.get("cached").is_none(), "{first}");
    let again = run(&[]);
    assert_eq!(again["cached"], true, "{again}");
    assert_eq!(again["media_key"], first["media_key"]);
    assert_eq!(again["file_enc_sha256"], first["file_enc_sha256"]);
    assert_eq!(again["direct_path"], first["direct_path"]);
    assert_eq!(bodies_and_probes(&cdn), (1, 1), "no second body");
    // The default store is private, in the cache folder.
    use std::os::unix::fs::PermissionsExt as _;
    let db = home.path().join("wamedia/uploads.redb");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // --no-cache: a fresh key and the whole body.
    let fresh = run(&["--no-cache"]);
    assert!(fresh.get("cached").is_none());
    assert_ne!(fresh["media_key"], first["media_key"]);
    assert_eq!(bodies_and_probes(&cdn), (2, 1));
    // --cache PATH: another store, which has never seen the file.
    let other = home.path().join("elsewhere.redb");
    let there = run(&["--cache", other.to_str().unwrap()]);
    assert!(there.get("cached").is_none());
    assert_eq!(run(&["--cache", other.to_str().unwrap()])["cached"], true);
}

#[test]
fn the_embedded_cdn_is_new_in_each_run_so_nothing_is_looked_up() {
    let home = tempfile::tempdir().unwrap();
    let file = file_of(home.path(), 10_000, 2);
    for _ in 0..2 {
        let out = wamedia(home.path())
            .args(["upload", "--quiet", "--no-info", "--type", "document"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(json_line(&out).get("cached").is_none());
    }
    assert!(!home.path().join("wamedia/uploads.redb").exists());
}

#[test]
fn a_cache_named_but_unreachable_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let file = file_of(home.path(), 1000, 3);
    let cdn = FakeCdn::start().unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://:hunter2@127.0.0.1:{dead}/0");
    let out = wamedia(home.path())
        .args(upload_args(&cdn, &file, &["--cache", &url]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--cache") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "no password in errors: {err}");
    assert!(cdn.seen().is_empty(), "nothing sent");
}

/// Two `wamedia upload`s of one file started together: one body in all, and the run
/// that did not send it says `"cached": true`.
fn two_at_once(cdn: &FakeCdn, home: &Path, file: &Path, extra: &[&str]) {
    let spawn = || -> Child {
        wamedia(home)
            .args(upload_args(cdn, file, extra))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let lines: Vec<_> = outs.iter().map(json_line).collect();
    assert_eq!(lines[0]["media_key"], lines[1]["media_key"]);
    let cached = lines.iter().filter(|l| l["cached"] == true).count();
    assert_eq!(cached, 1, "{lines:?}");
    assert_eq!(bodies_and_probes(cdn).0, 1, "one body for two processes");
}

#[test]
fn two_processes_at_once_on_the_disk_store_send_one_body() {
    let cdn = FakeCdn::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let file = file_of(home.path(), 6 << 20, 4);
    two_at_once(&cdn, home.path(), &file, &[]);
}

/// A `redis-server` of its own on a free loopback port, killed on drop.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
struct RedisServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
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
            url: format!("redis://127.0.0.1:{port}/3"),
            _dir: dir,
        };
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

#[cfg(feature = "redis")]
#[test]
fn a_fleet_sharing_redis_sends_each_file_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cdn = FakeCdn::start().unwrap();
    // Each worker has a cache folder of its own: only Redis is shared.
    let (home1, home2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = file_of(home1.path(), 6 << 20, 5);
    two_at_once(&cdn, home1.path(), &file, &["--cache", &redis.url]);
    let later = json_line(
        &wamedia(home2.path())
            .args(upload_args(&cdn, &file, &["--cache", &redis.url]))
            .output()
            .unwrap(),
    );
    assert_eq!(later["cached"], true, "{later}");
    assert_eq!(bodies_and_probes(&cdn).0, 1);
    assert!(!home1.path().join("wamedia/uploads.redb").exists());
}
