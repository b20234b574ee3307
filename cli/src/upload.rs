//! `wamedia upload`: every check first (flags, media connection, record paths), then the
//! first pass, then the transfer; an interrupted upload of the same file is resumed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use wamedia::*;
use wamedia_conformance::cassette::{CassetteInput, Kind, Options, Plaintext};
use wamedia_conformance::record::{outcome_of_upload, Recorder};
use wamedia_driver::{Transfer, UploadJob};
use wamedia_info::faststart::{self, FaststartReader, Plan, Refusal};

use crate::files::{cannot_read, cannot_write, private_file};
use crate::net::{
    bin_path, check_record_path, client_opts, conn_provider, hex, run_download, stem,
    write_cassette, Inspect, Provider,
};
use crate::{detect, media_key, media_type, progress, resume, Fail, Net, UploadArgs};

/// A seekable upload source: the file, or stdin spooled, or either remuxed to faststart.
enum Src {
    File(File),
    Spool(tempfile::SpooledTempFile),
    Faststart(Box<FaststartReader<Src>>),
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Src::File(f) => f.read(buf),
            Src::Spool(s) => s.read(buf),
            Src::Faststart(r) => r.read(buf),
        }
    }
}

impl Seek for Src {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Src::File(f) => f.seek(pos),
            Src::Spool(s) => s.seek(pos),
            Src::Faststart(r) => r.seek(pos),
        }
    }
}

/// Remuxes a video, gif or video note to faststart as WhatsApp Web does (PROTOCOL §8):
/// returns the source to upload, its length, and whether it may carry a streaming sidecar
/// (not when its `moov` still comes after its media data, PROTOCOL §2.7). Not an MP4 or
/// MOV: as it is. `--no-faststart`: as it is. A file that cannot be remuxed: as it is,
/// without a sidecar, and a note saying why.
fn faststart(
    args: &UploadArgs,
    t: &MediaType,
    mut src: Src,
    len: u64,
) -> Result<(Src, u64, bool), Fail> {
    if !matches!(t.name(), Some("video" | "gif" | "ptv")) {
        return Ok((src, len, true));
    }
    let shown = if args.file == "-" {
        "stdin"
    } else {
        args.file.as_str()
    };
    let plan = faststart::plan(&mut src, len);
    src.seek(SeekFrom::Start(0))
        .map_err(|e| cannot_read(Path::new(shown), e))?;
    let note = |s: String| {
        if !args.net.quiet {
            eprintln!("wamedia: {}", wamedia::escape(&s));
        }
    };
    Ok(match plan {
        Ok(Plan::NothingToDo) | Err(Refusal::NotMp4) => (src, len, true),
        Ok(Plan::Remux(r)) if args.no_faststart => {
            let moov_last = r.moov_moved();
            if moov_last {
                note(
                    "--no-faststart: uploaded as it is, moov last, so without a streaming sidecar"
                        .into(),
                );
            }
            (src, len, !moov_last)
        }
        Ok(Plan::Remux(r)) => {
            let dropped = r.dropped_tracks();
            let first = if r.moov_moved() { "moov first, " } else { "" };
            note(format!(
                "remuxed to faststart ({first}{dropped} track{} dropped)",
                if dropped == 1 { "" } else { "s" }
            ));
            let reader = FaststartReader::new(src, r);
            let len = reader.len();
            (Src::Faststart(Box::new(reader)), len, true)
        }
        Err(why) => {
            note(format!(
                "cannot remux {shown} to faststart ({why}): uploaded as it is, without a streaming sidecar"
            ));
            (src, len, false)
        }
    })
}

/// Opens the file (or spools stdin, a pipe or any file that cannot seek) and returns it
/// with its length and first bytes.
fn open_source(file: &str) -> Result<(Src, u64, Vec<u8>), Fail> {
    let shown = Path::new(if file == "-" { "stdin" } else { file });
    let cannot = |e: io::Error| cannot_read(shown, e);
    let spool = |r: &mut dyn Read| -> Result<Src, Fail> {
        let mut spool = tempfile::SpooledTempFile::new(8 << 20);
        io::copy(r, &mut spool).map_err(cannot)?;
        Ok(Src::Spool(spool))
    };
    let mut src = if file == "-" {
        spool(&mut io::stdin().lock())?
    } else {
        let mut f = File::open(file).map_err(cannot)?;
        match f.metadata() {
            Ok(m) if m.is_dir() => return Err(cannot_read(shown, "it is a folder")),
            Ok(m) if m.is_file() => Src::File(f),
            // `<(command)`, a FIFO, a device: read once into a spool.
            _ => spool(&mut f)?,
        }
    };
    let len = src.seek(SeekFrom::End(0)).map_err(cannot)?;
    if len == 0 {
        return Err(Fail::usage(format!(
            "{} is empty: there is nothing to upload",
            shown.display()
        )));
    }
    src.seek(SeekFrom::Start(0)).map_err(cannot)?;
    let mut head = Vec::with_capacity(detect::HEAD_LEN);
    (&mut src)
        .take(detect::HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    src.seek(SeekFrom::Start(0)).map_err(cannot)?;
    Ok((src, len, head))
}

/// Runs `wamedia upload`.
pub fn upload(args: UploadArgs, threads: wamedia_driver::Threads) -> Result<(), Fail> {
    // --convert: a file phones would not play is converted into a temporary, sent instead.
    let (args, _converted) = crate::prepare::convert_for_upload(args)?;
    let net = &args.net;
    let file = args.file.as_str();
    let path = PathBuf::from(file);
    // Everything that needs no byte of the file is checked first.
    let given_type = args.media_type.as_deref().map(media_type).transpose()?;
    let given_key = args
        .media_key
        .as_deref()
        .map(|k| media_key("--media-key", k))
        .transpose()?;
    let provider = conn_provider(net)?;
    if let Some(cassette) = &args.record {
        check_record_path(cassette, &[&path])?;
    }
    let (mut src, len, head) = open_source(file)?;
    let guess = detect::guess(&head, &path);
    let t = match given_type {
        Some(t) => t,
        None => {
            if !net.quiet {
                eprintln!(
                    "wamedia: no --type given; {} looks like {} ({})",
                    wamedia::escape(file),
                    guess.media_type,
                    guess.why
                );
            }
            guess.media_type.clone()
        }
    };
    // A type WhatsApp has no path for is refused before reading further.
    let path_check = if args.newsletter {
        t.newsletter_upload_path()
    } else {
        t.upload_path()
    };
    path_check.map_err(|e| Fail::usage(e.to_string()))?;
    // Media outside what phones play (or of another kind than the type) is refused here.
    let mimetype = crate::prepare::accepted_mimetype(&args, &t, &mut src, &guess)?;

    // An interrupted upload of this very file is resumed: same key, same media_id.
    let state = match (&src, &given_key) {
        (Src::File(f), None)
            if provider.is_some() && !args.no_resume && !args.newsletter && t.is_encrypted() =>
        {
            resume::State::for_file(&path, f, &t, resume::cdn_id(net))
        }
        _ => None,
    };
    let saved = state
        .as_ref()
        .filter(|_| !args.fresh)
        .and_then(resume::State::load);
    let (mut src, len, sidecar) = faststart(&args, &t, src, len)?;
    let mut job = UploadJob::new(t.clone())
        .with_threads(threads)
        .with_streaming_sidecar(sidecar);
    if let Some(k) = given_key {
        job = job.with_media_key(k);
    }
    if let Some(ts) = args.media_key_timestamp {
        job = job.with_media_key_timestamp(ts);
    }
    if let Some(s) = &saved {
        job = job
            .with_media_key(s.media_key.clone())
            .with_media_id(s.media_id);
        if let Some(ts) = s.media_key_timestamp {
            job = job.with_media_key_timestamp(ts);
        }
        if !net.quiet {
            eprintln!(
                "wamedia: resuming an interrupted upload of {} with its key (--fresh starts over)",
                wamedia::escape(file)
            );
        }
    }
    if args.newsletter {
        job = job.newsletter();
    }
    if let Some(l) = crate::thumbs::first_frame_length(&args, &t, &mut src)? {
        job = job.with_first_frame_length(l);
    }
    // Sent before? The upload cache has the key it went up with (no first pass then).
    let usable = provider.is_some() && saved.is_none();
    let mut cached = crate::cache::begin(&args, usable, &job, &mut src, len)?;
    let mut hit = cached
        .as_mut()
        .and_then(crate::cache::Cached::take_prepared);

    // The first pass (hashes, MAC, checkpoints) reads the whole file: show it too.
    let shown = Path::new(if file == "-" { "stdin" } else { file });
    let prepared = {
        let label = if args.newsletter || !t.is_encrypted() {
            "hash"
        } else {
            "encrypt"
        };
        let bar = progress::Bar::new(net.quiet || hit.is_some(), label, "");
        let mut done = 0u64;
        let reader = Inspect(&mut src, |n: usize| {
            done = done.saturating_add(n as u64);
            bar.update(done, Some(len));
        });
        let p = hit.take().map_or_else(|| job.prepare(reader), Ok);
        bar.finish(p.is_ok());
        p.map_err(|e| cannot_read(shown, e))?
    };
    src.seek(SeekFrom::Start(0))
        .map_err(|e| cannot_read(shown, e))?;
    // What the message needs besides the upload: read before the source goes to the
    // transport (headers mostly; a voice note is decoded for its waveform).
    let info = if args.no_info {
        None
    } else {
        let i = analyze(&args, &t, &mut src)?;
        src.seek(SeekFrom::Start(0))
            .map_err(|e| cannot_read(shown, e))?;
        i
    };
    if let (Some(s), None) = (&state, &saved) {
        if let Err(e) = s.save(&prepared) {
            if !net.quiet {
                eprintln!(
                    "wamedia: this upload could not be made resumable: {}",
                    wamedia::escape(&e)
                );
            }
        }
    }

    let mut recorder = match &args.record {
        Some(cassette) => {
            let bin = bin_path(cassette);
            io::copy(&mut src, &mut private_file(&bin)?).map_err(|e| cannot_write(&bin, e))?;
            src.seek(SeekFrom::Start(0))
                .map_err(|e| cannot_read(shown, e))?;
            Some(Recorder::for_upload_source(&prepared, move || {
                File::open(&bin)
            }))
        }
        None => None,
    };
    let local = match &provider {
        None => Some(crate::local::start()?),
        Some(_) => None,
    };
    let provider: Provider = match (provider, &local) {
        (Some(p), _) => p,
        (None, Some(cdn)) => {
            if !net.quiet {
                eprintln!("wamedia: no media connection given: using an embedded local CDN at {} (nothing leaves this machine)", cdn.host());
            }
            Box::new(cdn.media_conn(Instant::now()))
        }
        (None, None) => return Err(Fail::usage("no media connection")),
    };
    let provider = crate::net::share(provider);
    let mut o = client_opts(net, args.no_resume);
    o.upload.server_thumb_gen = args.server_thumb_gen;
    let bar = progress::Bar::sending(net.quiet);
    let result = {
        let mut watch = bar.watch(
            o.upload.retry.max_attempts,
            recorder
                .as_mut()
                .map(|r| r as &mut dyn wamedia_driver::Observer),
        );
        let transfer = Transfer::new()
            .on_progress(|d, tot| bar.update(d, tot))
            .observe(&mut watch);
        let work = crate::net::Up {
            prepared: prepared.clone(),
            data: wamedia_driver::UploadData::seekable(src),
            transfer,
        };
        crate::net::run(net, o, &provider, work)
    };
    bar.finish(result.is_ok());
    if let (Some(rec), Some(cassette)) = (recorder, &args.record) {
        let input = CassetteInput {
            media_type: t.name().unwrap_or("document").into(),
            media_key: prepared.spec.media_key.as_ref().map(hex),
            key_reused: prepared.spec.key_reused,
            media_id: Some(prepared.spec.media_id.get()),
            wall_unix: None,
            plaintext: Plaintext::File(
                bin_path(cassette)
                    .file_name()
                    .map_or("recorded.bin".into(), |n| n.to_string_lossy().into_owned()),
            ),
            newsletter: args.newsletter,
            options: Options {
                resume: args.no_resume.then_some(false),
                server_thumb_gen: args.server_thumb_gen.then_some(true),
                ..Options::default()
            },
            source: None,
            expected: None,
        };
        let c = rec.into_cassette(
            &stem(cassette),
            &format!("upload recorded by `wamedia upload --record` from {file}"),
            Kind::Upload,
            input,
            outcome_of_upload(&result),
        );
        write_cassette(cassette, &c, net.quiet)?;
        if result.is_err() {
            // A failed upload leaves no copy of the plaintext behind.
            let _ = std::fs::remove_file(bin_path(cassette));
        }
    }
    let mut result = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = &state {
                if !resume::worth_keeping(&e) {
                    // A refusal is final: nothing to resume, no key kept.
                    s.remove();
                } else if !net.quiet && s.path().exists() {
                    eprintln!("wamedia: run the same command again to resume this upload (--fresh starts over)");
                }
            }
            return Err(match e {
                wamedia_driver::Error::Io(e) => cannot_read(shown, e),
                e => e.into(),
            });
        }
    };
    if let Some(s) = &state {
        s.remove();
    }
    if let Some(c) = cached {
        c.finish(&prepared, &mut result, net.quiet);
    }
    crate::thumbs::upload_thumbnail(&args, &provider, &mut result)?;
    if let Some(cdn) = &local {
        verify_back(net, &result, cdn)?;
    }
    let mut line = result.to_json();
    if let Some(m) = line.as_object_mut() {
        m.insert("mimetype".into(), mimetype.into());
    }
    if let Some((kind, info)) = &info {
        let message = info.message_json(&line, kind.name());
        if !message.is_null() {
            if let Some(m) = line.as_object_mut() {
                m.insert(
                    "message".into(),
                    serde_json::json!({ kind.message_field(): message }),
                );
            }
        }
    }
    println!("{line}");
    Ok(())
}

/// What the media itself says for the `message` object (wamedia-info): size, duration,
/// thumbnail, waveform, pages. Metadata that cannot be read is a note on stderr, never a
/// failure; `None` for types that have no message.
fn analyze(
    args: &UploadArgs,
    t: &MediaType,
    src: &mut Src,
) -> Result<Option<(wamedia_info::MediaKind, wamedia_info::MediaInfo)>, Fail> {
    let Some(kind) = t.name().and_then(wamedia_info::MediaKind::from_name) else {
        return Ok(None);
    };
    let opts = wamedia_info::Options {
        ffmpeg: Some(wamedia_info::FfmpegOptions::default()),
        ..wamedia_info::Options::default()
    };
    let file_name = Path::new(&args.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut info = match src {
        Src::File(_) => wamedia_info::analyze_path(kind, Path::new(&args.file), &opts),
        Src::Spool(s) => {
            s.seek(SeekFrom::Start(0))
                .map_err(|e| cannot_read(Path::new("stdin"), e))?;
            wamedia_info::analyze_reader(kind, s, file_name.as_deref(), &opts)
        }
        Src::Faststart(r) => {
            // The remuxed bytes for what the message says; ffmpeg's first frame (the same
            // in both) from the original file, which has a path.
            r.seek(SeekFrom::Start(0))
                .map_err(|e| cannot_read(Path::new(&args.file), e))?;
            let no_ffmpeg = wamedia_info::Options {
                ffmpeg: None,
                ..opts.clone()
            };
            let mut info =
                wamedia_info::analyze_reader(kind, &mut **r, file_name.as_deref(), &no_ffmpeg);
            if args.file != "-" && args.thumbnail.is_none() {
                let original = wamedia_info::analyze_path(kind, Path::new(&args.file), &opts);
                info.jpeg_thumbnail = original.jpeg_thumbnail;
                info.warnings.extend(
                    original
                        .warnings
                        .into_iter()
                        .filter(|w| w.field == "jpeg_thumbnail"),
                );
            }
            info
        }
    };
    if let Some(thumb) = &args.thumbnail {
        let bytes = std::fs::read(thumb).map_err(|e| cannot_read(thumb, e))?;
        info.jpeg_thumbnail = Some(
            wamedia_info::thumbnail_from_image(&bytes, &opts)
                .map_err(|w| Fail::usage(format!("--thumbnail {}: {w}", thumb.display())))?,
        );
    }
    if !args.net.quiet {
        for w in &info.warnings {
            eprintln!("wamedia: note: {}", wamedia::escape(&w.to_string()));
        }
    }
    Ok(Some((kind, info)))
}

/// Proves the round trip on the local CDN: download it back and verify every check
/// (the MAC and both hashes, or the SHA-256 of unencrypted media).
fn verify_back(net: &Net, result: &UploadResult, cdn: &crate::local::LocalCdn) -> Result<(), Fail> {
    let spec = result.download_spec();
    let dir = tempfile::tempdir().map_err(|e| {
        Fail::usage(format!(
            "cannot make a temporary folder in {}: {e}",
            std::env::temp_dir().display()
        ))
    })?;
    let back = dir.path().join("downloaded");
    run_download(
        net,
        spec,
        &crate::net::static_source(cdn.media_conn(Instant::now())),
        &back,
        Transfer::new(),
        false,
    )?;
    if !net.quiet {
        let what = if result.media_key.is_some() {
            "MAC, hashes and length"
        } else {
            "SHA-256 and length (unencrypted)"
        };
        eprintln!(
            "wamedia: downloaded it back from the local CDN and verified {what} ({} bytes)",
            result.file_length
        );
    }
    Ok(())
}
