//! What `upload` and `download` share: media connections (checked before any work),
//! the two transports' options, record mode's files.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wamedia::driver::Error as TransferError;
use wamedia::*;

use crate::files::{check_writable, same_file};
use crate::{Fail, Net};

/// A media connection source the transports can use.
pub type Provider = Box<dyn MediaConnProvider + Send>;

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
                transfer::escape(h)
            )));
        }
    }
    Ok(())
}

/// The media connection from the options, first match wins; `None`: no option given.
/// A `--media-conn` file is read and checked now, and `--host`s too.
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
        return Ok(Some(Box::new(move |_force: bool, now: Instant| {
            let json = std::fs::read_to_string(&path)
                .map_err(|e| format!("--media-conn {}: {e}", path.display()))?;
            MediaConn::from_json(&json, now)
        })));
    }
    if let Some(auth) = net.auth.clone() {
        check_hosts("--host", net.host.iter().map(String::as_str))?;
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
            transfer::escape(&path.display().to_string())
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

/// The ureq client for these settings.
#[cfg(feature = "ureq")]
pub fn ureq_client(o: Opts) -> wamedia_ureq::Client {
    wamedia_ureq::Client::new(wamedia_ureq::ClientOptions {
        upload: o.upload,
        download: o.download,
        user_agent: o.user_agent,
        ..Default::default()
    })
}

/// Runs `f` to completion on a one-thread Tokio runtime (the reqwest transport).
#[cfg(feature = "reqwest")]
pub fn block_on_tokio<T>(
    f: impl std::future::Future<Output = Result<T, TransferError>>,
) -> Result<T, TransferError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TransferError::Io)?
        .block_on(f)
}

/// The same settings for the reqwest transport.
#[cfg(feature = "reqwest")]
pub fn reqwest_client(o: Opts) -> Result<wamedia_reqwest::Client, TransferError> {
    wamedia_reqwest::Client::try_new(wamedia_reqwest::ClientOptions {
        upload: o.upload,
        download: o.download,
        user_agent: o.user_agent,
        ..Default::default()
    })
    .map_err(TransferError::Io)
}

/// The same settings for the surf transport.
#[cfg(feature = "surf")]
pub fn surf_client(o: Opts) -> wamedia_surf::Client {
    wamedia_surf::Client::new(wamedia_surf::ClientOptions {
        upload: o.upload,
        download: o.download,
        user_agent: o.user_agent,
        ..Default::default()
    })
}

/// Downloads `spec` into `out` (published only once verified) over the chosen transport.
pub fn run_download(
    net: &Net,
    spec: DownloadSpec,
    provider: &mut (dyn MediaConnProvider + Send),
    out: &Path,
    transfer: &mut Transfer<'_>,
    trust_url: bool,
) -> Result<DownloadResult, TransferError> {
    let mut o = client_opts(net, false);
    o.download.trust_url = trust_url;
    match net.transport {
        #[cfg(feature = "surf")]
        Transport::Surf => async_std::task::block_on(
            surf_client(o).download_to_path(spec, provider, out, transfer),
        ),
        #[cfg(feature = "reqwest")]
        Transport::Reqwest => {
            block_on_tokio(reqwest_client(o)?.download_to_path(spec, provider, out, transfer))
        }
        #[cfg(feature = "ureq")]
        Transport::Ureq => ureq_client(o).download_to_path(spec, provider, out, transfer),
    }
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
