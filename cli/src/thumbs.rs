//! What `wamedia upload` adds around the main transfer for stickers and thumbnails:
//! an animated sticker's `firstFrameLength` before the first pass (PROTOCOL §2.8), and
//! after the upload the larger thumbnail under the media's key (PROTOCOL §8;
//! `WAWebMediaUploadMediaWithPrep`), recorded in the result's `thumbnail_info`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use wamedia::*;
use wamedia_driver::{Transfer, UploadJob};
use wamedia_info::MediaKind;

use crate::files::cannot_read;
use crate::net::client_opts;
use crate::{Fail, UploadArgs};

/// When the larger thumbnail goes up (`--upload-thumbnail`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadThumbnail {
    /// For videos and documents (a document needs a picture: `--thumbnail`, or the
    /// document itself when it is one).
    #[default]
    Auto,
    /// For images, videos, gifs and documents.
    Yes,
    /// Never.
    No,
}

/// An animated WebP sticker's `firstFrameLength`, read from the chunk headers of `src`
/// (left at its start); `None` for any other upload.
pub fn first_frame_length<S: Read + Seek>(
    args: &UploadArgs,
    t: &MediaType,
    src: &mut S,
) -> Result<Option<u64>, Fail> {
    if *t != MediaType::Sticker || args.newsletter {
        return Ok(None);
    }
    let shown = Path::new(if args.file == "-" {
        "stdin"
    } else {
        &args.file
    });
    let found = wamedia_info::webp_first_frame_length(&mut *src);
    src.seek(SeekFrom::Start(0))
        .map_err(|e| cannot_read(shown, e))?;
    match found {
        Ok(l) => Ok(l),
        Err(w) => {
            if !args.net.quiet {
                eprintln!(
                    "wamedia: note: no first-frame sidecar: {}",
                    wamedia::escape(&w.to_string())
                );
            }
            Ok(None)
        }
    }
}

/// Uploads the larger thumbnail of `result` under its key and records it in
/// `result.thumbnail_info`, when `--upload-thumbnail` and the media type call for one.
/// With `--server-thumb-gen` the CDN makes it instead, and nothing goes up here. A
/// thumbnail that cannot be made is a note; one that cannot be uploaded is a note too,
/// unless `--upload-thumbnail yes` asked for it (then the upload fails).
pub fn upload_thumbnail(
    args: &UploadArgs,
    provider: &crate::net::Shared,
    result: &mut UploadResult,
) -> Result<(), Fail> {
    let asked = args.upload_thumbnail == UploadThumbnail::Yes;
    let wanted = match (args.upload_thumbnail, &result.media_type) {
        (UploadThumbnail::No, _) => false,
        (_, MediaType::Video | MediaType::Document) => true,
        (UploadThumbnail::Yes, MediaType::Image | MediaType::Gif) => true,
        _ => false,
    };
    if !wanted || args.server_thumb_gen || (args.no_info && !asked) {
        return Ok(());
    }
    let Some(job) = UploadJob::thumbnail_for(result) else {
        return Ok(());
    };
    let note = |what: &str| {
        if !args.net.quiet {
            eprintln!(
                "wamedia: note: no uploaded thumbnail: {}",
                wamedia::escape(what)
            );
        }
    };
    let preview = match preview(args, &result.media_type)? {
        Ok(p) => p,
        Err(why) => {
            note(&why);
            return Ok(());
        }
    };
    let prepared = job
        .prepare(&preview.jpeg[..])
        .map_err(|e| Fail::usage(format!("the thumbnail could not be prepared: {e}")))?;
    let mut o = client_opts(&args.net, args.no_resume);
    o.upload.server_thumb_gen = false;
    let work = crate::net::Up {
        prepared,
        data: preview.jpeg.clone().into(),
        transfer: Transfer::new(),
    };
    let sent = crate::net::run(&args.net, o, provider, work);
    match sent {
        Ok(thumb) => {
            result.attach_thumbnail(&thumb, preview.width, preview.height);
            if !args.net.quiet {
                eprintln!(
                    "wamedia: uploaded a {} × {} thumbnail ({} bytes) under the same key as {}",
                    preview.width,
                    preview.height,
                    preview.jpeg.len(),
                    thumb.media_type
                );
            }
            Ok(())
        }
        Err(e) if !asked => {
            note(&format!("its upload failed: {e}"));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The picture to upload: `--thumbnail FILE`, else one made from the file (a picture
/// scaled down, a video's first frame from ffmpeg). The inner error says why there is
/// none; the outer one is a `--thumbnail` that cannot be read.
fn preview(
    args: &UploadArgs,
    t: &MediaType,
) -> Result<Result<wamedia_info::Preview, String>, Fail> {
    let opts = wamedia_info::Options {
        ffmpeg: Some(wamedia_info::FfmpegOptions::default()),
        ..wamedia_info::Options::default()
    };
    if let Some(thumb) = &args.thumbnail {
        let bytes = std::fs::read(thumb).map_err(|e| cannot_read(thumb, e))?;
        return Ok(wamedia_info::preview_from_image(&bytes, &opts)
            .map_err(|w| format!("--thumbnail {}: {}", thumb.display(), w.message)));
    }
    let Some(kind) = t.name().and_then(MediaKind::from_name) else {
        return Ok(Err(format!("{t} has no thumbnail")));
    };
    if args.file == "-" {
        return Ok(Err(
            "the file came from stdin: give a picture with --thumbnail".into(),
        ));
    }
    Ok(
        wamedia_info::preview_path(kind, Path::new(&args.file), &opts).map_err(|w| {
            if kind == MediaKind::Document {
                format!("{} (give one with --thumbnail)", w.message)
            } else {
                w.message
            }
        }),
    )
}
