//! A scripted driver with a virtual clock: the CDN is a closure, time jumps straight to
//! the next deadline, and every request the machine emits is kept for the assertions.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use wamedia::*;

/// How the scripted CDN answers one request.
pub enum Reply {
    /// A whole answer.
    Answer(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// The head and part of the body, then the connection drops.
    Cut(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// The transport fails before any answer.
    Fail(&'static str),
    /// No answer at all: the request's deadline passes.
    Silence,
    /// So many body bytes go out, then the connection drops before any answer.
    SentThenFail(u64),
}

pub fn ok_json(json: &str) -> Reply {
    Reply::Answer(200, vec![], json.as_bytes().to_vec())
}

pub fn status(code: u16) -> Reply {
    Reply::Answer(code, vec![], format!("status {code}").into_bytes())
}

pub fn headers(list: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.append(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub struct Run<O> {
    pub outcome: O,
    pub requests: Vec<(Duration, Request)>,
    pub conn_asks: Vec<(Duration, bool)>,
    pub plaintext: Vec<u8>,
    /// What came out as [`Output::Verified`] (also in `plaintext`).
    pub verified: Vec<u8>,
    pub progress: Vec<u64>,
    pub elapsed: Duration,
}

impl<O> Run<O> {
    pub fn urls(&self) -> Vec<String> {
        self.requests.iter().map(|(_, r)| r.url.clone()).collect()
    }
    pub fn hosts(&self) -> Vec<String> {
        self.requests.iter().map(|(_, r)| r.host.clone()).collect()
    }
}

pub const STEP_LIMIT: usize = 100_000;

/// Drives `m` to its outcome. `conn` answers media connection requests (given `force`
/// and the virtual time since start); `cdn` answers each request.
pub fn drive<M: Machine>(
    m: &mut M,
    t0: Instant,
    mut conn: impl FnMut(bool, Duration) -> MediaConn,
    mut cdn: impl FnMut(&Request, Duration) -> Reply,
) -> Run<M::Outcome> {
    let mut now = t0;
    let mut run = Run {
        outcome: None,
        requests: vec![],
        conn_asks: vec![],
        plaintext: vec![],
        verified: vec![],
        progress: vec![],
        elapsed: Duration::ZERO,
    };
    for _ in 0..STEP_LIMIT {
        let out = m.poll_output(now);
        match out {
            Output::Transmit(req) => {
                let at = now - t0;
                let reply = cdn(&req, at);
                let id = req.id;
                let body_len = req.body.len();
                run.requests.push((at, req));
                // An answer comes after the whole request body went out, as a transport
                // reports it.
                if body_len > 0 && matches!(reply, Reply::Answer(..) | Reply::Cut(..)) {
                    m.handle_input(
                        now,
                        Input::Sent {
                            id,
                            bytes: body_len,
                        },
                    )
                    .unwrap();
                }
                match reply {
                    Reply::Answer(s, h, b) => {
                        m.handle_response(now, id, s, &headers(&h), &b).unwrap()
                    }
                    Reply::Cut(s, h, b) => {
                        m.handle_input(
                            now,
                            Input::Head {
                                id,
                                status: s,
                                headers: &headers(&h),
                            },
                        )
                        .unwrap();
                        m.handle_input(now, Input::Body { id, data: &b }).unwrap();
                        m.handle_input(
                            now,
                            Input::Failed {
                                id,
                                reason: "connection reset".into(),
                            },
                        )
                        .unwrap();
                    }
                    Reply::Fail(why) => m
                        .handle_input(
                            now,
                            Input::Failed {
                                id,
                                reason: why.into(),
                            },
                        )
                        .unwrap(),
                    Reply::Silence => {}
                    Reply::SentThenFail(n) => {
                        m.handle_input(now, Input::Sent { id, bytes: n }).unwrap();
                        m.handle_input(
                            now,
                            Input::Failed {
                                id,
                                reason: "broken pipe".into(),
                            },
                        )
                        .unwrap();
                    }
                }
            }
            Output::NeedMediaConn { force } => {
                run.conn_asks.push((now - t0, force));
                let c = conn(force, now - t0);
                m.handle_input(now, Input::MediaConn(c)).unwrap();
            }
            Output::Wait(t) => {
                assert!(t >= now, "deadlines never lie in the past");
                now = now.max(t);
                m.handle_input(now, Input::Timeout).unwrap();
            }
            Output::Progress { done, .. } => run.progress.push(done),
            Output::Plaintext(p) => run.plaintext.extend_from_slice(p),
            Output::Verified(p) => {
                run.verified.extend_from_slice(p);
                run.plaintext.extend_from_slice(p);
            }
            Output::Done(o) => {
                run.outcome = Some(o);
                break;
            }
            _ => panic!("an output this harness does not know"),
        }
    }
    run.elapsed = now - t0;
    Run {
        outcome: run
            .outcome
            .expect("the machine finished within the step limit"),
        requests: run.requests,
        conn_asks: run.conn_asks,
        plaintext: run.plaintext,
        verified: run.verified,
        progress: run.progress,
        elapsed: run.elapsed,
    }
}

/// A connection to `hosts`, fetched at virtual time `at`, valid 300 s.
pub fn conn_at(t0: Instant, at: Duration, auth: &str, hosts: &[&str]) -> MediaConn {
    MediaConn::new(
        auth,
        hosts.iter().map(|h| h.to_string()).collect(),
        Duration::from_secs(300),
        t0 + at,
    )
}

pub fn key() -> MediaKey {
    MediaKey::from_bytes([7; 32])
}

pub fn media_id() -> MediaId {
    MediaId::new(4242).unwrap()
}

/// A connection from its JSON form, fetched at virtual time `at`.
pub fn conn_json(t0: Instant, at: Duration, json: &str) -> MediaConn {
    MediaConn::from_json(json, t0 + at).unwrap()
}

/// splitmix64.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
