//! Replaying cassettes through the core's public API, and authoring them from a script.
//!
//! One drive loop serves both: [`replay`] checks every request the machine makes against
//! the cassette (printing the first difference side by side) and feeds back the recorded
//! answers; [`author`] asks a scripted CDN instead and writes down what happened.

use std::io::{Cursor, Read};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wamedia::Machine;
use wamedia::{
    b64, Download, DownloadOptions, DownloadSpec, Expected, Input, MediaId, MediaKey, MediaType,
    Output, Request, Upload, UploadOptions,
};
use wamedia_driver::{PreparedUpload, UploadJob};

use crate::cassette::*;

/// Everything a cassette's inputs expand to.
pub struct Scenario {
    /// The media type.
    pub media_type: MediaType,
    /// The media key (`None` for unencrypted media).
    pub media_key: Option<MediaKey>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The body of the plaintext as the CDN holds it (what downloads serve): encrypted,
    /// or the plaintext itself for unencrypted media.
    pub media_body: Vec<u8>,
    /// Uploads: the prepared upload.
    pub prepared: PreparedUpload,
    /// Downloads: the spec.
    pub download: Option<DownloadSpec>,
    /// Deletes: the spec (from the download's source and expected hash).
    pub delete: Option<wamedia::DeleteSpec>,
    /// Upload options.
    pub upload_opts: UploadOptions,
    /// Download options.
    pub download_opts: DownloadOptions,
    /// Downloads: the wall-clock time at the start.
    pub wall: SystemTime,
}

fn b64_32(s: &str, what: &str) -> Result<[u8; 32], String> {
    b64::decode_sha256(s).map_err(|e| format!("{what}: {e}"))
}

impl Scenario {
    /// Expands a cassette's inputs; `dir` resolves plaintext files.
    ///
    /// # Errors
    /// A message naming the bad input.
    pub fn new(c: &CassetteInput, dir: &Path) -> Result<Scenario, String> {
        let media_type: MediaType = c.media_type.parse().map_err(|e| format!("{e}"))?;
        let media_key: Option<MediaKey> = match &c.media_key {
            Some(k) => Some(k.parse().map_err(|e| format!("{e}"))?),
            None => None,
        };
        let plaintext = c.plaintext.bytes(dir)?;
        let media_id = MediaId::new(c.media_id.unwrap_or(DEFAULT_MEDIA_ID))
            .ok_or("media_id must lie in 1..2^53")?;
        let mut job = UploadJob::new(media_type.clone()).with_media_id(media_id);
        if let Some(k) = &media_key {
            job = job.with_media_key(k.clone());
        }
        if c.newsletter {
            job = job.newsletter();
        }
        let mut prepared = job
            .prepare(Cursor::new(&plaintext))
            .map_err(|e| e.to_string())?;
        // A fixed test key is not a reused one unless the cassette says so; no clock.
        prepared.spec.key_reused = c.key_reused;
        prepared.spec.media_key_timestamp = None;
        let (media_body, enc_sha) = match &media_key {
            Some(k) if !c.newsletter => {
                let (body, meta) = wamedia::encrypt(k.clone(), &media_type, &plaintext)
                    .map_err(|e| e.to_string())?;
                (body, meta.file_enc_sha256)
            }
            _ => {
                let sha: [u8; 32] = Sha256::digest(&plaintext).into();
                (plaintext.clone(), sha)
            }
        };
        let file_sha: [u8; 32] = Sha256::digest(&plaintext).into();
        let o = &c.options;
        let mut upload_opts = UploadOptions::default();
        let mut download_opts = DownloadOptions::default();
        for retry in [&mut upload_opts.retry, &mut download_opts.retry] {
            if let Some(v) = o.max_rounds {
                retry.max_rounds = v;
            }
            if let Some(v) = o.max_attempts {
                retry.max_attempts = v;
            }
            if let Some(v) = o.backoff_base_ms {
                retry.backoff_base = Duration::from_millis(v);
            }
            if let Some(v) = o.total_timeout_ms {
                retry.total_timeout = Duration::from_millis(v);
            }
            if let Some(v) = o.request_timeout_ms {
                retry.request_timeout = Duration::from_millis(v);
            }
        }
        if let Some(v) = o.resume_threshold {
            upload_opts.resume_threshold = v;
        }
        if let Some(v) = o.resume {
            upload_opts.resume = v;
        }
        if let Some(v) = o.max_body_len {
            download_opts.max_body_len = v;
        }
        if let Some(v) = o.server_thumb_gen {
            upload_opts.server_thumb_gen = v;
        }
        if let Some(v) = o.trust_url {
            download_opts.trust_url = v;
        }
        let download = match &c.source {
            None => None,
            Some(src) => {
                let e = c.expected.clone().unwrap_or_default();
                let pick = |v: &Option<String>, truth: [u8; 32], what| match v.as_deref() {
                    None => Ok(None),
                    Some("auto") => Ok(Some(truth)),
                    Some(s) => b64_32(s, what).map(Some),
                };
                Some(DownloadSpec {
                    media_type: media_type.clone(),
                    media_key: if c.newsletter {
                        None
                    } else {
                        media_key.clone()
                    },
                    source: match src {
                        SourceSpec::DirectPath(p) => wamedia::Source::DirectPath(p.clone()),
                        SourceSpec::Url(u) => wamedia::Source::Url(u.clone()),
                    },
                    expected: Expected {
                        file_enc_sha256: pick(&e.file_enc_sha256, enc_sha, "file_enc_sha256")?,
                        file_sha256: pick(&e.file_sha256, file_sha, "file_sha256")?,
                        file_length: e.file_length,
                    },
                    streaming_sidecar: None,
                })
            }
        };
        let delete = match &download {
            Some(DownloadSpec {
                source: wamedia::Source::DirectPath(p),
                expected,
                ..
            }) => expected.file_enc_sha256.map(|h| wamedia::DeleteSpec {
                direct_path: p.clone(),
                file_enc_sha256: h,
                handle: None,
                companion_secret: None,
            }),
            _ => None,
        };
        Ok(Scenario {
            media_type,
            media_key,
            plaintext,
            media_body,
            prepared,
            download,
            upload_opts,
            download_opts,
            wall: UNIX_EPOCH + Duration::from_secs(c.wall_unix.unwrap_or(DEFAULT_WALL_UNIX)),
            delete,
        })
    }

    /// The bytes a request's body carries (uploads), regenerated from the plaintext.
    pub fn request_body(&self, req: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        if let wamedia::BodySpec::UploadBody { from, to } = req.body {
            let mut r = self
                .prepared
                .body_reader(Cursor::new(&self.plaintext), from)
                .expect("offsets come from the machine")
                .take(to.saturating_sub(from));
            r.read_to_end(&mut out).expect("reading memory");
        }
        out
    }
}

/// The request as a cassette records it.
pub fn request_spec(req: &Request, body: &[u8], at: Duration) -> RequestSpec {
    RequestSpec {
        at_ms: at.as_millis() as u64,
        method: req.method.to_string(),
        url: req.url.clone(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body_len: body.len() as u64,
        body_sha256: (!body.is_empty()).then(|| b64::std(&Sha256::digest(body))),
    }
}

/// What to answer a request with.
pub enum Answer {
    /// A whole answer.
    Response(ResponseSpec),
    /// Head and part of the body, then a drop.
    Cut(ResponseSpec),
    /// A transport failure.
    Failure(String),
    /// No answer.
    Silence,
}

/// The other side of the drive loop.
pub trait Script {
    /// A media connection for the machine.
    ///
    /// # Errors
    /// A mismatch with the recording.
    fn media_conn(&mut self, force: bool, at: Duration) -> Result<ConnSpec, String>;
    /// The answer to `req`.
    ///
    /// # Errors
    /// A mismatch with the recording.
    fn answer(&mut self, req: &RequestSpec) -> Result<Answer, String>;
}

/// What a drive produced.
pub struct Drive {
    /// The outcome, in cassette form.
    pub outcome: Outcome,
    /// Plaintext released (downloads).
    pub plaintext: Vec<u8>,
    /// The events as they happened.
    pub events: Vec<Event>,
}

fn to_headers(list: &[(String, String)]) -> Result<http::HeaderMap, String> {
    let mut h = http::HeaderMap::new();
    for (k, v) in list {
        let name =
            http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
        let value = http::HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        h.append(name, value);
    }
    Ok(h)
}

pub use crate::cassette::error_kind;

/// Runs the machine of `kind` against `script` on a virtual clock.
///
/// # Errors
/// The script's mismatches, or a machine that misbehaves.
pub fn drive(kind: Kind, sc: &Scenario, script: &mut dyn Script) -> Result<Drive, String> {
    let t0 = Instant::now();
    match kind {
        Kind::Upload => {
            let mut m = Upload::new(sc.prepared.spec.clone(), sc.upload_opts.clone(), t0);
            let (res, d) = drive_machine(&mut m, t0, sc, script)?;
            let outcome = match res {
                Ok(r) => {
                    let v = r.to_json();
                    Outcome::Ok(
                        v.as_object()
                            .expect("an object")
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                }
                Err(e) => Outcome::Error {
                    kind: error_kind(&format!("{e:?}")),
                    contains: Some(e.to_string()),
                },
            };
            Ok(Drive { outcome, ..d })
        }
        Kind::Delete => {
            let spec = sc.delete.clone().ok_or(
                "a delete cassette needs input.source (a direct path) and expected.file_enc_sha256",
            )?;
            let mut m = wamedia::Delete::new(spec, sc.upload_opts.retry.clone(), t0);
            let (res, d) = drive_machine(&mut m, t0, sc, script)?;
            let outcome = match res {
                Ok(r) => Outcome::Ok(vec![
                    ("host".into(), r.host.into()),
                    ("status".into(), r.status.into()),
                ]),
                Err(e) => Outcome::Error {
                    kind: error_kind(&format!("{e:?}")),
                    contains: Some(e.to_string()),
                },
            };
            Ok(Drive { outcome, ..d })
        }
        Kind::Download => {
            let spec = sc
                .download
                .clone()
                .ok_or("a download cassette needs input.source")?;
            let mut m = Download::new(spec, sc.download_opts.clone(), t0, sc.wall);
            let (res, d) = drive_machine(&mut m, t0, sc, script)?;
            let outcome = match res {
                Ok(r) => Outcome::Ok(vec![
                    ("file_length".into(), r.verified.file_length.into()),
                    (
                        "file_sha256".into(),
                        b64::std(&r.verified.file_sha256).into(),
                    ),
                    ("host".into(), r.host.into()),
                ]),
                Err(e) => Outcome::Error {
                    kind: error_kind(&format!("{e:?}")),
                    contains: Some(e.to_string()),
                },
            };
            Ok(Drive { outcome, ..d })
        }
    }
}

fn drive_machine<M: Machine<Outcome = Result<T, E>>, T, E>(
    m: &mut M,
    t0: Instant,
    sc: &Scenario,
    script: &mut dyn Script,
) -> Result<(Result<T, E>, Drive), String> {
    let mut now = t0;
    let mut events = Vec::new();
    let mut plaintext = Vec::new();
    for _ in 0..100_000 {
        match m.poll_output(now) {
            Output::Done(o) => {
                return Ok((
                    o,
                    Drive {
                        outcome: Outcome::Ok(vec![]),
                        plaintext,
                        events,
                    },
                ))
            }
            Output::Plaintext(p) | Output::Verified(p) => plaintext.extend_from_slice(p),
            Output::Progress { .. } => {}
            Output::Wait(t) => {
                now = now.max(t);
                m.handle_input(now, Input::Timeout)
                    .map_err(|e| e.to_string())?;
            }
            Output::NeedMediaConn { force } => {
                let spec = script.media_conn(force, now - t0)?;
                let c = spec.to_media_conn(t0 + Duration::from_millis(spec.at_ms));
                events.push(Event::MediaConn {
                    media_conn: spec,
                    force,
                });
                m.handle_input(now, Input::MediaConn(c))
                    .map_err(|e| e.to_string())?;
            }
            Output::Transmit(req) => {
                let body = sc.request_body(&req);
                let spec = request_spec(&req, &body, now - t0);
                let answer = script.answer(&spec)?;
                let id = req.id;
                let mis = |e: wamedia::Misuse| e.to_string();
                match &answer {
                    Answer::Response(r) | Answer::Cut(r) => {
                        // An answer comes after the whole request body went out, as
                        // every transport reports it.
                        if !body.is_empty() {
                            m.handle_input(
                                now,
                                Input::Sent {
                                    id,
                                    bytes: body.len() as u64,
                                },
                            )
                            .map_err(mis)?;
                        }
                        let bytes = r.body.bytes(&sc.media_body)?;
                        let headers = to_headers(&r.headers)?;
                        m.handle_input(
                            now,
                            Input::Head {
                                id,
                                status: r.status,
                                headers: &headers,
                            },
                        )
                        .map_err(mis)?;
                        if !m.is_finished() {
                            m.handle_input(now, Input::Body { id, data: &bytes })
                                .map_err(mis)?;
                        }
                        if !m.is_finished() {
                            let last = match answer {
                                Answer::Cut(_) => Input::Failed {
                                    id,
                                    reason: "connection reset".into(),
                                },
                                _ => Input::End { id },
                            };
                            m.handle_input(now, last).map_err(mis)?;
                        }
                    }
                    Answer::Failure(reason) => {
                        m.handle_input(
                            now,
                            Input::Failed {
                                id,
                                reason: reason.clone(),
                            },
                        )
                        .map_err(mis)?;
                    }
                    Answer::Silence => {}
                }
                events.push(match answer {
                    Answer::Response(r) => Event::Response {
                        request: spec,
                        response: r,
                    },
                    Answer::Cut(r) => Event::Cut {
                        request: spec,
                        cut: r,
                    },
                    Answer::Failure(f) => Event::Failure {
                        request: spec,
                        failure: f,
                    },
                    Answer::Silence => Event::Silence {
                        request: spec,
                        silence: true,
                    },
                });
            }
            _ => return Err("the machine gave an output this runner does not know".into()),
        }
    }
    Err("the machine did not finish within 100000 steps".into())
}

/// Replays the cassette's recorded events.
struct Replay<'a> {
    events: &'a [Event],
    next: usize,
    /// Recordings from a real CDN: request times are not compared.
    loose_time: bool,
}

impl Replay<'_> {
    fn take(&mut self) -> Option<&Event> {
        let e = self.events.get(self.next);
        self.next += 1;
        e
    }
}

/// Prints two requests side by side, marking the lines that differ.
pub fn side_by_side(expected: &RequestSpec, actual: &RequestSpec) -> String {
    let lines = |r: &RequestSpec| {
        let mut v = vec![
            format!("at_ms: {}", r.at_ms),
            format!("{} {}", r.method, r.url),
        ];
        v.extend(r.headers.iter().map(|(k, v)| format!("{k}: {v}")));
        v.push(format!(
            "body: {} bytes, sha256 {}",
            r.body_len,
            r.body_sha256.as_deref().unwrap_or("-")
        ));
        v
    };
    let (a, b) = (lines(expected), lines(actual));
    let mut out =
        String::from("request differs from the recording:\n  recorded | made by the machine\n");
    for i in 0..a.len().max(b.len()) {
        let l = a.get(i).map_or("", String::as_str);
        let r = b.get(i).map_or("", String::as_str);
        let mark = if l == r { "  " } else { "! " };
        out.push_str(&format!("{mark}{l}\n{mark}  | {r}\n"));
    }
    out
}

impl Script for Replay<'_> {
    fn media_conn(&mut self, force: bool, _at: Duration) -> Result<ConnSpec, String> {
        match self.take() {
            Some(Event::MediaConn { media_conn, force: f }) if *f == force => Ok(media_conn.clone()),
            other => Err(format!(
                "the machine asked for a media connection (force: {force}); the recording has {other:?}"
            )),
        }
    }

    fn answer(&mut self, req: &RequestSpec) -> Result<Answer, String> {
        let n = self.next;
        let ev = self.take().cloned();
        let Some(ev) = ev else {
            return Err(format!(
                "the machine made request #{n} beyond the recording: {} {}",
                req.method, req.url
            ));
        };
        let Some(rec) = ev.request() else {
            return Err(format!(
                "the machine made a request; the recording expects {ev:?}"
            ));
        };
        let mut req = req.clone();
        if self.loose_time {
            req.at_ms = rec.at_ms;
        }
        if *rec != req {
            return Err(side_by_side(rec, &req));
        }
        Ok(match ev {
            Event::Response { response, .. } => Answer::Response(response),
            Event::Cut { cut, .. } => Answer::Cut(cut),
            Event::Failure { failure, .. } => Answer::Failure(failure),
            Event::Silence { .. } => Answer::Silence,
            Event::MediaConn { .. } => unreachable!("has a request"),
        })
    }
}

/// Compares an outcome with the recording: listed `ok` fields must match; an error's
/// kind must match and its text contain the recorded `contains`.
///
/// # Errors
/// What differs.
pub fn check_outcome(recorded: &Outcome, got: &Outcome) -> Result<(), String> {
    match (recorded, got) {
        (Outcome::Ok(want), Outcome::Ok(have)) => {
            for (k, v) in want {
                let h = have.iter().find(|(hk, _)| hk == k).map(|(_, v)| v);
                if h != Some(v) {
                    return Err(format!(
                        "result field {k}: recorded {v}, got {}",
                        h.map_or("nothing".into(), |h| h.to_string())
                    ));
                }
            }
            Ok(())
        }
        (
            Outcome::Error { kind, contains },
            Outcome::Error {
                kind: k2,
                contains: text,
            },
        ) => {
            if kind != k2 {
                return Err(format!(
                    "error kind: recorded {kind}, got {k2} ({})",
                    text.as_deref().unwrap_or("")
                ));
            }
            if let (Some(want), Some(text)) = (contains, text) {
                if !text.contains(want.as_str()) {
                    return Err(format!("error text {text:?} lacks {want:?}"));
                }
            }
            Ok(())
        }
        _ => Err(format!("outcome: recorded {recorded:?}, got {got:?}")),
    }
}

/// Replays `c` through the core. `dir` is the cassette's folder.
///
/// # Errors
/// The first difference between the machine and the recording.
pub fn replay(c: &Cassette, dir: &Path) -> Result<(), String> {
    let sc = Scenario::new(&c.input, dir)?;
    let mut script = Replay {
        events: &c.events,
        next: 0,
        loose_time: c.recorded,
    };
    let d = drive(c.kind, &sc, &mut script)?;
    if script.next < c.events.len() {
        return Err(format!(
            "the machine finished after {} events; the recording has {} (next: {:?})",
            script.next,
            c.events.len(),
            c.events[script.next]
        ));
    }
    check_outcome(&c.outcome, &d.outcome)?;
    if c.kind == Kind::Download
        && matches!(c.outcome, Outcome::Ok(_))
        && d.plaintext != sc.plaintext
    {
        return Err("the released plaintext differs from the input".into());
    }
    Ok(())
}

/// A scripted CDN for [`author`]: answers by closure, connections from a list.
pub struct Scripted<F> {
    /// Connections handed out in order (the last one repeats).
    pub conns: Vec<ConnSpec>,
    /// Answers each request.
    pub respond: F,
    given: usize,
}

impl<F: FnMut(&RequestSpec, usize) -> Answer> Scripted<F> {
    /// A script with these connections and this responder (given the request and its index).
    pub fn new(conns: Vec<ConnSpec>, respond: F) -> Self {
        Scripted {
            conns,
            respond,
            given: 0,
        }
    }
}

struct Counting<'a, F> {
    s: &'a mut Scripted<F>,
    n: usize,
}

impl<F: FnMut(&RequestSpec, usize) -> Answer> Script for Counting<'_, F> {
    fn media_conn(&mut self, _force: bool, at: Duration) -> Result<ConnSpec, String> {
        let i = self.s.given.min(self.s.conns.len().saturating_sub(1));
        self.s.given += 1;
        let mut c = self
            .s
            .conns
            .get(i)
            .cloned()
            .ok_or("the script has no media connection")?;
        c.at_ms = at.as_millis() as u64;
        Ok(c)
    }
    fn answer(&mut self, req: &RequestSpec) -> Result<Answer, String> {
        let n = self.n;
        self.n += 1;
        Ok((self.s.respond)(req, n))
    }
}

/// Drives a scenario against a scripted CDN and writes down the cassette.
///
/// # Errors
/// Bad inputs, or a machine that misbehaves.
pub fn author<F: FnMut(&RequestSpec, usize) -> Answer>(
    name: &str,
    description: &str,
    kind: Kind,
    input: CassetteInput,
    script: &mut Scripted<F>,
) -> Result<Cassette, String> {
    let sc = Scenario::new(&input, Path::new("."))?;
    let d = drive(kind, &sc, &mut Counting { s: script, n: 0 })?;
    let outcome = match d.outcome {
        Outcome::Ok(fields) => Outcome::Ok(
            fields
                .into_iter()
                .filter(|(k, _)| k != "media_key_timestamp")
                .collect(),
        ),
        e => e,
    };
    Ok(Cassette {
        name: name.into(),
        description: description.into(),
        kind,
        input,
        events: d.events,
        outcome,
        recorded: false,
    })
}
