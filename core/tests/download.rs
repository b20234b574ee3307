//! The download machine, one scenario per test, through the public API, on a virtual clock.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wamedia::*;

struct Media {
    plain: Vec<u8>,
    body: Vec<u8>,
    meta: EncryptedMedia,
}

fn media(len: usize) -> Media {
    let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let (body, meta) = encrypt(key(), &MediaType::Image, &plain).unwrap();
    Media { plain, body, meta }
}

fn spec(m: &Media, source: Source) -> DownloadSpec {
    DownloadSpec {
        media_type: MediaType::Image,
        media_key: Some(key()),
        source,
        expected: Expected {
            file_enc_sha256: Some(m.meta.file_enc_sha256),
            file_sha256: Some(m.meta.file_sha256),
            file_length: Some(m.meta.file_length),
        },
        streaming_sidecar: None,
    }
}

const PATH: &str =
    "/o1/v/t62.7118-24/f1/m233/up-oil-image-x?ccb=9-4&oh=01_AQ&oe=6789ABCD&_nc_sid=e6ed6c";

/// The wall-clock time the tests run at: 2021-01-14, before `PATH`'s `oe` (2025-01-17).
fn wall() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(0x6000_0000)
}

fn hosts2(t0: Instant) -> impl FnMut(bool, Duration) -> MediaConn {
    move |_, at| conn_at(t0, at, "tok", &["h1.example", "h2.example"])
}

fn serve(body: &[u8]) -> Reply {
    Reply::Answer(
        200,
        vec![("content-length", body.len().to_string())],
        body.to_vec(),
    )
}

/// Answers `Range: bytes=a-` with a 206 when asked.
fn serve_range(req: &Request, body: &[u8]) -> Reply {
    match req.headers.get("range") {
        None => serve(body),
        Some(r) => {
            let from: usize = r
                .to_str()
                .unwrap()
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            Reply::Answer(
                206,
                vec![
                    (
                        "content-range",
                        format!("bytes {from}-{}/{}", body.len() - 1, body.len()),
                    ),
                    ("content-length", (body.len() - from).to_string()),
                ],
                body[from..].to_vec(),
            )
        }
    }
}

#[test]
fn happy_path_from_a_direct_path_keeps_its_query_intact() {
    let t0 = Instant::now();
    let m = media(1000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    let r = run.outcome.unwrap();
    assert_eq!(run.plaintext, m.plain);
    assert_eq!(r.verified.file_length, 1000);
    let req = &run.requests[0].1;
    let hash = b64::url(&m.meta.file_enc_sha256).replace('=', "%3D");
    assert_eq!(
        req.url,
        format!("https://h1.example{PATH}&hash={hash}&mms-type=image&__wa-mms=")
    );
    assert_eq!(req.method, http::Method::GET);
    assert_eq!(req.headers["origin"], "https://web.whatsapp.com");
    assert!(req.headers.get("range").is_none());
    assert_eq!(run.progress.last(), Some(&(m.body.len() as u64)));
}

#[test]
fn a_direct_path_without_a_query_gets_one() {
    let t0 = Instant::now();
    let m = media(10);
    let mut d = Download::new(
        spec(&m, Source::DirectPath("/d/plain".into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    assert!(run.requests[0]
        .1
        .url
        .starts_with("https://h1.example/d/plain?hash="));
    assert!(run.outcome.is_ok());
}

#[test]
fn a_full_url_is_used_as_is_without_a_media_connection() {
    let t0 = Instant::now();
    let m = media(50);
    let url = format!("https://mmg.whatsapp.net{PATH}&mms3=true");
    let mut d = Download::new(
        spec(&m, Source::Url(url.clone())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, _| panic!("no connection needed"),
        |_, _| serve(&m.body),
    );
    assert_eq!(run.urls(), [url]);
    assert_eq!(run.outcome.unwrap().host, "mmg.whatsapp.net");
}

#[test]
fn not_found_moves_to_the_next_host() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            status(404)
        } else {
            serve(&m.body)
        }
    });
    assert_eq!(run.hosts(), ["h1.example", "h2.example"]);
    assert_eq!(run.outcome.unwrap().host, "h2.example");
    assert_eq!(run.plaintext, m.plain);
}

#[test]
fn gone_everywhere_asks_for_a_re_upload() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            status(410)
        } else {
            status(403)
        }
    });
    let err = run.outcome.unwrap_err();
    let DownloadError::MediaGone { failures } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 2);
    assert!(err.to_string().contains("re-upload"));
    assert!(run.plaintext.is_empty());
}

#[test]
fn server_errors_and_429_are_retried_with_backoff_and_retry_after() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        n += 1;
        match n {
            1 => status(500),
            2 => Reply::Fail("dns"),
            3 => Reply::Answer(429, vec![("retry-after", "3".into())], vec![]),
            _ => serve(&m.body),
        }
    });
    assert!(run.outcome.is_ok());
    let times: Vec<_> = run.requests.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, [0, 0, 500, 3500]);
    assert_eq!(
        run.hosts(),
        ["h1.example", "h2.example", "h1.example", "h1.example"]
    );
}

#[test]
fn a_tampered_mac_is_an_integrity_error() {
    let t0 = Instant::now();
    let m = media(100);
    let mut bad = m.body.clone();
    *bad.last_mut().unwrap() ^= 1;
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected.file_enc_sha256 = None;
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&bad));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::MacMismatch)
    );
}

#[test]
fn a_wrong_enc_hash_is_an_integrity_error() {
    let t0 = Instant::now();
    let m = media(100);
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected.file_enc_sha256 = Some([9; 32]);
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::EncHashMismatch)
    );
}

#[test]
fn a_truncated_body_is_reported_as_cut_short_when_the_length_is_known() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![], m.body[..m.body.len() - 5].to_vec())
    });
    let e = run.outcome.unwrap_err();
    assert!(matches!(e, DownloadError::AllHostsFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("body cut short"), "{e}");
    assert!(!e.to_string().contains("MAC"), "{e}");
    // Without a known length, the shape check catches it.
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected.file_length = None;
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![], m.body[..m.body.len() - 5].to_vec())
    });
    assert!(matches!(
        run.outcome,
        Err(DownloadError::Integrity(IntegrityError::BadLength { .. }))
    ));
}

#[test]
fn a_body_shorter_than_its_content_length_is_resumed() {
    let t0 = Instant::now();
    let m = media(1000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut first = true;
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        if std::mem::take(&mut first) {
            Reply::Answer(
                200,
                vec![("content-length", m.body.len().to_string())],
                m.body[..500].to_vec(),
            )
        } else {
            serve_range(r, &m.body)
        }
    });
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.requests[1].1.headers["range"], "bytes=496-");
    assert_eq!(run.plaintext, m.plain);
}

#[test]
fn a_drop_mid_body_resumes_with_range_from_the_last_whole_block() {
    let t0 = Instant::now();
    let m = media(100_000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        n += 1;
        match n {
            1 => Reply::Cut(
                200,
                vec![("content-length", m.body.len().to_string())],
                m.body[..40_007].to_vec(),
            ),
            2 => {
                let Reply::Answer(s, h, b) = serve_range(r, &m.body) else {
                    unreachable!()
                };
                Reply::Cut(s, h, b[..10_000].to_vec())
            }
            _ => serve_range(r, &m.body),
        }
    });
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    let ranges: Vec<_> = run
        .requests
        .iter()
        .map(|(_, r)| {
            r.headers
                .get("range")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=40000-".into()),
            Some("bytes=50000-".into())
        ]
    );
    assert_eq!(
        run.hosts(),
        ["h1.example"; 3],
        "a serving host is asked again"
    );
    assert_eq!(run.plaintext, m.plain);
}

#[test]
fn a_200_to_a_ranged_request_is_skipped_to_the_offset() {
    let t0 = Instant::now();
    let m = media(5000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut first = true;
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        if std::mem::take(&mut first) {
            Reply::Cut(
                200,
                vec![("content-length", m.body.len().to_string())],
                m.body[..3000].to_vec(),
            )
        } else {
            serve(&m.body)
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(run.plaintext, m.plain);
}

#[test]
fn a_206_at_the_wrong_offset_is_not_trusted() {
    let t0 = Instant::now();
    let m = media(5000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        n += 1;
        match n {
            1 => Reply::Cut(200, vec![], m.body[..3000].to_vec()),
            2 => Reply::Answer(
                206,
                vec![(
                    "content-range",
                    format!("bytes 0-{}/{}", m.body.len() - 1, m.body.len()),
                )],
                m.body.clone(),
            ),
            _ => serve_range(r, &m.body),
        }
    });
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.hosts(), ["h1.example", "h1.example", "h2.example"]);
    assert_eq!(run.plaintext, m.plain);
}

#[test]
fn the_maximum_size_guards_against_endless_bodies() {
    let t0 = Instant::now();
    let m = media(100);
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected = Expected::default();
    let mut opts = DownloadOptions::default();
    opts.max_body_len = 64;
    let mut d = Download::new(s.clone(), opts.clone(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![], vec![0; 1000])
    });
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::TooLarge { max: 64 })
    );
    let mut d = Download::new(s, opts, t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::TooLarge { max: 64 }),
        "declared length is checked up front"
    );
}

#[test]
fn other_statuses_are_final() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| status(400));
    assert!(matches!(
        run.outcome,
        Err(DownloadError::Status { status: 400, .. })
    ));
    assert_eq!(run.requests.len(), 1);
}

#[test]
fn an_empty_host_list_is_an_error() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, at| conn_at(t0, at, "a", &[]),
        |_, _| serve(&m.body),
    );
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::NoHosts {
            media_type: "image".into()
        }
    );
}

#[test]
fn random_answer_sequences_always_terminate_within_the_bounds() {
    let m = media(300);
    let mut rng = Rng(7);
    for case in 0..2000 {
        let t0 = Instant::now();
        let mut o = DownloadOptions::default();
        o.retry.max_attempts = 1 + rng.below(10) as u32;
        o.retry.max_rounds = 1 + rng.below(4) as u32;
        let max = o.retry.max_attempts as usize;
        let nhosts = rng.below(4) as usize;
        let hosts: Vec<String> = (0..nhosts).map(|i| format!("h{i}")).collect();
        let mut d = Download::new(spec(&m, Source::DirectPath(PATH.into())), o, t0, wall());
        let mut seed = rng.next();
        let run = drive(
            &mut d,
            t0,
            |_, at| MediaConn::new("a", hosts.clone(), Duration::from_secs(300), t0 + at),
            |req, _| {
                let mut r = Rng(seed);
                seed = r.next();
                let cut = r.below(m.body.len() as u64) as usize;
                match r.below(7) {
                    0 => Reply::Fail("boom"),
                    1 => Reply::Silence,
                    2 => Reply::Cut(
                        200,
                        vec![("content-length", m.body.len().to_string())],
                        m.body[..cut].to_vec(),
                    ),
                    3 => serve_range(req, &m.body),
                    4 => Reply::Answer(200, vec![], m.body[..cut].to_vec()),
                    _ => Reply::Answer(
                        [404, 410, 403, 408, 429, 500, 503, 400][r.below(8) as usize],
                        if r.below(2) == 0 {
                            vec![("retry-after", r.below(100).to_string())]
                        } else {
                            vec![]
                        },
                        vec![],
                    ),
                }
            },
        );
        assert!(
            run.requests.len() <= max,
            "case {case}: {} requests > {max}",
            run.requests.len()
        );
        if run.outcome.is_ok() {
            assert_eq!(run.plaintext, m.plain, "case {case}");
        }
    }
}

fn refused_before_any_request(s: DownloadSpec, opts: DownloadOptions) -> DownloadError {
    let t0 = Instant::now();
    let mut d = Download::new(s, opts, t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        panic!("no request may be sent")
    });
    assert!(run.requests.is_empty());
    run.outcome.unwrap_err()
}

#[test]
fn host_changing_direct_paths_are_refused_without_a_request() {
    let m = media(10);
    for p in [
        "@evil.example/x",
        "//evil.example/x",
        "\\\\evil.example\\x",
        "evil/x",
        "/x\\y",
        "/a b",
        "/x#@evil",
    ] {
        let e = refused_before_any_request(
            spec(&m, Source::DirectPath(p.into())),
            DownloadOptions::default(),
        );
        assert!(
            matches!(e, DownloadError::MaliciousPath { .. }),
            "{p}: {e:?}"
        );
    }
}

#[test]
fn full_urls_off_whatsapp_hosts_are_refused_without_a_request() {
    let m = media(10);
    for u in [
        "http://mmg.whatsapp.net/x",
        "https://evil.example/x",
        "https://mmg.whatsapp.net.evil.example/x",
        "https://evilwhatsapp.net/x",
        "https://user@mmg.whatsapp.net/x",
        "ftp://mmg.whatsapp.net/x",
        "not a url",
    ] {
        let e =
            refused_before_any_request(spec(&m, Source::Url(u.into())), DownloadOptions::default());
        assert!(
            matches!(e, DownloadError::UntrustedUrl { .. }),
            "{u}: {e:?}"
        );
    }
    // The caller may vouch for the message.
    let t0 = Instant::now();
    let mut o = DownloadOptions::default();
    o.trust_url = true;
    let mut d = Download::new(
        spec(&m, Source::Url("https://cdn.example/x".into())),
        o,
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, _| panic!("no connection needed"),
        |_, _| serve(&m.body),
    );
    assert!(run.outcome.is_ok());
}

#[test]
fn a_full_url_on_a_media_connection_host_is_used_with_its_scheme() {
    let t0 = Instant::now();
    let m = media(10);
    let url = "http://127.0.0.1:8080/d/x?ccb=1";
    let mut d = Download::new(
        spec(&m, Source::Url(url.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, at| conn_at(t0, at, "a", &["http://127.0.0.1:8080"]),
        |_, _| serve(&m.body),
    );
    assert_eq!(run.urls(), [url]);
    assert!(run.outcome.is_ok());
    let mut d = Download::new(
        spec(&m, Source::Url("http://127.0.0.1:9999/d/x".into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, at| conn_at(t0, at, "a", &["http://127.0.0.1:8080"]),
        |_, _| serve(&m.body),
    );
    assert!(matches!(
        run.outcome,
        Err(DownloadError::UntrustedUrl { .. })
    ));
    assert!(run.requests.is_empty());
}

#[test]
fn a_passed_oe_is_still_fetched_and_served_when_the_cdn_serves_it() {
    // A local clock running ahead must not kill live media (PROTOCOL v3 §5).
    let m = media(10);
    let t0 = Instant::now();
    // PATH's oe is 0x6789ABCD; a clock past it.
    let late = std::time::UNIX_EPOCH + Duration::from_secs(0x6789_ABCD);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        late,
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    assert_eq!(run.requests.len(), 1);
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
}

#[test]
fn a_403_after_oe_passed_is_media_expired() {
    let m = media(10);
    let t0 = Instant::now();
    let late = std::time::UNIX_EPOCH + Duration::from_secs(0x6789_ABCD);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        late,
    );
    // A plain 403 (no "signature expired" text): the local clock says why.
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(403, vec![], b"forbidden".to_vec())
    });
    assert_eq!(run.requests.len(), 1);
    let e = run.outcome.unwrap_err();
    assert_eq!(
        e,
        DownloadError::MediaExpired {
            expired_at: Some(0x6789_ABCD)
        }
    );
    assert!(e.to_string().contains("re-upload"), "{e}");
    // Before oe, the same 403 moves to the next host.
    let before = std::time::UNIX_EPOCH + Duration::from_secs(0x6789_ABCD - 100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        before,
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(403, vec![], b"forbidden".to_vec())
    });
    assert_eq!(run.requests.len(), 2);
    assert!(matches!(run.outcome, Err(DownloadError::MediaGone { .. })));
}

#[test]
fn refusing_a_passed_oe_locally_is_an_option() {
    let m = media(10);
    let t0 = Instant::now();
    let late = std::time::UNIX_EPOCH + Duration::from_secs(0x6789_ABCD);
    let mut opts = DownloadOptions::default();
    opts.refuse_expired_locally = true;
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        opts.clone(),
        t0,
        late,
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| panic!("no request"));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::MediaExpired {
            expired_at: Some(0x6789_ABCD)
        }
    );
    // Expiring during the retries: the clock moves with `now`.
    let just_before = std::time::UNIX_EPOCH + Duration::from_secs(0x6789_ABCD - 1);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        opts,
        t0,
        just_before,
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| Reply::Silence);
    assert_eq!(run.requests.len(), 1);
    assert!(matches!(
        run.outcome,
        Err(DownloadError::MediaExpired { .. })
    ));
}

#[test]
fn a_403_saying_the_signature_expired_is_media_expired() {
    let t0 = Instant::now();
    let m = media(10);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(403, vec![], b"URL signature expired".to_vec())
    });
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::MediaExpired {
            expired_at: Some(0x6789_ABCD)
        }
    );
    assert_eq!(run.requests.len(), 1);
}

#[test]
fn the_mms_type_is_v3s_download_column() {
    for (t, mms) in [
        (MediaType::Sticker, "sticker"),
        (MediaType::Ptt, "ptt"),
        (MediaType::Gif, "gif"),
        (MediaType::Ptv, "ptv"),
        (MediaType::ImageThumbnail, "thumbnail-image"),
        (MediaType::History, "md-msg-hist"),
    ] {
        let t0 = Instant::now();
        let plain = b"some media";
        let (body, meta) = encrypt(key(), &t, plain).unwrap();
        let s = DownloadSpec {
            media_type: t.clone(),
            media_key: Some(key()),
            source: Source::DirectPath("/d/x".into()),
            expected: Expected {
                file_enc_sha256: Some(meta.file_enc_sha256),
                ..Expected::default()
            },
            streaming_sidecar: None,
        };
        let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
        let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&body));
        assert!(run.outcome.is_ok());
        assert!(
            run.urls()[0].ends_with(&format!("&mms-type={mms}&__wa-mms=")),
            "{t}: {}",
            run.urls()[0]
        );
    }
}

#[test]
fn channel_media_is_fetched_as_newsletter_type_from_hosts_that_take_it() {
    // PROTOCOL v3 §1 (`WAWebMmsMediaTypes.msgToMediaType`, `WAWebMediaHost`): channel
    // media's type name is `newsletter-{type}`, for host filtering and `mms-type`.
    let t0 = Instant::now();
    let plain = b"channel picture".to_vec();
    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&plain).into();
    let s = DownloadSpec {
        media_type: MediaType::Image,
        media_key: None,
        source: Source::DirectPath("/m1/v/t24/abc".into()),
        expected: Expected {
            file_sha256: Some(sha),
            file_length: Some(plain.len() as u64),
            file_enc_sha256: None,
        },
        streaming_sidecar: None,
    };
    let conn = MediaConn::from_json(
        r#"{"auth":"tok","ttl":300,"hosts":[
            {"hostname":"img-only.example","download":["image"]},
            {"hostname":"news.example","download":["image","newsletter-image"]}]}"#,
        t0,
    )
    .unwrap();
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, move |_, _| conn.clone(), |_, _| serve(&plain));
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    let url = &run.urls()[0];
    assert!(
        url.starts_with("https://news.example/m1/v/t24/abc?"),
        "{url}"
    );
    assert!(
        url.ends_with("?mms-type=newsletter-image&__wa-mms="),
        "{url}"
    );
}

#[test]
fn a_401_renews_the_connection_once() {
    let t0 = Instant::now();
    let m = media(10);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |force, at| {
            conn_at(
                t0,
                at,
                if force { "fresh" } else { "stale" },
                &["h1.example"],
            )
        },
        |_, _| status(401),
    );
    assert!(matches!(
        run.outcome,
        Err(DownloadError::AuthRejected { status: 401, .. })
    ));
    assert_eq!(
        run.conn_asks,
        vec![(Duration::ZERO, false), (Duration::ZERO, true)]
    );
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        n += 1;
        if n == 1 {
            status(401)
        } else {
            serve(&m.body)
        }
    });
    assert!(run.outcome.is_ok());
}

#[test]
fn throttling_is_final_and_never_hammered() {
    let m = media(10);
    for (code, retry_after) in [
        (507, None),
        (429, Some("999999999")),
        (429, None),
        (503, Some("999999999")),
    ] {
        let t0 = Instant::now();
        let mut d = Download::new(
            spec(&m, Source::DirectPath(PATH.into())),
            DownloadOptions::default(),
            t0,
            wall(),
        );
        let run = drive(&mut d, t0, hosts2(t0), |_, _| {
            let h = retry_after
                .map(|v| vec![("retry-after", v.to_string())])
                .unwrap_or_default();
            Reply::Answer(code, h, vec![])
        });
        assert!(
            matches!(run.outcome, Err(DownloadError::Throttled { .. })),
            "{code}: {:?}",
            run.outcome
        );
        assert_eq!(run.requests.len(), 1, "{code}");
        assert_eq!(run.elapsed, Duration::ZERO);
    }
}

#[test]
fn download_host_lists_and_fallback_hostnames_are_followed() {
    let t0 = Instant::now();
    let m = media(10);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(
        &mut d,
        t0,
        |_, at| {
            conn_json(
                t0,
                at,
                r#"{"auth":"a","ttl":300,"hosts":[{"hostname":"v","download":["video"]},{"hostname":"p","fallback_hostname":"pf"}]}"#,
            )
        },
        |r, _| {
            if r.host == "pf" {
                serve(&m.body)
            } else {
                status(404)
            }
        },
    );
    assert_eq!(run.hosts(), ["p", "pf"]);
    assert!(run.outcome.is_ok());
}

fn plain_spec(plain: &[u8], t: MediaType) -> DownloadSpec {
    let (sha, len) = newsletter_metadata(plain);
    DownloadSpec {
        media_type: t,
        media_key: None,
        source: Source::DirectPath("/m1/v/t24/abc?ccb=9-4&oh=01".into()),
        expected: Expected {
            file_enc_sha256: None,
            file_sha256: Some(sha),
            file_length: Some(len),
        },
        streaming_sidecar: None,
    }
}

#[test]
fn unencrypted_media_is_verified_by_its_sha256_and_length() {
    let plain = b"a channel photo, in the clear".to_vec();
    for t in [MediaType::Image, MediaType::ProductCatalogImage] {
        let t0 = Instant::now();
        let mut d = Download::new(
            plain_spec(&plain, t.clone()),
            DownloadOptions::default(),
            t0,
            wall(),
        );
        let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&plain));
        assert_eq!(run.plaintext, plain);
        let urls = run.urls();
        let r = run.outcome.unwrap();
        assert_eq!(r.verified.file_length, plain.len() as u64);
        assert!(!urls[0].contains("hash="), "no enc hash to send");
        if t == MediaType::ProductCatalogImage {
            assert!(urls[0].ends_with("&__wa-mms="), "{}", urls[0]);
            assert!(!urls[0].contains("mms-type"));
        }
    }
    let t0 = Instant::now();
    let mut tampered = plain.clone();
    tampered[3] ^= 1;
    let mut d = Download::new(
        plain_spec(&plain, MediaType::Image),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&tampered));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::PlainHashMismatch)
    );
    assert!(run.plaintext.len() <= plain.len());
    let mut s = plain_spec(&plain, MediaType::Image);
    s.expected.file_sha256 = None;
    assert_eq!(
        refused_before_any_request(s, DownloadOptions::default()),
        DownloadError::NothingToVerify
    );
    // A key for a type that has none is refused too.
    let mut s = plain_spec(&plain, MediaType::ProductCatalogImage);
    s.media_key = Some(key());
    assert!(matches!(
        refused_before_any_request(s, DownloadOptions::default()),
        DownloadError::Unsupported(_)
    ));
}

#[test]
fn a_known_length_bounds_the_body_exactly() {
    let t0 = Instant::now();
    let m = media(100);
    let bound = m.body.len();
    assert_eq!(
        bound,
        16 * 100usize.div_ceil(16).max(1) + 16 * usize::from(100 % 16 == 0) + 10
    );
    // A Content-Length beyond it is refused at the head.
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![("content-length", "4000000000".into())], vec![])
    });
    assert!(
        matches!(run.outcome, Err(DownloadError::Integrity(IntegrityError::TooLarge { max })) if max == bound as u64)
    );
    // An endless body without a length stops the moment more arrives.
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut long = m.body.clone();
    long.extend(vec![0u8; 1 << 20]);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![], long.clone())
    });
    assert!(matches!(
        run.outcome,
        Err(DownloadError::Integrity(IntegrityError::TooLarge { .. }))
    ));
    assert!(run.plaintext.is_empty(), "nothing unverified published");
    assert_eq!(DownloadOptions::default().max_body_len, 2 << 30);
}

#[test]
fn debug_never_shows_pending_plaintext_or_the_key() {
    let t0 = Instant::now();
    let m = media(64);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    d.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h"])),
    )
    .unwrap();
    let Output::Transmit(req) = d.poll_output(t0) else {
        panic!()
    };
    let h = http::HeaderMap::new();
    d.handle_input(
        t0,
        Input::Head {
            id: req.id,
            status: 200,
            headers: &h,
        },
    )
    .unwrap();
    d.handle_input(
        t0,
        Input::Body {
            id: req.id,
            data: &m.body[..60],
        },
    )
    .unwrap();
    let dbg = format!("{d:?}");
    assert!(dbg.contains("pending_plaintext_bytes"), "{dbg}");
    let needle = format!("{:?}", &m.plain[..8]);
    assert!(!dbg.contains(&needle[1..needle.len() - 1]), "{dbg}");
    assert!(!dbg.contains(&format!("{:?}", key().as_bytes())));
}

#[test]
fn a_huge_content_range_does_not_turn_the_checks_off() {
    let t0 = Instant::now();
    let m = media(100);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |r, _| {
        n += 1;
        if n == 1 {
            Reply::Cut(
                200,
                vec![("content-length", m.body.len().to_string())],
                m.body[..48].to_vec(),
            )
        } else {
            assert!(r.headers.get("range").is_some());
            Reply::Answer(
                206,
                vec![("content-range", "bytes 48-18446744073709551615/*".into())],
                m.body[48..].to_vec(),
            )
        }
    });
    assert!(run.outcome.is_err(), "an impossible range is not trusted");
}

#[test]
fn a_file_length_near_u64_max_is_bounded_not_overflowed() {
    let t0 = Instant::now();
    let m = media(100);
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected.file_length = Some(u64::MAX - 3);
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&m.body));
    assert!(
        matches!(
            run.outcome,
            Err(DownloadError::AllHostsFailed { .. }) | Err(DownloadError::Integrity(_))
        ),
        "{:?}",
        run.outcome
    );
    for (_, r) in &run.requests {
        assert!(r.deadline <= t0 + DownloadOptions::default().retry.total_timeout);
    }
}

#[test]
fn a_resumed_prefix_is_re_encrypted_and_verified_with_the_rest() {
    let t0 = Instant::now();
    let m = media(5000);
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    d.feed_prefix(&m.plain[..1000]).unwrap();
    d.feed_prefix(&m.plain[1000..3001]).unwrap();
    let kept = d.prefix_kept() as usize;
    assert!(kept > 0 && kept <= 3001, "{kept}");
    let run = drive(&mut d, t0, hosts2(t0), |r, _| serve_range(r, &m.body));
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    let range = run.requests[0].1.headers["range"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        range, "bytes=2992-",
        "whole blocks of the prefix only (187 × 16)"
    );
    let mut whole = m.plain[..kept].to_vec();
    whole.extend_from_slice(&run.plaintext);
    assert_eq!(whole, m.plain);
    // A changed prefix is caught by the checks over the whole body.
    let mut bad = m.plain[..3000].to_vec();
    bad[7] ^= 1;
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    d.feed_prefix(&bad).unwrap();
    let run = drive(&mut d, t0, hosts2(t0), |r, _| serve_range(r, &m.body));
    assert!(
        matches!(run.outcome, Err(DownloadError::Integrity(_))),
        "{:?}",
        run.outcome
    );
    // Only before the first request.
    let mut d = Download::new(
        spec(&m, Source::DirectPath(PATH.into())),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    d.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h"])),
    )
    .unwrap();
    let Output::Transmit(_) = d.poll_output(t0) else {
        panic!()
    };
    assert!(matches!(d.feed_prefix(b"x"), Err(Misuse::Unexpected(_))));
}

fn video_with_sidecar(len: usize) -> (Vec<u8>, Vec<u8>, EncryptedMedia) {
    let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    let (body, meta) = encrypt(key(), &MediaType::Video, &plain).unwrap();
    (plain, body, meta)
}

fn sidecar_spec(meta: &EncryptedMedia, sidecar: Vec<u8>) -> DownloadSpec {
    DownloadSpec {
        media_type: MediaType::Video,
        media_key: Some(key()),
        source: Source::DirectPath(PATH.into()),
        expected: Expected {
            file_enc_sha256: Some(meta.file_enc_sha256),
            file_sha256: Some(meta.file_sha256),
            file_length: Some(meta.file_length),
        },
        streaming_sidecar: Some(sidecar),
    }
}

#[test]
fn a_sidecar_releases_each_window_verified_as_it_arrives() {
    let t0 = Instant::now();
    let (plain, body, meta) = video_with_sidecar(200_000);
    let sidecar = meta.streaming_sidecar.clone().unwrap();
    let mut d = Download::new(
        sidecar_spec(&meta, sidecar),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    d.handle_input(
        t0,
        Input::MediaConn(conn_at(t0, Duration::ZERO, "a", &["h"])),
    )
    .unwrap();
    let Output::Transmit(req) = d.poll_output(t0) else {
        panic!()
    };
    let h = http::HeaderMap::new();
    d.handle_input(
        t0,
        Input::Head {
            id: req.id,
            status: 200,
            headers: &h,
        },
    )
    .unwrap();
    d.handle_input(
        t0,
        Input::Body {
            id: req.id,
            data: &body[..70_000],
        },
    )
    .unwrap();
    let first = match d.poll_output(t0) {
        Output::Verified(p) => p.to_vec(),
        o => panic!("{o:?}"),
    };
    assert!(
        first == plain[..65_536],
        "window 0 verified before the body ends: {}",
        first.len()
    );
    // The rest through the scripted driver: everything verified, in order.
    let mut d = Download::new(
        sidecar_spec(&meta, meta.streaming_sidecar.clone().unwrap()),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&body));
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert!(
        run.verified == plain,
        "{} of {} bytes verified",
        run.verified.len(),
        plain.len()
    );
}

#[test]
fn a_tampered_window_stops_the_download_naming_it() {
    let t0 = Instant::now();
    let (plain, mut body, meta) = video_with_sidecar(200_000);
    body[65_536 + 100] ^= 1; // window 1
    let mut s = sidecar_spec(&meta, meta.streaming_sidecar.clone().unwrap());
    s.expected.file_enc_sha256 = None;
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&body));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::SidecarMismatch { window: 1 })
    );
    assert!(
        run.verified == plain[..65_536],
        "only what its window vouched for: {} bytes",
        run.verified.len()
    );
    // A sidecar of the wrong length is caught at the end.
    let mut extra = meta.streaming_sidecar.clone().unwrap();
    extra.extend_from_slice(&[0; 10]);
    let mut d = Download::new(
        sidecar_spec(&meta, extra),
        DownloadOptions::default(),
        t0,
        wall(),
    );
    let (_, good, _) = video_with_sidecar(200_000);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&good));
    assert!(matches!(
        run.outcome,
        Err(DownloadError::Integrity(
            IntegrityError::SidecarMismatch { .. }
        ))
    ));
}

/// Answers `Range: bytes=a-b` (closed) with a 206 of exactly those bytes.
fn serve_closed_range(req: &Request, body: &[u8]) -> Reply {
    let r = req.headers["range"]
        .to_str()
        .unwrap()
        .trim_start_matches("bytes=");
    let (a, b) = r.split_once('-').unwrap();
    let a: usize = a.parse().unwrap();
    let b: usize = if b.is_empty() {
        body.len() - 1
    } else {
        b.parse().unwrap()
    };
    Reply::Answer(
        206,
        vec![("content-range", format!("bytes {a}-{b}/{}", body.len()))],
        body[a..=b].to_vec(),
    )
}

#[test]
fn a_plaintext_range_fetches_only_its_windows_verified() {
    let t0 = Instant::now();
    let (plain, body, meta) = video_with_sidecar(300_000);
    let sidecar = meta.streaming_sidecar.clone().unwrap();
    for (a, b) in [
        (70_000u64, 70_100u64),
        (0, 10),
        (65_530, 131_100),
        (299_990, 300_000),
        (0, 300_000),
        (1, 299_999),
    ] {
        let mut d = Download::new(
            sidecar_spec(&meta, sidecar.clone()),
            DownloadOptions::default(),
            t0,
            wall(),
        )
        .with_plaintext_range(a, b)
        .unwrap();
        let run = drive(&mut d, t0, hosts2(t0), |r, _| serve_closed_range(r, &body));
        let r = run.outcome.unwrap();
        assert_eq!(r.range, Some(a..b));
        assert!(
            run.verified == plain[a as usize..b as usize],
            "{a}..{b}: {} bytes",
            run.verified.len()
        );
        let range = run.requests[0].1.headers["range"]
            .to_str()
            .unwrap()
            .to_owned();
        let first_window = a / 65_536;
        let from = (first_window * 65_536).saturating_sub(16);
        assert!(
            range.starts_with(&format!("bytes={from}-")),
            "{a}..{b}: {range}"
        );
    }
    // A server that ignores Range (200, whole body) still gives just the range.
    let mut d = Download::new(
        sidecar_spec(&meta, sidecar.clone()),
        DownloadOptions::default(),
        t0,
        wall(),
    )
    .with_plaintext_range(70_000, 70_100)
    .unwrap();
    let run = drive(&mut d, t0, hosts2(t0), |_, _| serve(&body));
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert!(run.verified == plain[70_000..70_100]);
    // A tampered window in the range is caught before its plaintext goes out.
    let mut bad = body.clone();
    bad[70_000] ^= 1;
    let mut d = Download::new(
        sidecar_spec(&meta, sidecar),
        DownloadOptions::default(),
        t0,
        wall(),
    )
    .with_plaintext_range(66_000, 67_000)
    .unwrap();
    let run = drive(&mut d, t0, hosts2(t0), |r, _| serve_closed_range(r, &bad));
    assert_eq!(
        run.outcome.unwrap_err(),
        DownloadError::Integrity(IntegrityError::SidecarMismatch { window: 1 })
    );
    assert!(run.verified.is_empty());
    // Without a sidecar there is nothing to verify a range by.
    let mut s = sidecar_spec(&meta, vec![]);
    s.streaming_sidecar = None;
    assert!(matches!(
        Download::new(s, DownloadOptions::default(), t0, wall()).with_plaintext_range(0, 10),
        Err(DownloadError::BadRange(_))
    ));
}

#[test]
fn fuzz_finds_stay_fixed() {
    // A URL with a fragment after its host (the host http::Uri reads is not the one a
    // naive split reads): refused.
    let m = media(10);
    let e = refused_before_any_request(
        spec(
            &m,
            Source::Url("https://mmg.whatsapp.net#@evil.example/x".into()),
        ),
        DownloadOptions::default(),
    );
    assert!(matches!(e, DownloadError::UntrustedUrl { .. }), "{e:?}");
    // A body past the length its answer declared is refused; progress never passes the
    // total it reports.
    let t0 = Instant::now();
    let mut s = spec(&m, Source::DirectPath(PATH.into()));
    s.expected.file_length = None;
    let mut d = Download::new(s, DownloadOptions::default(), t0, wall());
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        Reply::Answer(200, vec![("content-length", "0".into())], vec![7; 1000])
    });
    assert!(
        matches!(
            run.outcome,
            Err(DownloadError::Integrity(IntegrityError::TooLarge { .. }))
        ),
        "{:?}",
        run.outcome
    );
    assert!(run.progress.iter().all(|&p| p == 0), "{:?}", run.progress);
}
