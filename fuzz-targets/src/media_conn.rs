//! The media connection target: `MediaConn::from_json` on arbitrary text, then every query
//! a machine makes of a connection.

use std::time::Duration;

use serde_json::Value;
use wamedia::{MediaConn, MediaType};

use crate::script::Clock;

/// See [`crate::media_conn`].
pub(crate) fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let clock = Clock::new();
    let t0 = clock.now;
    let parsed = MediaConn::from_json(&text, t0);
    // The same document with another token must give the same error, the same `Debug`:
    // nothing the parser says depends on (and so nothing shows) the token.
    if let Some((auth, other)) = with_other_auth(&text) {
        let again = MediaConn::from_json(&other, t0);
        match (&parsed, &again) {
            (Err(e1), Err(e2)) => assert_eq!(e1, e2, "the error depends on the auth token"),
            (Ok(c1), Ok(c2)) => {
                assert_eq!(c1.auth, auth);
                assert_eq!(
                    format!("{c1:?}"),
                    format!("{c2:?}"),
                    "Debug depends on the token"
                );
            }
            _ => panic!("another auth token changed whether the connection parses"),
        }
    }
    let Ok(c) = parsed else { return };
    assert!(!c.auth.is_empty());
    assert_eq!(c.fetched_at, t0);

    // Expiry: never before it was fetched, never overflowing, monotone in time.
    let expires = c.expires_at();
    if let Some(t) = expires {
        assert!(t >= t0);
        assert!(c.is_expired(t));
        if let Some(before) = t.checked_sub(Duration::from_nanos(1)).filter(|b| *b >= t0) {
            assert!(!c.is_expired(before));
        }
    }
    let mut far = clock;
    let mut was_expired = false;
    for by in [
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(300),
        Duration::from_secs(1 << 40),
        Duration::MAX,
    ] {
        far.jump(by);
        let expired = c.is_expired(far.now);
        assert!(
            expired || !was_expired,
            "a connection un-expired as time went on"
        );
        assert_eq!(expired, expires.is_some_and(|t| far.now >= t));
        was_expired = expired;
    }
    assert_eq!(c.is_expired(t0), expires == Some(t0));

    for t in MediaType::ALL {
        check_hosts(&c, t);
    }
    check_hosts(&c, &MediaType::raw("WhatsApp Fuzz Keys", "image"));
}

fn check_hosts(c: &MediaConn, t: &MediaType) {
    let mut prev: Option<String> = None;
    for attempt in [0, 1, 2, 3, 4, u32::MAX] {
        for moved in [false, true] {
            let p = prev.as_deref().map(|h| (h, moved));
            match c.upload_host(t, attempt, p) {
                Some(h) => {
                    if moved && prev.is_some() {
                        assert_eq!(Some(&h), prev.as_ref(), "bytes moved: the same host again");
                    } else {
                        assert!(
                            c.knows_host(&h),
                            "upload_host chose {h:?}, not a host of the connection"
                        );
                    }
                    if !moved {
                        prev = Some(h);
                    }
                }
                None => assert!(c.selected_upload_host(t).is_none()),
            }
        }
    }
    if let Some(h) = c.selected_upload_host(t) {
        assert!(h.takes_upload(t));
        assert_ne!(h.role, Some(wamedia::HostRole::Fallback));
    }
    if let Some(h) = c.fallback_upload_host(t) {
        assert!(h.takes_upload(t));
    }
    let hosts = c.download_hosts(t);
    for (i, h) in hosts.iter().enumerate() {
        assert!(
            c.knows_host(h),
            "download_hosts gave {h:?}, not a host of the connection"
        );
        assert!(!hosts[..i].contains(h), "download_hosts repeats {h:?}");
    }
    for h in &c.hosts {
        if h.serves_download(t) {
            assert!(hosts.contains(&h.hostname));
        }
    }
}

/// The token of a JSON object with a non-empty string `auth`, and the document with
/// another token in its place.
fn with_other_auth(text: &str) -> Option<(String, String)> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object_mut()?;
    let auth = obj
        .get("auth")?
        .as_str()
        .filter(|a| !a.is_empty())?
        .to_owned();
    let other = if auth == "X" { "Y" } else { "X" };
    obj.insert("auth".into(), Value::String(other.into()));
    Some((auth, v.to_string()))
}
