//! `wamedia-info` on arbitrary bytes: every kind, twice, and through a reader that hands
//! out a few bytes at a time.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use wamedia_info::{analyze_bytes, analyze_reader, MediaInfo, MediaKind, Options};

/// Limits small enough for a fuzzer's pace: pictures up to 4 MP, voice notes up to 2 s
/// decoded in process, 1 MiB scanned. No ffmpeg (the default).
fn options() -> Options {
    Options {
        max_pixels: 4_000_000,
        max_in_process_waveform_seconds: 2,
        max_scan_bytes: 1 << 20,
        ..Options::default()
    }
}

/// A reader that hands out at most 13 bytes a read: metadata must not depend on how a
/// source cuts its reads.
struct Trickle<'a>(Cursor<&'a [u8]>);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(13);
        self.0.read(&mut buf[..n])
    }
}

impl Seek for Trickle<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.0.seek(to)
    }
}

/// A warning that reports a panic inside wamedia-info's own code (a caught panic of a
/// decoder crate, such as image-webp#182, is that crate's bug, reported and survived).
fn own_bug(info: &MediaInfo) -> Option<String> {
    info.warnings
        .iter()
        .find(|w| w.message.contains("(a bug") && w.message.contains("media-info/src"))
        .map(|w| w.to_string())
}

pub(crate) fn run(data: &[u8]) {
    let opts = options();
    assert_eq!(opts.ffmpeg, None, "the fuzzer runs no program");
    for kind in MediaKind::ALL {
        let info = analyze_bytes(kind, data, Some("f"), &opts);
        if let Some(w) = own_bug(&info) {
            panic!("{kind}: a panic inside wamedia-info: {w}");
        }
        let again = analyze_bytes(kind, data, Some("f"), &opts);
        assert_eq!(info, again, "{kind}: two analyses of the same bytes differ");
        let trickled = analyze_reader(kind, Trickle(Cursor::new(data)), Some("f"), &opts);
        assert_eq!(info, trickled, "{kind}: short reads change the metadata");
        if let Some(t) = &info.jpeg_thumbnail {
            assert!(
                t.len() <= opts.thumbnail.max_bytes,
                "{kind}: a thumbnail of {} bytes",
                t.len()
            );
        }
        if let Some(w) = &info.waveform {
            assert!(
                w.len() == 64 && w.iter().all(|&b| b <= 100),
                "{kind}: waveform {w:?}"
            );
        }
        if let Some(ffl) = info.first_frame_length {
            assert!(
                ffl <= data.len() as u64,
                "{kind}: a first frame of {ffl} past the end"
            );
        }
    }
    // What phones play: identifying never panics, and reads the same through short reads.
    let content = wamedia_info::identify_bytes(data, None);
    let trickled = wamedia_info::identify_reader(Trickle(Cursor::new(data)), None)
        .expect("a cursor does not fail");
    assert_eq!(content, trickled, "short reads change what the content is");
}
