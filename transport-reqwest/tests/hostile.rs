//! wamedia-reqwest against a hostile peer on loopback: every scenario of
//! `wamedia_conformance::hostile`, each named in its own failure message.

use std::time::Instant;

use wamedia::*;
use wamedia_conformance::hostile::{self, Hostile};
use wamedia_reqwest::{Client, ClientOptions, Transfer};

#[tokio::test]
async fn every_hostile_scenario() {
    let mut failures = Vec::new();
    for s in hostile::scenarios() {
        let peer = Hostile::start(s.behaviour.clone()).unwrap();
        let mut o = ClientOptions::default();
        (s.tweak)(&mut o.upload, &mut o.download);
        let client = Client::new(o);
        let conn = MediaConn::new(
            "hostile-auth",
            vec![peer.host()],
            std::time::Duration::from_secs(300),
            Instant::now(),
        );
        let outcome = match s.transfer {
            hostile::Transfer::Upload => client
                .upload_bytes(
                    hostile::SAMPLE,
                    &UploadJob::new(MediaType::Image),
                    &mut StaticConn(conn),
                    &mut Transfer::new(),
                )
                .await
                .map(|_| ()),
            hostile::Transfer::Download => {
                let mut out = Vec::new();
                client
                    .download(
                        hostile::sample_download(),
                        &mut StaticConn(conn),
                        &mut out,
                        &mut Transfer::new(),
                    )
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = (s.check)(&outcome, peer.requests()) {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
