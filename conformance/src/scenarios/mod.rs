//! One table of loopback fault scenarios, run by every transport from this one list:
//! the fake CDN with its fault script (`cdn.rs`), and small raw peers that misbehave
//! (`faults.rs`): dropped connections, bodies cut mid-way, 401 and forced renewal, Range
//! resume, cancellation, slow and endless bodies, a 100 MB JSON answer, redirects,
//! close-delimited bodies, escapes, ranged downloads, partial files.
//!
//! A transport's test names its adapter, its runtime and how it runs a future:
//!
//! ```no_run
//! # fn demo<H: wamedia_driver::Http>() {
//! use wamedia_conformance::scenarios::{run_all, Limits};
//! use wamedia_conformance::CallingThread;
//! run_all::<H, wamedia_driver::Blocking>(&CallingThread, Limits::default().blocking());
//! # }
//! ```
//!
//! Every server binds 127.0.0.1 on an ephemeral port and stops when dropped; every
//! transfer runs under deadlines ([`quick_options`]); no check depends on how fast the
//! machine is.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wamedia_driver::{Client, Http, MediaConnSource, Options, Runtime};

pub use crate::sockets::Executor;

/// Fails the scenario with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod cdn;
mod faults;

/// What a transport cannot do, as its own documentation says: stated by its test, so the
/// table expects that outcome of that transport only.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Limits {
    /// A body delimited only by the connection's end is refused with a reason naming it
    /// (surf's async-h1 cannot read one).
    pub refuses_close_delimited: bool,
    /// A blocking facade: a call runs to its end on the calling thread, so its future is
    /// never dropped half-way (cancellation is the token's).
    pub blocking: bool,
    /// Every request opens its own connection (surf's async-h1 backends: their pool would
    /// reuse a connection whose exchange was abandoned half-way).
    pub no_connection_reuse: bool,
}

impl Limits {
    /// With [`refuses_close_delimited`](Self::refuses_close_delimited).
    pub fn refusing_close_delimited(mut self) -> Self {
        self.refuses_close_delimited = true;
        self
    }

    /// With [`no_connection_reuse`](Self::no_connection_reuse).
    pub fn without_connection_reuse(mut self) -> Self {
        self.no_connection_reuse = true;
        self
    }

    /// With [`blocking`](Self::blocking).
    pub fn blocking(mut self) -> Self {
        self.blocking = true;
        self
    }
}

/// What a scenario gets: a client factory, the executor, the transport's limits.
pub struct Ctx<'a, H, R, E> {
    exec: &'a E,
    limits: Limits,
    _types: PhantomData<fn() -> (H, R)>,
}

impl<H: Http, R: Runtime + Default, E: Executor> Ctx<'_, H, R, E> {
    /// Runs `f` on the transport's executor.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.exec.block_on(f)
    }

    /// The transport's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A client with [`quick_options`] asking `source`.
    pub fn client(&self, source: impl MediaConnSource) -> Client<H, R> {
        self.client_with(source, |_| {})
    }

    /// A client with [`quick_options`] changed by `tweak`.
    pub fn client_with(
        &self,
        source: impl MediaConnSource,
        tweak: impl FnOnce(&mut Options),
    ) -> Client<H, R> {
        let mut o = quick_options();
        tweak(&mut o);
        Client::with_options(source, o).expect("the adapter takes the options")
    }
}

/// Default options with millisecond backoff, and no transfer longer than two minutes
/// (the bound on a scenario that goes wrong).
pub fn quick_options() -> Options {
    let mut o = Options::default();
    for r in [&mut o.upload.retry, &mut o.download.retry] {
        r.backoff_base = Duration::from_millis(10);
        r.total_timeout = r.total_timeout.min(Duration::from_secs(120));
    }
    o
}

/// What a scenario returns: `Err` says what went wrong.
pub type Check = Result<(), String>;

/// One named case of the table.
pub struct Scenario<H, R, E> {
    /// What it shows, as a sentence.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(&Ctx<'_, H, R, E>) -> Check,
}

impl<H, R, E> Debug for Scenario<H, R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The whole table, fake-CDN scenarios first.
pub fn table<H: Http, R: Runtime + Default, E: Executor>() -> Vec<Scenario<H, R, E>> {
    let mut t = cdn::table();
    t.extend(faults::table());
    t
}

/// Runs every scenario of the table over `Client<H, R>` on `exec`.
///
/// # Panics
/// After the last scenario, naming every one that failed (a scenario that panics fails).
pub fn run_all<H: Http, R: Runtime + Default>(exec: &impl Executor, limits: Limits) {
    let ctx = Ctx::<H, R, _> {
        exec,
        limits,
        _types: PhantomData,
    };
    let table = table::<H, R, _>();
    let mut failures = Vec::new();
    for s in &table {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| (s.run)(&ctx)));
        let took = started.elapsed().as_millis();
        match outcome {
            Ok(Ok(())) => println!("ok   {} ({took} ms)", s.name),
            Ok(Err(e)) => failures.push(format!("{}: {e}", s.name)),
            Err(p) => {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: panicked: {why}", s.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

/// `r`'s error as a message naming `what`.
fn ok<T, X: Display + Debug>(r: Result<T, X>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e} ({e:?})"))
}

/// Deterministic bytes that do not repeat within a chunk.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A port nothing listens on: connecting to it is refused.
fn dead_host() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("an address");
    drop(l);
    format!("http://{addr}")
}

/// Polls `fut` until it ends, or until `stop` is set (looked at after every poll) and
/// then drops it: a dropped future is how an async caller cancels.
async fn until<F: Future>(fut: F, stop: &AtomicBool) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if stop.load(Ordering::SeqCst) {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs all of `futs` at once on the one task, their outputs in order.
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(out.drain(..).flatten().collect())
        }
    })
    .await
}
