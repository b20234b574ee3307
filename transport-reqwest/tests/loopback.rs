//! wamedia-reqwest against the conformance crate's fake CDN on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wamedia::*;
use wamedia_conformance::{FakeCdn, Fault, On};
use wamedia_driver::Error;
use wamedia_reqwest::{Client, ClientOptions, Transfer};

fn options() -> ClientOptions {
    let mut o = ClientOptions::default();
    o.upload.retry.backoff_base = Duration::from_millis(10);
    o.download.retry.backoff_base = Duration::from_millis(10);
    o
}

fn client() -> Client {
    Client::new(options())
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A port nothing listens on: connecting to it is refused.
fn dead_host() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[test]
fn the_client_and_its_futures_can_move_between_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<F: std::future::Future + Send>(_: &F) {}
    shareable::<Client>();
    let c = client();
    let conn = MediaConn::new(
        "a",
        vec!["http://127.0.0.1:9".into()],
        Duration::from_secs(1),
        Instant::now(),
    );
    let mut provider = StaticConn(conn);
    let mut t = Transfer::new();
    sendable(&c.upload_bytes(
        b"x".to_vec(),
        &UploadJob::new(MediaType::Image),
        &mut provider,
        &mut t,
    ));
    let mut out = Vec::new();
    let spec = wamedia_conformance::hostile::sample_download();
    sendable(&c.download(spec.clone(), &mut provider, &mut out, &mut t));
    sendable(&c.download_to_path(spec, &mut provider, std::path::Path::new("x"), &mut t));
    sendable(&c.upload_stream(
        std::io::empty(),
        &UploadJob::new(MediaType::Image),
        &mut provider,
        &mut t,
    ));
}

#[tokio::test]
async fn round_trips_several_types_and_sizes() {
    let cdn = FakeCdn::start().unwrap();
    let c = client();
    let cases = [
        (MediaType::Image, 0),
        (MediaType::Sticker, 1),
        (MediaType::Ptt, 1 << 20),
        (MediaType::Document, 20 << 20),
        (MediaType::History, 33),
    ];
    for (t, len) in cases {
        let plain = data(len);
        let mut conn = StaticConn(cdn.media_conn(Instant::now()));
        let r = c
            .upload_bytes(
                plain.clone(),
                &UploadJob::new(t.clone()),
                &mut conn,
                &mut Transfer::new(),
            )
            .await
            .unwrap();
        assert_eq!(r.file_length, len as u64);
        assert_eq!(
            cdn.stored(&b64::url_nopad(&r.file_enc_sha256.unwrap()))
                .unwrap()
                .len() as u64,
            encrypt::body_len(len as u64)
        );
        let mut out = Vec::new();
        let d = c
            .download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
            .await
            .unwrap();
        assert_eq!(d.verified.file_length, len as u64);
        assert!(out == plain, "{t} {len}");
    }
    // No content coding is ever requested: bodies are encrypted (issue: a gzip
    // answer from a hostile CDN inflated without bound).
    assert!(
        cdn.seen().iter().all(|s| !s.asks_for_content_coding()),
        "{:?}",
        cdn.seen()
    );
}

#[tokio::test]
async fn uploads_a_file_with_progress_and_downloads_it_to_a_path() {
    let cdn = FakeCdn::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    let plain = data(3 << 20);
    std::fs::write(&path, &plain).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let mut t = Transfer::new().on_progress(move |d, total| s2.lock().unwrap().push((d, total)));
    let r = wamedia_reqwest::upload_file(
        &client(),
        &path,
        &UploadJob::new(MediaType::Video),
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &mut t,
    )
    .await
    .unwrap();
    let body_len = encrypt::body_len(plain.len() as u64);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.last(), Some(&(body_len, Some(body_len))));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(seen.len() > 2, "progress while the body moves: {seen:?}");
    }
    // Downloaded to a path: verified, then renamed; progress up to the body's length.
    let out = dir.path().join("back.mp4");
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new().on_progress(move |d, _| g2.lock().unwrap().push(d)),
        )
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == plain);
    assert_eq!(got.lock().unwrap().last(), Some(&body_len));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no partial file left"
    );
}

#[tokio::test]
async fn non_seekable_sources_are_spooled() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(100_000);
    // A small spool limit forces the temporary file.
    let o = ClientOptions {
        spool_in_memory: 1000,
        ..options()
    };
    let c = Client::new(o);
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let r = c
        .upload_stream(
            std::io::Cursor::new(plain.clone()).chain(&b""[..]),
            &UploadJob::new(MediaType::Audio),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.file_length, 100_000);
    let mut out = Vec::new();
    c.download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
        .await
        .unwrap();
    assert!(out == plain);
}

#[tokio::test]
async fn falls_back_to_the_next_host() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = cdn.media_conn(Instant::now());
    conn.hosts.insert(0, dead_host().into());
    let r = client()
        .upload_bytes(
            &b"fallback"[..],
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(conn),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.host, cdn.host());
    cdn.push_fault(On::Upload, Fault::Status(503, None));
    let r = client()
        .upload_bytes(
            &b"fallback 2"[..],
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await;
    // One host, one 503: the next round succeeds.
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    cdn.push_fault(On::Upload, Fault::Drop);
    let r = client()
        .upload_bytes(
            data(5000),
            &UploadJob::new(MediaType::Image),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let statuses: Vec<u16> = cdn.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [0, 200]);
    cdn.push_fault(On::Download, Fault::Drop);
    let mut out = Vec::new();
    client()
        .download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
        .await
        .unwrap();
    assert!(out == data(5000));
}

#[tokio::test]
async fn renews_stale_auth_once() {
    let cdn = FakeCdn::start().unwrap();
    let stale = cdn.media_conn(Instant::now());
    cdn.set_auth("fresh-token");
    let fresh = cdn.media_conn(Instant::now());
    let asks = Arc::new(Mutex::new(Vec::new()));
    let a2 = asks.clone();
    let mut provider = move |force: bool, _now: Instant| {
        a2.lock().unwrap().push(force);
        Ok(if force { fresh.clone() } else { stale.clone() })
    };
    let r = client()
        .upload_bytes(
            &b"auth"[..],
            &UploadJob::new(MediaType::Document),
            &mut provider,
            &mut Transfer::new(),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(*asks.lock().unwrap(), [false, true]);
    let statuses: Vec<u16> = cdn.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [401, 200]);
}

#[tokio::test]
async fn resumes_a_partly_stored_upload() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(6 << 20);
    let key = MediaKey::from_bytes([1; 32]);
    let (body, media) = encrypt(key.clone(), &MediaType::Video, &plain).unwrap();
    let token = b64::url(&media.file_enc_sha256);
    cdn.put_partial(&token, &body[..4 << 20]);
    let r = client()
        .upload_bytes(
            plain,
            &UploadJob::new(MediaType::Video).with_media_key(key),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.file_enc_sha256, Some(media.file_enc_sha256));
    let seen = cdn.seen();
    assert!(seen[0].target.contains("resume=1"));
    assert!(
        seen[1]
            .target
            .contains(&format!("bytestart={}&byteend={}", 4 << 20, body.len())),
        "{}",
        seen[1].target
    );
    assert_eq!(seen[1].body_len, body.len() as u64 - (4 << 20));
    assert!(cdn.stored(&token).unwrap() == body);
}

#[tokio::test]
async fn a_dropped_large_upload_resumes_where_the_cdn_stopped() {
    let cdn = FakeCdn::start().unwrap();
    cdn.push_fault(On::Upload, Fault::DropUploadAfter(3 << 20));
    let plain = data(6 << 20);
    let r = client()
        .upload_bytes(
            plain.clone(),
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    let seen = cdn.seen();
    let targets: Vec<_> = seen
        .iter()
        .map(|s| (s.target.contains("resume=1"), s.body_len))
        .collect();
    // A fresh key: no probe first. Body cut after 3 MiB (Input::Sent told the machine
    // bytes moved), a probe on the same host, the rest from 3 MiB.
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert!(!seen[0].target.contains("resume=1"));
    assert!(seen[1].target.contains("resume=1"));
    let len = encrypt::body_len(plain.len() as u64);
    assert!(
        seen[2]
            .target
            .contains(&format!("bytestart={}&byteend={len}", 3 << 20)),
        "{}",
        seen[2].target
    );
    assert_eq!(seen[2].body_len, len - (3 << 20));
}

#[tokio::test]
async fn a_tampered_download_fails_and_leaves_no_file() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let r = client()
        .upload_bytes(
            data(5000),
            &UploadJob::new(MediaType::Image),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    cdn.push_fault(On::Download, Fault::Tamper);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("img.jpg");
    let mut spec = r.download_spec();
    spec.expected.file_enc_sha256 = None;
    let err = client()
        .download_to_path(spec, &mut conn, &out, &mut Transfer::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Download(DownloadError::Integrity(IntegrityError::MacMismatch))
        ),
        "{err:?}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left behind"
    );
}

#[tokio::test]
async fn a_cut_download_resumes_with_range() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let plain = data(300_000);
    let r = client()
        .upload_bytes(
            plain.clone(),
            &UploadJob::new(MediaType::Document),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    cdn.push_fault(On::Download, Fault::CutDownload(100_005));
    let mut out = Vec::new();
    client()
        .download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
        .await
        .unwrap();
    assert!(out == plain);
    let ranges: Vec<_> = cdn
        .seen()
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| {
            s.headers
                .iter()
                .find(|(k, _)| k == "range")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".into())]);
}

#[tokio::test]
async fn cancellation_stops_a_transfer() {
    let cdn = FakeCdn::start().unwrap();
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let mut t = Transfer::new()
        .with_cancel(cancel)
        .on_progress(move |done, _| {
            if done > 1 << 20 {
                c2.cancel();
            }
        });
    let err = client()
        .upload_bytes(
            data(8 << 20),
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut t,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}

#[tokio::test]
async fn cancellation_is_noticed_while_the_cdn_is_silent() {
    let cdn = FakeCdn::start().unwrap();
    // The answer would come after a minute: only the cancellation can end this early.
    cdn.push_fault(On::Upload, Fault::Delay(Duration::from_secs(60)));
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c2.cancel();
    });
    let err = client()
        .upload_bytes(
            data(1000),
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new().with_cancel(cancel),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}

#[tokio::test]
async fn a_silent_answer_is_cut_at_the_idle_timeout_and_retried() {
    let cdn = FakeCdn::start().unwrap();
    let o = ClientOptions {
        idle_timeout: Duration::from_millis(300),
        ..options()
    };
    let c = Client::new(o);
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    // Slower than the idle timeout: the first attempt is cut, the retry succeeds.
    cdn.push_fault(On::Upload, Fault::Delay(Duration::from_secs(3)));
    let r = c
        .upload_bytes(
            data(70_000),
            &UploadJob::new(MediaType::Image),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    cdn.push_fault(On::Download, Fault::Delay(Duration::from_secs(3)));
    let mut out = Vec::new();
    c.download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
        .await
        .unwrap();
    assert!(out == data(70_000));
}

#[tokio::test]
async fn a_slow_answer_within_the_idle_timeout_is_waited_for() {
    let cdn = FakeCdn::start().unwrap();
    let o = ClientOptions {
        idle_timeout: Duration::from_secs(20),
        ..options()
    };
    cdn.push_fault(On::Upload, Fault::Delay(Duration::from_millis(300)));
    Client::new(o)
        .upload_bytes(
            data(70_000),
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let statuses: Vec<u16> = cdn.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [200], "one request, waited for");
}

#[tokio::test]
async fn a_silent_cdn_fails_as_a_network_fault_not_as_corrupt_media() {
    let cdn = FakeCdn::start().unwrap();
    let r = client()
        .upload_bytes(
            data(2000),
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let mut o = ClientOptions {
        idle_timeout: Duration::from_millis(100),
        ..options()
    };
    o.download.retry.max_rounds = 1;
    for _ in 0..4 {
        cdn.push_fault(On::Download, Fault::Delay(Duration::from_secs(2)));
    }
    let err = Client::new(o)
        .download(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Vec::new(),
            &mut Transfer::new(),
        )
        .await
        .unwrap_err();
    match &err {
        Error::Download(DownloadError::AllHostsFailed { .. }) => {
            assert!(err.to_string().contains("timed out"), "{err}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn media_gone_everywhere() {
    let cdn = FakeCdn::start().unwrap();
    let spec = DownloadSpec {
        media_type: MediaType::Image,
        media_key: Some(MediaKey::from_bytes([0; 32])),
        source: Source::DirectPath("/v/t62/nothing.enc?ccb=1".into()),
        expected: Expected::default(),
        streaming_sidecar: None,
    };
    let err = client()
        .download(
            spec,
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Vec::new(),
            &mut Transfer::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Download(DownloadError::MediaGone { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_user_agent_unless_asked() {
    let cdn = FakeCdn::start().unwrap();
    let ua = |c: &FakeCdn| {
        let seen = c.seen();
        let last = seen.last().unwrap();
        last.headers
            .iter()
            .find(|(k, _)| k == "user-agent")
            .map(|(_, v)| v.clone())
    };
    let r = client()
        .upload_bytes(
            &b"no name"[..],
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(ua(&cdn), None);
    let named = Client::new(ClientOptions {
        user_agent: Some("Example/1.0".into()),
        ..options()
    });
    named
        .download(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Vec::new(),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(ua(&cdn).as_deref(), Some("Example/1.0"));
}

fn partial_of(out: &std::path::Path) -> std::path::PathBuf {
    out.with_file_name(format!(
        ".{}.wamedia-partial",
        out.file_name().unwrap().to_string_lossy()
    ))
}

/// Runs `download_to_path`, cancelling once more than `stop_after` bytes arrived.
async fn download_cancelled(
    cdn: &FakeCdn,
    spec: DownloadSpec,
    out: &std::path::Path,
    stop_after: u64,
) -> Error {
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let mut t = Transfer::new()
        .with_cancel(cancel)
        .on_progress(move |d, _| {
            if d > stop_after {
                c2.cancel()
            }
        });
    client()
        .download_to_path(
            spec,
            &mut StaticConn(cdn.media_conn(Instant::now())),
            out,
            &mut t,
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn an_interrupted_download_resumes_from_its_partial_file_verified_whole() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(3 << 20);
    let r = client()
        .upload_bytes(
            plain.clone(),
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("movie.mp4");
    let partial = partial_of(&out);
    let err = download_cancelled(&cdn, r.download_spec(), &out, 1 << 20).await;
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(!out.exists(), "nothing unverified at the target");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0, "the partial file stays for the next run");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&partial).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The next run asks only for the rest, and verifies the whole body.
    let before = cdn.seen().len();
    client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == plain);
    assert!(!partial.exists());
    let first = &cdn.seen()[before];
    let range = first.headers.iter().find(|(k, _)| k == "range");
    assert!(range.is_some_and(|(_, v)| v != "bytes=0-"), "{first:?}");

    // A partial whose bytes were changed fails the MAC: removed, nothing published.
    std::fs::remove_file(&out).unwrap();
    download_cancelled(&cdn, r.download_spec(), &out, 1 << 20).await;
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&partial, &bytes).unwrap();
    let err = client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Download(d) if d.is_integrity()),
        "{err:?}"
    );
    assert!(!out.exists() && !partial.exists());

    // A stale partial of another download to the same target is replaced, not resumed.
    download_cancelled(&cdn, r.download_spec(), &out, 1 << 20).await;
    let other = client()
        .upload_bytes(
            &b"another picture"[..],
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    client()
        .download_to_path(
            other.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"another picture");
    assert!(!partial.exists());
}

#[tokio::test]
async fn a_tampered_partial_of_several_mib_fails_as_corrupt_media_and_is_removed() {
    // More than one read of the partial file (1 MiB each): the machine settles on the
    // first one (the sidecar window no longer matches), before the rest is fed back.
    let cdn = FakeCdn::start().unwrap();
    let plain = data(4 << 20);
    let r = client()
        .upload_bytes(
            plain,
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("long.mp4");
    let partial = partial_of(&out);
    download_cancelled(&cdn, r.download_spec(), &out, 5 << 19).await;
    let mut bytes = std::fs::read(&partial).unwrap();
    assert!(bytes.len() > 1 << 21, "{}", bytes.len());
    bytes[100] ^= 1;
    std::fs::write(&partial, &bytes).unwrap();
    let before = cdn.seen().len();
    let err = client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Download(d) if d.is_integrity()),
        "{err:?}"
    );
    assert!(!out.exists() && !partial.exists());
    assert_eq!(cdn.seen().len(), before, "settled without a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_transfers_from_one_client() {
    let cdn = FakeCdn::start().unwrap();
    let c = client();
    let conn = cdn.media_conn(Instant::now());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (c, conn) = (c.clone(), conn.clone());
            tokio::spawn(async move {
                let plain = data(10_000 + i * 997);
                let mut conn = StaticConn(conn);
                let r = c
                    .upload_bytes(
                        plain.clone(),
                        &UploadJob::new(MediaType::Image),
                        &mut conn,
                        &mut Transfer::new(),
                    )
                    .await?;
                let mut out = Vec::new();
                c.download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
                    .await?;
                assert!(out == plain);
                Ok::<_, Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(cdn.object_count(), 50);
}

/// A minimal HTTP/1.1 server that keeps connections open, answers every request with an
/// upload's JSON (or the same bytes to a GET) and counts the connections it accepted.
fn keep_alive_server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", l.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c2, r2) = (conns.clone(), requests.clone());
    std::thread::spawn(move || {
        // Bounded: the test makes a handful of connections at most.
        for s in l.incoming().take(16) {
            let Ok(s) = s else { continue };
            c2.fetch_add(1, Ordering::SeqCst);
            let r3 = r2.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                for _ in 0..64 {
                    let mut len = 0u64;
                    let mut first = true;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first {
                            first = false;
                        } else if line.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    std::io::copy(&mut r.by_ref().take(len), &mut std::io::sink()).unwrap();
                    r3.fetch_add(1, Ordering::SeqCst);
                    let body = br#"{"url":"https://mmg.whatsapp.net/d/x","direct_path":"/d/x"}"#;
                    write!(
                        w,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    w.write_all(body).unwrap();
                }
            });
        }
    });
    (host, conns, requests)
}

#[tokio::test]
async fn transfers_reuse_the_clients_connections() {
    let (host, conns, requests) = keep_alive_server();
    let c = client();
    let conn = MediaConn::new(
        "reuse-auth",
        vec![host],
        Duration::from_secs(300),
        Instant::now(),
    );
    for i in 0..3 {
        c.upload_bytes(
            data(1000 + i),
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(conn.clone()),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one connection for three uploads"
    );
}

#[tokio::test]
async fn a_history_blob_is_deleted_once_and_then_gone() {
    let cdn = FakeCdn::start().unwrap();
    let r = client()
        .upload_bytes(
            &b"history sync blob"[..],
            &UploadJob::new(MediaType::History),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let spec = DeleteSpec {
        direct_path: r.direct_path.clone(),
        file_enc_sha256: r.file_enc_sha256.unwrap(),
        handle: None,
        companion_secret: None,
    };
    // A stale auth is renewed once, then the blob goes.
    let stale = cdn.media_conn(Instant::now());
    cdn.set_auth("rotated");
    let fresh = cdn.media_conn(Instant::now());
    let mut provider =
        move |force: bool, _: Instant| Ok(if force { fresh.clone() } else { stale.clone() });
    let d = client()
        .delete(spec.clone(), &mut provider, &mut Transfer::new())
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    assert!(cdn.stored(&b64::url(&r.file_enc_sha256.unwrap())).is_none());
    let err = client()
        .delete(
            spec,
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Delete(DeleteError::Status { status: 404, .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn bodies_around_the_chunk_size_arrive_whole() {
    // Upload bodies are made 32 KiB at a time, the last chunk with the one before it:
    // bodies just under, at and over one and two chunks.
    let cdn = FakeCdn::start().unwrap();
    let c = client();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    for len in [
        32_741, 32_742, 32_758, 65_509, 65_510, 65_526, 65_536, 98_278, 98_294,
    ] {
        let plain = data(len);
        let (body, _) =
            encrypt(MediaKey::from_bytes([5; 32]), &MediaType::Document, &plain).unwrap();
        let r = c
            .upload_bytes(
                plain.clone(),
                &UploadJob::new(MediaType::Document).with_media_key(MediaKey::from_bytes([5; 32])),
                &mut conn,
                &mut Transfer::new(),
            )
            .await
            .unwrap();
        let stored = cdn
            .stored(&b64::url_nopad(&r.file_enc_sha256.unwrap()))
            .unwrap();
        assert!(stored == body, "{len}: body of {} bytes", body.len());
    }
}
