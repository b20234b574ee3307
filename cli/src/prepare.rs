//! Media that plays on every phone (PROTOCOL §8): `wamedia prepare`, `upload --convert`,
//! and the check every upload of a message's media goes through.
//!
//! The check and the plans are wamedia-info's; this module runs them, and ffmpeg only
//! when the command line asked for a conversion (`prepare`, or `upload --convert`), saying
//! so on stderr.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wamedia::MediaType;
use wamedia_info::{
    check, fit_image, identify_path, identify_reader, plan, ConversionError, FfmpegOptions,
    ImageLimits, MediaKind, Plan, Refusal,
};

use crate::detect::{self, Guess};
use crate::files::{cannot_read, cannot_write, refuse_same, Atomic};
use crate::{Fail, PrepareArgs, UploadArgs};

/// How long one conversion may run: a long video takes a while with libx264.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(3600);

/// ffmpeg for conversions.
fn ffmpeg() -> FfmpegOptions {
    FfmpegOptions {
        timeout: CONVERT_TIMEOUT,
        ..FfmpegOptions::default()
    }
}

/// The largest picture decoded to be resized (as for thumbnails: a 50 MP photo).
const MAX_PIXELS: u64 = 50_000_000;

/// The message kind of a media type; `None` for types with no message (history, app
/// state, thumbnails, …), which are sent as they are.
fn kind_of(t: &MediaType) -> Option<MediaKind> {
    t.name().and_then(MediaKind::from_name)
}

/// "an image", "a video": the type with its article.
fn a(kind: MediaKind) -> String {
    match kind {
        MediaKind::Image | MediaKind::Audio => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

/// What to run to fix a refusal, for its message.
fn remedy(refusal: &Refusal, file: &str, kind: MediaKind) -> String {
    let file = wamedia::escape(file);
    match refusal {
        Refusal::NotAccepted {
            conversion: Some(_),
            ..
        } if file == "stdin" => format!(
            "; save it to a file and convert it with `wamedia prepare FILE OUT --type {kind}`, \
             or upload the file with --convert"
        ),
        Refusal::NotAccepted {
            conversion: Some(_),
            ..
        } => format!(
            "; convert it with `wamedia prepare {file} OUT --type {kind}`, or upload with --convert"
        ),
        Refusal::WrongType {
            suggestion,
            conversion,
            ..
        } => match conversion {
            Some(_) => format!(" (--type {suggestion} --convert)"),
            None => format!(" (--type {suggestion})"),
        },
        _ => String::new(),
    }
}

/// The refusal as a usage error naming the file and what to do.
fn refused(refusal: &Refusal, file: &str, kind: MediaKind) -> Fail {
    Fail::usage(format!(
        "{}: {refusal}{}",
        wamedia::escape(file),
        remedy(refusal, file, kind)
    ))
}

/// The mimetype an upload's JSON says: for media with a message, the one the check
/// accepts (a file outside WhatsApp's list, or of another kind than `t`, is refused
/// here, before any work); for documents, whatever the content is; types with no
/// message keep the guess.
pub fn accepted_mimetype<S: Read + Seek>(
    args: &UploadArgs,
    t: &MediaType,
    src: &mut S,
    guess: &Guess,
) -> Result<&'static str, Fail> {
    let Some(kind) = kind_of(t) else {
        return Ok(guess.mimetype);
    };
    let shown = if args.file == "-" {
        "stdin"
    } else {
        &args.file
    };
    let name = Path::new(&args.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let content = identify_reader(&mut *src, name.as_deref())
        .map_err(|e| cannot_read(Path::new(shown), e))?;
    src.seek(SeekFrom::Start(0))
        .map_err(|e| cannot_read(Path::new(shown), e))?;
    if kind == MediaKind::Document {
        // Any type, sent as it is: what the content says (a .mov is video/quicktime, a
        // .docx its Office type), or the guess when it says nothing.
        return Ok(content.mimetype.unwrap_or(guess.mimetype));
    }
    check(kind, &content).map_err(|r| refused(&r, shown, kind))
}

/// A converted upload source: removed when dropped.
pub struct Converted {
    _file: tempfile::TempPath,
}

/// `upload --convert`: when the file needs it, converts it (or fits an image) into a
/// private temporary named `wamedia-convert-*` and returns the arguments with that file
/// (and the type made explicit, resuming across runs off); the temporary is removed
/// when the returned guard is dropped. Without `--convert`, the arguments as they are.
pub fn convert_for_upload(mut args: UploadArgs) -> Result<(UploadArgs, Option<Converted>), Fail> {
    if !args.convert {
        return Ok((args, None));
    }
    if args.file == "-" {
        return Err(Fail::usage(
            "--convert needs a file, not stdin (ffmpeg reads it from a path)",
        ));
    }
    let input = PathBuf::from(&args.file);
    let t = match &args.media_type {
        Some(name) => crate::media_type(name)?,
        None => {
            let mut head = Vec::with_capacity(detect::HEAD_LEN);
            File::open(&input)
                .and_then(|f| f.take(detect::HEAD_LEN as u64).read_to_end(&mut head))
                .map_err(|e| cannot_read(&input, e))?;
            detect::guess(&head, &input).media_type
        }
    };
    let Some(kind) = kind_of(&t).filter(|k| *k != MediaKind::Document) else {
        return Ok((args, None));
    };
    let content = identify_path(&input).map_err(|e| cannot_read(&input, e))?;
    let step =
        plan(kind, &content, &ImageLimits::default()).map_err(|r| refused(&r, &args.file, kind))?;
    let ext = match &step {
        Plan::AsIs { .. } => return Ok((args, None)),
        Plan::Convert(c) => c.target.extension(),
        Plan::FitImage { .. } => "jpg",
        _ => return Ok((args, None)),
    };
    let tmp = tempfile::Builder::new()
        .prefix("wamedia-convert-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .map_err(|e| {
            Fail::usage(format!(
                "cannot make a temporary file in {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
    let (file, path) = tmp.into_parts();
    let mut file = file;
    run_step(
        &step,
        kind,
        (&input, &content),
        (&path, &mut file),
        args.net.quiet,
    )?;
    args.file = path.to_string_lossy().into_owned();
    args.media_type = Some(kind.name().to_owned());
    args.no_resume = true;
    Ok((args, Some(Converted { _file: path })))
}

/// Runs one step of a plan from `input` into `out` (already created, private): ffmpeg, or
/// the image fit. Returns the mimetype of what was written.
fn run_step(
    step: &Plan,
    kind: MediaKind,
    (input, content): (&Path, &wamedia_info::Content),
    (out, out_file): (&Path, &mut File),
    quiet: bool,
) -> Result<&'static str, Fail> {
    let shown = wamedia::escape(&input.display().to_string());
    match step {
        Plan::AsIs { mimetype } => {
            let mut f = File::open(input).map_err(|e| cannot_read(input, e))?;
            io::copy(&mut f, out_file).map_err(|e| cannot_write(out, e))?;
            if !quiet {
                eprintln!(
                    "wamedia: {shown} is already {} phones accept ({mimetype}); copied as it is",
                    a(kind)
                );
            }
            Ok(mimetype)
        }
        Plan::Convert(c) => {
            if !quiet {
                eprintln!(
                    "wamedia: converting {shown} with ffmpeg for {}: {}",
                    a(kind),
                    c.describe()
                );
            }
            c.run(input, out, &ffmpeg()).map_err(|e| match e {
                ConversionError::Missing { .. } => Fail::usage(format!(
                    "{e}: install ffmpeg to convert {shown} ({})",
                    c.describe()
                )),
                e => Fail::usage(format!("converting {shown}: {e}")),
            })?;
            Ok(c.target_mimetype())
        }
        Plan::FitImage { limits } => {
            let f = File::open(input).map_err(|e| cannot_read(input, e))?;
            let fitted = fit_image(BufReader::new(f), content, limits, MAX_PIXELS)
                .map_err(|e| Fail::usage(format!("resizing {shown}: {e}")))?;
            io::Write::write_all(out_file, &fitted.jpeg).map_err(|e| cannot_write(out, e))?;
            if !quiet {
                eprintln!(
                    "wamedia: {shown} is over {} px or {} KiB: resized to a {} × {} JPEG (quality {}, {} bytes)",
                    limits.max_edge,
                    limits.max_kbytes,
                    fitted.width,
                    fitted.height,
                    fitted.quality,
                    fitted.jpeg.len()
                );
            }
            Ok("image/jpeg")
        }
        _ => Err(Fail::usage("a preparation step this wamedia does not know")),
    }
}

/// `wamedia prepare IN OUT --type T`: checks IN and writes what phones play to OUT
/// (through a private temporary beside it, renamed into place): converted by ffmpeg,
/// resized, or copied as it is. Prints `{"type","mimetype","action"}`.
pub fn prepare(args: PrepareArgs) -> Result<(), Fail> {
    let t = crate::media_type(&args.media_type)?;
    let Some(kind) = kind_of(&t) else {
        return Err(Fail::usage(format!(
            "--type {}: only media with a message is prepared ({})",
            args.media_type,
            MediaKind::ALL.map(MediaKind::name).join(", ")
        )));
    };
    if args.input == "-" {
        return Err(Fail::usage(
            "prepare needs a file, not stdin (ffmpeg reads it from a path)",
        ));
    }
    let limits = ImageLimits {
        max_edge: args.image_max_edge,
        max_kbytes: args.image_max_kbytes,
    };
    if limits.max_edge == 0 || limits.max_kbytes == 0 {
        return Err(Fail::usage(
            "--image-max-edge and --image-max-kbytes must be at least 1",
        ));
    }
    let input = PathBuf::from(&args.input);
    if args.output != "-" {
        refuse_same(Path::new(&args.output), &[&input])?;
    }
    let content = identify_path(&input).map_err(|e| cannot_read(&input, e))?;
    if content.len == 0 {
        return Err(Fail::usage(format!(
            "{} is empty: there is nothing to prepare",
            input.display()
        )));
    }
    let step = plan(kind, &content, &limits).map_err(|r| refused(&r, &args.input, kind))?;
    let mut out = Atomic::new(&args.output)?;
    let tmp = out.path().to_owned();
    let shown_out = PathBuf::from(if args.output == "-" {
        "stdout"
    } else {
        &args.output
    });
    let mimetype = run_step(
        &step,
        kind,
        (&input, &content),
        (&tmp, out.file()),
        args.quiet,
    )?;
    // ffmpeg wrote through a handle of its own to the same file; commit renames it.
    out.commit()?;
    let action = match step {
        Plan::AsIs { .. } => "copied",
        Plan::Convert(_) => "converted",
        _ => "resized",
    };
    let line = serde_json::json!({
        "type": kind.name(),
        "mimetype": mimetype,
        "action": action,
    });
    if args.output == "-" {
        eprintln!("{line}");
    } else {
        println!("{line}");
        if !args.quiet {
            eprintln!("wamedia: wrote {}", shown_out.display());
        }
    }
    Ok(())
}
