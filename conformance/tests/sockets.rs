//! The same cassettes, served over loopback sockets to both real transports.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wamedia::{b64, Source};
use wamedia_conformance::cassette::{Cassette, Event, Kind, Outcome};
use wamedia_conformance::replay::{check_outcome, error_kind, Scenario};
use wamedia_conformance::replay_server::ReplayServer;
use wamedia_driver::Error;
use wamedia_driver::Transfer;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

fn cassettes() -> Vec<Cassette> {
    let mut v: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v.iter().map(|p| Cassette::load(p).unwrap()).collect()
}

/// Real time: backoff is scaled down to milliseconds (the replay server serves the
/// `Retry-After`s a client honours as 0 s; the cap stays, so longer ones stay final).
fn fast(sc: &mut Scenario) {
    for r in [&mut sc.upload_opts.retry, &mut sc.download_opts.retry] {
        r.backoff_base = Duration::from_millis(1);
    }
}

fn outcome_of(r: Result<Vec<(String, serde_json::Value)>, Error>) -> Outcome {
    match r {
        Ok(fields) => Outcome::Ok(fields),
        Err(Error::Upload(e)) => Outcome::Error {
            kind: error_kind(&format!("{e:?}")),
            contains: None,
        },
        Err(Error::Download(e)) => Outcome::Error {
            kind: error_kind(&format!("{e:?}")),
            contains: None,
        },
        Err(Error::Delete(e)) => Outcome::Error {
            kind: error_kind(&format!("{e:?}")),
            contains: None,
        },
        Err(e) => Outcome::Error {
            kind: format!("Transport: {e}"),
            contains: None,
        },
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
                        serde_json::Value::String(s) => serde_json::Value::String(server.rewrite(s)),
                        other => other.clone(),
                    };
                    // Values the CDN's answer carried verbatim keep the recorded host.
                    let same = matches!(got, Outcome::Ok(g) if g.iter().any(|(gk, gv)| gk == k && gv == v));
                    (k.clone(), if same { v.clone() } else { rewritten })
                })
                .collect(),
        ),
        Outcome::Error { kind, .. } => Outcome::Error { kind: kind.clone(), contains: None },
    }
}

enum Transport {
    Ureq,
    Surf,
}

fn run(c: &Cassette, t: &Transport) -> Result<(), String> {
    let mut sc = Scenario::new(&c.input, &dir())?;
    fast(&mut sc);
    let server = ReplayServer::start(c, sc.media_body.clone()).map_err(|e| e.to_string())?;
    let mut provider = server.provider();
    let result = match c.kind {
        Kind::Upload => {
            let source = Cursor::new(sc.plaintext.clone());
            let r = match t {
                Transport::Ureq => wamedia_ureq::Client::new(wamedia_ureq::ClientOptions {
                    upload: sc.upload_opts.clone(),
                    ..Default::default()
                })
                .upload_prepared(
                    &sc.prepared,
                    source,
                    &mut provider,
                    &mut Transfer::new(),
                ),
                Transport::Surf => async_std::task::block_on(
                    wamedia_surf::Client::new(wamedia_surf::ClientOptions {
                        upload: sc.upload_opts.clone(),
                        ..Default::default()
                    })
                    .upload_prepared(
                        &sc.prepared,
                        source,
                        &mut provider,
                        &mut Transfer::new(),
                    ),
                ),
            };
            r.map(|r| {
                r.to_json()
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
        }
        Kind::Delete => {
            let spec = sc.delete.clone().unwrap();
            let r = match t {
                Transport::Ureq => wamedia_ureq::Client::new(wamedia_ureq::ClientOptions {
                    upload: sc.upload_opts.clone(),
                    ..Default::default()
                })
                .delete(spec, &mut provider, &mut Transfer::new()),
                Transport::Surf => async_std::task::block_on(
                    wamedia_surf::Client::new(wamedia_surf::ClientOptions {
                        upload: sc.upload_opts.clone(),
                        ..Default::default()
                    })
                    .delete(spec, &mut provider, &mut Transfer::new()),
                ),
            };
            r.map(|r| {
                vec![
                    ("host".to_string(), r.host.into()),
                    ("status".to_string(), r.status.into()),
                ]
            })
        }
        Kind::Download => {
            let mut spec = sc.download.clone().unwrap();
            if let Source::Url(u) = &spec.source {
                let local = server.rewrite(u);
                // The core replay checked whom the URL may name; over sockets it points
                // at loopback. A URL the recording refused is never rewritten nor trusted.
                let refused =
                    matches!(&c.outcome, Outcome::Error { kind, .. } if kind == "UntrustedUrl");
                sc.download_opts.trust_url = local != *u && !refused;
                spec.source = Source::Url(local);
            }
            let mut out = Vec::new();
            let r = match t {
                Transport::Ureq => wamedia_ureq::Client::new(wamedia_ureq::ClientOptions {
                    download: sc.download_opts.clone(),
                    ..Default::default()
                })
                .download(spec, &mut provider, &mut out, &mut Transfer::new()),
                Transport::Surf => {
                    let mut w = futures_lite::io::Cursor::new(&mut out);
                    async_std::task::block_on(
                        wamedia_surf::Client::new(wamedia_surf::ClientOptions {
                            download: sc.download_opts.clone(),
                            ..Default::default()
                        })
                        .download(
                            spec,
                            &mut provider,
                            &mut w,
                            &mut Transfer::new(),
                        ),
                    )
                }
            };
            if r.is_ok() && out != sc.plaintext {
                return Err("the downloaded plaintext differs".into());
            }
            r.map(|r| {
                vec![
                    ("file_length".to_string(), r.verified.file_length.into()),
                    (
                        "file_sha256".to_string(),
                        b64::std(&r.verified.file_sha256).into(),
                    ),
                    ("host".to_string(), r.host.into()),
                ]
            })
        }
    };
    let got = outcome_of(result);
    let want = expected(c, &server, &got);
    server.finish()?;
    check_outcome(&want, &got)
}

fn run_all(t: Transport) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cassettes() {
        if c.events.iter().any(|e| matches!(e, Event::Silence { .. })) {
            println!(
                "skipped {}: a silent host takes the real request timeout over sockets",
                c.name
            );
            continue;
        }
        ran += 1;
        if let Err(e) = run(&c, &t) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(ran >= 25, "only {ran} cassettes ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_cassette_over_ureq() {
    run_all(Transport::Ureq);
}

#[test]
fn every_cassette_over_surf() {
    run_all(Transport::Surf);
}
