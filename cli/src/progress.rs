//! Progress on stderr (indicatif), only when stderr is a terminal: a bar as wide as the
//! terminal while bytes move, a line "retrying on HOST (attempt n/m): REASON" when an
//! attempt starts over, a spinner while the CDN answers a sent body, and the final
//! state drawn.
//!
//! The transports report progress only as `(done, total)`; the host and the reason of a
//! retry come from the exchanges, seen through an [`Observer`] ([`Bar::watch`]) that
//! passes everything on to the recorder when there is one.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use wamedia::{BodySpec, MediaConn, Request, RequestId};
use wamedia_driver::Observer;

/// One progress bar, silent when quiet or when stderr is not a terminal.
pub struct Bar {
    pb: Option<ProgressBar>,
    /// After the whole body went out, the CDN still has to answer: spin meanwhile.
    awaits_answer: bool,
    track: Arc<Mutex<Track>>,
}

/// What the bar and its observer know about the transfer so far.
#[derive(Default)]
struct Track {
    last_done: u64,
    spinning: bool,
    /// Bytes move with no known total.
    counting: bool,
    /// Attempts started (a request that is not the body following a probe).
    attempt: u32,
    max_attempts: u32,
    /// The attempt a "retrying" line was printed for.
    announced: u32,
    host: String,
    /// Why the last attempt failed, fit for a terminal.
    reason: Option<String>,
    /// Requests in flight: their host and whether they are resume probes.
    requests: BTreeMap<RequestId, (String, bool)>,
    /// The next request continues the attempt whose probe was answered.
    probe_answered: bool,
    /// Auth tokens seen, to keep out of reasons.
    secrets: Vec<String>,
}

fn style_bar() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{wide_bar}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {rate} ETA {left}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
    .with_key("rate", rate)
    .with_key("left", left)
}

fn style_spinner() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn style_unknown_length() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} {spinner} {binary_bytes} {rate}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", rate)
}

/// Bytes per second since the bar (or the attempt) started moving bytes: indicatif's
/// own estimate starts near zero and takes seconds to warm up.
fn per_sec(state: &ProgressState) -> f64 {
    let secs = state.elapsed().as_secs_f64();
    if secs > 0.0 {
        state.pos() as f64 / secs
    } else {
        0.0
    }
}

/// The rate in MiB/s whatever its size, so lines compare at a glance.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.1} MiB/s", per_sec(state) / (1024.0 * 1024.0));
}

/// The time left at the rate so far.
fn left(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let r = per_sec(state);
    let rest = state.len().unwrap_or(0).saturating_sub(state.pos()) as f64;
    if r <= 0.0 {
        let _ = write!(w, "?");
        return;
    }
    let s = (rest / r) as u64;
    let _ = if s >= 3600 {
        write!(w, "{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        write!(w, "{}m{:02}s", s / 60, s % 60)
    } else {
        write!(w, "{s}s")
    };
}

impl Bar {
    /// A bar labelled `label` (`encrypt`, `hash`, `download`), saying `first` until
    /// the first byte moves.
    pub fn new(quiet: bool, label: &'static str, first: &'static str) -> Bar {
        let pb = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            pb.set_style(style_spinner());
            pb.set_prefix(label);
            pb.set_message(first);
            pb
        });
        Bar {
            pb,
            awaits_answer: false,
            track: Arc::default(),
        }
    }

    /// The bar of an upload's sending: it spins while the CDN answers.
    pub fn sending(quiet: bool) -> Bar {
        Bar {
            awaits_answer: true,
            ..Bar::new(quiet, "upload", "connecting to the CDN")
        }
    }

    fn track(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `done` of `total` bytes moved. A `done` below the last one means a new attempt
    /// started over.
    pub fn update(&self, done: u64, total: Option<u64>) {
        let Some(pb) = &self.pb else { return };
        let mut t = self.track();
        if done < t.last_done {
            let attempt = t.attempt;
            announce(pb, &mut t, attempt);
            if t.spinning {
                t.spinning = false;
                pb.disable_steady_tick();
                pb.set_style(style_bar());
            }
            // The rate shown is this attempt's.
            pb.reset_elapsed();
        }
        t.last_done = done;
        match total {
            Some(len) if self.awaits_answer && len > 0 && done >= len => {
                if !t.spinning {
                    t.spinning = true;
                    pb.set_style(style_spinner());
                    pb.set_message(format!(
                        "{} sent; waiting for the CDN's answer",
                        indicatif::BinaryBytes(len)
                    ));
                    pb.enable_steady_tick(Duration::from_millis(100));
                }
            }
            Some(len) => {
                if pb.length() != Some(len) {
                    // The first bytes: time spent connecting is not part of the rate.
                    pb.reset_elapsed();
                    pb.set_style(style_bar());
                    pb.set_length(len);
                }
                if t.spinning {
                    t.spinning = false;
                    pb.disable_steady_tick();
                    pb.set_style(style_bar());
                }
            }
            None => {
                if pb.length().is_none() && done > 0 && !t.counting {
                    t.counting = true;
                    pb.reset_elapsed();
                    pb.set_style(style_unknown_length());
                }
            }
        }
        pb.set_position(done);
    }

    /// Draws the final state: full after a success, as it stood after a failure.
    pub fn finish(&self, ok: bool) {
        let Some(pb) = &self.pb else { return };
        pb.disable_steady_tick();
        if ok {
            if let Some(len) = pb.length() {
                pb.set_style(style_bar());
                pb.set_position(len);
            }
            pb.finish();
        } else {
            pb.abandon();
        }
    }

    /// An observer for the transfer this bar shows (`max_attempts`: the retry policy's),
    /// passing every exchange on to `inner` (the recorder) when given.
    pub fn watch<'r>(&self, max_attempts: u32, inner: Option<&'r mut dyn Observer>) -> Watch<'r> {
        self.track().max_attempts = max_attempts;
        Watch {
            pb: self.pb.clone(),
            track: self.track.clone(),
            inner,
        }
    }
}

/// Prints "retrying on HOST (attempt n/m): REASON" once per attempt.
fn announce(pb: &ProgressBar, t: &mut Track, attempt: u32) {
    if attempt <= t.announced || attempt < 2 {
        return;
    }
    t.announced = attempt;
    let reason = t
        .reason
        .clone()
        .unwrap_or_else(|| "the last attempt failed".into());
    pb.println(format!(
        "wamedia: retrying on {} (attempt {attempt}/{}): {reason}",
        t.host, t.max_attempts
    ));
}

/// Sees the exchanges of one transfer for its [`Bar`]; see [`Bar::watch`].
pub struct Watch<'r> {
    pb: Option<ProgressBar>,
    track: Arc<Mutex<Track>>,
    inner: Option<&'r mut dyn Observer>,
}

impl Watch<'_> {
    fn track(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Text from outside (a host, a transport's error) made fit for one terminal line:
/// auth tokens out, control characters escaped, at most 200 characters.
fn fit(text: &str, secrets: &[String]) -> String {
    let mut s = text.to_owned();
    for secret in secrets {
        s = s.replace(secret.as_str(), "<redacted>");
    }
    let s = wamedia::escape(s.trim());
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

impl Observer for Watch<'_> {
    fn media_conn(&mut self, conn: &MediaConn, force: bool) {
        {
            let mut t = self.track();
            // Too short to be worth a false match ("a" in tests).
            if conn.auth.len() >= 6 && !t.secrets.contains(&conn.auth) {
                t.secrets.push(conn.auth.clone());
                t.secrets
                    .push(wamedia::form_encode(&conn.auth).replace('+', "%20"));
                t.secrets.push(wamedia::form_encode(&conn.auth));
            }
        }
        if let Some(o) = self.inner.as_deref_mut() {
            o.media_conn(conn, force);
        }
    }

    fn request(&mut self, req: &Request) {
        {
            let mut t = self.track();
            let probe = req.body == BodySpec::Empty && req.url.contains("resume=1");
            let host = fit(&req.host, &t.secrets);
            t.requests.insert(req.id, (host.clone(), probe));
            t.host = host;
            if std::mem::take(&mut t.probe_answered) && !probe {
                // The body after an answered probe: the same attempt.
            } else {
                t.attempt = t.attempt.saturating_add(1);
                let attempt = t.attempt;
                if let Some(pb) = &self.pb {
                    announce(pb, &mut t, attempt);
                }
            }
        }
        if let Some(o) = self.inner.as_deref_mut() {
            o.request(req);
        }
    }

    fn response_head(&mut self, id: RequestId, status: u16, headers: &http::HeaderMap) {
        {
            let mut t = self.track();
            let probe = t.requests.get(&id).is_some_and(|r| r.1);
            // Any answer to a resume probe but a server error (404: "not held") is
            // followed by the body in the same attempt.
            t.probe_answered = probe && status < 500;
            if !(200..300).contains(&status) && !t.probe_answered {
                t.reason = Some(format!("HTTP {status}"));
            }
        }
        if let Some(o) = self.inner.as_deref_mut() {
            o.response_head(id, status, headers);
        }
    }

    fn response_body(&mut self, id: RequestId, data: &[u8]) {
        if let Some(o) = self.inner.as_deref_mut() {
            o.response_body(id, data);
        }
    }

    fn response_end(&mut self, id: RequestId) {
        self.track().requests.remove(&id);
        if let Some(o) = self.inner.as_deref_mut() {
            o.response_end(id);
        }
    }

    fn failed(&mut self, id: RequestId, reason: &str) {
        {
            let mut t = self.track();
            t.requests.remove(&id);
            t.probe_answered = false;
            let r = fit(reason, &t.secrets);
            t.reason = Some(r);
        }
        if let Some(o) = self.inner.as_deref_mut() {
            o.failed(id, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_tokens_and_control_characters() {
        let s = fit(
            "reset by peer at http://h/x?auth=s3cret-token\x1b[2J\n",
            &["s3cret-token".into()],
        );
        assert_eq!(s, "reset by peer at http://h/x?auth=<redacted>\\u{1b}[2J");
        assert_eq!(fit(&"x".repeat(500), &[]).chars().count(), 201);
    }
}
