//! What phones play: the committed fixtures identified and checked, and each conversion
//! run by a real ffmpeg on media it makes at test time (skipped where ffmpeg is absent).

use std::path::{Path, PathBuf};
use std::process::Command;

use wamedia_info::{
    check, identify_path, plan, ContentClass, FfmpegOptions, ImageLimits, MediaKind, Plan, Refusal,
    Target,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn the_fixtures_are_what_they_say() {
    for (name, mime, class) in [
        ("photo.jpg", "image/jpeg", ContentClass::Picture),
        ("alpha.png", "image/png", ContentClass::Picture),
        ("sticker.webp", "image/webp", ContentClass::Picture),
        ("animated.webp", "image/webp", ContentClass::Picture),
        ("video.mp4", "video/mp4", ContentClass::Video),
        ("audio.m4a", "audio/mp4", ContentClass::Audio),
        ("audio.mp3", "audio/mpeg", ContentClass::Audio),
        ("audio.wav", "audio/wav", ContentClass::Audio),
        ("audio.flac", "audio/flac", ContentClass::Audio),
        ("voice.ogg", "audio/ogg; codecs=opus", ContentClass::Audio),
        ("doc.pdf", "application/pdf", ContentClass::Document),
    ] {
        let c = identify_path(&fixture(name)).unwrap();
        assert_eq!((c.mimetype, c.class), (Some(mime), class), "{name}");
    }
    let webp = identify_path(&fixture("animated.webp")).unwrap();
    assert_eq!(webp.animated, Some(true));
    let ok = |kind, name| check(kind, &identify_path(&fixture(name)).unwrap());
    assert_eq!(ok(MediaKind::Video, "video.mp4"), Ok("video/mp4"));
    assert_eq!(
        ok(MediaKind::Ptt, "voice.ogg"),
        Ok("audio/ogg; codecs=opus")
    );
    assert!(matches!(
        ok(MediaKind::Image, "video.mp4"),
        Err(Refusal::WrongType {
            suggestion: MediaKind::Video,
            ..
        })
    ));
    assert!(matches!(
        ok(MediaKind::Ptt, "audio.mp3"),
        Err(Refusal::NotAccepted {
            found: "audio/mpeg",
            conversion: Some(_),
            ..
        })
    ));
}

/// ffmpeg, or `None` (and a note) where it is not installed.
fn ffmpeg() -> Option<FfmpegOptions> {
    match Command::new("ffmpeg").arg("-version").output() {
        Ok(o) if o.status.success() => Some(FfmpegOptions::default()),
        _ => {
            eprintln!("skipped: ffmpeg not found");
            None
        }
    }
}

/// Makes `name` in `dir` with `ffmpeg -y ARGS… name`.
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

/// Plans `kind` for `input`, runs the conversion into `output`, and identifies the result.
fn convert(kind: MediaKind, input: &Path, output: &Path, ff: &FfmpegOptions) -> Target {
    let content = identify_path(input).unwrap();
    let Ok(Plan::Convert(c)) = plan(kind, &content, &ImageLimits::default()) else {
        panic!("{kind}: no conversion for {content:?}");
    };
    c.run(input, output, ff).unwrap();
    let back = identify_path(output).unwrap();
    assert_eq!(
        check(kind, &back),
        Ok(c.target_mimetype()),
        "{kind}: {back:?}"
    );
    c.target
}

#[test]
fn conversions_make_what_phones_play() {
    let Some(ff) = ffmpeg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mov = make(
        d,
        "clip.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=65x47:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:v",
            "mpeg4",
            "-c:a",
            "pcm_s16le",
        ],
    );
    let wav = make(
        d,
        "note.wav",
        &["-f", "lavfi", "-i", "sine=frequency=300:duration=1"],
    );
    let png = make(
        d,
        "pic.png",
        &["-f", "lavfi", "-i", "testsrc=size=80x40", "-frames:v", "1"],
    );
    let gif = make(
        d,
        "anim.gif",
        &["-f", "lavfi", "-i", "testsrc=size=33x21:rate=5:duration=1"],
    );
    assert_eq!(
        identify_path(&mov).unwrap().mimetype,
        Some("video/quicktime")
    );
    assert_eq!(
        convert(MediaKind::Video, &mov, &d.join("out1"), &ff),
        Target::Mp4
    );
    assert_eq!(
        convert(MediaKind::Ptt, &wav, &d.join("out2"), &ff),
        Target::VoiceNote
    );
    assert_eq!(
        convert(MediaKind::Audio, &wav, &d.join("out3"), &ff),
        Target::M4a
    );
    assert_eq!(
        convert(MediaKind::Sticker, &png, &d.join("out4"), &ff),
        Target::Sticker
    );
    let sticker = identify_path(&d.join("out4")).unwrap();
    assert_eq!(
        (sticker.size, sticker.animated),
        (Some((512, 512)), Some(false))
    );
    assert_eq!(
        convert(MediaKind::Sticker, &gif, &d.join("out5"), &ff),
        Target::Sticker
    );
    let animated = identify_path(&d.join("out5")).unwrap();
    assert_eq!(
        (animated.size, animated.animated),
        (Some((512, 512)), Some(true))
    );
    assert_eq!(
        convert(MediaKind::Gif, &gif, &d.join("out6"), &ff),
        Target::SilentMp4
    );
}

/// A stand-in for ffmpeg: a shell script.
#[cfg(unix)]
fn script(dir: &Path, body: &str) -> FfmpegOptions {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("fake-ffmpeg");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    FfmpegOptions {
        program: p,
        ..FfmpegOptions::default()
    }
}

#[cfg(unix)]
#[test]
fn a_failed_conversion_says_why_and_a_slow_one_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mov = dir.path().join("a.mov");
    std::fs::write(&mov, b"\0\0\0\x10ftypqt  \0\0\0\0").unwrap();
    let content = identify_path(&mov).unwrap();
    let Some(c) = check(MediaKind::Video, &content)
        .unwrap_err()
        .conversion()
        .cloned()
    else {
        panic!("{content:?}");
    };
    // What ffmpeg writes on stderr comes back bounded, on one line, escaped.
    let noisy = script(
        dir.path(),
        r"printf 'bad input\033[2J\nsecond\n' >&2; yes spam | head -c 200000 >&2; exit 1",
    );
    let e = c.run(&mov, &dir.path().join("o.mp4"), &noisy).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("ffmpeg failed (exit status: 1): bad input\\u{1b}[2J | second | spam"),
        "{text}"
    );
    assert!(text.len() < 200, "{} bytes", text.len());
    // A time limit stops a conversion that does not end.
    let slow = FfmpegOptions {
        timeout: std::time::Duration::ZERO,
        ..script(dir.path(), "exec sleep 30")
    };
    let e = c.run(&mov, &dir.path().join("o.mp4"), &slow).unwrap_err();
    assert!(e.to_string().contains("was stopped"), "{e}");
    // The arguments name the files through ffmpeg's file: protocol.
    let echo = script(
        dir.path(),
        r#"for a in "$@"; do echo "$a"; done > "$0.args""#,
    );
    c.run(&mov, Path::new("-y"), &echo).unwrap();
    let args = std::fs::read_to_string(dir.path().join("fake-ffmpeg.args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args.last(), Some(&"file:-y"));
    assert!(args.contains(&format!("file:{}", mov.display()).as_str()));
}
