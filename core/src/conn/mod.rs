//! The media connection (PROTOCOL §3): auth token, hosts with their roles and the media
//! types they take, and their lifetimes; and the host choice of each upload attempt
//! (WhatsApp Web's `WAWebMmsClientSelectHost`).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::media_type::MediaType;

mod node;

/// The role a media connection gives a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The media type names (`image`, `ptt`, `newsletter-image`, …) it takes for upload;
    /// `None`: not said (every type, capability unknown); an empty list: no type (a
    /// download-only "pop" host, PROTOCOL v3 §3).
    pub upload: Option<Vec<String>>,
    /// The media type names it serves for download; `None`: every type; empty: none.
    pub download: Option<Vec<String>>,
    /// Its `class` (`pop`, …), kept as given.
    pub class: Option<String>,
    /// Its `download_buckets`, kept as given.
    pub download_buckets: Option<Vec<String>>,
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
            class: None,
            download_buckets: None,
        }
    }

    /// Whether `list` allows the type `name`. No list: every type. An empty list: none,
    /// whatever the type. A type without a name (product images) passes a non-empty list.
    /// A video note (`ptv`) goes up on the video path, so a list naming `video` takes it.
    fn takes(list: &Option<Vec<String>>, name: Option<&str>) -> bool {
        match (list, name) {
            (None, _) => true,
            (Some(l), _) if l.is_empty() => false,
            (Some(_), None) => true,
            (Some(l), Some(t)) => l.iter().any(|x| x == t || (t == "ptv" && x == "video")),
        }
    }

    /// True when its upload list (if any) includes `media_type` (ordinary, not channel,
    /// media).
    pub fn takes_upload(&self, media_type: &MediaType) -> bool {
        Self::takes(&self.upload, media_type.mms_type().ok())
    }

    /// True when its upload list (if any) includes the type name `name` (see
    /// [`MediaType::host_type_name`]).
    pub fn takes_upload_name(&self, name: &str) -> bool {
        Self::takes(&self.upload, Some(name))
    }

    /// True when its download list (if any) includes `media_type` (ordinary media).
    pub fn serves_download(&self, media_type: &MediaType) -> bool {
        Self::takes(&self.download, media_type.mms_type().ok())
    }

    /// True when its download list (if any) includes the type name `name`.
    pub fn serves_download_name(&self, name: &str) -> bool {
        Self::takes(&self.download, Some(name))
    }

    /// True when the connection said nothing of what it takes for upload (a plain name,
    /// or a host without an `<upload>` child): a 415 from it may mean "no uploads here".
    pub fn upload_capability_unknown(&self) -> bool {
        self.upload.is_none()
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

    /// Parses a media connection, stamping it `fetched_at`, in either form:
    ///
    /// - wamedia's JSON: `{"auth": "...", "ttl": 300, "auth_ttl": 300, "max_buckets": 12,
    ///   "hosts": [...]}`, each host a name or an object `{"hostname", "type":
    ///   "primary"|"fallback", "class", "fallback_hostname", "upload": [types], "download":
    ///   [types], "download_buckets": [..]}` (`WAMediaConnParser`);
    /// - the IQ answer as an embedding client hands it over: a decoded binary node
    ///   `{"tag", "attrs", "content"}` (whatsmeow's and Baileys' shape; `Tag`/`Attrs`/
    ///   `Content` also read; and whatsapp-rust's serde form of its `Node`, `attrs` a list
    ///   of `[name, {"String": value}]` pairs and `content` `{"Nodes": [...]}`), the `<iq>`
    ///   or its `<media_conn>` child, attribute values strings. Each `<host>` may have `<upload>`, `<download>`
    ///   and `<download_buckets>` children whose children's tags name media types: no
    ///   child = every type, an empty child = no type (PROTOCOL v3 §3).
    ///
    /// Unknown fields are ignored.
    ///
    /// ```
    /// # use std::time::Instant;
    /// let node = r#"{"tag":"iq","attrs":{"type":"result"},"content":[
    ///   {"tag":"media_conn","attrs":{"auth":"tok","ttl":"300","auth_ttl":"21600","max_buckets":"12"},
    ///    "content":[
    ///     {"tag":"host","attrs":{"hostname":"media-fra5-1.cdn.whatsapp.net","type":"primary","class":"pop"},
    ///      "content":[{"tag":"upload","content":[]},{"tag":"download","content":[{"tag":"image"}]}]},
    ///     {"tag":"host","attrs":{"hostname":"mmg.whatsapp.net","type":"primary"}}]}]}"#;
    /// let c = wamedia::MediaConn::from_json(node, Instant::now()).unwrap();
    /// // The pop host serves downloads only: uploads start on mmg.
    /// assert_eq!(c.upload_host(&wamedia::MediaType::Image, 0, None).unwrap(), "mmg.whatsapp.net");
    /// ```
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
        if node::is_node(&v) {
            return node::media_conn(&v, fetched_at);
        }
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
        self.selected_named(media_type.mms_type().ok(), &[])
    }

    /// The fallback host for uploads of `media_type`: the first `type="fallback"` host that
    /// allows it; with no roles given at all, the second allowed host.
    pub fn fallback_upload_host(&self, media_type: &MediaType) -> Option<&Host> {
        self.fallback_named(media_type.mms_type().ok(), &[])
    }

    fn selected_named(&self, name: Option<&str>, skip: &[String]) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|h| h.role != Some(HostRole::Fallback) && allows(h, name, skip))
    }

    fn fallback_named(&self, name: Option<&str>, skip: &[String]) -> Option<&Host> {
        if self.hosts.iter().any(|h| h.role.is_some()) {
            self.hosts
                .iter()
                .find(|h| h.role == Some(HostRole::Fallback) && allows(h, name, skip))
        } else {
            self.hosts.iter().filter(|h| allows(h, name, skip)).nth(1)
        }
    }

    /// The host of upload attempt `attempt` (counted from 0) of ordinary (not channel)
    /// media: [`upload_host_named`](Self::upload_host_named) with the type's `mms-type`
    /// and no host skipped.
    pub fn upload_host(
        &self,
        media_type: &MediaType,
        attempt: u32,
        previous: Option<(&str, bool)>,
    ) -> Option<String> {
        self.upload_host_named(media_type.mms_type().ok(), attempt, previous, &[])
    }

    /// The host of upload attempt `attempt` (counted from 0) for the type name `name`
    /// ([`MediaType::host_type_name`]; `None` filters by nothing but empty lists),
    /// PROTOCOL v3 §3 (`WAWebMmsClientSelectHost`). `previous` is the previous attempt's
    /// host and whether it stays pinned: `true` only when that attempt was cut mid-body
    /// and the next one may resume it; an attempt that got an HTTP answer never pins its
    /// host. Then: the selected host on attempts 0 and 1; the fallback host on attempt 3;
    /// after a failure on the selected host, its `fallback_hostname`; else the fallback
    /// host, or the selected one. Hosts named in `skip` (they answered that they take no
    /// uploads) are never chosen, nor is a host whose upload list excludes the type.
    /// `None` when no host is left.
    pub fn upload_host_named(
        &self,
        name: Option<&str>,
        attempt: u32,
        previous: Option<(&str, bool)>,
        skip: &[String],
    ) -> Option<String> {
        if let Some((host, true)) = previous {
            return Some(host.to_owned());
        }
        let selected = self.selected_named(name, skip)?;
        let fallback = self.fallback_named(name, skip);
        if attempt <= 1 {
            return Some(selected.hostname.clone());
        }
        if let (3, Some(f)) = (attempt, fallback) {
            return Some(f.hostname.clone());
        }
        if let (Some((prev, _)), Some(fh)) = (previous, &selected.fallback_hostname) {
            if prev == selected.hostname && !skip.iter().any(|s| s == fh) {
                return Some(fh.clone());
            }
        }
        Some(fallback.unwrap_or(selected).hostname.clone())
    }

    /// The hosts a download of ordinary `media_type` tries, in order:
    /// [`download_hosts_named`](Self::download_hosts_named) with its `mms-type`.
    pub fn download_hosts(&self, media_type: &MediaType) -> Vec<String> {
        self.download_hosts_named(media_type.mms_type().ok())
    }

    /// The hosts a download of the type name `name` tries, in order, each once per
    /// round: the hosts whose download list allows the type, each followed by its
    /// `fallback_hostname`, without repeats.
    pub fn download_hosts_named(&self, name: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |h: &str| {
            if !out.iter().any(|x| x == h) {
                out.push(h.to_owned());
            }
        };
        for h in self.hosts.iter().filter(|h| Host::takes(&h.download, name)) {
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

/// True when `h` takes uploads of the type `name` and is not in `skip`.
fn allows(h: &Host, name: Option<&str>, skip: &[String]) -> bool {
    Host::takes(&h.upload, name) && !skip.contains(&h.hostname)
}

/// A host name as given, when it is non-empty and has no spaces or control characters.
fn checked_host_name(s: &str) -> Option<String> {
    (!s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())).then(|| s.to_owned())
}

fn parse_host(i: usize, v: &Value) -> Result<Host, String> {
    let bad = |what: &str| format!("media connection: hosts[{i}]: {what}");
    let checked = |s: &str| -> Result<String, String> {
        checked_host_name(s).ok_or_else(|| {
            bad("a host name must be non-empty, without spaces or control characters")
        })
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
            let class = match o.get("class") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad("`class` must be a string")),
            };
            Ok(Host {
                hostname,
                role,
                fallback_hostname,
                upload: list("upload")?,
                download: list("download")?,
                class,
                download_buckets: list("download_buckets")?,
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
    #[test]
    fn whatsapp_rusts_serde_form_of_a_node_is_read() {
        // As serde writes whatsapp-rust's `Node` (oxidezap/whatsapp-rust 1489b7da,
        // wacore-binary node.rs: `Attrs` a Vec of pairs, `NodeValue` and `NodeContent`
        // externally tagged enums).
        let node = r#"{"tag":"iq","attrs":[["type",{"String":"result"}]],"content":{"Nodes":[
          {"tag":"media_conn","attrs":[["auth",{"String":"tok"}],["ttl",{"String":"300"}]],
           "content":{"Nodes":[
             {"tag":"host","attrs":[["hostname",{"String":"pop.example"}],["class",{"String":"pop"}]],
              "content":{"Nodes":[{"tag":"upload","attrs":[],"content":{"Nodes":[]}}]}},
             {"tag":"host","attrs":[["hostname",{"String":"mmg.whatsapp.net"}]],"content":null}]}}]}}"#;
        let c = super::MediaConn::from_json(node, std::time::Instant::now()).unwrap();
        assert_eq!(c.auth, "tok");
        assert_eq!(c.ttl, std::time::Duration::from_secs(300));
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(
            c.upload_host(&crate::MediaType::Image, 0, None).unwrap(),
            "mmg.whatsapp.net"
        );
        let bad = r#"{"tag":"media_conn","attrs":[["auth"]]}"#;
        let e = super::MediaConn::from_json(bad, std::time::Instant::now()).unwrap_err();
        assert!(e.contains("[name, value]"), "{e}");
    }

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
        // Pinned (cut mid-body, resumable): the same host again, whatever the attempt.
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

    const NODE: &str = r#"{"tag":"iq","attrs":{"type":"result","id":"1"},"content":[
      {"tag":"media_conn","attrs":{"auth":"s3cr3t","ttl":"300","auth_ttl":"21600","max_buckets":"12"},"content":[
        {"tag":"host","attrs":{"hostname":"media-fra5-1.cdn.whatsapp.net","type":"primary","class":"pop","fallback_hostname":"mmg.whatsapp.net","ip4":"1.2.3.4"},
         "content":[{"tag":"upload","content":[]},{"tag":"download","content":[{"tag":"image"},{"tag":"video"}]},
                    {"tag":"download_buckets","content":[{"tag":"0"}]}]},
        {"tag":"host","attrs":{"hostname":"mmg.whatsapp.net","type":"primary"},"content":null},
        {"tag":"host","attrs":{"hostname":"mmg-fb.whatsapp.net","type":"fallback"},
         "content":[{"tag":"upload","content":[{"tag":"image"},{"tag":"newsletter-image"}]}]}]}]}"#;

    #[test]
    fn the_iq_node_reads_as_the_client_hands_it_over() {
        let t0 = Instant::now();
        let c = MediaConn::from_json(NODE, t0).unwrap();
        assert_eq!(c.ttl, Duration::from_secs(300));
        assert_eq!(c.auth_ttl, Some(Duration::from_secs(21600)));
        assert_eq!(c.max_buckets, Some(12));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let pop = &c.hosts[0];
        assert_eq!(pop.class.as_deref(), Some("pop"));
        assert_eq!(pop.role, Some(HostRole::Primary));
        assert_eq!(pop.upload, Some(vec![]), "an empty child: no type");
        assert_eq!(pop.download_buckets, Some(vec!["0".to_owned()]));
        assert!(!pop.takes_upload(&MediaType::Image));
        assert!(!pop.takes_upload(&MediaType::ProductCatalogImage));
        assert!(pop.serves_download(&MediaType::Image));
        assert!(!pop.serves_download(&MediaType::Ptt));
        assert_eq!(c.hosts[1].upload, None, "no child: every type");
        assert!(c.hosts[1].upload_capability_unknown());
        // A pop host never gets an upload, on any attempt.
        let all = attempts(&c, &MediaType::Image);
        assert_eq!(
            all,
            [
                "mmg.whatsapp.net",
                "mmg.whatsapp.net",
                "mmg-fb.whatsapp.net",
                "mmg-fb.whatsapp.net"
            ]
        );
        assert_eq!(
            c.download_hosts(&MediaType::Image),
            [
                "media-fra5-1.cdn.whatsapp.net",
                "mmg.whatsapp.net",
                "mmg-fb.whatsapp.net"
            ]
        );
        assert_eq!(
            c.download_hosts(&MediaType::Ptt),
            ["mmg.whatsapp.net", "mmg-fb.whatsapp.net"]
        );
        // Channel media: the newsletter name filters hosts.
        assert_eq!(
            c.upload_host_named(Some("newsletter-image"), 3, None, &[]),
            Some("mmg-fb.whatsapp.net".into())
        );
        // The <media_conn> node alone, Go-style capitalised keys, and numbers read too.
        let inner = r#"{"Tag":"media_conn","Attrs":{"auth":"a","ttl":60},"Content":[{"Tag":"host","Attrs":{"hostname":"h"}}]}"#;
        let c = MediaConn::from_json(inner, t0).unwrap();
        assert_eq!(c.hosts, vec![Host::named("h")]);
        assert_eq!(c.ttl, Duration::from_secs(60));
    }

    #[test]
    fn a_malformed_node_names_what_is_wrong_never_the_token() {
        let t0 = Instant::now();
        let deep = format!(
            r#"{}{{"tag":"x"}}{}"#,
            r#"{"tag":"iq","content":["#.repeat(20),
            "]}".repeat(20)
        );
        for (json, want) in [
            (
                r#"{"tag":"iq","attrs":{"type":"error"},"content":[{"tag":"error","attrs":{"code":"401"}}]}"#,
                "no <media_conn>",
            ),
            (r#"{"tag":"media_conn","attrs":{"ttl":"1"}}"#, "`auth`"),
            (r#"{"tag":"media_conn","attrs":{"auth":"s3cr3t"}}"#, "`ttl`"),
            (
                r#"{"tag":"media_conn","attrs":{"auth":"s3cr3t","ttl":"-1"}}"#,
                "`ttl`",
            ),
            (
                r#"{"tag":"media_conn","attrs":{"auth":"s3cr3t","ttl":"1","max_buckets":"x"}}"#,
                "max_buckets",
            ),
            (
                r#"{"tag":"media_conn","attrs":{"auth":"s3cr3t","ttl":"1"},"content":[{"tag":"host","attrs":{"hostname":"a b"}}]}"#,
                "host 0",
            ),
            (
                r#"{"tag":"media_conn","attrs":{"auth":"s3cr3t","ttl":"1"},"content":[{"tag":"host"}]}"#,
                "`hostname`",
            ),
            (
                r#"{"tag":"media_conn","attrs":{"auth":["s3cr3t"],"ttl":"1"}}"#,
                "`auth` must be a string",
            ),
            (r#"{"tag":"media_conn","attrs":7}"#, "`attrs`"),
            (&deep, "too deeply"),
        ] {
            let e = MediaConn::from_json(json, t0).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn hosts_and_encoding() {
        assert_eq!(host_base("mmg.whatsapp.net"), "https://mmg.whatsapp.net");
        assert_eq!(host_base("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(form_encode("a+b/c=d e~*"), "a%2Bb%2Fc%3Dd+e%7E*");
    }
}
