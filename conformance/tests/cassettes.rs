//! Every cassette in the library, replayed through the core.

use std::path::{Path, PathBuf};

use wamedia_conformance::cassette::{Cassette, Event};
use wamedia_conformance::{library, replay};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

fn all() -> Vec<(PathBuf, Cassette)> {
    let mut v: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let c = Cassette::load(&p).unwrap();
            (p, c)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn every_cassette_replays_through_the_core() {
    let list = all();
    assert!(list.len() >= 25, "the library has {} cassettes", list.len());
    let mut failures = Vec::new();
    for (path, c) in &list {
        if let Err(e) = replay::replay(c, &dir()) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    println!("{} cassettes replayed", list.len());
}

#[test]
fn committed_cassettes_match_the_library_and_serialise_deterministically() {
    let authored = library::cassettes().unwrap();
    let committed = all();
    assert_eq!(
        authored.len(),
        committed.len(),
        "run `cargo run -p wamedia-conformance -- author conformance/cassettes`"
    );
    for c in authored {
        let path = dir().join(format!("{}.json", c.name));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, c.to_json(), "{} is out of date", path.display());
        assert_eq!(
            Cassette::load(&path).unwrap().to_json(),
            text,
            "round trip of {}",
            path.display()
        );
    }
}

#[test]
fn no_secret_is_stored_in_clear() {
    for (path, c) in all() {
        for e in &c.events {
            if let Event::MediaConn { media_conn, .. } = e {
                assert!(
                    media_conn.auth.starts_with("REDACTED-AUTH"),
                    "{}",
                    path.display()
                );
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for chunk in text.split("auth=").skip(1) {
            assert!(
                chunk.starts_with("REDACTED-AUTH"),
                "{}: auth in a URL is not redacted",
                path.display()
            );
        }
    }
}

#[test]
fn a_mismatch_shows_the_first_differing_request_side_by_side() {
    let (_, mut c) = all()
        .into_iter()
        .find(|(_, c)| c.name == "upload-5xx-then-success")
        .unwrap();
    for e in c.events.iter_mut() {
        if let Event::Response { request, .. } = e {
            request.url = request.url.replace("mms/image", "mms/video");
            break;
        }
    }
    let err = replay::replay(&c, &dir()).unwrap_err();
    assert!(err.contains("request differs from the recording"), "{err}");
    assert!(
        err.contains("! POST https://mmg.whatsapp.net/mms/video/"),
        "{err}"
    );
    assert!(
        err.contains("|  POST https://mmg.whatsapp.net/mms/image/")
            || err.contains("| POST https://mmg.whatsapp.net/mms/image/"),
        "{err}"
    );
    // A changed outcome is caught too.
    let (_, mut c) = all()
        .into_iter()
        .find(|(_, c)| c.name == "upload-413-final")
        .unwrap();
    c.outcome = wamedia_conformance::cassette::Outcome::Error {
        kind: "AuthRejected".into(),
        contains: None,
    };
    let err = replay::replay(&c, &dir()).unwrap_err();
    assert!(err.contains("recorded AuthRejected, got TooLarge"), "{err}");
}
