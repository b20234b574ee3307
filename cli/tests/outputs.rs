//! What `wamedia` leaves on disk against other runs and other users of the same folder:
//! outputs never replace a device, a FIFO or what a symbolic link points to; temporaries
//! have recognisable names and a killed run's are cleaned by the next; a download whose
//! partial file another run holds is refused.
#![cfg(unix)]

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::process::{Command, Output};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn wamedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    let cache = tempfile::tempdir().unwrap().keep();
    c.env("XDG_CACHE_HOME", cache);
    c
}

fn run(args: &[&str]) -> Output {
    wamedia().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn encrypt(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["encrypt", "--type", "document", "--media-key", KEY_HEX];
    args.extend(extra);
    args.push(input.to_str().unwrap());
    args.push(out.to_str().unwrap());
    run(&args)
}

fn mkfifo(p: &Path) -> bool {
    Command::new("mkfifo")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn writing_into_a_fifo_never_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"some document").unwrap();
    let fifo = dir.path().join("pipe");
    if !mkfifo(&fifo) {
        eprintln!("skipped: mkfifo could not make a FIFO here");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = encrypt(&input, &fifo, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        reader.join().unwrap().len(),
        16 + 10,
        "the body went through the pipe"
    );
    let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(t.is_fifo(), "still a FIFO");
}

#[test]
fn writing_onto_a_character_device_never_replaces_it() {
    // Our own device node (the null device's numbers) in a scratch folder: what
    // `wamedia encrypt IN /dev/null` did to the machine's /dev/null, without touching it.
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: mknod needs root to make a device node here");
        return;
    }
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"some document").unwrap();
    let json = dir.path().join("meta-null");
    Command::new("mknod")
        .arg(&json)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    let out = encrypt(&input, &null, &["--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for p in [&null, &json] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.file_type().is_char_device(), "{} replaced", p.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("wamedia"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_symlink_output_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"some document").unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.path().join("out.enc");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = encrypt(&input, &link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    // --json onto a symlink too.
    let json_link = dir.path().join("meta.json");
    std::os::unix::fs::symlink(&victim, &json_link).unwrap();
    let ok_out = dir.path().join("ok.enc");
    let out = encrypt(&input, &ok_out, &["--json", json_link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // Asked for: written through to the file it points to, the link kept.
    let out = encrypt(&input, &link, &["--follow-symlinks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap().len(), 16 + 10);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_killed_runs_temporary_is_recognisable_and_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"some document").unwrap();
    let out_path = dir.path().join("out.enc");
    // What `kill -9` of a run writing out.enc leaves: its temporary, unlocked.
    let stale = dir.path().join(".out.enc.wamedia-tmp.AbC123");
    std::fs::write(&stale, b"unverified plaintext").unwrap();
    // Another output's temporary is not ours to touch.
    let other = dir.path().join(".other.wamedia-tmp.AbC123");
    std::fs::write(&other, b"x").unwrap();
    let out = encrypt(&input, &out_path, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stale.exists(), "the killed run's temporary is gone");
    assert!(other.exists());
    assert!(out_path.exists());
}

#[test]
fn a_long_output_name_fits() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"some document").unwrap();
    let out_path = dir.path().join(format!("{}.enc", "n".repeat(246)));
    let out = encrypt(&input, &out_path, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_path.exists());
}

#[test]
fn a_download_whose_partial_file_another_run_holds_is_refused() {
    let has_flock = Command::new("flock")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_flock {
        eprintln!("skipped: flock(1) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photo.jpg");
    let partial = dir.path().join(".photo.jpg.wamedia-partial");
    std::fs::write(&partial, b"").unwrap();
    // flock holds the lock while it runs wamedia: as a second run would meet it.
    let exe = env!("CARGO_BIN_EXE_wamedia");
    let o = Command::new("flock")
        .arg(&partial)
        .arg(exe)
        .args([
            "download",
            "--type",
            "image",
            "--auth",
            "a",
            "--host",
            "http://127.0.0.1:9",
            "--direct-path",
            "/v/t62/x",
            "--media-key",
            KEY_HEX,
            "--file-sha256",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ])
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("another run"), "{}", stderr(&o));
    assert!(!out.exists());
}
