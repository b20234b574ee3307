//! The `wamedia` binary as a person runs it: exit codes, stdout JSON, no partial files.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The transports this build has (`--features surf,reqwest` adds theirs).
const TRANSPORTS: &[&str] = &[
    "ureq",
    #[cfg(feature = "surf")]
    "surf",
    #[cfg(feature = "reqwest")]
    "reqwest",
];

fn wamedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    // Each run gets a cache folder of its own, so no test resumes another's upload (nor
    // one of the user's), unless it sets XDG_CACHE_HOME itself.
    c.env("XDG_CACHE_HOME", fresh_cache());
    c
}

/// A cache folder no other run uses, under the test target's scratch folder.
fn fresh_cache() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-cache")
        .join(format!("{}-{n}", std::process::id()))
}

fn run(args: &[&str]) -> Output {
    wamedia().args(args).output().unwrap()
}

fn json_line(out: &Output) -> serde_json::Value {
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "exactly one line on stdout: {s:?}");
    serde_json::from_str(s.trim()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn encrypt_then_decrypt_round_trips_with_hex_and_base64_keys() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&input, &plain).unwrap();
    let body = dir.path().join("body.enc");
    let out = run(&[
        "encrypt",
        "--type",
        "video",
        "--media-key",
        KEY_HEX,
        input.to_str().unwrap(),
        body.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = json_line(&out);
    let keys: Vec<_> = meta.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "file_enc_sha256",
            "file_length",
            "file_sha256",
            "media_key",
            "streaming_sidecar"
        ]
    );
    assert_eq!(meta["file_length"], 100_000);
    let key_b64 = meta["media_key"].as_str().unwrap().to_owned();
    assert!(key_b64.ends_with('='), "standard base64 with padding");
    let back = dir.path().join("back.bin");
    let out = run(&[
        "decrypt",
        "--type",
        "video",
        "--media-key",
        &key_b64,
        "--file-sha256",
        meta["file_sha256"].as_str().unwrap(),
        "--file-enc-sha256",
        meta["file_enc_sha256"].as_str().unwrap(),
        "--file-length",
        "100000",
        body.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&back).unwrap() == plain);
}

#[test]
fn every_threads_setting_gives_the_same_bytes_and_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let plain: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&input, &plain).unwrap();
    let mut bodies = vec![];
    let mut lines = vec![];
    for threads in ["one", "two", "auto"] {
        let body = dir.path().join(format!("body.{threads}"));
        let out = run(&[
            "--threads",
            threads,
            "encrypt",
            "--type",
            "ptt",
            "--media-key",
            KEY_HEX,
            input.to_str().unwrap(),
            body.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{threads}: {}", stderr(&out));
        lines.push(json_line(&out));
        bodies.push(std::fs::read(&body).unwrap());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "bodies differ");
    assert!(lines.iter().all(|l| *l == lines[0]), "{lines:?}");
    let meta = &lines[0];
    let body = dir.path().join("body.one");
    let decrypt = |threads: &str, body: &Path, out: &Path| {
        run(&[
            "decrypt",
            "--threads",
            threads,
            "--type",
            "ptt",
            "--media-key",
            KEY_HEX,
            "--file-sha256",
            meta["file_sha256"].as_str().unwrap(),
            "--file-enc-sha256",
            meta["file_enc_sha256"].as_str().unwrap(),
            body.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
    };
    let outdir = tempfile::tempdir().unwrap();
    let back = outdir.path().join("back");
    let out = decrypt("two", &body, &back);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&back).unwrap() == plain);
    std::fs::remove_file(&back).unwrap();
    // Tampered: the two-thread path fails the same check and leaves nothing behind.
    let mut bad = bodies[0].clone();
    bad[500_000] ^= 1;
    let bad_path = dir.path().join("bad");
    std::fs::write(&bad_path, &bad).unwrap();
    let out = decrypt("two", &bad_path, &back);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("file_enc_sha256"), "{}", stderr(&out));
    assert!(leftovers(outdir.path()).is_empty());
    let out = run(&["--threads", "three", "encrypt", "--type", "ptt", "-", "-"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_and_stdout_with_dash() {
    let mut child = wamedia()
        .args([
            "encrypt",
            "--type",
            "document",
            "--media-key",
            KEY_HEX,
            "-",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped plaintext")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // stdout carries only the body (15 bytes pad to one block, plus the MAC); the JSON
    // line goes to stderr.
    assert_eq!(out.stdout.len(), 16 + 10);
    let meta: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(meta["file_length"], 15);
    let mut child = wamedia()
        .args([
            "decrypt",
            "--type",
            "document",
            "--media-key",
            KEY_HEX,
            "-",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"piped plaintext");
}

#[test]
fn encrypt_into_a_pipe_feeds_decrypt_and_the_json_goes_aside() {
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    for json in [None, Some(dir.path().join("meta.json"))] {
        let mut enc = wamedia();
        enc.args(["encrypt", "--type", "video", "--media-key", KEY_HEX]);
        if let Some(j) = &json {
            enc.arg("--json").arg(j);
        }
        let mut enc = enc
            .args(["-", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `encrypt - - | decrypt - -`: a real pipe from one process to the other.
        let dec = wamedia()
            .args([
                "decrypt",
                "--type",
                "video",
                "--media-key",
                KEY_HEX,
                "-",
                "-",
            ])
            .stdin(Stdio::from(enc.stdout.take().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = enc.stdin.take().unwrap();
        let feed = plain.clone();
        let writer = std::thread::spawn(move || input.write_all(&feed).unwrap());
        let dec = dec.wait_with_output().unwrap();
        writer.join().unwrap();
        let enc = enc.wait_with_output().unwrap();
        assert!(enc.status.success(), "{}", stderr(&enc));
        assert!(dec.status.success(), "{}", stderr(&dec));
        assert!(dec.stdout == plain, "the plaintext came through the pipe");
        let meta = match &json {
            None => stderr(&enc),
            Some(j) => {
                assert!(stderr(&enc).is_empty(), "{}", stderr(&enc));
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = std::fs::metadata(j).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "the JSON holds the media key");
                }
                std::fs::read_to_string(j).unwrap()
            }
        };
        let meta: serde_json::Value = serde_json::from_str(meta.trim()).unwrap();
        assert_eq!(meta["file_length"], 300_000);
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_failed_decrypt_exits_4_names_the_check_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, vec![5u8; 5000]).unwrap();
    let body = dir.path().join("body");
    let meta = json_line(&run(&[
        "encrypt",
        "--type",
        "image",
        input.to_str().unwrap(),
        body.to_str().unwrap(),
    ]));
    let key = meta["media_key"].as_str().unwrap();
    let mut b = std::fs::read(&body).unwrap();
    b[100] ^= 4;
    std::fs::write(&body, &b).unwrap();
    let outdir = tempfile::tempdir().unwrap();
    let out_path = outdir.path().join("plain");
    let out = run(&[
        "decrypt",
        "--type",
        "image",
        "--media-key",
        key,
        body.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("MAC mismatch"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(
        leftovers(outdir.path()).is_empty(),
        "{:?}",
        leftovers(outdir.path())
    );
    assert!(!stderr(&out).contains(key));
    // A wrong expected hash on an intact body names that check.
    b[100] ^= 4;
    std::fs::write(&body, &b).unwrap();
    let out = run(&[
        "decrypt",
        "--type",
        "image",
        "--media-key",
        key,
        "--file-sha256",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        body.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("file_sha256"), "{}", stderr(&out));
    assert!(leftovers(outdir.path()).is_empty());
    // Wrong type: the MAC catches it.
    let out = run(&[
        "decrypt",
        "--type",
        "audio",
        "--media-key",
        key,
        body.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn bad_input_exits_2_with_a_clear_line() {
    let out = run(&["encrypt", "--type", "picture", "-", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown media type \"picture\"")
            && stderr(&out).contains("sticker-pack-thumbnail"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "decrypt",
        "--type",
        "image",
        "--media-key",
        "abcd",
        "-",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad media key"));
    let out = run(&["upload", "/nonexistent/file.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    let out = run(&["upload", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn upload_without_a_connection_uses_the_embedded_cdn() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    for transport in TRANSPORTS.iter().copied() {
        let out = run(&["upload", "--transport", transport, root.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v = json_line(&out);
        for k in [
            "url",
            "direct_path",
            "media_key",
            "file_enc_sha256",
            "file_sha256",
            "file_length",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        let err = stderr(&out);
        assert!(
            err.contains("embedded local CDN") && err.contains("verified"),
            "{err}"
        );
        assert!(err.contains("looks like image"), "{err}");
    }
}

/// `wamedia serve` in the background, killed on drop.
struct Serve {
    child: Child,
    conn: String,
}

impl Serve {
    fn start(auth: &str) -> Serve {
        Serve::with(&["--addr", "127.0.0.1:0", "--auth", auth])
    }
    /// `wamedia serve ARGS...`.
    fn with(args: &[&str]) -> Serve {
        let mut child = wamedia()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Serve { child, conn: line }
    }
    fn host(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.conn).unwrap();
        v["hosts"][0].as_str().unwrap().to_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_then_upload_and_download_with_each_connection_option() {
    let cdn = Serve::start("s3cret-auth");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("voice.ogg");
    // A real Ogg/Opus voice note: an upload of media phones could not play is refused.
    let plain = std::fs::read(fixture("voice.ogg")).unwrap();
    std::fs::write(&file, &plain).unwrap();
    let conn_file = dir.path().join("conn.json");
    std::fs::write(&conn_file, &cdn.conn).unwrap();
    let host = cdn.host();
    let cmd = format!("cat {}", conn_file.display());
    let options: Vec<Vec<&str>> = vec![
        vec!["--media-conn", conn_file.to_str().unwrap()],
        vec!["--media-conn-command", &cmd],
        vec!["--auth", "s3cret-auth", "--host", &host],
    ];
    for (i, opt) in options.iter().enumerate() {
        let mut args = vec!["upload", "--quiet"];
        args.extend(opt);
        args.push(file.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).is_empty(), "--quiet: {}", stderr(&out));
        let v = json_line(&out);
        let dest = dir.path().join(format!("back{i}.ogg"));
        let mut args = vec![
            "download",
            "--type",
            "ptt",
            "--quiet",
            "--direct-path",
            v["direct_path"].as_str().unwrap(),
            "--media-key",
            v["media_key"].as_str().unwrap(),
            "--file-enc-sha256",
            v["file_enc_sha256"].as_str().unwrap(),
            "--file-sha256",
            v["file_sha256"].as_str().unwrap(),
            "--transport",
            TRANSPORTS[i % TRANSPORTS.len()],
        ];
        args.extend(opt);
        args.push(dest.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::read(&dest).unwrap() == plain);
        // A full URL off whatsapp.net is used only when the connection names its host
        // (or the caller trusts it); alone it is refused, and nothing is written.
        let dest2 = dir.path().join(format!("url{i}.ogg"));
        let url_args = [
            "download",
            "--type",
            "ptt",
            "--url",
            v["url"].as_str().unwrap(),
            "--media-key",
            v["media_key"].as_str().unwrap(),
            dest2.to_str().unwrap(),
        ];
        let out = run(&url_args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("whatsapp.net"), "{}", stderr(&out));
        assert!(!dest2.exists());
        let mut with_conn = url_args.to_vec();
        with_conn.extend(opt);
        let out = run(&with_conn);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut trusted = url_args.to_vec();
        trusted.push("--trust-url");
        let out = run(&trusted);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::read(&dest2).unwrap() == plain);
    }
}

#[test]
fn a_media_conn_iq_node_is_read_as_clients_hand_it_over() {
    // PROTOCOL v3 §3: the IQ answer as a decoded binary node; a pop host (empty
    // <upload/>) first, as real answers list them: it must never get the upload.
    let cdn = Serve::start("s3cret-auth");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"a document for a node-shaped connection").unwrap();
    let node = serde_json::json!({
        "tag": "iq",
        "attrs": {"type": "result", "from": "s.whatsapp.net"},
        "content": [{
            "tag": "media_conn",
            "attrs": {"auth": "s3cret-auth", "ttl": "300", "auth_ttl": "21600", "max_buckets": "12"},
            "content": [
                {"tag": "host",
                 "attrs": {"hostname": dead_host(), "type": "primary", "class": "pop"},
                 "content": [{"tag": "upload", "content": []},
                             {"tag": "download", "content": [{"tag": "image"}]}]},
                {"tag": "host", "attrs": {"hostname": cdn.host(), "type": "primary"}}
            ]
        }]
    });
    let conn_file = dir.path().join("node.json");
    std::fs::write(&conn_file, node.to_string()).unwrap();
    let cmd = format!("cat {}", conn_file.display());
    for opt in [
        ["--media-conn", conn_file.to_str().unwrap()],
        ["--media-conn-command", &cmd],
    ] {
        let mut args = vec!["upload", "--quiet", "--type", "document"];
        args.extend(opt);
        args.push(file.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v = json_line(&out);
        assert!(v["url"].as_str().unwrap().starts_with(&cdn.host()), "{v}");
        assert!(!stderr(&out).contains("s3cret-auth"));
    }
}

#[test]
fn cdn_failures_exit_3_without_leaking_secrets() {
    let cdn = Serve::start("the-real-auth");
    let host = cdn.host();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let out = run(&[
        "upload",
        "--auth",
        "wrong-auth-token",
        "--host",
        &host,
        "--media-key",
        KEY_HEX,
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("auth rejected"), "{err}");
    assert!(
        !err.contains("wrong-auth-token") && !err.contains(KEY_HEX),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("never");
    let out = run(&[
        "download",
        "--type",
        "image",
        "--direct-path",
        "/v/t62/missing.enc?ccb=1",
        "--media-key",
        KEY_HEX,
        "--auth",
        "x",
        "--host",
        &host,
        dest.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("re-upload"), "{}", stderr(&out));
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn record_mode_writes_a_redacted_cassette_that_replays() {
    let cdn = Serve::start("record-me-not");
    let host = cdn.host();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.pdf");
    std::fs::write(&file, b"%PDF-1.4 a throwaway document for a recording").unwrap();
    let cassette = dir.path().join("my-upload.json");
    let out = run(&[
        "upload",
        "--quiet",
        "--auth",
        "record-me-not",
        "--host",
        &host,
        "--media-key",
        KEY_HEX,
        "--record",
        cassette.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(!text.contains("record-me-not"), "{text}");
    assert!(dir.path().join("my-upload.bin").exists());
    #[cfg(unix)]
    for f in [&cassette, &dir.path().join("my-upload.bin")] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            0o600,
            "{}: the key and the plaintext are private",
            f.display()
        );
    }
    let c = wamedia_conformance::cassette::Cassette::load(&cassette).unwrap();
    wamedia_conformance::replay::replay(&c, dir.path()).unwrap();
    // And a download.
    let dl = dir.path().join("my-download.json");
    let dest = dir.path().join("back.pdf");
    let out = run(&[
        "download",
        "--quiet",
        "--type",
        "document",
        "--auth",
        "record-me-not",
        "--host",
        &host,
        "--direct-path",
        v["direct_path"].as_str().unwrap(),
        "--media-key",
        KEY_HEX,
        "--file-enc-sha256",
        v["file_enc_sha256"].as_str().unwrap(),
        "--record",
        dl.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c = wamedia_conformance::cassette::Cassette::load(&dl).unwrap();
    wamedia_conformance::replay::replay(&c, dir.path()).unwrap();
    assert!(!std::fs::read_to_string(&dl)
        .unwrap()
        .contains("record-me-not"));
}

#[test]
fn a_progress_line_only_when_stderr_is_a_terminal() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let out = run(&["upload", file.to_str().unwrap()]);
    assert!(
        !stderr(&out).contains("MiB/s"),
        "no terminal, no progress: {}",
        stderr(&out)
    );
    // `script` gives the command a pseudo-terminal (util-linux; skip where it is missing).
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` here: terminal case not checked");
        return;
    }
    let cmd = format!(
        "{} upload {} >/dev/null",
        env!("CARGO_BIN_EXE_wamedia"),
        file.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("upload") && tty.contains("MiB/s"), "{tty}");
}

#[test]
fn upload_reads_stdin_with_a_dash() {
    let mut child = wamedia()
        .args(["upload", "--quiet", "--type", "document", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[7u8; 70_000])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_line(&out)["file_length"], 70_000);
}

#[test]
fn newsletter_media_goes_up_and_comes_back_unencrypted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let file = root.to_str().unwrap();
    // The embedded CDN downloads it back and checks its SHA-256.
    let out = run(&["upload", "--newsletter", "--type", "image", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    assert!(
        v.get("media_key").is_none() && v.get("file_enc_sha256").is_none(),
        "{v}"
    );
    assert!(
        stderr(&out).contains("SHA-256 and length (unencrypted)"),
        "{}",
        stderr(&out)
    );
    // Against `wamedia serve`: upload, then download with no key.
    let cdn = Serve::start("nl-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    // A sticker is a WebP (a PNG is refused as one; see the prepare tests).
    let sticker = fixture("sticker.webp");
    let out = run(&[
        "upload",
        "--quiet",
        "--newsletter",
        "--type",
        "sticker",
        "--media-conn",
        conn,
        &sticker,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    assert!(v["url"].as_str().unwrap().contains("/m1/"), "{v}");
    let dest = dir.path().join("back.png");
    let base = [
        "download",
        "--quiet",
        "--newsletter",
        "--type",
        "sticker",
        "--media-conn",
        conn,
        "--direct-path",
        v["direct_path"].as_str().unwrap(),
    ];
    let mut args = base.to_vec();
    args.extend([
        "--file-sha256",
        v["file_sha256"].as_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&dest).unwrap() == std::fs::read(&sticker).unwrap());
    // Without the hash there is nothing to verify it by: refused, nothing written.
    let dest2 = dir.path().join("unverified.png");
    let mut args = base.to_vec();
    args.push(dest2.to_str().unwrap());
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--file-sha256"), "{}", stderr(&out));
    assert!(!dest2.exists());
}

/// A one-shot HTTP server on loopback: returns its host and the request head it saw.
fn capture_one() -> (String, std::thread::JoinHandle<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0u8; len];
        std::io::Read::read_exact(&mut r, &mut body).unwrap();
        let answer = br#"{"url":"https://mmg.whatsapp.net/d/x","direct_path":"/d/x"}"#;
        let mut w = s;
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            answer.len()
        )
        .unwrap();
        w.write_all(answer).unwrap();
        head
    });
    (host, t)
}

#[test]
fn a_user_agent_is_sent_only_when_asked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    for transport in TRANSPORTS.iter().copied() {
        for ua in [None, Some("MyBot/1.0")] {
            let (host, seen) = capture_one();
            let mut args = vec![
                "upload",
                "--quiet",
                "--transport",
                transport,
                "--auth",
                "a",
                "--host",
                &host,
            ];
            if let Some(ua) = ua {
                args.extend(["--user-agent", ua]);
            }
            args.push(root.to_str().unwrap());
            let out = run(&args);
            assert!(out.status.success(), "{}", stderr(&out));
            let head = seen.join().unwrap().to_ascii_lowercase();
            match ua {
                None => assert!(!head.contains("user-agent"), "{transport}: {head}"),
                Some(ua) => assert!(
                    head.contains(&format!("user-agent: {}", ua.to_ascii_lowercase())),
                    "{head}"
                ),
            }
            assert!(head.contains("&media_id="), "{head}");
        }
    }
}

#[test]
fn server_thumbnails_and_reused_key_timestamps_reach_the_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let file = root.to_str().unwrap();
    let out = run(&["upload", "--quiet", "--server-thumb-gen", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    assert!(
        v["thumbnail_info"]["thumbnail_direct_path"].is_string(),
        "{v}"
    );
    assert_eq!(v["media_type"], "image");
    let fresh = v["media_key_timestamp"].as_i64().unwrap();
    assert!(fresh > 1_700_000_000, "a fresh key is stamped now: {fresh}");
    let out = run(&[
        "upload",
        "--quiet",
        "--media-key",
        KEY_HEX,
        "--media-key-timestamp",
        "1700000000",
        file,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_line(&out)["media_key_timestamp"], 1_700_000_000);
    let out = run(&["upload", "--media-key-timestamp", "1700000000", file]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a timestamp belongs to a reused key"
    );
}

#[test]
fn types_without_a_path_or_keys_are_refused_before_any_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let file = root.to_str().unwrap();
    let out = run(&["upload", "--type", "payment-background", file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("payment-background media has no known upload path"),
        "{}",
        stderr(&out)
    );
    let out = run(&["upload", "--newsletter", "--type", "history", file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("newsletter"), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("x.enc");
    let out = run(&[
        "encrypt",
        "--type",
        "product-catalog-image",
        file,
        body.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not encrypted"), "{}", stderr(&out));
    assert!(!body.exists());
    // Product images go up as they are, and come back verified by their SHA-256.
    let out = run(&["upload", "--type", "product-catalog-image", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(json_line(&out).get("media_key").is_none());
}

#[test]
fn record_mode_never_overwrites_its_input_and_leaves_no_plaintext_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.bin");
    std::fs::write(&input, b"precious input bytes").unwrap();
    // `--record x.json` keeps the plaintext in x.bin: the input itself.
    let cassette = dir.path().join("x.json");
    let out = run(&[
        "upload",
        "--quiet",
        "--record",
        cassette.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("would overwrite"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&input).unwrap(), b"precious input bytes");
    // A failed upload (nobody listening) keeps the cassette but not the plaintext copy.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let rec = dir.path().join("failed.json");
    let out = run(&[
        "upload",
        "--quiet",
        "--auth",
        "a",
        "--host",
        &host,
        "--timeout",
        "5",
        "--record",
        rec.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(rec.exists());
    assert!(!dir.path().join("failed.bin").exists());
}

#[test]
fn a_huge_timeout_flag_does_not_panic() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    let out = run(&[
        "upload",
        "--quiet",
        "--timeout",
        "18446744073709551615",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn timeout_bounds_the_whole_transfer_even_against_a_silent_cdn() {
    // A CDN that accepts, reads, and never answers (for at most a minute).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", l.local_addr().unwrap());
    l.set_nonblocking(true).unwrap();
    let silent = std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < until && held.len() < 16 {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png");
    for transport in TRANSPORTS.iter().copied() {
        let out = run(&[
            "upload",
            "--quiet",
            "--transport",
            transport,
            "--auth",
            "a",
            "--host",
            &host,
            "--timeout",
            "2",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("deadline passed"),
            "{transport}: {}",
            stderr(&out)
        );
    }
    drop(silent);
}

/// Waits at most `secs` for `child`, then kills it: a test never hangs on a command that
/// should have ended.
fn finish_within(mut child: Child, secs: u64) -> Output {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("still running after {secs} s: {}", stderr(&out));
}

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/media/sample.png")
}

/// A loopback address nobody listens on.
fn dead_host() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", dead.local_addr().unwrap())
}

#[test]
fn serve_max_body_answers_too_large_and_store_keeps_bodies() {
    let store = tempfile::tempdir().unwrap();
    let cdn = Serve::with(&[
        "--addr",
        "127.0.0.1:0",
        "--auth",
        "cap-auth",
        "--max-body",
        "1000",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let host = cdn.host();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 200_000]).unwrap();
    for transport in TRANSPORTS.iter().copied() {
        let out = run(&[
            "upload",
            "--quiet",
            "--fresh",
            "--type",
            "document",
            "--transport",
            transport,
            "--auth",
            "cap-auth",
            "--host",
            &host,
            big.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(3), "{transport}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("too large") && err.contains("413"),
            "{transport}: a clear refusal, not a reset: {err}"
        );
    }
    // Under the cap it goes up, and the body stays in the --store folder.
    let small = dir.path().join("small.bin");
    std::fs::write(&small, [2u8; 100]).unwrap();
    let out = run(&[
        "upload",
        "--quiet",
        "--type",
        "document",
        "--auth",
        "cap-auth",
        "--host",
        &host,
        small.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!leftovers(store.path()).is_empty());
}

#[test]
fn an_interrupted_upload_is_resumed_with_its_key() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    let mut plain = b"\0\0\0\x18ftypmp42".to_vec();
    plain.extend((0..400_000u32).map(|i| (i % 241) as u8));
    std::fs::write(&file, &plain).unwrap();
    // One media connection source (a file the session rewrites as it renews): the state
    // belongs to it, whatever hosts it names at each run.
    let conn_file = dir.path().join("conn.json");
    let upload = |host: &str, extra: &[&str]| {
        let conn = serde_json::json!({"auth": "resume-auth", "ttl": 300, "hosts": [host]});
        std::fs::write(&conn_file, conn.to_string()).unwrap();
        wamedia()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["upload", "--media-conn"])
            .arg(&conn_file)
            .args(["--timeout", "2"])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap()
    };
    // Resume states (the upload cache's uploads.redb lives beside them).
    let states = || -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(cache.path().join("wamedia")) {
            Ok(d) => d
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("upload-")
                })
                .collect(),
            Err(_) => vec![],
        }
    };
    // A host that refuses: the upload fails, and what it needs to resume stays behind.
    let out = upload(&dead_host(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run the same command again"),
        "{}",
        stderr(&out)
    );
    let kept = states();
    assert_eq!(kept.len(), 1, "{kept:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kept[0]), 0o600);
        assert_eq!(mode(&cache.path().join("wamedia")), 0o700);
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept[0]).unwrap()).unwrap();
    // Run again against a CDN that works: the same key, announced, and the state gone.
    let cdn = Serve::start("resume-auth");
    let out = upload(&cdn.host(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming an interrupted upload"),
        "{}",
        stderr(&out)
    );
    let v = json_line(&out);
    assert_eq!(v["media_key"], state["media_key"]);
    assert_eq!(v["media_key_timestamp"], state["media_key_timestamp"]);
    assert!(!stderr(&out).contains(v["media_key"].as_str().unwrap()));
    assert!(states().is_empty(), "{:?}", states());
    let first_key = v["media_key"].clone();
    // --fresh starts over: a new key, no note.
    let out = upload(&dead_host(), &[]);
    assert_eq!(out.status.code(), Some(3));
    let out = upload(&cdn.host(), &["--fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("resuming"), "{}", stderr(&out));
    assert_ne!(json_line(&out)["media_key"], first_key);
    assert!(states().is_empty());
    // Without XDG_CACHE_HOME, the state lives in ~/.cache/wamedia.
    let home = tempfile::tempdir().unwrap();
    let out = wamedia()
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home.path())
        .args([
            "upload",
            "--quiet",
            "--auth",
            "a",
            "--host",
            &dead_host(),
            "--timeout",
            "1",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let kept = leftovers(&home.path().join(".cache/wamedia"));
    assert_eq!(kept.iter().filter(|n| n.starts_with("upload-")).count(), 1);
    assert!(kept.iter().any(|n| n == "uploads.redb"), "{kept:?}");
}

#[test]
fn resume_state_is_kept_only_for_a_failure_that_can_resume_and_only_for_its_cdn() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, vec![b'n'; 300_000]).unwrap();
    // Resume states (the upload cache's uploads.redb lives beside them).
    let states = || -> usize {
        std::fs::read_dir(cache.path().join("wamedia")).map_or(0, |d| {
            d.filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("upload-")
            })
            .count()
        })
    };
    let upload = |args: &[&str]| {
        wamedia()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["upload", "--type", "document", "--timeout", "2"])
            .args(args)
            .arg(&file)
            .output()
            .unwrap()
    };
    // A CDN that refuses the body as too large (413): final, nothing kept.
    let small = Serve::with(&[
        "--addr",
        "127.0.0.1:0",
        "--auth",
        "state-auth",
        "--max-body",
        "1000",
    ]);
    let out = upload(&["--auth", "state-auth", "--host", &small.host()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(states(), 0, "a 413 keeps no key");
    assert!(!stderr(&out).contains("run the same command again"));
    // A media connection command that fails: nothing kept.
    let out = upload(&["--media-conn-command", "exit 3"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(states(), 0, "a failing --media-conn-command keeps no key");
    // A network failure keeps it; a run against another CDN does not take it.
    let out = upload(&["--auth", "state-auth", "--host", &dead_host()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(states(), 1);
    let other = Serve::start("state-auth");
    let out = upload(&["--auth", "state-auth", "--host", &other.host()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("resuming"),
        "another CDN starts afresh: {}",
        stderr(&out)
    );
}

#[test]
fn record_into_a_missing_folder_names_the_path_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("missing").join("x.json");
    let out = run(&[
        "upload",
        "--record",
        cassette.to_str().unwrap(),
        sample().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot write {}: No such file or directory",
            cassette.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("embedded local CDN"),
        "refused before any work: {err}"
    );
    let out = run(&[
        "download",
        "--type",
        "image",
        "--direct-path",
        "/v/t62/x.enc",
        "--media-key",
        KEY_HEX,
        "--auth",
        "a",
        "--host",
        &dead_host(),
        "--record",
        cassette.to_str().unwrap(),
        dir.path().join("out.png").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot write {}", cassette.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_terminal_sees_the_final_state_and_each_retry() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` here: terminal case not checked");
        return;
    }
    let cdn = Serve::start("tty-auth");
    // A plain host list [a, b] is tried a, a, b, b: two attempts on the dead host, then
    // the live one.
    let cmd = format!(
        "{} upload --fresh --auth tty-auth --host {} --host {} {} >/dev/null",
        env!("CARGO_BIN_EXE_wamedia"),
        dead_host(),
        cdn.host(),
        sample().display()
    );
    let out = Command::new("script")
        .env("XDG_CACHE_HOME", fresh_cache())
        .env("COLUMNS", "100")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(tty.contains("retrying on http://127.0.0.1:"), "{tty}");
    assert!(tty.contains("(attempt 2/4): "), "{tty}");
    assert!(tty.contains("100%"), "the final state is drawn: {tty}");
}

#[test]
fn bad_media_keys_say_which_form_was_tried() {
    let not_hex = "g".repeat(64);
    for (key, says) in [
        (not_hex.as_str(), "not hex"),
        ("abcd", "not base64 of 32 bytes (got 3 bytes)"),
        ("AAAA", "not base64 of 32 bytes (got 3 bytes)"),
        ("%%%%", "not base64 of 32 bytes"),
    ] {
        let out = run(&["decrypt", "--type", "image", "--media-key", key, "-", "-"]);
        assert_eq!(out.status.code(), Some(2), "{key}");
        assert!(stderr(&out).contains(says), "{key}: {}", stderr(&out));
        assert!(!stderr(&out).contains(key), "the key is never shown");
    }
}

#[test]
fn connections_and_hosts_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    // The media connection is read before the file: its error comes first.
    let out = run(&[
        "upload",
        "--media-conn",
        "/nonexistent/conn.json",
        "/nonexistent/file.jpg",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--media-conn"), "{}", stderr(&out));
    let conn = dir.path().join("conn.json");
    std::fs::write(
        &conn,
        r#"{"auth":"x","ttl":300,"hosts":["ftp://mmg.example"]}"#,
    )
    .unwrap();
    let out = run(&[
        "upload",
        "--media-conn",
        conn.to_str().unwrap(),
        "/nonexistent/file.jpg",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("only http:// and https://"),
        "{}",
        stderr(&out)
    );
    for host in ["ftp://mmg.example", "mmg whatsapp.net", ""] {
        let out = run(&[
            "upload",
            "--auth",
            "a",
            "--host",
            host,
            sample().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{host:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("host"), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("looks like"),
            "before any work: {}",
            stderr(&out)
        );
    }
}

#[test]
fn serve_names_a_busy_address_and_resolves_names() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let child = wamedia()
        .args(["serve", "--addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, 30);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    drop(busy);
    let cdn = Serve::with(&["--addr", "localhost:0", "--auth", "named"]);
    assert!(cdn.host().starts_with("http://"), "{}", cdn.conn);
    let out = run(&[
        "upload",
        "--quiet",
        "--auth",
        "named",
        "--host",
        &cdn.host(),
        sample().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn download_to_stdout_writes_only_verified_plaintext() {
    let cdn = Serve::start("stdout-auth");
    let host = cdn.host();
    let out = run(&[
        "upload",
        "--quiet",
        "--auth",
        "stdout-auth",
        "--host",
        &host,
        sample().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    let args = |sha: &str| -> Vec<String> {
        [
            "download",
            "--quiet",
            "--type",
            "image",
            "--auth",
            "stdout-auth",
            "--host",
            &host,
            "--direct-path",
            v["direct_path"].as_str().unwrap(),
            "--media-key",
            v["media_key"].as_str().unwrap(),
            "--file-sha256",
            sha,
            "-",
        ]
        .map(String::from)
        .to_vec()
    };
    let out = wamedia()
        .args(args(v["file_sha256"].as_str().unwrap()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == std::fs::read(sample()).unwrap());
    // A check that fails: exit 4, and not a byte on stdout.
    let out = wamedia()
        .args(args("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn download_into_a_missing_folder_or_onto_a_folder_is_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let host = dead_host();
    for (out_path, says) in [
        (
            dir.path().join("missing/x.png"),
            "No such file or directory",
        ),
        (dir.path().to_path_buf(), "it is a folder"),
    ] {
        let out = run(&[
            "download",
            "--type",
            "image",
            "--direct-path",
            "/v/t62/x.enc",
            "--media-key",
            KEY_HEX,
            "--auth",
            "a",
            "--host",
            &host,
            "--timeout",
            "1",
            out_path.to_str().unwrap(),
        ]);
        // Exit 2 before any request (a request to the dead host would be exit 3).
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
}

#[test]
fn encrypt_and_decrypt_refuse_to_overwrite_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"keep me").unwrap();
    let same = dir.path().join(".").join("in.bin");
    for cmd in [
        vec!["encrypt", "--type", "document"],
        vec!["decrypt", "--type", "document", "--media-key", KEY_HEX],
    ] {
        let mut args = cmd.clone();
        args.extend([input.to_str().unwrap(), same.to_str().unwrap()]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is also the input"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read(&input).unwrap(), b"keep me");
    }
}

#[test]
fn stdin_is_sniffed_and_an_empty_file_is_refused() {
    let mut ogg = b"OggS\0\x02".to_vec();
    ogg.extend([0u8; 20]);
    ogg.extend([1, 19]);
    ogg.extend(b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0");
    ogg.extend([9u8; 5000]);
    let mut child = wamedia()
        .args(["upload", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&ogg).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("looks like ptt (file signature)"),
        "{}",
        stderr(&out)
    );
    let v = json_line(&out);
    assert_eq!(v["media_type"], "ptt");
    assert_eq!(v["mimetype"], "audio/ogg; codecs=opus");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let out = run(&["upload", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
}

/// An MP4 already faststart with one video track, its media data junk: uploaded as it is.
fn faststart_clip() -> Vec<u8> {
    faststart_clip_with(200_000)
}

/// [`faststart_clip`] with `data_len` bytes of media data.
fn faststart_clip_with(data_len: u32) -> Vec<u8> {
    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(b"vide");
    hdlr.extend_from_slice(&[0; 13]);
    let trak = bx(
        b"trak",
        &[bx(b"tkhd", &[0; 84]), bx(b"mdia", &bx(b"hdlr", &hdlr))].concat(),
    );
    let moov = bx(b"moov", &[bx(b"mvhd", &[0; 100]), trak].concat());
    let data: Vec<u8> = (0..data_len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    [
        bx(b"ftyp", b"mp42\0\0\0\0mp42isom"),
        moov,
        bx(b"mdat", &data),
    ]
    .concat()
}

#[test]
fn download_from_json_takes_the_upload_line_as_it_is() {
    let cdn = Serve::start("json-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    // A video (moov first, one video track: nothing to remux): its line carries a
    // streaming sidecar, which the download checks too.
    let video = dir.path().join("clip.mp4");
    std::fs::write(&video, faststart_clip()).unwrap();
    for (file, newsletter, mimetype) in [
        (sample(), false, "image/png"),
        (sample(), true, "image/png"),
        (video, false, "video/mp4"),
    ] {
        let mut args = vec!["upload", "--quiet", "--media-conn", conn];
        if newsletter {
            args.push("--newsletter");
        }
        args.push(file.to_str().unwrap());
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = String::from_utf8(out.stdout.clone()).unwrap();
        let v = json_line(&out);
        assert_eq!(v["mimetype"], mimetype);
        assert_eq!(v.get("media_key").is_some(), !newsletter);
        if mimetype == "video/mp4" {
            assert!(v["streaming_sidecar"].is_string(), "{v}");
        }
        let saved = dir.path().join("line.json");
        std::fs::write(&saved, &line).unwrap();
        let dest = dir
            .path()
            .join(format!("back-{newsletter}-{mimetype}").replace('/', "-"));
        let out = run(&[
            "download",
            "--quiet",
            "--media-conn",
            conn,
            "--from-json",
            saved.to_str().unwrap(),
            dest.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::read(&dest).unwrap() == std::fs::read(&file).unwrap());
        // The same line on stdin.
        let dest = dir
            .path()
            .join(format!("stdin-{newsletter}-{mimetype}").replace('/', "-"));
        let mut child = wamedia()
            .args([
                "download",
                "--quiet",
                "--media-conn",
                conn,
                "--from-json",
                "-",
            ])
            .arg(&dest)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::read(&dest).unwrap() == std::fs::read(&file).unwrap());
    }
    // Not the line: a usage error that says so.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "hello").unwrap();
    let out = run(&[
        "download",
        "--media-conn",
        conn,
        "--from-json",
        bad.to_str().unwrap(),
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--from-json"), "{}", stderr(&out));
}

#[test]
fn download_from_json_takes_the_line_its_message_and_a_received_message() {
    let cdn = Serve::start("message-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    let file = sample();
    let out = run(&[
        "upload",
        "--quiet",
        "--media-conn",
        conn,
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = json_line(&out);
    let message = &line["message"];
    assert!(message["imageMessage"]["mediaKey"].is_string(), "{line}");
    // What a bot receives, written by hand: proto3 JSON gives a uint64 as a string.
    let received = serde_json::json!({ "imageMessage": {
        "url": line["url"],
        "directPath": line["direct_path"],
        "mediaKey": line["media_key"],
        "fileEncSha256": line["file_enc_sha256"],
        "fileSha256": line["file_sha256"],
        "fileLength": line["file_length"].as_u64().unwrap().to_string(),
        "mimetype": "image/png",
        "caption": "a picture",
    } });
    let view_once = serde_json::json!({ "viewOnceMessageV2": { "message": received } });
    let download = |name: &str, json: &serde_json::Value| {
        let from = dir.path().join(format!("{name}.json"));
        std::fs::write(&from, json.to_string()).unwrap();
        let dest = dir.path().join(format!("{name}.png"));
        let out = run(&[
            "download",
            "--quiet",
            "--media-conn",
            conn,
            "--from-json",
            from.to_str().unwrap(),
            dest.to_str().unwrap(),
        ]);
        (out, dest)
    };
    for (name, json) in [
        ("line", &line),
        ("message", message),
        ("received", &received),
        ("view-once", &view_once),
    ] {
        let (out, dest) = download(name, json);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            std::fs::read(&dest).unwrap() == std::fs::read(&file).unwrap(),
            "{name}"
        );
    }
    // The message's values are checked: a wrong length is an integrity failure, and
    // nothing is left at the destination.
    let mut wrong = received.clone();
    let len = line["file_length"].as_u64().unwrap();
    wrong["imageMessage"]["fileLength"] = (len + 1).to_string().into();
    let (out, dest) = download("wrong-length", &wrong);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(!dest.exists());
    // Not a media message, or two of them: a usage error naming --from-json.
    let text = serde_json::json!({ "conversation": "hi" });
    let (out, _) = download("text", &text);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--from-json"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no media message"),
        "{}",
        stderr(&out)
    );
    let mut two = received.clone();
    two["videoMessage"] = received["imageMessage"].clone();
    let (out, _) = download("two", &two);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("two media messages"),
        "{}",
        stderr(&out)
    );
    // A bad key is named, never shown.
    let mut bad = received.clone();
    let key = line["media_key"].as_str().unwrap();
    bad["imageMessage"]["mediaKey"] = key[..40].into();
    let (out, _) = download("bad-key", &bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("imageMessage.mediaKey"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&key[..12]), "{}", stderr(&out));
}

#[test]
fn help_lists_media_types_exit_codes_and_what_flags_do() {
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Media types")
            && help.contains("ptt")
            && help.contains("sticker-pack-thumbnail"),
        "{help}"
    );
    assert!(
        help.contains("Exit codes") && help.contains("4 integrity failure"),
        "{help}"
    );
    let out = run(&["upload", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Repeat it"), "{help}");
    assert!(help.contains("bounds the whole transfer"), "{help}");
    assert!(help.contains("--fresh"), "{help}");
    let out = run(&["serve", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--max-body"));
}

#[test]
fn a_pipe_given_as_a_file_is_read_once_and_uploaded() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("no bash here: process substitution not checked");
        return;
    }
    // `<(cat FILE)` names a pipe, which cannot seek: it is spooled like stdin.
    let cmd = format!(
        "{} upload <(cat {})",
        env!("CARGO_BIN_EXE_wamedia"),
        sample().display()
    );
    let out = Command::new("bash")
        .env("XDG_CACHE_HOME", fresh_cache())
        .args(["-c", &cmd])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("looks like image (file signature)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json_line(&out)["file_length"], 15801);
}

#[test]
fn media_retry_receipts_and_notifications() {
    let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let out = run(&[
        "retry-receipt",
        "--media-key",
        key,
        "--message-id",
        "3EB0C431B7F5A2D5E7A9",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a = json_line(&out);
    let b = json_line(&run(&[
        "retry-receipt",
        "--media-key",
        key,
        "--message-id",
        "3EB0C431B7F5A2D5E7A9",
    ]));
    assert_ne!(a["iv"], b["iv"], "a fresh IV each time");
    // The vector of core/tests/data/gen_retry.py (Python's cryptography package).
    let args = |id: &str| {
        run(&[
            "retry-notification",
            "--media-key",
            key,
            "--message-id",
            id,
            "--iv",
            "yMnKy8zNzs/Q0dLT",
            "--ciphertext",
            "eOP2bwl3RXUtlnwStXrvMS6LzOuacXqoARY9vTVcDztaNE8lcRenNT1a5eBWWLz2nNXlfnsI9sAaBZ5Dz5XsCUfzn5EHex/eKXcI18OhTaFp33Q/zukHlkCqlGxsI6CC3r9P8UwWc8GN",
        ])
    };
    let out = args("3EB0C431B7F5A2D5E7A9");
    assert!(out.status.success(), "{}", stderr(&out));
    let n = json_line(&out);
    assert_eq!(n["result"], "SUCCESS");
    assert_eq!(
        n["direct_path"],
        "/v/t62.7118-24/12345_67890_n.enc?ccb=11-4&oh=01_AbC&oe=6A000000"
    );
    let out = args("ANOTHER-MESSAGE");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not decrypt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_history_blob_is_deleted_through_the_cli() {
    let cdn = Serve::start("del-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    // Each transport built in deletes its own blob, and then finds it gone.
    for transport in TRANSPORTS.iter().copied() {
        let blob = dir.path().join(format!("history-{transport}.bin"));
        std::fs::write(&blob, format!("a history sync blob for {transport}")).unwrap();
        let out = run(&[
            "upload",
            "--quiet",
            "--type",
            "history",
            "--media-conn",
            conn,
            blob.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v = json_line(&out);
        let del = [
            "delete",
            "--transport",
            transport,
            "--media-conn",
            conn,
            "--direct-path",
            v["direct_path"].as_str().unwrap(),
            "--file-enc-sha256",
            v["file_enc_sha256"].as_str().unwrap(),
        ];
        let out = run(&del);
        assert!(out.status.success(), "{transport}: {}", stderr(&out));
        assert_eq!(json_line(&out)["status"], 200, "{transport}");
        let out = run(&del);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{transport}: gone now: {}",
            stderr(&out)
        );
    }
}

/// Child process killed on drop.
struct Child2(std::process::Child);
impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(url: &str, range: Option<&str>) -> (String, Vec<u8>) {
    use std::io::Read as _;
    let rest = url.strip_prefix("http://").unwrap();
    let (hostport, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n");
    if let Some(r) = range {
        req.push_str(&format!("Range: {r}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}

#[test]
fn stream_serves_verified_ranges_to_a_local_player() {
    let cdn = Serve::start("stream-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    let video = dir.path().join("clip.mp4");
    // A faststart MP4 of 300 000 bytes (nothing to remux, so it keeps its sidecar): its
    // media data is bytes for the sidecar to check window by window.
    let head_len = faststart_clip_with(0).len() as u32;
    let plain = faststart_clip_with(300_000 - head_len);
    assert_eq!(plain.len(), 300_000);
    std::fs::write(&video, &plain).unwrap();
    let out = run(&[
        "upload",
        "--quiet",
        "--no-info",
        "--type",
        "video",
        "--media-conn",
        conn,
        video.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    let mut child = Child2(
        wamedia()
            .args([
                "stream",
                "--quiet",
                "--type",
                "video",
                "--media-conn",
                conn,
                "--direct-path",
                v["direct_path"].as_str().unwrap(),
                "--media-key",
                v["media_key"].as_str().unwrap(),
                "--file-length",
                "300000",
                "--streaming-sidecar",
                v["streaming_sidecar"].as_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = url["url"].as_str().unwrap().to_owned();
    let (head, body) = http_get(&url, Some("bytes=70000-70099"));
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.contains("Content-Range: bytes 70000-70099/300000"),
        "{head}"
    );
    assert!(body == plain[70_000..70_100]);
    let (head, body) = http_get(&url, Some("bytes=-5"));
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(body == plain[299_995..]);
    let (head, body) = http_get(&url, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == plain, "{} bytes", body.len());
    let (head, _) = http_get(&url, Some("bytes=400000-"));
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../media-info/tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Uploads `file` as `t` to the embedded CDN and returns the `message` object's inner one.
fn message_of(t: &str, file: &str, field: &str) -> serde_json::Value {
    let out = run(&["upload", "--quiet", "--type", t, file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    v["message"][field].clone()
}

#[test]
fn a_voice_note_comes_out_with_a_real_waveform_and_its_duration() {
    let m = message_of("ptt", &fixture("voice.ogg"), "audioMessage");
    // opusinfo / ffprobe: 4.2 s of Opus (make.sh).
    assert_eq!(m["seconds"], 4);
    assert_eq!(m["ptt"], true);
    assert_eq!(m["mimetype"], "audio/ogg; codecs=opus");
    let wave = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        m["waveform"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(wave.len(), 64);
    assert!(wave.iter().all(|&b| b <= 100));
    let (lo, hi) = (wave.iter().min().unwrap(), wave.iter().max().unwrap());
    assert!(hi - lo > 20, "not flat: {wave:?}");
    // PROTOCOL v3 §1: voice notes get no streaming sidecar (video and audio only).
    assert!(
        m.get("streamingSidecar").is_none(),
        "ptt carries no sidecar: {m}"
    );
}

#[test]
fn an_image_comes_out_with_its_size_and_a_thumbnail_that_decodes() {
    let m = message_of("image", &fixture("photo.jpg"), "imageMessage");
    let (w, h) = (m["width"].as_u64().unwrap(), m["height"].as_u64().unwrap());
    assert!(w > 0 && h > 0);
    let thumb = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        m["jpegThumbnail"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(&thumb[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    assert_eq!(&thumb[thumb.len() - 2..], &[0xff, 0xd9], "a whole one");
    // An explicit thumbnail replaces it; --no-info drops the object.
    let out = run(&["upload", "--quiet", "--no-info", &fixture("photo.jpg")]);
    assert!(json_line(&out).get("message").is_none());
}

#[test]
fn a_video_comes_out_with_its_duration_and_size() {
    let m = message_of("video", &fixture("video.mp4"), "videoMessage");
    // ffprobe: h264 176x144, 2.52 s.
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(176), Some(144))
    );
    assert_eq!(m["seconds"], 2);
    assert_eq!(m["mimetype"], "video/mp4");
}

fn have_ffmpeg() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|t| {
        Command::new(t)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn framemd5(file: &Path, stream: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", stream, "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The top-level box types of an MP4.
fn top_boxes(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= b.len() {
        let size = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let size = match size {
            0 => b.len() - pos,
            1 => u64::from_be_bytes(b[pos + 8..pos + 16].try_into().unwrap()) as usize,
            n => n,
        };
        out.push(String::from_utf8_lossy(&b[pos + 4..pos + 8]).into_owned());
        pos += size.max(8);
    }
    out
}

/// Uploads `file` (extra arguments first) to `conn`, downloads it back from the printed
/// line; returns the line, stderr and the downloaded bytes.
fn upload_and_back(
    conn: &str,
    dir: &Path,
    extra: &[&str],
    file: &Path,
) -> (serde_json::Value, String, Vec<u8>) {
    let mut args = vec!["upload", "--media-conn", conn];
    args.extend(extra);
    args.push(file.to_str().unwrap());
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    let line = dir.join("line.json");
    std::fs::write(&line, &out.stdout).unwrap();
    let dest = dir.join("back.mp4");
    let _ = std::fs::remove_file(&dest);
    let back = run(&[
        "download",
        "--quiet",
        "--media-conn",
        conn,
        "--from-json",
        line.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    assert!(back.status.success(), "{}", stderr(&back));
    (v, stderr(&out), std::fs::read(&dest).unwrap())
}

#[test]
fn a_moov_last_video_goes_up_remuxed_to_faststart_and_decodes_the_same() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg not found");
        return;
    }
    let cdn = Serve::start("faststart-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let conn = conn.to_str().unwrap();
    // ffmpeg's default puts moov last; a second audio track is there to be dropped.
    let clip = dir.path().join("camera.mp4");
    #[rustfmt::skip]
    ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1.5",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5",
        "-f", "lavfi", "-i", "sine=frequency=880:duration=1.5",
        "-map", "0:v", "-map", "1:a", "-map", "2:a",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
        clip.to_str().unwrap(),
    ]);
    let original = std::fs::read(&clip).unwrap();
    let kinds = top_boxes(&original);
    let at = |k: &[String], x: &str| k.iter().position(|y| y == x).unwrap();
    assert!(at(&kinds, "mdat") < at(&kinds, "moov"), "{kinds:?}");

    let (v, err, back) = upload_and_back(conn, dir.path(), &[], &clip);
    assert!(
        err.contains("remuxed to faststart (moov first, 1 track dropped)"),
        "{err}"
    );
    assert!(v["streaming_sidecar"].is_string(), "{v}");
    assert_eq!(v["file_length"].as_u64(), Some(back.len() as u64));
    assert_eq!(v["message"]["videoMessage"]["width"], 64);
    let kinds = top_boxes(&back);
    assert!(at(&kinds, "moov") < at(&kinds, "mdat"), "{kinds:?}");
    let back_file = dir.path().join("faststart.mp4");
    std::fs::write(&back_file, &back).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(&back_file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "video\naudio"
    );
    for s in ["0:v:0", "0:a:0"] {
        assert_eq!(framemd5(&clip, s), framemd5(&back_file, s), "{s}");
    }

    // --no-faststart: the bytes as they were, and no sidecar (moov is last).
    let (v, err, back) = upload_and_back(conn, dir.path(), &["--no-faststart"], &clip);
    assert!(v.get("streaming_sidecar").is_none(), "{v}");
    assert!(err.contains("without a streaming sidecar"), "{err}");
    assert!(back == original);
    // --quiet says nothing about it.
    let (_, err, _) = upload_and_back(conn, dir.path(), &["--quiet"], &clip);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_video_that_cannot_be_remuxed_goes_up_as_it_is_without_a_sidecar() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg not found");
        return;
    }
    let cdn = Serve::start("fragmented-auth");
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let clip = dir.path().join("fragmented.mp4");
    #[rustfmt::skip]
    ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1.5",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-movflags", "frag_keyframe+empty_moov",
        clip.to_str().unwrap(),
    ]);
    let (v, err, back) = upload_and_back(conn.to_str().unwrap(), dir.path(), &[], &clip);
    assert!(v.get("streaming_sidecar").is_none(), "{v}");
    assert!(
        err.contains("cannot remux") && err.contains("fragmented"),
        "{err}"
    );
    assert!(back == std::fs::read(&clip).unwrap());
}
