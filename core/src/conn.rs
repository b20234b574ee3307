//! The media connection (PROTOCOL §3): auth token, hosts with their roles and the media
//! types they take, and their lifetimes; and the host choice of each upload attempt
//! (WhatsApp Web's `WAWebMmsClientSelectHost`).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::media_type::MediaType;

/// The role a media connection gives a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRole {
    /// `type="primary"`, or no type given.
    Primary,
    /// `type="fallback"`: tried on the last attempt.
    Fallback,
}

/// One CDN host of a media connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// A host name (`mmg.whatsapp.net`, spoken to over https), or a URL base with an
    /// explicit scheme (`http://127.0.0.1:8080`, for loopback tests).
    pub hostname: String,
    /// Its role; `None` when the connection gave no type.
    pub role: Option<HostRole>,
    /// The host to try when this one failed (`fallback_hostname`).
    pub fallback_hostname: Option<String>,
    /// The media types (`mms-type` names) it takes for upload; `None`: every type.
    pub upload: Option<Vec<String>>,
    /// The media types it serves for download; `None`: every type.
    pub download: Option<Vec<String>>,
}

impl Host {
    /// A host known only by its name: every type, no role.
    pub fn named(hostname: impl Into<String>) -> Self {
        Host {
            hostname: hostname.into(),
            role: None,
            fallback_hostname: None,
            upload: None,
            download: None,
        }
    }

    fn takes(list: &Option<Vec<String>>, media_type: &MediaType) -> bool {
        match (list, media_type.mms_type()) {
            (Some(l), Ok(t)) => l.iter().any(|x| x == t),
            // No list, or a type without an mms-type (product images): not filtered.
            _ => true,
        }
    }

    /// True when its upload list (if any) includes `media_type`.
    pub fn takes_upload(&self, media_type: &MediaType) -> bool {
        Self::takes(&self.upload, media_type)
    }

    /// True when its download list (if any) includes `media_type`.
    pub fn serves_download(&self, media_type: &MediaType) -> bool {
        Self::takes(&self.download, media_type)
    }
}

impl From<&str> for Host {
    fn from(s: &str) -> Self {
        Host::named(s)
    }
}

impl From<String> for Host {
    fn from(s: String) -> Self {
        Host::named(s)
    }
}

/// A media connection as the WhatsApp session hands it out. `Debug` redacts `auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaConn {
    /// The upload/download auth token (opaque; form-encoded in queries).
    pub auth: String,
    /// The connection (host list) is valid until `fetched_at + ttl`.
    pub ttl: Duration,
    /// The auth token is valid until `fetched_at + auth_ttl`, when given.
    pub auth_ttl: Option<Duration>,
    /// CDN hosts in the order given.
    pub hosts: Vec<Host>,
    /// `max_buckets`, kept as given.
    pub max_buckets: Option<u64>,
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
            .field("max_buckets", &self.max_buckets)
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

impl MediaConn {
    /// A connection to plain host names (every type, no roles), valid for `ttl` from
    /// `fetched_at`.
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
            hosts: hosts.into_iter().map(Host::named).collect(),
            max_buckets: None,
            fetched_at,
        }
    }

    /// Parses the JSON form, stamping it `fetched_at`:
    /// `{"auth": "...", "ttl": 300, "auth_ttl": 300, "max_buckets": 12, "hosts": [...]}`,
    /// each host a name or an object `{"hostname", "type": "primary"|"fallback",
    /// "fallback_hostname", "upload": [types], "download": [types]}` (the IQ reply's
    /// shape, `WAMediaConnParser`). Unknown fields are ignored.
    ///
    /// # Errors
    /// A message naming the field that is missing or malformed (never the token itself).
    pub fn from_json(json: &str, fetched_at: Instant) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| {
            format!(
                "media connection: not JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let obj = v
            .as_object()
            .ok_or("media connection: expected a JSON object with auth, ttl and hosts")?;
        let auth = match obj.get("auth") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err("media connection: `auth` must be a non-empty string".into()),
            None => return Err("media connection: `auth` is missing".into()),
        };
        let secs = |name: &str, required: bool| -> Result<Option<Duration>, String> {
            match obj.get(name) {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(|s| Some(Duration::from_secs(s)))
                    .ok_or_else(|| {
                        format!("media connection: `{name}` must be a whole number of seconds")
                    }),
                None | Some(Value::Null) if !required => Ok(None),
                None => Err(format!("media connection: `{name}` (seconds) is missing")),
                Some(_) => Err(format!(
                    "media connection: `{name}` must be a whole number of seconds"
                )),
            }
        };
        let ttl = secs("ttl", true)?.unwrap_or_default();
        let auth_ttl = secs("auth_ttl", false)?;
        let max_buckets = match obj.get("max_buckets") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("media connection: `max_buckets` must be a whole number")?,
            ),
        };
        let hosts = match obj.get("hosts") {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, h)| parse_host(i, h))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("media connection: `hosts` must be a list".into()),
            None => return Err("media connection: `hosts` is missing".into()),
        };
        Ok(MediaConn {
            auth,
            ttl,
            auth_ttl,
            hosts,
            max_buckets,
            fetched_at,
        })
    }

    /// The earlier of the two expiries; `None` when it lies beyond what the clock can
    /// represent (a huge TTL means "no expiry", never an overflow).
    pub fn expires_at(&self) -> Option<Instant> {
        let conn = self.fetched_at.checked_add(self.ttl);
        let auth = self.auth_ttl.and_then(|a| self.fetched_at.checked_add(a));
        match (conn, auth) {
            (Some(c), Some(a)) => Some(c.min(a)),
            (c, a) => c.or(a),
        }
    }

    /// True when either TTL has run out at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at().is_some_and(|t| now >= t)
    }

    /// The host uploads of `media_type` start on: the first primary (or untyped) host
    /// whose upload list allows the type.
    pub fn selected_upload_host(&self, media_type: &MediaType) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|h| h.role != Some(HostRole::Fallback) && h.takes_upload(media_type))
    }

    /// The fallback host for uploads of `media_type`: the first `type="fallback"` host that
    /// allows it; with no roles given at all, the second allowed host.
    pub fn fallback_upload_host(&self, media_type: &MediaType) -> Option<&Host> {
        let typed = self.hosts.iter().any(|h| h.role.is_some());
        if typed {
            self.hosts
                .iter()
                .find(|h| h.role == Some(HostRole::Fallback) && h.takes_upload(media_type))
        } else {
            self.hosts
                .iter()
                .filter(|h| h.takes_upload(media_type))
                .nth(1)
        }
    }

    /// The host of upload attempt `attempt` (counted from 0), PROTOCOL §3
    /// (`WAWebMmsClientSelectHost`): the same host again when the previous attempt moved
    /// bytes; the selected host on attempts 0 and 1; the fallback host on attempt 3; after
    /// a failure on the selected host, its `fallback_hostname`; else the fallback host, or
    /// the selected one. `None` when no host takes the type.
    pub fn upload_host(
        &self,
        media_type: &MediaType,
        attempt: u32,
        previous: Option<(&str, bool)>,
    ) -> Option<String> {
        if let Some((host, true)) = previous {
            return Some(host.to_owned());
        }
        let selected = self.selected_upload_host(media_type)?;
        let fallback = self.fallback_upload_host(media_type);
        if attempt <= 1 {
            return Some(selected.hostname.clone());
        }
        if let (3, Some(f)) = (attempt, fallback) {
            return Some(f.hostname.clone());
        }
        if let (Some((prev, _)), Some(fh)) = (previous, &selected.fallback_hostname) {
            if prev == selected.hostname {
                return Some(fh.clone());
            }
        }
        Some(fallback.unwrap_or(selected).hostname.clone())
    }

    /// The hosts a download of `media_type` tries, in order, each once per round: the
    /// hosts whose download list allows the type, each followed by its
    /// `fallback_hostname`, without repeats.
    pub fn download_hosts(&self, media_type: &MediaType) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |h: &str| {
            if !out.iter().any(|x| x == h) {
                out.push(h.to_owned());
            }
        };
        for h in self.hosts.iter().filter(|h| h.serves_download(media_type)) {
            push(&h.hostname);
            if let Some(f) = &h.fallback_hostname {
                push(f);
            }
        }
        out
    }

    /// True when `host` (a name or a URL base) is one of this connection's hosts or
    /// fallback hosts.
    pub fn knows_host(&self, host: &str) -> bool {
        self.hosts
            .iter()
            .any(|h| h.hostname == host || h.fallback_hostname.as_deref() == Some(host))
    }
}

fn parse_host(i: usize, v: &Value) -> Result<Host, String> {
    let bad = |what: &str| format!("media connection: hosts[{i}]: {what}");
    let checked = |s: &str| -> Result<String, String> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(bad(
                "a host name must be non-empty, without spaces or control characters",
            ))
        } else {
            Ok(s.to_owned())
        }
    };
    match v {
        Value::String(s) => Ok(Host::named(checked(s)?)),
        Value::Object(o) => {
            let hostname = match o.get("hostname") {
                Some(Value::String(s)) => checked(s)?,
                _ => return Err(bad("expected a name or an object with a `hostname` string")),
            };
            let role = match o.get("type") {
                None | Some(Value::Null) => None,
                // WhatsApp Web: `type === "fallback"` marks the fallback; any other is primary.
                Some(Value::String(t)) if t == "fallback" => Some(HostRole::Fallback),
                Some(Value::String(_)) => Some(HostRole::Primary),
                Some(_) => {
                    return Err(bad("`type` must be a string (\"primary\" or \"fallback\")"))
                }
            };
            let fallback_hostname = match o.get("fallback_hostname") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(checked(s)?),
                Some(_) => return Err(bad("`fallback_hostname` must be a string")),
            };
            let list = |name: &str| -> Result<Option<Vec<String>>, String> {
                match o.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| bad(&format!("`{name}` must list type names")))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some),
                    Some(_) => Err(bad(&format!("`{name}` must be a list of type names"))),
                }
            };
            Ok(Host {
                hostname,
                role,
                fallback_hostname,
                upload: list("upload")?,
                download: list("download")?,
            })
        }
        _ => Err(bad("expected a name or an object with a `hostname` string")),
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

/// Encodes a query value as `URLSearchParams` does (application/x-www-form-urlencoded):
/// ASCII letters, digits and `*-._` stay, a space becomes `+`, every other byte `%XX`.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
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
    fn a_huge_ttl_never_expires_and_never_overflows() {
        let t0 = Instant::now();
        let c = MediaConn::from_json(
            r#"{"auth":"a","ttl":18446744073709551615,"auth_ttl":18446744073709551615,"hosts":["h"]}"#,
            t0,
        )
        .unwrap();
        assert_eq!(c.expires_at(), None);
        assert!(!c.is_expired(t0 + Duration::from_secs(1 << 40)));
        let c = MediaConn::from_json(
            r#"{"auth":"a","ttl":18446744073709551615,"auth_ttl":60,"hosts":["h"]}"#,
            t0,
        )
        .unwrap();
        assert!(c.is_expired(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn json_forms_and_redaction() {
        let t0 = Instant::now();
        let c = MediaConn::from_json(
            r#"{"auth":"s3cr3t","ttl":300,"auth_ttl":60,"hosts":["a.net",{"hostname":"b.net"}],"max_buckets":12}"#,
            t0,
        )
        .unwrap();
        let names: Vec<&str> = c.hosts.iter().map(|h| h.hostname.as_str()).collect();
        assert_eq!(names, ["a.net", "b.net"]);
        assert_eq!(c.auth_ttl, Some(Duration::from_secs(60)));
        assert_eq!(c.max_buckets, Some(12));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = MediaConn::from_json(r#"{"auth":"s3cr3t","hosts":[]}"#, t0).unwrap_err();
        assert!(e.contains("ttl") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn typed_hosts_parse_with_roles_fallbacks_and_lists() {
        let c = MediaConn::from_json(
            r#"{"auth":"a","ttl":300,"hosts":[
                {"hostname":"p.net","type":"primary","fallback_hostname":"pf.net","upload":["image","video"],"download":["image"]},
                {"hostname":"f.net","type":"fallback"}]}"#,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(c.hosts[0].role, Some(HostRole::Primary));
        assert_eq!(c.hosts[0].fallback_hostname.as_deref(), Some("pf.net"));
        assert!(c.hosts[0].takes_upload(&MediaType::Image));
        assert!(!c.hosts[0].takes_upload(&MediaType::Ptt));
        assert!(!c.hosts[0].serves_download(&MediaType::Video));
        assert_eq!(c.hosts[1].role, Some(HostRole::Fallback));
    }

    #[test]
    fn malformed_connections_name_the_field_not_serde() {
        let t0 = Instant::now();
        for (json, want) in [
            ("nope", "not JSON"),
            ("[]", "JSON object"),
            (r#"{"ttl":1,"hosts":[]}"#, "`auth` is missing"),
            (r#"{"auth":"a","ttl":-1,"hosts":[]}"#, "`ttl`"),
            (
                r#"{"auth":"a","ttl":1,"hosts":"h"}"#,
                "`hosts` must be a list",
            ),
            (r#"{"auth":"a","ttl":1,"hosts":[7]}"#, "hosts[0]"),
            (r#"{"auth":"a","ttl":1,"hosts":[{"name":"x"}]}"#, "hostname"),
            (r#"{"auth":"a","ttl":1,"hosts":["a b"]}"#, "spaces"),
            (
                r#"{"auth":"a","ttl":1,"hosts":[{"hostname":"x","type":7}]}"#,
                "`type`",
            ),
        ] {
            let e = MediaConn::from_json(json, t0).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
            assert!(!e.contains("untagged") && !e.contains("HostJson"), "{e}");
        }
    }

    fn conn(json_hosts: &str) -> MediaConn {
        MediaConn::from_json(
            &format!(r#"{{"auth":"a","ttl":300,"hosts":{json_hosts}}}"#),
            Instant::now(),
        )
        .unwrap()
    }

    fn attempts(c: &MediaConn, t: &MediaType) -> Vec<String> {
        let mut prev: Option<String> = None;
        (0..4)
            .map(|n| {
                let h = c
                    .upload_host(t, n, prev.as_deref().map(|p| (p, false)))
                    .unwrap();
                prev = Some(h.clone());
                h
            })
            .collect()
    }

    #[test]
    fn host_choice_same_host_twice_then_its_fallback_then_the_fallback_host() {
        let c = conn(
            r#"[{"hostname":"p","type":"primary","fallback_hostname":"pf"},{"hostname":"f","type":"fallback"}]"#,
        );
        assert_eq!(attempts(&c, &MediaType::Image), ["p", "p", "pf", "f"]);
        // A plain list: the first name is selected, the second is the fallback.
        let c = conn(r#"["a","b","c"]"#);
        assert_eq!(attempts(&c, &MediaType::Image), ["a", "a", "b", "b"]);
        // Bytes moved: the same host again, whatever the attempt.
        assert_eq!(
            c.upload_host(&MediaType::Image, 3, Some(("a", true)))
                .unwrap(),
            "a"
        );
    }

    #[test]
    fn hosts_whose_lists_exclude_the_type_are_never_chosen() {
        let c = conn(
            r#"[{"hostname":"img","upload":["image"]},{"hostname":"any"},{"hostname":"f","type":"fallback","upload":["image"]}]"#,
        );
        assert_eq!(attempts(&c, &MediaType::Ptt), ["any", "any", "any", "any"]);
        assert_eq!(attempts(&c, &MediaType::Image), ["img", "img", "f", "f"]);
        let c = conn(r#"[{"hostname":"img","upload":["image"]}]"#);
        assert_eq!(c.upload_host(&MediaType::Video, 0, None), None);
        let c = conn(
            r#"[{"hostname":"a","download":["video"],"fallback_hostname":"a2"},{"hostname":"b"},{"hostname":"a2"}]"#,
        );
        assert_eq!(c.download_hosts(&MediaType::Image), ["b", "a2"]);
        assert_eq!(c.download_hosts(&MediaType::Video), ["a", "a2", "b"]);
    }

    #[test]
    fn hosts_and_encoding() {
        assert_eq!(host_base("mmg.whatsapp.net"), "https://mmg.whatsapp.net");
        assert_eq!(host_base("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(form_encode("a+b/c=d e~*"), "a%2Bb%2Fc%3Dd+e%7E*");
    }
}
