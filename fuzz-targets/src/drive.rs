//! The checking driver both machine targets share: `core/tests/support`'s scripted driver
//! with a virtual clock, grown hostile. Answers arrive piecewise and late, time jumps,
//! connections are pushed unasked, inputs name unknown and superseded requests; every
//! output and every `handle_input` result is checked against the contract.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use http::HeaderMap;
use wamedia::{BodySpec, Input, Machine, MediaConn, Misuse, Output, Request, RequestId};

use crate::conns::{self, AUTH};
use crate::script::{contains, Clock, Script, JUMPS};

/// One thing the driver feeds for a request's answer.
pub(crate) enum Action {
    Head {
        status: u16,
        headers: HeaderMap,
    },
    Body(Vec<u8>),
    End,
    Failed(&'static str),
    Sent(u64),
    /// Time passes; the driver says so with `Timeout` unless `silent` (an answer that
    /// arrives after its deadline).
    Jump {
        by: Duration,
        silent: bool,
    },
}

/// What differs between the upload and download CDNs.
pub(crate) trait Cdn {
    /// How the CDN answers `req`, as the actions the driver feeds in order (an answer
    /// without `End` or `Failed` is silence: its deadline passes).
    fn answer(&mut self, s: &mut Script<'_>, req: &Request) -> Vec<Action>;
    /// Checks a request the machine made, given every connection handed to it so far.
    fn check_request(&self, req: &Request, conns: &[MediaConn]);
    /// Whether `Sent { bytes }` for a live request with this body is the driver's mistake.
    fn sent_is_wrong(&self, body: BodySpec, bytes: u64) -> bool;
    /// The machine refuses a wrong `Sent` (an upload counts bytes for progress); a
    /// download ignores `Sent` altogether, so it may take a wrong one.
    const REFUSES_WRONG_SENT: bool;
    /// The transfer's own input (a URL, say) spells the token: then requests may show it.
    fn input_spells_auth(&self) -> bool {
        false
    }
    /// The machine may drop its in-flight request on its own after the head (a download's
    /// 206 at the wrong offset), so that later inputs for it are ignored, not refused.
    const DROPS_AFTER_HEAD: bool;
}

/// What one run produced.
pub(crate) struct Run<O> {
    pub outcome: O,
    pub requests: Vec<Request>,
    /// Everything `Output::Plaintext` and `Output::Verified` released, in order.
    pub released: Vec<u8>,
    /// What `Output::Verified` released (window-verified, so genuine whatever the end).
    pub verified: Vec<u8>,
    /// Some body the CDN sent contained the auth token (so an error may quote it).
    pub echoed_auth: bool,
}

/// The request the machine has out, as the driver sees it.
struct Live {
    id: RequestId,
    deadline: Instant,
    body: BodySpec,
    head: bool,
}

/// What `handle_input` must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    /// Genuinely wrong input: `Misuse::Unexpected`.
    Unexpected,
    /// Wrong input for a request the machine may already have dropped: either.
    OkOrUnexpected,
    Unknown(u64),
    Finished,
}

struct Driver<'d, 's, M, C> {
    m: M,
    cdn: C,
    s: &'s mut Script<'d>,
    clock: Clock,
    pending: VecDeque<(RequestId, Action)>,
    issued: u64,
    live: Option<Live>,
    conns: Vec<MediaConn>,
    requests: Vec<Request>,
    released: Vec<u8>,
    verified: Vec<u8>,
    echoed_auth: bool,
    /// The last wake-up time the machine announced.
    last_wait: Option<Instant>,
    /// A `Timeout` was fed at or after `last_wait`: the next wait must lie ahead.
    fired: bool,
    /// An input other than `Timeout` was fed since the last poll.
    other_input: bool,
    /// `Wait`s in a row, each answered by nothing but a `Timeout` at its time.
    idle_cycles: u32,
}

/// Drives `m` to its outcome, checking the contract at every step.
///
/// # Panics
/// On any broken invariant.
pub(crate) fn drive<M, C>(
    m: M,
    cdn: C,
    clock: Clock,
    s: &mut Script<'_>,
    budget: usize,
) -> Run<M::Outcome>
where
    M: Machine,
    M::Outcome: PartialEq + Debug,
    C: Cdn,
{
    let mut d = Driver {
        m,
        cdn,
        s,
        clock,
        pending: VecDeque::new(),
        issued: 0,
        live: None,
        conns: Vec::new(),
        requests: Vec::new(),
        released: Vec::new(),
        verified: Vec::new(),
        echoed_auth: false,
        last_wait: None,
        fired: false,
        other_input: false,
        idle_cycles: 0,
    };
    for _ in 0..budget {
        if let Some(outcome) = d.step() {
            d.after_done(&outcome);
            return Run {
                outcome,
                requests: d.requests,
                released: d.released,
                verified: d.verified,
                echoed_auth: d.echoed_auth,
            };
        }
    }
    panic!("no outcome within {budget} steps under a driver that answers every output");
}

/// An output, copied out of the machine's borrow.
enum Out<O> {
    Transmit(Request),
    NeedMediaConn,
    Wait(Instant),
    Progress(u64, Option<u64>),
    Plaintext(Vec<u8>),
    Verified(Vec<u8>),
    Done(O),
}

impl<O: Debug> Out<O> {
    fn describe(&self) -> String {
        match self {
            Out::Transmit(r) => format!(
                "Transmit {} {} {:?} {:?}",
                r.id,
                r.redacted_url(),
                r.body,
                r.headers.get("range")
            ),
            Out::NeedMediaConn => "NeedMediaConn".into(),
            Out::Wait(_) => "Wait".into(),
            Out::Progress(d, t) => format!("Progress {d} of {t:?}"),
            Out::Plaintext(p) => format!("Plaintext {} bytes", p.len()),
            Out::Verified(p) => format!("Verified {} bytes", p.len()),
            Out::Done(o) => format!("Done {o:?}"),
        }
    }
}

/// `FUZZ_TRACE=1` prints every output and input (to replay one failing input).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fn poll<M: Machine>(m: &mut M, now: Instant) -> Out<M::Outcome> {
    match m.poll_output(now) {
        Output::Transmit(r) => Out::Transmit(r),
        Output::NeedMediaConn { .. } => Out::NeedMediaConn,
        Output::Wait(t) => Out::Wait(t),
        Output::Progress { done, total } => Out::Progress(done, total),
        Output::Plaintext(p) => Out::Plaintext(p.to_vec()),
        Output::Verified(p) => Out::Verified(p.to_vec()),
        Output::Done(o) => Out::Done(o),
        _ => panic!("an output the fuzz driver does not know"),
    }
}

impl<M, C> Driver<'_, '_, M, C>
where
    M: Machine,
    M::Outcome: PartialEq + Debug,
    C: Cdn,
{
    /// One poll and the driver's answer to it; the outcome once reached.
    fn step(&mut self) -> Option<M::Outcome> {
        let now = self.clock.now;
        let out = poll(&mut self.m, now);
        if trace() {
            eprintln!("{:>12?} <- {}", now - self.clock.base, out.describe());
        }
        let fired = std::mem::take(&mut self.fired);
        let other_input = std::mem::take(&mut self.other_input);
        if fired && !other_input && matches!(out, Out::Wait(_)) {
            self.idle_cycles += 1;
        } else {
            self.idle_cycles = 0;
        }
        match out {
            Out::Transmit(req) => {
                assert!(
                    req.deadline >= now,
                    "a request whose deadline lies before now: {req:?}"
                );
                assert_eq!(
                    req.id,
                    RequestId(self.issued),
                    "request ids count up from 0"
                );
                assert!(
                    !format!("{req:?}").contains(AUTH) || self.cdn.input_spells_auth(),
                    "a request's Debug shows the auth token: {req:?}"
                );
                self.cdn.check_request(&req, &self.conns);
                self.issued += 1;
                self.live = Some(Live {
                    id: req.id,
                    deadline: req.deadline,
                    body: req.body,
                    head: false,
                });
                let answer = self.cdn.answer(self.s, &req);
                self.pending.extend(answer.into_iter().map(|a| (req.id, a)));
                self.requests.push(req);
            }
            Out::NeedMediaConn => {
                let c = conns::decode(self.s, &self.clock);
                self.conns.push(c.clone());
                self.feed(Input::MediaConn(c));
            }
            Out::Progress(done, total) => {
                if let Some(total) = total {
                    assert!(done <= total, "progress {done} of {total}");
                }
            }
            Out::Plaintext(p) => {
                assert!(!p.is_empty(), "an empty Plaintext output");
                assert!(self.verified.is_empty(), "Plaintext after Verified");
                self.released.extend_from_slice(&p);
            }
            Out::Verified(p) => {
                assert!(!p.is_empty(), "an empty Verified output");
                assert_eq!(
                    self.released.len(),
                    self.verified.len(),
                    "Verified after Plaintext"
                );
                self.released.extend_from_slice(&p);
                self.verified.extend_from_slice(&p);
            }
            Out::Done(o) => return Some(o),
            Out::Wait(t) => {
                // The one wait allowed in the past: the live request's own deadline, when
                // the driver let time pass without saying so (an answer arriving late).
                let late = self.live.as_ref().is_some_and(|l| l.deadline == t);
                assert!(t >= now || late, "Wait({:?}) lies before now", now - t);
                if fired {
                    assert!(
                        t > now,
                        "a Timeout at its time left the machine waiting for a time already come"
                    );
                }
                assert!(
                    self.idle_cycles <= 3,
                    "{} Wait/Timeout cycles in a row without any other output",
                    self.idle_cycles
                );
                self.last_wait = Some(t);
                self.on_wait(t);
            }
        }
        None
    }

    /// The machine has nothing to do until `t`: interject, deliver the next piece of an
    /// answer, or let the time come.
    fn on_wait(&mut self, t: Instant) {
        match self.s.u8() {
            0..=191 => {}
            192..=207 => {
                let by = self.s.pick(JUMPS);
                self.jump(by, false);
                return;
            }
            208..=215 => {
                let by = self.s.pick(JUMPS);
                self.jump(by, true);
            }
            216..=223 => {
                let id = match self.s.u8() {
                    255 => u64::MAX,
                    n => self.issued + u64::from(n),
                };
                self.stray(RequestId(id));
            }
            224..=231 => {
                if self.issued > 0 {
                    let id = u64::from(self.s.u8()) % self.issued;
                    self.stray(RequestId(id));
                }
            }
            232..=239 => {
                let c = conns::decode(self.s, &self.clock);
                self.conns.push(c.clone());
                self.feed(Input::MediaConn(c));
            }
            240..=247 => self.feed(Input::Timeout),
            248..=255 => {
                // A driver that does not drain between inputs.
                for _ in 0..2 + self.s.below(3) {
                    self.deliver();
                }
            }
        }
        if !self.deliver() {
            self.clock.now = self.clock.now.max(t);
            self.feed(Input::Timeout);
        }
    }

    /// Feeds the next pending action; false when there is none.
    fn deliver(&mut self) -> bool {
        let Some((id, action)) = self.pending.pop_front() else {
            return false;
        };
        match action {
            Action::Head { status, headers } => self.feed(Input::Head {
                id,
                status,
                headers: &headers,
            }),
            Action::Body(data) => {
                self.echoed_auth |= contains(&data, AUTH.as_bytes());
                self.feed(Input::Body { id, data: &data });
            }
            Action::End => self.feed(Input::End { id }),
            Action::Failed(reason) => self.feed(Input::Failed {
                id,
                reason: reason.into(),
            }),
            Action::Sent(bytes) => self.feed(Input::Sent { id, bytes }),
            Action::Jump { by, silent } => self.jump(by, silent),
        }
        true
    }

    fn jump(&mut self, by: Duration, silent: bool) {
        self.clock.jump(by);
        if !silent {
            self.feed(Input::Timeout);
        }
    }

    /// An input for a request id the script chose (unknown, superseded or live).
    fn stray(&mut self, id: RequestId) {
        let empty = HeaderMap::new();
        match self.s.u8() % 5 {
            0 => self.feed(Input::Head {
                id,
                status: 200,
                headers: &empty,
            }),
            1 => self.feed(Input::Body { id, data: b"stray" }),
            2 => self.feed(Input::End { id }),
            3 => self.feed(Input::Failed {
                id,
                reason: "stray".into(),
            }),
            _ => {
                let bytes = self.s.u64();
                self.feed(Input::Sent { id, bytes });
            }
        }
    }

    fn expect(&self, input: &Input<'_>) -> Expect {
        if self.m.is_finished() {
            return Expect::Finished;
        }
        let id = match input {
            Input::MediaConn(_) | Input::Timeout => return Expect::Ok,
            Input::Head { id, .. }
            | Input::Body { id, .. }
            | Input::End { id }
            | Input::Failed { id, .. }
            | Input::Sent { id, .. } => *id,
            other => unreachable!("the driver makes no such input: {other:?}"),
        };
        if id.0 >= self.issued {
            return Expect::Unknown(id.0);
        }
        let Some(live) = self.live.as_ref().filter(|l| l.id == id) else {
            // Superseded: ignored.
            return Expect::Ok;
        };
        let wrong = if C::DROPS_AFTER_HEAD && live.head {
            Expect::OkOrUnexpected
        } else {
            Expect::Unexpected
        };
        match input {
            Input::Head { .. } if live.head => wrong,
            Input::Body { .. } | Input::End { .. } if !live.head => wrong,
            Input::Sent { bytes, .. } if self.cdn.sent_is_wrong(live.body, *bytes) => {
                if C::REFUSES_WRONG_SENT {
                    wrong
                } else {
                    Expect::OkOrUnexpected
                }
            }
            _ => Expect::Ok,
        }
    }

    /// Feeds one input, checks the answer, then keeps the driver's picture of the
    /// live request up to date.
    fn feed(&mut self, input: Input<'_>) {
        let want = self.expect(&input);
        let now = self.clock.now;
        let what = describe(&input);
        if trace() {
            eprintln!("{:>12?} -> {what}", now - self.clock.base);
        }
        let got = self.m.handle_input(now, input.clone());
        let fine = match (want, &got) {
            (Expect::Ok | Expect::OkOrUnexpected, Ok(())) => true,
            (Expect::Unexpected | Expect::OkOrUnexpected, Err(Misuse::Unexpected(_))) => true,
            (Expect::Finished, Err(Misuse::Finished)) => true,
            (Expect::Unknown(a), Err(Misuse::UnknownRequest(b))) => a == *b,
            _ => false,
        };
        assert!(fine, "{what}: expected {want:?}, got {got:?}");
        if got.is_err() {
            return;
        }
        let live_id = self.live.as_ref().map(|l| l.id);
        match input {
            Input::Head { id, .. } if Some(id) == live_id => {
                if let Some(l) = self.live.as_mut() {
                    l.head = true;
                }
            }
            Input::End { id } | Input::Failed { id, .. } if Some(id) == live_id => {
                self.live = None;
            }
            _ => {}
        }
        if let Input::Timeout = input {
            if self.live.as_ref().is_some_and(|l| now >= l.deadline) {
                self.live = None;
            }
            self.fired |= self.last_wait.is_some_and(|t| now >= t);
        } else {
            self.other_input = true;
        }
    }

    /// A finished machine stays finished: the same `Done` on every poll, `Finished` for
    /// every input.
    fn after_done(&mut self, outcome: &M::Outcome) {
        for i in 0..3 {
            self.clock.jump(Duration::from_secs(i));
            let later = self.clock.now;
            match poll(&mut self.m, later) {
                Out::Done(o) => assert_eq!(&o, outcome, "a later poll changed the outcome"),
                _ => panic!("a poll after Done gave something else than the same Done"),
            }
            let empty = HeaderMap::new();
            let input = match i {
                0 => Input::Timeout,
                1 => Input::Head {
                    id: RequestId(0),
                    status: 200,
                    headers: &empty,
                },
                _ => Input::MediaConn(conns::default_conn(&self.clock)),
            };
            let what = describe(&input);
            let got = self.m.handle_input(later, input);
            assert_eq!(got, Err(Misuse::Finished), "{what} after Done");
            assert!(self.m.is_finished());
        }
    }
}

fn describe(input: &Input<'_>) -> String {
    match input {
        Input::MediaConn(c) => format!("MediaConn({c:?})"),
        Input::Head {
            id,
            status,
            headers,
        } => format!("Head {{ id: {id}, status: {status}, headers: {headers:?} }}"),
        Input::Body { id, data } => format!("Body {{ id: {id}, {} bytes }}", data.len()),
        Input::End { id } => format!("End {{ id: {id} }}"),
        Input::Failed { id, .. } => format!("Failed {{ id: {id} }}"),
        Input::Sent { id, bytes } => format!("Sent {{ id: {id}, bytes: {bytes} }}"),
        Input::Timeout => "Timeout".into(),
        other => format!("{other:?}"),
    }
}

/// Checks that an outcome's error text never shows the auth token (unless the CDN itself
/// echoed it in a body).
pub(crate) fn check_no_auth<T: Debug, E: Debug + std::fmt::Display>(
    outcome: &Result<T, E>,
    echoed_auth: bool,
) {
    if let Err(e) = outcome {
        if !echoed_auth {
            assert!(
                !e.to_string().contains(AUTH),
                "the error shows the auth token: {e}"
            );
            assert!(
                !format!("{e:?}").contains(AUTH),
                "the error's Debug shows the auth token"
            );
        }
    }
}
