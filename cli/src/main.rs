//! `wamedia`: encrypt, decrypt, upload, download and serve WhatsApp media.
//!
//! Exit codes: 0 success; 2 bad usage or input; 3 CDN or network failure after all
//! retries; 4 integrity failure. stdout carries JSON, or the body or plaintext when OUT
//! is `-`; errors are one line on stderr and never contain an auth token or a media key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wamedia::*;
use wamedia_driver::Error as TransferError;
use wamedia_driver::{decrypt_stream, encrypt_stream, StreamError, Threads};

mod cache;
mod detect;
mod download;
mod files;
mod local;
mod net;
mod prepare;
mod progress;
mod resume;
mod session;
mod stream;
mod thumbs;
mod upload;

use files::{cannot_read, cannot_write, check_writable, open_in, refuse_same, Atomic};

/// What `wamedia --help` says after the commands: the media types and exit codes.
fn after_help() -> String {
    format!(
        "Media types (--type): {}.\n\n\
         Exit codes: 0 success; 2 bad usage or input (refused before any request), or a \
         file that cannot be read or written; 3 CDN or network failure after all retries; \
         4 integrity failure (the media does not verify).",
        MEDIA_TYPE_NAMES.join(", ")
    )
}

#[derive(Parser)]
#[command(
    name = "wamedia",
    version,
    about = "Put media on WhatsApp's CDN, encrypted, and take it off again, verified.",
    after_help = after_help()
)]
struct Cli {
    /// Print error details (chains of causes) on stderr.
    #[arg(long, global = true)]
    verbose: bool,
    /// Threads for the crypto of encrypt, decrypt and upload's first pass: auto (a second
    /// thread from 8 MiB on, when there is a second core), one (least CPU per byte), two.
    #[arg(long, global = true, value_enum, default_value_t = ThreadsArg::Auto)]
    threads: ThreadsArg,
    /// Read the media key (64 hex characters or base64) from FILE, - for stdin, for any
    /// command that takes --media-key. Prefer it, or the environment variable
    /// WAMEDIA_MEDIA_KEY (commands that read media: decrypt, download, stream, retry-*),
    /// to --media-key: a key on the command line is visible to every user of the machine
    /// (/proc/PID/cmdline, ps).
    #[arg(long, global = true, value_name = "FILE")]
    media_key_file: Option<PathBuf>,
    /// Write through an output that is a symbolic link (to the file it points to) instead
    /// of refusing it: by default a link is never followed, since another user of the
    /// folder may have planted it.
    #[arg(long, global = true)]
    follow_symlinks: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--threads`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ThreadsArg {
    /// A second thread from 8 MiB on, when the machine has a second core.
    Auto,
    /// Everything on one thread.
    One,
    /// A second thread from the first byte.
    Two,
}

impl From<ThreadsArg> for Threads {
    fn from(t: ThreadsArg) -> Threads {
        match t {
            ThreadsArg::Auto => Threads::Auto,
            ThreadsArg::One => Threads::One,
            ThreadsArg::Two => Threads::Two,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Encrypt IN into the upload body OUT; print the metadata as one JSON line (on
    /// stdout, or on stderr when OUT is -, or into --json FILE).
    Encrypt {
        /// Media type (image, video, ptt, document, ...).
        #[arg(long = "type")]
        media_type: String,
        /// Reuse this media key (64 hex characters or base64); default: a fresh one.
        #[arg(long)]
        media_key: Option<String>,
        /// Write the metadata JSON line (it holds the media key) into FILE (mode 0600)
        /// instead of stdout or stderr.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Plaintext file, or - for stdin.
        input: String,
        /// Upload body file, or - for stdout (stdout then carries only the body; the
        /// JSON goes to stderr unless --json).
        output: String,
    },
    /// Verify and decrypt the upload body IN into OUT (nothing is written on failure).
    Decrypt {
        /// Media type.
        #[arg(long = "type")]
        media_type: String,
        /// The media key (64 hex characters or base64); see --media-key-file.
        #[arg(long)]
        media_key: Option<String>,
        #[command(flatten)]
        expect: Expect,
        /// Upload body file, or - for stdin.
        input: String,
        /// Plaintext file, or - for stdout (written only once everything verified).
        output: String,
    },
    /// Upload FILE; print what a message needs as one JSON line. Without a media
    /// connection option, runs against an embedded local CDN and downloads it back.
    Upload(UploadArgs),
    /// Download, verify and decrypt media into OUT (nothing is written on failure).
    Download(DownloadArgs),
    /// Make IN a file every phone plays as --type T, into OUT: converted with ffmpeg when
    /// its format is not one WhatsApp's receivers take (MOV/MKV/WebM/AVI/GIF → MP4;
    /// WAV/FLAC/MP3/M4A → Ogg/Opus voice note; PNG/JPEG/GIF → 512×512 WebP sticker), an
    /// image over the limits resized to a JPEG, else copied; print
    /// {"type","mimetype","action"}.
    Prepare(PrepareArgs),
    /// Print the encrypted receipt ({ciphertext, iv}, base64) asking the sender's phone to
    /// upload the media of a message again (media gone or expired).
    RetryReceipt {
        /// The media key from the message; see --media-key-file.
        #[arg(long)]
        media_key: Option<String>,
        /// The message's id.
        #[arg(long)]
        message_id: String,
    },
    /// Decrypt the phone's media retry notification; print {stanza_id, direct_path,
    /// result}. Exit 4 when it does not decrypt under this key and message id.
    RetryNotification {
        /// The media key from the message; see --media-key-file.
        #[arg(long)]
        media_key: Option<String>,
        /// The message's id.
        #[arg(long)]
        message_id: String,
        /// The notification's IV (base64, 12 bytes).
        #[arg(long)]
        iv: String,
        /// The notification's ciphertext (base64).
        #[arg(long)]
        ciphertext: String,
    },
    /// Delete a history-sync blob from the CDN; print {host, status}.
    Delete {
        /// The blob's direct_path.
        #[arg(long)]
        direct_path: String,
        /// The blob's file_enc_sha256 (base64).
        #[arg(long)]
        file_enc_sha256: String,
        /// The e_handle of the history sync notification.
        #[arg(long)]
        handle: Option<String>,
        /// The companion's user secret (sent only with --handle).
        #[arg(long, requires = "handle")]
        companion_secret: Option<String>,
        #[command(flatten)]
        net: Net,
    },
    /// Serve a remote media's plaintext to a local player on 127.0.0.1, answering Range
    /// requests with ranged downloads checked window by window against the sidecar; print
    /// {"url": ...} (its path a random token; other paths and other Host names are
    /// refused); serve until stopped.
    Stream {
        /// Media type.
        #[arg(long = "type")]
        media_type: String,
        /// The message's direct_path.
        #[arg(long)]
        direct_path: String,
        /// The media key (64 hex characters or base64); see --media-key-file.
        #[arg(long)]
        media_key: Option<String>,
        /// The message's file_length.
        #[arg(long)]
        file_length: u64,
        /// The message's streamingSidecar (base64).
        #[arg(long)]
        streaming_sidecar: String,
        /// The message's file_enc_sha256 (base64), sent as the download's hash.
        #[arg(long)]
        file_enc_sha256: Option<String>,
        /// Where to listen: a loopback address unless --allow-remote (port 0 picks a
        /// free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        /// Let --addr be other than loopback, serving the decrypted media to other
        /// machines (anyone with the URL; the Host header is then not checked).
        #[arg(long)]
        allow_remote: bool,
        #[command(flatten)]
        net: Net,
    },
    /// Run the fake CDN on loopback for offline development; print its media connection.
    Serve {
        /// Address to listen on (HOST:PORT; a name such as localhost is resolved; port 0
        /// picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// The auth token uploads must carry.
        #[arg(long, default_value = "local-dev-auth")]
        auth: String,
        /// Keep uploaded bodies in this folder (default: a temporary folder removed on exit).
        #[arg(long)]
        store: Option<PathBuf>,
        /// The largest upload body taken, in bytes; larger ones are answered 413.
        #[arg(long, value_name = "BYTES", default_value_t = local::DEFAULT_MAX_BODY)]
        max_body: u64,
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
    #[arg(long)]
    media_key_timestamp: Option<i64>,
    /// Newsletter (channel) media: uploaded unencrypted on the newsletter path.
    #[arg(long)]
    newsletter: bool,
    /// Never use the resumable flow (no resume probe, no resuming across runs).
    #[arg(long)]
    no_resume: bool,
    /// Start over with a fresh key even if an earlier upload of this file was
    /// interrupted (by default it is resumed: same key, and the CDN is asked first).
    #[arg(long)]
    fresh: bool,
    /// Ask the CDN to make a thumbnail (server_thumb_gen=1); its thumbnail_info is
    /// printed with the result.
    #[arg(long)]
    server_thumb_gen: bool,
    /// Print no `message` object (skip reading the media for its size, duration,
    /// thumbnail and waveform). Reading it runs ffmpeg from PATH, when installed, for a
    /// video's first-frame thumbnail and a voice note's waveform.
    #[arg(long)]
    no_info: bool,
    /// Convert a file phones do not play (a MOV video, a WAV voice note, a PNG sticker,
    /// …) with ffmpeg into a temporary and upload that, as `wamedia prepare` would; an
    /// image over 1600 px or 1024 KiB is resized. Without it such a file is refused.
    #[arg(long)]
    convert: bool,
    /// Use this image (JPEG, PNG or WebP) as the message's thumbnail, and as the
    /// picture of the larger thumbnail uploaded beside the media.
    #[arg(long, value_name = "FILE")]
    thumbnail: Option<PathBuf>,
    /// Upload a larger thumbnail (480 px) under the media's key, as its own object
    /// (the message's thumbnailDirectPath, thumbnailSha256, …): auto does it for videos
    /// (their first frame, with ffmpeg) and documents (--thumbnail, or the document when
    /// it is a picture); yes also for images and gifs. Not with --server-thumb-gen.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = thumbs::UploadThumbnail::Auto)]
    upload_thumbnail: thumbs::UploadThumbnail,
    /// Upload a video, gif or video note as it is. By default an MP4 or MOV is first
    /// remuxed, as WhatsApp Web does, to have its moov box first and only its first video
    /// and audio track (read through a virtual file, no copy). As it is, a file whose moov
    /// comes last goes up without a streaming sidecar (the receiver could not stream it).
    #[arg(long)]
    no_faststart: bool,
    /// Record the exchanges as a cassette (auth redacted) at this path, with the
    /// plaintext beside it as NAME.bin. Use a throwaway file and key.
    #[arg(long)]
    record: Option<PathBuf>,
    /// The upload cache: a file sent before goes up under the key it had, and the CDN's
    /// "complete" answers it with no body ("cached": true). A redis:// URL (shared by a
    /// fleet: redis://[user:password@]host:port[/db]) or the path of a disk store;
    /// default: uploads.redb in $XDG_CACHE_HOME/wamedia (or ~/.cache/wamedia).
    #[arg(long, value_name = "URL|PATH", conflicts_with = "no_cache")]
    cache: Option<String>,
    /// Neither look the file up in the upload cache nor remember it.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    net: Net,
    /// The file to upload, or - for stdin.
    file: String,
}

#[derive(Args)]
struct PrepareArgs {
    /// The media type to prepare for: image, sticker, video, gif, ptv, audio, ptt,
    /// document.
    #[arg(long = "type")]
    media_type: String,
    /// Images: the longest side, in pixels (the account's image_max_edge; 2048 for HD).
    #[arg(long, value_name = "N", default_value_t = 1600)]
    image_max_edge: u32,
    /// Images: the largest file, in KiB (the account's image_max_kbytes).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    image_max_kbytes: u32,
    /// No notes on stderr.
    #[arg(long)]
    quiet: bool,
    /// The file to prepare.
    input: String,
    /// Where to write the result (through a temporary beside it), or - for stdout.
    output: String,
}

#[derive(Args)]
struct DownloadArgs {
    /// Media type.
    #[arg(long = "type", required_unless_present = "from_json")]
    media_type: Option<String>,
    /// The message's direct_path (tried on each host of the media connection).
    #[arg(long, conflicts_with = "url", required_unless_present_any = ["url", "from_json"])]
    direct_path: Option<String>,
    /// The message's full URL: used only if https on a whatsapp.net host or a host of
    /// the media connection.
    #[arg(long)]
    url: Option<String>,
    /// The media key (64 hex characters or base64); see --media-key-file. Needed unless
    /// --newsletter, --unencrypted or --from-json.
    #[arg(long)]
    media_key: Option<String>,
    /// Newsletter (channel) media: not encrypted, no key; verified by --file-sha256.
    #[arg(long, conflicts_with = "media_key")]
    newsletter: bool,
    /// Unencrypted media that is not a newsletter's (product catalog images).
    #[arg(long, conflicts_with = "media_key")]
    unencrypted: bool,
    /// Take the type, direct_path, media_key (none: unencrypted media), file_sha256,
    /// file_enc_sha256 and file_length from JSON in FILE or - (stdin): the line `wamedia
    /// upload` printed, its `message` object, or a received message's WAProto JSON
    /// ({"imageMessage": {...}}, in ephemeral, view-once and other wrappers too).
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "media_type", "direct_path", "url", "media_key", "newsletter", "unencrypted",
        "file_sha256", "file_enc_sha256", "file_length",
    ])]
    from_json: Option<String>,
    /// Use --url whatever its host (by default only https on whatsapp.net or a host of
    /// the media connection).
    #[arg(long)]
    trust_url: bool,
    #[command(flatten)]
    expect: Expect,
    /// Record the exchanges as a cassette (auth redacted) at this path, with the
    /// plaintext beside it as NAME.bin.
    #[arg(long)]
    record: Option<PathBuf>,
    #[command(flatten)]
    net: Net,
    /// Where to write the plaintext, or - for stdout (written only once verified).
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

#[derive(Args, Clone)]
struct Net {
    /// Run CMD (with sh -c) whenever a media connection is needed; it prints
    /// {"auth","ttl","auth_ttl","hosts"} JSON, or the media_conn IQ answer as a decoded
    /// binary node ({"tag","attrs","content"}, as whatsmeow, Baileys and whatsapp-rust
    /// expose it).
    #[arg(long)]
    media_conn_command: Option<String>,
    /// Read the media connection from FILE: wamedia's JSON or the media_conn IQ node.
    #[arg(long)]
    media_conn: Option<PathBuf>,
    /// The auth token (with --host).
    #[arg(long, requires = "host")]
    auth: Option<String>,
    /// A CDN host: a name (https) or a URL with a scheme (http://127.0.0.1:8080).
    /// Repeat it for more hosts (--host a --host b).
    #[arg(long, requires = "auth")]
    host: Vec<String>,
    /// The HTTP transport: ureq (blocking, the default build's only one); reqwest
    /// (Tokio) and surf (async-std) when built with the `reqwest` / `surf` features.
    /// Only those built in are accepted; the default is the first of them.
    #[arg(long, value_enum, default_value_t = net::Transport::default())]
    transport: net::Transport,
    /// Give up after this many seconds: bounds the whole transfer, every retry and
    /// wait included (default 30 minutes).
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
    /// A failure this build does not classify (exit code 1).
    fn other(e: impl std::fmt::Display) -> Fail {
        Fail {
            code: 1,
            msg: e.to_string(),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Paths and flags come from outside too: no control character reaches the
            // terminal.
            eprintln!("wamedia: {}", wamedia::escape(&f.msg));
            if verbose {
                if let Some(d) = f.detail {
                    eprintln!("details: {}", wamedia::escape(&d));
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

/// Parses the key given with `flag`; a bad one is described by the form it was read as
/// (64 characters: hex; anything else: base64), never shown.
fn media_key(flag: &str, k: &str) -> Result<MediaKey, Fail> {
    if let Ok(key) = k.parse::<MediaKey>() {
        return Ok(key);
    }
    let s = k.trim();
    let why = if s.len() == 64 {
        "64 characters, read as hex: not hex".to_owned()
    } else {
        match b64::decode_any(s) {
            Ok(bytes) => format!("not base64 of 32 bytes (got {} bytes)", bytes.len()),
            Err(_) => format!(
                "not base64 of 32 bytes ({} characters that are not base64), nor 64 hex characters",
                s.chars().count()
            ),
        }
    };
    Err(Fail::usage(format!("bad media key ({flag}): {why}")))
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

/// Refuses an output path that is the input (the same file, however named).
fn check_in_out(input: &str, output: &str) -> Result<(), Fail> {
    if input != "-" && output != "-" {
        refuse_same(Path::new(output), &[Path::new(input)])?;
    }
    Ok(())
}

fn encrypt(
    t: &str,
    k: Option<&str>,
    json: Option<&Path>,
    io: (&str, &str),
    threads: Threads,
) -> Result<(), Fail> {
    let (input, output) = io;
    let t = media_type(t)?;
    let key = match k {
        Some(k) => media_key("--media-key", k)?,
        None => MediaKey::generate().map_err(|e| Fail::usage(format!("no randomness: {e}")))?,
    };
    check_in_out(input, output)?;
    if let Some(j) = json {
        check_writable(j)?;
        let mut others = vec![];
        if input != "-" {
            others.push(Path::new(input));
        }
        if output != "-" {
            others.push(Path::new(output));
        }
        refuse_same(j, &others)?;
        if j == Path::new(output) {
            return Err(Fail::usage("--json and OUT are the same path"));
        }
    }
    let enc = Encryptor::new(key, &t).map_err(|e| Fail::usage(e.to_string()))?;
    let r = open_in(input)?;
    let mut out = Atomic::new(output)?;
    let shown = PathBuf::from(if output == "-" { "stdout" } else { output });
    let meta = encrypt_stream(enc, r, out.file(), threads).map_err(|e| match e {
        StreamError::Read(e) => cannot_read(Path::new(input), e),
        StreamError::Write(e) => cannot_write(&shown, e),
        StreamError::Integrity(e) => Fail::integrity(e),
        e => Fail::other(e),
    })?;
    out.commit()?;
    let mut line = serde_json::json!({
        "media_key": meta.media_key.to_base64(),
        "file_sha256": b64::std(&meta.file_sha256),
        "file_enc_sha256": b64::std(&meta.file_enc_sha256),
        "file_length": meta.file_length,
    });
    if let (Some(s), Some(m)) = (&meta.streaming_sidecar, line.as_object_mut()) {
        m.insert("streaming_sidecar".into(), b64::std(s).into());
    }
    let line = line.to_string();
    match json {
        Some(j) => files::write_private(j, format!("{line}\n").as_bytes())?,
        // stdout carries the body: the metadata goes beside it, on stderr.
        None if output == "-" => eprintln!("{line}"),
        None => println!("{line}"),
    }
    Ok(())
}

fn decrypt(
    t: &str,
    k: &str,
    expect: &Expect,
    (input, output): (&str, &str),
    threads: Threads,
) -> Result<(), Fail> {
    let t = media_type(t)?;
    let key = media_key("--media-key", k)?;
    let expected = expect.parse()?;
    check_in_out(input, output)?;
    let dec = Decryptor::new(&key, &t, expected).map_err(|e| Fail::usage(e.to_string()))?;
    let r = open_in(input)?;
    let mut out = Atomic::new(output)?;
    if out.is_direct() {
        eprintln!(
            "wamedia: {} is a device or a FIFO: written into directly, and unverified until wamedia exits 0",
            wamedia::escape(output)
        );
    }
    let shown = PathBuf::from(if output == "-" { "stdout" } else { output });
    // The temporary holds unverified plaintext until decrypt_stream returns Ok; on any
    // error `out` is dropped and removes it.
    decrypt_stream(dec, r, out.file(), threads).map_err(|e| match e {
        StreamError::Read(e) => cannot_read(Path::new(input), e),
        StreamError::Write(e) => cannot_write(&shown, e),
        StreamError::Integrity(e) => Fail::integrity(e),
        e => Fail::other(e),
    })?;
    out.commit()
}

/// The address `serve` listens on: `HOST:PORT` resolved (IPv4 first), each tried in turn.
fn serve(addr: &str, auth: String, store: Option<PathBuf>, max_body: u64) -> Result<(), Fail> {
    use std::net::ToSocketAddrs as _;
    let mut addrs: Vec<std::net::SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Fail::usage(format!("--addr {addr}: not an address HOST:PORT ({e})")))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    let mut last = None;
    for a in addrs {
        match local::serve(a, auth.clone(), store.clone(), max_body) {
            Ok(never) => match never {},
            Err(e) => last = Some(format!("cannot listen on {a} (--addr {addr}): {e}")),
        }
    }
    Err(Fail::usage(last.unwrap_or_else(|| {
        format!("--addr {addr}: the name resolves to no address")
    })))
}

/// Where a media key not given with --media-key comes from: --media-key-file, then (for
/// commands that read media) WAMEDIA_MEDIA_KEY.
struct KeySource {
    file: Option<PathBuf>,
    read_env: bool,
}

impl KeySource {
    /// The key text: `given`, else the file's first line, else the environment.
    fn text(&self, given: Option<String>, env_too: bool) -> Result<Option<String>, Fail> {
        if given.is_some() {
            if self.file.is_some() {
                return Err(Fail::usage(
                    "give the media key once: --media-key or --media-key-file",
                ));
            }
            return Ok(given);
        }
        if let Some(f) = &self.file {
            return read_key_file(f).map(Some);
        }
        if env_too && self.read_env {
            if let Some(v) = std::env::var_os("WAMEDIA_MEDIA_KEY") {
                let v = v
                    .into_string()
                    .map_err(|_| Fail::usage("WAMEDIA_MEDIA_KEY is not UTF-8"))?;
                if !v.trim().is_empty() {
                    return Ok(Some(v.trim().to_owned()));
                }
            }
        }
        Ok(None)
    }

    /// The key text for a command that cannot go without one.
    fn needed(&self, given: Option<String>) -> Result<String, Fail> {
        self.text(given, true)?.ok_or_else(|| {
            Fail::usage(
                "a media key is needed: --media-key-file FILE (- for stdin), the environment variable WAMEDIA_MEDIA_KEY, or --media-key",
            )
        })
    }
}

/// The media key in `path` (`-`: stdin): its first line, at most 1 KiB read.
fn read_key_file(path: &Path) -> Result<String, Fail> {
    let mut text = String::new();
    let r: Result<usize, std::io::Error> = if path == Path::new("-") {
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin().lock(), 1024),
            &mut text,
        )
    } else {
        std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_string(&mut std::io::Read::take(f, 1024), &mut text)
        })
    };
    r.map_err(|e| cannot_read(path, e))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(Fail::usage(format!(
            "--media-key-file {}: no key in it",
            path.display()
        )));
    }
    Ok(line.to_owned())
}

fn run(cli: Cli) -> Result<(), Fail> {
    files::FOLLOW_SYMLINKS.store(cli.follow_symlinks, std::sync::atomic::Ordering::Relaxed);
    let keys = KeySource {
        file: cli.media_key_file.clone(),
        read_env: true,
    };
    match cli.cmd {
        Cmd::Encrypt {
            media_type,
            media_key,
            json,
            input,
            output,
        } => encrypt(
            &media_type,
            keys.text(media_key, false)?.as_deref(),
            json.as_deref(),
            (&input, &output),
            cli.threads.into(),
        ),
        Cmd::Decrypt {
            media_type,
            media_key,
            expect,
            input,
            output,
        } => decrypt(
            &media_type,
            &keys.needed(media_key)?,
            &expect,
            (&input, &output),
            cli.threads.into(),
        ),
        Cmd::RetryReceipt {
            media_key,
            message_id,
        } => session::retry_receipt(&keys.needed(media_key)?, &message_id),
        Cmd::RetryNotification {
            media_key,
            message_id,
            iv,
            ciphertext,
        } => session::retry_notification(&keys.needed(media_key)?, &message_id, &iv, &ciphertext),
        Cmd::Delete {
            direct_path,
            file_enc_sha256,
            handle,
            companion_secret,
            net,
        } => session::delete(
            &direct_path,
            &file_enc_sha256,
            handle,
            companion_secret,
            &net,
        ),
        Cmd::Stream {
            media_type,
            direct_path,
            media_key,
            file_length,
            streaming_sidecar,
            file_enc_sha256,
            addr,
            allow_remote,
            net,
        } => {
            let s = session::stream_spec(
                &media_type,
                &direct_path,
                &keys.needed(media_key)?,
                file_length,
                &streaming_sidecar,
                file_enc_sha256.as_deref(),
            )?;
            stream::serve(s, &addr, allow_remote, &net)
        }
        Cmd::Upload(mut args) => {
            // Reusing a key is a choice: only an explicit --media-key-file, never the
            // environment.
            args.media_key = keys.text(args.media_key.take(), false)?;
            if args.media_key_timestamp.is_some() && args.media_key.is_none() {
                return Err(Fail::usage(
                    "--media-key-timestamp goes with a reused key (--media-key or --media-key-file)",
                ));
            }
            upload::upload(args, cli.threads.into())
        }
        Cmd::Download(mut args) => {
            let keyless = args.newsletter || args.unencrypted || args.from_json.is_some();
            args.media_key = if keyless {
                if keys.file.is_some() {
                    return Err(Fail::usage(
                        "--media-key-file goes with neither --newsletter, --unencrypted nor --from-json",
                    ));
                }
                args.media_key.take()
            } else {
                Some(keys.needed(args.media_key.take())?)
            };
            download::download(args)
        }
        Cmd::Prepare(args) => prepare::prepare(args),
        Cmd::Serve {
            addr,
            auth,
            store,
            max_body,
        } => serve(&addr, auth, store, max_body),
    }
}
