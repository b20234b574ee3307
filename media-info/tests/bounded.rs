//! Work and memory bounded by the parsers' own limits (issue 20, items 13 and 14).
//!
//! No test here times anything: the work is counted at the reader (bytes handed out, reads
//! asked for, the largest read asked for), and the same input must give the same metadata
//! twice.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use wamedia_info::{analyze_bytes, analyze_reader, MediaInfo, MediaKind, Options};

/// What a reader was asked for.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    bytes: u64,
    reads: u64,
    largest_read: usize,
}

struct Counting<R> {
    inner: R,
    counts: Counts,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counts.bytes += n as u64;
        self.counts.reads += 1;
        self.counts.largest_read = self.counts.largest_read.max(buf.len());
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

fn opts() -> Options {
    Options {
        ffmpeg: None,
        ..Options::default()
    }
}

/// Analyses `data` through a counting reader, twice; the two answers must agree.
fn analyze_counted(kind: MediaKind, data: &[u8]) -> (MediaInfo, Counts) {
    let mut r = Counting {
        inner: Cursor::new(data),
        counts: Counts::default(),
    };
    let info = analyze_reader(kind, &mut r, None, &opts());
    let again = analyze_bytes(kind, data, None, &opts());
    assert_eq!(info, again, "the same bytes gave different metadata");
    (info, r.counts)
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(body.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

fn ftyp() -> Vec<u8> {
    mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2")
}

#[test]
fn an_mp4_of_tiny_boxes_is_read_once_not_refilled_per_header() {
    // A moov of 4000 empty boxes: legal, cheap to walk, and each 8-byte header used to
    // cost a seek and an 8 KiB refill.
    let tiny: Vec<u8> = (0..4000).flat_map(|_| mp4_box(b"free", b"")).collect();
    let mut file = ftyp();
    file.extend(mp4_box(b"moov", &tiny));
    let (info, counts) = analyze_counted(MediaKind::Video, &file);
    assert!(
        info.warnings.iter().any(|w| w.message.contains("mvhd")),
        "{:?}",
        info.warnings
    );
    let len = file.len() as u64;
    assert!(
        counts.bytes <= 2 * len + (64 << 10),
        "{} bytes read for a file of {len}",
        counts.bytes
    );
}

#[test]
fn nested_tiny_boxes_stop_at_the_total_box_budget() {
    // 600 traks of 600 boxes: under the per-level cap at every level, 360 000 headers in
    // all. The walk stops at its total budget instead of visiting each.
    let trak_body: Vec<u8> = (0..600).flat_map(|_| mp4_box(b"free", b"")).collect();
    let trak = mp4_box(b"trak", &trak_body);
    let mut moov_body = mp4_box(b"mvhd", &[0u8; 100]);
    for _ in 0..600 {
        moov_body.extend_from_slice(&trak);
    }
    let mut file = ftyp();
    file.extend(mp4_box(b"moov", &moov_body));
    let (info, counts) = analyze_counted(MediaKind::Video, &file);
    assert!(
        info.warnings
            .iter()
            .any(|w| w.message.contains("boxes in all")),
        "{:?}",
        info.warnings
    );
    let len = file.len() as u64;
    assert!(
        counts.bytes <= 2 * len + (64 << 10),
        "{} bytes",
        counts.bytes
    );
}

/// Ogg's CRC (polynomial 0x04C11DB7, no reflection, zero start).
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in page {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn ogg_page(flags: u8, granule: u64, seq: u32, packets: &[&[u8]]) -> Vec<u8> {
    let mut p = b"OggS\0".to_vec();
    p.push(flags);
    p.extend_from_slice(&granule.to_le_bytes());
    p.extend_from_slice(&7u32.to_le_bytes()); // serial
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&[0; 4]); // CRC, filled below
    let mut lacing = Vec::new();
    for pk in packets {
        let mut n = pk.len();
        while n >= 255 {
            lacing.push(255);
            n -= 255;
        }
        lacing.push(u8::try_from(n).unwrap());
    }
    p.push(u8::try_from(lacing.len()).unwrap());
    p.extend_from_slice(&lacing);
    for pk in packets {
        p.extend_from_slice(pk);
    }
    let crc = ogg_crc(&p);
    p[22..26].copy_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn an_ogg_voice_note_of_empty_pages_stops_at_its_page_budget() {
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    let mut file = ogg_page(2, 0, 0, &[&head]);
    file.extend(ogg_page(0, 0, 1, &[b"OpusTags\0\0\0\0\0\0\0\0"]));
    // 200 000 pages without a packet (5.4 MB), then a last page saying 10 s.
    for seq in 2..200_002 {
        file.extend(ogg_page(0, 0, seq, &[]));
    }
    file.extend(ogg_page(4, 480_312, 200_002, &[&[0xF8, 0xFF, 0xFE]]));
    let (info, counts) = analyze_counted(MediaKind::Ptt, &file);
    assert_eq!(info.seconds, Some(10));
    assert_eq!(info.waveform, None);
    assert!(
        info.warnings
            .iter()
            .any(|w| w.field == "waveform" && w.message.contains("Ogg pages")),
        "{:?}",
        info.warnings
    );
    // The page budget for 10 s is ~8 000 pages: a fraction of the file, read once.
    let len = file.len() as u64;
    assert!(counts.bytes <= len, "{} bytes read of {len}", counts.bytes);
}

#[test]
fn ffmpeg_is_not_started_on_a_voice_note_whose_pages_run_past_their_budget() {
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    let mut file = ogg_page(2, 0, 0, &[&head]);
    file.extend(ogg_page(0, 0, 1, &[b"OpusTags\0\0\0\0\0\0\0\0"]));
    for seq in 2..20_002 {
        file.extend(ogg_page(0, 0, seq, &[]));
    }
    file.extend(ogg_page(4, 480_312, 20_002, &[&[0xF8, 0xFF, 0xFE]]));
    let dir = tempfile::tempdir().unwrap();
    let note = dir.path().join("note.ogg");
    std::fs::write(&note, &file).unwrap();
    // A stand-in for ffmpeg that leaves a mark when it is started.
    let marker = dir.path().join("started");
    let program = dir.path().join("ffmpeg");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let opts = Options {
        ffmpeg: Some(wamedia_info::FfmpegOptions {
            program,
            ..wamedia_info::FfmpegOptions::default()
        }),
        ..Options::default()
    };
    let info = wamedia_info::analyze_path(MediaKind::Ptt, &note, &opts);
    assert_eq!(info.seconds, Some(10));
    assert_eq!(info.waveform, None);
    assert!(
        info.warnings
            .iter()
            .any(|w| w.field == "waveform" && w.message.contains("Ogg pages")),
        "{:?}",
        info.warnings
    );
    assert!(!marker.exists(), "ffmpeg was started");
}

#[test]
fn a_wav_of_65535_channels_is_read_in_bounded_pieces() {
    let channels = 65_535u16;
    let frame = u32::from(channels) * 2;
    let frames = 80u32;
    let data_len = frame * frames;
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&(8000 * frame).to_le_bytes());
    wav.extend_from_slice(&u16::try_from(frame).unwrap_or(u16::MAX).to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    let start = wav.len();
    wav.resize(start + data_len as usize, 0);
    for f in 0..frames as usize {
        // Channel 0 rises frame by frame; the other channels stay silent.
        let s = i16::try_from(f * 400).unwrap().to_le_bytes();
        wav[start + f * frame as usize..][..2].copy_from_slice(&s);
    }
    let (info, counts) = analyze_counted(MediaKind::Ptt, &wav);
    let bars = info.waveform.expect("a waveform");
    assert_eq!(bars.len(), 64);
    assert_eq!(bars[63], 100);
    // Memory per read is bounded, not a function of the channel count (a 16 384-frame
    // chunk of 65 535 channels was one 2 GiB buffer; here the frames are 10 MB in all).
    assert!(
        counts.largest_read <= 1 << 20,
        "a read of {} bytes",
        counts.largest_read
    );
}

/// A lossless WebP header claiming `w × h` (the bitstream after it is not needed).
fn vp8l_claiming(w: u32, h: u32) -> Vec<u8> {
    let bits = (w - 1) | ((h - 1) << 14);
    let mut body = vec![0x2F];
    body.extend_from_slice(&bits.to_le_bytes());
    body.extend_from_slice(&[0; 64]);
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&u32::try_from(4 + 8 + body.len()).unwrap().to_le_bytes());
    f.extend_from_slice(b"WEBPVP8L");
    f.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    f.extend_from_slice(&body);
    f
}

#[test]
fn a_lossless_webp_over_the_memory_ceiling_is_not_decoded() {
    // 7000 × 7000 = 49 MP: under max_pixels, but decoding takes two 196 MB buffers.
    for kind in [MediaKind::Image, MediaKind::Sticker] {
        let (info, _) = analyze_counted(kind, &vp8l_claiming(7000, 7000));
        assert_eq!(
            (info.width, info.height),
            (Some(7000), Some(7000)),
            "{:?}",
            info.warnings
        );
        assert_eq!(info.jpeg_thumbnail, None);
        assert!(
            info.warnings
                .iter()
                .any(|w| w.field == "jpeg_thumbnail" && w.message.contains("MiB ceiling")),
            "{:?}",
            info.warnings
        );
    }
    // A small one is decoded as before (and fails on the missing bitstream).
    let (small, _) = analyze_counted(MediaKind::Image, &vp8l_claiming(100, 100));
    assert!(small
        .warnings
        .iter()
        .all(|w| !w.message.contains("ceiling")));
}
