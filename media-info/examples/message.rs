//! Turns the committed fixtures (an image, a voice note and a video) into the message
//! objects WhatsApp would carry for them.
//!
//! The upload JSON here is FAKE: made-up URLs, keys and hashes in the shape `wamedia upload`
//! prints, so the example runs without a CDN. With a real upload, pass what it printed.
//!
//! `cargo run -p wamedia-info --example message` for the fixtures, or
//! `cargo run -p wamedia-info --example message -- KIND FILE [--no-ffmpeg]` for any file.
//! It opts in to ffmpeg (a video's first frame, a voice note's decoding), as `wamedia
//! upload` does; the library's defaults run no program.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wamedia_info::{analyze_path, FfmpegOptions, MediaKind, Options};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// What `wamedia upload` prints, with invented values.
fn fake_upload(kind: MediaKind, file_length: u64) -> Value {
    json!({
        "url": format!("https://mmg.whatsapp.net/v/t62.fake-{kind}.enc?ccb=11-4&mms3=true"),
        "direct_path": format!("/v/t62.fake-{kind}.enc?ccb=11-4"),
        "media_type": kind.name(),
        "media_key": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
        "file_sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "file_enc_sha256": "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8=",
        "file_length": file_length,
        "media_key_timestamp": 1760000000,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Options {
        ffmpeg: (!args.iter().any(|a| a == "--no-ffmpeg")).then(FfmpegOptions::default),
        ..Options::default()
    };
    let files: Vec<(MediaKind, PathBuf)> = match args.as_slice() {
        [kind, file, ..] => match kind.parse() {
            Ok(k) => vec![(k, PathBuf::from(file))],
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
        _ => vec![
            (MediaKind::Image, fixture("photo.jpg")),
            (MediaKind::Ptt, fixture("voice.ogg")),
            (MediaKind::Video, fixture("video.mp4")),
        ],
    };
    for (kind, path) in files {
        let name = path.display();
        let info = analyze_path(kind, &path, &opts);
        for w in &info.warnings {
            eprintln!("{name}: warning: {w}");
        }
        let length = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let message = json!({ kind.message_field(): info.message_json(&fake_upload(kind, length), kind.name()) });
        println!("{message}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_runs() {
        super::main();
    }
}
