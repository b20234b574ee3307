//! Corrupt, truncated and lying files: no metadata for what cannot be read, a warning, and
//! never a panic or an unbounded allocation.

use std::path::Path;

use wamedia_info::{analyze_bytes, MediaInfo, MediaKind, Options};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn opts() -> Options {
    Options {
        ffmpeg: None,
        ..Options::default()
    }
}

fn analyze(kind: MediaKind, bytes: &[u8]) -> MediaInfo {
    let info = analyze_bytes(kind, bytes, Some("f"), &opts());
    for w in &info.warnings {
        assert!(!w.message.contains("(a bug)"), "a parser panicked: {w}");
    }
    info
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    let mut typed = kind.to_vec();
    typed.extend_from_slice(body);
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
}

/// A valid PNG whose header claims `w × h` RGBA pixels, with a few bytes of image data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1A\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // zlib stream of a few zero bytes (a deflate "stored" block).
    png_chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0, 0x00, 0x04, 0x00, 0x01,
        ],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_png_decompression_bomb_is_refused_before_decoding() {
    // The warning is the refusal's, before any pixel is allocated (no timing: see
    // tests/bounded.rs for work counted at the reader).
    let info = analyze(MediaKind::Image, &png_claiming(100_000, 100_000));
    assert_eq!(info.mimetype.as_deref(), Some("image/png"));
    assert_eq!(info.jpeg_thumbnail, None);
    let w = info
        .warnings
        .iter()
        .find(|w| w.field == "jpeg_thumbnail")
        .expect("a warning");
    assert!(
        w.message.contains("10000000000 pixels, over the limit"),
        "{w}"
    );
}

#[test]
fn a_jpeg_claiming_a_huge_size_is_refused_before_decoding() {
    let mut jpeg = data("photo.jpg");
    // The first SOF0 marker: height and width follow its length and precision.
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60000 × 60000
    let info = analyze(MediaKind::Image, &jpeg);
    assert_eq!(info.jpeg_thumbnail, None);
    assert!(
        info.warnings
            .iter()
            .any(|w| w.message.contains("over the limit")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn the_pixel_limit_is_the_callers() {
    let tight = Options {
        max_pixels: 1000,
        ..opts()
    };
    let info = analyze_bytes(MediaKind::Image, &data("photo.jpg"), None, &tight);
    assert_eq!((info.width, info.height), (Some(320), Some(240)));
    assert_eq!(info.jpeg_thumbnail, None);
}

#[test]
fn a_truncated_jpeg_gives_no_metadata_and_a_warning() {
    let jpeg = data("photo.jpg");
    let info = analyze(MediaKind::Image, &jpeg[..jpeg.len() / 3]);
    assert_eq!(
        (info.width, info.height, info.jpeg_thumbnail),
        (None, None, None)
    );
    assert!(
        info.warnings
            .iter()
            .any(|w| w.message.contains("cut short")),
        "{:?}",
        info.warnings
    );
    // Garbage in the middle of a complete PNG: the decoder's checks catch it.
    let mut png = data("alpha.png");
    let mid = png.len() / 2;
    png[mid..mid + 16].fill(0xAA);
    let info = analyze(MediaKind::Image, &png);
    assert_eq!((info.width, info.jpeg_thumbnail), (None, None));
    assert!(
        info.warnings.iter().any(|w| w.message.contains("corrupt")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn a_truncated_mp4_gives_no_length_and_a_warning() {
    let mp4 = data("video.mp4");
    // moov is at the end: cutting the last kilobytes cuts it.
    let info = analyze(MediaKind::Video, &mp4[..mp4.len() - 1000]);
    assert_eq!((info.seconds, info.width), (None, None));
    assert!(
        info.warnings.iter().any(|w| w.field == "seconds"),
        "{:?}",
        info.warnings
    );
}

#[test]
fn a_voice_note_with_a_corrupt_end_still_has_what_its_intact_pages_say() {
    let ogg = data("voice.ogg");
    let cut = &ogg[..ogg.len() * 2 / 3];
    let info = analyze(MediaKind::Ptt, cut);
    let ms = info
        .duration_ms
        .expect("the last intact page's granule position");
    assert!(ms > 1000 && ms < 4200, "{ms}");
    assert_eq!(info.waveform.map(|w| w.len()), Some(64));
}

#[test]
fn a_voice_note_longer_than_the_limit_gets_no_waveform() {
    let short = Options {
        max_waveform_seconds: 2,
        ..opts()
    };
    let info = analyze_bytes(MediaKind::Ptt, &data("voice.ogg"), None, &short);
    assert_eq!(info.seconds, Some(4));
    assert_eq!(info.waveform, None);
    assert!(info
        .warnings
        .iter()
        .any(|w| w.field == "waveform" && w.message.contains("limit")));
}

#[test]
fn unknown_bytes_give_no_metadata_and_a_warning() {
    for kind in MediaKind::ALL {
        let info = analyze(kind, b"\x00\x01\x02 this is no media file at all \xFF\xFE");
        assert_eq!(info.mimetype, None);
        assert!(!info.warnings.is_empty(), "{kind}");
        assert_eq!(
            (info.width, info.seconds, info.waveform, info.page_count),
            (None, None, None, None)
        );
        let empty = analyze(kind, b"");
        assert!(!empty.warnings.is_empty());
    }
}

#[test]
fn a_sticker_that_is_not_webp_is_said_to_be_so() {
    let info = analyze(MediaKind::Sticker, &data("photo.jpg"));
    assert_eq!(info.animated, None);
    assert!(info.warnings.iter().any(|w| w.message.contains("WebP")));
}

/// `animated.webp` with its first `ANMF` size replaced.
fn first_frame_sized(size: u32) -> Vec<u8> {
    let mut f = data("animated.webp");
    assert_eq!(&f[44..48], b"ANMF");
    f[48..52].copy_from_slice(&size.to_le_bytes());
    f
}

#[test]
fn a_first_frame_past_the_end_gives_no_length_and_no_panic() {
    for size in [u32::MAX, u32::MAX - 1, 1 << 30, 3932 - 52 + 1] {
        let info = analyze(MediaKind::Sticker, &first_frame_sized(size));
        assert_eq!(info.first_frame_length, None, "size {size}");
        assert!(!info.warnings.is_empty());
    }
    // Cut anywhere inside the first frame: none either.
    let whole = data("animated.webp");
    for cut in [50, 60, 1000, 1339] {
        let info = analyze(MediaKind::Sticker, &whole[..cut]);
        assert_eq!(info.first_frame_length, None, "cut at {cut}");
    }
}

#[test]
fn a_chunk_before_anim_moves_the_first_frame_and_the_length_follows() {
    // An ICCP-like unknown chunk of odd size (5, padded to 6) between VP8X and ANIM:
    // the walk steps over it with its padding byte.
    let whole = data("animated.webp");
    let mut f = whole[..30].to_vec();
    f.extend_from_slice(b"XTRA\x05\0\0\0abcde\0");
    f.extend_from_slice(&whole[30..]);
    let riff = u32::from_le_bytes(f[4..8].try_into().unwrap()) + 14;
    f[4..8].copy_from_slice(&riff.to_le_bytes());
    let info = analyze(MediaKind::Sticker, &f);
    assert_eq!(
        info.first_frame_length,
        Some(1340 + 14),
        "{:?}",
        info.warnings
    );
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

#[test]
fn truncations_and_flipped_bytes_never_panic() {
    let files = [
        "photo.jpg",
        "alpha.png",
        "sticker.webp",
        "animated.webp",
        "video.mp4",
        "voice.ogg",
        "audio.mp3",
        "noxing.mp3",
        "audio.m4a",
        "audio.flac",
        "audio.wav",
        "doc.pdf",
    ];
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for name in files {
        let original = data(name);
        for round in 0..24 {
            let mut bytes = original.clone();
            if round % 2 == 0 {
                bytes.truncate(rng.below(bytes.len()));
            }
            for _ in 0..(1 + rng.below(8)) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng
                    .below(bytes.len().min(2048))
                    .max(rng.below(bytes.len()) * usize::from(round % 3 == 0));
                bytes[i] = u8::try_from(rng.next() & 0xFF).unwrap();
            }
            let content = wamedia_info::identify_bytes(&bytes, None);
            for kind in MediaKind::ALL {
                analyze(kind, &bytes);
                // What phones play: a check and a plan for any bytes, never a panic.
                let _ = wamedia_info::plan(kind, &content, &wamedia_info::ImageLimits::default());
            }
        }
    }
}
