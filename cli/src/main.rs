//! `wamedia`: encrypt, decrypt, upload, download and serve WhatsApp media.
//!
//! Exit codes: 0 success; 2 bad usage or input; 3 CDN or network failure after all
//! retries; 4 integrity failure. Only JSON ever goes to stdout; errors are one line on
//! stderr and never contain an auth token or a media key.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use wamedia::driver::Error as TransferError;
use wamedia::*;

mod detect;
mod net;
mod progress;

#[derive(Parser)]
#[command(
    name = "wamedia",
    version,
    about = "Put media on WhatsApp's CDN, encrypted, and take it off again, verified."
)]
struct Cli {
    /// Print error details (chains of causes) on stderr.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Encrypt IN into the upload body OUT; print the metadata as one JSON line.
    Encrypt {
        /// Media type (image, video, ptt, document, ...).
        #[arg(long = "type")]
        media_type: String,
        /// Reuse this media key (64 hex characters or base64); default: a fresh one.
        #[arg(long)]
        media_key: Option<String>,
        /// Plaintext file, or - for stdin.
        input: String,
        /// Upload body file, or - for stdout.
        output: String,
    },
    /// Verify and decrypt the upload body IN into OUT (nothing is written on failure).
    Decrypt {
        /// Media type.
        #[arg(long = "type")]
        media_type: String,
        /// The media key (64 hex characters or base64).
        #[arg(long)]
        media_key: String,
        #[command(flatten)]
        expect: Expect,
        /// Upload body file, or - for stdin.
        input: String,
        /// Plaintext file, or - for stdout.
        output: String,
    },
    /// Upload FILE; print what a message needs as one JSON line. Without a media
    /// connection option, runs against an embedded local CDN and downloads it back.
    Upload(UploadArgs),
    /// Download, verify and decrypt media into OUT (nothing is written on failure).
    Download(DownloadArgs),
    /// Run the fake CDN on loopback for offline development; print its media connection.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The auth token uploads must carry.
        #[arg(long, default_value = "local-dev-auth")]
        auth: String,
        /// Also keep uploaded bodies in this folder.
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Args)]
struct UploadArgs {
    /// Media type; default: guessed from the content and extension.
    #[arg(long = "type")]
    media_type: Option<String>,
    /// Reuse this media key (64 hex characters or base64): an interrupted upload run
    /// again, so the first attempt asks the CDN what it already holds.
    #[arg(long)]
    media_key: Option<String>,
    /// With --media-key: the Unix time the key was first made (the message's
    /// mediaKeyTimestamp); a fresh key is stamped with the current time.
    #[arg(long, requires = "media_key")]
    media_key_timestamp: Option<i64>,
    /// Newsletter (channel) media: uploaded unencrypted on the newsletter path.
    #[arg(long)]
    newsletter: bool,
    /// Never use the resumable flow.
    #[arg(long)]
    no_resume: bool,
    /// Ask the CDN to make a thumbnail (server_thumb_gen=1); its thumbnail_info is
    /// printed with the result.
    #[arg(long)]
    server_thumb_gen: bool,
    /// Record the exchanges as a cassette (auth redacted) at this path, with the
    /// plaintext beside it as <name>.bin. Use a throwaway file and key.
    #[arg(long)]
    record: Option<PathBuf>,
    #[command(flatten)]
    net: Net,
    /// The file to upload, or - for stdin.
    file: String,
}

#[derive(Args)]
struct DownloadArgs {
    /// Media type.
    #[arg(long = "type")]
    media_type: String,
    /// The message's direct_path (tried on each host of the media connection).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    direct_path: Option<String>,
    /// The message's full URL: used only if https on a whatsapp.net host or a host of
    /// the media connection.
    #[arg(long)]
    url: Option<String>,
    /// The media key (64 hex characters or base64).
    #[arg(long, required_unless_present_any = ["newsletter", "unencrypted"])]
    media_key: Option<String>,
    /// Newsletter (channel) media: not encrypted, no key; verified by --file-sha256.
    #[arg(long, conflicts_with = "media_key")]
    newsletter: bool,
    /// Unencrypted media that is not a newsletter's (product catalog images).
    #[arg(long, conflicts_with = "media_key")]
    unencrypted: bool,
    /// Use --url whatever its host (by default only https on whatsapp.net or a host of
    /// the media connection).
    #[arg(long)]
    trust_url: bool,
    #[command(flatten)]
    expect: Expect,
    /// Record the exchanges as a cassette (auth redacted) at this path, with the
    /// plaintext beside it as <name>.bin.
    #[arg(long)]
    record: Option<PathBuf>,
    #[command(flatten)]
    net: Net,
    /// Where to write the plaintext.
    out: PathBuf,
}

#[derive(Args)]
struct Expect {
    /// Expected SHA-256 of the plaintext (base64).
    #[arg(long)]
    file_sha256: Option<String>,
    /// Expected SHA-256 of the encrypted body (base64).
    #[arg(long)]
    file_enc_sha256: Option<String>,
    /// Expected plaintext length.
    #[arg(long)]
    file_length: Option<u64>,
}

#[derive(Args)]
struct Net {
    /// Run CMD (with sh -c) whenever a media connection is needed; it prints
    /// {"auth","ttl","auth_ttl","hosts"} JSON.
    #[arg(long)]
    media_conn_command: Option<String>,
    /// Read the media connection JSON from FILE.
    #[arg(long)]
    media_conn: Option<PathBuf>,
    /// The auth token (with --host).
    #[arg(long, requires = "host")]
    auth: Option<String>,
    /// A CDN host: a name (https) or a URL with a scheme (http://127.0.0.1:8080).
    #[arg(long, requires = "auth")]
    host: Vec<String>,
    /// ureq (blocking) or surf (async).
    #[arg(long, default_value = "ureq", value_parser = ["ureq", "surf"])]
    transport: String,
    /// Give up after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Send this User-Agent header (by default none is sent).
    #[arg(long)]
    user_agent: Option<String>,
    /// No progress bar, no notes on stderr.
    #[arg(long)]
    quiet: bool,
}

/// A failure with its exit code.
struct Fail {
    code: u8,
    msg: String,
    detail: Option<String>,
}

impl Fail {
    fn usage(msg: impl Into<String>) -> Fail {
        Fail {
            code: 2,
            msg: msg.into(),
            detail: None,
        }
    }
    fn integrity(e: IntegrityError) -> Fail {
        Fail {
            code: 4,
            msg: e.to_string(),
            detail: None,
        }
    }
}

impl From<TransferError> for Fail {
    fn from(e: TransferError) -> Fail {
        let code = match &e {
            TransferError::Download(d) if d.is_integrity() => 4,
            // Refused before any request: the input was wrong, not the CDN.
            TransferError::Download(
                DownloadError::Unsupported(_)
                | DownloadError::MaliciousPath { .. }
                | DownloadError::UntrustedUrl { .. }
                | DownloadError::NothingToVerify,
            )
            | TransferError::Upload(UploadError::Unsupported(_)) => 2,
            TransferError::Io(_) => 2,
            TransferError::Misuse(_) => 1,
            _ => 3,
        };
        Fail {
            code,
            detail: Some(format!("{e:?}")),
            msg: e.to_string(),
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail {
            code: 2,
            msg: format!("I/O: {e}"),
            detail: None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("wamedia: {}", f.msg);
            if verbose {
                if let Some(d) = f.detail {
                    eprintln!("details: {d}");
                }
            }
            ExitCode::from(f.code)
        }
    }
}

fn media_type(name: &str) -> Result<MediaType, Fail> {
    name.parse()
        .map_err(|e: UnknownMediaType| Fail::usage(e.to_string()))
}

fn media_key(k: &str) -> Result<MediaKey, Fail> {
    k.parse()
        .map_err(|e: BadMediaKey| Fail::usage(e.to_string()))
}

impl Expect {
    fn parse(&self) -> Result<Expected, Fail> {
        let hash = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| b64::decode_sha256(s).map_err(|e| Fail::usage(format!("--{name}: {e}"))))
                .transpose()
        };
        Ok(Expected {
            file_sha256: hash("file-sha256", &self.file_sha256)?,
            file_enc_sha256: hash("file-enc-sha256", &self.file_enc_sha256)?,
            file_length: self.file_length,
        })
    }
}

fn open_in(path: &str) -> Result<Box<dyn Read>, Fail> {
    if path == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    File::open(path)
        .map(|f| Box::new(f) as Box<dyn Read>)
        .map_err(|e| Fail::usage(format!("cannot read {path}: {e}")))
}

/// Writes to a temporary file beside `path` (or a spool for stdout) and publishes it
/// only when [`Atomic::commit`] is called; dropping it discards everything.
struct Atomic {
    tmp: tempfile::NamedTempFile,
    dest: Option<PathBuf>,
}

impl Atomic {
    fn new(path: &str) -> Result<Atomic, Fail> {
        let dest = (path != "-").then(|| PathBuf::from(path));
        let dir = match &dest {
            Some(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned(),
            None => std::env::temp_dir(),
        };
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| Fail::usage(format!("cannot write in {}: {e}", dir.display())))?;
        Ok(Atomic { tmp, dest })
    }
    fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }
    fn commit(mut self) -> Result<(), Fail> {
        self.tmp.as_file_mut().flush()?;
        match self.dest {
            Some(p) => {
                self.tmp.persist(&p).map_err(|e| {
                    Fail::usage(format!("cannot write {}: {}", p.display(), e.error))
                })?;
            }
            None => {
                let mut f = self.tmp.reopen()?;
                io::copy(&mut f, &mut io::stdout().lock())?;
            }
        }
        Ok(())
    }
}

fn run(cli: Cli) -> Result<(), Fail> {
    match cli.cmd {
        Cmd::Encrypt {
            media_type: t,
            media_key: k,
            input,
            output,
        } => {
            let t = media_type(&t)?;
            let key = match k {
                Some(k) => media_key(&k)?,
                None => {
                    MediaKey::generate().map_err(|e| Fail::usage(format!("no randomness: {e}")))?
                }
            };
            let mut r = open_in(&input)?;
            let mut out = Atomic::new(&output)?;
            let mut w = io::BufWriter::with_capacity(1 << 20, out.file());
            let mut enc = Encryptor::new(key, &t).map_err(|e| Fail::usage(e.to_string()))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut ct = Vec::with_capacity((1 << 20) + 32);
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| Fail::usage(format!("cannot read {input}: {e}")))?;
                if n == 0 {
                    break;
                }
                ct.clear();
                enc.update(&buf[..n], &mut ct);
                w.write_all(&ct)?;
            }
            ct.clear();
            let meta = enc.finish(&mut ct);
            w.write_all(&ct)?;
            w.flush()?;
            drop(w);
            out.commit()?;
            println!(
                "{}",
                serde_json::json!({
                    "media_key": meta.media_key.to_base64(),
                    "file_sha256": b64::std(&meta.file_sha256),
                    "file_enc_sha256": b64::std(&meta.file_enc_sha256),
                    "file_length": meta.file_length,
                })
            );
            Ok(())
        }
        Cmd::Decrypt {
            media_type: t,
            media_key: k,
            expect,
            input,
            output,
        } => {
            let t = media_type(&t)?;
            let key = media_key(&k)?;
            let expected = expect.parse()?;
            let mut r = open_in(&input)?;
            let mut out = Atomic::new(&output)?;
            let mut w = io::BufWriter::with_capacity(1 << 20, out.file());
            let mut dec =
                Decryptor::new(&key, &t, expected).map_err(|e| Fail::usage(e.to_string()))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut plain = Vec::with_capacity((1 << 20) + 64);
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| Fail::usage(format!("cannot read {input}: {e}")))?;
                if n == 0 {
                    break;
                }
                plain.clear();
                dec.update_unverified(&buf[..n], &mut plain);
                w.write_all(&plain)?;
            }
            plain.clear();
            dec.finish(&mut plain).map_err(Fail::integrity)?;
            w.write_all(&plain)?;
            w.flush()?;
            drop(w);
            out.commit()
        }
        Cmd::Upload(args) => net::upload(args),
        Cmd::Download(args) => {
            let t = media_type(&args.media_type)?;
            let media_key = match &args.media_key {
                Some(k) => Some(media_key(k)?),
                None => None,
            };
            let expected = args.expect.parse()?;
            if media_key.is_none() && expected.file_sha256.is_none() {
                return Err(Fail::usage(
                    "unencrypted media is verified by its SHA-256: give --file-sha256",
                ));
            }
            let spec = DownloadSpec {
                media_type: t,
                media_key,
                source: match (&args.direct_path, &args.url) {
                    (_, Some(u)) => Source::Url(u.clone()),
                    (Some(p), None) => Source::DirectPath(p.clone()),
                    (None, None) => return Err(Fail::usage("give --direct-path or --url")),
                },
                expected,
                streaming_sidecar: None,
            };
            net::download(spec, &args)
        }
        Cmd::Serve { addr, auth, store } => {
            let cdn = wamedia_conformance::FakeCdn::with_config(wamedia_conformance::CdnConfig {
                auth,
                store_dir: store,
                addr,
                ..Default::default()
            })?;
            println!("{}", cdn.media_conn_json());
            eprintln!(
                "wamedia: fake CDN listening on {} (Ctrl-C to stop)",
                cdn.host()
            );
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}
