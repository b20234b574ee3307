//! The media connection (PROTOCOL §3): auth token, host list and their lifetimes.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A media connection as the WhatsApp session hands it out. `Debug` redacts `auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaConn {
    /// The upload/download auth token (opaque; URL-encoded in queries).
    pub auth: String,
    /// The connection (host list) is valid until `fetched_at + ttl`.
    pub ttl: Duration,
    /// The auth token is valid until `fetched_at + auth_ttl`, when given.
    pub auth_ttl: Option<Duration>,
    /// CDN hosts in order of preference: names (`mmg.whatsapp.net`, spoken to over
    /// https) or URLs with an explicit scheme (`http://127.0.0.1:8080`, for loopback tests).
    pub hosts: Vec<String>,
    /// When the connection was obtained.
    pub fetched_at: Instant,
}

impl fmt::Debug for MediaConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaConn")
            .field("auth", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("auth_ttl", &self.auth_ttl)
            .field("hosts", &self.hosts)
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

/// The JSON shape of a media connection, as the CLI's `--media-conn` file or command
/// gives it: `{"auth": "...", "ttl": 300, "auth_ttl": 300, "hosts": ["mmg.whatsapp.net"]}`.
/// Hosts may also be objects with a `hostname` field, as in the IQ reply.
#[derive(Debug, Deserialize)]
struct ConnJson {
    auth: String,
    ttl: u64,
    #[serde(default)]
    auth_ttl: Option<u64>,
    hosts: Vec<HostJson>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HostJson {
    Name(String),
    Object { hostname: String },
}

impl MediaConn {
    /// A connection valid for `ttl` from `fetched_at`.
    pub fn new(
        auth: impl Into<String>,
        hosts: Vec<String>,
        ttl: Duration,
        fetched_at: Instant,
    ) -> Self {
        MediaConn {
            auth: auth.into(),
            ttl,
            auth_ttl: None,
            hosts,
            fetched_at,
        }
    }

    /// Parses the JSON form (see the CLI reference), stamping it `fetched_at`.
    ///
    /// # Errors
    /// A message naming what is missing or malformed (never the token itself).
    pub fn from_json(json: &str, fetched_at: Instant) -> Result<Self, String> {
        let c: ConnJson =
            serde_json::from_str(json).map_err(|e| format!("media connection JSON: {e}"))?;
        Ok(MediaConn {
            auth: c.auth,
            ttl: Duration::from_secs(c.ttl),
            auth_ttl: c.auth_ttl.map(Duration::from_secs),
            hosts: c
                .hosts
                .into_iter()
                .map(|h| match h {
                    HostJson::Name(n) | HostJson::Object { hostname: n } => n,
                })
                .collect(),
            fetched_at,
        })
    }

    /// The earlier of the two expiries.
    pub fn expires_at(&self) -> Instant {
        let conn = self.fetched_at + self.ttl;
        match self.auth_ttl {
            Some(a) => conn.min(self.fetched_at + a),
            None => conn,
        }
    }

    /// True when either TTL has run out at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }
}

/// The base URL of a host: `https://{host}` for a bare name, the host itself when it
/// carries a scheme (`http://127.0.0.1:8080`), without a trailing slash.
pub fn host_base(host: &str) -> String {
    if host.contains("://") {
        host.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", host.trim_end_matches('/'))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_the_earlier_ttl() {
        let t0 = Instant::now();
        let mut c = MediaConn::new("a", vec!["h".into()], Duration::from_secs(300), t0);
        assert!(!c.is_expired(t0 + Duration::from_secs(299)));
        assert!(c.is_expired(t0 + Duration::from_secs(300)));
        c.auth_ttl = Some(Duration::from_secs(10));
        assert!(c.is_expired(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn json_forms_and_redaction() {
        let t0 = Instant::now();
        let c = MediaConn::from_json(
            r#"{"auth":"s3cr3t","ttl":300,"auth_ttl":60,"hosts":["a.net",{"hostname":"b.net"}],"max_buckets":12}"#,
            t0,
        )
        .unwrap();
        assert_eq!(c.hosts, ["a.net", "b.net"]);
        assert_eq!(c.auth_ttl, Some(Duration::from_secs(60)));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = MediaConn::from_json(r#"{"auth":"s3cr3t","hosts":[]}"#, t0).unwrap_err();
        assert!(e.contains("ttl") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn hosts_and_encoding() {
        assert_eq!(host_base("mmg.whatsapp.net"), "https://mmg.whatsapp.net");
        assert_eq!(host_base("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(url_encode("a+b/c=d e~"), "a%2Bb%2Fc%3Dd%20e~");
    }
}
