//! Every cassette of `conformance/cassettes/`, served over loopback sockets by the
//! conformance crate's replay server to wamedia-reqwest: the same recordings that hold
//! the core, ureq and surf to the contract (see `conformance/tests/sockets.rs`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wamedia::{b64, Source};
use wamedia_conformance::cassette::{Cassette, Event, Kind, Outcome};
use wamedia_conformance::replay::{check_outcome, error_kind, Scenario};
use wamedia_conformance::replay_server::ReplayServer;
use wamedia_driver::Error;
use wamedia_driver::Transfer;
use wamedia_reqwest::{Client, ClientOptions};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cassettes")
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
                        serde_json::Value::String(s) => {
                            serde_json::Value::String(server.rewrite(s))
                        }
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

async fn run(c: &Cassette) -> Result<(), String> {
    let mut sc = Scenario::new(&c.input, &dir())?;
    fast(&mut sc);
    let server = ReplayServer::start(c, sc.media_body.clone()).map_err(|e| e.to_string())?;
    let mut provider = server.provider();
    let result = match c.kind {
        Kind::Upload => {
            let client = Client::new(ClientOptions {
                upload: sc.upload_opts.clone(),
                ..Default::default()
            });
            let source = Cursor::new(sc.plaintext.clone());
            client
                .upload_prepared(&sc.prepared, source, &mut provider, &mut Transfer::new())
                .await
                .map(|r| {
                    r.to_json()
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
        }
        Kind::Delete => {
            let client = Client::new(ClientOptions {
                upload: sc.upload_opts.clone(),
                ..Default::default()
            });
            let spec = sc
                .delete
                .clone()
                .ok_or("a delete cassette without its spec")?;
            client
                .delete(spec, &mut provider, &mut Transfer::new())
                .await
                .map(|r| {
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
            let client = Client::new(ClientOptions {
                download: sc.download_opts.clone(),
                ..Default::default()
            });
            let mut out = Vec::new();
            let r = client
                .download(spec, &mut provider, &mut out, &mut Transfer::new())
                .await;
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
    // `finish` waits a moment for connections still being answered: off the runtime.
    tokio::task::spawn_blocking(move || server.finish())
        .await
        .map_err(|e| e.to_string())??;
    check_outcome(&want, &got)
}

#[tokio::test]
async fn every_cassette_over_reqwest() {
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
        if let Err(e) = run(&c).await {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(ran >= 25, "only {ran} cassettes ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
