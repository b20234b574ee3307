//! wamedia-surf held to the conformance crate's one scenario table and to every cassette
//! over loopback sockets, on async-std.

use std::future::Future;

use wamedia_conformance::scenarios::{run_all, Limits};
use wamedia_conformance::{sockets, Executor};
use wamedia_surf::{AsyncStd, SurfHttp};

struct OnAsyncStd;

impl Executor for OnAsyncStd {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        async_std::task::block_on(f)
    }
}

#[test]
fn every_cassette_over_sockets() {
    sockets::every_cassette::<SurfHttp, AsyncStd>(&OnAsyncStd);
}

#[test]
fn scenario_table() {
    // Documented on the crate, nothing else excused: async-h1 cannot read a body
    // delimited only by the connection's end (refused with a reason), and its pool would
    // reuse a connection whose exchange was abandoned, so each request opens its own.
    let limits = Limits::default()
        .refusing_close_delimited()
        .without_connection_reuse();
    run_all::<SurfHttp, AsyncStd>(&OnAsyncStd, limits);
}
