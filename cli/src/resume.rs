//! Resuming an interrupted upload across runs: the media key, its timestamp and the
//! `media_id` of an unfinished upload, kept until it succeeds in a small private file
//! under the user's cache folder (`$XDG_CACHE_HOME/wamedia/` or `~/.cache/wamedia/`,
//! folder 0700, file 0600). The file is named after the canonical path of the upload's
//! source and holds its size and modification time: a changed file starts afresh. It also
//! names the CDN it belongs to (the media connection option that was given): a run against
//! another CDN starts afresh. It is kept only after a failure that can resume (a cut body,
//! a network failure, a cancellation), and expires: state files older than
//! [`MAX_AGE`] go, and at most [`MAX_FILES`] are kept.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wamedia::{b64, MediaId, MediaKey, MediaType};
use wamedia_driver::PreparedUpload;

/// State files older than this are removed (the CDN keeps a partial body much less).
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// At most this many state files are kept (the newest).
pub const MAX_FILES: usize = 256;

/// Where the state of one file's upload lives, and what it must match.
pub struct State {
    path: PathBuf,
    source: String,
    size: u64,
    mtime_ns: u64,
    media_type: &'static str,
    cdn: String,
}

/// Which CDN an upload goes to, as the options name it: a digest of the media connection
/// option (the `--media-conn` file's canonical path, the `--media-conn-command`, or the
/// `--host`s), never the token.
pub fn cdn_id(net: &crate::Net) -> String {
    let what = if let Some(cmd) = &net.media_conn_command {
        format!("command\0{cmd}")
    } else if let Some(p) = &net.media_conn {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        format!("file\0{}", p.display())
    } else {
        format!("hosts\0{}", net.host.join("\0"))
    };
    let (digest, _) = wamedia::hash_reader(what.as_bytes()).unwrap_or(([0; 32], 0));
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// True when an upload that failed so may be resumed by running it again: the body was
/// cut or never got through (network failures, timeouts, server errors on every attempt,
/// a cancellation). A refusal (401/403 after renewal, 413, 415, a malformed answer, no
/// host, no media connection) is final: nothing is kept for it.
pub fn worth_keeping(e: &wamedia_driver::Error) -> bool {
    use wamedia::HostFailureReason as R;
    use wamedia_driver::Error;
    match e {
        Error::Cancelled => true,
        Error::Upload(wamedia::UploadError::AllHostsFailed { failures, .. }) => {
            failures.iter().any(|f| {
                matches!(
                    f.reason,
                    R::Transport(_)
                        | R::Timeout
                        | R::Status {
                            status: 500..=599,
                            ..
                        }
                )
            })
        }
        _ => false,
    }
}

/// Removes state files past [`MAX_AGE`], and the oldest beyond [`MAX_FILES`].
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for e in entries.flatten().take(100_000) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("upload-") && name.ends_with(".json")) {
            continue;
        }
        let Ok(m) = e.metadata() else { continue };
        let t = m.modified().unwrap_or(std::time::UNIX_EPOCH);
        if now.duration_since(t).is_ok_and(|age| age > MAX_AGE) {
            let _ = std::fs::remove_file(e.path());
        } else {
            kept.push((t, e.path()));
        }
    }
    if kept.len() > MAX_FILES {
        kept.sort();
        let excess = kept.len() - MAX_FILES;
        for (_, p) in kept.into_iter().take(excess) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What an interrupted upload left: reuse all three and the body is the same.
pub struct Saved {
    /// The key the body was encrypted under.
    pub media_key: MediaKey,
    /// When that key was made.
    pub media_key_timestamp: Option<i64>,
    /// The upload's `media_id`.
    pub media_id: MediaId,
}

/// `$XDG_CACHE_HOME/wamedia` (when absolute), else `$HOME/.cache/wamedia`.
pub fn cache_dir() -> Option<PathBuf> {
    let abs = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_CACHE_HOME")
        .and_then(abs)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(abs)
                .map(|h| h.join(".cache"))
        })?;
    Some(base.join("wamedia"))
}

impl State {
    /// The state for uploading `file` (opened from `path`) as `media_type`; `None` when
    /// there is no cache folder or the file has no modification time.
    pub fn for_file(
        path: &Path,
        file: &File,
        media_type: &MediaType,
        cdn: String,
    ) -> Option<State> {
        let dir = cache_dir()?;
        sweep(&dir);
        let meta = file.metadata().ok()?;
        let mtime = meta.modified().ok()?;
        let mtime_ns = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        let source = std::fs::canonicalize(path)
            .ok()?
            .to_string_lossy()
            .into_owned();
        let (digest, _) = wamedia::hash_reader(source.as_bytes()).ok()?;
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Some(State {
            path: dir.join(format!("upload-{name}.json")),
            source,
            size: meta.len(),
            mtime_ns: u64::try_from(mtime_ns).ok()?,
            media_type: media_type.name()?,
            cdn,
        })
    }

    /// Where the state file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The interrupted upload of this very file (same path, size, modification time and
    /// type), if one was left. Anything unreadable or not matching is ignored.
    pub fn load(&self) -> Option<Saved> {
        let mut text = String::new();
        File::open(&self.path)
            .ok()?
            .take(16 * 1024)
            .read_to_string(&mut text)
            .ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let same = v["source"].as_str() == Some(self.source.as_str())
            && v["size"].as_u64() == Some(self.size)
            && v["mtime_ns"].as_u64() == Some(self.mtime_ns)
            && v["media_type"].as_str() == Some(self.media_type)
            && v["cdn"].as_str() == Some(self.cdn.as_str());
        if !same {
            return None;
        }
        Some(Saved {
            media_key: v["media_key"].as_str()?.parse().ok()?,
            media_key_timestamp: v["media_key_timestamp"].as_i64(),
            media_id: MediaId::new(v["media_id"].as_u64()?)?,
        })
    }

    /// Remembers the key, timestamp and `media_id` of `prepared` (replacing any earlier
    /// state of the file), written whole or not at all.
    ///
    /// # Errors
    /// The folder or the file cannot be made; the message names the path.
    pub fn save(&self, prepared: &PreparedUpload) -> Result<(), String> {
        let Some(key) = &prepared.spec.media_key else {
            return Ok(());
        };
        let dir = crate::files::parent(&self.path);
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
        }
        let line = json!({
            "source": self.source,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "media_type": self.media_type,
            "cdn": self.cdn,
            "media_key": b64::std(key.as_bytes()),
            "media_key_timestamp": prepared.spec.media_key_timestamp,
            "media_id": prepared.spec.media_id.get(),
        });
        let cannot = |e: std::io::Error| format!("cannot write {}: {e}", self.path.display());
        // A temporary file is created 0600, then renamed into place.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cannot)?;
        std::io::Write::write_all(&mut tmp, line.to_string().as_bytes()).map_err(cannot)?;
        tmp.persist(&self.path).map_err(|e| cannot(e.error))?;
        Ok(())
    }

    /// Forgets the upload (it succeeded).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_expire_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("upload-old.json");
        std::fs::write(&old, b"{}").unwrap();
        let f = File::options().write(true).open(&old).unwrap();
        f.set_modified(std::time::SystemTime::now() - MAX_AGE - MAX_AGE)
            .unwrap();
        drop(f);
        let other = dir.path().join("not-a-state.txt");
        std::fs::write(&other, b"x").unwrap();
        for i in 0..MAX_FILES + 10 {
            std::fs::write(dir.path().join(format!("upload-{i:04}.json")), b"{}").unwrap();
        }
        sweep(dir.path());
        assert!(!old.exists(), "past MAX_AGE");
        assert!(other.exists(), "only state files are touched");
        let states = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("upload-")
            })
            .count();
        assert_eq!(states, MAX_FILES);
    }
}
