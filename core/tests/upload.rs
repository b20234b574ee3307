//! The upload machine, one scenario per test, through the public API, on a virtual clock.
//! Every scenario is written to PROTOCOL v2 and would fail on v1's behaviour.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wamedia::*;
use wamedia_driver::{PreparedUpload, UploadJob};

const OK: &str = r#"{"url":"https://mmg.whatsapp.net/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b","direct_path":"/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b"}"#;

fn spec_of(t: MediaType, plain: &[u8]) -> (Vec<u8>, UploadSpec) {
    let (body, media) = encrypt(key(), &t, plain).unwrap();
    (body, UploadSpec::encrypted(t, &media, media_id()))
}

fn small() -> (Vec<u8>, UploadSpec) {
    spec_of(MediaType::Image, b"hello, media")
}

/// A video spec whose body is about `len_plain` bytes (content does not matter here).
fn large(len_plain: usize) -> UploadSpec {
    spec_of(MediaType::Video, &vec![1u8; len_plain]).1
}

fn opts() -> UploadOptions {
    let mut o = UploadOptions::default();
    o.resume_threshold = 1024;
    o
}

fn hosts2(t0: Instant) -> impl FnMut(bool, Duration) -> MediaConn {
    move |_, at| conn_at(t0, at, "tok/en+=", &["h1.example", "h2.example"])
}

fn times_ms<O>(run: &Run<O>) -> Vec<u128> {
    run.requests.iter().map(|(t, _)| t.as_millis()).collect()
}

#[test]
fn the_request_is_exactly_v2_padded_token_form_encoded_media_id_last() {
    let t0 = Instant::now();
    let (body, spec) = small();
    let token = spec.token();
    assert!(token.ends_with('='), "padded base64url: {token}");
    assert!(!token.contains('+') && !token.contains('/'));
    let query_token = token.replace('=', "%3D");
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    let r = run.outcome.unwrap();
    let (_, req) = &run.requests[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(
        req.url,
        format!(
            "https://h1.example/mms/image/{token}?auth=tok%2Fen%2B%3D&token={query_token}&media_id=4242"
        )
    );
    let h = &req.headers;
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["origin"], "https://web.whatsapp.com");
    assert_eq!(h["referer"], "https://web.whatsapp.com/");
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert!(h.get("user-agent").is_none(), "no User-Agent naming us");
    assert_eq!(
        req.body,
        BodySpec::UploadBody {
            from: 0,
            to: body.len() as u64
        }
    );
    assert!(req.redacted_url().contains("auth=<redacted>"));
    assert!(!format!("{req:?}").contains("tok%2Fen"));
    assert_eq!(r.direct_path, "/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b");
    assert_eq!(r.media_key, Some(key()));
    assert_eq!(r.media_type, MediaType::Image);
    assert_eq!(r.file_length, 12);
    assert_eq!(run.conn_asks, vec![(Duration::ZERO, false)]);
    assert_eq!(req.to_http().unwrap().uri().host(), Some("h1.example"));
}

#[test]
fn each_type_goes_up_on_its_v2_path() {
    for (t, path) in [
        (MediaType::Sticker, "/mms/sticker/"),
        (MediaType::Ptt, "/mms/ptt/"),
        (MediaType::Gif, "/mms/gif/"),
        (MediaType::Ptv, "/mms/video/"),
        (MediaType::ImageThumbnail, "/mms/thumbnail-image/"),
        (MediaType::VideoThumbnail, "/mms/thumbnail-video/"),
        (MediaType::DocumentThumbnail, "/mms/thumbnail-document/"),
        (MediaType::History, "/mms/md-msg-hist/"),
    ] {
        let t0 = Instant::now();
        let mut up = Upload::new(spec_of(t.clone(), b"x").1, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
        assert!(run.outcome.is_ok());
        assert!(
            run.urls()[0].starts_with(&format!("https://h1.example{path}")),
            "{t}: {}",
            run.urls()[0]
        );
    }
}

#[test]
fn types_without_a_path_fail_typed_before_any_request() {
    let t0 = Instant::now();
    let (_, mut spec) = spec_of(MediaType::PaymentBackground, b"x");
    spec.media_type = MediaType::PaymentBackground;
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    let e = run.outcome.unwrap_err();
    assert!(
        matches!(&e, UploadError::Unsupported(u) if u.what == Unsupported::Upload),
        "{e:?}"
    );
    assert!(e.to_string().contains("payment-background"), "{e}");
    assert!(run.requests.is_empty());
    // No newsletter path for history blobs.
    let (sha, len) = newsletter_metadata(b"x");
    let spec = UploadSpec::newsletter(MediaType::History, sha, len, media_id());
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(
        matches!(run.outcome, Err(UploadError::Unsupported(ref u)) if u.what == Unsupported::NewsletterUpload)
    );
    assert!(run.requests.is_empty());
    // An encrypted type may not go up in the clear outside a newsletter.
    let spec = UploadSpec::unencrypted(MediaType::Image, sha, len, media_id());
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(
        matches!(run.outcome, Err(UploadError::Unsupported(ref u)) if u.what == Unsupported::Unencrypted)
    );
}

#[test]
fn product_catalog_images_go_up_unencrypted_on_the_product_path() {
    assert!(encrypt(key(), &MediaType::ProductCatalogImage, b"x").is_err());
    let t0 = Instant::now();
    let plain = b"a product photo";
    let (sha, len) = newsletter_metadata(plain);
    let spec = UploadSpec::unencrypted(MediaType::ProductCatalogImage, sha, len, media_id());
    let token = spec.token();
    assert_eq!(token, b64::url(&sha));
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(run.urls()[0].starts_with(&format!("https://h1.example/product/image/{token}?")));
    let r = run.outcome.unwrap();
    assert_eq!(
        run.requests[0].1.body,
        BodySpec::UploadBody { from: 0, to: len }
    );
    assert_eq!(r.media_key, None);
    assert_eq!(r.file_enc_sha256, None);
}

#[test]
fn newsletter_stickers_and_voice_notes_have_their_own_paths() {
    for (t, path) in [
        (MediaType::Sticker, "/newsletter/newsletter-sticker/"),
        (MediaType::Ptt, "/newsletter/newsletter-ptt/"),
        (MediaType::Ptv, "/newsletter/newsletter-ptv/"),
        (MediaType::Gif, "/newsletter/newsletter-gif/"),
        (
            MediaType::LinkThumbnail,
            "/newsletter/newsletter-thumbnail-link/",
        ),
    ] {
        let t0 = Instant::now();
        let plain = b"channel media";
        let (sha, len) = newsletter_metadata(plain);
        let spec = UploadSpec::newsletter(t.clone(), sha, len, media_id());
        let mut up = Upload::new(spec, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |_, _| {
            ok_json(r#"{"url":"https://h/m1/x","direct_path":"/m1/x","handle":"HND"}"#)
        });
        assert!(
            run.urls()[0].starts_with(&format!("https://h1.example{path}{}?", b64::url(&sha))),
            "{}",
            run.urls()[0]
        );
        let r = run.outcome.unwrap();
        assert_eq!(r.handle.as_deref(), Some("HND"));
        assert_eq!(r.media_key, None);
    }
}

#[test]
fn server_thumb_gen_is_asked_last_and_thumbnail_info_kept() {
    let t0 = Instant::now();
    let mut o = opts();
    o.server_thumb_gen = true;
    let mut up = Upload::new(small().1.with_media_key_timestamp(1_700_000_000), o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(
            r#"{"url":"https://h/x","direct_path":"/x","handle":"H","thumbnail_info":{"thumbnail_direct_path":"/t","thumbnail_sha256":"c2hh"},"metadata_url":"https://h/meta","object_id":"O","meta_hmac":"M","ts":1700000001,"fbid":123,"brand_new":{"a":1}}"#,
        )
    });
    assert!(
        run.urls()[0].ends_with("&media_id=4242&server_thumb_gen=1"),
        "{}",
        run.urls()[0]
    );
    let r = run.outcome.unwrap();
    let t = r.thumbnail_info.clone().unwrap();
    assert_eq!(
        (t.direct_path.as_deref(), t.sha256.as_deref()),
        (Some("/t"), Some("c2hh"))
    );
    assert_eq!(r.metadata_url.as_deref(), Some("https://h/meta"));
    assert_eq!(r.object_id.as_deref(), Some("O"));
    assert_eq!(r.fbid.as_deref(), Some("123"));
    assert_eq!(r.ts, Some(1_700_000_001));
    assert_eq!(r.media_key_timestamp, Some(1_700_000_000));
    let json = r.to_json();
    assert_eq!(json["thumbnail_info"]["thumbnail_direct_path"], "/t");
    assert_eq!(json["media_type"], "image");
    assert_eq!(json["metadata_url"], "https://h/meta");
}

#[test]
fn a_2xx_needs_both_url_and_direct_path_and_a_malformed_one_is_final() {
    for body in [
        r#"{"direct_path":"/d/p?x=1"}"#,
        r#"{"url":"https://cdn.example/d/q?y=2"}"#,
        r#"{"url":"","direct_path":"/x"}"#,
        "<html>ok</html>",
    ] {
        let t0 = Instant::now();
        let mut up = Upload::new(small().1, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(body));
        assert!(
            matches!(run.outcome, Err(UploadError::Malformed { .. })),
            "{body}: {:?}",
            run.outcome
        );
        assert_eq!(
            run.requests.len(),
            1,
            "not retried (WhatsApp Web: HttpInvalidResponseError)"
        );
    }
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        Reply::Answer(201, vec![], OK.into())
    });
    assert!(run.outcome.is_ok(), "any 2xx is success");
}

#[test]
fn server_errors_retry_the_same_host_then_the_fallback_with_backoff() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| status(502));
    assert_eq!(
        run.hosts(),
        ["h1.example", "h1.example", "h2.example", "h2.example"]
    );
    assert_eq!(times_ms(&run), [0, 1000, 3000, 7000], "1 s, 2 s, 4 s apart");
    let err = run.outcome.unwrap_err();
    let UploadError::AllHostsFailed { failures, why } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((failures.len(), *why), (4, "attempt limit reached"));
    assert!(err.to_string().contains("h2.example: HTTP 502"), "{err}");
}

#[test]
fn a_5xx_to_a_whole_body_never_pins_the_host_even_for_a_resumable_body() {
    // PROTOCOL v3 §3: an attempt that got an HTTP answer never pins its host, however
    // many bytes it moved; only a body cut mid-way that may resume keeps it.
    let t0 = Instant::now();
    let mut up = Upload::new(large(4000), opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |req, _| {
        if req.host == "h1.example" {
            status(503)
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(
        run.hosts(),
        ["h1.example", "h1.example", "h2.example"],
        "selected host twice, then the fallback"
    );
}

/// A real `media_conn` answer's shape (PROTOCOL v3 §3), as a client hands it over: a
/// regional pop host first, download only (empty `<upload/>`), then the primary host,
/// then the fallback host.
const POP_NODE: &str = r#"{"tag":"iq","attrs":{"type":"result","from":"s.whatsapp.net"},"content":[
  {"tag":"media_conn","attrs":{"auth":"tok","ttl":"300","auth_ttl":"21600","max_buckets":"12"},"content":[
    {"tag":"host","attrs":{"hostname":"media-fra5-1.cdn.whatsapp.net","type":"primary","class":"pop","fallback_hostname":"mmg.whatsapp.net","ip4":"157.240.0.1"},
     "content":[{"tag":"upload","content":[]},{"tag":"download","content":[{"tag":"image"},{"tag":"video"}]},
                {"tag":"download_buckets","content":[{"tag":"0"},{"tag":"1"}]}]},
    {"tag":"host","attrs":{"hostname":"mmg.whatsapp.net","type":"primary"}},
    {"tag":"host","attrs":{"hostname":"mmg-fallback.whatsapp.net","type":"fallback"}}]}]}"#;

#[test]
fn a_pop_host_with_an_empty_upload_list_never_gets_an_upload() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| conn_json(t0, at, POP_NODE),
        |_, _| status(502),
    );
    assert!(run.outcome.is_err());
    assert!(
        !run.hosts().iter().any(|h| h.starts_with("media-fra5")),
        "{:?}",
        run.hosts()
    );
    assert_eq!(
        run.hosts(),
        [
            "mmg.whatsapp.net",
            "mmg.whatsapp.net",
            "mmg-fallback.whatsapp.net",
            "mmg-fallback.whatsapp.net"
        ]
    );
}

#[test]
fn a_415_from_a_host_of_unknown_capability_tries_the_next_host_once() {
    // Plain names say nothing of uploads: the first one's 415 to a whole body may mean
    // "download only" (PROTOCOL v3 §3). The next host gets one try.
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |req, _| {
        if req.host == "h1.example" {
            status(415)
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.hosts(), ["h1.example", "h2.example"]);
    // Both answer 415: final after the second, a hash mismatch.
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| status(415));
    assert_eq!(run.hosts(), ["h1.example", "h2.example"]);
    assert!(matches!(
        run.outcome,
        Err(UploadError::HashMismatch { ref host, .. }) if host == "h2.example"
    ));
    // A host whose upload list names the type: its 415 is final at once.
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[{"hostname":"p","upload":["image"]},"q"]}"#,
            )
        },
        |_, _| status(415),
    );
    assert_eq!(run.hosts(), ["p"]);
    assert!(matches!(run.outcome, Err(UploadError::HashMismatch { .. })));
    // A single host: nowhere else to go, 415 is final.
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| conn_at(t0, at, "tok", &["only.example"]),
        |_, _| status(415),
    );
    assert_eq!(run.hosts(), ["only.example"]);
    assert!(matches!(run.outcome, Err(UploadError::HashMismatch { .. })));
}

#[test]
fn channel_uploads_choose_hosts_by_their_newsletter_type_name() {
    // PROTOCOL v3 §1: channel media's type name is `newsletter-{type}`.
    let t0 = Instant::now();
    let plain = b"channel picture";
    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(plain).into();
    let spec = UploadSpec::newsletter(MediaType::Image, sha, plain.len() as u64, media_id());
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[
                    {"hostname":"img","upload":["image"]},
                    {"hostname":"news","upload":["newsletter-image"]}]}"#,
            )
        },
        |_, _| ok_json(OK),
    );
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.hosts(), ["news"]);
    assert!(run.urls()[0].starts_with("https://news/newsletter/newsletter-image/"));
    // An ordinary image never goes to the channel-only host.
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[{"hostname":"news","upload":["newsletter-image"]},{"hostname":"img","upload":["image"]}]}"#,
            )
        },
        |_, _| ok_json(OK),
    );
    assert_eq!(run.hosts(), ["img"]);
}

#[test]
fn typed_hosts_same_host_twice_then_its_fallback_hostname_then_the_fallback_host() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[
                {"hostname":"ptt-only","upload":["ptt"]},
                {"hostname":"p","type":"primary","fallback_hostname":"pf"},
                {"hostname":"f","type":"fallback"}]}"#,
            )
        },
        |_, _| Reply::Fail("connection refused"),
    );
    assert_eq!(run.hosts(), ["p", "p", "pf", "f"]);
    assert!(run.outcome.is_err());
}

#[test]
fn a_silent_host_times_out_and_counts_as_an_attempt() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, at| {
        if at.is_zero() {
            Reply::Silence
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(
        run.requests[1].0,
        Duration::from_secs(61),
        "deadline 60 s, then 1 s backoff"
    );
    assert_eq!(run.hosts(), ["h1.example", "h1.example"]);
}

#[test]
fn final_statuses_are_typed_and_never_retried() {
    type Is = fn(&UploadError) -> bool;
    let cases: [(u16, Is); 6] = [
        (413, |e| matches!(e, UploadError::TooLarge { .. })),
        (415, |e| matches!(e, UploadError::HashMismatch { .. })),
        (507, |e| {
            matches!(e, UploadError::Throttled { status: 507, .. })
        }),
        (408, |e| {
            matches!(e, UploadError::Status { status: 408, .. })
        }),
        (404, |e| {
            matches!(e, UploadError::Status { status: 404, .. })
        }),
        (429, |e| {
            matches!(e, UploadError::Throttled { status: 429, .. })
        }),
    ];
    for (code, is) in cases {
        let t0 = Instant::now();
        let mut up = Upload::new(small().1, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |_, _| status(code));
        let e = run.outcome.unwrap_err();
        assert!(is(&e), "{code}: {e:?}");
        // Plain names say nothing of uploads: a 415 gets one try on the next host first
        // (PROTOCOL v3 §3), then is final.
        let want = if code == 415 { 2 } else { 1 };
        assert_eq!(run.requests.len(), want, "{code} is final");
    }
}

#[test]
fn error_bodies_are_capped_escaped_and_on_one_line() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut body = b"<html>\n\x1b]0;pwned\x07\x1b[2J".to_vec();
    body.extend(vec![b'x'; 10_000]);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        Reply::Answer(400, vec![], body.clone())
    });
    let e = run.outcome.unwrap_err();
    let msg = e.to_string();
    assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
    assert!(msg.contains("\\u{1b}"), "{msg}");
    assert!(msg.len() < 4096 + 200);
}

#[test]
fn too_many_requests_waits_once_within_the_cap_then_is_final() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        match n {
            1 => Reply::Answer(429, vec![("retry-after", "7".into())], vec![]),
            _ => ok_json(OK),
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(run.hosts(), ["h1.example"; 2]);
    assert_eq!(times_ms(&run), [0, 7000]);

    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        Reply::Answer(429, vec![("retry-after", "7".into())], vec![])
    });
    assert!(matches!(
        run.outcome,
        Err(UploadError::Throttled { status: 429, .. })
    ));
    assert_eq!(run.requests.len(), 2, "one wait, then final");
}

#[test]
fn a_throttling_cdn_asking_for_ages_ends_the_upload_at_once() {
    for code in [429, 503] {
        let t0 = Instant::now();
        let mut up = Upload::new(small().1, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |_, _| {
            Reply::Answer(code, vec![("retry-after", "999999999".into())], vec![])
        });
        let e = run.outcome.unwrap_err();
        assert!(
            matches!(e, UploadError::Throttled { retry_after: Some(d), .. } if d.as_secs() == 999_999_999),
            "{e:?}"
        );
        assert_eq!(run.requests.len(), 1);
        assert_eq!(run.elapsed, Duration::ZERO);
    }
}

#[test]
fn a_503_retry_after_within_the_cap_is_honoured_before_the_next_attempt() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        if n == 1 {
            Reply::Answer(503, vec![("retry-after", "5".into())], vec![])
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(times_ms(&run), [0, 5000]);
}

#[test]
fn total_deadline_ends_the_upload() {
    let t0 = Instant::now();
    let mut o = opts();
    o.retry.total_timeout = Duration::from_secs(90);
    o.retry.max_attempts = 100;
    let mut up = Upload::new(small().1, o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| Reply::Silence);
    assert!(matches!(
        run.outcome,
        Err(UploadError::AllHostsFailed {
            why: "deadline passed",
            ..
        })
    ));
    assert!(run.elapsed <= Duration::from_secs(90));
    for (_, r) in &run.requests {
        assert!(
            r.deadline <= t0 + Duration::from_secs(90),
            "no request outlives the transfer"
        );
    }
}

#[test]
fn stale_auth_forces_one_renewal_then_succeeds() {
    for code in [401, 403] {
        let t0 = Instant::now();
        let mut up = Upload::new(small().1, opts(), t0);
        let mut renewed = false;
        let run = drive(
            &mut up,
            t0,
            |force, at| {
                renewed |= force;
                conn_at(
                    t0,
                    at,
                    if force { "fresh" } else { "stale" },
                    &["h1.example"],
                )
            },
            |r, _| {
                if r.url.contains("auth=stale") {
                    status(code)
                } else {
                    ok_json(OK)
                }
            },
        );
        assert!(run.outcome.is_ok(), "{code}");
        assert_eq!(
            run.conn_asks,
            vec![(Duration::ZERO, false), (Duration::ZERO, true)]
        );
        assert!(renewed);
    }
}

#[test]
fn a_second_auth_failure_is_final() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| status(401));
    assert!(matches!(
        run.outcome,
        Err(UploadError::AuthRejected { status: 401, .. })
    ));
    assert_eq!(run.requests.len(), 2);
}

#[test]
fn an_expired_connection_is_renewed_before_use() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| MediaConn::new("a", vec!["h".into()], Duration::from_secs(1), t0 + at),
        |_, at| {
            if at.is_zero() {
                Reply::Silence
            } else {
                ok_json(OK)
            }
        },
    );
    assert!(run.outcome.is_ok());
    assert_eq!(run.conn_asks.len(), 2, "{:?}", run.conn_asks);
}

#[test]
fn a_connection_already_expired_when_given_is_an_error() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, _| MediaConn::new("a", vec!["h".into()], Duration::ZERO, t0),
        |_, _| ok_json(OK),
    );
    assert_eq!(run.outcome.unwrap_err(), UploadError::ConnExpired);
    assert_eq!(
        run.conn_asks,
        vec![(Duration::ZERO, false), (Duration::ZERO, true)]
    );
}

#[test]
fn no_host_for_the_type_is_an_error_naming_it() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[{"hostname":"v","upload":["video"]}]}"#,
            )
        },
        |_, _| ok_json(OK),
    );
    let e = run.outcome.unwrap_err();
    assert_eq!(
        e,
        UploadError::NoHosts {
            media_type: "image".into()
        }
    );
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| conn_at(t0, at, "a", &[]),
        |_, _| ok_json(OK),
    );
    assert!(matches!(run.outcome, Err(UploadError::NoHosts { .. })));
}

#[test]
fn a_fresh_key_never_probes_even_for_a_large_body() {
    let t0 = Instant::now();
    let spec = large(4000);
    assert!(!spec.key_reused);
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(run.outcome.is_ok());
    assert_eq!(run.requests.len(), 1);
    assert!(!run.urls()[0].contains("resume="), "{}", run.urls()[0]);
}

fn reused(len_plain: usize) -> UploadSpec {
    large(len_plain).with_key_reused(true)
}

#[test]
fn a_reused_key_probes_first_and_complete_sends_no_body() {
    let t0 = Instant::now();
    let spec = reused(100);
    let token = spec.token().replace('=', "%3D");
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"resume":"complete","url":"https://h/x","direct_path":"/x"}"#)
    });
    let r = run.outcome.unwrap();
    assert_eq!(r.direct_path, "/x");
    assert!(r.already_stored, "the result says no body was sent");
    assert!(!r.cached && r.to_json().get("cached").is_none());
    assert_eq!(run.requests.len(), 1);
    let (_, probe) = &run.requests[0];
    assert!(
        probe
            .url
            .ends_with(&format!("&token={token}&resume=1&media_id=4242")),
        "{}",
        probe.url
    );
    assert_eq!(probe.body, BodySpec::Empty);
    assert_eq!(probe.method, http::Method::POST);
}

#[test]
fn a_resume_offset_sends_the_rest_with_bytestart_and_byteend() {
    let t0 = Instant::now();
    let spec = reused(4000);
    let len = spec.body_len();
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.url.contains("resume=1") {
            ok_json(r#"{"resume":"1024"}"#)
        } else {
            ok_json(OK)
        }
    });
    assert!(
        !run.outcome.as_ref().unwrap().already_stored,
        "a body was sent"
    );
    let (_, send) = &run.requests[1];
    assert!(
        send.url
            .ends_with(&format!("&bytestart=1024&byteend={len}&media_id=4242")),
        "{}",
        send.url
    );
    assert!(!send.url.contains("file_offset"));
    assert_eq!(
        send.body,
        BodySpec::UploadBody {
            from: 1024,
            to: len
        }
    );
    assert_eq!(
        send.headers["content-length"],
        (len - 1024).to_string().as_str()
    );
    assert_eq!(
        run.hosts(),
        ["h1.example"; 2],
        "probe and send on the same host"
    );
}

#[test]
fn nonsense_or_negative_probe_answers_send_from_zero() {
    for (status_code, body) in [
        (200, r#"{"resume":0}"#),
        (200, r#"{"resume":"0"}"#),
        (200, r#"{"resume":"999999999"}"#),
        (200, r#"{"resume":-5}"#),
        (200, r#"{"resume":"soon"}"#),
        (200, r#"{}"#),
        (200, "not json"),
        (404, ""),
        (400, "what"),
    ] {
        let t0 = Instant::now();
        let mut up = Upload::new(reused(4000), opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |r, _| {
            if r.url.contains("resume=1") {
                Reply::Answer(status_code, vec![], body.into())
            } else {
                ok_json(OK)
            }
        });
        assert!(run.outcome.is_ok(), "{status_code} {body}");
        assert!(
            matches!(run.requests[1].1.body, BodySpec::UploadBody { from: 0, .. }),
            "{body}"
        );
        assert!(!run.urls()[1].contains("bytestart"), "{body}");
    }
}

#[test]
fn a_body_cut_mid_way_probes_on_the_same_host_and_resumes() {
    let t0 = Instant::now();
    let spec = large(4000);
    let len = spec.body_len();
    let mut up = Upload::new(spec, opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        match n {
            1 => Reply::SentThenFail(2000),
            2 => ok_json(r#"{"resume":2000}"#),
            _ => ok_json(OK),
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(run.hosts(), ["h1.example"; 3]);
    assert!(run.urls()[1].contains("&resume=1&"));
    assert!(run.urls()[2].contains(&format!("&bytestart=2000&byteend={len}&")));
}

#[test]
fn a_cut_small_body_or_a_failure_before_any_byte_does_not_probe() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        if n == 1 {
            Reply::SentThenFail(5)
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    assert!(
        run.urls().iter().all(|u| !u.contains("resume=")),
        "below the threshold"
    );
    let mut up = Upload::new(large(4000), opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        if n == 1 {
            Reply::Fail("connection refused")
        } else {
            ok_json(OK)
        }
    });
    assert!(
        run.urls().iter().all(|u| !u.contains("resume=")),
        "nothing moved"
    );
    let mut o = opts();
    o.resume = false;
    let mut up = Upload::new(reused(4000), o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert_eq!(run.requests.len(), 1, "resume disabled: no probe");
}

#[test]
fn a_415_after_a_resumed_send_starts_once_from_zero() {
    let t0 = Instant::now();
    let spec = reused(4000);
    let len = spec.body_len();
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.url.contains("resume=1") {
            ok_json(r#"{"resume":1024}"#)
        } else if r.url.contains("bytestart") {
            status(415)
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(run.requests.len(), 3);
    assert_eq!(
        run.requests[2].1.body,
        BodySpec::UploadBody { from: 0, to: len }
    );
    assert!(!run.urls()[2].contains("bytestart"));
    // A 415 on the fresh send too is final.
    let mut up = Upload::new(reused(4000), opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.url.contains("resume=1") {
            ok_json(r#"{"resume":1024}"#)
        } else {
            status(415)
        }
    });
    assert!(matches!(run.outcome, Err(UploadError::HashMismatch { .. })));
    assert_eq!(run.requests.len(), 3);
}

#[test]
fn progress_follows_sent_bytes_and_impossible_counts_are_misuse() {
    let t0 = Instant::now();
    let (body, spec) = small();
    let mut up = Upload::new(spec, opts(), t0);
    up.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h"])),
    )
    .unwrap();
    let Output::Transmit(req) = up.poll_output(t0) else {
        panic!()
    };
    up.handle_input(
        t0,
        Input::Sent {
            id: req.id,
            bytes: 10,
        },
    )
    .unwrap();
    assert!(
        matches!(up.poll_output(t0), Output::Progress { done: 10, total: Some(t) } if t == body.len() as u64)
    );
    for bytes in [body.len() as u64 + 1, u64::MAX] {
        assert!(matches!(
            up.handle_input(t0, Input::Sent { id: req.id, bytes }),
            Err(Misuse::Unexpected(_))
        ));
    }
}

#[test]
fn misuse_is_a_typed_error_and_the_outcome_stays() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let h = http::HeaderMap::new();
    assert_eq!(
        up.handle_input(t0, Input::End { id: RequestId(0) }),
        Err(Misuse::UnknownRequest(0))
    );
    up.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h"])),
    )
    .unwrap();
    let Output::Transmit(req) = up.poll_output(t0) else {
        panic!()
    };
    assert!(matches!(up.poll_output(t0), Output::Wait(_)));
    assert!(matches!(
        up.handle_input(
            t0,
            Input::Body {
                id: req.id,
                data: b"x"
            }
        ),
        Err(Misuse::Unexpected(_))
    ));
    up.handle_response(t0, req.id, 200, &h, OK.as_bytes())
        .unwrap();
    let first = match up.poll_output(t0) {
        Output::Done(r) => r.unwrap(),
        o => panic!("{o:?}"),
    };
    assert_eq!(up.handle_input(t0, Input::Timeout), Err(Misuse::Finished));
    match up.poll_output(t0 + Duration::from_secs(99)) {
        Output::Done(r) => assert_eq!(r.unwrap(), first),
        o => panic!("{o:?}"),
    }
}

#[test]
fn late_answers_to_superseded_requests_are_ignored() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    up.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h1", "h2"])),
    )
    .unwrap();
    let Output::Transmit(first) = up.poll_output(t0) else {
        panic!()
    };
    let later = first.deadline;
    up.handle_input(later, Input::Timeout).unwrap();
    let Output::Wait(t) = up.poll_output(later) else {
        panic!("backoff first")
    };
    up.handle_input(t, Input::Timeout).unwrap();
    let Output::Transmit(_) = up.poll_output(t) else {
        panic!()
    };
    up.handle_response(t, first.id, 200, &http::HeaderMap::new(), OK.as_bytes())
        .unwrap();
    assert!(
        matches!(up.poll_output(t), Output::Wait(_)),
        "the late answer changed nothing"
    );
}

#[test]
fn media_ids_are_below_2_pow_53_and_never_zero() {
    assert!(MediaId::new(0).is_none());
    assert!(MediaId::new(1 << 53).is_none());
    assert_eq!(MediaId::new((1 << 53) - 1).unwrap().get(), (1 << 53) - 1);
    for _ in 0..100 {
        let id = MediaId::generate().unwrap().get();
        assert!((1..1 << 53).contains(&id));
    }
}

#[test]
fn random_answer_sequences_always_terminate_within_the_bounds() {
    let mut rng = Rng(42);
    for case in 0..2000 {
        let t0 = Instant::now();
        let spec = match case % 3 {
            0 => small().1,
            1 => large(2000),
            _ => reused(2000),
        };
        let mut o = opts();
        o.retry.max_attempts = 1 + rng.below(6) as u32;
        // Each attempt may add a probe; one renewal, one wait, one fresh send after 415.
        let max = 2 * o.retry.max_attempts as usize + 3;
        let nhosts = rng.below(4) as usize;
        let hosts: Vec<String> = (0..nhosts).map(|i| format!("h{i}")).collect();
        let mut up = Upload::new(spec, o, t0);
        let mut seed = rng.next();
        let ttl = Duration::from_secs(1 + seed % 100);
        let run = drive(
            &mut up,
            t0,
            |_, at| MediaConn::new("a", hosts.clone(), ttl, t0 + at),
            |req, _| {
                let mut r = Rng(seed);
                seed = r.next();
                let statuses = [
                    200, 200, 201, 401, 403, 408, 415, 429, 500, 503, 507, 404, 413,
                ];
                let bodies = [
                    OK,
                    "",
                    "{}",
                    r#"{"resume":"complete"}"#,
                    r#"{"resume":"17"}"#,
                    r#"{"resume":18446744073709551615}"#,
                    "[1,2",
                    r#"{"resume":"complete","url":"https://x/y"}"#,
                ];
                match r.below(6) {
                    0 => Reply::Fail("boom"),
                    1 => Reply::Silence,
                    2 => Reply::SentThenFail(r.below(100).min(req.body.len())),
                    _ => Reply::Answer(
                        statuses[r.below(statuses.len() as u64) as usize],
                        if r.below(2) == 0 {
                            vec![("retry-after", r.below(100).to_string())]
                        } else {
                            vec![]
                        },
                        bodies[r.below(bodies.len() as u64) as usize]
                            .as_bytes()
                            .to_vec(),
                    ),
                }
            },
        );
        assert!(
            run.requests.len() <= max,
            "case {case}: {} requests > {max}",
            run.requests.len()
        );
        if nhosts == 0 {
            assert!(matches!(run.outcome, Err(UploadError::NoHosts { .. })));
        }
    }
}

#[test]
fn secrets_echoed_back_by_a_server_never_reach_an_error() {
    let t0 = Instant::now();
    let auth = "s3cret/auth+token==";
    let key_b64 = key().to_base64();
    let key_hex: String = key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for code in [400, 503] {
        let mut up = Upload::new(small().1, opts(), t0);
        let run = drive(
            &mut up,
            t0,
            |_, at| conn_at(t0, at, auth, &["h1.example"]),
            |r, _| {
                let echo = format!(
                    "bad request: POST {} auth={auth} key={key_b64} hex={key_hex}",
                    r.url
                );
                Reply::Answer(code, vec![], echo.into_bytes())
            },
        );
        let e = run.outcome.unwrap_err();
        let text = format!("{e} {e:?}");
        for secret in [auth, "s3cret%2Fauth%2Btoken%3D%3D", &key_b64, &key_hex] {
            assert!(!text.contains(secret), "{code}: {secret} leaked: {text}");
        }
        assert!(text.contains("<redacted>"), "{text}");
    }
    // A transport error text that quotes the token is scrubbed too.
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| conn_at(t0, at, auth, &["h1.example"]),
        |_, _| Reply::Fail("proxy said: auth=s3cret%2Fauth%2Btoken%3D%3D refused"),
    );
    let text = run.outcome.unwrap_err().to_string();
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn a_connection_with_a_huge_ttl_is_used_without_overflow() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, _| {
            MediaConn::from_json(
                r#"{"auth":"a","ttl":18446744073709551615,"auth_ttl":18446744073709551615,"hosts":["h"]}"#,
                t0,
            )
            .unwrap()
        },
        |_, _| ok_json(OK),
    );
    assert!(run.outcome.is_ok());
    let mut o = opts();
    o.retry.total_timeout = Duration::MAX;
    o.retry.request_timeout = Duration::MAX;
    let mut up = Upload::new(small().1, o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(run.outcome.is_ok(), "huge timeouts saturate");
}

#[test]
fn a_thumbnail_goes_up_under_the_media_key_on_its_own_path_without_a_probe() {
    let t0 = Instant::now();
    let (_, spec) = spec_of(MediaType::Video, &[5u8; 3000]);
    let spec = spec.with_media_key_timestamp(1_700_000_000);
    let mut up = Upload::new(spec, opts(), t0);
    let mut main = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK))
        .outcome
        .unwrap();
    let jpeg = b"\xff\xd8\xff\xe0 a thumbnail \xff\xd9";
    let job = UploadJob::thumbnail_for(&main).unwrap();
    let prepared = job.prepare(&jpeg[..]).unwrap();
    assert_eq!(prepared.spec.media_type, MediaType::VideoThumbnail);
    assert_eq!(prepared.spec.media_key, Some(key()));
    assert!(!prepared.spec.key_reused, "a new body: no probe");
    assert_eq!(prepared.spec.media_key_timestamp, Some(1_700_000_000));
    // The same key under the thumbnail's HKDF info: what a receiver decrypts it with.
    let (_, by_hand) = encrypt(key(), &MediaType::VideoThumbnail, jpeg).unwrap();
    assert_eq!(prepared.spec.file_enc_sha256, Some(by_hand.file_enc_sha256));
    let mut up = Upload::new(prepared.spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert_eq!(run.requests.len(), 1);
    let url = &run.requests[0].1.url;
    assert!(
        url.starts_with("https://h1.example/mms/thumbnail-video/"),
        "{url}"
    );
    assert!(!url.contains("resume=1"), "{url}");
    let thumb = run.outcome.unwrap();
    main.attach_thumbnail(&thumb, 480, 270);
    let j = main.to_json();
    let t = &j["thumbnail_info"];
    assert_eq!(t["thumbnail_direct_path"], thumb.direct_path.as_str());
    assert_eq!(
        t["thumbnail_sha256"],
        b64::std(&by_hand.file_sha256).as_str()
    );
    assert_eq!(
        t["thumbnail_enc_sha256"],
        b64::std(&by_hand.file_enc_sha256).as_str()
    );
    assert_eq!(
        (
            t["thumbnail_width"].as_u64(),
            t["thumbnail_height"].as_u64()
        ),
        (Some(480), Some(270))
    );
    // Types without a thumbnail type, and unencrypted media, have no thumbnail job.
    let (_, audio) = spec_of(MediaType::Audio, b"x");
    let mut up = Upload::new(audio, opts(), t0);
    let a = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK))
        .outcome
        .unwrap();
    assert!(UploadJob::thumbnail_for(&a).is_none());
}

#[test]
fn a_known_summary_makes_the_same_body_without_a_first_pass() {
    use std::io::Read as _;
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let first = UploadJob::new(MediaType::Video)
        .prepare(&plain[..])
        .unwrap();
    let media = first.encrypted_media().unwrap().clone();
    let again = UploadJob::new(MediaType::Video)
        .with_media_key_timestamp(7)
        .prepare_known(media.clone())
        .unwrap();
    assert!(again.spec.key_reused, "the CDN is asked first");
    assert_eq!(again.spec.token(), first.spec.token());
    assert_eq!(again.spec.media_key_timestamp, Some(7));
    let body = |p: &PreparedUpload, from: u64| {
        let mut v = Vec::new();
        p.body_reader(std::io::Cursor::new(&plain), from)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        v
    };
    assert_eq!(body(&again, 0), body(&first, 0));
    assert_eq!(body(&again, 70_000), body(&first, 70_000));
    // There is no first pass to skip for unencrypted media.
    let e = UploadJob::new(MediaType::Video)
        .newsletter()
        .prepare_known(media)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}
