//! Commands for what the WhatsApp session does around the CDN: the media retry
//! receipt and notification (asking the sender's phone to upload gone media again),
//! deleting a history-sync blob, and streaming verified playback to a local player.

#[cfg(feature = "ureq")]
use std::io::{BufRead, BufReader, Write};
#[cfg(feature = "ureq")]
use std::net::{TcpListener, TcpStream};
#[cfg(feature = "ureq")]
use std::time::{Duration, Instant};

use wamedia::retry::{decrypt_retry_notification, encrypt_retry_receipt};
use wamedia::*;

#[cfg(feature = "surf")]
use crate::net::surf_client;
#[cfg(feature = "ureq")]
use crate::net::ureq_client;
#[cfg(feature = "reqwest")]
use crate::net::{block_on_tokio, reqwest_client};
use crate::net::{client_opts, conn_provider, Transport};
use crate::{media_key, media_type, Fail, Net};

fn b64_arg(flag: &str, s: &str) -> Result<Vec<u8>, Fail> {
    b64::decode_any(s).map_err(|_| Fail::usage(format!("{flag}: not base64")))
}

/// `wamedia retry-receipt`: the encrypted receipt asking the sender's phone to upload
/// the media of a message again, as `{ciphertext, iv}` (base64).
pub fn retry_receipt(key: &str, message_id: &str) -> Result<(), Fail> {
    let key = media_key("--media-key", key)?;
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).map_err(|e| Fail::usage(format!("no randomness: {e}")))?;
    let ct = encrypt_retry_receipt(&key, message_id, &iv);
    println!(
        "{}",
        serde_json::json!({ "ciphertext": b64::std(&ct), "iv": b64::std(&iv) })
    );
    Ok(())
}

/// `wamedia retry-notification`: decrypts the phone's answer, printing
/// `{stanza_id, direct_path, result}`.
pub fn retry_notification(
    key: &str,
    message_id: &str,
    iv: &str,
    ciphertext: &str,
) -> Result<(), Fail> {
    let key = media_key("--media-key", key)?;
    let iv = b64_arg("--iv", iv)?;
    let ct = b64_arg("--ciphertext", ciphertext)?;
    let n = decrypt_retry_notification(&key, message_id, &iv, &ct).map_err(|e| Fail {
        code: 4,
        msg: e.to_string(),
        detail: None,
    })?;
    let esc = |s: &Option<String>| s.as_deref().map(transfer::escape);
    println!(
        "{}",
        serde_json::json!({
            "stanza_id": esc(&n.stanza_id),
            "direct_path": esc(&n.direct_path),
            "result": n.result.name(),
        })
    );
    Ok(())
}

/// `wamedia delete`: deletes a history-sync blob, printing `{host, status}`.
pub fn delete(
    direct_path: &str,
    file_enc_sha256: &str,
    handle: Option<String>,
    companion_secret: Option<String>,
    net: &Net,
) -> Result<(), Fail> {
    let file_enc_sha256 = b64::decode_sha256(file_enc_sha256)
        .map_err(|e| Fail::usage(format!("--file-enc-sha256: {e}")))?;
    let mut provider = conn_provider(net)?.ok_or_else(|| {
        Fail::usage(
            "delete needs a media connection: --media-conn-command, --media-conn, or --auth/--host",
        )
    })?;
    let spec = DeleteSpec {
        direct_path: direct_path.to_owned(),
        file_enc_sha256,
        handle,
        companion_secret,
    };
    let o = client_opts(net, false);
    let mut transfer = Transfer::new();
    let r = match net.transport {
        #[cfg(feature = "surf")]
        Transport::Surf => {
            async_std::task::block_on(surf_client(o).delete(spec, &mut *provider, &mut transfer))
        }
        #[cfg(feature = "reqwest")]
        Transport::Reqwest => {
            block_on_tokio(reqwest_client(o)?.delete(spec, &mut *provider, &mut transfer))
        }
        #[cfg(feature = "ureq")]
        Transport::Ureq => ureq_client(o).delete(spec, &mut *provider, &mut transfer),
    }?;
    println!(
        "{}",
        serde_json::json!({ "host": r.host, "status": r.status })
    );
    Ok(())
}

/// What `wamedia stream` serves.
// Read only by the ureq-backed server; the flags are still checked without it.
#[cfg_attr(not(feature = "ureq"), allow(dead_code))]
pub struct Stream {
    /// The media, with its sidecar and length.
    pub spec: DownloadSpec,
    /// The `Content-Type` to answer with.
    pub content_type: String,
}

/// The content type a player expects for `t`.
pub fn content_type(t: &MediaType) -> &'static str {
    match t {
        MediaType::Video | MediaType::Gif | MediaType::Ptv => "video/mp4",
        MediaType::Ptt => "audio/ogg",
        MediaType::Audio => "audio/mpeg",
        MediaType::Image => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Builds the download spec of `wamedia stream` from its flags.
pub fn stream_spec(
    t: &str,
    direct_path: &str,
    key: &str,
    file_length: u64,
    sidecar: &str,
    file_enc_sha256: Option<&str>,
) -> Result<Stream, Fail> {
    let t = media_type(t)?;
    let sidecar = b64_arg("--streaming-sidecar", sidecar)?;
    let file_enc_sha256 = file_enc_sha256
        .map(|s| b64::decode_sha256(s).map_err(|e| Fail::usage(format!("--file-enc-sha256: {e}"))))
        .transpose()?;
    Ok(Stream {
        content_type: content_type(&t).to_owned(),
        spec: DownloadSpec {
            media_type: t,
            media_key: Some(media_key("--media-key", key)?),
            source: Source::DirectPath(direct_path.to_owned()),
            expected: Expected {
                file_enc_sha256,
                file_sha256: None,
                file_length: Some(file_length),
            },
            streaming_sidecar: Some(sidecar),
        },
    })
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → `a..b+1` within `len`; `None` when unsatisfiable.
#[cfg(feature = "ureq")]
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let r = v.trim().strip_prefix("bytes=")?;
    if r.contains(',') {
        return None;
    }
    let (a, b) = r.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().ok()?, len),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(len),
        ),
    };
    (a < b && a < len).then_some((a, b))
}

/// `wamedia stream` without the ureq transport: ranged downloads are ureq's alone so far.
#[cfg(not(feature = "ureq"))]
pub fn stream(_: Stream, _: &str, _: &Net) -> Result<(), Fail> {
    Err(Fail::usage(
        "stream needs the ureq transport; this wamedia was built without the `ureq` feature",
    ))
}

/// `wamedia stream`: serves the media's plaintext on `addr` (loopback), answering `Range`
/// requests from ranged downloads whose every window is checked against the sidecar
/// before a byte goes to the player. Prints `{"url": …}` and serves until stopped.
#[cfg(feature = "ureq")]
pub fn stream(s: Stream, addr: &str, net: &Net) -> Result<(), Fail> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| Fail::usage(format!("cannot listen on --addr {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Fail::usage(format!("--addr {addr}: {e}")))?;
    conn_provider(net)?.ok_or_else(|| {
        Fail::usage(
            "stream needs a media connection: --media-conn-command, --media-conn, or --auth/--host",
        )
    })?;
    println!(
        "{}",
        serde_json::json!({ "url": format!("http://{local}/media") })
    );
    if !net.quiet {
        eprintln!("wamedia: streaming verified plaintext on http://{local}/media (Ctrl-C to stop)");
    }
    let s = std::sync::Arc::new(s);
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        // A player opens a few connections; more at once are refused.
        if busy.load(std::sync::atomic::Ordering::SeqCst) >= 8 {
            continue;
        }
        busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (s, busy, net) = (s.clone(), busy.clone(), net.clone());
        std::thread::spawn(move || {
            let _ = serve_player(conn, &s, &net);
            busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    Ok(())
}

#[cfg(feature = "ureq")]
fn serve_player(conn: TcpStream, s: &Stream, net: &Net) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut range = None;
    for _ in 0..100 {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_owned());
            }
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let len = s.spec.expected.file_length.unwrap_or(0);
    if target != "/media" || !(method == "GET" || method == "HEAD") {
        return write!(
            w,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let (status, (a, b)) = match range.as_deref().map(|v| parse_range(v, len)) {
        None => ("200 OK", (0, len)),
        Some(Some(ab)) => ("206 Partial Content", ab),
        Some(None) => {
            return write!(
                w,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
    };
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
        s.content_type,
        b - a,
        if status.starts_with("206") {
            format!("Content-Range: bytes {a}-{}/{len}\r\n", b - 1)
        } else {
            String::new()
        }
    )?;
    if method == "HEAD" {
        return w.flush();
    }
    let Ok(Some(mut provider)) = conn_provider(net) else {
        return Ok(());
    };
    let client = ureq_client(client_opts(net, false));
    let started = Instant::now();
    let r = client.download_range(
        s.spec.clone(),
        a,
        b,
        &mut *provider,
        &mut w,
        &mut Transfer::new(),
    );
    if let (Err(e), false) = (r, net.quiet) {
        eprintln!(
            "wamedia: bytes {a}-{} not served after {:.1} s: {}",
            b - 1,
            started.elapsed().as_secs_f64(),
            transfer::escape(&e.to_string())
        );
    }
    w.flush()
}

#[cfg(all(test, feature = "ureq"))]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
