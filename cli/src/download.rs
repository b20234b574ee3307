//! `wamedia download`: the message's fields from flags or from the upload's JSON line,
//! every check before the first request, the plaintext published only once verified.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use wamedia::*;
use wamedia_conformance::cassette::{
    CassetteInput, ExpectedSpec, Kind, Options, Plaintext, SourceSpec,
};
use wamedia_conformance::record::{outcome_of_download, Recorder};
use wamedia_driver::Transfer;

use crate::files::{cannot_read, cannot_write, check_writable, copy_to_stdout, private_file};
use crate::net::{
    bin_path, check_record_path, conn_provider, hex, run_download, stem, write_cassette,
};
use crate::{media_key, media_type, progress, DownloadArgs, Fail};

/// What to download and how to check it, with the fields as given (for cassettes).
struct Message {
    spec: DownloadSpec,
    expected: ExpectedSpec,
}

/// The message's fields from the flags.
fn from_flags(args: &DownloadArgs) -> Result<Message, Fail> {
    let t = media_type(args.media_type.as_deref().unwrap_or_default())?;
    let key = args
        .media_key
        .as_deref()
        .map(|k| media_key("--media-key", k))
        .transpose()?;
    let expected = args.expect.parse()?;
    let source = match (&args.direct_path, &args.url) {
        (_, Some(u)) => Source::Url(u.clone()),
        (Some(p), None) => Source::DirectPath(p.clone()),
        (None, None) => return Err(Fail::usage("give --direct-path or --url")),
    };
    Ok(Message {
        spec: DownloadSpec {
            media_type: t,
            media_key: key,
            source,
            expected,
            streaming_sidecar: None,
        },
        expected: ExpectedSpec {
            file_enc_sha256: args.expect.file_enc_sha256.clone(),
            file_sha256: args.expect.file_sha256.clone(),
            file_length: args.expect.file_length,
        },
    })
}

/// The message's fields from JSON (in `from`, or `-`: stdin): the line `wamedia upload`
/// printed, its `message` object, or a received message's WAProto JSON
/// (`{"imageMessage": {...}}`, wrappers included); see
/// [`DownloadSpec::from_message_json`]. No media key: unencrypted media. A streaming
/// sidecar is checked too.
fn from_json(from: &str) -> Result<Message, Fail> {
    let shown = Path::new(if from == "-" { "stdin" } else { from });
    let what = format!("--from-json {}", shown.display());
    let mut text = String::new();
    let reader: Box<dyn Read> = if from == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(from).map_err(|e| cannot_read(shown, e))?)
    };
    // One byte past the limit, so that a longer input is refused as such.
    reader
        .take(wamedia::MAX_MESSAGE_LEN as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot_read(shown, e))?;
    let spec = DownloadSpec::from_message_json(&text).map_err(|e| match e {
        MessageError::NotJson { .. } | MessageError::NotAnObject => Fail::usage(format!(
            "{what}: not the JSON line `wamedia upload` prints, nor a message ({e})"
        )),
        e => Fail::usage(format!("{what}: {e}")),
    })?;
    let expected = ExpectedSpec {
        file_enc_sha256: spec.expected.file_enc_sha256.map(|h| b64::std(&h)),
        file_sha256: spec.expected.file_sha256.map(|h| b64::std(&h)),
        file_length: spec.expected.file_length,
    };
    Ok(Message { spec, expected })
}

/// Runs `wamedia download`.
pub fn download(args: DownloadArgs) -> Result<(), Fail> {
    let msg = match &args.from_json {
        Some(from) => from_json(from)?,
        None => from_flags(&args)?,
    };
    let spec = msg.spec;
    if spec.media_key.is_none() && spec.expected.file_sha256.is_none() {
        return Err(Fail::usage(
            "unencrypted media is verified by its SHA-256: give --file-sha256",
        ));
    }
    let (record, net) = (&args.record, &args.net);
    let to_stdout = args.out == Path::new("-");
    if !to_stdout {
        check_writable(&args.out)?;
    }
    let provider = match conn_provider(net)? {
        Some(p) => p,
        None if matches!(spec.source, Source::Url(_)) => Box::new(|_: bool| -> Result<MediaConn, String> {
            Err("the --url is not https on a whatsapp.net host: give a media connection that names its host, or --trust-url".to_string())
        }),
        None => return Err(Fail::usage("--direct-path needs a media connection: --media-conn-command, --media-conn, or --auth/--host")),
    };
    if let Some(cassette) = record {
        let mut own: Vec<&Path> = vec![];
        if !to_stdout {
            own.push(&args.out);
        }
        if let Some(f) = args.from_json.as_deref().filter(|f| *f != "-") {
            own.push(Path::new(f));
        }
        check_record_path(cassette, &own)?;
    }
    // stdout gets the plaintext only once verified: it is spooled to a private
    // temporary folder first, with a recognisable name; one a killed run left is removed.
    let spool = if to_stdout {
        sweep_spools();
        Some(
            tempfile::Builder::new()
                .prefix(SPOOL_PREFIX)
                .tempdir()
                .map_err(|e| {
                    Fail::usage(format!(
                        "cannot make a temporary folder in {}: {e}",
                        std::env::temp_dir().display()
                    ))
                })?,
        )
    } else {
        if matches!(
            wamedia_driver::outfile::existing(&args.out),
            Ok(wamedia_driver::outfile::Existing::Special)
        ) && !net.quiet
        {
            eprintln!(
                "wamedia: {} is a device or a FIFO: written into directly, and unverified until wamedia exits 0",
                wamedia::escape(&args.out.display().to_string())
            );
        }
        None
    };
    let out: PathBuf = match &spool {
        Some(d) => d.path().join("plaintext"),
        None => crate::files::resolve_out(&args.out),
    };
    let mut recorder = record.as_ref().map(|_| Recorder::for_download());
    let cassette_input = CassetteInput {
        media_type: spec.media_type.name().unwrap_or("document").into(),
        media_key: spec.media_key.as_ref().map(hex),
        key_reused: false,
        media_id: None,
        wall_unix: None,
        plaintext: Plaintext::File(
            record
                .as_deref()
                .map(bin_path)
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
        ),
        newsletter: args.newsletter,
        options: Options::default(),
        source: match &spec.source {
            Source::DirectPath(p) => Some(SourceSpec::DirectPath(p.clone())),
            Source::Url(u) => Some(SourceSpec::Url(u.clone())),
            // A source a cassette has no form for yet.
            _ => None,
        },
        expected: Some(msg.expected),
    };
    let bar = progress::Bar::new(net.quiet, "download", "connecting to the CDN");
    let max_attempts = DownloadOptions::default().retry.max_attempts;
    let result = {
        let mut watch = bar.watch(
            max_attempts,
            recorder
                .as_mut()
                .map(|r| r as &mut dyn wamedia_driver::Observer),
        );
        let transfer = Transfer::new()
            .on_progress(|d, tot| bar.update(d, tot))
            .observe(&mut watch);
        run_download(
            net,
            spec,
            &crate::net::share(provider),
            &out,
            transfer,
            args.trust_url,
        )
    };
    bar.finish(result.is_ok());
    if let (Some(rec), Some(cassette)) = (recorder, record) {
        if result.is_ok() {
            let bin = bin_path(cassette);
            let mut plain = std::fs::File::open(&out).map_err(|e| cannot_read(&out, e))?;
            io::copy(&mut plain, &mut private_file(&bin)?).map_err(|e| cannot_write(&bin, e))?;
        }
        let c = rec.into_cassette(
            &stem(cassette),
            "download recorded by `wamedia download --record`",
            Kind::Download,
            cassette_input,
            outcome_of_download(&result),
        );
        write_cassette(cassette, &c, net.quiet)?;
    }
    let r = result.map_err(|e| match e {
        wamedia_driver::Error::Io(e) => cannot_write(&args.out, e),
        e => e.into(),
    })?;
    if to_stdout {
        copy_to_stdout(&out)?;
    }
    if !net.quiet {
        let dest = if to_stdout {
            "stdout".to_owned()
        } else {
            wamedia::escape(&args.out.display().to_string())
        };
        eprintln!(
            "wamedia: verified {} bytes into {dest}",
            r.verified.file_length
        );
    }
    Ok(())
}

/// The recognisable name of a download-to-stdout spool folder in the temporary folder.
const SPOOL_PREFIX: &str = ".wamedia-download-stdout.";

/// Removes spool folders of ours that a killed `download -` left: their partial file is
/// no longer locked by a running download.
fn sweep_spools() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten().take(10_000) {
        if !e.file_name().to_string_lossy().starts_with(SPOOL_PREFIX) {
            continue;
        }
        let dir = e.path();
        // Ours (owner, a real folder, not a link), and every file in it stale.
        if !wamedia_driver::outfile::is_own_dir(&dir) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        let stale = files
            .flatten()
            .take(16)
            .all(|f| wamedia_driver::outfile::remove_if_stale(&f.path()));
        if stale {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}
