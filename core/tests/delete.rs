//! The delete machine (history-sync blobs, PROTOCOL §6), one scenario per test.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wamedia::*;

fn spec(handle: Option<&str>, secret: Option<&str>) -> DeleteSpec {
    DeleteSpec {
        direct_path: "/v/t62.7118-24/hist_n.enc?ccb=11-4&oh=01&oe=7FFFFFFF".into(),
        file_enc_sha256: [0xfb; 32],
        handle: handle.map(str::to_owned),
        companion_secret: secret.map(str::to_owned),
    }
}

fn hosts2(t0: Instant) -> impl FnMut(bool, Duration) -> MediaConn {
    move |_, at| conn_at(t0, at, "tok/en+=", &["h1.example", "h2.example"])
}

fn retry() -> RetryPolicy {
    UploadOptions::default().retry
}

#[test]
fn the_request_is_exactly_the_protocol() {
    let t0 = Instant::now();
    let mut d = Delete::new(spec(Some("hnd"), Some("s3cret-companion")), retry(), t0);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| status(200));
    assert_eq!(run.outcome.unwrap().host, "h1.example");
    let (_, req) = &run.requests[0];
    assert_eq!(req.method, http::Method::DELETE);
    let t = b64::url(&[0xfb; 32]);
    // d_md unpadded, as WhatsApp Web and whatsmeow send it (PROTOCOL v3 §6).
    let d_md = b64::url_nopad(b"/v/t62.7118-24/hist_n.enc");
    assert_eq!(d_md, "L3YvdDYyLjcxMTgtMjQvaGlzdF9uLmVuYw");
    assert_eq!(
        req.url,
        format!(
            "https://h1.example/mms/md-msg-hist/{t}?token={}&d_md={d_md}&auth=tok%2Fen%2B%3D&e_handle=hnd",
            t.replace('=', "%3D")
        )
    );
    assert_eq!(req.headers["companion_user_secret"], "s3cret-companion");
    let dbg = format!("{req:?}");
    assert!(
        !dbg.contains("s3cret-companion") && !dbg.contains("tok%2Fen"),
        "{dbg}"
    );
    assert!(!format!("{:?}", spec(Some("h"), Some("s3cret-companion"))).contains("s3cret"));
}

#[test]
fn the_secret_header_goes_only_with_a_handle() {
    let t0 = Instant::now();
    for (h, s) in [(None, Some("s")), (Some("h"), None), (None, None)] {
        let mut d = Delete::new(spec(h, s), retry(), t0);
        let run = drive(&mut d, t0, hosts2(t0), |_, _| status(204));
        assert!(run.outcome.is_ok());
        assert!(run.requests[0]
            .1
            .headers
            .get("companion_user_secret")
            .is_none());
        assert_eq!(run.requests[0].1.url.contains("e_handle"), h.is_some());
    }
}

#[test]
fn not_found_is_final_and_auth_is_renewed_once() {
    let t0 = Instant::now();
    let mut d = Delete::new(spec(None, None), retry(), t0);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| status(404));
    assert!(matches!(
        run.outcome,
        Err(DeleteError::Status { status: 404, .. })
    ));
    assert_eq!(run.requests.len(), 1);
    let mut d = Delete::new(spec(None, None), retry(), t0);
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
        |r, _| {
            if r.url.contains("auth=stale") {
                status(401)
            } else {
                status(200)
            }
        },
    );
    assert!(run.outcome.is_ok());
    assert_eq!(
        run.conn_asks,
        vec![(Duration::ZERO, false), (Duration::ZERO, true)]
    );
    let mut d = Delete::new(spec(None, None), retry(), t0);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| status(401));
    assert!(matches!(run.outcome, Err(DeleteError::AuthRejected { .. })));
}

#[test]
fn server_errors_retry_like_an_upload_then_give_up() {
    let t0 = Instant::now();
    let mut d = Delete::new(spec(None, None), retry(), t0);
    let run = drive(&mut d, t0, hosts2(t0), |_, _| status(503));
    assert_eq!(
        run.hosts(),
        ["h1.example", "h1.example", "h2.example", "h2.example"]
    );
    assert!(matches!(
        run.outcome,
        Err(DeleteError::AllHostsFailed { .. })
    ));
    let mut d = Delete::new(spec(None, None), retry(), t0);
    let mut n = 0;
    let run = drive(&mut d, t0, hosts2(t0), |_, _| {
        n += 1;
        if n == 1 {
            Reply::Fail("reset")
        } else {
            status(202)
        }
    });
    assert_eq!(run.outcome.unwrap().status, 202);
}
