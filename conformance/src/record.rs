//! Record mode: an [`Observer`] that writes what a real transport exchanged as a cassette,
//! with the auth token replaced by [`AUTH_PLACEHOLDER`].
//!
//! ```no_run
//! # use wamedia::MediaType;
//! # use wamedia_driver::{Transfer, UploadJob};
//! # fn demo(client: wamedia_ureq::Client, plain: Vec<u8>) {
//! use wamedia_conformance::record::Recorder;
//! let job = UploadJob::new(MediaType::Image);
//! let prepared = job.prepare(std::io::Cursor::new(&plain)).unwrap();
//! let mut rec = Recorder::for_upload(&prepared, plain.clone());
//! let r = client.upload_prepared(prepared.clone(), plain).transfer(Transfer::new().observe(&mut rec)).wait();
//! # }
//! ```

use std::io::{Cursor, Read, Seek};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wamedia::form_encode;
use wamedia::{b64, MediaConn, Request, RequestId};
use wamedia_driver::Observer;
use wamedia_driver::PreparedUpload;

use crate::cassette::*;

/// Plaintext shared between the bodies it regenerates, without copies.
#[derive(Clone)]
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

type BodyHash = Box<dyn Fn(&Request) -> Option<String> + Send>;

struct Pending {
    id: RequestId,
    spec: RequestSpec,
    head: Option<(u16, Vec<(String, String)>)>,
    /// Body kept for non-media answers (up to 64 KiB).
    body: Vec<u8>,
    /// Bytes received.
    received: u64,
    /// Where a media answer's bytes start in the body.
    media_from: u64,
}

/// Records exchanges into cassette events.
pub struct Recorder {
    start: Instant,
    /// Wall-clock time at the start (Unix seconds), for the cassette's `wall_unix`.
    start_unix: u64,
    /// Uploads: the spec's `key_reused` and `media_id`, for the cassette's input.
    upload_facts: Option<(bool, u64)>,
    auths: Vec<String>,
    events: Vec<Event>,
    pending: Option<Pending>,
    body_hash: BodyHash,
    media_answers: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder for an upload of `plaintext` prepared as `prepared` (request bodies are
    /// recorded as their length and SHA-256, regenerated from the plaintext).
    pub fn for_upload(prepared: &PreparedUpload, plaintext: Vec<u8>) -> Recorder {
        let plaintext = Shared(std::sync::Arc::new(plaintext));
        Self::for_upload_source(prepared, move || Ok(Cursor::new(plaintext.clone())))
    }

    /// Like [`for_upload`](Self::for_upload), reopening the plaintext with `open` (a file)
    /// for each body instead of holding it in memory.
    pub fn for_upload_source<S: Read + Seek>(
        prepared: &PreparedUpload,
        open: impl Fn() -> std::io::Result<S> + Send + 'static,
    ) -> Recorder {
        let prepared = prepared.clone();
        let facts = (prepared.spec.key_reused, prepared.spec.media_id.get());
        let mut rec = Recorder::new(
            Box::new(move |req: &Request| {
                let wamedia::BodySpec::UploadBody { from, to } = req.body else {
                    return None;
                };
                let mut r = prepared
                    .body_reader(open().ok()?, from)
                    .ok()?
                    .take(to.saturating_sub(from));
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = r.read(&mut buf).ok()?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                Some(b64::std(&h.finalize()))
            }),
            false,
        );
        rec.upload_facts = Some(facts);
        rec
    }

    /// A recorder for a download: 200/206 bodies are recorded as ranges of the media body
    /// (which replay regenerates from the plaintext and key), others as text or base64.
    pub fn for_download() -> Recorder {
        Recorder::new(Box::new(|_| None), true)
    }

    fn new(body_hash: BodyHash, media_answers: bool) -> Recorder {
        Recorder {
            start: Instant::now(),
            start_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            upload_facts: None,
            auths: Vec::new(),
            events: Vec::new(),
            pending: None,
            body_hash,
            media_answers,
        }
    }

    fn placeholder(&mut self, auth: &str) -> String {
        let i = match self.auths.iter().position(|a| a == auth) {
            Some(i) => i,
            None => {
                self.auths.push(auth.to_owned());
                self.auths.len() - 1
            }
        };
        if i == 0 {
            AUTH_PLACEHOLDER.to_owned()
        } else {
            format!("{AUTH_PLACEHOLDER}-{}", i + 1)
        }
    }

    fn redact(&self, url: &str) -> String {
        let mut out = url.to_owned();
        for (i, a) in self.auths.iter().enumerate() {
            let ph = if i == 0 {
                AUTH_PLACEHOLDER.to_owned()
            } else {
                format!("{AUTH_PLACEHOLDER}-{}", i + 1)
            };
            out = out.replace(&format!("auth={}", form_encode(a)), &format!("auth={ph}"));
        }
        // An auth we were never shown (a provider bypassed) is still never written.
        wamedia::redact_auth(&out).replace("auth=<redacted>", &format!("auth={AUTH_PLACEHOLDER}"))
    }

    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn flush(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let ev = match p.head {
            None => Event::Silence {
                request: p.spec,
                silence: true,
            },
            Some(_) => unreachable!("answered requests are flushed when they end"),
        };
        self.events.push(ev);
    }

    fn body_spec(&self, p: &Pending, status: u16) -> BodySpec {
        if self.media_answers && (status == 200 || status == 206) {
            return BodySpec::Media {
                from: p.media_from,
                to: Some(p.media_from + p.received),
                flip_last_bit: false,
            };
        }
        match std::str::from_utf8(&p.body) {
            Ok(t) => BodySpec::Text(t.to_owned()),
            Err(_) => BodySpec::Base64(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &p.body,
            )),
        }
    }

    /// The cassette: these events, with the given name, inputs and outcome. Timing is not
    /// replayed for recordings (`recorded: true`).
    pub fn into_cassette(
        mut self,
        name: &str,
        description: &str,
        kind: Kind,
        mut input: CassetteInput,
        outcome: Outcome,
    ) -> Cassette {
        self.flush();
        // What the machine was given, so the replay drives it the same way.
        input.wall_unix.get_or_insert(self.start_unix);
        if let Some((reused, id)) = self.upload_facts {
            input.key_reused = reused;
            input.media_id = Some(id);
        }
        Cassette {
            name: name.into(),
            description: description.into(),
            kind,
            input,
            events: self.events,
            outcome,
            recorded: true,
        }
    }
}

impl Observer for Recorder {
    fn media_conn(&mut self, conn: &MediaConn, force: bool) {
        let auth = self.placeholder(&conn.auth);
        let at_ms = self.ms();
        self.events.push(Event::MediaConn {
            media_conn: ConnSpec {
                auth,
                ttl: conn.ttl.as_secs(),
                auth_ttl: conn.auth_ttl.map(|d| d.as_secs()),
                max_buckets: conn.max_buckets,
                hosts: conn.hosts.iter().map(HostSpec::from_host).collect(),
                at_ms,
            },
            force,
        });
    }

    fn request(&mut self, req: &Request) {
        self.flush();
        let spec = RequestSpec {
            at_ms: self.ms(),
            method: req.method.to_string(),
            url: self.redact(&req.url),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body_len: req.body.len(),
            body_sha256: (self.body_hash)(req),
        };
        let media_from = req
            .headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.trim_end_matches('-').parse().ok())
            .unwrap_or(0);
        self.pending = Some(Pending {
            id: req.id,
            spec,
            head: None,
            body: Vec::new(),
            received: 0,
            media_from,
        });
    }

    fn response_head(&mut self, id: RequestId, status: u16, headers: &http::HeaderMap) {
        if let Some(p) = self.pending.as_mut().filter(|p| p.id == id) {
            p.head = Some((
                status,
                headers
                    .iter()
                    .filter(|(k, _)| {
                        [
                            "content-length",
                            "content-range",
                            "content-type",
                            "retry-after",
                        ]
                        .contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
            ));
            if status == 200 {
                p.media_from = 0;
            }
        }
    }

    fn response_body(&mut self, id: RequestId, data: &[u8]) {
        if let Some(p) = self.pending.as_mut().filter(|p| p.id == id) {
            p.received += data.len() as u64;
            let room = (64 * 1024usize).saturating_sub(p.body.len());
            p.body.extend_from_slice(&data[..room.min(data.len())]);
        }
    }

    fn response_end(&mut self, id: RequestId) {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            let p = self.pending.take().expect("checked");
            let (status, headers) = p.head.clone().unwrap_or((0, vec![]));
            let body = self.body_spec(&p, status);
            self.events.push(Event::Response {
                request: p.spec,
                response: ResponseSpec {
                    status,
                    headers,
                    body,
                },
            });
        }
    }

    fn failed(&mut self, id: RequestId, reason: &str) {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            let p = self.pending.take().expect("checked");
            let ev = match p.head.clone() {
                None => Event::Failure {
                    request: p.spec,
                    failure: reason.to_owned(),
                },
                Some((status, headers)) => {
                    let body = self.body_spec(&p, status);
                    Event::Cut {
                        request: p.spec,
                        cut: ResponseSpec {
                            status,
                            headers,
                            body,
                        },
                    }
                }
            };
            self.events.push(ev);
        }
    }
}

/// The transport's result as a cassette outcome.
pub fn outcome_of_upload(r: &Result<wamedia::UploadResult, wamedia_driver::Error>) -> Outcome {
    match r {
        Ok(u) => Outcome::Ok(
            u.to_json()
                .as_object()
                .expect("an object")
                .iter()
                .filter(|(k, _)| k.as_str() != "media_key_timestamp")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Err(e) => error_outcome(e),
    }
}

/// The transport's result as a cassette outcome.
pub fn outcome_of_download(r: &Result<wamedia::DownloadResult, wamedia_driver::Error>) -> Outcome {
    match r {
        Ok(d) => Outcome::Ok(vec![
            ("file_length".into(), d.verified.file_length.into()),
            (
                "file_sha256".into(),
                b64::std(&d.verified.file_sha256).into(),
            ),
        ]),
        Err(e) => error_outcome(e),
    }
}

fn error_outcome(e: &wamedia_driver::Error) -> Outcome {
    use wamedia_driver::Error;
    let kind = match e {
        Error::Upload(u) => crate::cassette::error_kind(&format!("{u:?}")),
        Error::Download(d) => crate::cassette::error_kind(&format!("{d:?}")),
        Error::Delete(d) => crate::cassette::error_kind(&format!("{d:?}")),
        other => format!("Transport: {other}"),
    };
    Outcome::Error {
        kind,
        contains: None,
    }
}
