//! What `upload` and `download` share: media connections (checked before any work),
//! the two transports' options, record mode's files.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wamedia::*;
use wamedia_driver::{
    BlockingSource, Client, Error as TransferError, FromBlocking, Http, Options, PreparedUpload,
    Runtime, Transfer, UploadData,
};

use crate::files::{check_writable, same_file};
use crate::{Fail, Net};

/// A media connection source the transports can use.
pub type Provider = Box<dyn BlockingSource>;

/// Why `host` cannot work, if it cannot: empty, with spaces or control characters, or
/// with a scheme other than http and https.
fn bad_host(host: &str) -> Option<&'static str> {
    if host.trim().is_empty() {
        return Some("a host cannot be empty");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("a host has no spaces or control characters");
    }
    if let Some((scheme, rest)) = host.split_once("://") {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Some("only http:// and https:// hosts work (a bare name means https)");
        }
        if rest.trim_end_matches('/').is_empty() {
            return Some("the URL names no host");
        }
    } else if host.contains('/') {
        return Some("a bare host name has no path (give a URL with http:// or https://)");
    }
    None
}

/// Refuses the hosts of `conn` (from `source`) that cannot work, before any work.
fn check_hosts<'h>(source: &str, hosts: impl IntoIterator<Item = &'h str>) -> Result<(), Fail> {
    for h in hosts {
        if let Some(why) = bad_host(h) {
            return Err(Fail::usage(format!(
                "{source}: host \"{}\": {why}",
                wamedia::escape(h)
            )));
        }
    }
    Ok(())
}

/// The media connection from the options, first match wins; `None`: no option given.
/// A `--media-conn` file is read and checked now, and `--host`s too.
pub fn conn_provider(net: &Net) -> Result<Option<Provider>, Fail> {
    if let Some(cmd) = net.media_conn_command.clone() {
        return Ok(Some(Box::new(
            move |_force: bool| -> Result<MediaConn, String> {
                let now = Instant::now();
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
            },
        )));
    }
    if let Some(path) = net.media_conn.clone() {
        let what = format!("--media-conn {}", path.display());
        let check =
            std::fs::read_to_string(&path).map_err(|e| Fail::usage(format!("{what}: {e}")))?;
        let conn = MediaConn::from_json(&check, Instant::now())
            .map_err(|e| Fail::usage(format!("{what}: {e}")))?;
        check_hosts(
            &what,
            conn.hosts.iter().flat_map(|h| {
                std::iter::once(h.hostname.as_str()).chain(h.fallback_hostname.as_deref())
            }),
        )?;
        return Ok(Some(Box::new(
            move |_force: bool| -> Result<MediaConn, String> {
                let now = Instant::now();
                let json = std::fs::read_to_string(&path)
                    .map_err(|e| format!("--media-conn {}: {e}", path.display()))?;
                MediaConn::from_json(&json, now)
            },
        )));
    }
    if let Some(auth) = net.auth.clone() {
        check_hosts("--host", net.host.iter().map(String::as_str))?;
        let hosts = net.host.clone();
        return Ok(Some(Box::new(
            move |_force: bool| -> Result<MediaConn, String> {
                let now = Instant::now();
                Ok(MediaConn::new(
                    auth.clone(),
                    hosts.clone(),
                    Duration::from_secs(24 * 3600),
                    now,
                ))
            },
        )));
    }
    Ok(None)
}

/// A reader that reports how much each read returned.
pub struct Inspect<R, F>(pub R, pub F);

impl<R: Read, F: FnMut(usize)> Read for Inspect<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        (self.1)(n);
        Ok(n)
    }
}

/// `<cassette stem>.bin` beside the cassette: where record mode keeps the plaintext.
pub fn bin_path(cassette: &Path) -> PathBuf {
    cassette.with_extension("bin")
}

/// Checks a record path before any work: its folder exists, and neither it nor its
/// `.bin` is one of the transfer's own files.
pub fn check_record_path(cassette: &Path, others: &[&Path]) -> Result<(), Fail> {
    for p in [cassette.to_path_buf(), bin_path(cassette)] {
        for o in others {
            if same_file(&p, o) || p == *o {
                return Err(Fail::usage(format!(
                    "--record {} would overwrite {}: choose another path",
                    cassette.display(),
                    o.display()
                )));
            }
        }
        check_writable(&p)?;
    }
    Ok(())
}

/// Writes a cassette (it holds the media key: mode 0600).
pub fn write_cassette(
    path: &Path,
    c: &wamedia_conformance::cassette::Cassette,
    quiet: bool,
) -> Result<(), Fail> {
    crate::files::write_private(path, c.to_json().as_bytes())?;
    if !quiet {
        eprintln!(
            "wamedia: recorded {} exchanges into {} (auth redacted; the media key is in it)",
            c.events.len(),
            wamedia::escape(&path.display().to_string())
        );
    }
    Ok(())
}

/// The cassette's name: its file stem.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or("recorded".into(), |s| s.to_string_lossy().into_owned())
}

/// A media key in hex, as cassettes keep it.
pub fn hex(k: &MediaKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the flags set, for whichever transport runs the transfer.
pub struct Opts {
    /// Upload behaviour (retries, resume).
    pub upload: UploadOptions,
    /// Download behaviour (retries, size limit, trust in a URL).
    pub download: DownloadOptions,
    /// The `User-Agent` header, if one is to be sent.
    pub user_agent: Option<String>,
}

/// The transports' options from the flags.
pub fn client_opts(net: &Net, no_resume: bool) -> Opts {
    let mut o = Opts {
        upload: UploadOptions::default(),
        download: DownloadOptions::default(),
        user_agent: net.user_agent.clone(),
    };
    o.upload.resume = !no_resume;
    if let Some(s) = net.timeout {
        o.upload.retry.total_timeout = Duration::from_secs(s);
        o.download.retry.total_timeout = Duration::from_secs(s);
    }
    o
}

#[cfg(not(any(feature = "ureq", feature = "surf", feature = "reqwest")))]
compile_error!("wamedia-cli needs at least one transport feature: `ureq`, `surf` or `reqwest`");

/// The HTTP transports this binary was built with (`--transport`); the first one built
/// in is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// ureq: blocking (feature `ureq`, on by default).
    #[cfg(feature = "ureq")]
    Ureq,
    /// reqwest on a one-thread Tokio runtime (feature `reqwest`).
    #[cfg(feature = "reqwest")]
    Reqwest,
    /// surf on async-std (feature `surf`; dormant upstream, see the README).
    #[cfg(feature = "surf")]
    Surf,
}

impl Default for Transport {
    fn default() -> Self {
        #[cfg(feature = "ureq")]
        return Transport::Ureq;
        #[cfg(all(not(feature = "ureq"), feature = "reqwest"))]
        return Transport::Reqwest;
        #[cfg(all(not(feature = "ureq"), not(feature = "reqwest"), feature = "surf"))]
        return Transport::Surf;
    }
}

/// A media connection source shared by the transfers of one command (the upload and its
/// thumbnail ask the same one).
pub type Shared = std::sync::Arc<std::sync::Mutex<Provider>>;

/// Shares `p` between the transfers of one command.
pub fn share(p: Provider) -> Shared {
    std::sync::Arc::new(std::sync::Mutex::new(p))
}

/// The static connection of a local CDN as a source.
pub fn static_source(conn: MediaConn) -> Shared {
    share(Box::new(conn))
}

/// What a command runs over a client, whichever transport it is.
pub trait Work {
    /// What it gives back.
    type Out;
    /// Runs over `client`.
    fn run<H: Http, R: Runtime>(
        self,
        client: &Client<H, R>,
    ) -> impl std::future::Future<Output = Result<Self::Out, TransferError>>;
}

/// Runs `work` to its end on this thread over the chosen transport, with `opts` and the
/// media connections of `provider`.
pub fn run<W: Work>(
    net: &Net,
    o: Opts,
    provider: &Shared,
    work: W,
) -> Result<W::Out, TransferError> {
    let p = provider.clone();
    let source = FromBlocking(move |force: bool| {
        p.lock()
            .unwrap_or_else(|e| e.into_inner())
            .media_conn(force)
    });
    let mut opts = Options::default();
    opts.upload = o.upload;
    opts.download = o.download;
    opts.user_agent = o.user_agent;
    match net.transport {
        #[cfg(feature = "surf")]
        Transport::Surf => async_std::task::block_on(async move {
            let c = wamedia_surf::Client::with_options(source, opts)?;
            work.run(&c).await
        }),
        #[cfg(feature = "reqwest")]
        Transport::Reqwest => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(TransferError::Io)?
            .block_on(async move {
                let c = wamedia_reqwest::Client::with_options(source, opts)?;
                work.run(&c).await
            }),
        #[cfg(feature = "ureq")]
        Transport::Ureq => {
            let c = wamedia_ureq::Driver::with_options(source, opts)?;
            wamedia_driver::block_on(work.run(&c))
        }
    }
}

/// An upload of a prepared body.
pub struct Up<'a> {
    /// The first pass.
    pub prepared: PreparedUpload,
    /// The plaintext.
    pub data: UploadData,
    /// Progress and observers.
    pub transfer: Transfer<'a>,
}

impl Work for Up<'_> {
    type Out = UploadResult;
    async fn run<H: Http, R: Runtime>(
        self,
        c: &Client<H, R>,
    ) -> Result<UploadResult, TransferError> {
        c.upload_prepared(self.prepared, self.data)
            .transfer(self.transfer)
            .send()
            .await
    }
}

/// A download published at a path once verified.
pub struct Down<'a, 'p> {
    /// What to download.
    pub spec: DownloadSpec,
    /// Where.
    pub out: &'p Path,
    /// Progress and observers.
    pub transfer: Transfer<'a>,
}

impl Work for Down<'_, '_> {
    type Out = DownloadResult;
    async fn run<H: Http, R: Runtime>(
        self,
        c: &Client<H, R>,
    ) -> Result<DownloadResult, TransferError> {
        c.download(self.spec)
            .transfer(self.transfer)
            .to_path(self.out)
            .await
    }
}

/// Plaintext bytes `range`, verified window by window, into `out`.
pub struct Range<'w> {
    /// What to download (with its streaming sidecar).
    pub spec: DownloadSpec,
    /// Which bytes.
    pub range: std::ops::Range<u64>,
    /// Where they go.
    pub out: &'w mut (dyn std::io::Write + Send),
}

impl Work for Range<'_> {
    type Out = DownloadResult;
    async fn run<H: Http, R: Runtime>(
        self,
        c: &Client<H, R>,
    ) -> Result<DownloadResult, TransferError> {
        c.download(self.spec)
            .range(self.range)
            .to_writer(self.out)
            .await
    }
}

/// A delete.
pub struct Del(pub DeleteSpec);

impl Work for Del {
    type Out = DeleteResult;
    async fn run<H: Http, R: Runtime>(
        self,
        c: &Client<H, R>,
    ) -> Result<DeleteResult, TransferError> {
        c.delete(self.0).send().await
    }
}

/// Downloads `spec` into `out` (published only once verified) over the chosen transport.
pub fn run_download(
    net: &Net,
    spec: DownloadSpec,
    provider: &Shared,
    out: &Path,
    transfer: Transfer<'_>,
    trust_url: bool,
) -> Result<DownloadResult, TransferError> {
    let mut o = client_opts(net, false);
    o.download.trust_url = trust_url;
    run(
        net,
        o,
        provider,
        Down {
            spec,
            out,
            transfer,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_cannot_work() {
        for h in [
            "mmg.whatsapp.net",
            "http://127.0.0.1:8080",
            "HTTPS://x.example/",
        ] {
            assert_eq!(bad_host(h), None, "{h}");
        }
        for h in [
            "",
            " ",
            "ftp://x",
            "mmg whatsapp",
            "http://",
            "a\x1b[2J",
            "host/path",
        ] {
            assert!(bad_host(h).is_some(), "{h:?}");
        }
    }
}
