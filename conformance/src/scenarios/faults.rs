//! Scenarios against raw loopback peers that answer the same wrong way every time
//! ([`Hostile`]), and a keep-alive peer that counts connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wamedia::{DownloadError as D, IntegrityError as I, MediaConn, MediaType, UploadError as U};
use wamedia_driver::{Error, ErrorKind, Http, Options, Runtime};

use super::{dead_host, ok, Check, Ctx, Executor, Scenario};
use crate::hostile::{sample_body, sample_download, Behaviour, Hostile, SAMPLE};

pub(super) fn table<H: Http, R: Runtime + Default, E: Executor>() -> Vec<Scenario<H, R, E>> {
    vec![
        Scenario {
            name: "a 100 MB JSON answer to an upload is read capped and refused as malformed",
            run: huge_json,
        },
        Scenario {
            name: "an endless body stops the moment it passes the message's length",
            run: endless_body,
        },
        Scenario {
            name: "a trickling body ends at the transfer's total deadline",
            run: trickle,
        },
        Scenario {
            name: "401 forever: one forced renewal, then auth rejected",
            run: unauthorized_forever,
        },
        Scenario {
            name: "a redirect is never followed",
            run: redirect,
        },
        Scenario {
            name: "a close-delimited body is read to its end (or refused, where documented)",
            run: close_delimited,
        },
        Scenario {
            name: "a body cut mid-way every time is a network failure, not corrupt media",
            run: cut_every_time,
        },
        Scenario {
            name: "an error page with terminal escapes reaches the error escaped, on one line",
            run: escapes,
        },
        Scenario {
            name: "the auth token is never in an error",
            run: auth_never_in_errors,
        },
        Scenario {
            name: "transfers reuse the client's connections",
            run: connections_reused,
        },
    ]
}

const AUTH: &str = "s3cret-AUTH-token";

/// What came of one transfer against a hostile peer.
struct Against {
    outcome: Result<(), Error>,
    /// Connections the peer accepted.
    connections: u64,
    /// The `force` of each time the source was asked.
    asks: Vec<bool>,
}

impl Against {
    fn text(&self) -> String {
        match &self.outcome {
            Ok(()) => "ok".into(),
            Err(e) => format!("{e} after {} connections", self.connections),
        }
    }
}

/// Moves [`SAMPLE`] up (`upload`) or down against a peer behaving as `b`.
fn against<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
    b: Behaviour,
    upload: bool,
    tweak: impl FnOnce(&mut Options),
) -> Result<Against, String> {
    let peer = ok(Hostile::start(b), "start the peer")?;
    let conn = MediaConn::new(
        AUTH,
        vec![peer.host()],
        Duration::from_secs(300),
        Instant::now(),
    );
    let asks = Arc::new(Mutex::new(Vec::new()));
    let a2 = asks.clone();
    let source = move |force: bool| {
        a2.lock().unwrap_or_else(|e| e.into_inner()).push(force);
        std::future::ready(Ok::<_, String>(conn.clone()))
    };
    let c = cx.client_with(source, tweak);
    let outcome = if upload {
        cx.block_on(c.upload(SAMPLE, MediaType::Image).send())
            .map(|_| ())
    } else {
        cx.block_on(c.download(sample_download()).to_vec())
            .map(|_| ())
    };
    let asks = asks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Against {
        outcome,
        connections: peer.requests(),
        asks,
    })
}

fn not_integrity(a: &Against) -> Check {
    match &a.outcome {
        Err(Error::Download(e)) if e.is_integrity() => {
            Err(format!("a network fault reported as corrupt media: {e}"))
        }
        _ => Ok(()),
    }
}

fn huge_json<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let a = against(cx, Behaviour::HugeJson(100 << 20), true, |_| {})?;
    match &a.outcome {
        Err(e @ Error::Upload(U::Malformed { .. })) if a.connections == 1 => {
            ensure!(e.kind() == ErrorKind::Cdn, "kind {:?}", e.kind());
            Ok(())
        }
        _ => Err(a.text()),
    }
}

fn endless_body<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let a = against(cx, Behaviour::Endless, false, |_| {})?;
    match &a.outcome {
        Err(Error::Download(D::Integrity(I::TooLarge { .. }))) => Ok(()),
        _ => Err(a.text()),
    }
}

fn trickle<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    // The declared length is the true one: only the pace is wrong.
    let b = Behaviour::Trickle {
        len: sample_body().len() as u64,
        every: Duration::from_millis(100),
    };
    let a = against(cx, b, false, |o| {
        o.download.retry.total_timeout = Duration::from_secs(2);
    })?;
    match &a.outcome {
        Err(Error::Download(D::AllHostsFailed { why, .. })) if *why == "deadline passed" => Ok(()),
        _ => Err(a.text()),
    }
}

fn unauthorized_forever<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let a = against(cx, Behaviour::Unauthorized, true, |_| {})?;
    ensure!(a.asks == [false, true], "the source was asked {:?}", a.asks);
    match &a.outcome {
        Err(e @ Error::Upload(U::AuthRejected { status: 401, .. })) if a.connections == 2 => {
            ensure!(e.kind() == ErrorKind::Auth, "kind {:?}", e.kind());
            Ok(())
        }
        _ => Err(a.text()),
    }
}

fn redirect<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let to = format!("{}/elsewhere", dead_host());
    let a = against(cx, Behaviour::Redirect(to), true, |_| {})?;
    match &a.outcome {
        Err(Error::Upload(U::Status { status: 302, .. })) if a.connections == 1 => Ok(()),
        _ => Err(a.text()),
    }
}

fn close_delimited<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let a = against(cx, Behaviour::CloseDelimited(sample_body()), false, |_| {})?;
    not_integrity(&a)?;
    match &a.outcome {
        Ok(()) if !cx.limits().refuses_close_delimited => Ok(()),
        // surf (async-h1) cannot read such a body: refused, with the reason.
        Err(Error::Download(D::AllHostsFailed { .. }))
            if cx.limits().refuses_close_delimited && a.text().contains("close-delimited") =>
        {
            Ok(())
        }
        _ => Err(a.text()),
    }
}

fn cut_every_time<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let a = against(cx, Behaviour::Cut(sample_body()), false, |_| {})?;
    not_integrity(&a)?;
    match &a.outcome {
        Err(e @ Error::Download(D::AllHostsFailed { .. })) => {
            ensure!(e.kind() == ErrorKind::Network, "kind {:?}", e.kind());
            Ok(())
        }
        _ => Err(a.text()),
    }
}

fn escapes<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let page = b"<html>\n<title>\x1b]0;pwned\x07\x1b[2J</title>\n</html>".to_vec();
    for upload in [true, false] {
        let b = Behaviour::Status(400, "text/html", page.clone());
        let a = against(cx, b, upload, |_| {})?;
        let t = a.text();
        ensure!(a.outcome.is_err(), "{t}");
        ensure!(
            !t.chars().any(char::is_control) && t.contains("400"),
            "upload {upload}: {t:?}"
        );
    }
    Ok(())
}

fn auth_never_in_errors<H: Http, R: Runtime + Default, E: Executor>(
    cx: &Ctx<'_, H, R, E>,
) -> Check {
    let mut errors = Vec::new();
    // A refused host, a redirect to one, and a cut body, up and down.
    for b in [
        None,
        Some(Behaviour::Redirect(format!("{}/?auth={AUTH}", dead_host()))),
        Some(Behaviour::Cut(sample_body())),
    ] {
        for upload in [true, false] {
            let outcome = match &b {
                Some(b) => against(cx, b.clone(), upload, |_| {})?.outcome,
                None => {
                    let conn = MediaConn::new(
                        AUTH,
                        vec![dead_host()],
                        Duration::from_secs(300),
                        Instant::now(),
                    );
                    let c = cx.client(conn);
                    if upload {
                        cx.block_on(c.upload(SAMPLE, MediaType::Image).send())
                            .map(|_| ())
                    } else {
                        cx.block_on(c.download(sample_download()).to_vec())
                            .map(|_| ())
                    }
                }
            };
            match outcome {
                Ok(()) => return Err(format!("{b:?}: no error")),
                Err(e) => errors.push(format!("{e} {e:?}")),
            }
        }
    }
    for e in errors {
        ensure!(!e.contains(AUTH), "the auth in an error: {e}");
    }
    Ok(())
}

/// A minimal HTTP/1.1 peer that keeps connections open, answers every request with an
/// upload's JSON and counts connections and requests. Bounded: 16 connections, a
/// minute of accepting, 64 requests each, 10 s of silence.
fn keep_alive_peer() -> Result<(String, Arc<AtomicUsize>, Arc<AtomicUsize>), String> {
    let l = ok(TcpListener::bind("127.0.0.1:0"), "bind")?;
    let host = format!("http://{}", ok(l.local_addr(), "address")?);
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c2, r2) = (conns.clone(), requests.clone());
    ok(l.set_nonblocking(true), "nonblocking")?;
    // Accepts for a minute at most, then stops by itself.
    let stop_at = Instant::now() + Duration::from_secs(60);
    std::thread::spawn(move || {
        while Instant::now() < stop_at && c2.load(Ordering::SeqCst) < 16 {
            match l.accept() {
                Ok((s, _)) => {
                    c2.fetch_add(1, Ordering::SeqCst);
                    let r3 = r2.clone();
                    std::thread::spawn(move || {
                        let _ = s
                            .set_nonblocking(false)
                            .and_then(|()| serve_keep_alive(s, &r3));
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => break,
            }
        }
    });
    Ok((host, conns, requests))
}

fn serve_keep_alive(s: std::net::TcpStream, requests: &AtomicUsize) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    for _ in 0..64 {
        let mut len = 0u64;
        let mut first = true;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if first {
                first = false;
            } else if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        std::io::copy(&mut r.by_ref().take(len), &mut std::io::sink())?;
        requests.fetch_add(1, Ordering::SeqCst);
        let body = br#"{"url":"https://mmg.whatsapp.net/d/x","direct_path":"/d/x"}"#;
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        w.write_all(body)?;
    }
    Ok(())
}

fn connections_reused<H: Http, R: Runtime + Default, E: Executor>(cx: &Ctx<'_, H, R, E>) -> Check {
    let (host, conns, requests) = keep_alive_peer()?;
    let conn = MediaConn::new(
        "reuse-auth",
        vec![host],
        Duration::from_secs(300),
        Instant::now(),
    );
    let c = cx.client(conn);
    for i in 0..3 {
        let data = super::data(1000 + i);
        ok(
            cx.block_on(c.upload(data, MediaType::Image).send()),
            "upload",
        )?;
    }
    let (n, r) = (
        conns.load(Ordering::SeqCst),
        requests.load(Ordering::SeqCst),
    );
    ensure!(r == 3, "{r} requests");
    let want = if cx.limits().no_connection_reuse {
        3
    } else {
        1
    };
    ensure!(n == want, "{n} connections for three uploads");
    Ok(())
}
