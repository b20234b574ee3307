//! Media that plays on every phone (PROTOCOL §8), as a person meets it: uploads of files
//! outside WhatsApp's mimetype list refused with the conversion to run, `--convert` and
//! `wamedia prepare` making real files with ffmpeg, checked with ffprobe. Media is made by
//! ffmpeg at test time; tests that need it say "skipped" where it is not installed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn wamedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wamedia"));
    // A cache folder of its own per run, so no upload resumes another's.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    c.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("prepare-cache")
            .join(format!("{}-{n}", std::process::id())),
    );
    c
}

fn run(args: &[&str]) -> Output {
    wamedia().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_line(out: &Output) -> serde_json::Value {
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "exactly one line on stdout: {s:?}");
    serde_json::from_str(s.trim()).unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../media-info/tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Whether ffmpeg and ffprobe are installed; prints why a test is skipped when not.
fn have_ffmpeg() -> bool {
    let ok = |p: &str| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have = ok("ffmpeg") && ok("ffprobe");
    if !have {
        eprintln!("skipped: ffmpeg not found");
    }
    have
}

/// Makes `name` in `dir` with `ffmpeg ARGS… name`: a second or less, tiny.
fn make(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg could not make {name}");
    out
}

fn mov(dir: &Path) -> PathBuf {
    make(
        dir,
        "clip.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:v",
            "mpeg4",
            "-c:a",
            "pcm_s16le",
        ],
    )
}

fn wav(dir: &Path) -> PathBuf {
    make(
        dir,
        "note.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=1",
            "-ac",
            "2",
        ],
    )
}

/// ffprobe's view of a file: its format and its streams.
fn probe(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", file.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn streams(p: &serde_json::Value) -> &Vec<serde_json::Value> {
    p["streams"].as_array().unwrap()
}

/// `wamedia serve` in the background, killed on drop.
struct Serve {
    child: Child,
    conn: String,
}

impl Serve {
    fn start() -> Serve {
        let mut child = wamedia()
            .args(["serve", "--addr", "127.0.0.1:0", "--auth", "prep-auth"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut conn = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut conn)
            .unwrap();
        Serve { child, conn }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads with `args` (TMPDIR set to `tmp`) to `cdn`, downloads it back by its JSON
/// line, and returns the line and the file that came back.
fn upload_and_back(
    cdn: &Serve,
    dir: &Path,
    tmp: &Path,
    args: &[&str],
) -> (serde_json::Value, PathBuf) {
    let conn = dir.join("conn.json");
    std::fs::write(&conn, &cdn.conn).unwrap();
    let out = wamedia()
        .env("TMPDIR", tmp)
        .args(["upload", "--media-conn", conn.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    let line = dir.join("line.json");
    std::fs::write(&line, out.stdout).unwrap();
    let back = dir.join("back");
    let out = run(&[
        "download",
        "--quiet",
        "--media-conn",
        conn.to_str().unwrap(),
        "--from-json",
        line.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (v, back)
}

#[test]
fn a_mov_is_refused_then_converted_to_an_mp4_that_comes_back_as_one() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mov = mov(dir.path());
    let file = mov.to_str().unwrap();
    for args in [
        vec!["upload", "--type", "video", file],
        vec!["upload", file],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("video/quicktime is not a video phones accept"),
            "{err}"
        );
        assert!(
            err.contains("(a video is one of: video/mp4, video/3gpp)"),
            "{err}"
        );
        assert!(
            err.contains(&format!("`wamedia prepare {file} OUT --type video`"))
                && err.contains("--convert"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    let cdn = Serve::start();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (v, back) = upload_and_back(
        &cdn,
        dir.path(),
        &tmp,
        &["--convert", "--type", "video", file],
    );
    assert_eq!(v["mimetype"], "video/mp4");
    assert_eq!(v["message"]["videoMessage"]["mimetype"], "video/mp4");
    let p = probe(&back);
    assert!(
        p["format"]["format_name"].as_str().unwrap().contains("mp4"),
        "{p}"
    );
    let codecs: Vec<&str> = streams(&p)
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["h264", "aac"], "{p}");
    // The converted temporary is gone.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_embedded_cdn_takes_a_converted_upload_and_says_so() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mov = mov(dir.path());
    let out = run(&["upload", "--convert", mov.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("converting") && err.contains("with ffmpeg for a video"),
        "{err}"
    );
    assert!(err.contains("verified"), "{err}");
    assert_eq!(json_line(&out)["mimetype"], "video/mp4");
}

#[test]
fn a_wav_voice_note_is_refused_then_sent_as_ogg_opus_mono_48k() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = wav(dir.path());
    let file = wav.to_str().unwrap();
    let out = run(&["upload", "--type", "ptt", file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "audio/wav is not a ptt phones accept (a ptt is one of: audio/ogg; codecs=opus)"
        ),
        "{err}"
    );
    let cdn = Serve::start();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (v, back) = upload_and_back(
        &cdn,
        dir.path(),
        &tmp,
        &["--convert", "--type", "ptt", file],
    );
    assert_eq!(v["mimetype"], "audio/ogg; codecs=opus");
    let m = &v["message"]["audioMessage"];
    assert_eq!(m["mimetype"], "audio/ogg; codecs=opus");
    assert_eq!(m["ptt"], true);
    assert_eq!(m["waveform"].as_str().map(str::len), Some(88), "{m}"); // 64 bytes, base64
    let p = probe(&back);
    let s = &streams(&p)[0];
    assert_eq!(
        (&s["codec_name"], &s["channels"], &s["sample_rate"]),
        (
            &serde_json::json!("opus"),
            &serde_json::json!(1),
            &serde_json::json!("48000")
        ),
        "{p}"
    );
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_none());
}

#[test]
fn prepare_makes_a_png_a_512_square_webp_sticker() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let png = make(
        dir.path(),
        "pic.png",
        &["-f", "lavfi", "-i", "testsrc=size=80x40", "-frames:v", "1"],
    );
    let out_file = dir.path().join("sticker.webp");
    let out = run(&[
        "prepare",
        "--type",
        "sticker",
        png.to_str().unwrap(),
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    assert_eq!(
        v,
        serde_json::json!({"type": "sticker", "mimetype": "image/webp", "action": "converted"})
    );
    assert!(stderr(&out).contains("converting"), "{}", stderr(&out));
    let p = probe(&out_file);
    let s = &streams(&p)[0];
    assert_eq!(
        (&s["width"], &s["height"]),
        (&512.into(), &512.into()),
        "{p}"
    );
    let bytes = std::fs::read(&out_file).unwrap();
    assert!(&bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP");
    // Nothing but the output was left beside it.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["pic.png", "sticker.webp"]);
    // A PNG uploaded as a sticker without --convert is refused.
    let out = run(&["upload", "--type", "sticker", png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("image/png is not a sticker"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn prepare_makes_a_gif_a_silent_h264_mp4() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gif = make(
        dir.path(),
        "anim.gif",
        &["-f", "lavfi", "-i", "testsrc=size=33x21:rate=5:duration=1"],
    );
    let out_file = dir.path().join("anim.mp4");
    let out = run(&[
        "prepare",
        "--quiet",
        "--type",
        "gif",
        gif.to_str().unwrap(),
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "--quiet: {}", stderr(&out));
    assert_eq!(json_line(&out)["mimetype"], "video/mp4");
    let p = probe(&out_file);
    let s = streams(&p);
    assert_eq!(s.len(), 1, "no sound: {p}");
    // Even dimensions for H.264 4:2:0.
    assert_eq!(
        (&s[0]["codec_name"], &s[0]["width"], &s[0]["height"]),
        (&"h264".into(), &32.into(), &20.into()),
        "{p}"
    );
    // Given as an image, a GIF is refused, pointing at the gif type.
    let out = run(&["upload", "--type", "image", gif.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("send it as a gif") && stderr(&out).contains("--type gif --convert"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn content_of_another_kind_is_refused_naming_what_it_is() {
    let out = run(&["upload", "--type", "image", &fixture("video.mp4")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "this is a video (video/mp4), not an image: send it as a video (--type video)"
        ),
        "{}",
        stderr(&out)
    );
    let out = run(&["upload", "--type", "ptt", &fixture("audio.mp3")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("audio/mpeg is not a ptt phones accept"),
        "{err}"
    );
    assert!(err.contains("audio/mpeg → audio/ogg; codecs=opus"), "{err}");
    // From stdin there is no file to name: the fix says to save one.
    let out = wamedia()
        .args(["upload", "--type", "ptt", "-"])
        .stdin(std::fs::File::open(fixture("audio.mp3")).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stdin: audio/mpeg is not a ptt")
            && stderr(&out).contains("save it to a file"),
        "{}",
        stderr(&out)
    );
    let out = run(&["upload", "--type", "video", &fixture("photo.jpg")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("send it as an image"),
        "{}",
        stderr(&out)
    );
    // Unknown content is no image either; as a document anything goes.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [7u8; 300]).unwrap();
    let out = run(&["upload", "--type", "image", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("send anything else as a document"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "upload",
        "--quiet",
        "--type",
        "document",
        &fixture("audio.wav"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_line(&out);
    assert_eq!(v["mimetype"], "audio/wav");
    assert_eq!(v["message"]["documentMessage"]["mimetype"], "audio/wav");
}

#[test]
fn prepare_fits_an_image_to_the_edge_and_copies_what_is_fine() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jpeg = make(
        dir.path(),
        "big.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240",
            "-frames:v",
            "1",
        ],
    );
    let small = dir.path().join("small.jpg");
    let out = run(&[
        "prepare",
        "--type",
        "image",
        "--image-max-edge",
        "100",
        jpeg.to_str().unwrap(),
        small.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_line(&out)["action"], "resized");
    let p = probe(&small);
    let s = &streams(&p)[0];
    assert_eq!(
        (&s["width"], &s["height"]),
        (&100.into(), &75.into()),
        "{p}"
    );
    // Within the limits: copied as it is.
    let same = dir.path().join("same.jpg");
    let out = run(&[
        "prepare",
        "--type",
        "image",
        jpeg.to_str().unwrap(),
        same.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json_line(&out),
        serde_json::json!({"type": "image", "mimetype": "image/jpeg", "action": "copied"})
    );
    assert!(std::fs::read(&same).unwrap() == std::fs::read(&jpeg).unwrap());
    assert!(
        stderr(&out).contains("already an image phones accept"),
        "{}",
        stderr(&out)
    );
    // Over the size: a smaller JPEG within it.
    let out = run(&[
        "prepare",
        "--type",
        "image",
        "--image-max-kbytes",
        "1",
        jpeg.to_str().unwrap(),
        small.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::metadata(&small).unwrap().len() <= 1024);
    // An output that is the input is refused before any work.
    let out = run(&[
        "prepare",
        "--type",
        "image",
        jpeg.to_str().unwrap(),
        jpeg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn without_ffmpeg_converting_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-programs");
    std::fs::create_dir(&empty).unwrap();
    let wav = fixture("audio.wav");
    let out_file = dir.path().join("note.ogg");
    for args in [
        vec!["prepare", "--type", "ptt", &wav, out_file.to_str().unwrap()],
        vec!["upload", "--convert", "--type", "ptt", &wav],
    ] {
        let out = wamedia().env("PATH", &empty).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("converting needs ffmpeg, and ffmpeg is not installed"),
            "{err}"
        );
        assert!(err.contains("audio/wav → audio/ogg; codecs=opus"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(!out_file.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["no-programs"]);
}
