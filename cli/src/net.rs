//! `upload` and `download`: media connections, the two transports, record mode.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wamedia::driver::Error as TransferError;
use wamedia::*;
use wamedia_conformance::cassette::{
    CassetteInput, ExpectedSpec, Kind, Options, Plaintext, SourceSpec,
};
use wamedia_conformance::record::{outcome_of_download, outcome_of_upload, Recorder};

use crate::{media_key, media_type, progress, DownloadArgs, Fail, Net, UploadArgs};

pub type Provider = Box<dyn MediaConnProvider + Send>;

/// The media connection from the options, first match wins; `None`: no option given.
pub fn conn_provider(net: &Net) -> Result<Option<Provider>, Fail> {
    if let Some(cmd) = net.media_conn_command.clone() {
        return Ok(Some(Box::new(move |_force: bool, now: Instant| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("--media-conn-command: {e}"))?;
            if !out.status.success() {
                return Err(format!("--media-conn-command exited with {}", out.status));
            }
            MediaConn::from_json(&String::from_utf8_lossy(&out.stdout), now)
        })));
    }
    if let Some(path) = net.media_conn.clone() {
        let check = std::fs::read_to_string(&path)
            .map_err(|e| Fail::usage(format!("--media-conn {}: {e}", path.display())))?;
        MediaConn::from_json(&check, Instant::now()).map_err(Fail::usage)?;
        return Ok(Some(Box::new(move |_force: bool, now: Instant| {
            let json = std::fs::read_to_string(&path)
                .map_err(|e| format!("--media-conn {}: {e}", path.display()))?;
            MediaConn::from_json(&json, now)
        })));
    }
    if let Some(auth) = net.auth.clone() {
        let hosts = net.host.clone();
        return Ok(Some(Box::new(move |_force: bool, now: Instant| {
            Ok(MediaConn::new(
                auth.clone(),
                hosts.clone(),
                Duration::from_secs(24 * 3600),
                now,
            ))
        })));
    }
    Ok(None)
}

/// A seekable upload source: the file, or stdin spooled.
enum Src {
    File(File),
    Spool(tempfile::SpooledTempFile),
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Src::File(f) => f.read(buf),
            Src::Spool(s) => s.read(buf),
        }
    }
}

impl Seek for Src {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Src::File(f) => f.seek(pos),
            Src::Spool(s) => s.seek(pos),
        }
    }
}

/// A reader that reports how much each read returned.
struct Inspect<R, F>(R, F);

impl<R: Read, F: FnMut(usize)> Read for Inspect<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        (self.1)(n);
        Ok(n)
    }
}

/// `<cassette stem>.bin` beside the cassette: where record mode keeps the plaintext.
fn bin_path(cassette: &Path) -> PathBuf {
    cassette.with_extension("bin")
}

/// Creates (or truncates) `path` readable by its owner only: cassettes hold the media
/// key and `.bin` files the plaintext.
fn private_file(path: &Path) -> Result<File, Fail> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o
        .open(path)
        .map_err(|e| Fail::usage(format!("cannot write {}: {e}", path.display())))?;
    // An existing file keeps its mode through `open`: tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Fail::usage(format!("cannot restrict {}: {e}", path.display())))?;
    }
    Ok(f)
}

/// Refuses a record path that is (or whose `.bin` is) one of the transfer's own files.
fn check_record_path(cassette: &Path, others: &[&Path]) -> Result<(), Fail> {
    for p in [cassette.to_path_buf(), bin_path(cassette)] {
        for o in others {
            if same_file(&p, o) {
                return Err(Fail::usage(format!(
                    "--record {} would overwrite {}: choose another path",
                    cassette.display(),
                    o.display()
                )));
            }
        }
    }
    Ok(())
}

/// True when both paths name the same file (or the same not-yet-existing path).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn write_cassette(
    path: &Path,
    c: &wamedia_conformance::cassette::Cassette,
    quiet: bool,
) -> Result<(), Fail> {
    io::Write::write_all(&mut private_file(path)?, c.to_json().as_bytes())
        .map_err(|e| Fail::usage(format!("cannot write {}: {e}", path.display())))?;
    if !quiet {
        eprintln!(
            "wamedia: recorded {} exchanges into {} (auth redacted; the media key is in it)",
            c.events.len(),
            path.display()
        );
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or("recorded".into(), |s| s.to_string_lossy().into_owned())
}

pub fn upload(args: UploadArgs) -> Result<(), Fail> {
    let UploadArgs {
        media_type: t,
        media_key: k,
        media_key_timestamp,
        newsletter,
        no_resume,
        server_thumb_gen,
        record,
        net,
        file,
    } = args;
    let path = PathBuf::from(&file);
    let cannot = |e: io::Error| Fail::usage(format!("cannot read {file}: {e}"));
    let t = match t {
        Some(t) => media_type(&t)?,
        None => {
            let guess = crate::detect::guess(&path).map_err(cannot)?;
            if !net.quiet {
                eprintln!(
                    "wamedia: no --type given; {file} looks like {} ({})",
                    guess.0, guess.1
                );
            }
            guess.0
        }
    };
    // A type WhatsApp has no path for is refused before reading a byte.
    let path_check = if newsletter {
        t.newsletter_upload_path()
    } else {
        t.upload_path()
    };
    path_check.map_err(|e| Fail::usage(e.to_string()))?;
    let mut job = UploadJob::new(t.clone());
    if let Some(k) = k {
        job = job.with_media_key(media_key(&k)?);
    }
    if let Some(ts) = media_key_timestamp {
        job = job.with_media_key_timestamp(ts);
    }
    if newsletter {
        job = job.newsletter();
    }
    let mut src = if file == "-" {
        let mut spool = tempfile::SpooledTempFile::new(8 << 20);
        io::copy(&mut io::stdin().lock(), &mut spool).map_err(cannot)?;
        Src::Spool(spool)
    } else {
        Src::File(File::open(&path).map_err(cannot)?)
    };
    // The first pass (hashes, MAC, checkpoints) reads the whole file: show it too.
    let len = src.seek(SeekFrom::End(0))?;
    src.seek(SeekFrom::Start(0))?;
    let prepared = {
        let label = if newsletter { "hash" } else { "encrypt" };
        let mut bar = progress::Bar::new(net.quiet, label);
        let mut done = 0u64;
        let reader = Inspect(&mut src, |n: usize| {
            done += n as u64;
            bar.update(done, Some(len));
        });
        let p = job.prepare(reader).map_err(cannot)?;
        bar.finish();
        p
    };
    src.seek(SeekFrom::Start(0))?;
    let mut recorder = match &record {
        Some(cassette) => {
            let bin = bin_path(cassette);
            check_record_path(cassette, &[&path])?;
            io::copy(&mut src, &mut private_file(&bin)?)
                .map_err(|e| Fail::usage(format!("cannot write {}: {e}", bin.display())))?;
            src.seek(SeekFrom::Start(0))?;
            Some(Recorder::for_upload_source(&prepared, move || {
                File::open(&bin)
            }))
        }
        None => None,
    };
    let provider = conn_provider(&net)?;
    let local = if provider.is_none() {
        Some(wamedia_conformance::FakeCdn::start()?)
    } else {
        None
    };
    let mut provider: Provider = match (provider, &local) {
        (Some(p), _) => p,
        (None, Some(cdn)) => {
            if !net.quiet {
                eprintln!("wamedia: no media connection given: using an embedded local CDN at {} (nothing leaves this machine)", cdn.host());
            }
            Box::new(StaticConn(cdn.media_conn(Instant::now())))
        }
        (None, None) => unreachable!("a provider or the local CDN"),
    };
    let mut bar = progress::Bar::new(net.quiet, "upload");
    let result = {
        let mut transfer = Transfer::new().on_progress(|d, tot| bar.update(d, tot));
        if let Some(r) = recorder.as_mut() {
            transfer = transfer.observe(r);
        }
        let mut o = client_opts(&net, no_resume);
        o.upload.server_thumb_gen = server_thumb_gen;
        if net.transport == "surf" {
            let client = wamedia_surf::Client::new(surf_opts(o));
            async_std::task::block_on(client.upload_prepared(
                &prepared,
                src,
                &mut *provider,
                &mut transfer,
            ))
        } else {
            wamedia_ureq::Client::new(o).upload_prepared(
                &prepared,
                src,
                &mut *provider,
                &mut transfer,
            )
        }
    };
    bar.finish();
    if let (Some(rec), Some(cassette)) = (recorder, &record) {
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
            newsletter,
            options: Options {
                resume: no_resume.then_some(false),
                server_thumb_gen: server_thumb_gen.then_some(true),
                ..Options::default()
            },
            source: None,
            expected: None,
        };
        let name = stem(cassette);
        let c = rec.into_cassette(
            &name,
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
    let result = result?;
    if let Some(cdn) = &local {
        verify_back(&net, &result, cdn)?;
    }
    println!("{}", result.to_json());
    Ok(())
}

/// Proves the round trip on the local CDN: download it back and verify every check
/// (the MAC and both hashes, or the SHA-256 of unencrypted media).
fn verify_back(
    net: &Net,
    result: &UploadResult,
    cdn: &wamedia_conformance::FakeCdn,
) -> Result<(), Fail> {
    let spec = result.download_spec();
    let dir = tempfile::tempdir()?;
    let back = dir.path().join("downloaded");
    run_download(
        net,
        spec,
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &back,
        &mut Transfer::new(),
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

fn hex(k: &MediaKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn download(spec: DownloadSpec, args: &DownloadArgs) -> Result<(), Fail> {
    let (expect, record, net, out) = (&args.expect, &args.record, &args.net, &args.out);
    let mut provider = match conn_provider(net)? {
        Some(p) => p,
        None if matches!(spec.source, Source::Url(_)) => Box::new(|_, _| {
            Err("the --url is not https on a whatsapp.net host: give a media connection that names its host, or --trust-url".to_string())
        }),
        None => return Err(Fail::usage("--direct-path needs a media connection: --media-conn-command, --media-conn, or --auth/--host")),
    };
    if let Some(cassette) = record {
        check_record_path(cassette, &[out])?;
    }
    let mut recorder = record.as_ref().map(|_| Recorder::for_download());
    let mut bar = progress::Bar::new(net.quiet, "download");
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
        source: Some(match &spec.source {
            Source::DirectPath(p) => SourceSpec::DirectPath(p.clone()),
            Source::Url(u) => SourceSpec::Url(u.clone()),
        }),
        expected: Some(ExpectedSpec {
            file_enc_sha256: expect.file_enc_sha256.clone(),
            file_sha256: expect.file_sha256.clone(),
            file_length: expect.file_length,
        }),
    };
    let result = {
        let mut transfer = Transfer::new().on_progress(|d, tot| bar.update(d, tot));
        if let Some(r) = recorder.as_mut() {
            transfer = transfer.observe(r);
        }
        run_download(
            net,
            spec,
            &mut *provider,
            out,
            &mut transfer,
            args.trust_url,
        )
    };
    bar.finish();
    if let (Some(rec), Some(cassette)) = (recorder, record) {
        if result.is_ok() {
            let bin = bin_path(cassette);
            io::copy(&mut File::open(out)?, &mut private_file(&bin)?)
                .map_err(|e| Fail::usage(format!("cannot write {}: {e}", bin.display())))?;
        }
        let outcome = outcome_of_download(&result);
        let c = rec.into_cassette(
            &stem(cassette),
            "download recorded by `wamedia download --record`",
            Kind::Download,
            cassette_input,
            outcome,
        );
        write_cassette(cassette, &c, net.quiet)?;
    }
    let r = result?;
    if !net.quiet {
        eprintln!(
            "wamedia: verified {} bytes into {}",
            r.verified.file_length,
            out.display()
        );
    }
    Ok(())
}

fn client_opts(net: &Net, no_resume: bool) -> wamedia_ureq::ClientOptions {
    let mut o = wamedia_ureq::ClientOptions::default();
    o.upload.resume = !no_resume;
    o.user_agent = net.user_agent.clone();
    if let Some(s) = net.timeout {
        o.upload.retry.total_timeout = Duration::from_secs(s);
        o.download.retry.total_timeout = Duration::from_secs(s);
    }
    o
}

/// The same settings for the surf transport.
fn surf_opts(o: wamedia_ureq::ClientOptions) -> wamedia_surf::ClientOptions {
    wamedia_surf::ClientOptions {
        upload: o.upload,
        download: o.download,
        user_agent: o.user_agent,
        ..Default::default()
    }
}

fn run_download(
    net: &Net,
    spec: DownloadSpec,
    provider: &mut (dyn MediaConnProvider + Send),
    out: &Path,
    transfer: &mut Transfer<'_>,
    trust_url: bool,
) -> Result<DownloadResult, TransferError> {
    let mut o = client_opts(net, false);
    o.download.trust_url = trust_url;
    if net.transport == "surf" {
        let client = wamedia_surf::Client::new(surf_opts(o));
        return async_std::task::block_on(client.download_to_path(spec, provider, out, transfer));
    }
    wamedia_ureq::Client::new(o).download_to_path(spec, provider, out, transfer)
}
