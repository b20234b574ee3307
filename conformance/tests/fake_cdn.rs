//! The fake CDN's own contract, spoken to with a bare TcpStream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use wamedia_conformance::{CdnConfig, FakeCdn, Fault, On};

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn http(
    cdn: &FakeCdn,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Answer> {
    let mut s = TcpStream::connect(cdn.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut body = Vec::new();
    let _ = r.read_to_end(&mut body);
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn body_of(len: usize) -> (Vec<u8>, String) {
    let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let token = URL_SAFE_NO_PAD.encode(Sha256::digest(&body));
    (body, token)
}

fn upload_target(cdn: &FakeCdn, token: &str) -> String {
    format!("/mms/image/{token}?auth={}&token={token}", cdn.auth())
}

#[test]
fn validates_auth_token_and_body_shape() {
    let cdn = FakeCdn::start().unwrap();
    let (body, token) = body_of(16 * 4 + 10);
    let a = http(
        &cdn,
        "POST",
        &format!("/mms/image/{token}?auth=wrong&token={token}"),
        &[],
        &body,
    )
    .unwrap();
    assert_eq!(a.status, 401);
    let (_, other) = body_of(42);
    let a = http(&cdn, "POST", &upload_target(&cdn, &other), &[], &body).unwrap();
    assert_eq!(a.status, 400, "token of another body");
    let (bad, bad_token) = body_of(50);
    let a = http(&cdn, "POST", &upload_target(&cdn, &bad_token), &[], &bad).unwrap();
    assert_eq!(a.status, 400, "50 bytes is not 16k+10");
    assert!(String::from_utf8_lossy(&a.body).contains("16k+10"));
    let a = http(&cdn, "POST", &upload_target(&cdn, &token), &[], &body).unwrap();
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let dp = v["direct_path"].as_str().unwrap();
    assert!(
        dp.contains('?'),
        "direct paths carry a query like real ones"
    );
    assert_eq!(cdn.stored(&token).unwrap(), body);
    // A padded token is the same object.
    assert_eq!(cdn.stored(&format!("{token}=")).unwrap(), body);
    // Newsletter media is not shape-checked and gets a handle.
    let a = http(
        &cdn,
        "POST",
        &format!(
            "/newsletter/newsletter-image/{bad_token}?auth={}&token={bad_token}",
            cdn.auth()
        ),
        &[],
        &bad,
    )
    .unwrap();
    assert_eq!(a.status, 200);
    assert!(String::from_utf8_lossy(&a.body).contains("handle"));
}

#[test]
fn serves_downloads_with_range_and_checks_the_hash() {
    let cdn = FakeCdn::start().unwrap();
    let (body, token) = body_of(16 * 10 + 10);
    let dp = cdn.put_object(&body, "image");
    let a = http(
        &cdn,
        "GET",
        &format!("{dp}&hash={token}&mms-type=image&__wa-mms="),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!((a.status, a.body.clone()), (200, body.clone()));
    let a = http(&cdn, "GET", &dp, &[("Range", "bytes=16-")], &[]).unwrap();
    assert_eq!(a.status, 206);
    assert_eq!(a.body, &body[16..]);
    assert!(a.headers.contains(&(
        "content-range".into(),
        format!("bytes 16-{}/{}", body.len() - 1, body.len())
    )));
    let a = http(&cdn, "GET", &dp, &[("Range", "bytes=9999-")], &[]).unwrap();
    assert_eq!(a.status, 416);
    let a = http(&cdn, "GET", &format!("{dp}&hash=AAAA"), &[], &[]).unwrap();
    assert_eq!(a.status, 404, "wrong hash");
    let a = http(&cdn, "GET", &format!("{dp}&mms-type=video"), &[], &[]).unwrap();
    assert_eq!(a.status, 404, "wrong mms-type");
}

#[test]
fn answers_resume_checks_and_offset_uploads() {
    let cdn = FakeCdn::start().unwrap();
    let (body, token) = body_of(16 * 100 + 10);
    let check = format!("{}&resume=1", upload_target(&cdn, &token));
    let a = http(&cdn, "POST", &check, &[], &[]).unwrap();
    assert_eq!(String::from_utf8_lossy(&a.body), r#"{"resume":0}"#);
    cdn.put_partial(&token, &body[..800]);
    let a = http(&cdn, "POST", &check, &[], &[]).unwrap();
    assert_eq!(String::from_utf8_lossy(&a.body), r#"{"resume":800}"#);
    let a = http(
        &cdn,
        "POST",
        &format!("{}&file_offset=800", upload_target(&cdn, &token)),
        &[],
        &body[800..],
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let a = http(&cdn, "POST", &check, &[], &[]).unwrap();
    assert!(String::from_utf8_lossy(&a.body).contains(r#""resume":"complete""#));
    let a = http(
        &cdn,
        "POST",
        &format!("{}&file_offset=5000", upload_target(&cdn, &token)),
        &[],
        &body[..10],
    )
    .unwrap();
    assert_eq!(a.status, 400, "an offset beyond what is stored");
}

#[test]
fn injects_scripted_faults_once_each() {
    let cdn = FakeCdn::start().unwrap();
    let (body, token) = body_of(16 * 3 + 10);
    let target = upload_target(&cdn, &token);
    cdn.push_fault(On::Upload, Fault::Status(429, Some(3)));
    let a = http(&cdn, "POST", &target, &[], &body).unwrap();
    assert_eq!(a.status, 429);
    assert!(a.headers.contains(&("retry-after".into(), "3".into())));
    cdn.push_fault(On::Upload, Fault::Drop);
    assert!(
        http(&cdn, "POST", &target, &[], &body).is_none(),
        "dropped without an answer"
    );
    cdn.push_fault(On::Upload, Fault::Garbage);
    let a = http(&cdn, "POST", &target, &[], &body).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&a.body).is_err());
    cdn.push_fault(On::Upload, Fault::NoUrl);
    let a = http(&cdn, "POST", &target, &[], &body).unwrap();
    assert_eq!(String::from_utf8_lossy(&a.body), r#"{"status":"ok"}"#);
    cdn.push_fault(On::Any, Fault::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(http(&cdn, "POST", &target, &[], &body).unwrap().status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300), "a slow answer");
    let dp = cdn.put_object(&body, "image");
    cdn.push_fault(On::Download, Fault::CutDownload(20));
    let a = http(&cdn, "GET", &dp, &[], &[]).unwrap();
    assert_eq!(a.body.len(), 20);
    cdn.push_fault(On::Download, Fault::Tamper);
    let a = http(&cdn, "GET", &dp, &[], &[]).unwrap();
    assert_ne!(a.body, body);
    assert_eq!(
        http(&cdn, "GET", &dp, &[], &[]).unwrap().body,
        body,
        "faults are used once"
    );
    let seen = cdn.seen();
    assert!(
        seen.iter().all(|s| !s.target.contains(&cdn.auth())),
        "auth is redacted in the log"
    );
}

#[test]
fn keeps_bodies_in_a_store_folder_and_stops_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cdn = FakeCdn::with_config(CdnConfig {
        store_dir: Some(dir.path().to_owned()),
        ..CdnConfig::default()
    })
    .unwrap();
    let (body, token) = body_of(26);
    assert_eq!(
        http(&cdn, "POST", &upload_target(&cdn, &token), &[], &body)
            .unwrap()
            .status,
        200
    );
    assert_eq!(std::fs::read(dir.path().join(&token)).unwrap(), body);
    let addr = cdn.addr();
    drop(cdn);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "the port is closed"
    );
}
