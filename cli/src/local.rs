//! The embedded local CDN behind `wamedia upload` without a media connection and
//! `wamedia serve`: the `wamedia-fake-cdn` crate when built with the `local-cdn` feature
//! (the default), and a clear refusal without it.

#[cfg(not(feature = "local-cdn"))]
use std::time::Instant;

#[cfg(not(feature = "local-cdn"))]
use wamedia::MediaConn;

use crate::Fail;

/// The largest body `serve` takes by default: WhatsApp's own 2 GiB.
pub const DEFAULT_MAX_BODY: u64 = 1 << 31;

/// The embedded CDN.
#[cfg(feature = "local-cdn")]
pub type LocalCdn = wamedia_fake_cdn::FakeCdn;

/// The embedded CDN: not built in.
#[cfg(not(feature = "local-cdn"))]
pub enum LocalCdn {}

#[cfg(not(feature = "local-cdn"))]
impl LocalCdn {
    /// Never called: there is no value of this type.
    pub fn host(&self) -> String {
        match *self {}
    }
    /// Never called: there is no value of this type.
    pub fn media_conn(&self, _now: Instant) -> MediaConn {
        match *self {}
    }
}

#[cfg(not(feature = "local-cdn"))]
const NOT_BUILT: &str =
    "this wamedia was built without the embedded local CDN (feature `local-cdn`)";

/// Starts the embedded CDN on an ephemeral loopback port.
pub fn start() -> Result<LocalCdn, Fail> {
    #[cfg(feature = "local-cdn")]
    {
        wamedia_fake_cdn::FakeCdn::start()
            .map_err(|e| Fail::usage(format!("cannot start the embedded local CDN: {e}")))
    }
    #[cfg(not(feature = "local-cdn"))]
    {
        Err(Fail::usage(format!(
            "no media connection given, and {NOT_BUILT}: give --media-conn, --media-conn-command or --auth/--host"
        )))
    }
}

/// `wamedia serve` on `addr`, until stopped.
pub fn serve(
    addr: std::net::SocketAddr,
    auth: String,
    store: Option<std::path::PathBuf>,
    max_body: u64,
) -> Result<std::convert::Infallible, String> {
    #[cfg(feature = "local-cdn")]
    {
        use std::io::Write as _;
        let cdn = wamedia_fake_cdn::FakeCdn::with_config(wamedia_fake_cdn::CdnConfig {
            auth,
            store_dir: store,
            addr,
            max_body,
            ..wamedia_fake_cdn::CdnConfig::default()
        })
        .map_err(|e| e.to_string())?;
        println!("{}", cdn.media_conn_json());
        let _ = std::io::stdout().flush();
        eprintln!(
            "wamedia: fake CDN listening on {} (Ctrl-C to stop)",
            cdn.host()
        );
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(feature = "local-cdn"))]
    {
        let _ = (addr, auth, store, max_body, Instant::now());
        Err(NOT_BUILT.to_owned())
    }
}
