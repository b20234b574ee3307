//! The drive loop, written once: the machine decides, this moves bytes, over any
//! [`Http`] and [`Runtime`].

use std::future::Future;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::transfer::{feed, Transfer};
use wamedia::Machine;
use wamedia::{BodySpec, Input, Output, Request, RequestId};

use crate::Cancel;

use crate::body::{Plaintext, Progress};
use crate::client::Inner;
use crate::{Error, Http, Outgoing, ResponseBody, Runtime};

/// A cancellation is noticed within this long, even while a peer is silent.
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Plaintext of a download written this many bytes at a time to a file.
const FILE_BATCH: usize = 1 << 20;

/// Where a download's plaintext goes.
pub(crate) enum Sink<'a> {
    /// Nowhere (uploads, deletes).
    None,
    /// A writer, written on the driving task (it must not block for long).
    Writer(&'a mut (dyn Write + Send)),
    /// A file, written in batches on the runtime's blocking threads.
    File(FileSink),
}

/// A file written in batches off the executor.
pub(crate) struct FileSink {
    file: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl FileSink {
    pub(crate) fn new(file: std::fs::File) -> Self {
        FileSink {
            file: Some(file),
            buf: Vec::new(),
        }
    }

    async fn write<R: Runtime>(&mut self, rt: &R, data: &[u8], force: bool) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() < FILE_BATCH && !force {
            return Ok(());
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("an earlier write failed"))?;
        let mut buf = std::mem::take(&mut self.buf);
        let (file, buf, r) = rt
            .spawn_blocking(move || {
                let r = file.write_all(&buf);
                buf.clear();
                (file, buf, r)
            })
            .await;
        r?;
        self.file = Some(file);
        self.buf = buf;
        Ok(())
    }

    /// Writes what is held.
    pub(crate) async fn flush<R: Runtime>(&mut self, rt: &R) -> io::Result<()> {
        self.write(rt, &[], true).await
    }
}

impl Sink<'_> {
    async fn write<R: Runtime>(&mut self, rt: &R, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::None => Ok(()),
            Sink::Writer(w) => w.write_all(data),
            Sink::File(f) => f.write(rt, data, false).await,
        }
    }

    async fn flush<R: Runtime>(&mut self, rt: &R) -> io::Result<()> {
        match self {
            Sink::None => Ok(()),
            Sink::Writer(w) => w.flush(),
            Sink::File(f) => f.flush(rt).await,
        }
    }
}

/// Why waiting on the network stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Deadline,
    Idle,
    /// Nothing moved within the connect timeout (an adapter without one of its own).
    Connect(Duration),
    Cancelled,
}

impl Stop {
    fn reason(self, idle: Duration, what: &str) -> String {
        match self {
            Stop::Deadline => format!("timed out: the {what} passed its deadline"),
            Stop::Idle => format!("timed out: nothing moved for {} ms", idle.as_millis()),
            Stop::Connect(d) => format!(
                "timed out: no connection made or answer begun within {} ms",
                d.as_millis()
            ),
            Stop::Cancelled => "cancelled".into(),
        }
    }
}

/// `d` from now; a year for a duration beyond what the clock holds.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// The longest silences a wait allows: `first` before anything moved, `idle` after.
#[derive(Clone, Copy, Debug)]
struct Quiet {
    idle: Duration,
    first: Duration,
}

/// Awaits `fut` until the request's `deadline`, at most `idle` without movement (bytes
/// of the body taken count as movement), and until `cancel`.
async fn watched<T, R: Runtime>(
    rt: &R,
    fut: impl Future<Output = T>,
    deadline: Instant,
    quiet: Quiet,
    cancel: &Cancel,
    progress: Option<&Progress>,
    mut moved: impl FnMut(u64),
) -> Result<T, Stop> {
    let Quiet { idle, first } = quiet;
    if cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    let mut fut = std::pin::pin!(fut);
    let mut deadline_timer = Box::pin(rt.sleep_until(deadline));
    // Before anything moved, `first` (the connect timeout, where the adapter has none).
    let mut idle_timer = Box::pin(rt.sleep_until(later(first.min(idle))));
    let mut tick = Box::pin(rt.sleep_until(later(CANCEL_POLL)));
    let mut last = 0;
    std::future::poll_fn(|cx| {
        if let Some(p) = progress {
            p.waker.register(cx.waker());
            let n = p.sent.load(Ordering::Relaxed);
            if n != last {
                last = n;
                moved(n);
                idle_timer = Box::pin(rt.sleep_until(later(idle)));
            }
        }
        if cancel.is_cancelled() {
            return Poll::Ready(Err(Stop::Cancelled));
        }
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if deadline_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Stop::Deadline));
        }
        if idle_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(if last == 0 && first < idle {
                Stop::Connect(first)
            } else {
                Stop::Idle
            }));
        }
        while tick.as_mut().poll(cx).is_ready() {
            if cancel.is_cancelled() {
                return Poll::Ready(Err(Stop::Cancelled));
            }
            tick = Box::pin(rt.sleep_until(later(CANCEL_POLL)));
        }
        Poll::Pending
    })
    .await
}

/// Waits until `t` on the runtime's timer, in slices so a cancellation is noticed.
async fn sleep_until<R: Runtime>(rt: &R, t: Instant, cancel: &Cancel) -> Result<(), Error> {
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let now = Instant::now();
        if t <= now {
            return Ok(());
        }
        rt.sleep_until(t.min(later(CANCEL_POLL))).await;
    }
}

/// Runs machine `m` to its outcome, then writes out what the sink still holds — also
/// when the transfer failed or was cancelled, so a partial file keeps every byte that
/// arrived and the next run resumes from there.
pub(crate) async fn drive<M: Machine + Send + 'static, H: Http, R: Runtime>(
    inner: &Inner<H, R>,
    m: M,
    transfer: &mut Transfer<'_>,
    upload: Option<&Plaintext>,
    sink: &mut Sink<'_>,
) -> Result<M::Outcome, Error> {
    // On the heap: a machine is kilobytes, and it travels to blocking threads and back.
    let run = Box::pin(run(inner, Box::new(m), transfer, upload, sink)).await;
    let flushed = sink.flush(&inner.rt).await;
    let outcome = run?;
    flushed?;
    Ok(outcome)
}

/// Answer chunks at least this long are fed to the machine on the runtime's blocking
/// threads: a download decrypts and hashes them there (a 64 KiB chunk is some 100 µs of
/// AES and SHA-256), never on an executor thread.
const OFFLOAD_FROM: usize = 8 * 1024;

/// The loop itself.
async fn run<M: Machine + Send + 'static, H: Http, R: Runtime>(
    inner: &Inner<H, R>,
    mut m: Box<M>,
    transfer: &mut Transfer<'_>,
    upload: Option<&Plaintext>,
    sink: &mut Sink<'_>,
) -> Result<M::Outcome, Error> {
    let rt = &inner.rt;
    let idle = inner.opts.idle_timeout;
    let cancel = transfer.cancel_handle().clone();
    let mut current: Option<(RequestId, H::Body, Instant)> = None;
    let mut seen = 0;
    // Answers to uploads are a few hundred bytes of JSON; media bodies want room.
    // Allocated on the first answer, so a thousand waiting uploads cost nothing here.
    let read_size = if upload.is_some() {
        4 * 1024
    } else {
        64 * 1024
    };
    let mut buf: Vec<u8> = Vec::new();
    let outcome = loop {
        let now = Instant::now();
        // A large answer chunk, fed to the machine off the executor after this match.
        let mut offload: Option<(RequestId, Vec<u8>)> = None;
        match m.poll_output(now) {
            Output::Done(o) => break o,
            Output::Plaintext(p) | Output::Verified(p) => sink.write(rt, p).await?,
            Output::Progress { done, total } => transfer.report(done, total),
            Output::NeedMediaConn { force } => {
                let (c, generation) = inner.conns.get(force, seen).await?;
                seen = generation;
                if let Some(o) = transfer.observer() {
                    o.media_conn(&c, force);
                }
                m.handle_input(Instant::now(), Input::MediaConn(c))?;
            }
            Output::Transmit(req) => {
                if cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let id = req.id;
                let deadline = req.deadline;
                if let Some(o) = transfer.observer() {
                    o.request(&req);
                }
                let (result, sent) = send(inner, &req, upload, transfer, &cancel).await;
                if sent > 0 {
                    // The machine needs to know what moved (to resume on the same host).
                    m.handle_input(Instant::now(), Input::Sent { id, bytes: sent })?;
                }
                match result {
                    Ok(resp) => {
                        let input = Input::Head {
                            id,
                            status: resp.status,
                            headers: &resp.headers,
                        };
                        feed(&mut *m, transfer, input)?;
                        current = Some((id, resp.body, deadline));
                    }
                    Err(Stop2::Cancelled) => return Err(Error::Cancelled),
                    Err(Stop2::Failed(reason)) => {
                        feed(&mut *m, transfer, Input::Failed { id, reason })?
                    }
                }
            }
            Output::Wait(t) => match current.as_mut() {
                Some((id, body, deadline)) => {
                    let id = *id;
                    buf.resize(read_size, 0);
                    let next = watched(
                        rt,
                        body.read(&mut buf),
                        *deadline,
                        Quiet { idle, first: idle },
                        &cancel,
                        None,
                        |_| {},
                    )
                    .await;
                    let input = match next {
                        Ok(Ok(0)) => Input::End { id },
                        Ok(Ok(n)) => Input::Body {
                            id,
                            data: buf.get(..n).unwrap_or_default(),
                        },
                        Ok(Err(e)) => Input::Failed {
                            id,
                            reason: e.to_string(),
                        },
                        Err(Stop::Cancelled) => return Err(Error::Cancelled),
                        Err(stop) => Input::Failed {
                            id,
                            reason: stop.reason(idle, "answer"),
                        },
                    };
                    match input {
                        Input::Body { id, data } if data.len() >= OFFLOAD_FROM => {
                            if let Some(o) = transfer.observer() {
                                o.response_body(id, data);
                            }
                            offload = Some((id, data.to_vec()));
                        }
                        Input::Body { .. } => feed(&mut *m, transfer, input)?,
                        _ => {
                            current = None;
                            feed(&mut *m, transfer, input)?;
                        }
                    }
                }
                None => {
                    sleep_until(rt, t, &cancel).await?;
                    m.handle_input(Instant::now(), Input::Timeout)?;
                }
            },
            _ => {
                return Err(Error::Misuse(wamedia::Misuse::Unexpected(
                    "an output this driver does not know",
                )))
            }
        }
        if let Some((id, data)) = offload {
            let (back, fed) = rt
                .spawn_blocking(move || {
                    let fed = m.handle_input(Instant::now(), Input::Body { id, data: &data });
                    (m, fed)
                })
                .await;
            m = back;
            fed?;
        }
    };
    Ok(outcome)
}

/// Why a request got no answer head.
enum Stop2 {
    Cancelled,
    Failed(String),
}

/// Sends `req`; its answer head (or why none came) and how many body bytes were handed
/// to the connection.
async fn send<H: Http, R: Runtime>(
    inner: &Inner<H, R>,
    req: &Request,
    upload: Option<&Plaintext>,
    transfer: &mut Transfer<'_>,
    cancel: &Cancel,
) -> (Result<crate::Incoming<H::Body>, Stop2>, u64) {
    let idle = inner.opts.idle_timeout;
    let (body, span) = match (req.body, upload) {
        (BodySpec::UploadBody { from, to }, Some(p)) => (
            Some(p.attempt(from, to.saturating_sub(from), cancel.clone())),
            Some((from, to)),
        ),
        _ => (None, None),
    };
    let progress = body.as_ref().map(|b| b.progress());
    let out = Outgoing {
        method: req.method.clone(),
        url: req.url.clone(),
        headers: req.headers.clone(),
        body,
        deadline: req.deadline,
        idle_timeout: idle,
    };
    let first = if inner.http.has_connect_timeout() {
        idle
    } else {
        inner.opts.connect_timeout
    };
    let r = watched(
        &inner.rt,
        inner.http.send(out),
        req.deadline,
        Quiet { idle, first },
        cancel,
        progress.as_deref(),
        |n| {
            if let Some((from, to)) = span {
                transfer.report(from.saturating_add(n), Some(to));
            }
        },
    )
    .await;
    let sent = progress.map_or(0, |p| p.sent.load(Ordering::Relaxed));
    if let (Some((from, to)), true) = (span, sent > 0) {
        transfer.report(from.saturating_add(sent), Some(to));
    }
    let r = match r {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(_)) | Err(Stop::Cancelled) if cancel.is_cancelled() => Err(Stop2::Cancelled),
        Ok(Err(reason)) => Err(Stop2::Failed(reason.replace(&req.url, &req.redacted_url()))),
        Err(stop) => Err(Stop2::Failed(stop.reason(idle, "request"))),
    };
    (r, sent)
}
