//! The cassette library: every named scenario, as a scripted CDN that authors it.
//!
//! These cassettes are synthetic: written by driving the core against the CDN behaviour
//! docs/PROTOCOL.md (v3) describes (no real CDN is reachable from here). Each scenario states the
//! outcome it must reach, so authoring fails if the machine does something else. Real
//! recordings (see the README's "Recording cassettes") go beside them.

use crate::cassette::*;
use crate::replay::{author, Answer, Scripted};

const H1: &str = "mmg.whatsapp.net";
const H2: &str = "media-fra3-1.cdn.whatsapp.net";
const KEY: &str = "5a1e9d3c0b7f46a28e1d2c3b4a5968778695a4b3c2d1e0f0123456789abcdef0";

fn conn(hosts: &[&str]) -> ConnSpec {
    ConnSpec::named(AUTH_PLACEHOLDER, 300, hosts)
}

/// A connection shaped like real `media_conn` answers (PROTOCOL v3 §3): two regional pop
/// hosts (download only: an empty upload list), the primary `mmg` host, a fallback.
fn real_shape() -> ConnSpec {
    let mut c = typed(
        r#"[{"hostname":"media-fra5-1.cdn.whatsapp.net","type":"primary","class":"pop","fallback_hostname":"media-fra5-2.cdn.whatsapp.net","upload":[],"download":["image","video","audio","ptt","ptv","document","sticker","gif"],"download_buckets":["0","1","2"]},
            {"hostname":"media-ams4-1.cdn.whatsapp.net","type":"primary","class":"pop","fallback_hostname":"media-ams4-2.cdn.whatsapp.net","upload":[],"download":["image","video","audio","ptt","ptv","document","sticker","gif"]},
            {"hostname":"mmg.whatsapp.net","type":"primary","fallback_hostname":"mmg-fna.whatsapp.net"},
            {"hostname":"mmg-fallback.whatsapp.net","type":"fallback"}]"#,
    );
    c.auth_ttl = Some(21600);
    c.max_buckets = Some(12);
    c
}

/// A connection in the IQ reply's typed form, from JSON host entries.
fn typed(hosts_json: &str) -> ConnSpec {
    let hosts: Vec<HostSpec> = serde_json::from_str(hosts_json).expect("the library's own JSON");
    ConnSpec { hosts, ..conn(&[]) }
}

fn input(media_type: &str, len: u64) -> CassetteInput {
    CassetteInput {
        media_type: media_type.into(),
        media_key: Some(KEY.into()),
        key_reused: false,
        media_id: None,
        wall_unix: None,
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

/// A direct path shaped like the CDN's, with an `oe` (2038-01-19) after any clock the
/// cassettes are replayed at, over sockets included.
const DIRECT_PATH: &str =
    "/o1/v/t62.7118-24/f1/m233/up-oil-image-abc?ccb=9-4&oh=01_Q5AaIPq0&oe=7FFFFFFF&_nc_sid=e6ed6c";

/// The token in an upload URL.
fn token(req: &RequestSpec) -> String {
    let path = req.url.split('?').next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("").to_owned()
}

/// A success answer shaped like the CDN's (PROTOCOL §4).
fn uploaded(req: &RequestSpec) -> Answer {
    let t = token(req);
    let dp = format!("/o1/v/t62.7118-24/f1/m233/up-oil-image-{t}?ccb=9-4&oh=01_Q5AaIPq0&oe=7FFFFFFF&_nc_sid=e6ed6c");
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
    i.source = Some(SourceSpec::DirectPath(DIRECT_PATH.into()));
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

fn ok() -> impl Fn(&Outcome) -> bool {
    ok_fields(&["url", "direct_path"])
}

/// The same answer to every request.
fn always(a: fn(&RequestSpec) -> Answer) -> impl FnMut(&RequestSpec, usize) -> Answer {
    move |r, _| a(r)
}

/// `first` to the first `n` requests, then the CDN's success answer.
fn then_ok(n: usize, first: fn() -> Answer) -> impl FnMut(&RequestSpec, usize) -> Answer {
    move |r, i| if i < n { first() } else { uploaded(r) }
}

fn text(code: u16, body: &str) -> Answer {
    Answer::Response(ResponseSpec {
        status: code,
        headers: vec![],
        body: BodySpec::Text(body.into()),
    })
}

fn upload_defs(v: &mut Vec<Def>) {
    for (i, t) in wamedia::MEDIA_TYPE_NAMES.iter().copied().enumerate() {
        let len = 100 + 97 * i as u64;
        match t {
            // No upload path: `UploadJob::prepare` refuses it before reading a byte
            // (the core's tests cover the machine's own refusal).
            "payment-background" => {}
            "product-catalog-image" => v.push(def(
                "upload-product-catalog-image",
                "Product catalog images are not encrypted: the plaintext goes up to /product/image, its SHA-256 the token.",
                Kind::Upload,
                CassetteInput { media_key: None, ..input(t, len) },
                vec![conn(&[H1])],
                always(uploaded),
                ok_fields(&["url", "direct_path", "file_sha256"]),
            )),
            _ => v.push(def(
                &format!("upload-happy-{t}"),
                &format!("A {t} uploads on the first try; path, padded token, query order and headers exactly as PROTOCOL v3 §1 and §4."),
                Kind::Upload,
                input(t, len),
                vec![conn(&[H1, H2])],
                always(uploaded),
                ok_fields(&["url", "direct_path", "media_key", "file_enc_sha256", "file_sha256", "file_length"]),
            )),
        }
    }
    v.push(def(
        "upload-5xx-same-host-twice-then-fallback",
        "503 on every attempt: the selected host twice, then the fallback host twice, 1 s, 2 s and 4 s apart (WAWebMmsClientSelectHost); 4 attempts at most.",
        Kind::Upload,
        input("image", 1000),
        vec![conn(&[H1, H2])],
        |_, _| status(503, &[]),
        err("AllHostsFailed"),
    ));
    v.push(def(
        "upload-5xx-first-host-moves-on",
        "The first host answers 503 to every whole body, the second takes it: an HTTP answer never pins the host (PROTOCOL v3 §3), so the third attempt goes to the fallback host.",
        Kind::Upload,
        input("image", 1000),
        vec![conn(&[H1, H2])],
        |r, _| {
            if r.url.starts_with(&format!("https://{H1}/")) {
                status(503, &[])
            } else {
                uploaded(r)
            }
        },
        ok(),
    ));
    v.push(def(
        "upload-pop-hosts-real-shape",
        "A media_conn as real answers list it: regional pop hosts (type primary, class pop, their own fallback_hostname, buckets) with an empty <upload/> serve downloads only and never get an upload; the upload goes to the first host that takes it.",
        Kind::Upload,
        input("image", 800),
        vec![real_shape()],
        |r, _| {
            if r.url.contains(".cdn.whatsapp.net/") {
                status(415, &[])
            } else {
                uploaded(r)
            }
        },
        ok(),
    ));
    v.push(def(
        "upload-415-unknown-capability-next-host",
        "Plain host names say nothing of uploads: the first host's 415 to a whole body may mean it takes none (a pop host), so the next host gets one try, and takes it (PROTOCOL v3 §3).",
        Kind::Upload,
        input("image", 700),
        vec![conn(&[H2, H1])],
        |r, _| {
            if r.url.starts_with(&format!("https://{H2}/")) {
                status(415, &[])
            } else {
                uploaded(r)
            }
        },
        ok(),
    ));
    v.push(def(
        "upload-415-everywhere-final",
        "Both hosts of unknown capability answer 415: one try on the next host, then a hash mismatch, final.",
        Kind::Upload,
        input("image", 700),
        vec![conn(&[H2, H1])],
        |_, _| status(415, &[]),
        err("HashMismatch"),
    ));
    let mut channel = input("image", 650);
    channel.newsletter = true;
    channel.media_key = None;
    v.push(def(
        "upload-newsletter-host-filter",
        "Channel media's type name is newsletter-image (PROTOCOL v3 §1): a host listing only image is passed over for one listing newsletter-image.",
        Kind::Upload,
        channel,
        vec![typed(&format!(
            r#"[{{"hostname":"{H2}","type":"primary","upload":["image","video"]}},{{"hostname":"{H1}","type":"primary","upload":["image","newsletter-image"]}}]"#
        ))],
        always(uploaded),
        ok_fields(&["url", "direct_path", "file_sha256"]),
    ));
    v.push(def(
        "upload-5xx-then-success",
        "The first attempt answers 502; the second, on the same host 1 s later, takes the upload.",
        Kind::Upload,
        input("image", 1000),
        vec![conn(&[H1, H2])],
        then_ok(1, || status(502, &[])),
        ok(),
    ));
    v.push(def(
        "upload-transport-failure-then-success",
        "Connecting fails; the same host takes the upload on the next attempt.",
        Kind::Upload,
        input("video", 1000),
        vec![conn(&[H1, H2])],
        then_ok(1, || Answer::Failure("connection refused".into())),
        ok(),
    ));
    v.push(def(
        "upload-typed-hosts-order",
        "Typed hosts: a host whose upload list lacks the type is skipped; the primary twice, then its fallback_hostname, then the fallback host.",
        Kind::Upload,
        input("image", 600),
        vec![typed(
            r#"[{"hostname":"mmg-ptt.whatsapp.net","upload":["ptt"]},{"hostname":"mmg.whatsapp.net","type":"primary","fallback_hostname":"media-fra3-2.cdn.whatsapp.net"},{"hostname":"media-fra3-1.cdn.whatsapp.net","type":"fallback"}]"#,
        )],
        |_, _| Answer::Failure("connection reset by peer".into()),
        err("AllHostsFailed"),
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
        ok(),
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
    v.push(def(
        "upload-expired-conn-renewed",
        "The auth lives 1 s; after a 500 and 1 s of backoff it is stale and renewed before the next attempt.",
        Kind::Upload,
        input("image", 1000),
        vec![short],
        then_ok(1, || status(500, &[])),
        ok(),
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
        always(uploaded),
        ok(),
    ));
    v.push(def(
        "upload-empty-host-list",
        "A media connection without hosts is an error before any request.",
        Kind::Upload,
        input("image", 10),
        vec![conn(&[])],
        always(uploaded),
        err("NoHosts"),
    ));
    v.push(def(
        "upload-no-host-takes-the-type",
        "The only host takes video uploads: an image upload fails naming the type, no request.",
        Kind::Upload,
        input("image", 10),
        vec![typed(
            r#"[{"hostname":"mmg.whatsapp.net","upload":["video"]}]"#,
        )],
        always(uploaded),
        err("NoHosts"),
    ));
    let mut big = input("video", 4000);
    big.options.resume_threshold = Some(1024);
    v.push(def(
        "upload-fresh-key-never-probes",
        "A large body under a fresh key: no resume probe (the CDN cannot hold it), one POST of the whole body.",
        Kind::Upload,
        big.clone(),
        vec![conn(&[H1])],
        always(uploaded),
        ok(),
    ));
    let mut reused = big;
    reused.key_reused = true;
    v.push(def(
        "upload-resume-complete",
        "A reused key: the probe (resume=1, no body) answers \"complete\"; nothing is sent.",
        Kind::Upload,
        reused.clone(),
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"resume":"complete","url":"https://{H1}/d/{t}?ccb=1","direct_path":"/d/{t}?ccb=1"}}"#))
        },
        ok_fields(&["direct_path"]),
    ));
    v.push(def(
        "upload-resume-bytestart",
        "A reused key: the probe answers 2048; body[2048..] goes up with bytestart=2048&byteend=len on the same host.",
        Kind::Upload,
        reused.clone(),
        vec![conn(&[H1, H2])],
        |r, n| if n == 0 { json(200, r#"{"resume":"2048"}"#) } else { uploaded(r) },
        ok(),
    ));
    v.push(def(
        "upload-resume-nonsense",
        "The probe answers an offset past the end: the whole body is sent.",
        Kind::Upload,
        reused.clone(),
        vec![conn(&[H1])],
        |r, n| {
            if n == 0 {
                json(200, r#"{"resume":"99999999"}"#)
            } else {
                uploaded(r)
            }
        },
        ok(),
    ));
    v.push(def(
        "upload-resume-probe-404",
        "The probe answers 404 (nothing stored): the whole body is sent.",
        Kind::Upload,
        reused.clone(),
        vec![conn(&[H1])],
        |r, n| {
            if n == 0 {
                status(404, &[])
            } else {
                uploaded(r)
            }
        },
        ok(),
    ));
    v.push(def(
        "upload-415-after-resumed-partial",
        "The probe answers 2048, the rest is refused with 415 (hash mismatch): one fresh send of the whole body from 0.",
        Kind::Upload,
        reused,
        vec![conn(&[H1])],
        |r, n| match n {
            0 => json(200, r#"{"resume":2048}"#),
            1 => text(415, "hash mismatch"),
            _ => uploaded(r),
        },
        ok(),
    ));
    v.push(def(
        "upload-200-garbage",
        "200 with an HTML page: a malformed answer, final (WhatsApp Web does not retry it either).",
        Kind::Upload,
        input("image", 500),
        vec![conn(&[H1, H2])],
        |_, _| text(200, "<html>upstream hiccup</html>"),
        err("Malformed"),
    ));
    v.push(def(
        "upload-200-without-url",
        "200 with JSON lacking url and direct_path: malformed, final.",
        Kind::Upload,
        input("image", 500),
        vec![conn(&[H1, H2])],
        |_, _| json(200, r#"{"status":"ok"}"#),
        err("Malformed"),
    ));
    v.push(def(
        "upload-url-without-direct-path",
        "200 with a url but no direct_path: both are required (WAWebMmsClientMmsUpload).",
        Kind::Upload,
        input("image", 500),
        vec![conn(&[H1])],
        |_, _| json(200, r#"{"url":"https://mmg.whatsapp.net/d/x"}"#),
        err("Malformed"),
    ));
    v.push(def(
        "upload-unknown-extra-fields",
        "The answer carries handle, thumbnail_info, metadata_url, object_id, meta_hmac, ts, fbid and fields nobody knows: the known ones are kept.",
        Kind::Upload,
        input("sticker", 300),
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"url":"https://{H1}/d/{t}","direct_path":"/d/{t}","handle":"hdl-1","thumbnail_info":{{"thumbnail_direct_path":"/t/{t}","thumbnail_sha256":"dGh1bWI="}},"metadata_url":"https://{H1}/meta/1","object_id":"1234567890","meta_hmac":"bWV0YQ==","ts":1732500000,"fbid":987654321,"new_field":{{"x":[1,2]}}}}"#))
        },
        ok_fields(&["handle", "thumbnail_info", "metadata_url", "object_id", "meta_hmac", "ts", "fbid"]),
    ));
    let mut thumb = input("image", 400);
    thumb.options.server_thumb_gen = Some(true);
    v.push(def(
        "upload-server-thumb-gen",
        "server_thumb_gen=1 is asked last in the query; the answer's thumbnail_info is kept.",
        Kind::Upload,
        thumb,
        vec![conn(&[H1])],
        |r, _| {
            let t = token(r);
            json(200, &format!(r#"{{"url":"https://{H1}/d/{t}","direct_path":"/d/{t}","thumbnail_info":{{"thumbnail_direct_path":"/t/{t}","thumbnail_sha256":"dGh1bWI="}}}}"#))
        },
        ok_fields(&["thumbnail_info"]),
    ));
    for (code, kind, body) in [
        (413, "TooLarge", "{\"error\":\"too large\"}"),
        (415, "HashMismatch", "hash mismatch"),
        (507, "Throttled", "throttled"),
        (408, "Status", "request timeout"),
        (404, "Status", "not found"),
    ] {
        v.push(def(
            &format!("upload-{code}-final"),
            &format!("HTTP {code} is final ({kind}): no other attempt, no other host (the host's upload list names the type, so even a 415 is no sign of a download-only host)."),
            Kind::Upload,
            input("video", 700),
            vec![typed(&format!(
                r#"[{{"hostname":"{H1}","type":"primary","upload":["image","video","audio","document"]}},{{"hostname":"{H2}","type":"fallback","upload":["video"]}}]"#
            ))],
            move |_, _| text(code, body),
            err(kind),
        ));
    }
    v.push(def(
        "upload-429-retry-after",
        "429 with Retry-After: 7 (within the cap): the same host is asked once more 7 s later.",
        Kind::Upload,
        input("audio", 700),
        vec![conn(&[H1, H2])],
        then_ok(1, || status(429, &[("retry-after", "7")])),
        ok(),
    ));
    v.push(def(
        "upload-429-twice-throttled",
        "429 with Retry-After twice: one wait, then throttled, final.",
        Kind::Upload,
        input("audio", 700),
        vec![conn(&[H1, H2])],
        |_, _| status(429, &[("retry-after", "7")]),
        err("Throttled"),
    ));
    v.push(def(
        "upload-429-retry-after-beyond-the-cap",
        "429 with Retry-After: 999999999: throttled at once, never hammered.",
        Kind::Upload,
        input("audio", 700),
        vec![conn(&[H1, H2])],
        |_, _| status(429, &[("retry-after", "999999999")]),
        err("Throttled"),
    ));
    v.push(def(
        "upload-503-retry-after",
        "503 with Retry-After: 5: the next attempt waits 5 s (more than the 1 s backoff).",
        Kind::Upload,
        input("image", 700),
        vec![conn(&[H1, H2])],
        then_ok(1, || status(503, &[("retry-after", "5")])),
        ok(),
    ));
    v.push(def(
        "upload-every-attempt-fails",
        "503 then resets: every attempt fails; the error lists each host's reason.",
        Kind::Upload,
        input("image", 700),
        vec![conn(&[H1, H2])],
        |_, n| {
            if n % 2 == 0 {
                status(503, &[])
            } else {
                Answer::Failure("connection reset by peer".into())
            }
        },
        err("AllHostsFailed"),
    ));
    for t in ["image", "sticker", "ptt"] {
        let mut news = input(t, 800);
        news.newsletter = true;
        v.push(def(
            &format!("upload-newsletter-{t}"),
            &format!("Newsletter {t} goes up unencrypted to its own newsletter path with the plaintext's padded hash as token; the handle is kept."),
            Kind::Upload,
            news,
            vec![conn(&[H1])],
            |r, _| {
                let t = token(r);
                json(200, &format!(r#"{{"url":"https://{H1}/m1/v/t24/{t}","direct_path":"/m1/v/t24/{t}","handle":"nl-handle-1"}}"#))
            },
            ok_fields(&["handle", "file_sha256"]),
        ));
    }
}

fn serve_media(_: &RequestSpec) -> Answer {
    Answer::Response(media(0))
}

fn download_defs(v: &mut Vec<Def>) {
    v.push(def(
        "download-happy-path",
        "The media comes from the first host, verified; the padded hash, mms-type and __wa-mms join the direct path's query with &.",
        Kind::Download,
        download_input(5000),
        vec![conn(&[H1, H2])],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    for t in ["sticker", "ptt", "ptv"] {
        let mut i = download_input(700);
        i.media_type = t.into();
        v.push(def(
            &format!("download-mms-type-{t}"),
            &format!("A {t}: the download's mms-type is PROTOCOL v3's column for it (ptv: `ptv`)."),
            Kind::Download,
            i,
            vec![conn(&[H1])],
            always(serve_media),
            ok_fields(&["file_sha256"]),
        ));
    }
    let mut by_url = download_input(300);
    by_url.source = Some(SourceSpec::Url(format!(
        "https://{H1}{DIRECT_PATH}&mms3=true"
    )));
    v.push(def(
        "download-from-url",
        "A full https URL on a whatsapp.net host is used as is; no media connection is asked for.",
        Kind::Download,
        by_url,
        vec![],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    let mut on_conn = download_input(300);
    on_conn.source = Some(SourceSpec::Url("https://cdn.example.net/d/x?ccb=1".into()));
    v.push(def(
        "download-from-url-on-a-connection-host",
        "A full URL on a host that is not whatsapp.net: used only because the media connection names that host.",
        Kind::Download,
        on_conn,
        vec![conn(&["cdn.example.net"])],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    for (name, url) in [
        ("http", format!("http://{H1}/d/x")),
        ("foreign-host", "https://evil.example/d/x".to_string()),
        (
            "lookalike-host",
            "https://mmg.whatsapp.net.evil.example/d/x".to_string(),
        ),
    ] {
        let mut i = download_input(300);
        i.source = Some(SourceSpec::Url(url));
        v.push(def(
            &format!("download-untrusted-url-{name}"),
            "A message's URL off WhatsApp's hosts and the connection's: refused, no request.",
            Kind::Download,
            i,
            vec![conn(&[H1])],
            always(serve_media),
            err("UntrustedUrl"),
        ));
    }
    for (name, path) in [
        ("at-sign", "@evil.example/x"),
        ("double-slash", "//evil.example/x"),
        ("backslash", "\\\\evil.example\\x"),
        ("no-leading-slash", "evil.example/x"),
    ] {
        let mut i = download_input(300);
        i.source = Some(SourceSpec::DirectPath(path.into()));
        v.push(def(
            &format!("download-malicious-path-{name}"),
            "A direct_path that would change the host: refused (\"malicious directPath\"), no request.",
            Kind::Download,
            i,
            vec![conn(&[H1])],
            always(serve_media),
            err("MaliciousPath"),
        ));
    }
    let mut late = download_input(300);
    late.source = Some(SourceSpec::DirectPath(
        "/o1/v/t62.7118-24/f1/m233/up-oil-image-abc?ccb=9-4&oh=01_Q5AaIPq0&oe=5F000000&_nc_sid=e6ed6c".into(),
    ));
    v.push(def(
        "download-expired-oe",
        "The direct path's oe (hex Unix seconds) has passed by the local clock: the request is still made (a clock running ahead must not kill live media, PROTOCOL v3 §5); its plain 403 is then media expired, final: ask the sender to re-upload.",
        Kind::Download,
        late.clone(),
        vec![conn(&[H1, H2])],
        |_, _| text(403, "Forbidden"),
        err("MediaExpired"),
    ));
    v.push(def(
        "download-oe-passed-still-served",
        "The direct path's oe has passed by the local clock, but the CDN still serves it: fetched and verified (PROTOCOL v3 §5).",
        Kind::Download,
        late,
        vec![conn(&[H1])],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    v.push(def(
        "download-pop-hosts-real-shape",
        "A media_conn as real answers list it: the regional pop host that serves the type comes first for downloads.",
        Kind::Download,
        download_input(1200),
        vec![real_shape()],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    v.push(def(
        "download-403-signature-expired",
        "403 \"URL signature expired\": media expired, final.",
        Kind::Download,
        download_input(300),
        vec![conn(&[H1, H2])],
        |_, _| text(403, "URL signature expired"),
        err("MediaExpired"),
    ));
    let mut renewed = conn(&[H1]);
    renewed.auth = format!("{AUTH_PLACEHOLDER}-2");
    v.push(def(
        "download-401-renewal",
        "401: a forced renewal, then the same host serves it.",
        Kind::Download,
        download_input(300),
        vec![conn(&[H1]), renewed],
        |_, n| {
            if n == 0 {
                status(401, &[])
            } else {
                Answer::Response(media(0))
            }
        },
        ok_fields(&["file_sha256"]),
    ));
    v.push(def(
        "download-507-throttled",
        "507: throttled, final.",
        Kind::Download,
        download_input(300),
        vec![conn(&[H1, H2])],
        |_, _| status(507, &[]),
        err("Throttled"),
    ));
    v.push(def(
        "download-typed-hosts",
        "Typed hosts: the host whose download list lacks images is skipped; a 404 moves to the next host's fallback_hostname.",
        Kind::Download,
        download_input(300),
        vec![typed(
            r#"[{"hostname":"mmg-vid.whatsapp.net","download":["video"]},{"hostname":"mmg.whatsapp.net","fallback_hostname":"media-fra3-2.cdn.whatsapp.net"}]"#,
        )],
        |_, n| if n == 0 { status(404, &[]) } else { Answer::Response(media(0)) },
        ok_fields(&["host"]),
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
        "410 Gone on every host: media gone, ask the sender's phone to re-upload.",
        Kind::Download,
        download_input(2000),
        vec![conn(&[H1, H2])],
        |_, _| status(410, &[]),
        err("MediaGone"),
    ));
    let mut news = download_input(900);
    news.newsletter = true;
    news.media_key = None;
    news.source = Some(SourceSpec::DirectPath(
        "/m1/v/t24/An-channel-image?ccb=9-4&oh=01_Q&oe=7FFFFFFF".into(),
    ));
    news.expected.as_mut().expect("set").file_enc_sha256 = None;
    v.push(def(
        "download-unencrypted-newsletter",
        "Newsletter media: no key; fetched with mms-type=newsletter-image (PROTOCOL v3 §1); the body is the plaintext, checked against file_sha256 and file_length.",
        Kind::Download,
        news.clone(),
        vec![conn(&[H1])],
        always(serve_media),
        ok_fields(&["file_sha256", "file_length"]),
    ));
    v.push(def(
        "download-unencrypted-tampered",
        "Newsletter media whose last byte was changed: file_sha256 mismatch, nothing published.",
        Kind::Download,
        news.clone(),
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
        err("Integrity.PlainHashMismatch"),
    ));
    let mut product = news;
    product.newsletter = false;
    product.media_type = "product-catalog-image".into();
    v.push(def(
        "download-product-catalog-image",
        "A product catalog image: unencrypted, no mms-type; verified by its SHA-256.",
        Kind::Download,
        product,
        vec![conn(&[H1])],
        always(serve_media),
        ok_fields(&["file_sha256"]),
    ));
    let mut no_enc = download_input(2000);
    no_enc.expected.as_mut().expect("set").file_enc_sha256 = None;
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
    wrong.expected.as_mut().expect("set").file_enc_sha256 =
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    v.push(def(
        "download-wrong-enc-hash",
        "The message's file_enc_sha256 does not match the body.",
        Kind::Download,
        wrong,
        vec![conn(&[H1])],
        always(serve_media),
        err("Integrity.EncHashMismatch"),
    ));
    let truncated = |_: &RequestSpec, _: usize| {
        Answer::Response(ResponseSpec {
            status: 200,
            headers: vec![],
            body: BodySpec::Media {
                from: 0,
                to: Some(2026 - 5),
                flip_last_bit: false,
            },
        })
    };
    let mut unknown_len = download_input(2000);
    unknown_len.expected.as_mut().expect("set").file_length = None;
    v.push(def(
        "download-truncated-body",
        "The host ends the body 5 bytes early without a Content-Length, and the message gives no length: bad length.",
        Kind::Download,
        unknown_len,
        vec![conn(&[H1])],
        truncated,
        err("Integrity.BadLength"),
    ));
    let mut few = download_input(2000);
    few.options.max_attempts = Some(3);
    v.push(def(
        "download-truncated-known-length",
        "The body ends 5 bytes short of what file_length implies: cut short, resumed, and reported as cut short (never as a MAC mismatch).",
        Kind::Download,
        few,
        vec![conn(&[H1])],
        truncated,
        err("AllHostsFailed"),
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
}

fn delete_defs(v: &mut Vec<Def>) {
    let blob = || {
        let mut i = input("history", 300);
        i.source = Some(SourceSpec::DirectPath(DIRECT_PATH.into()));
        i.expected = Some(ExpectedSpec {
            file_enc_sha256: Some("auto".into()),
            ..ExpectedSpec::default()
        });
        i
    };
    v.push(def(
        "delete-history-blob",
        "A history-sync blob is deleted: DELETE /mms/md-msg-hist/{T} with token, d_md and auth (PROTOCOL §6); any 2xx is success.",
        Kind::Delete,
        blob(),
        vec![conn(&[H1, H2])],
        |_, _| json(200, "{}"),
        ok_fields(&["status"]),
    ));
    let mut padded = blob();
    padded.source = Some(SourceSpec::DirectPath(
        "/v/t62.7118-24/hist_n.enc?ccb=9-4&oh=01_Q5AaIPq0&oe=7FFFFFFF".into(),
    ));
    v.push(def(
        "delete-d-md-unpadded",
        "d_md is the base64url of the direct path before '?' without '=' padding, as WhatsApp Web and whatsmeow send it (PROTOCOL v3 §6); this path's base64 would need one.",
        Kind::Delete,
        padded,
        vec![conn(&[H1, H2])],
        |_, _| json(200, "{}"),
        ok_fields(&["status"]),
    ));
    v.push(def(
        "delete-404-final",
        "404: there is no such blob; final.",
        Kind::Delete,
        blob(),
        vec![conn(&[H1, H2])],
        |_, _| status(404, &[]),
        err("Status"),
    ));
    let mut renewed = conn(&[H1]);
    renewed.auth = format!("{AUTH_PLACEHOLDER}-2");
    v.push(def(
        "delete-401-renewal",
        "401: a forced renewal, then the blob is deleted.",
        Kind::Delete,
        blob(),
        vec![conn(&[H1]), renewed],
        |r, _| {
            if r.url.contains("auth=REDACTED-AUTH&") || r.url.ends_with("auth=REDACTED-AUTH") {
                status(401, &[])
            } else {
                json(200, "{}")
            }
        },
        ok_fields(&["status"]),
    ));
}

fn defs() -> Vec<Def> {
    let mut v = Vec::new();
    upload_defs(&mut v);
    download_defs(&mut v);
    delete_defs(&mut v);
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
