//! wamedia-surf against the conformance crate's fake CDN on 127.0.0.1.

use std::time::{Duration, Instant};

use wamedia::*;
use wamedia_conformance::{FakeCdn, Fault, On};
use wamedia_driver::Error;
use wamedia_surf::{Client, ClientOptions, Transfer};

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

#[async_std::test]
async fn round_trips_several_types_and_sizes() {
    let cdn = FakeCdn::start().unwrap();
    let c = client();
    for (t, len) in [
        (MediaType::Image, 0),
        (MediaType::Gif, 1),
        (MediaType::Audio, 1 << 20),
        (MediaType::Document, 20 << 20),
    ] {
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
        let mut out = Vec::new();
        let mut w = futures_lite::io::Cursor::new(&mut out);
        c.download(r.download_spec(), &mut conn, &mut w, &mut Transfer::new())
            .await
            .unwrap();
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

#[async_std::test]
async fn falls_back_renews_auth_and_resumes() {
    let cdn = FakeCdn::start().unwrap();
    // Host fallback: a 503 on the first host.
    let mut conn = cdn.media_conn(Instant::now());
    conn.hosts.push(cdn.host().into());
    cdn.push_fault(On::Upload, Fault::Status(503, None));
    let r = client()
        .upload_bytes(
            data(10),
            &UploadJob::new(MediaType::Image),
            &mut StaticConn(conn),
            &mut Transfer::new(),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    // Stale auth: 401, forced renewal, success.
    let stale = cdn.media_conn(Instant::now());
    cdn.set_auth("rotated");
    let fresh = cdn.media_conn(Instant::now());
    let mut provider =
        move |force: bool, _: Instant| Ok(if force { fresh.clone() } else { stale.clone() });
    let r = client()
        .upload_bytes(
            data(20),
            &UploadJob::new(MediaType::Image),
            &mut provider,
            &mut Transfer::new(),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    // A large upload cut mid-body resumes from where the CDN stopped.
    cdn.push_fault(On::Upload, Fault::DropUploadAfter(2 << 20));
    let r = client()
        .upload_bytes(
            data(6 << 20),
            &UploadJob::new(MediaType::Video),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    let last = cdn.seen().last().unwrap().clone();
    assert!(
        last.target
            .contains(&format!("bytestart={}&byteend=", 2 << 20)),
        "{}",
        last.target
    );
}

#[async_std::test]
async fn a_tampered_download_fails_and_leaves_no_file() {
    let cdn = FakeCdn::start().unwrap();
    let mut conn = StaticConn(cdn.media_conn(Instant::now()));
    let r = client()
        .upload_bytes(
            data(70_000),
            &UploadJob::new(MediaType::Video),
            &mut conn,
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    cdn.push_fault(On::Download, Fault::Tamper);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.mp4");
    let mut spec = r.download_spec();
    spec.expected.file_enc_sha256 = None;
    let err = client()
        .download_to_path(spec.clone(), &mut conn, &out, &mut Transfer::new())
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
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A cut download resumes with Range and lands at the path.
    cdn.push_fault(On::Download, Fault::CutDownload(30_001));
    client()
        .download_to_path(spec, &mut conn, &out, &mut Transfer::new())
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == data(70_000));
}

#[async_std::test]
async fn fifty_concurrent_uploads() {
    let cdn = FakeCdn::start().unwrap();
    let c = client();
    let conn = cdn.media_conn(Instant::now());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            let conn = conn.clone();
            async_std::task::spawn(async move {
                let plain = data(10_000 + i * 997);
                c.upload_bytes(
                    plain,
                    &UploadJob::new(MediaType::Image),
                    &mut StaticConn(conn),
                    &mut Transfer::new(),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        t.await.unwrap();
        ok += 1;
    }
    assert_eq!(ok, 50);
    assert_eq!(cdn.object_count(), 50);
}

#[async_std::test]
async fn an_interrupted_download_resumes_from_its_partial_file() {
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
    let out = dir.path().join("clip.mp4");
    let partial = dir.path().join(".clip.mp4.wamedia-partial");
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let mut t = Transfer::new()
        .with_cancel(cancel)
        .on_progress(move |d, _| {
            if d > 1 << 20 {
                c2.cancel()
            }
        });
    let err = client()
        .download_to_path(
            r.download_spec(),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &out,
            &mut t,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(!out.exists() && std::fs::metadata(&partial).unwrap().len() > 0);
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
    assert!(cdn.seen()[before].headers.iter().any(|(k, _)| k == "range"));
}

#[async_std::test]
async fn a_history_blob_is_deleted() {
    let cdn = FakeCdn::start().unwrap();
    let r = client()
        .upload_bytes(
            b"history sync blob".to_vec(),
            &UploadJob::new(MediaType::History),
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    let spec = DeleteSpec {
        direct_path: r.direct_path.clone(),
        file_enc_sha256: r.file_enc_sha256.unwrap(),
        handle: Some("h".into()),
        companion_secret: Some("companion".into()),
    };
    let d = client()
        .delete(
            spec,
            &mut StaticConn(cdn.media_conn(Instant::now())),
            &mut Transfer::new(),
        )
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    let seen = cdn.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.method, "DELETE");
    assert!(last
        .headers
        .iter()
        .any(|(k, v)| k == "companion_user_secret" && v == "companion"));
}
