//! The upload target: options, a spec and a scripted CDN decoded from the input, driven by
//! [`drive`](crate::drive).

use std::time::Duration;

use http::header::{CONTENT_LENGTH, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};
use wamedia::host_base;
use wamedia::{
    BodySpec, MediaConn, MediaId, Request, RetryPolicy, Upload, UploadOptions, UploadSpec,
};

use crate::drive::{check_no_auth, drive, Action, Cdn};
use crate::script::{self, Clock, Script, JUMPS};

const OK: &str = r#"{"url":"https://mmg.whatsapp.net/d/x","direct_path":"/d/x"}"#;

/// Statuses, the success first; `255` reads any `u16`.
const STATUSES: &[u16] = &[
    200, 201, 401, 403, 404, 408, 413, 415, 429, 500, 503, 507, 400, 206, 0, 999, 599, 299, 100,
    204, 502,
];

const RETRY_AFTERS: &[&str] = &[
    "1",
    "0",
    "30",
    "31",
    "18446744073709551615",
    "99999999999999999999",
    "abc",
    " 5 ",
    "-1",
];

/// Decodes the retry policy both targets share.
pub(crate) fn retry(s: &mut Script<'_>) -> RetryPolicy {
    let d = |s: &mut Script<'_>, table: &[Duration]| s.pick(table);
    let mut r = RetryPolicy::default();
    r.max_attempts = 1 + u32::from(s.u8() % 8);
    r.max_rounds = 1 + u32::from(s.u8() % 4);
    r.backoff_base = d(
        s,
        &[
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(30),
            Duration::from_secs(3600),
            Duration::MAX,
        ],
    );
    r.backoff_max = d(
        s,
        &[
            Duration::from_secs(30),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::MAX,
        ],
    );
    r.total_timeout = d(
        s,
        &[
            Duration::from_secs(30 * 60),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(86_400),
            Duration::MAX,
        ],
    );
    r.request_timeout = d(
        s,
        &[
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::MAX,
        ],
    );
    r
}

/// Picks a status (the table, or any `u16`).
pub(crate) fn status(s: &mut Script<'_>, table: &[u16]) -> u16 {
    match s.u8() {
        255 => s.u16(),
        b => table[usize::from(b) % table.len()],
    }
}

/// Splits `body` into up to four pieces at points the script picks.
pub(crate) fn pieces(s: &mut Script<'_>, body: &[u8]) -> Vec<Vec<u8>> {
    let n = 1 + s.below(4);
    let mut cuts: Vec<usize> = (1..n)
        .map(|_| usize::from(s.u16()) % (body.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain([body.len()]) {
        if c > from {
            out.push(body[from..c].to_vec());
            from = c;
        }
    }
    out
}

fn header(h: &mut HeaderMap, name: http::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.append(name, v);
    }
}

struct UploadCdn {
    body_len: u64,
}

impl UploadCdn {
    fn body(&self, s: &mut Script<'_>) -> Vec<u8> {
        let len = self.body_len;
        let text = match s.u8() % 20 {
            0 => OK.to_owned(),
            1 => String::new(),
            2 => "{}".into(),
            3 => r#"{"resume":"complete","url":"https://mmg.whatsapp.net/d/r","direct_path":"/d/r"}"#.into(),
            4 => r#"{"resume":"complete"}"#.into(),
            5 => r#"{"resume":"17"}"#.into(),
            6 => r#"{"resume":18446744073709551615}"#.into(),
            7 => format!(r#"{{"resume":{}}}"#, len / 2),
            8 => format!(r#"{{"resume":"{len}"}}"#),
            9 => "[1,2".into(),
            10 => r#"{"url":"https://mmg.whatsapp.net/d/t","direct_path":"/d/t","handle":"h","thumbnail_info":{"thumbnail_direct_path":"/t","thumbnail_sha256":"c2hh"},"ts":1700000000,"fbid":12,"object_id":"o","meta_hmac":"m","metadata_url":"u"}"#.into(),
            11 => "busy\n\u{1b}[31m\u{202e}evil\r\n".into(),
            12 => return s.blob(4096),
            13 => format!(r#"{{"url":"https://x/y","direct_path":"/d","pad":"{}"}}"#, "x".repeat(70_000)),
            14 => r#"{"url":"","direct_path":"/d/x"}"#.into(),
            15 => r#"{"url":1,"direct_path":["x"]}"#.into(),
            16 => r#"{"resume":"  42abc"}"#.into(),
            17 => r#"{"resume":-1}"#.into(),
            18 => format!(r#"{{"resume":{}}}"#, len.saturating_sub(1)),
            _ => r#"{"url":"https://x/y","direct_path":"/d","ts":"notnum","resume":{"a":1}}"#.into(),
        };
        text.into_bytes()
    }

    fn head(&self, s: &mut Script<'_>) -> Action {
        let status = status(s, STATUSES);
        let flags = s.u8();
        let mut headers = HeaderMap::new();
        if flags & 1 != 0 {
            header(&mut headers, RETRY_AFTER, s.pick(RETRY_AFTERS));
        }
        if flags & 2 != 0 {
            header(&mut headers, CONTENT_LENGTH, &s.u64().to_string());
        }
        if flags & 4 != 0 {
            header(&mut headers, RETRY_AFTER, s.pick(RETRY_AFTERS));
        }
        Action::Head { status, headers }
    }

    fn full(&self, s: &mut Script<'_>, out: &mut Vec<Action>) {
        out.push(self.head(s));
        let body = self.body(s);
        out.extend(pieces(s, &body).into_iter().map(Action::Body));
        out.push(Action::End);
    }

    fn sent(&self, s: &mut Script<'_>, req: &Request) -> Action {
        let len = req.body.len();
        Action::Sent(match s.u8() % 7 {
            0 => len,
            1 => 0,
            2 => 1,
            3 => len / 2,
            4 => len.saturating_add(1),
            5 => u64::MAX,
            _ => s.u64(),
        })
    }
}

impl Cdn for UploadCdn {
    const REFUSES_WRONG_SENT: bool = true;
    const DROPS_AFTER_HEAD: bool = false;

    fn answer(&mut self, s: &mut Script<'_>, req: &Request) -> Vec<Action> {
        let mut out = Vec::new();
        match s.u8() % 8 {
            0 => self.full(s, &mut out),
            1 => {
                out.push(self.head(s));
                let body = self.body(s);
                let cut = usize::from(s.u16()) % (body.len() + 1);
                out.push(Action::Body(body[..cut].to_vec()));
                out.push(Action::Failed("connection reset"));
            }
            2 => out.push(Action::Failed("connection refused")),
            3 => {} // silence
            4 => {
                out.push(self.sent(s, req));
                out.push(Action::Failed("broken pipe"));
            }
            5 => {
                out.push(self.sent(s, req));
                self.full(s, &mut out);
            }
            6 => {
                for _ in 0..1 + s.below(12) {
                    out.push(match s.u8() % 8 {
                        0 => self.head(s),
                        1 => Action::Body(self.body(s)),
                        2 | 7 => Action::End,
                        3 => Action::Failed("reset"),
                        4 => self.sent(s, req),
                        5 => Action::Jump {
                            by: s.pick(JUMPS),
                            silent: false,
                        },
                        _ => Action::Jump {
                            by: s.pick(JUMPS),
                            silent: true,
                        },
                    });
                }
            }
            _ => {
                // A slow answer: the body goes out in steps, then the answer comes late.
                out.push(Action::Sent(req.body.len() / 2));
                out.push(Action::Jump {
                    by: s.pick(JUMPS),
                    silent: s.u8() & 1 == 1,
                });
                out.push(Action::Sent(req.body.len()));
                self.full(s, &mut out);
            }
        }
        out
    }

    fn check_request(&self, req: &Request, conns: &[MediaConn]) {
        assert_eq!(req.method, http::Method::POST);
        assert!(
            conns.iter().any(|c| c.knows_host(&req.host)),
            "upload to {} which no media connection named",
            req.host
        );
        assert!(
            req.url.starts_with(&format!("{}/", host_base(&req.host))),
            "{} is not on {}",
            req.redacted_url(),
            req.host
        );
        match req.body {
            BodySpec::Empty => assert!(
                req.url.contains("&resume=1"),
                "a body-less request that is no probe"
            ),
            BodySpec::UploadBody { from, to } => {
                assert_eq!(
                    to, self.body_len,
                    "a body that does not end at the body's end"
                );
                assert!(from == 0 || from < to, "a resumed body from {from} of {to}");
            }
            other => panic!("an upload body this target does not check: {other:?}"),
        }
        let len = req
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            len,
            Some(req.body.len().to_string().as_str()),
            "Content-Length"
        );
    }

    fn sent_is_wrong(&self, body: BodySpec, bytes: u64) -> bool {
        match body {
            BodySpec::Empty => bytes > 0,
            _ => bytes > body.len(),
        }
    }
}

/// See [`crate::upload`].
pub(crate) fn run(data: &[u8]) {
    let mut s = Script::new(data);
    let clock = Clock::new();
    let mut opts = UploadOptions::default();
    opts.retry = retry(&mut s);
    opts.resume = s.u8() & 1 == 0;
    opts.resume_threshold = s.pick(&[5 << 20, 0, 1, 1000, u64::MAX]);
    opts.server_thumb_gen = s.u8() & 1 == 1;
    let flags = s.u8();
    let media_type = script::media_type(s.below(256));
    let file_length = match s.u8() % 6 {
        0 => u64::from(s.u16()),
        1 => 0,
        2 => 5 << 20,
        3 => u64::MAX,
        4 => 1 << 40,
        _ => s.u64(),
    };
    let file_sha256 = [s.u8(); 32];
    let media_id =
        MediaId::new(1 + u64::from(s.u16())).unwrap_or(MediaId::new(1).expect("1 is an id"));
    // Built from the constructors, so that fields the core adds keep their defaults.
    let mut spec = if flags & 1 == 0 {
        let mut spec = UploadSpec::unencrypted(media_type, file_sha256, file_length, media_id);
        spec.media_key = Some(script::key(u64::from(s.u8())));
        spec.file_enc_sha256 = Some([s.u8(); 32]);
        if flags & 8 != 0 {
            spec = spec.with_media_key_timestamp(s.u64() as i64);
        }
        spec
    } else if flags & 2 == 0 {
        UploadSpec::newsletter(media_type, file_sha256, file_length, media_id)
    } else {
        UploadSpec::unencrypted(media_type, file_sha256, file_length, media_id)
    };
    if flags & 4 != 0 {
        spec = spec.with_key_reused(true);
    }
    let body_len = spec.body_len();
    let max_attempts = opts.retry.max_attempts as usize;
    let up = Upload::new(spec.clone(), opts, clock.now);
    let budget = 4096 + 64 * data.len();
    let run = drive(up, UploadCdn { body_len }, clock, &mut s, budget);
    // Each attempt may add a probe; one renewal, one wait, one fresh send after a 415
    // (the bound `core/tests/upload.rs` holds the machine to).
    let max = 2 * max_attempts + 3;
    assert!(
        run.requests.len() <= max,
        "{} requests > {max}",
        run.requests.len()
    );
    check_no_auth(&run.outcome, run.echoed_auth);
    assert!(run.released.is_empty(), "an upload released plaintext");
    if let Ok(r) = &run.outcome {
        assert!(!r.url.is_empty() && !r.direct_path.is_empty());
        assert_eq!(r.file_length, spec.file_length);
        assert_eq!(r.file_sha256, spec.file_sha256);
        assert_eq!(r.file_enc_sha256, spec.file_enc_sha256);
        assert!(
            run.requests.iter().any(|q| q.host == r.host),
            "the result names a host never asked"
        );
    }
}
