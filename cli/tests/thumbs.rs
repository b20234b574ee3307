//! `wamedia upload` of an animated sticker (its first-frame sidecar, PROTOCOL §2.8) and
//! of a video (its larger thumbnail under the same key, PROTOCOL §8), against `wamedia
//! serve`, with media made by ffmpeg at test time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn wamedia() -> Command {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("thumbs-cache")
        .join(format!("{}-{n}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    c.env("XDG_CACHE_HOME", cache);
    c
}

fn run(args: &[&str]) -> Output {
    wamedia().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_line(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s:?}");
    serde_json::from_str(s.trim()).unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// `wamedia serve` keeping bodies in `store`, killed on drop.
struct Serve {
    child: Child,
    conn: PathBuf,
}

impl Serve {
    fn start(store: &Path, dir: &Path) -> Serve {
        let mut child = wamedia()
            .args(["serve", "--addr", "127.0.0.1:0", "--auth", "a", "--store"])
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let conn = dir.join("conn.json");
        std::fs::write(&conn, line).unwrap();
        Serve { child, conn }
    }
    fn conn(&self) -> &str {
        self.conn.to_str().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs ffmpeg with `args`; false (with the reason printed) when it is not installed.
fn ffmpeg(args: &[&str]) -> bool {
    match Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            true
        }
        Err(_) => {
            eprintln!("skipped: ffmpeg not found");
            false
        }
    }
}

/// The stored body of an upload (the fake CDN names it by its token).
fn stored_body(store: &Path, upload: &Value) -> Vec<u8> {
    let digest = b64(&upload["file_enc_sha256"]);
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest);
    let body = std::fs::read(store.join(name)).unwrap();
    assert_eq!(Sha256::digest(&body).as_slice(), &digest[..]);
    body
}

#[test]
fn an_animated_sticker_carries_a_first_frame_sidecar_that_matches_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let webp = dir.path().join("anim.webp");
    let w = webp.to_str().unwrap();
    if !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:rate=5",
        "-t",
        "0.6",
        "-c:v",
        "libwebp_anim",
        "-loop",
        "0",
        w,
    ]) {
        return;
    }
    let file = std::fs::read(&webp).unwrap();
    let cdn = Serve::start(store.path(), dir.path());
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--media-conn",
        cdn.conn(),
        "--type",
        "sticker",
        w,
    ]));
    // The file's own chunks: the first ANMF's offset + 8 + its size.
    let anmf = file.windows(4).position(|c| c == b"ANMF").unwrap();
    let size = u32::from_le_bytes(file[anmf + 4..anmf + 8].try_into().unwrap());
    let l = anmf as u64 + 8 + u64::from(size);
    assert!(l < file.len() as u64, "more than one frame");
    let m = &v["message"]["stickerMessage"];
    assert_eq!(m["isAnimated"], true);
    assert_eq!(m["firstFrameLength"].as_u64(), Some(l));
    assert_eq!(v["first_frame_length"].as_u64(), Some(l));
    assert_eq!(m["firstFrameSidecar"], v["first_frame_sidecar"]);

    // Independently: the stored body, the key's HKDF expansion, one HMAC over
    // iv ‖ body[..⌈L/16⌉·16].
    let body = stored_body(store.path(), &v);
    let key = wamedia::MediaKey::from_slice(&b64(&v["media_key"])).unwrap();
    let keys = wamedia::MediaKeys::expand(&key, "WhatsApp Image Keys");
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key).unwrap();
    h.update(&keys.iv);
    h.update(&body[..(l.div_ceil(16) * 16) as usize]);
    let want = &h.finalize().into_bytes()[..10];
    assert_eq!(b64(&m["firstFrameSidecar"]), want);

    // A still sticker has neither field.
    let still = dir.path().join("still.webp");
    assert!(ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64",
        "-frames:v",
        "1",
        still.to_str().unwrap(),
    ]));
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--type",
        "sticker",
        still.to_str().unwrap(),
    ]));
    let m = &v["message"]["stickerMessage"];
    assert_eq!(m["isAnimated"], false);
    assert!(m.get("firstFrameSidecar").is_none() && v.get("first_frame_sidecar").is_none());
}

#[test]
fn a_video_sends_its_first_frame_as_a_thumbnail_under_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    let vp = video.to_str().unwrap();
    if !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        vp,
    ]) {
        return;
    }
    let cdn = Serve::start(store.path(), dir.path());
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--media-conn",
        cdn.conn(),
        "--type",
        "video",
        vp,
    ]));
    let m = &v["message"]["videoMessage"];
    for f in [
        "thumbnailDirectPath",
        "thumbnailSha256",
        "thumbnailEncSha256",
        "thumbnailHeight",
        "thumbnailWidth",
    ] {
        assert!(!m[f].is_null(), "{f} in {m}");
    }
    // 160x120 is under the 480 px edge: the frame keeps its size.
    assert_eq!(
        (m["thumbnailWidth"].as_u64(), m["thumbnailHeight"].as_u64()),
        (Some(160), Some(120))
    );

    // It downloads back as a video thumbnail under the video's key, and its plaintext
    // hash is the message's thumbnailSha256.
    let back = dir.path().join("thumb.jpg");
    let out = run(&[
        "download",
        "--quiet",
        "--media-conn",
        cdn.conn(),
        "--type",
        "video-thumbnail",
        "--direct-path",
        m["thumbnailDirectPath"].as_str().unwrap(),
        "--media-key",
        v["media_key"].as_str().unwrap(),
        "--file-enc-sha256",
        m["thumbnailEncSha256"].as_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let jpeg = std::fs::read(&back).unwrap();
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    assert_eq!(
        Sha256::digest(&jpeg).as_slice(),
        &b64(&m["thumbnailSha256"])[..]
    );

    // With --server-thumb-gen the CDN makes it: nothing else goes up, and the size is
    // the video's own.
    let before = std::fs::read_dir(store.path()).unwrap().count();
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--fresh",
        "--server-thumb-gen",
        "--media-conn",
        cdn.conn(),
        "--type",
        "video",
        vp,
    ]));
    let m = &v["message"]["videoMessage"];
    assert!(m["thumbnailDirectPath"].is_string(), "{m}");
    assert!(m["thumbnailSha256"].is_string(), "{m}");
    assert!(m.get("thumbnailEncSha256").is_none(), "the CDN's own: {m}");
    assert_eq!(
        (m["thumbnailWidth"].clone(), m["thumbnailHeight"].clone()),
        (m["width"].clone(), m["height"].clone())
    );
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(160), Some(120))
    );
    // The video and the CDN's thumbnail; no upload of ours.
    let after = std::fs::read_dir(store.path()).unwrap().count();
    assert!(after - before <= 2, "{before} -> {after}");

    // --upload-thumbnail no: none.
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--upload-thumbnail",
        "no",
        "--type",
        "video",
        vp,
    ]));
    assert!(v["message"]["videoMessage"]
        .get("thumbnailDirectPath")
        .is_none());
}

#[test]
fn a_document_thumbnail_comes_from_thumbnail_or_the_picture_and_a_pdf_gets_a_note() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../media-info/tests/data");
    let photo = root.join("photo.jpg");
    let pdf = root.join("doc.pdf");
    // A picture sent as a document previews as itself (file: 320x240).
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--type",
        "document",
        photo.to_str().unwrap(),
    ]));
    let m = &v["message"]["documentMessage"];
    assert_eq!(
        (m["thumbnailWidth"].as_u64(), m["thumbnailHeight"].as_u64()),
        (Some(320), Some(240))
    );
    assert!(m["thumbnailEncSha256"].is_string());
    // A PDF is not rendered: a note, and no thumbnail fields; --thumbnail gives one.
    let out = run(&["upload", "--type", "document", pdf.to_str().unwrap()]);
    let v = json_line(&out);
    assert!(v["message"]["documentMessage"]
        .get("thumbnailDirectPath")
        .is_none());
    assert!(
        stderr(&out).contains("no uploaded thumbnail"),
        "{}",
        stderr(&out)
    );
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--type",
        "document",
        "--thumbnail",
        photo.to_str().unwrap(),
        pdf.to_str().unwrap(),
    ]));
    assert!(v["message"]["documentMessage"]["thumbnailDirectPath"].is_string());
    // Images only when asked.
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--type",
        "image",
        photo.to_str().unwrap(),
    ]));
    assert!(v["message"]["imageMessage"]
        .get("thumbnailEncSha256")
        .is_none());
    let v = json_line(&run(&[
        "upload",
        "--quiet",
        "--upload-thumbnail",
        "yes",
        "--type",
        "image",
        photo.to_str().unwrap(),
    ]));
    assert!(v["message"]["imageMessage"]["thumbnailEncSha256"].is_string());
}
