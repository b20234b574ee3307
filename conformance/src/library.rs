//! The cassette library: every named scenario, as a scripted CDN that authors it.
//!
//! These cassettes are synthetic: written by driving the core against the CDN behaviour
//! PROTOCOL.md describes (no real CDN is reachable from here). Each scenario states the
//! outcome it must reach, so authoring fails if the machine does something else. Real
//! recordings (see the README's "Recording cassettes") go beside them.

use crate::cassette::*;
use crate::replay::{author, Answer, Scripted};

const H1: &str = "mmg.whatsapp.net";
const H2: &str = "media-fra3-1.cdn.whatsapp.net";
const KEY: &str = "5a1e9d3c0b7f46a28e1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef0";

fn conn(hosts: &[&str]) -> ConnSpec {
    ConnSpec {
        auth: AUTH_PLACEHOLDER.into(),
        ttl: 300,
        auth_ttl: None,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        at_ms: 0,
    }
}

fn input(media_type: &str, len: u64) -> CassetteInput {
    CassetteInput {
        media_type: media_type.into(),
        media_key: KEY.into(),
        plaintext: Plaintext::Pattern {
            len,
            seed: len ^ 0x5eed,
        },
        newsletter: false,
        options: Options::default(),
        source: None,
        expected: None,
    }
}

fn json(status: u16, body: &str) -> Answer {
    Answer::Response(ResponseSpec {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: BodySpec::Text(body.into()),
    })
}

fn status(code: u16, headers: &[(&str, &str)]) -> Answer {
    Answer::Response(ResponseSpec {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: BodySpec::Text(format!("status {code}")),
    })
}

/// The token in an upload URL.
fn token(req: &RequestSpec) -> String {
    let path = req.url.split('?').next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("").to_owned()
}

/// A success answer shaped like the CDN's (PROTOCOL §4).
fn uploaded(req: &RequestSpec) -> Answer {
    let t = token(req);
    let dp = format!("/o1/v/t62.7118-24/f1/m233/up-oil-image-{t}?ccb=9-4&oh=01_Q5AaIPq0&oe=6790ABCD&_nc_sid=e6ed6c");
    json(
        200,
        &format!(r#"{{"url":"https://{H1}{dp}&mms3=true","direct_path":"{dp}"}}"#),
    )
}

fn ok_fields(fields: &'static [&'static str]) -> impl Fn(&Outcome) -> bool {
    move |o| matches!(o, Outcome::Ok(f) if fields.iter().all(|k| f.iter().any(|(fk, _)| fk == k)))
}

fn err(kind: &'static str) -> impl Fn(&Outcome) -> bool {
    move |o| matches!(o, Outcome::Error { kind: k, .. } if k == kind)
}

type Responder = Box<dyn FnMut(&RequestSpec, usize) -> Answer>;

struct Def {
    name: String,
    description: String,
    kind: Kind,
    input: CassetteInput,
    conns: Vec<ConnSpec>,
    respond: Responder,
    check: Box<dyn Fn(&Outcome) -> bool>,
}

fn def(
    name: &str,
    description: &str,
    kind: Kind,
    input: CassetteInput,
    conns: Vec<ConnSpec>,
    respond: impl FnMut(&RequestSpec, usize) -> Answer + 'static,
    check: impl Fn(&Outcome) -> bool + 'static,
) -> Def {
    Def {
        name: name.into(),
        description: description.into(),
        kind,
        input,
        conns,
        respond: Box::new(respond),
        check: Box::new(check),
    }
}

fn download_input(len: u64) -> CassetteInput {
    let mut i = input("image", len);
    i.source = Some(SourceSpec::DirectPath(
        "/o1/v/t62.7118-24/f1/m233/up-oil-image-abc?ccb=9-4&oh=01_Q5AaIPq0&oe=6790ABCD&_nc_sid=e6ed6c".into(),
    ));
    i.expected = Some(ExpectedSpec {
        file_enc_sha256: Some("auto".into()),
        file_sha256: Some("auto".into()),
        file_length: Some(len),
    });
    i
}

fn media(from: u64) -> ResponseSpec {
    ResponseSpec {
        status: 200,
        headers: vec![],
        body: BodySpec::Media {
            from,
            to: None,
            flip_last_bit: false,
        },
    }
}

fn defs() -> Vec<Def> {
    let mut v = Vec::new();
    for (i, t) in wamedia::MEDIA_TYPE_NAMES.iter().copied().enumerate() {
        v.push(def(
            &format!("upload-happy-{t}"),
            &format!("A {t} uploads on the first try; the request is exactly PROTOCOL §4."),
            Kind::Upload,
            input(t, 100 + 97 * i as u64),
            vec![conn(&[H1, H2])],
            |r, _| uploaded(r),
            ok_fields(&[
                "url",
                "direct_path",
                "media_key",
                "file_enc_sha256",
                "file_sha256",
                "file_length",
            ]),
        ));
    }
    v.push(def(
        "upload-fallback-after-5xx",
        "The first host answers 503; the second takes the upload at once.",
        Kind::Upload,
        input("image", 1000),
        vec![conn(&[H1, H2])],
        |r, n| {
            if n == 0 {
                status(503, &[])
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-fallback-after-transport-failure",
        "Connecting to the first host fails; the second takes the upload.",
        Kind::Upload,
        input("video", 1000),
        vec![conn(&[H1, H2])],
        |r, n| {
            if n == 0 {
                Answer::Failure("connection refused".into())
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    let mut renewed = conn(&[H1, H2]);
    renewed.auth = format!("{AUTH_PLACEHOLDER}-2");
    v.push(def(
        "upload-401-renewal-success",
        "401: the machine asks for a forced renewal, retries with the new auth, succeeds.",
        Kind::Upload,
        input("document", 1000),
        vec![conn(&[H1, H2]), renewed.clone()],
        |r, _| {
            if r.url.contains("auth=REDACTED-AUTH&") {
                status(401, &[])
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-second-auth-failure-final",
        "403 before and after the forced renewal: auth rejected, final.",
        Kind::Upload,
        input("document", 1000),
        vec![conn(&[H1, H2]), renewed],
        |_, _| status(403, &[]),
        err("AuthRejected"),
    ));
    let mut short = conn(&[H1]);
    short.auth_ttl = Some(1);
    let mut expiring = input("image", 1000);
    expiring.options.max_attempts = Some(5);
    v.push(def(
        "upload-expired-conn-renewed",
        "The auth lives 1 s; after two failed rounds (0.5 s and 1 s of backoff) it is stale and renewed before the next request.",
        Kind::Upload,
        expiring,
        vec![short],
        |r, n| if n < 2 { status(500, &[]) } else { uploaded(r) },
        ok_fields(&["url"]),
    ));
    let mut stale = conn(&[H1, H2]);
    stale.ttl = 0;
    let mut fresh = conn(&[H1, H2]);
    fresh.auth = format!("{AUTH_PLACEHOLDER}-2");
    v.push(def(
        "upload-expired-conn-renewed-before-first-request",
        "The provider first hands a cached connection that has already expired (ttl 0); the machine asks for a fresh one (forced) before its first request.",
        Kind::Upload,
        input("image", 1000),
        vec![stale, fresh],
        |r, _| uploaded(r),
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-empty-host-list",
        "A media connection without hosts is an error before any request.",
        Kind::Upload,
        input("image", 10),
        vec![conn(&[])],
        |r, _| uploaded(r),
        err("NoHosts"),
    ));
    let mut big = input("video", 4000);
    big.options.resume_threshold = Some(1024);
    v.push(def(
        "upload-resume-complete",
        "A large body: the resume check answers \"complete\"; nothing is sent.",
        Kind::Upload,
        big.clone(),
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"resume":"complete","url":"https://{H1}/d/{t}?ccb=1","direct_path":"/d/{t}?ccb=1"}}"#))
        },
        ok_fields(&["direct_path"]),
    ));
    v.push(def(
        "upload-resume-offset",
        "The resume check answers 2048: only body[2048..] is sent, with file_offset=2048.",
        Kind::Upload,
        big.clone(),
        vec![conn(&[H1])],
        |r, n| {
            if n == 0 {
                json(200, r#"{"resume":"2048"}"#)
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-resume-nonsense",
        "The resume check answers an offset past the end: the whole body is sent.",
        Kind::Upload,
        big.clone(),
        vec![conn(&[H1])],
        |r, n| {
            if n == 0 {
                json(200, r#"{"resume":"99999999"}"#)
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-resume-after-drop",
        "A large upload drops mid-body; the next attempt checks first and sends the rest.",
        Kind::Upload,
        big,
        vec![conn(&[H1, H2])],
        |r, n| match n {
            0 => json(200, r#"{"resume":0}"#),
            1 => Answer::Failure("connection reset by peer".into()),
            2 => json(200, r#"{"resume":1600}"#),
            _ => uploaded(r),
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-200-garbage",
        "The first host answers 200 with HTML; the second with the real JSON.",
        Kind::Upload,
        input("image", 500),
        vec![conn(&[H1, H2])],
        |r, n| {
            if n == 0 {
                Answer::Response(ResponseSpec {
                    status: 200,
                    headers: vec![],
                    body: BodySpec::Text("<html>upstream hiccup</html>".into()),
                })
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-200-without-url",
        "Every host answers 200 with JSON lacking url and direct_path: every host failed, each listed.",
        Kind::Upload,
        {
            let mut i = input("image", 500);
            i.options.max_rounds = Some(1);
            i
        },
        vec![conn(&[H1, H2])],
        |_, _| json(200, r#"{"status":"ok"}"#),
        err("AllHostsFailed"),
    ));
    v.push(def(
        "upload-unknown-extra-fields",
        "The answer carries handle, object_id, meta_hmac, ts, fbid and fields nobody knows: the known ones are kept.",
        Kind::Upload,
        input("sticker", 300),
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"url":"https://{H1}/d/{t}","direct_path":"/d/{t}","handle":"hdl-1","object_id":"1234567890","meta_hmac":"bWV0YQ==","ts":1732500000,"fbid":987654321,"new_field":{{"x":[1,2]}}}}"#))
        },
        ok_fields(&["handle", "object_id", "meta_hmac", "ts", "fbid"]),
    ));
    v.push(def(
        "upload-413-final",
        "413 Payload Too Large is final: no other host is tried.",
        Kind::Upload,
        input("video", 700),
        vec![conn(&[H1, H2])],
        |_, _| {
            Answer::Response(ResponseSpec {
                status: 413,
                headers: vec![],
                body: BodySpec::Text("{\"error\":\"too large\"}".into()),
            })
        },
        err("Status"),
    ));
    v.push(def(
        "upload-429-retry-after",
        "429 with Retry-After: 7; the same host is asked again 7 s later.",
        Kind::Upload,
        input("audio", 700),
        vec![conn(&[H1, H2])],
        |r, n| {
            if n == 0 {
                status(429, &[("retry-after", "7")])
            } else {
                uploaded(r)
            }
        },
        ok_fields(&["url"]),
    ));
    v.push(def(
        "upload-every-host-fails",
        "Both hosts fail in every round (503, reset); the error lists each host's reason.",
        Kind::Upload,
        input("image", 700),
        vec![conn(&[H1, H2])],
        |r, _| {
            if r.url.contains(H1) {
                status(503, &[])
            } else {
                Answer::Failure("connection reset by peer".into())
            }
        },
        err("AllHostsFailed"),
    ));
    let mut news = input("image", 800);
    news.newsletter = true;
    v.push(def(
        "upload-newsletter",
        "Newsletter media goes up unencrypted to /newsletter/newsletter-image with the plaintext hash as token; the handle is kept.",
        Kind::Upload,
        news,
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"url":"https://{H1}/n/{t}","direct_path":"/n/{t}","handle":"nl-handle-1"}}"#))
        },
        ok_fields(&["handle", "file_sha256"]),
    ));
    // Downloads.
    v.push(def(
        "download-happy-path",
        "The media comes from the first host, verified; hash, mms-type and __wa-mms join the direct path's query with &.",
        Kind::Download,
        download_input(5000),
        vec![conn(&[H1, H2])],
        |_, _| Answer::Response(media(0)),
        ok_fields(&["file_sha256"]),
    ));
    let mut by_url = download_input(300);
    by_url.source = Some(SourceSpec::Url(format!(
        "https://{H1}/o1/v/t62.7118-24/f1/m233/x?ccb=9-4&oh=01_Q&oe=67&mms3=true"
    )));
    v.push(def(
        "download-from-url",
        "A full URL from a message is used as is; no media connection is asked for.",
        Kind::Download,
        by_url,
        vec![],
        |_, _| Answer::Response(media(0)),
        ok_fields(&["file_sha256"]),
    ));
    v.push(def(
        "download-404-then-next-host",
        "404 on the first host; the second serves it.",
        Kind::Download,
        download_input(2000),
        vec![conn(&[H1, H2])],
        |_, n| {
            if n == 0 {
                status(404, &[])
            } else {
                Answer::Response(media(0))
            }
        },
        ok_fields(&["host"]),
    ));
    v.push(def(
        "download-410-everywhere",
        "410 Gone on every host: media gone, ask the sender to re-upload.",
        Kind::Download,
        download_input(2000),
        vec![conn(&[H1, H2])],
        |_, _| status(410, &[]),
        err("MediaGone"),
    ));
    let mut no_enc = download_input(2000);
    no_enc.expected.as_mut().unwrap().file_enc_sha256 = None;
    v.push(def(
        "download-tampered-mac",
        "The body's last byte (the MAC) is flipped: MAC mismatch.",
        Kind::Download,
        no_enc,
        vec![conn(&[H1])],
        |_, _| {
            Answer::Response(ResponseSpec {
                status: 200,
                headers: vec![],
                body: BodySpec::Media {
                    from: 0,
                    to: None,
                    flip_last_bit: true,
                },
            })
        },
        err("Integrity.MacMismatch"),
    ));
    let mut wrong = download_input(2000);
    wrong.expected.as_mut().unwrap().file_enc_sha256 =
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    v.push(def(
        "download-wrong-enc-hash",
        "The message's file_enc_sha256 does not match the body.",
        Kind::Download,
        wrong,
        vec![conn(&[H1])],
        |_, _| Answer::Response(media(0)),
        err("Integrity.EncHashMismatch"),
    ));
    v.push(def(
        "download-truncated-body",
        "The host ends the body 5 bytes early without a Content-Length: bad length.",
        Kind::Download,
        download_input(2000),
        vec![conn(&[H1])],
        |_, _| {
            Answer::Response(ResponseSpec {
                status: 200,
                headers: vec![],
                body: BodySpec::Media {
                    from: 0,
                    to: Some(2026 - 5),
                    flip_last_bit: false,
                },
            })
        },
        err("Integrity.BadLength"),
    ));
    v.push(def(
        "download-range-resume-after-drop",
        "The connection drops after 1000 bytes; the next request asks Range: bytes=992- and gets a 206.",
        Kind::Download,
        download_input(5000),
        vec![conn(&[H1, H2])],
        |_, n| {
            let total = 5018u64;
            if n == 0 {
                Answer::Cut(ResponseSpec {
                    status: 200,
                    headers: vec![("content-length".into(), total.to_string())],
                    body: BodySpec::Media { from: 0, to: Some(1000), flip_last_bit: false },
                })
            } else {
                Answer::Response(ResponseSpec {
                    status: 206,
                    headers: vec![
                        ("content-range".into(), format!("bytes 992-{}/{total}", total - 1)),
                        ("content-length".into(), (total - 992).to_string()),
                    ],
                    body: BodySpec::Media { from: 992, to: None, flip_last_bit: false },
                })
            }
        },
        ok_fields(&["file_sha256"]),
    ));
    v
}

/// Authors every cassette of the library. Fails when a scenario does not reach the
/// outcome it promises.
///
/// # Errors
/// The scenario and what went wrong.
pub fn cassettes() -> Result<Vec<Cassette>, String> {
    defs()
        .into_iter()
        .map(|d| {
            let mut script = Scripted::new(d.conns, d.respond);
            let c = author(&d.name, &d.description, d.kind, d.input, &mut script)
                .map_err(|e| format!("{}: {e}", d.name))?;
            if !(d.check)(&c.outcome) {
                return Err(format!("{}: unexpected outcome {:?}", d.name, c.outcome));
            }
            Ok(c)
        })
        .collect()
}
