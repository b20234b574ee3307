//! The media key off the command line: `--media-key-file FILE` (`-`: stdin) and
//! `WAMEDIA_MEDIA_KEY`, so that no other user reads it from /proc/PID/cmdline.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn wamedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    c.env("XDG_CACHE_HOME", tempfile::tempdir().unwrap().keep());
    c.env_remove("WAMEDIA_MEDIA_KEY");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn decrypt_takes_the_key_from_a_file_from_stdin_or_the_environment_never_argv() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("in.txt");
    std::fs::write(&plain, b"a secret document").unwrap();
    let body = dir.path().join("body.enc");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY_HEX}\n")).unwrap();
    // encrypt with the key from the file: the argv holds no key.
    let o = wamedia()
        .args(["encrypt", "--type", "document", "--media-key-file"])
        .arg(&key_file)
        .arg(&plain)
        .arg(&body)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key_b64 = meta["media_key"].as_str().unwrap().to_owned();
    let sha = meta["file_sha256"].as_str().unwrap().to_owned();
    let decrypt = |i: usize| {
        let mut c = wamedia();
        c.args(["decrypt", "--type", "document", "--file-sha256", &sha])
            .arg(&body)
            .arg(dir.path().join(format!("back{i}.txt")));
        c
    };
    // From a file.
    let o = decrypt(0)
        .arg("--media-key-file")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // From stdin.
    let mut child = decrypt(1)
        .args(["--media-key-file", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key_b64.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // From the environment.
    let o = decrypt(2)
        .env("WAMEDIA_MEDIA_KEY", &key_b64)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..3 {
        assert_eq!(
            std::fs::read(dir.path().join(format!("back{i}.txt"))).unwrap(),
            b"a secret document"
        );
    }
    // None at all: a clear refusal naming the ways to give it.
    let o = decrypt(3).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--media-key-file"), "{}", stderr(&o));
    assert!(stderr(&o).contains("WAMEDIA_MEDIA_KEY"), "{}", stderr(&o));
    // Both a flag and a file: refused rather than guessed.
    let o = decrypt(4)
        .args(["--media-key", KEY_HEX, "--media-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A file with no key in it says so without echoing anything.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"\n").unwrap();
    let o = decrypt(5)
        .arg("--media-key-file")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no key"), "{}", stderr(&o));
}

#[test]
fn a_wrong_key_from_a_file_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "not-a-key-but-a-s3cret").unwrap();
    let o = wamedia()
        .args(["retry-receipt", "--message-id", "ABC", "--media-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
}

#[test]
fn the_environment_never_makes_an_encryption_reuse_a_key() {
    // WAMEDIA_MEDIA_KEY is for reading media; encrypt and upload reuse a key only when
    // asked on their own command line (--media-key-file).
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("in.txt");
    std::fs::write(&plain, b"x").unwrap();
    let o = wamedia()
        .env("WAMEDIA_MEDIA_KEY", KEY_HEX)
        .args(["encrypt", "--type", "document"])
        .arg(&plain)
        .arg(dir.path().join("out.enc"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(
        meta["media_key"].as_str().unwrap(),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    );
}
