//! Download `GET`s of direct paths (PROTOCOL §5), streamed from the store folder.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use super::http::{self, Body, Req};
use super::routes;
use super::{Fault, Server};

/// Answers a download; the status (0 when the connection is dropped).
pub(super) fn serve<R: BufRead>(
    srv: &Server,
    w: &mut impl Write,
    req: &Req,
    body: &mut Body<'_, R>,
    fault: Option<&Fault>,
) -> io::Result<u16> {
    http::drain(body);
    let found = routes::download_id(&req.path).and_then(|id| {
        let s = srv.lock();
        let digest = *s.ids.get(id)?;
        let obj = s.objects.get(&digest)?;
        (obj.id == id).then(|| (digest, obj.clone()))
    });
    let Some((digest, obj)) = found else {
        return plain(w, 404, "not found");
    };
    if let Some(why) = routes::signature_problem(&req.path, req.param("oh"), req.param("oe")) {
        return plain(w, 403, why);
    }
    if let Some(h) = req.param("hash") {
        match routes::decode_token(h) {
            Some(d) if d == digest => {}
            Some(_) => return plain(w, 404, "hash mismatch"),
            None => return plain(w, 400, "hash is not base64url of a SHA-256"),
        }
    }
    if let Some(m) = req.param("mms-type") {
        if !routes::MMS_TYPES.contains(&m) {
            return plain(w, 400, "unknown mms-type");
        }
        if !obj.route.mms_types.contains(&m) {
            return plain(w, 404, "no object of this mms-type");
        }
    }
    let Ok(mut file) = File::open(srv.object_path(&digest)) else {
        return plain(w, 404, "not found");
    };
    let total = file.metadata()?.len();
    let (status, from, to) = match req.header("range") {
        None => (200, 0, total),
        Some(r) => match http::parse_range(r, total) {
            Some((a, b)) => (206, a, b),
            None => {
                return http::respond(
                    w,
                    416,
                    &[("Content-Range", format!("bytes */{total}"))],
                    b"",
                )
            }
        },
    };
    let mut headers = vec![("Content-Type", "application/octet-stream".to_owned())];
    if status == 206 {
        headers.push(("Content-Range", format!("bytes {from}-{}/{total}", to - 1)));
    }
    http::write_head(w, status, to - from, &headers)?;
    let send = match fault {
        Some(Fault::CutDownload(n)) => (*n).min(to - from),
        _ => to - from,
    };
    let tamper = matches!(fault, Some(Fault::Tamper));
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < send {
        let n = usize::try_from(send - sent).map_or(buf.len(), |l| l.min(buf.len()));
        file.read_exact(&mut buf[..n])?;
        sent += n as u64;
        if tamper && from + sent == total {
            // The last byte of the object: the MAC's.
            buf[n - 1] ^= 1;
        }
        w.write_all(&buf[..n])?;
    }
    w.flush()?;
    Ok(status)
}

/// A short text answer.
fn plain(w: &mut impl Write, status: u16, why: &str) -> io::Result<u16> {
    http::respond(
        w,
        status,
        &[("Content-Type", "text/plain".into())],
        why.as_bytes(),
    )
}
