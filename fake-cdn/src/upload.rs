//! Upload `POST`s and resume probes (PROTOCOL §4).

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::http::{self, Body, Framing, Req};
use super::routes;
use super::{Fault, On, Server};

/// How receiving a body ended.
enum Received {
    /// The whole body arrived: the object's length and SHA-256.
    Complete { len: u64, digest: [u8; 32] },
    /// The connection ended first (or a scripted drop): this many object bytes are held.
    Cut(u64),
    /// A malformed chunk.
    Malformed,
    /// Over the size cap.
    TooLarge,
    /// The store folder failed.
    Store(io::Error),
}

/// Answers an upload or a resume probe; the status (0 when the connection is dropped).
pub(super) fn serve<R: BufRead>(
    srv: &Server,
    w: &mut impl Write,
    req: &Req,
    body: &mut Body<'_, R>,
    kind: On,
    fault: Option<&Fault>,
) -> io::Result<u16> {
    let Some((route, path_token)) = routes::upload_route(&req.path) else {
        return http::reject(w, body, 404, "unknown upload path");
    };
    let digest = match super::authorize(srv, req, path_token) {
        Ok(d) => d,
        Err((status, why)) => return http::reject(w, body, status, why),
    };
    if req
        .param("media_id")
        .is_some_and(|m| !routes::valid_media_id(m))
    {
        return http::reject(w, body, 400, "media_id is not a decimal integer below 2^53");
    }
    let range = match (req.param("bytestart"), req.param("byteend")) {
        (None, None) => None,
        (Some(a), Some(e)) => match (http::parse_decimal(a), http::parse_decimal(e)) {
            (Some(a), Some(e)) if a <= e => Some((a, e)),
            _ => {
                return http::reject(
                    w,
                    body,
                    400,
                    "bytestart and byteend are decimal, bytestart <= byteend",
                )
            }
        },
        _ => return http::reject(w, body, 400, "bytestart and byteend go together"),
    };
    if kind == On::ResumeCheck {
        http::drain(body);
        return http::json(w, 200, &probe(srv, &digest));
    }
    let start = range.map_or(0, |(a, _)| a);
    let max = srv.max_body;
    match body.framing() {
        Framing::None => {
            return http::json(
                w,
                411,
                &json!({"error": "an upload needs Content-Length or Transfer-Encoding: chunked"}),
            )
        }
        Framing::Length(n) => {
            let total = start.checked_add(n);
            if total.is_none_or(|t| t > max) {
                return http::reject(w, body, 413, &too_large(max));
            }
            if range.is_some_and(|(_, e)| total != Some(e)) {
                return http::reject(w, body, 400, BAD_BYTEEND);
            }
        }
        Framing::Chunked => {}
    }
    if range.is_some_and(|(_, e)| e > max) {
        return http::reject(w, body, 413, &too_large(max));
    }
    let partial = if start == 0 {
        None
    } else {
        match File::open(srv.partial_path(&digest)) {
            Ok(f) if f.metadata().is_ok_and(|m| m.len() == start) => Some(f),
            _ => {
                let why = format!(
                    "hash mismatch: no partial upload of {start} bytes is held for this token"
                );
                return http::reject(w, body, 415, &why);
            }
        }
    };
    let stop_after = match fault {
        Some(Fault::DropUploadAfter(n)) => Some(*n),
        _ => None,
    };
    let tmp = srv.tmp_path(&digest);
    let received = receive(body, &tmp, partial, start, max, stop_after);
    let (len, got) = match received {
        Received::Complete { len, digest } => (len, digest),
        Received::Cut(held) => {
            // Keep what arrived, as the CDN does, for a later `bytestart` upload.
            if held > 0 {
                std::fs::rename(&tmp, srv.partial_path(&digest))?;
            } else {
                let _ = std::fs::remove_file(&tmp);
            }
            return Ok(0);
        }
        Received::Malformed => {
            let _ = std::fs::remove_file(&tmp);
            // What follows a malformed chunk cannot be framed: answer and close.
            return http::json(w, 400, &json!({"error": "malformed chunked body"}));
        }
        Received::TooLarge => {
            let _ = std::fs::remove_file(&tmp);
            return http::reject(w, body, 413, &too_large(max));
        }
        Received::Store(e) => {
            let _ = std::fs::remove_file(&tmp);
            return http::reject(w, body, 500, &format!("the fake CDN could not store: {e}"));
        }
    };
    let problem = if range.is_some_and(|(_, e)| e != len) {
        Some((400, BAD_BYTEEND))
    } else if got != digest {
        Some((415, "hash mismatch: SHA-256 of the body is not the token"))
    } else if route.encrypted && (len < 26 || (len - 10) % 16 != 0) {
        Some((400, "an encrypted body is 16k+10 bytes, k >= 1"))
    } else {
        None
    };
    if let Some((status, why)) = problem {
        let _ = std::fs::remove_file(&tmp);
        return http::json(w, status, &json!({ "error": why }));
    }
    std::fs::rename(&tmp, srv.object_path(&digest))?;
    let _ = std::fs::remove_file(srv.partial_path(&digest));
    let obj = srv.insert(digest, route, false);
    let thumbnail = if route.thumbnails && req.param("server_thumb_gen") == Some("1") {
        match thumbnail(srv, &digest) {
            Ok(t) => Some(t),
            Err(e) => {
                let why = format!("the fake CDN could not store a thumbnail: {e}");
                return http::json(w, 500, &json!({ "error": why }));
            }
        }
    } else {
        None
    };
    match fault {
        Some(Fault::Garbage) => http::respond(w, 200, &[], b"<html>502 upstream hiccup</html>"),
        Some(Fault::NoUrl) => http::json(w, 200, &json!({"status": "ok"})),
        _ => {
            let mut v = srv.answer(&digest, &obj);
            v["object_id"] = format!("obj-{}", &routes::token_text(&digest)[..8]).into();
            if let Some(t) = thumbnail {
                v["thumbnail_info"] = t;
            }
            http::json(w, 200, &v)
        }
    }
}

const BAD_BYTEEND: &str = "byteend is not bytestart plus the body length";

fn too_large(max: u64) -> String {
    format!("request entity too large: an object is at most {max} bytes")
}

/// The answer to a resume probe.
fn probe(srv: &Server, digest: &[u8; 32]) -> serde_json::Value {
    let obj = srv.lock().objects.get(digest).cloned();
    match obj {
        Some(o) if !o.generated => {
            let mut v = srv.answer(digest, &o);
            v["resume"] = "complete".into();
            v
        }
        _ => json!({ "resume": srv.partial_len(digest) }),
    }
}

/// Streams the held partial (`start` bytes) and then the body into `tmp`, hashing both.
fn receive<R: BufRead>(
    body: &mut Body<'_, R>,
    tmp: &Path,
    partial: Option<File>,
    start: u64,
    max: u64,
    stop_after: Option<u64>,
) -> Received {
    let mut file = match File::create(tmp) {
        Ok(f) => f,
        Err(e) => return Received::Store(e),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    if let Some(mut p) = partial {
        while total < start {
            let n = usize::try_from(start - total).map_or(buf.len(), |l| l.min(buf.len()));
            if let Err(e) = p
                .read_exact(&mut buf[..n])
                .and_then(|()| file.write_all(&buf[..n]))
            {
                return Received::Store(e);
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
    }
    loop {
        let room = match stop_after {
            Some(s) => usize::try_from(s.saturating_sub(body.received()))
                .map_or(buf.len(), |l| l.min(buf.len())),
            None => buf.len(),
        };
        if room == 0 && !body.is_at_end() {
            return Received::Cut(total);
        }
        match body.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => {
                total = total.saturating_add(n as u64);
                if total > max {
                    return Received::TooLarge;
                }
                hasher.update(&buf[..n]);
                if let Err(e) = file.write_all(&buf[..n]) {
                    return Received::Store(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Received::Malformed,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Received::Cut(total),
        }
    }
    Received::Complete {
        len: total,
        digest: hasher.finalize().into(),
    }
}

/// Makes and stores a small plaintext thumbnail for `server_thumb_gen=1`; its
/// `thumbnail_info`.
fn thumbnail(srv: &Server, of: &[u8; 32]) -> io::Result<serde_json::Value> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(b"fake CDN thumbnail of ");
    bytes.extend_from_slice(routes::token_text(of).as_bytes());
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    std::fs::write(srv.object_path(&digest), &bytes)?;
    let obj = srv.insert(digest, &routes::SERVER_THUMBNAIL, true);
    Ok(json!({
        "thumbnail_direct_path": routes::direct_path(&obj.id, false),
        "thumbnail_sha256": STANDARD.encode(digest),
    }))
}
