//! The download target: a real encrypted (or plain) body, a spec, options and a scripted
//! CDN decoded from the input, driven by [`drive`](crate::drive). The CDN serves the real
//! body, slices of it, mutations of it or noise.

use http::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};
use wamedia::host_base;
use wamedia::{
    BodySpec, Download, DownloadOptions, DownloadSpec, Encryptor, Expected, MediaConn, Request,
    Source,
};

use crate::conns::AUTH;
use crate::drive::{check_no_auth, drive, Action, Cdn};
use crate::script::{self, Clock, Script, JUMPS};
use crate::upload::{pieces, retry, status};

/// Statuses, the success first; `255` reads any `u16`.
const STATUSES: &[u16] = &[
    200, 206, 401, 403, 404, 410, 429, 500, 503, 507, 408, 400, 0, 999, 599, 204, 301, 416,
];

/// Direct paths, the well-formed one first, then the ones that would change the host.
const PATHS: &[&str] = &[
    "/v/t62.7118-24/abc?ccb=11-4&oh=01&oe=7FFFFFFF",
    "/d/x",
    "@evil/x",
    "//evil/x",
    "\\\\evil\\x",
    "/x\\@evil",
    "v/t62/x",
    "",
    "/x y",
    "/x#frag",
    "/@evil/x",
    "/m1/v/t24/x?oe=0",
    "/x?oe=FFFFFFFFFFFFFFFF",
    "/x?oe=zz",
    "/x?a=1&&oe=&",
    "/%2F%2Fevil/x",
    "/x?__wa-mms=&hash=abc",
    "/\u{fc}n\u{ef}/x",
    "/x:80@evil",
    "/x\u{202e}",
    "/.//evil",
];

/// Full URLs: WhatsApp's, a connection host's, and hostile ones.
const URLS: &[&str] = &[
    "https://mmg.whatsapp.net/d/x?oe=7FFFFFFF",
    "http://mmg.whatsapp.net/d/x",
    "https://evil.example/d/x",
    "https://h0/d/x",
    "https://user@mmg.whatsapp.net/x",
    "https://mmg.whatsapp.net.evil.example/x",
    "https://MMG.WhatsApp.NET/x",
    "//x",
    "http://127.0.0.1:1/x",
    "not a url",
    "https://[::1]/x",
    "https://whatsapp.net/x",
    "https://evilwhatsapp.net/x",
    "https://mmg.whatsapp.net:8443/x",
    "https://mmg.whatsapp.net\\@evil/x",
    "https:///x",
    "",
    "https://mmg.whatsapp.net/x?oe=0",
    "https://evil@x/y",
];

const RETRY_AFTERS: &[&str] = &["1", "0", "30", "31", "18446744073709551615", "abc", ""];

struct DownloadCdn {
    /// The real body (encrypted, or the plaintext for unencrypted media).
    body: Vec<u8>,
    encrypted: bool,
    /// The path or URL (from the input) spells the auth token.
    source_has_auth: bool,
    source: Source,
    trust_url: bool,
    media_type: wamedia::MediaType,
}

/// `bytes=N-` of a request, or 0.
fn asked(req: &Request) -> u64 {
    req.headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn header(h: &mut HeaderMap, name: http::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.append(name, v);
    }
}

impl DownloadCdn {
    fn len(&self) -> usize {
        self.body.len()
    }

    /// The real body from `from`.
    fn rest(&self, from: u64) -> &[u8] {
        let from = usize::try_from(from).map_or(self.len(), |f| f.min(self.len()));
        &self.body[from..]
    }

    /// The answer a cooperative CDN gives: the rest of the body from where the request
    /// asks, as a 206, or the whole body as a 200.
    fn cooperative_head(&self, from: u64) -> Action {
        let len = self.len() as u64;
        let mut headers = HeaderMap::new();
        if from > 0 && from < len {
            let range = format!("bytes {from}-{}/{len}", len - 1);
            header(&mut headers, CONTENT_RANGE, &range);
            header(&mut headers, CONTENT_LENGTH, &(len - from).to_string());
            Action::Head {
                status: 206,
                headers,
            }
        } else {
            header(&mut headers, CONTENT_LENGTH, &len.to_string());
            Action::Head {
                status: 200,
                headers,
            }
        }
    }

    fn cooperative_body(&self, from: u64) -> &[u8] {
        let len = self.len() as u64;
        if from > 0 && from < len {
            self.rest(from)
        } else {
            &self.body
        }
    }

    fn head(&self, s: &mut Script<'_>, from: u64) -> Action {
        let status = status(s, STATUSES);
        let flags = s.u8();
        let len = self.len() as u64;
        let mut headers = HeaderMap::new();
        if flags & 1 != 0 {
            let v = match s.u8() % 8 {
                0 => len.saturating_sub(from).to_string(),
                1 => len.to_string(),
                2 => "0".into(),
                3 => u64::MAX.to_string(),
                4 => "abc".into(),
                5 => (len + 1).to_string(),
                6 => len.saturating_sub(1).to_string(),
                _ => s.u64().to_string(),
            };
            header(&mut headers, CONTENT_LENGTH, &v);
        }
        if flags & 2 != 0 {
            let v = match s.u8() % 8 {
                0 => format!("bytes {from}-{}/{len}", len.saturating_sub(1)),
                1 => "bytes 0-18446744073709551615/*".into(),
                2 => format!("bytes {from}-{from}/*"),
                3 => format!("bytes {}-{}/{len}", from + 1, len.saturating_sub(1)),
                4 => "bytes 5-2/10".into(),
                5 => "items 0-1/2".into(),
                6 => format!("bytes {from}-{}/*", s.u64()),
                _ => format!("bytes {}-{}/{}", s.u64(), s.u64(), s.u64()),
            };
            header(&mut headers, CONTENT_RANGE, &v);
        }
        if flags & 4 != 0 {
            header(&mut headers, RETRY_AFTER, s.pick(RETRY_AFTERS));
        }
        Action::Head { status, headers }
    }

    fn piece(&self, s: &mut Script<'_>, from: u64) -> Vec<u8> {
        let len = self.len();
        let mut b = self.cooperative_body(from).to_vec();
        match s.u8() % 12 {
            0 => {}
            1 => b = self.body.clone(),
            2 => {
                let a = usize::from(s.u16()) % (len + 1);
                let z = usize::from(s.u16()) % (len + 1);
                b = self.body[a.min(z)..a.max(z)].to_vec();
            }
            3 => {
                if !b.is_empty() {
                    let i = usize::from(s.u16()) % b.len();
                    b[i] ^= s.u8().max(1);
                }
            }
            4 => {
                let k = 1 + usize::from(s.u8());
                b.truncate(b.len().saturating_sub(k));
            }
            5 => {
                let k = 1 + s.below(64);
                b.extend(std::iter::repeat_n(s.u8(), k));
            }
            6 => b = s.blob(4096),
            7 => b = b"URL signature expired".to_vec(),
            8 => b.clear(),
            9 => {
                if let Some(x) = b.last_mut() {
                    *x ^= 1;
                }
            }
            10 => {
                // A block dropped from the middle.
                if b.len() >= 48 {
                    let at = 16 * (usize::from(s.u8()) % (b.len() / 16 - 1));
                    b.drain(at..at + 16);
                }
            }
            _ => {
                // Two blocks swapped.
                if b.len() >= 42 {
                    let (x, y) = b.split_at_mut(16);
                    x.swap_with_slice(&mut y[..16]);
                }
            }
        }
        b
    }
}

impl Cdn for DownloadCdn {
    const REFUSES_WRONG_SENT: bool = false;
    const DROPS_AFTER_HEAD: bool = true;

    fn answer(&mut self, s: &mut Script<'_>, req: &Request) -> Vec<Action> {
        let from = asked(req);
        let mut out = Vec::new();
        match s.u8() % 9 {
            0 => {
                out.push(self.cooperative_head(from));
                let body = self.cooperative_body(from).to_vec();
                out.extend(pieces(s, &body).into_iter().map(Action::Body));
                out.push(Action::End);
            }
            1 => {
                out.push(self.head(s, from));
                let body = self.piece(s, from);
                out.extend(pieces(s, &body).into_iter().map(Action::Body));
                out.push(Action::End);
            }
            2 => {
                out.push(self.cooperative_head(from));
                let body = self.cooperative_body(from);
                let cut = usize::from(s.u16()) % (body.len() + 1);
                out.push(Action::Body(body[..cut].to_vec()));
                out.push(Action::Failed("connection reset"));
            }
            3 => out.push(Action::Failed("connection refused")),
            4 => {} // silence
            5 => {
                for _ in 0..1 + s.below(12) {
                    out.push(match s.u8() % 8 {
                        0 => self.head(s, from),
                        1 => self.cooperative_head(from),
                        2 => Action::Body(self.piece(s, from)),
                        3 => Action::End,
                        4 => Action::Failed("reset"),
                        5 => Action::Sent(s.u64()),
                        6 => Action::Jump {
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
            6 => {
                // A 200 with the whole body, whatever the Range.
                let mut headers = HeaderMap::new();
                header(&mut headers, CONTENT_LENGTH, &self.len().to_string());
                out.push(Action::Head {
                    status: 200,
                    headers,
                });
                out.extend(pieces(s, &self.body).into_iter().map(Action::Body));
                out.push(Action::End);
            }
            7 => {
                // A slow answer: part, time passes, the rest.
                out.push(self.cooperative_head(from));
                let body = self.cooperative_body(from).to_vec();
                let cut = usize::from(s.u16()) % (body.len() + 1);
                out.push(Action::Body(body[..cut].to_vec()));
                out.push(Action::Jump {
                    by: s.pick(JUMPS),
                    silent: s.u8() & 1 == 1,
                });
                out.push(Action::Body(body[cut..].to_vec()));
                out.push(Action::End);
            }
            _ => {
                out.push(Action::Sent(0));
                out.push(self.cooperative_head(from));
                out.push(Action::Body(self.cooperative_body(from).to_vec()));
                out.push(Action::End);
            }
        }
        out
    }

    fn check_request(&self, req: &Request, conns: &[MediaConn]) {
        assert_eq!(req.method, http::Method::GET);
        assert_eq!(req.body, BodySpec::Empty);
        let uri: http::Uri = req.url.parse().expect("a download URL parses");
        let origin = format!(
            "{}://{}",
            uri.scheme_str().expect("a scheme"),
            uri.authority().expect("an authority")
        );
        assert!(
            origin.eq_ignore_ascii_case(&host_base(&req.host)),
            "{} is not on {}",
            req.redacted_url(),
            req.host
        );
        match &self.source {
            Source::DirectPath(p) => {
                assert!(
                    conns
                        .iter()
                        .any(|c| c.download_hosts(&self.media_type).contains(&req.host)),
                    "download from {} which no media connection offers",
                    req.host
                );
                assert!(req.url.starts_with(&format!("{}{p}", host_base(&req.host))));
            }
            Source::Url(u) => {
                assert_eq!(&req.url, u, "a full URL is fetched as given");
                let host = uri.host().unwrap_or_default().to_ascii_lowercase();
                let whatsapp = uri.scheme_str() == Some("https")
                    && (host == "whatsapp.net" || host.ends_with(".whatsapp.net"));
                let known = conns.iter().any(|c| {
                    c.hosts.iter().any(|h| {
                        std::iter::once(h.hostname.as_str())
                            .chain(h.fallback_hostname.as_deref())
                            .any(|n| host_base(n).eq_ignore_ascii_case(&origin))
                    })
                });
                assert!(
                    self.trust_url || whatsapp || known,
                    "an untrusted URL was fetched: {}",
                    req.redacted_url()
                );
                assert!(
                    !uri.authority().is_some_and(|a| a.as_str().contains('@')) || self.trust_url
                );
            }
            other => panic!("a source this target does not check: {other:?}"),
        }
        let from = asked(req);
        if self.encrypted {
            assert_eq!(
                from % 16,
                0,
                "a Range that does not start on a block: {from}"
            );
        }
    }

    fn sent_is_wrong(&self, _body: BodySpec, bytes: u64) -> bool {
        bytes > 0
    }

    fn input_spells_auth(&self) -> bool {
        self.source_has_auth
    }
}

/// See [`crate::download`].
pub(crate) fn run(data: &[u8]) {
    let mut s = Script::new(data);
    let clock = Clock::new();
    let mut opts = DownloadOptions::default();
    opts.retry = retry(&mut s);
    opts.max_body_len = 2 << 30;
    opts.trust_url = false;
    opts.refuse_expired_locally = false;
    let flags = s.u8();
    let media_type = script::media_type(s.below(256));
    let plain_len = match s.u8() % 16 {
        0 => 1000,
        1 => 0,
        2 => 15,
        3 => 16,
        4 => 17,
        // Past one and three 64 KiB sidecar windows.
        6 => 65_536 + 100,
        7 => 3 * 65_536 + 1,
        _ => usize::from(s.u16()) % 4097,
    };
    let plain = script::pattern(plain_len, u64::from(s.u8()));
    // Encrypted unless the script says plain (a newsletter download) or the type is not.
    let key = (flags & 1 == 0 && media_type.is_encrypted()).then(|| script::key(u64::from(s.u8())));
    // The streaming sidecar is made for every type here, so any may be given one.
    let (body, real_sidecar) = match &key {
        Some(k) => {
            let mut enc = Encryptor::new(k.clone(), &media_type)
                .expect("an encrypted type")
                .with_streaming_sidecar(true);
            let mut body = Vec::new();
            enc.update(&plain, &mut body);
            let media = enc.finish(&mut body);
            (body, media.streaming_sidecar)
        }
        None => (plain.clone(), None),
    };
    let wrong = flags & 0x40 != 0;
    let expected = Expected {
        file_enc_sha256: (flags & 2 == 0 && key.is_some()).then(|| {
            let mut h = script::sha256(&body);
            h[0] ^= u8::from(wrong);
            h
        }),
        file_sha256: (flags & 4 == 0).then(|| script::sha256(&plain)),
        file_length: (flags & 8 == 0).then_some(plain.len() as u64 + u64::from(wrong)),
    };
    // A wrong expectation only counts when it is armed.
    let wrong = wrong && (expected.file_enc_sha256.is_some() || expected.file_length.is_some());
    let body_len = body.len() as u64;
    let max_body_len = s.pick(&[
        2 << 30,
        0,
        100,
        body_len,
        body_len.saturating_sub(1),
        u64::MAX,
    ]);
    let trust_url = flags & 0x10 != 0;
    let wall_unix = s.pick(&[
        1_760_000_000,
        0,
        0x7FFF_FFFE,
        0x7FFF_FFFF,
        0x8000_0000,
        u64::MAX,
    ]);
    let source = match s.u8() % 5 {
        0 | 1 => Source::DirectPath(s.pick(PATHS).to_owned()),
        2 => Source::Url(s.pick(URLS).to_owned()),
        // An `oe` a minute after the start: a time jump expires it mid-transfer.
        3 => Source::DirectPath(format!("/d/x?oe={:X}", wall_unix.saturating_add(60))),
        _ if flags & 0x20 == 0 => Source::DirectPath(s.text()),
        _ => Source::Url(s.text()),
    };
    let streaming_sidecar = real_sidecar.and_then(|mut sc| match s.u8() % 6 {
        0 => None,
        1 => Some(sc),
        2 => {
            let i = usize::from(s.u16()) % sc.len().max(1);
            if let Some(b) = sc.get_mut(i) {
                *b ^= s.u8().max(1);
            }
            Some(sc)
        }
        3 => {
            sc.truncate(sc.len().saturating_sub(1 + s.below(20)));
            Some(sc)
        }
        4 => Some(Vec::new()),
        _ => {
            let n = 1 + s.below(20);
            sc.extend(s.bytes(n));
            Some(sc)
        }
    });
    // A path or URL from the input may spell the token itself: then errors quoting it do.
    let source_has_auth = match &source {
        Source::DirectPath(p) | Source::Url(p) => p.contains(AUTH),
        other => unreachable!("the target makes only paths and URLs, not {other:?}"),
    };
    let spec = DownloadSpec {
        media_type: media_type.clone(),
        media_key: key.clone(),
        source: source.clone(),
        expected,
        streaming_sidecar,
    };
    opts.max_body_len = max_body_len;
    opts.trust_url = trust_url;
    let max_attempts = opts.retry.max_attempts as usize;
    let d = Download::new(spec, opts, clock.now, script::wall(wall_unix));
    let cdn = DownloadCdn {
        body,
        encrypted: key.is_some(),
        source_has_auth,
        source,
        trust_url,
        media_type,
    };
    let budget = 4096 + 64 * data.len();
    let run = drive(d, cdn, clock, &mut s, budget);
    assert!(
        run.requests.len() <= max_attempts,
        "{} requests > max_attempts {max_attempts}",
        run.requests.len()
    );
    check_no_auth(&run.outcome, run.echoed_auth || source_has_auth);
    // Window-verified plaintext is genuine whatever the CDN sent and however it ends.
    assert!(
        plain.starts_with(&run.verified),
        "Output::Verified released {} bytes that are not the plaintext's start",
        run.verified.len()
    );
    if let Ok(r) = &run.outcome {
        assert!(!wrong, "a download verified against a wrong expectation");
        assert!(
            run.released == plain,
            "a download ended Ok after releasing {} bytes that are not the {}-byte plaintext",
            run.released.len(),
            plain.len()
        );
        assert_eq!(r.verified.file_length, plain.len() as u64);
        assert_eq!(r.verified.file_sha256, script::sha256(&plain));
    }
}
