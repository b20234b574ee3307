//! Scenarios against the fake CDN and its fault script: what a CDN does on a bad day.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wamedia::{
    b64, encrypt, DeleteError, DeleteSpec, DownloadError, DownloadSpec, Expected, IntegrityError,
    MediaConn, MediaKey, MediaType, Source, UploadResult,
};
use wamedia_driver::{Cancel, Client, Error, ErrorKind, Http, Runtime, UploadData};
use wamedia_fake_cdn::{FakeCdn, Fault, On};

use super::{data, dead_host, join_all, ok, until, Check, Ctx, Executor, Scenario};

pub(super) fn table<H: Http, R: Runtime + Default, E: Executor>() -> Vec<Scenario<H, R, E>> {
    vec![
        Scenario {
            name: "the client is shared between threads and its futures are Send",
            run: futures_are_send,
        },
        Scenario {
            name: "round trips of several types and sizes, no content coding asked for",
            run: round_trips,
        },
        Scenario {
            name: "a file uploads with progress and downloads to a path with progress",
            run: file_with_progress,
        },
        Scenario {
            name: "a source that cannot seek is spooled (to a file past the limit)",
            run: spooled,
        },
        Scenario {
            name: "a refused host and a 503 fall back to the next host or round",
            run: falls_back,
        },
        Scenario {
            name: "a dropped connection is retried, upload and download",
            run: dropped_connection,
        },
        Scenario {
            name: "401: the source is asked again with force = true, once",
            run: renews_stale_auth_once,
        },
        Scenario {
            name: "a partly stored upload resumes from the CDN's offset",
            run: resumes_partly_stored_upload,
        },
        Scenario {
            name: "an upload cut mid-body resumes on the same host where the CDN stopped",
            run: cut_upload_resumes,
        },
        Scenario {
            name: "a tampered download fails as corrupt media and leaves no file",
            run: tampered_download,
        },
        Scenario {
            name: "a download cut mid-body resumes with Range, to memory and to a path",
            run: cut_download_resumes_with_range,
        },
        Scenario {
            name: "a Cancel token stops an upload mid-body",
            run: cancel_token,
        },
        Scenario {
            name: "a cancellation is noticed while the CDN is silent",
            run: cancel_while_silent,
        },
        Scenario {
            name: "a dropped future cancels; the client goes on and the partial file resumes",
            run: dropped_future,
        },
        Scenario {
            name: "a silent answer is cut at the idle timeout and retried",
            run: silent_answer_retried,
        },
        Scenario {
            name: "a slow answer within the idle timeout is waited for",
            run: slow_answer_waited_for,
        },
        Scenario {
            name: "a CDN silent on every attempt is a network fault, not corrupt media",
            run: silent_cdn_is_network_fault,
        },
        Scenario {
            name: "media gone everywhere is MediaGone",
            run: media_gone,
        },
        Scenario {
            name: "no User-Agent unless one is set",
            run: user_agent,
        },
        Scenario {
            name: "an interrupted download to a path resumes from its partial file, verified whole",
            run: partial_file_resumes,
        },
        Scenario {
            name: "a tampered partial of several MiB fails as corrupt media without a request",
            run: tampered_long_partial,
        },
        Scenario {
            name: "fifty transfers at once from one client",
            run: fifty_at_once,
        },
        Scenario {
            name: "a history blob is deleted once (after a renewal), then gone",
            run: delete_once,
        },
        Scenario {
            name: "upload bodies around the chunk size arrive whole",
            run: chunk_boundaries,
        },
        Scenario {
            name: "a ranged download fetches only its windows, verified by the sidecar",
            run: ranged_download,
        },
    ]
}

fn start() -> Result<FakeCdn, String> {
    ok(FakeCdn::start(), "start the fake CDN")
}

fn conn(cdn: &FakeCdn) -> MediaConn {
    cdn.media_conn(Instant::now())
}

fn statuses(cdn: &FakeCdn) -> Vec<u16> {
    cdn.seen().iter().map(|s| s.status).collect()
}

/// The `Range` header of each GET from the `from`-th request seen on.
fn ranges(cdn: &FakeCdn, from: usize) -> Vec<Option<String>> {
    cdn.seen()
        .iter()
        .skip(from)
        .filter(|s| s.method == "GET")
        .map(|s| {
            s.headers
                .iter()
                .find(|(k, _)| k == "range")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

fn tempdir() -> Result<tempfile::TempDir, String> {
    ok(tempfile::tempdir(), "a temporary folder")
}

fn partial_of(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.wamedia-partial"))
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Uploads `data` as `t` through `c`.
fn up<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
    c: &Client<H, R>,
    data: impl Into<UploadData>,
    t: MediaType,
) -> Result<UploadResult, String> {
    ok(cx.block_on(c.upload(data, t).send()), "upload")
}

/// Downloads `spec` through `c`; the plaintext must be `want`.
fn down_eq<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
    c: &Client<H, R>,
    spec: DownloadSpec,
    want: &[u8],
) -> Check {
    let (out, _) = ok(cx.block_on(c.download(spec).to_vec()), "download")?;
    ensure!(out == want, "the plaintext came back different");
    Ok(())
}

fn futures_are_send<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    fn shareable<T: Clone + Send + Sync + 'static>(_: &T) {}
    fn sendable<F: std::future::Future + Send>(_: &F) {}
    let c = cx.client(MediaConn::new(
        "a",
        vec![dead_host()],
        Duration::from_secs(1),
        Instant::now(),
    ));
    shareable(&c);
    let spec = crate::hostile::sample_download();
    sendable(&c.upload(b"x".to_vec(), MediaType::Image).send());
    sendable(
        &c.upload(UploadData::reader(std::io::empty()), MediaType::Image)
            .send(),
    );
    sendable(&c.download(spec.clone()).to_vec());
    sendable(&c.download(spec).to_path(Path::new("x")));
    Ok(())
}

fn round_trips<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let cases = [
        (MediaType::Image, 0),
        (MediaType::Sticker, 1),
        (MediaType::Gif, 1),
        (MediaType::Ptt, 1 << 20),
        (MediaType::Document, 20 << 20),
        (MediaType::History, 33),
    ];
    for (t, len) in cases {
        let plain = data(len);
        let r = ok(
            cx.block_on(c.upload(plain.clone(), t.clone()).send()),
            "upload",
        )?;
        ensure!(r.file_length == len as u64, "{t} {len}: {}", r.file_length);
        let stored = r
            .file_enc_sha256
            .and_then(|h| cdn.stored(&b64::url_nopad(&h)))
            .map(|b| b.len() as u64);
        ensure!(
            stored == Some(wamedia::body_len(len as u64)),
            "{t} {len}: stored {stored:?}"
        );
        let (out, d) = ok(
            cx.block_on(c.download(r.download_spec()).to_vec()),
            "download",
        )?;
        ensure!(d.verified.file_length == len as u64, "{t} {len}: length");
        ensure!(out == plain, "{t} {len}: the plaintext came back different");
    }
    // Bodies are encrypted: a content coding would let a hostile CDN inflate one without
    // bound.
    let seen = cdn.seen();
    ensure!(
        seen.iter().all(|s| !s.asks_for_content_coding()),
        "a content coding was asked for: {seen:?}"
    );
    Ok(())
}

fn file_with_progress<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let dir = tempdir()?;
    let path = dir.path().join("video.mp4");
    let plain = data(3 << 20);
    ok(std::fs::write(&path, &plain), "write the source")?;
    let c = cx.client(conn(&cdn));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let call = c
        .upload(path.as_path(), MediaType::Video)
        .progress(move |d, total| {
            s2.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((d, total))
        });
    let r = ok(cx.block_on(call.send()), "upload")?;
    let body_len = wamedia::body_len(plain.len() as u64);
    {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        ensure!(
            seen.last() == Some(&(body_len, Some(body_len))),
            "last progress {:?}",
            seen.last()
        );
        ensure!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        ensure!(seen.len() > 2, "progress while the body moves: {seen:?}");
    }
    let out = dir.path().join("back.mp4");
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    let call = c
        .download(r.download_spec())
        .progress(move |d, _| g2.lock().unwrap_or_else(|e| e.into_inner()).push(d));
    ok(cx.block_on(call.to_path(&out)), "download")?;
    ensure!(std::fs::read(&out).ok() == Some(plain), "the file differs");
    let last = got
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last()
        .copied();
    ensure!(last == Some(body_len), "last progress {last:?}");
    ensure!(files_in(dir.path()) == 2, "a partial file was left");
    Ok(())
}

fn spooled<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let plain = data(100_000);
    // A small spool limit forces the temporary file.
    let c = cx.client_with(conn(&cdn), |o| o.spool_in_memory = 1000);
    let pipe = std::io::Cursor::new(plain.clone()).chain(&b""[..]);
    let r = up(cx, &c, UploadData::reader(pipe), MediaType::Audio)?;
    ensure!(r.file_length == 100_000, "{}", r.file_length);
    down_eq(cx, &c, r.download_spec(), &plain)?;
    Ok(())
}

fn falls_back<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let mut first_dead = conn(&cdn);
    first_dead.hosts.insert(0, dead_host().into());
    let c = cx.client(first_dead);
    let r = ok(
        cx.block_on(c.upload(b"fallback".to_vec(), MediaType::Image).send()),
        "upload past a refused host",
    )?;
    ensure!(r.host == cdn.host(), "answered by {}", r.host);
    // One host, one 503: the next round succeeds.
    cdn.push_fault(On::Upload, Fault::Status(503, None));
    let c = cx.client(conn(&cdn));
    ok(
        cx.block_on(c.upload(b"fallback 2".to_vec(), MediaType::Image).send()),
        "upload after a 503",
    )?;
    Ok(())
}

fn dropped_connection<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    cdn.push_fault(On::Upload, Fault::Drop);
    let r = up(cx, &c, data(5000), MediaType::Image)?;
    ensure!(statuses(&cdn) == [0, 200], "{:?}", statuses(&cdn));
    cdn.push_fault(On::Download, Fault::Drop);
    down_eq(cx, &c, r.download_spec(), &data(5000))?;
    Ok(())
}

fn renews_stale_auth_once<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let stale = conn(&cdn);
    cdn.set_auth("fresh-token");
    let fresh = conn(&cdn);
    let asks = Arc::new(Mutex::new(Vec::new()));
    let a2 = asks.clone();
    let source = move |force: bool| {
        a2.lock().unwrap_or_else(|e| e.into_inner()).push(force);
        let c = if force { fresh.clone() } else { stale.clone() };
        std::future::ready(Ok::<_, String>(c))
    };
    let c = cx.client(source);
    up(cx, &c, b"auth".to_vec(), MediaType::Document)?;
    let asks = asks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure!(asks == [false, true], "the source was asked {asks:?}");
    ensure!(statuses(&cdn) == [401, 200], "{:?}", statuses(&cdn));
    ensure!(
        cdn.seen().iter().all(|s| !s.target.contains("fresh-token")),
        "tokens are redacted in the log"
    );
    Ok(())
}

fn resumes_partly_stored_upload<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let plain = data(6 << 20);
    let key = MediaKey::from_bytes([1; 32]);
    let (body, media) = ok(encrypt(key.clone(), &MediaType::Video, &plain), "encrypt")?;
    let token = b64::url(&media.file_enc_sha256);
    cdn.put_partial(&token, &body[..4 << 20]);
    let c = cx.client(conn(&cdn));
    let r = ok(
        cx.block_on(c.upload(plain, MediaType::Video).media_key(key).send()),
        "upload",
    )?;
    ensure!(
        r.file_enc_sha256 == Some(media.file_enc_sha256),
        "another body"
    );
    let seen = cdn.seen();
    ensure!(seen.len() == 2, "{seen:?}");
    ensure!(seen[0].target.contains("resume=1"), "{}", seen[0].target);
    let rest = format!("bytestart={}&byteend={}", 4 << 20, body.len());
    ensure!(seen[1].target.contains(&rest), "{}", seen[1].target);
    ensure!(
        seen[1].body_len == body.len() as u64 - (4 << 20),
        "{}",
        seen[1].body_len
    );
    ensure!(cdn.stored(&token) == Some(body), "the stored body differs");
    Ok(())
}

fn cut_upload_resumes<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    cdn.push_fault(On::Upload, Fault::DropUploadAfter(3 << 20));
    let plain = data(6 << 20);
    let c = cx.client(conn(&cdn));
    up(cx, &c, plain.clone(), MediaType::Video)?;
    // A fresh key: no probe first. The body cut after 3 MiB (the machine was told what
    // moved), a probe on the same host, the rest from 3 MiB.
    let seen = cdn.seen();
    ensure!(seen.len() == 3, "{seen:?}");
    ensure!(!seen[0].target.contains("resume=1"), "{}", seen[0].target);
    ensure!(seen[1].target.contains("resume=1"), "{}", seen[1].target);
    let len = wamedia::body_len(plain.len() as u64);
    let rest = format!("bytestart={}&byteend={len}", 3 << 20);
    ensure!(seen[2].target.contains(&rest), "{}", seen[2].target);
    ensure!(seen[2].body_len == len - (3 << 20), "{}", seen[2].body_len);
    Ok(())
}

fn tampered_download<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let r = up(cx, &c, data(5000), MediaType::Image)?;
    cdn.push_fault(On::Download, Fault::Tamper);
    let dir = tempdir()?;
    let out = dir.path().join("img.jpg");
    let mut spec = r.download_spec();
    spec.expected.file_enc_sha256 = None;
    let err = cx.block_on(c.download(spec).to_path(&out));
    ensure!(
        matches!(
            err,
            Err(Error::Download(DownloadError::Integrity(
                IntegrityError::MacMismatch
            )))
        ),
        "{err:?}"
    );
    ensure!(
        err.as_ref().err().map(Error::kind) == Some(ErrorKind::Media),
        "kind {:?}",
        err.as_ref().err().map(Error::kind)
    );
    ensure!(!out.exists(), "published");
    ensure!(
        files_in(dir.path()) == 0,
        "a temporary file was left behind"
    );
    Ok(())
}

fn cut_download_resumes_with_range<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let plain = data(300_000);
    let r = up(cx, &c, plain.clone(), MediaType::Document)?;
    let before = cdn.seen().len();
    cdn.push_fault(On::Download, Fault::CutDownload(100_005));
    down_eq(cx, &c, r.download_spec(), &plain)?;
    let got = ranges(&cdn, before);
    ensure!(got == [None, Some("bytes=100000-".into())], "{got:?}");
    // The same to a path.
    let dir = tempdir()?;
    let path = dir.path().join("doc.pdf");
    cdn.push_fault(On::Download, Fault::CutDownload(30_001));
    ok(
        cx.block_on(c.download(r.download_spec()).to_path(&path)),
        "to a path",
    )?;
    ensure!(std::fs::read(&path).ok() == Some(plain), "the file differs");
    Ok(())
}

fn cancel_token<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let c = cx.client(conn(&cdn));
    let call = c
        .upload(data(8 << 20), MediaType::Video)
        .cancel(cancel)
        .progress(move |done, _| {
            if done > 1 << 20 {
                c2.cancel();
            }
        });
    let r = cx.block_on(call.send());
    ensure!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    ensure!(
        r.as_ref().err().map(Error::kind) == Some(ErrorKind::Cancelled),
        "kind"
    );
    Ok(())
}

fn cancel_while_silent<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    // Answers would come after 20 s: only the cancellation ends this early. Several, in
    // case a loaded machine lets an idle timeout pass before the cancel.
    for _ in 0..5 {
        cdn.push_fault(On::Upload, Fault::Delay(Duration::from_secs(20)));
    }
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c2.cancel();
    });
    // A blocking adapter notices it when its read times out: keep that short.
    let c = cx.client_with(conn(&cdn), |o| o.idle_timeout = Duration::from_secs(2));
    let r = cx.block_on(c.upload(data(1000), MediaType::Image).cancel(cancel).send());
    let _ = canceller.join();
    ensure!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    Ok(())
}

fn dropped_future<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let call = c
        .upload(data(8 << 20), MediaType::Video)
        .progress(move |done, _| {
            if done > 1 << 20 {
                s2.store(true, Ordering::SeqCst);
            }
        });
    match cx.block_on(until(call.send(), &stop)) {
        None => {}
        // A blocking call cannot be dropped half-way (Limits::blocking).
        Some(r) if cx.limits().blocking => drop(ok(r, "upload")?),
        Some(r) => return Err(format!("the upload was not dropped: {r:?}")),
    }
    ok(
        cx.block_on(c.upload(data(1000), MediaType::Image).send()),
        "an upload after a dropped one",
    )?;

    let plain = data(3 << 20);
    let r = up(cx, &c, plain.clone(), MediaType::Video)?;
    let dir = tempdir()?;
    let out = dir.path().join("clip.mp4");
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let call = c.download(r.download_spec()).progress(move |done, _| {
        if done > 2 << 20 {
            s2.store(true, Ordering::SeqCst);
        }
    });
    match cx.block_on(until(call.to_path(&out), &stop)) {
        None => ensure!(!out.exists(), "an unverified file was published"),
        Some(r) if cx.limits().blocking => drop(ok(r, "download")?),
        Some(r) => return Err(format!("the download was not dropped: {r:?}")),
    }
    ok(
        cx.block_on(c.download(r.download_spec()).to_path(&out)),
        "the next run",
    )?;
    ensure!(std::fs::read(&out).ok() == Some(plain), "the file differs");
    ensure!(!partial_of(&out).exists(), "the partial file stayed");
    Ok(())
}

fn silent_answer_retried<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let c = cx.client_with(conn(&cdn), |o| o.idle_timeout = Duration::from_millis(500));
    // Slower than the idle timeout: the first attempt is cut, the retry succeeds.
    cdn.push_fault(On::Upload, Fault::Delay(Duration::from_secs(5)));
    let r = up(cx, &c, data(70_000), MediaType::Image)?;
    cdn.push_fault(On::Download, Fault::Delay(Duration::from_secs(5)));
    down_eq(cx, &c, r.download_spec(), &data(70_000))?;
    Ok(())
}

fn slow_answer_waited_for<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let c = cx.client_with(conn(&cdn), |o| o.idle_timeout = Duration::from_secs(20));
    cdn.push_fault(On::Upload, Fault::Delay(Duration::from_millis(300)));
    up(cx, &c, data(70_000), MediaType::Image)?;
    ensure!(
        statuses(&cdn) == [200],
        "one request, waited for: {:?}",
        statuses(&cdn)
    );
    Ok(())
}

fn silent_cdn_is_network_fault<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let r = ok(
        cx.block_on(
            cx.client(conn(&cdn))
                .upload(data(2000), MediaType::Image)
                .send(),
        ),
        "upload",
    )?;
    let c = cx.client_with(conn(&cdn), |o| {
        o.idle_timeout = Duration::from_millis(100);
        o.download.retry.max_rounds = 1;
    });
    for _ in 0..4 {
        cdn.push_fault(On::Download, Fault::Delay(Duration::from_secs(2)));
    }
    let err = cx.block_on(c.download(r.download_spec()).to_vec());
    match &err {
        Err(e @ Error::Download(DownloadError::AllHostsFailed { .. })) => {
            let text = e.to_string().to_lowercase();
            ensure!(text.contains("time"), "{e}");
            ensure!(e.kind() == ErrorKind::Network && e.is_retryable(), "{e:?}");
            Ok(())
        }
        other => Err(format!("{other:?}")),
    }
}

fn media_gone<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let spec = DownloadSpec {
        media_type: MediaType::Image,
        media_key: Some(MediaKey::from_bytes([0; 32])),
        source: Source::DirectPath("/v/t62/nothing.enc?ccb=1".into()),
        expected: Expected::default(),
        streaming_sidecar: None,
    };
    let err = cx.block_on(cx.client(conn(&cdn)).download(spec).to_vec());
    match &err {
        Err(e @ Error::Download(DownloadError::MediaGone { .. })) => {
            ensure!(e.kind() == ErrorKind::Expired, "{:?}", e.kind());
            Ok(())
        }
        other => Err(format!("{other:?}")),
    }
}

fn user_agent<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let ua = |c: &FakeCdn| {
        c.seen().last().and_then(|s| {
            s.headers
                .iter()
                .find(|(k, _)| k == "user-agent")
                .map(|(_, v)| v.clone())
        })
    };
    let r = ok(
        cx.block_on(
            cx.client(conn(&cdn))
                .upload(b"no name".to_vec(), MediaType::Image)
                .send(),
        ),
        "upload",
    )?;
    ensure!(ua(&cdn).is_none(), "{:?}", ua(&cdn));
    let named = cx.client_with(conn(&cdn), |o| o.user_agent = Some("Example/1.0".into()));
    ok(
        cx.block_on(named.download(r.download_spec()).to_vec()),
        "download",
    )?;
    ensure!(ua(&cdn).as_deref() == Some("Example/1.0"), "{:?}", ua(&cdn));
    Ok(())
}

/// Downloads to `out`, cancelled once more than `stop_after` bytes arrived.
fn download_cancelled<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
    cdn: &FakeCdn,
    spec: DownloadSpec,
    out: &Path,
    stop_after: u64,
) -> Result<Error, String> {
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let c = cx.client(conn(cdn));
    let call = c.download(spec).cancel(cancel).progress(move |d, _| {
        if d > stop_after {
            c2.cancel();
        }
    });
    match cx.block_on(call.to_path(out)) {
        Ok(r) => Err(format!("not cancelled: {r:?}")),
        Err(e) => Ok(e),
    }
}

fn partial_file_resumes<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let plain = data(3 << 20);
    let r = up(cx, &c, plain.clone(), MediaType::Video)?;
    let dir = tempdir()?;
    let out = dir.path().join("movie.mp4");
    let partial = partial_of(&out);
    let err = download_cancelled(cx, &cdn, r.download_spec(), &out, 1 << 20)?;
    ensure!(matches!(err, Error::Cancelled), "{err:?}");
    ensure!(!out.exists(), "something unverified at the target");
    let kept = std::fs::metadata(&partial).map_or(0, |m| m.len());
    ensure!(kept > 0, "the partial file stays for the next run");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&partial).map_or(0, |m| m.permissions().mode() & 0o777);
        ensure!(mode == 0o600, "partial file mode {mode:o}");
    }
    // The next run asks only for the rest, and verifies the whole body.
    let before = cdn.seen().len();
    ok(
        cx.block_on(c.download(r.download_spec()).to_path(&out)),
        "resume",
    )?;
    ensure!(std::fs::read(&out).ok() == Some(plain), "the file differs");
    ensure!(!partial.exists(), "the partial file stayed");
    let first = ranges(&cdn, before);
    ensure!(
        first
            .first()
            .is_some_and(|r| r.as_deref().is_some_and(|v| v != "bytes=0-")),
        "{first:?}"
    );

    // A partial whose bytes were changed fails verification (over 1 MiB, so a sidecar
    // window fails while the partial is still being fed): removed, nothing published.
    ok(std::fs::remove_file(&out), "remove")?;
    download_cancelled(cx, &cdn, r.download_spec(), &out, 2 << 20)?;
    let mut bytes = ok(std::fs::read(&partial), "read the partial")?;
    ensure!(bytes.len() > 1 << 20, "{}", bytes.len());
    bytes[100] ^= 1;
    ok(std::fs::write(&partial, &bytes), "write the partial")?;
    let err = cx.block_on(c.download(r.download_spec()).to_path(&out));
    ensure!(
        matches!(&err, Err(Error::Download(d)) if d.is_integrity()),
        "{err:?}"
    );
    ensure!(!out.exists() && !partial.exists(), "left behind");

    // A stale partial of another download to the same target is replaced, not resumed.
    download_cancelled(cx, &cdn, r.download_spec(), &out, 1 << 20)?;
    let other = ok(
        cx.block_on(
            c.upload(b"another picture".to_vec(), MediaType::Image)
                .send(),
        ),
        "upload",
    )?;
    ok(
        cx.block_on(c.download(other.download_spec()).to_path(&out)),
        "download",
    )?;
    ensure!(
        std::fs::read(&out).ok().as_deref() == Some(&b"another picture"[..]),
        "the file differs"
    );
    ensure!(!partial.exists(), "the partial file stayed");
    Ok(())
}

fn tampered_long_partial<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    // More than one read of the partial file (1 MiB each): the machine settles on the
    // first (its sidecar window no longer matches), before the rest is fed back.
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let r = up(cx, &c, data(4 << 20), MediaType::Video)?;
    let dir = tempdir()?;
    let out = dir.path().join("long.mp4");
    let partial = partial_of(&out);
    download_cancelled(cx, &cdn, r.download_spec(), &out, 5 << 19)?;
    let mut bytes = ok(std::fs::read(&partial), "read the partial")?;
    ensure!(bytes.len() > 1 << 21, "{}", bytes.len());
    bytes[100] ^= 1;
    ok(std::fs::write(&partial, &bytes), "write the partial")?;
    let before = cdn.seen().len();
    let err = cx.block_on(c.download(r.download_spec()).to_path(&out));
    ensure!(
        matches!(&err, Err(Error::Download(d)) if d.is_integrity()),
        "{err:?}"
    );
    ensure!(!out.exists() && !partial.exists(), "left behind");
    ensure!(cdn.seen().len() == before, "settled without a request");
    Ok(())
}

fn fifty_at_once<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let transfers: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            async move {
                let plain = data(10_000 + i * 997);
                let r = c.upload(plain.clone(), MediaType::Image).send().await?;
                let (out, _) = c.download(r.download_spec()).to_vec().await?;
                Ok::<bool, Error>(out == plain)
            }
        })
        .collect();
    for r in cx.block_on(join_all(transfers)) {
        ensure!(ok(r, "a transfer")?, "a plaintext came back different");
    }
    ensure!(cdn.object_count() == 50, "{} objects", cdn.object_count());
    Ok(())
}

fn delete_once<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let r = ok(
        cx.block_on(
            cx.client(conn(&cdn))
                .upload(b"history sync blob".to_vec(), MediaType::History)
                .send(),
        ),
        "upload",
    )?;
    let enc = r.file_enc_sha256.ok_or("no file_enc_sha256")?;
    let spec = DeleteSpec {
        direct_path: r.direct_path.clone(),
        file_enc_sha256: enc,
        handle: Some("h".into()),
        companion_secret: Some("companion".into()),
    };
    // A stale auth is renewed once, then the blob goes.
    let stale = conn(&cdn);
    cdn.set_auth("rotated");
    let fresh = conn(&cdn);
    let source = move |force: bool| {
        std::future::ready(Ok::<_, String>(if force {
            fresh.clone()
        } else {
            stale.clone()
        }))
    };
    let c = cx.client(source);
    let d = ok(cx.block_on(c.delete(spec.clone()).send()), "delete")?;
    ensure!(d.status == 200, "{}", d.status);
    ensure!(cdn.stored(&b64::url(&enc)).is_none(), "still stored");
    let seen = cdn.seen();
    let last = seen.last().ok_or("nothing seen")?;
    ensure!(last.method == "DELETE", "{last:?}");
    ensure!(
        last.headers
            .iter()
            .any(|(k, v)| k == "companion_user_secret" && v == "companion"),
        "{last:?}"
    );
    let err = cx.block_on(c.delete(spec).send());
    ensure!(
        matches!(
            err,
            Err(Error::Delete(DeleteError::Status { status: 404, .. }))
        ),
        "{err:?}"
    );
    Ok(())
}

fn chunk_boundaries<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    // Bodies are made 64 KiB at a time, the last chunk with the one before it: bodies
    // just under, at and over one and two chunks (and the old 32 KiB size).
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let key = MediaKey::from_bytes([5; 32]);
    for len in [
        32_741, 32_742, 32_758, 65_509, 65_510, 65_526, 65_536, 98_278, 131_045, 131_046, 131_062,
    ] {
        let plain = data(len);
        let (body, _) = ok(
            encrypt(key.clone(), &MediaType::Document, &plain),
            "encrypt",
        )?;
        let call = c.upload(plain, MediaType::Document).media_key(key.clone());
        let r = ok(cx.block_on(call.send()), "upload")?;
        let stored = r
            .file_enc_sha256
            .and_then(|h| cdn.stored(&b64::url_nopad(&h)));
        ensure!(stored == Some(body), "{len}: the stored body differs");
    }
    Ok(())
}

fn ranged_download<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let cdn = start()?;
    let c = cx.client(conn(&cdn));
    let plain = data(300_000);
    let r = up(cx, &c, plain.clone(), MediaType::Video)?;
    ensure!(
        r.streaming_sidecar.is_some(),
        "a video has a streaming sidecar"
    );
    let before = cdn.seen().len();
    let call = c.download(r.download_spec()).range(100_000..150_000);
    let (out, _) = ok(cx.block_on(call.to_vec()), "a ranged download")?;
    ensure!(out == plain[100_000..150_000], "got {} bytes", out.len());
    let got = ranges(&cdn, before);
    ensure!(
        !got.is_empty()
            && got
                .iter()
                .all(|r| r.as_deref().is_some_and(|v| !v.starts_with("bytes=0-"))),
        "{got:?}"
    );
    // Without a sidecar no window can be verified: refused before any request.
    let mut spec = r.download_spec();
    spec.streaming_sidecar = None;
    let err = cx.block_on(c.download(spec).range(0..10).to_vec());
    ensure!(
        matches!(&err, Err(Error::Download(DownloadError::BadRange(_)))),
        "{err:?}"
    );
    Ok(())
}
