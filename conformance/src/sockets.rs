//! Every cassette of `conformance/cassettes/`, served over loopback sockets by the
//! [`ReplayServer`] to a transport: the recordings that hold the core to the CDN contract
//! hold every [`Http`] adapter to it too, written once here and run by each transport's
//! tests with its own [`Executor`].
//!
//! ```no_run
//! # fn demo<H: wamedia_driver::Http>() {
//! use wamedia_conformance::{sockets, CallingThread};
//! sockets::every_cassette::<H, wamedia_driver::Blocking>(&CallingThread);
//! # }
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use wamedia::{b64, DeleteError, DownloadError, IntegrityError, Source, UploadError};
use wamedia_driver::{Client, Error, ErrorKind, Http, Options, Runtime};

use crate::cassette::{Cassette, Event, Kind, Outcome};
use crate::replay::{check_outcome, Scenario};
use crate::replay_server::ReplayServer;

/// Runs a future to its end: a transport's tests say how (a Tokio runtime, async-std's
/// `block_on`, or [`CallingThread`] for a blocking adapter).
pub trait Executor {
    /// Runs `f` to completion on the calling thread.
    fn block_on<F: Future>(&self, f: F) -> F::Output;
}

/// The executor of a blocking adapter: [`wamedia_driver::block_on`], with
/// [`wamedia_driver::Blocking`] as the runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallingThread;

impl Executor for CallingThread {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        wamedia_driver::block_on(f)
    }
}

/// The folder of the committed cassettes.
pub fn cassette_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

fn cassettes() -> Vec<Cassette> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cassette_dir())
        .expect("the cassette folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Cassette::load(p).expect("a committed cassette loads"))
        .collect()
}

/// Serves every cassette over loopback sockets to `Client<H, R>` run by `exec`, and
/// checks each: every recorded request arrived as recorded, and the outcome is the
/// recorded one. Cassettes with a silent host are skipped (over sockets a silence takes
/// the real request timeout).
///
/// # Panics
/// Listing every cassette that failed, by name.
pub fn every_cassette<H: Http, R: Runtime + Default>(exec: &impl Executor) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cassettes() {
        if c.events.iter().any(|e| matches!(e, Event::Silence { .. })) {
            println!(
                "skipped {}: a silent host takes the real request timeout",
                c.name
            );
            continue;
        }
        ran += 1;
        if let Err(e) = run::<H, R>(exec, &c) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(ran >= 25, "only {ran} cassettes ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cassettes failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Real time: backoff is scaled down to milliseconds (the replay server serves the
/// `Retry-After`s a client honours as 0 s; the cap stays, so longer ones stay final).
fn fast(sc: &mut Scenario) {
    for r in [&mut sc.upload_opts.retry, &mut sc.download_opts.retry] {
        r.backoff_base = Duration::from_millis(1);
    }
}

type Fields = Vec<(String, Value)>;

fn run<H: Http, R: Runtime + Default>(exec: &impl Executor, c: &Cassette) -> Result<(), String> {
    let mut sc = Scenario::new(&c.input, &cassette_dir())?;
    fast(&mut sc);
    let server = ReplayServer::start(c, sc.media_body.clone()).map_err(|e| e.to_string())?;
    let mut provider = server.provider();
    let source = move |force: bool| std::future::ready(provider(force, Instant::now()));
    let mut opts = Options::default();
    opts.upload = sc.upload_opts.clone();
    let result: Result<Fields, Error> = match c.kind {
        Kind::Upload => {
            let client = Client::<H, R>::with_options(source, opts).map_err(|e| e.to_string())?;
            let call = client.upload_prepared(sc.prepared.clone(), sc.plaintext.clone());
            exec.block_on(call.send()).map(|r| fields(&r.to_json()))
        }
        Kind::Delete => {
            let spec = sc
                .delete
                .clone()
                .ok_or("a delete cassette without a spec")?;
            let client = Client::<H, R>::with_options(source, opts).map_err(|e| e.to_string())?;
            exec.block_on(client.delete(spec).send()).map(|r| {
                vec![
                    ("host".to_string(), r.host.into()),
                    ("status".to_string(), r.status.into()),
                ]
            })
        }
        Kind::Download => {
            let mut spec = sc
                .download
                .clone()
                .ok_or("a download cassette without a spec")?;
            if let Source::Url(u) = &spec.source {
                let local = server.rewrite(u);
                // The core replay checked whom the URL may name; over sockets it points
                // at loopback. A URL the recording refused is never rewritten nor trusted.
                let refused =
                    matches!(&c.outcome, Outcome::Error { kind, .. } if kind == "UntrustedUrl");
                sc.download_opts.trust_url = local != *u && !refused;
                spec.source = Source::Url(local);
            }
            opts.download = sc.download_opts.clone();
            let client = Client::<H, R>::with_options(source, opts).map_err(|e| e.to_string())?;
            match exec.block_on(client.download(spec).to_vec()) {
                Ok((out, _)) if out != sc.plaintext => {
                    return Err("the downloaded plaintext differs".into())
                }
                Ok((_, r)) => Ok(vec![
                    ("file_length".to_string(), r.verified.file_length.into()),
                    (
                        "file_sha256".to_string(),
                        b64::std(&r.verified.file_sha256).into(),
                    ),
                    ("host".to_string(), r.host.into()),
                ]),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = &result {
        kind_agrees(e)?;
    }
    let got = outcome_of(result);
    let want = expected(c, &server, &got);
    server.finish()?;
    check_outcome(&want, &got)
}

fn fields(v: &Value) -> Fields {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn outcome_of(r: Result<Fields, Error>) -> Outcome {
    match r {
        Ok(fields) => Outcome::Ok(fields),
        Err(e) => Outcome::Error {
            kind: variant(&e),
            contains: None,
        },
    }
}

/// The cassette's name for an error: the variant of the machine's error
/// (`AuthRejected`, `Integrity.MacMismatch`), or `Transport: …` for the rest.
pub fn variant(e: &Error) -> String {
    let name = match e {
        Error::Upload(u) => upload_variant(u),
        Error::Download(d) => download_variant(d),
        Error::Delete(d) => delete_variant(d),
        other => return format!("Transport: {:?}: {other}", other.kind()),
    };
    match name {
        Some(n) => n,
        // A variant newer than this list: its name from `Debug`.
        None => match e {
            Error::Upload(u) => crate::cassette::error_kind(&format!("{u:?}")),
            Error::Download(d) => crate::cassette::error_kind(&format!("{d:?}")),
            Error::Delete(d) => crate::cassette::error_kind(&format!("{d:?}")),
            other => format!("{other:?}"),
        },
    }
}

fn upload_variant(e: &UploadError) -> Option<String> {
    use UploadError as U;
    Some(
        match e {
            U::NoHosts { .. } => "NoHosts",
            U::Unsupported(_) => "Unsupported",
            U::ConnExpired => "ConnExpired",
            U::AuthRejected { .. } => "AuthRejected",
            U::Malformed { .. } => "Malformed",
            U::TooLarge { .. } => "TooLarge",
            U::HashMismatch { .. } => "HashMismatch",
            U::Throttled { .. } => "Throttled",
            U::Status { .. } => "Status",
            U::AllHostsFailed { .. } => "AllHostsFailed",
            _ => return None,
        }
        .to_string(),
    )
}

fn delete_variant(e: &DeleteError) -> Option<String> {
    use DeleteError as D;
    Some(
        match e {
            D::NoHosts { .. } => "NoHosts",
            D::ConnExpired => "ConnExpired",
            D::AuthRejected { .. } => "AuthRejected",
            D::Status { .. } => "Status",
            D::AllHostsFailed { .. } => "AllHostsFailed",
            _ => return None,
        }
        .to_string(),
    )
}

fn download_variant(e: &DownloadError) -> Option<String> {
    use DownloadError as D;
    use IntegrityError as I;
    Some(
        match e {
            D::NoHosts { .. } => "NoHosts",
            D::ConnExpired => "ConnExpired",
            D::AuthRejected { .. } => "AuthRejected",
            D::Unsupported(_) => "Unsupported",
            D::MediaGone { .. } => "MediaGone",
            D::MediaExpired { .. } => "MediaExpired",
            D::MaliciousPath { .. } => "MaliciousPath",
            D::UntrustedUrl { .. } => "UntrustedUrl",
            D::BadRange(_) => "BadRange",
            D::NothingToVerify => "NothingToVerify",
            D::Throttled { .. } => "Throttled",
            D::Status { .. } => "Status",
            D::AllHostsFailed { .. } => "AllHostsFailed",
            D::Integrity(i) => match i {
                I::TooShort { .. } => "Integrity.TooShort",
                I::BadLength { .. } => "Integrity.BadLength",
                I::EncHashMismatch => "Integrity.EncHashMismatch",
                I::MacMismatch => "Integrity.MacMismatch",
                I::BadPadding => "Integrity.BadPadding",
                I::PlainHashMismatch => "Integrity.PlainHashMismatch",
                I::LengthMismatch { .. } => "Integrity.LengthMismatch",
                I::NotEncrypted(_) => "Integrity.NotEncrypted",
                I::SidecarMismatch { .. } => "Integrity.SidecarMismatch",
                I::TooLarge { .. } => "Integrity.TooLarge",
                _ => return None,
            },
            _ => return None,
        }
        .to_string(),
    )
}

/// `err.kind()` must say whose fault it was as the variant does, where that is plain.
fn kind_agrees(e: &Error) -> Result<(), String> {
    let v = variant(e);
    let want = match v.as_str() {
        // Every host failing is the network's fault or the CDN's, by what the hosts did.
        "Throttled" => ErrorKind::Cdn,
        "AuthRejected" | "ConnExpired" => ErrorKind::Auth,
        "MediaGone" | "MediaExpired" => ErrorKind::Expired,
        _ if v.starts_with("Integrity.") => ErrorKind::Media,
        _ => return Ok(()),
    };
    if e.kind() == want {
        Ok(())
    } else {
        Err(format!("{v} has kind {:?}, not {want:?}", e.kind()))
    }
}

/// The recorded outcome as it must look over sockets: hosts rewritten where the machine
/// derives them, error texts not compared (transport messages differ by client).
fn expected(c: &Cassette, server: &ReplayServer, got: &Outcome) -> Outcome {
    match &c.outcome {
        Outcome::Ok(fields) => Outcome::Ok(
            fields
                .iter()
                .map(|(k, v)| {
                    let rewritten = match v {
                        Value::String(s) => Value::String(server.rewrite(s)),
                        other => other.clone(),
                    };
                    // Values the CDN's answer carried verbatim keep the recorded host.
                    let same = matches!(got, Outcome::Ok(g) if g.iter().any(|(gk, gv)| gk == k && gv == v));
                    (k.clone(), if same { v.clone() } else { rewritten })
                })
                .collect(),
        ),
        Outcome::Error { kind, .. } => Outcome::Error {
            kind: kind.clone(),
            contains: None,
        },
    }
}
