//! wamedia-ureq held to the conformance crate's one scenario table and to every cassette
//! over loopback sockets: the blocking facade's driver, run on the calling thread.

use wamedia_conformance::scenarios::{run_all, Limits};
use wamedia_conformance::{sockets, CallingThread};
use wamedia_ureq::{Blocking, UreqHttp};

#[test]
fn every_cassette_over_sockets() {
    sockets::every_cassette::<UreqHttp, Blocking>(&CallingThread);
}

#[test]
fn scenario_table() {
    // Blocking: a call runs to its end on the calling thread, never dropped half-way.
    run_all::<UreqHttp, Blocking>(&CallingThread, Limits::default().blocking());
}
