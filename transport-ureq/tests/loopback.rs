//! wamedia-ureq against the conformance crate's fake CDN on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wamedia::*;
use wamedia_conformance::{FakeCdn, Fault, On};
use wamedia_driver::Error;
use wamedia_ureq::{Client, ClientOptions, Transfer};

fn client() -> Client {
    let mut o = ClientOptions::default();
    o.upload.retry.backoff_base = Duration::from_millis(10);
    o.download.retry.backoff_base = Duration::from_millis(10);
    Client::new(o)
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
fn round_trips_several_types_and_sizes() {
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
                &plain,
                &UploadJob::new(t.clone()),
                &mut conn,
                &mut Transfer::new(),
            )
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

#[test]
fn uploads_a_file_with_progress_and_flat_memory_path() {
    let cdn = FakeCdn::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    let plain = data(3 << 20);
    std::fs::write(&path, &plain).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let mut t = Transfer::new().on_progress(move |d, total| s2.lock().unwrap().push((d, total)));
    let r = wamedia_ureq::upload_file(
        &client(),
        &path,
        &UploadJob::new(MediaType::Video),
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &mut t,
    )
    .unwrap();
    let seen = seen.lock().unwrap();
    let body_len = encrypt::body_len(plain.len() as u64);
    assert_eq!(seen.last(), Some(&(body_len, Some(body_len))));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    // Download to a path: verified then renamed.
    let out = dir.path().join("back.mp4");
    client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == plain);
}

#[test]
fn non_seekable_sources_are_spooled() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(100_000);
    // A small spool limit forces the temporary file.
    let o = ClientOptions {
        spool_in_memory: 1000,
        ..ClientOptions::default()
    };
    let r = Client::new(o)
        .upload_stream(
            std::io::Cursor::new(plain.clone()).chain(&b""[..]),
            &UploadJob::new(MediaType::Audio),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .unwrap();
    assert_eq!(r.file_length, 100_000);
}

use std::io::Read as _;

#[test]
fn falls_back_to_the_next_host() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = cdn.media_conn(Instant::now());
    conn.hosts.insert(0, dead_host().into());
    let r = client()
        .upload_bytes(
            b"fallback",
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(conn.clone()),
            &mut Transfer::new(),
        )
        .unwrap();
    assert_eq!(r.host, cdn.host());
    cdn.push_fault(On::Upload, Fault::Status(503, None));
    let r = client().upload_bytes(
        b"fallback 2",
        &UploadJob::new(MediaType::Image),
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &mut Transfer::new(),
    );
    // One host, one 503: the next round succeeds.
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn renews_stale_auth_once() {
    let cdn = FakeCdn::start().unwrap();
    let stale = cdn.media_conn(Instant::now());
    cdn.set_auth("fresh-token");
    let mut asks = Vec::new();
    let fresh = cdn.media_conn(Instant::now());
    let mut provider = |force: bool, _now: Instant| {
        asks.push(force);
        Ok(if force { fresh.clone() } else { stale.clone() })
    };
    let r = client().upload_bytes(
        b"auth",
        &UploadJob::new(MediaType::Document),
        &mut provider,
        &mut Transfer::new(),
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(asks, [false, true]);
    let statuses: Vec<u16> = cdn.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [401, 200]);
    assert!(
        cdn.seen().iter().all(|s| !s.target.contains("fresh-token")),
        "tokens are redacted in the log"
    );
}

#[test]
fn resumes_a_partly_stored_upload() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(6 << 20);
    let key = MediaKey::from_bytes([1; 32]);
    let (body, media) = encrypt(key.clone(), &MediaType::Video, &plain).unwrap();
    let token = b64::url(&media.file_enc_sha256);
    cdn.put_partial(&token, &body[..4 << 20]);
    let r = client()
        .upload_bytes(
            &plain,
            &UploadJob::new(MediaType::Video).with_media_key(key),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
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

#[test]
fn a_dropped_large_upload_resumes_where_the_cdn_stopped() {
    let cdn = FakeCdn::start().unwrap();
    cdn.push_fault(On::Upload, Fault::DropUploadAfter(3 << 20));
    let plain = data(6 << 20);
    let r = client().upload_bytes(
        &plain,
        &UploadJob::new(MediaType::Video),
        &mut StaticConn(cdn.media_conn(Instant::now())),
        &mut Transfer::new(),
    );
    assert!(r.is_ok(), "{r:?}");
    let seen = cdn.seen();
    let targets: Vec<_> = seen
        .iter()
        .map(|s| (s.target.contains("resume=1"), s.body_len))
        .collect();
    // A fresh key: no probe first. Body cut after 3 MiB, a probe on the same host, the
    // rest from 3 MiB with bytestart/byteend.
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert!(!seen[0].target.contains("resume=1"));
    assert!(seen[1].target.contains("resume=1"));
    let len = wamedia::encrypt(MediaKey::from_bytes([0; 32]), &MediaType::Video, &plain)
        .unwrap()
        .0
        .len();
    assert!(
        seen[2]
            .target
            .contains(&format!("bytestart={}&byteend={len}", 3 << 20)),
        "{}",
        seen[2].target
    );
    assert_eq!(seen[2].body_len, (len - (3 << 20)) as u64);
}

#[test]
fn a_tampered_download_fails_and_leaves_no_file() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let r = client()
        .upload_bytes(
            &data(5000),
            &UploadJob::new(MediaType::Image),
            &mut conn,
            &mut Transfer::new(),
        )
        .unwrap();
    cdn.push_fault(On::Download, Fault::Tamper);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("img.jpg");
    let mut spec = r.download_spec();
    spec.expected.file_enc_sha256 = None;
    let err = client()
        .download_to_path(spec, &mut conn, &out, &mut Transfer::new())
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

#[test]
fn a_cut_download_resumes_with_range() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let plain = data(300_000);
    let r = client()
        .upload_bytes(
            &plain,
            &UploadJob::new(MediaType::Document),
            &mut conn,
            &mut Transfer::new(),
        )
        .unwrap();
    cdn.push_fault(On::Download, Fault::CutDownload(100_005));
    let mut out = Vec::new();
    client()
        .download(r.download_spec(), &mut conn, &mut out, &mut Transfer::new())
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

#[test]
fn cancellation_stops_a_transfer() {
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
            &data(8 << 20),
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut t,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}

#[test]
fn media_gone_everywhere() {
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
        .unwrap_err();
    assert!(
        matches!(err, Error::Download(DownloadError::MediaGone { .. })),
        "{err:?}"
    );
}

fn partial_of(out: &std::path::Path) -> std::path::PathBuf {
    out.with_file_name(format!(
        ".{}.wamedia-partial",
        out.file_name().unwrap().to_string_lossy()
    ))
}

/// Runs `download_to_path`, cancelling once more than `stop_after` bytes arrived.
fn download_cancelled(
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
        .unwrap_err()
}

#[test]
fn an_interrupted_download_resumes_from_its_partial_file_verified_whole() {
    let cdn = FakeCdn::start().unwrap();
    let plain = data(3 << 20);
    let r = client()
        .upload_bytes(
            &plain,
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("movie.mp4");
    let partial = partial_of(&out);
    let err = download_cancelled(&cdn, r.download_spec(), &out, 1 << 20);
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
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == plain);
    assert!(!partial.exists());
    let first = &cdn.seen()[before];
    let range = first.headers.iter().find(|(k, _)| k == "range");
    assert!(range.is_some_and(|(_, v)| v != "bytes=0-"), "{first:?}");

    // A partial whose bytes were changed fails verification (over 1 MiB, so a sidecar
    // window fails while the partial is still being fed): removed, nothing published.
    std::fs::remove_file(&out).unwrap();
    download_cancelled(&cdn, r.download_spec(), &out, 2 << 20);
    assert!(std::fs::metadata(&partial).unwrap().len() > 1 << 20);
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
        .unwrap_err();
    assert!(
        matches!(&err, Error::Download(d) if d.is_integrity()),
        "{err:?}"
    );
    assert!(!out.exists() && !partial.exists());

    // A stale partial of another download to the same target is replaced, not resumed.
    download_cancelled(&cdn, r.download_spec(), &out, 1 << 20);
    let other = client()
        .upload_bytes(
            b"another picture",
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .unwrap();
    client()
        .download_to_path(
            other.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut Transfer::new(),
        )
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"another picture");
    assert!(!partial.exists());
}

#[test]
fn a_history_blob_is_deleted_once_and_then_gone() {
    let cdn = FakeCdn::start().unwrap();
    let r = client()
        .upload_bytes(
            b"history sync blob",
            &UploadJob::new(MediaType::History),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
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
        .unwrap();
    assert_eq!(d.status, 200);
    assert!(cdn.stored(&b64::url(&r.file_enc_sha256.unwrap())).is_none());
    let err = client()
        .delete(
            spec,
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Delete(DeleteError::Status { status: 404, .. })),
        "{err:?}"
    );
}
