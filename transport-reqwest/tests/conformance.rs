//! wamedia-reqwest held to the conformance crate's one scenario table and to every
//! cassette over loopback sockets, on Tokio's multi-thread and current-thread runtimes.

use std::future::Future;

use wamedia_conformance::scenarios::{run_all, Limits};
use wamedia_conformance::{sockets, Executor};
use wamedia_reqwest::{ReqwestHttp, Tokio};

struct OnTokio(tokio::runtime::Runtime);

impl Executor for OnTokio {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
}

fn multi_thread() -> OnTokio {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    OnTokio(rt)
}

fn current_thread() -> OnTokio {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    OnTokio(rt)
}

#[test]
fn every_cassette_over_sockets() {
    sockets::every_cassette::<ReqwestHttp, Tokio>(&multi_thread());
}

#[test]
fn scenario_table_multi_thread() {
    run_all::<ReqwestHttp, Tokio>(&multi_thread(), Limits::default());
}

#[test]
fn scenario_table_current_thread() {
    run_all::<ReqwestHttp, Tokio>(&current_thread(), Limits::default());
}
