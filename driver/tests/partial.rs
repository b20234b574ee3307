//! `Partial`, the unverified plaintext of a download beside its target, against other
//! runs and other users of the same folder (issue: nothing lost, nothing leaked).
#![cfg(unix)]

use std::io::{Read, Write};
use std::path::Path;

use wamedia::*;
use wamedia_driver::Partial;

fn spec(tag: &str) -> DownloadSpec {
    DownloadSpec {
        media_type: MediaType::Image,
        media_key: Some(MediaKey::from_bytes([3; 32])),
        source: Source::DirectPath(format!("/v/t62/{tag}")),
        expected: Expected::default(),
        streaming_sidecar: None,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_run_to_the_same_target_is_refused_and_never_truncates_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photo.jpg");
    let mut first = Partial::open(&out, &spec("a")).unwrap();
    first.file().write_all(&[7u8; 4096]).unwrap();
    // The same download, and another one: both refused while the first runs.
    for tag in ["a", "b"] {
        let e = Partial::open(&out, &spec(tag)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        assert!(e.to_string().contains("another run"), "{e}");
    }
    assert_eq!(
        std::fs::metadata(first.path()).unwrap().len(),
        4096,
        "the first run's bytes are intact"
    );
    first.publish().unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), vec![7u8; 4096]);
    // Once it ended, the next run may start.
    drop(Partial::open(&out, &spec("b")).unwrap());
}

#[test]
fn a_planted_symlink_at_the_partial_or_its_id_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let out = dir.path().join("out.bin");
    std::os::unix::fs::symlink(&victim, dir.path().join(".out.bin.wamedia-partial")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".out.bin.wamedia-partial.id")).unwrap();
    let mut p = Partial::open(&out, &spec("a")).unwrap();
    p.file().write_all(b"plaintext the sender chose").unwrap();
    p.publish().unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&out).unwrap(), b"plaintext the sender chose");
}

#[test]
fn a_foreign_world_writable_partial_is_not_adopted_as_verified_output() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let planted = dir.path().join(".out.bin.wamedia-partial");
    // A file hard-linked from elsewhere (two links) is not ours to adopt.
    std::fs::write(dir.path().join("elsewhere"), b"planted").unwrap();
    std::fs::hard_link(dir.path().join("elsewhere"), &planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut p = Partial::open(&out, &spec("a")).unwrap();
    let mut held = Vec::new();
    p.file().read_to_end(&mut held).unwrap();
    assert!(held.is_empty(), "a fresh file, not the planted one");
    let mode = std::fs::metadata(p.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read(dir.path().join("elsewhere")).unwrap(),
        b"planted"
    );
}

#[test]
fn a_long_target_name_gets_a_partial_name_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    for len in [236usize, 240, 255] {
        let name = "n".repeat(len - 4) + ".jpg";
        let out = dir.path().join(&name);
        let mut p = Partial::open(&out, &spec("a")).unwrap();
        p.file().write_all(b"x").unwrap();
        p.publish().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"x");
    }
    assert!(names(dir.path())
        .iter()
        .all(|n| !n.contains("wamedia-partial")));
}

#[test]
fn a_fifo_target_is_written_into_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo could not make a FIFO here");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let mut p = Partial::open(&fifo, &spec("a")).unwrap();
    assert!(p.is_direct());
    p.file().write_all(b"streamed").unwrap();
    p.publish().unwrap();
    assert_eq!(reader.join().unwrap(), b"streamed");
    assert_eq!(
        wamedia_driver::outfile::existing(&fifo).unwrap(),
        wamedia_driver::outfile::Existing::Special,
        "still a FIFO"
    );
    assert_eq!(names(dir.path()), ["pipe"]);
}

#[test]
fn a_symlink_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::write(&real, b"keep").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Partial::open(&link, &spec("a")).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read(&real).unwrap(), b"keep");
}
