//! The upload machine, one scenario per test, through the public API, on a virtual clock.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wamedia::*;

const OK: &str = r#"{"url":"https://mmg.whatsapp.net/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b","direct_path":"/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b"}"#;

fn small() -> (Vec<u8>, UploadSpec) {
    let (body, media) = encrypt(key(), &MediaType::Image, b"hello, media");
    (body, UploadSpec::encrypted(MediaType::Image, &media))
}

/// A spec whose body is `len` bytes long (content does not matter to the machine).
fn large(len_plain: usize) -> UploadSpec {
    let (_, media) = encrypt(key(), &MediaType::Video, &vec![1u8; len_plain]);
    UploadSpec::encrypted(MediaType::Video, &media)
}

fn opts() -> UploadOptions {
    UploadOptions {
        resume_threshold: 1024,
        ..UploadOptions::default()
    }
}

fn hosts2(t0: Instant) -> impl FnMut(bool, Duration) -> MediaConn {
    move |_, at| conn_at(t0, at, "tok/en+=", &["h1.example", "h2.example"])
}

#[test]
fn happy_path_request_is_exactly_the_protocol() {
    let t0 = Instant::now();
    let (body, spec) = small();
    let token = spec.token();
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    let r = run.outcome.unwrap();
    let (_, req) = &run.requests[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(
        req.url,
        format!("https://h1.example/mms/image/{token}?auth=tok%2Fen%2B%3D&token={token}")
    );
    assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
    let h = &req.headers;
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["origin"], "https://web.whatsapp.com");
    assert_eq!(h["referer"], "https://web.whatsapp.com/");
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert_eq!(
        req.body,
        BodySpec::UploadBody {
            from: 0,
            to: body.len() as u64
        }
    );
    assert!(req.redacted_url().contains("auth=<redacted>"));
    assert_eq!(r.direct_path, "/o1/v/t62/f1/m1/x?ccb=9-4&oh=a&oe=b");
    assert_eq!(r.media_key, Some(key()));
    assert_eq!(r.file_length, 12);
    assert_eq!(run.conn_asks, vec![(Duration::ZERO, false)]);
    let http_req = req.to_http().unwrap();
    assert_eq!(http_req.uri().host(), Some("h1.example"));
}

#[test]
fn unknown_fields_are_ignored_and_optional_ones_kept() {
    let t0 = Instant::now();
    let (_, spec) = small();
    let mut up = Upload::new(spec.with_media_key_timestamp(1_700_000_000), opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(
            r#"{"url":"https://h/x","direct_path":"/x","handle":"H","object_id":"O","meta_hmac":"M","ts":1700000001,"fbid":123,"brand_new":{"a":1}}"#,
        )
    });
    let r = run.outcome.unwrap();
    assert_eq!(
        (
            r.handle.as_deref(),
            r.object_id.as_deref(),
            r.meta_hmac.as_deref(),
            r.ts,
            r.fbid.as_deref()
        ),
        (
            Some("H"),
            Some("O"),
            Some("M"),
            Some(1_700_000_001),
            Some("123")
        )
    );
    assert_eq!(r.media_key_timestamp, Some(1_700_000_000));
    let json = r.to_json();
    assert_eq!(json["handle"], "H");
    assert_eq!(json["media_key"], key().to_base64());
}

#[test]
fn url_or_direct_path_alone_is_enough() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let r = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"direct_path":"/d/p?x=1"}"#)
    })
    .outcome
    .unwrap();
    assert_eq!(r.url, "https://h1.example/d/p?x=1");
    let mut up = Upload::new(small().1, opts(), t0);
    let r = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"url":"https://cdn.example/d/q?y=2"}"#)
    })
    .outcome
    .unwrap();
    assert_eq!(r.direct_path, "/d/q?y=2");
}

#[test]
fn server_error_moves_to_the_next_host() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            status(502)
        } else {
            ok_json(OK)
        }
    });
    assert_eq!(run.hosts(), ["h1.example", "h2.example"]);
    assert_eq!(run.outcome.unwrap().host, "h2.example");
    assert_eq!(run.elapsed, Duration::ZERO, "no wait before the next host");
}

#[test]
fn transport_failure_moves_to_the_next_host() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            Reply::Fail("refused")
        } else {
            ok_json(OK)
        }
    });
    assert_eq!(run.outcome.unwrap().host, "h2.example");
}

#[test]
fn a_silent_host_times_out_and_the_next_is_tried() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            Reply::Silence
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(
        run.requests[1].0,
        Duration::from_secs(60),
        "the second host is asked at the first one's deadline"
    );
}

#[test]
fn every_host_failing_backs_off_between_rounds_and_lists_each_host() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.host == "h1.example" {
            status(503)
        } else {
            Reply::Fail("reset by peer")
        }
    });
    let err = run.outcome.unwrap_err();
    let UploadError::AllHostsFailed { failures, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 6, "3 rounds of 2 hosts");
    let msg = err.to_string();
    assert!(
        msg.contains("h1.example: HTTP 503")
            && msg.contains("h2.example: transport error: reset by peer"),
        "{msg}"
    );
    let times: Vec<_> = run.requests.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(
        times,
        [0, 0, 500, 500, 1500, 1500],
        "backoff doubles between rounds"
    );
}

#[test]
fn attempt_limit_bounds_the_retries() {
    let t0 = Instant::now();
    let mut o = opts();
    o.retry.max_attempts = 3;
    o.retry.max_rounds = 100;
    let mut up = Upload::new(small().1, o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| status(500));
    assert_eq!(run.requests.len(), 3);
    assert!(matches!(
        run.outcome,
        Err(UploadError::AllHostsFailed {
            why: "attempt limit reached",
            ..
        })
    ));
}

#[test]
fn too_many_requests_honours_retry_after_on_the_same_host() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        n += 1;
        match n {
            1 => Reply::Answer(429, vec![("retry-after", "7".into())], vec![]),
            2 => Reply::Answer(408, vec![], vec![]),
            _ => ok_json(OK),
        }
    });
    assert!(run.outcome.is_ok());
    assert_eq!(run.hosts(), ["h1.example"; 3]);
    let times: Vec<_> = run.requests.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, [0, 7000, 7500], "Retry-After, then the base backoff");
}

#[test]
fn total_deadline_ends_the_upload() {
    let t0 = Instant::now();
    let mut o = opts();
    o.retry.total_timeout = Duration::from_secs(5);
    let mut up = Upload::new(small().1, o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        Reply::Answer(429, vec![("retry-after", "10".into())], vec![])
    });
    assert!(matches!(
        run.outcome,
        Err(UploadError::AllHostsFailed {
            why: "deadline passed",
            ..
        })
    ));
    assert_eq!(run.elapsed, Duration::from_secs(5));
}

#[test]
fn stale_auth_forces_one_renewal_then_succeeds() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let mut conns = 0;
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            conns += 1;
            conn_at(
                t0,
                at,
                &format!("auth{conns}"),
                &["h1.example", "h2.example"],
            )
        },
        |r, _| {
            if r.url.contains("auth=auth1") {
                status(401)
            } else {
                ok_json(OK)
            }
        },
    );
    assert!(run.outcome.is_ok());
    assert_eq!(
        run.conn_asks.iter().map(|c| c.1).collect::<Vec<_>>(),
        [false, true]
    );
    assert!(run.urls()[1].contains("auth=auth2"));
    assert_eq!(
        run.hosts(),
        ["h1.example", "h1.example"],
        "renewal starts again at the first host"
    );
}

#[test]
fn a_second_auth_failure_is_final() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| status(403));
    assert_eq!(
        run.outcome.unwrap_err(),
        UploadError::AuthRejected {
            host: "h1.example".into(),
            status: 403
        }
    );
    assert_eq!(run.requests.len(), 2);
}

#[test]
fn an_expired_connection_is_renewed_before_use() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    // The first connection's auth lives 1 s; the first round fails and backs off 0.5 s,
    // the second 1 s: by then the auth is stale and must be renewed first.
    let run = drive(
        &mut up,
        t0,
        |_, at| {
            let mut c = conn_at(t0, at, "a", &["h1.example"]);
            c.auth_ttl = Some(Duration::from_secs(1));
            c
        },
        |_, at| {
            if at < Duration::from_millis(1500) {
                status(500)
            } else {
                ok_json(OK)
            }
        },
    );
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(
        run.conn_asks,
        [
            (Duration::ZERO, false),
            (Duration::from_millis(1500), false)
        ]
    );
}

#[test]
fn a_connection_already_expired_when_given_is_an_error() {
    let t0 = Instant::now() + Duration::from_secs(1000);
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, _| conn_at(t0, Duration::ZERO, "a", &["h"]).tap_fetched(t0 - Duration::from_secs(900)),
        |_, _| ok_json(OK),
    );
    assert_eq!(run.outcome.unwrap_err(), UploadError::ConnExpired);
    assert_eq!(
        run.conn_asks.iter().map(|c| c.1).collect::<Vec<_>>(),
        [false, true],
        "a fresh one was asked for first"
    );
}

#[test]
fn a_stale_cached_connection_is_renewed_before_the_first_request() {
    let t0 = Instant::now() + Duration::from_secs(1000);
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |force, at| {
            if force {
                conn_at(t0, at, "fresh", &["h1.example"])
            } else {
                conn_at(t0, at, "cached", &["h1.example"])
                    .tap_fetched(t0 - Duration::from_secs(900))
            }
        },
        |_, _| ok_json(OK),
    );
    assert!(run.outcome.is_ok());
    assert_eq!(run.requests.len(), 1);
    assert!(run.urls()[0].contains("auth=fresh"));
}

trait Tap {
    fn tap_fetched(self, at: Instant) -> Self;
}
impl Tap for MediaConn {
    fn tap_fetched(mut self, at: Instant) -> Self {
        self.fetched_at = at;
        self
    }
}

#[test]
fn an_empty_host_list_is_an_error() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(
        &mut up,
        t0,
        |_, at| conn_at(t0, at, "a", &[]),
        |_, _| ok_json(OK),
    );
    assert_eq!(run.outcome.unwrap_err(), UploadError::NoHosts);
    assert!(run.requests.is_empty());
}

#[test]
fn other_client_errors_are_final_with_a_capped_body() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        Reply::Answer(413, vec![], vec![b'x'; 10_000])
    });
    let UploadError::Status { status, body, host } = run.outcome.unwrap_err() else {
        panic!()
    };
    assert_eq!(
        (status, host.as_str(), body.len()),
        (413, "h1.example", 4096)
    );
    assert_eq!(run.requests.len(), 1);
}

#[test]
fn resume_complete_sends_no_body() {
    let t0 = Instant::now();
    let mut up = Upload::new(large(4000), opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"resume":"complete","url":"https://h/x","direct_path":"/x"}"#)
    });
    assert_eq!(run.outcome.unwrap().direct_path, "/x");
    assert_eq!(run.requests.len(), 1);
    let req = &run.requests[0].1;
    assert!(req.url.ends_with("&resume=1"), "{}", req.url);
    assert_eq!(req.body, BodySpec::Empty);
    assert_eq!(req.headers["content-length"], "0");
}

#[test]
fn resume_at_an_offset_sends_the_rest() {
    let t0 = Instant::now();
    let spec = large(4000);
    let len = spec.body_len();
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        if r.url.contains("resume=1") {
            ok_json(r#"{"resume":"1024"}"#)
        } else {
            ok_json(OK)
        }
    });
    assert!(run.outcome.is_ok());
    let req = &run.requests[1].1;
    assert!(req.url.ends_with("&file_offset=1024"), "{}", req.url);
    assert_eq!(
        req.body,
        BodySpec::UploadBody {
            from: 1024,
            to: len
        }
    );
    assert_eq!(
        req.headers["content-length"],
        (len - 1024).to_string().as_str()
    );
}

#[test]
fn nonsense_resume_answers_upload_from_zero() {
    let t0 = Instant::now();
    for answer in [
        r#"{"resume":"abc"}"#,
        r#"{"resume":0}"#,
        r#"{"resume":999999}"#,
        r#"{"resume":-5}"#,
        "garbage",
        r#"{"resume":"complete"}"#,
        r#"{}"#,
    ] {
        let spec = large(4000);
        let len = spec.body_len();
        let mut up = Upload::new(spec, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |r, _| {
            if r.url.contains("resume=1") {
                ok_json(answer)
            } else {
                ok_json(OK)
            }
        });
        assert!(run.outcome.is_ok(), "{answer}");
        assert_eq!(
            run.requests[1].1.body,
            BodySpec::UploadBody { from: 0, to: len },
            "{answer}"
        );
        assert!(!run.requests[1].1.url.contains("file_offset"));
    }
}

#[test]
fn a_dropped_large_upload_starts_again_with_the_resume_check() {
    let t0 = Instant::now();
    let mut up = Upload::new(large(4000), opts(), t0);
    let mut n = 0;
    let run = drive(&mut up, t0, hosts2(t0), |r, _| {
        n += 1;
        match n {
            1 => ok_json(r#"{"resume":"0"}"#),
            2 => Reply::Fail("connection reset mid-body"),
            _ if r.url.contains("resume=1") => ok_json(r#"{"resume":2048}"#),
            _ => ok_json(OK),
        }
    });
    assert!(run.outcome.is_ok());
    let urls = run.urls();
    assert!(urls[2].ends_with("&resume=1"), "{urls:?}");
    assert!(urls[3].ends_with("&file_offset=2048"), "{urls:?}");
}

#[test]
fn small_bodies_skip_the_resume_check_and_resume_can_be_disabled() {
    let t0 = Instant::now();
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(!run.urls()[0].contains("resume"));
    let mut o = opts();
    o.resume = false;
    let mut up = Upload::new(large(4000), o, t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| ok_json(OK));
    assert!(!run.urls()[0].contains("resume"));
}

#[test]
fn malformed_success_answers_move_to_the_next_host() {
    let t0 = Instant::now();
    for bad in ["<html>oops</html>", r#"{"status":"ok"}"#] {
        let mut up = Upload::new(small().1, opts(), t0);
        let run = drive(&mut up, t0, hosts2(t0), |r, _| {
            if r.host == "h1.example" {
                ok_json(bad)
            } else {
                ok_json(OK)
            }
        });
        assert_eq!(run.outcome.unwrap().host, "h2.example", "{bad}");
    }
    let mut up = Upload::new(small().1, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"status":"ok"}"#)
    });
    let msg = run.outcome.unwrap_err().to_string();
    assert!(msg.contains("200 without url or direct_path"), "{msg}");
}

#[test]
fn newsletter_uploads_are_plaintext_on_their_own_path() {
    let t0 = Instant::now();
    let plain = b"channel picture";
    let (sha, len) = newsletter_metadata(plain);
    let spec = UploadSpec::newsletter(MediaType::Image, sha, len);
    let token = b64::url_nopad(&sha);
    let mut up = Upload::new(spec, opts(), t0);
    let run = drive(&mut up, t0, hosts2(t0), |_, _| {
        ok_json(r#"{"url":"https://h/n","direct_path":"/n","handle":"hdl"}"#)
    });
    let r = run.outcome.unwrap();
    let req = &run.requests[0].1;
    assert!(
        req.url.starts_with(&format!(
            "https://h1.example/newsletter/newsletter-image/{token}?auth="
        )),
        "{}",
        req.url
    );
    assert_eq!(
        req.body,
        BodySpec::UploadBody {
            from: 0,
            to: plain.len() as u64
        }
    );
    assert_eq!(
        (r.media_key, r.file_enc_sha256, r.handle.as_deref()),
        (None, None, Some("hdl"))
    );
}

#[test]
fn progress_follows_sent_bytes() {
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
    assert!(
        matches!(up.poll_output(t0), Output::Wait(_)),
        "a request in flight: wait"
    );
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
    assert_eq!(
        up.handle_input(
            t0,
            Input::Failed {
                id: RequestId(9),
                reason: String::new()
            }
        ),
        Err(Misuse::UnknownRequest(9))
    );
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
    let Output::Transmit(second) = up.poll_output(later) else {
        panic!()
    };
    assert_eq!(second.host, "h2");
    up.handle_response(later, first.id, 200, &http::HeaderMap::new(), OK.as_bytes())
        .unwrap();
    assert!(
        matches!(up.poll_output(later), Output::Wait(_)),
        "the late answer changed nothing"
    );
}

#[test]
fn random_answer_sequences_always_terminate_within_the_bounds() {
    let mut rng = Rng(42);
    for case in 0..2000 {
        let t0 = Instant::now();
        let spec = if case % 2 == 0 {
            small().1
        } else {
            large(2000)
        };
        let mut o = opts();
        o.retry.max_attempts = 1 + rng.below(12) as u32;
        o.retry.max_rounds = 1 + rng.below(4) as u32;
        let max = o.retry.max_attempts as usize;
        let nhosts = rng.below(4) as usize;
        let hosts: Vec<String> = (0..nhosts).map(|i| format!("h{i}")).collect();
        let mut up = Upload::new(spec, o, t0);
        let mut seed = rng.next();
        let ttl = Duration::from_secs(1 + seed % 100);
        let run = drive(
            &mut up,
            t0,
            |_, at| MediaConn::new("a", hosts.clone(), ttl, t0 + at),
            |_, _| {
                let mut r = Rng(seed);
                seed = r.next();
                let statuses = [200, 200, 401, 403, 408, 429, 500, 503, 404, 413];
                let bodies = [
                    OK,
                    "",
                    "{}",
                    r#"{"resume":"complete"}"#,
                    r#"{"resume":"17"}"#,
                    "[1,2",
                    r#"{"resume":"complete","url":"https://x/y"}"#,
                ];
                match r.below(5) {
                    0 => Reply::Fail("boom"),
                    1 => Reply::Silence,
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
            assert_eq!(run.outcome.unwrap_err(), UploadError::NoHosts);
        }
    }
}
