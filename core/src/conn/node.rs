//! The media connection as an embedding WhatsApp client hands it over: the IQ answer as a
//! decoded binary node, `{"tag", "attrs", "content"}` (PROTOCOL v3 §3).
//!
//! ```text
//! <iq type="result"><media_conn auth=".." ttl="300" auth_ttl="21600" max_buckets="12">
//!   <host hostname="media-fra5-1.cdn.whatsapp.net" type="primary" class="pop"
//!         fallback_hostname=".." ip4=".."><upload/><download><image/>…</download></host>
//!   <host hostname="mmg.whatsapp.net" type="primary"/>
//! </media_conn></iq>
//! ```
//!
//! Attribute values are strings (numbers are read too). A `<host>` without an `<upload>`
//! child takes every type; an empty `<upload/>` takes none.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{checked_host_name, Host, HostRole, MediaConn};

fn field<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name).or_else(|| {
        let mut cap = name.to_owned();
        cap[..1].make_ascii_uppercase();
        o.get(&cap)
    })
}

/// True when `v` has the shape of a binary node (an object with a string `tag`).
pub(super) fn is_node(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| field(o, "tag"))
        .is_some_and(Value::is_string)
}

struct Node<'a> {
    tag: &'a str,
    attrs: Vec<(&'a str, &'a Value)>,
    children: Vec<Node<'a>>,
}

fn bad(what: impl std::fmt::Display) -> String {
    format!("media connection (node): {what}")
}

impl<'a> Node<'a> {
    fn read(v: &'a Value, depth: u32) -> Result<Node<'a>, String> {
        // The media_conn tree is four levels deep; a deeper one is not a media connection.
        if depth > 8 {
            return Err(bad("nested too deeply"));
        }
        let o = v
            .as_object()
            .ok_or_else(|| bad("a node must be an object"))?;
        let tag = field(o, "tag")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a node without a string `tag`"))?;
        let attrs = match field(o, "attrs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(a)) => a.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            // whatsapp-rust's serde form: a list of `[name, value]` pairs.
            Some(Value::Array(pairs)) => pairs
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), v]) => Ok((k.as_str(), v)),
                    _ => Err(bad(format_args!(
                        "<{}>: an `attrs` pair must be [name, value]",
                        esc(tag)
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(bad(format_args!(
                    "<{}>: `attrs` must be an object or a list of pairs",
                    esc(tag)
                )))
            }
        };
        let list = match field(o, "content") {
            Some(Value::Array(a)) => Some(a),
            // whatsapp-rust's serde form: `{"Nodes": [...]}` (or text, bytes: no children).
            Some(Value::Object(c)) => match c.get("Nodes") {
                Some(Value::Array(a)) => Some(a),
                _ => None,
            },
            // Text or bytes content, or none: no children.
            _ => None,
        };
        let children = match list {
            Some(a) => a
                .iter()
                .filter(|c| c.is_object())
                .map(|c| Node::read(c, depth.saturating_add(1)))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Node {
            tag,
            attrs,
            children,
        })
    }

    fn attr(&self, name: &str) -> Result<Option<String>, String> {
        let value = self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            // whatsapp-rust's serde form of a text value: `{"String": "..."}`.
            Some(Value::Object(m))
                if m.len() == 1 && m.get("String").is_some_and(Value::is_string) =>
            {
                Ok(m.get("String").and_then(Value::as_str).map(str::to_owned))
            }
            Some(_) => Err(bad(format_args!(
                "<{}> attribute `{name}` must be a string",
                esc(self.tag)
            ))),
        }
    }

    fn child(&self, tag: &str) -> Option<&Node<'a>> {
        self.children.iter().find(|c| c.tag == tag)
    }

    fn names(&self, tag: &str) -> Option<Vec<String>> {
        self.child(tag)
            .map(|c| c.children.iter().map(|n| n.tag.to_owned()).collect())
    }
}

/// A tag or name shown in an error: at most 40 characters, control characters escaped.
fn esc(s: &str) -> String {
    crate::transfer::escape(&s.chars().take(40).collect::<String>())
}

fn seconds(n: &Node<'_>, name: &str) -> Result<Option<Duration>, String> {
    n.attr(name)?
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| bad(format_args!("`{name}` must be a whole number of seconds")))
        })
        .transpose()
}

/// Reads the `<iq>` answer (or its `<media_conn>` child) into a [`MediaConn`].
pub(super) fn media_conn(v: &Value, fetched_at: Instant) -> Result<MediaConn, String> {
    let root = Node::read(v, 0)?;
    let mc = if root.tag == "media_conn" {
        &root
    } else {
        root.child("media_conn").ok_or_else(|| {
            bad(format_args!(
                "<{}> has no <media_conn> child (an error answer?)",
                esc(root.tag)
            ))
        })?
    };
    let auth = match mc.attr("auth")? {
        Some(a) if !a.is_empty() => a,
        _ => return Err(bad("<media_conn> has no `auth`")),
    };
    let ttl = seconds(mc, "ttl")?.ok_or_else(|| bad("<media_conn> has no `ttl`"))?;
    let auth_ttl = seconds(mc, "auth_ttl")?;
    let max_buckets = mc
        .attr("max_buckets")?
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| bad("`max_buckets` must be a whole number"))
        })
        .transpose()?;
    let hosts = mc
        .children
        .iter()
        .filter(|c| c.tag == "host")
        .enumerate()
        .map(|(i, h)| {
            let at = |what: &str| bad(format_args!("host {i}: {what}"));
            let hostname = h
                .attr("hostname")?
                .as_deref()
                .and_then(checked_host_name)
                .ok_or_else(|| {
                    at("`hostname` must be a non-empty name without spaces or control characters")
                })?;
            let fallback_hostname = match h.attr("fallback_hostname")? {
                None => None,
                Some(f) => Some(
                    checked_host_name(&f)
                        .ok_or_else(|| at("`fallback_hostname` is not a host name"))?,
                ),
            };
            Ok(Host {
                hostname,
                // WhatsApp Web: `type === "fallback"` marks the fallback; any other is primary.
                role: h.attr("type")?.map(|t| match t.as_str() {
                    "fallback" => HostRole::Fallback,
                    _ => HostRole::Primary,
                }),
                fallback_hostname,
                upload: h.names("upload"),
                download: h.names("download"),
                class: h.attr("class")?,
                download_buckets: h.names("download_buckets"),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(MediaConn {
        auth,
        ttl,
        auth_ttl,
        hosts,
        max_buckets,
        fetched_at,
    })
}
