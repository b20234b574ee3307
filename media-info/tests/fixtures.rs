//! Real files made by real encoders (`tests/data/make.sh`), and what the reference tools
//! say of them. Each expected value names the tool it comes from, as make.sh prints it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wamedia_info::{analyze_bytes, analyze_path, FfmpegOptions, MediaInfo, MediaKind, Options};

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap()
}

/// Options that never run ffmpeg, so these tests need none.
/// ffmpeg from `PATH`, as a caller opts in to it (the default runs no program).
fn with_ffmpeg() -> Options {
    Options {
        ffmpeg: Some(FfmpegOptions::default()),
        ..Options::default()
    }
}

fn no_ffmpeg() -> Options {
    Options {
        ffmpeg: None,
        ..Options::default()
    }
}

fn analyze(kind: MediaKind, name: &str) -> MediaInfo {
    analyze_bytes(kind, &data(name), Some(name), &no_ffmpeg())
}

/// The size of a JPEG thumbnail, decoded back.
fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "not a JPEG");
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap();
    (img.width(), img.height())
}

#[test]
fn a_jpeg_photo_has_its_size_and_a_100_px_thumbnail() {
    let info = analyze(MediaKind::Image, "photo.jpg");
    assert_eq!(info.mimetype.as_deref(), Some("image/jpeg"));
    // identify: "photo.jpg: JPEG 320x240"
    assert_eq!((info.width, info.height), (Some(320), Some(240)));
    let thumb = info.jpeg_thumbnail.as_deref().unwrap();
    assert_eq!(jpeg_size(thumb), (100, 75));
    assert!(thumb.len() <= 20_000);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

#[test]
fn exif_orientation_turns_width_and_height() {
    let info = analyze(MediaKind::Image, "rotated.jpg");
    // identify: "rotated.jpg: JPEG 160x120 orientation=RightTop" (EXIF 6: turned a quarter).
    assert_eq!((info.width, info.height), (Some(120), Some(160)));
    assert_eq!(
        jpeg_size(info.jpeg_thumbnail.as_deref().unwrap()),
        (75, 100)
    );
}

#[test]
fn transparent_png_pixels_become_whatsapp_grey() {
    let info = analyze(MediaKind::Image, "alpha.png");
    assert_eq!(info.mimetype.as_deref(), Some("image/png"));
    // identify: "alpha.png: PNG 300x200"
    assert_eq!((info.width, info.height), (Some(300), Some(200)));
    let thumb = info.jpeg_thumbnail.unwrap();
    let img = image::load_from_memory(&thumb).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (100, 66));
    let corner = img.get_pixel(1, 1).0;
    assert!(corner.iter().all(|&c| c.abs_diff(247) <= 3), "{corner:?}");
    let centre = img.get_pixel(50, 33).0;
    assert!(
        centre[0] > 200 && centre[1] < 60 && centre[2] < 60,
        "{centre:?}"
    );
}

#[test]
fn a_static_webp_sticker() {
    let info = analyze(MediaKind::Sticker, "sticker.webp");
    assert_eq!(info.mimetype.as_deref(), Some("image/webp"));
    // identify: "sticker.webp: WEBP 512x512 ... frames=1"
    assert_eq!((info.width, info.height), (Some(512), Some(512)));
    assert_eq!(info.animated, Some(false));
    assert_eq!(
        jpeg_size(info.jpeg_thumbnail.as_deref().unwrap()),
        (100, 100)
    );
    assert_eq!(
        info.first_frame_length, None,
        "not animated: no first frame"
    );
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

#[test]
fn an_animated_webp_sticker() {
    let info = analyze(MediaKind::Sticker, "animated.webp");
    // webpmux -info: "Canvas size: 512 x 512", "Features present: animation transparency";
    // identify: frames=3.
    assert_eq!((info.width, info.height), (Some(512), Some(512)));
    assert_eq!(info.animated, Some(true));
    assert!(info.jpeg_thumbnail.is_some(), "{:?}", info.warnings);
    // xxd: the first ANMF chunk at offset 44 (after RIFF, VP8X and ANIM), size 0x508:
    // its end, 44 + 8 + 1288, is WAWebWebpParseWebp's firstFrameLength.
    assert_eq!(info.first_frame_length, Some(1340));
}

#[test]
fn an_mp4_video_with_its_audio_track_first_and_moov_last() {
    let info = analyze(MediaKind::Video, "video.mp4");
    assert_eq!(info.mimetype.as_deref(), Some("video/mp4"));
    // ffprobe: stream 1 h264 width=176 height=144; format duration=2.520000.
    assert_eq!((info.width, info.height), (Some(176), Some(144)));
    assert_eq!(info.duration_ms, Some(2520));
    assert_eq!(info.seconds, Some(2));
    // No path, no ffmpeg: no thumbnail, and no warning about it either (ffmpeg is off).
    assert_eq!(info.jpeg_thumbnail, None);
}

#[test]
fn the_first_frame_thumbnail_comes_from_ffmpeg() {
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        println!("SKIPPED: ffmpeg is not on PATH (apt-get install ffmpeg to run this test)");
        return;
    }
    let info = analyze_path(MediaKind::Video, &path("video.mp4"), &with_ffmpeg());
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    // 176x144 scaled to a longest side of 100.
    assert_eq!(
        jpeg_size(info.jpeg_thumbnail.as_deref().unwrap()),
        (100, 81)
    );
}

#[test]
fn without_ffmpeg_a_video_has_no_thumbnail_and_a_warning_but_everything_else() {
    let opts = Options {
        ffmpeg: Some(FfmpegOptions {
            program: "/nonexistent/ffmpeg".into(),
            ..FfmpegOptions::default()
        }),
        ..Options::default()
    };
    let info = analyze_path(MediaKind::Ptv, &path("video.mp4"), &opts);
    assert_eq!(info.jpeg_thumbnail, None);
    assert_eq!(info.warnings.len(), 1, "{:?}", info.warnings);
    assert_eq!(info.warnings[0].field, "jpeg_thumbnail");
    assert!(info.warnings[0].message.contains("not installed"));
    assert_eq!(
        (info.width, info.height, info.seconds),
        (Some(176), Some(144), Some(2))
    );
}

/// The waveform the published rule gives for voice.ogg, computed by make.sh from ffmpeg's
/// (libopus') decoding of the file at 48 kHz (201 600 samples).
const VOICE_WAVEFORM: [u8; 64] = [
    7, 21, 35, 48, 60, 72, 80, 88, 93, 96, 100, 98, 95, 91, 83, 79, 71, 59, 46, 38, 34, 33, 35, 41,
    46, 56, 68, 77, 85, 92, 95, 99, 99, 96, 93, 86, 77, 68, 57, 44, 31, 17, 4, 12, 26, 40, 52, 65,
    75, 82, 90, 94, 96, 99, 97, 95, 88, 79, 72, 61, 48, 36, 21, 7,
];

#[test]
fn an_opus_voice_note_has_its_length_and_waveform() {
    let info = analyze(MediaKind::Ptt, "voice.ogg");
    assert_eq!(info.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
    // opusinfo: "Playback length: 0m:04.200s", "Pre-skip: 312".
    assert_eq!(info.duration_ms, Some(4200));
    assert_eq!(info.seconds, Some(4));
    let wave = info.waveform.unwrap();
    assert_eq!(wave.len(), 64);
    assert_eq!(wave.iter().max(), Some(&100));
    // A different decoder (pure-Rust opus-decoder here, libopus there) may differ by a step.
    for (i, (ours, theirs)) in wave.iter().zip(VOICE_WAVEFORM).enumerate() {
        assert!(
            ours.abs_diff(theirs) <= 1,
            "bar {i}: {ours} vs {theirs}\n{wave:?}"
        );
    }
}

fn close_to_voice_waveform(info: &MediaInfo, within: u8) {
    let wave = info
        .waveform
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", info.warnings));
    for (i, (ours, theirs)) in wave.iter().zip(VOICE_WAVEFORM).enumerate() {
        assert!(
            ours.abs_diff(theirs) <= within,
            "bar {i}: {ours} vs {theirs}\n{wave:?}"
        );
    }
}

#[test]
fn a_voice_note_is_decoded_by_ffmpeg_when_installed_else_in_process() {
    let info = analyze_path(MediaKind::Ptt, &path("voice.ogg"), &with_ffmpeg());
    let ffmpeg_here = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok();
    // The expected bars come from ffmpeg's (libopus') decoding: with it, exactly them;
    // without it, the in-process decoder's, within a step.
    close_to_voice_waveform(&info, if ffmpeg_here { 0 } else { 1 });
    // An ffmpeg that is not there: the in-process decoder takes over.
    let opts = Options {
        ffmpeg: Some(FfmpegOptions {
            program: "/nonexistent/ffmpeg".into(),
            ..FfmpegOptions::default()
        }),
        ..Options::default()
    };
    let info = analyze_path(MediaKind::Ptt, &path("voice.ogg"), &opts);
    close_to_voice_waveform(&info, 1);
}

#[test]
fn the_in_process_decoder_stops_at_its_work_limit_and_says_why_ffmpeg_did_not_decode() {
    let opts = Options {
        max_in_process_waveform_seconds: 0,
        ..no_ffmpeg()
    };
    let info = analyze_bytes(MediaKind::Ptt, &data("voice.ogg"), None, &opts);
    assert_eq!(info.waveform, None);
    assert_eq!(info.seconds, Some(4), "the length does not need decoding");
    let w = info
        .warnings
        .iter()
        .find(|w| w.field == "waveform")
        .unwrap();
    assert!(
        w.message
            .contains("over the 0 s the in-process Opus decoder takes")
            && w.message.contains("ffmpeg is not allowed"),
        "{w}"
    );
    // From a reader with ffmpeg allowed: the reason is the missing path, not ffmpeg.
    let reader = Options {
        ffmpeg: Some(FfmpegOptions::default()),
        ..opts
    };
    let info = analyze_bytes(MediaKind::Ptt, &data("voice.ogg"), None, &reader);
    let w = info
        .warnings
        .iter()
        .find(|w| w.field == "waveform")
        .unwrap();
    assert!(w.message.contains("came from a reader"), "{w}");
    assert!(!w.message.contains("not installed"), "{w}");
}

#[test]
fn options_run_no_program_by_default() {
    assert_eq!(Options::default().ffmpeg, None);
    // A video analysed by path with the defaults: no ffmpeg, so no thumbnail, and no
    // program started (a stand-in on PATH would have been found otherwise).
    let info = analyze_path(MediaKind::Video, &path("video.mp4"), &Options::default());
    assert_eq!(info.jpeg_thumbnail, None);
    assert_eq!(info.width, Some(176), "{:?}", info.warnings);
}

#[test]
fn audio_files_have_their_lengths() {
    // ffprobe: 3.030204 s = 116 frames × 1152 / 44100, the encoder delay and padding
    // included; the LAME tag's gapless length is the 3.0 s that went in.
    let mp3 = analyze(MediaKind::Audio, "audio.mp3");
    assert_eq!(
        (mp3.mimetype.as_deref(), mp3.duration_ms, mp3.seconds),
        (Some("audio/mpeg"), Some(3000), Some(3))
    );
    // No Xing frame: every frame is walked. ffprobe: 2.063750 (estimated from the bitrate);
    // 79 frames × 576 / 22050 = 2.0636 s.
    let noxing = analyze(MediaKind::Audio, "noxing.mp3");
    assert_eq!((noxing.duration_ms, noxing.seconds), (Some(2063), Some(2)));
    // ffprobe: audio.m4a 2.000000, audio.flac 1.500000, audio.wav 0.750000.
    let m4a = analyze(MediaKind::Audio, "audio.m4a");
    assert_eq!(
        (m4a.mimetype.as_deref(), m4a.duration_ms),
        (Some("audio/mp4"), Some(2000))
    );
    let flac = analyze(MediaKind::Audio, "audio.flac");
    assert_eq!(
        (flac.mimetype.as_deref(), flac.duration_ms),
        (Some("audio/flac"), Some(1500))
    );
    let wav = analyze(MediaKind::Audio, "audio.wav");
    assert_eq!(
        (wav.mimetype.as_deref(), wav.duration_ms),
        (Some("audio/wav"), Some(750))
    );
    // Shorter than a second, but not nothing.
    assert_eq!(wav.seconds, Some(1));
    for info in [&mp3, &noxing, &m4a, &flac, &wav] {
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(info.waveform, None, "only voice notes have a waveform");
    }
}

#[test]
fn a_wav_voice_note_of_a_steady_tone_has_a_flat_waveform() {
    let info = analyze(MediaKind::Ptt, "audio.wav");
    let wave = info.waveform.unwrap();
    assert!(wave.iter().all(|&v| v >= 97), "{wave:?}");
}

#[test]
fn an_mp3_voice_note_has_no_waveform_and_says_why() {
    let info = analyze(MediaKind::Ptt, "audio.mp3");
    assert_eq!(info.seconds, Some(3));
    assert_eq!(info.waveform, None);
    assert!(info.warnings.iter().any(|w| w.field == "waveform"));
}

#[test]
fn a_pdf_document_has_its_pages_and_name() {
    let info = analyze_path(MediaKind::Document, &path("doc.pdf"), &no_ffmpeg());
    assert_eq!(info.mimetype.as_deref(), Some("application/pdf"));
    // pdfinfo: "Pages: 3"
    assert_eq!(info.page_count, Some(3));
    assert_eq!(info.file_name.as_deref(), Some("doc.pdf"));
}

#[test]
fn the_content_wins_over_the_name() {
    let jpeg = analyze_bytes(
        MediaKind::Document,
        &data("photo.jpg"),
        Some("invoice.pdf"),
        &no_ffmpeg(),
    );
    assert_eq!(jpeg.mimetype.as_deref(), Some("image/jpeg"));
    assert_eq!(jpeg.page_count, None);
    let pdf = analyze_bytes(
        MediaKind::Document,
        &data("doc.pdf"),
        Some("dir/cat.jpg"),
        &no_ffmpeg(),
    );
    assert_eq!(pdf.mimetype.as_deref(), Some("application/pdf"));
    assert_eq!(pdf.file_name.as_deref(), Some("cat.jpg"));
    let text = analyze_bytes(
        MediaKind::Document,
        b"a,b\n1,2\n",
        Some("t.csv"),
        &no_ffmpeg(),
    );
    assert_eq!(text.mimetype.as_deref(), Some("text/csv"));
}

#[test]
fn baileys_thumbnail_settings_can_be_chosen() {
    let opts = Options {
        thumbnail: wamedia_info::ThumbnailOptions {
            max_edge: 32,
            quality: 50,
            ..Default::default()
        },
        ..no_ffmpeg()
    };
    let info = analyze_bytes(MediaKind::Image, &data("photo.jpg"), None, &opts);
    assert_eq!(jpeg_size(info.jpeg_thumbnail.as_deref().unwrap()), (32, 24));
    let own = wamedia_info::thumbnail_from_image(&data("alpha.png"), &opts).unwrap();
    assert_eq!(jpeg_size(&own), (32, 21));
}

#[test]
fn a_tight_byte_limit_steps_the_quality_down_or_gives_up() {
    let mut opts = no_ffmpeg();
    opts.thumbnail.max_bytes = 1500;
    let info = analyze_bytes(MediaKind::Image, &data("photo.jpg"), None, &opts);
    assert!(info.jpeg_thumbnail.as_ref().unwrap().len() <= 1500);
    opts.thumbnail.max_bytes = 10;
    let info = analyze_bytes(MediaKind::Image, &data("photo.jpg"), None, &opts);
    assert_eq!(info.jpeg_thumbnail, None);
    assert_eq!(
        info.width,
        Some(320),
        "the size does not depend on the thumbnail"
    );
    assert_eq!(info.warnings[0].field, "jpeg_thumbnail");
}

#[test]
fn the_fixtures_stay_small() {
    let total: u64 = std::fs::read_dir(path(""))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 300 * 1024, "{total} bytes of fixtures");
}

#[test]
fn analysis_of_every_fixture_is_quick() {
    let start = Instant::now();
    for name in [
        "photo.jpg",
        "alpha.png",
        "sticker.webp",
        "animated.webp",
        "video.mp4",
        "voice.ogg",
        "audio.mp3",
        "doc.pdf",
    ] {
        for kind in MediaKind::ALL {
            analyze(kind, name);
        }
    }
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

#[test]
fn previews_are_pictures_and_video_frames_never_pdf_pages() {
    use wamedia_info::{preview_from_image, preview_path, PREVIEW_MAX_EDGE};
    // file: photo.jpg is 320x240, under the 480 px edge: kept at its size.
    let p = preview_path(MediaKind::Image, &path("photo.jpg"), &no_ffmpeg()).unwrap();
    assert_eq!((p.width, p.height), (320, 240));
    assert_eq!(jpeg_size(&p.jpeg), (320, 240));
    // A document that is a picture previews as one; a PDF says why it has none.
    let d = preview_path(MediaKind::Document, &path("alpha.png"), &no_ffmpeg()).unwrap();
    assert!(d.width <= PREVIEW_MAX_EDGE && d.height <= PREVIEW_MAX_EDGE);
    let pdf = preview_path(MediaKind::Document, &path("doc.pdf"), &no_ffmpeg()).unwrap_err();
    assert!(pdf.message.contains("PDF"), "{pdf}");
    assert!(preview_path(MediaKind::Audio, &path("audio.mp3"), &no_ffmpeg()).is_err());
    // A 512x512 sticker scales down to the edge.
    let s = preview_from_image(&data("sticker.webp"), &no_ffmpeg()).unwrap();
    assert_eq!((s.width, s.height), (480, 480));
    assert_eq!(jpeg_size(&s.jpeg), (480, 480));
    // A video's first frame needs ffmpeg, and is refused without it.
    assert!(preview_path(MediaKind::Video, &path("video.mp4"), &no_ffmpeg()).is_err());
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        eprintln!("skipped: ffmpeg not found");
        return;
    }
    let v = preview_path(MediaKind::Video, &path("video.mp4"), &with_ffmpeg()).unwrap();
    // ffprobe: 176x144.
    assert_eq!((v.width, v.height), (176, 144));
}

#[test]
fn the_first_frame_length_alone_from_the_headers() {
    use std::io::Cursor;
    use wamedia_info::webp_first_frame_length;
    let read = |n: &str| webp_first_frame_length(Cursor::new(data(n)));
    assert_eq!(read("animated.webp").unwrap(), Some(1340));
    assert_eq!(read("sticker.webp").unwrap(), None);
    assert!(read("photo.jpg").is_err());
}
