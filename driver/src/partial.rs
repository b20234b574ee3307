//! Partial files: a download's plaintext while it is unverified.

use std::io::{self, Read};

use wamedia::DownloadError;

use crate::Error;

/// The plaintext of a download to `target` while it is unverified:
/// `.<name>.wamedia-partial` beside it (mode 0600; a shortened name with a hash when
/// `<name>` is long), with `.<name>.wamedia-partial.id` naming which download it belongs
/// to. A run interrupted by a network failure, a cancellation or `kill -9` leaves it; the
/// next run of the **same** download resumes from it
/// ([`Download::feed_prefix`](wamedia::Download::feed_prefix): the MAC still covers the whole
/// body), and a run of another download to the same target replaces it. It is renamed to
/// `target` only after verification and removed after an integrity failure.
///
/// Other users of the folder are hostile: neither file is ever followed through a symbolic
/// link or adopted unless it is a regular file of ours with one link
/// ([`outfile::open_private`](crate::outfile::open_private)), and the partial file is
/// locked for the whole run, so a second run to the same target is refused instead of
/// truncating what the first is writing. A `target` that is a device or a FIFO is written
/// into directly (never replaced: [`Partial::is_direct`]); a `target` that is a symbolic
/// link is refused (resolve it first to write through it).
#[derive(Debug)]
pub struct Partial {
    path: std::path::PathBuf,
    id_path: Option<std::path::PathBuf>,
    target: std::path::PathBuf,
    file: std::fs::File,
}

impl Partial {
    /// Opens the partial file of `spec` beside `target`: resumable when an earlier run of
    /// the same download left one, otherwise empty (a stale one is replaced).
    ///
    /// # Errors
    /// The folder cannot be written; `target` names no file, is a folder or a symbolic
    /// link; another run is writing the same target ([`io::ErrorKind::WouldBlock`]).
    pub fn open(target: &std::path::Path, spec: &wamedia::DownloadSpec) -> io::Result<Partial> {
        use crate::outfile::{existing, hidden_name, open_private, try_lock, Existing};
        let refuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {why}", target.display()),
            )
        };
        match existing(target)? {
            Existing::Symlink => {
                return Err(refuse(
                    "is a symbolic link; give the file it points to (it is never followed)",
                ))
            }
            Existing::Directory => return Err(refuse("is a folder; give a file name")),
            Existing::Special => {
                // A device or FIFO: never replaced by a rename, written into directly.
                let mut o = std::fs::OpenOptions::new();
                o.write(true);
                let file = o.open(target)?;
                return Ok(Partial {
                    path: target.to_owned(),
                    id_path: None,
                    target: target.to_owned(),
                    file,
                });
            }
            Existing::Missing | Existing::Regular => {}
        }
        let name = target
            .file_name()
            .ok_or_else(|| refuse("names no file"))?
            .to_string_lossy()
            .into_owned();
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let path = dir.join(hidden_name(&name, ".wamedia-partial"));
        let id_path = dir.join(hidden_name(&name, ".wamedia-partial.id"));
        let (mut file, _) = open_private(&path)?;
        if !try_lock(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another run is writing {} (its partial file {} is locked): wait for it to end, or write elsewhere",
                    target.display(),
                    path.display()
                ),
            ));
        }
        // Ours alone from here on: the id may be read, and the file cut.
        let id = spec.resume_id();
        let (mut id_file, _) = open_private(&id_path)?;
        let mut held = String::new();
        let same = (&mut id_file)
            .take(256)
            .read_to_string(&mut held)
            .is_ok_and(|_| held.trim() == id);
        if !same {
            file.set_len(0)?;
            id_file.set_len(0)?;
            use std::io::{Seek as _, Write as _};
            id_file.seek(std::io::SeekFrom::Start(0))?;
            id_file.write_all(id.as_bytes())?;
        }
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok(Partial {
            path,
            id_path: Some(id_path),
            target: target.to_owned(),
            file,
        })
    }

    /// True when the target is a device or a FIFO written into directly: what it received
    /// is unverified until the download returns `Ok`, and nothing can be taken back.
    pub fn is_direct(&self) -> bool {
        self.id_path.is_none()
    }

    /// Feeds what the partial file holds to `download` and cuts the file to what the
    /// machine keeps; returns that length (0 for a fresh start).
    ///
    /// # Errors
    /// Reading the file, or a machine that already started.
    pub fn resume(&mut self, download: &mut wamedia::Download) -> Result<u64, Error> {
        use std::io::{Seek as _, SeekFrom};
        if self.is_direct() {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 1 << 20];
        // A partial that fails verification on the way (a window of its sidecar) ends
        // the machine: stop feeding, and let its outcome say why.
        while !wamedia::Machine::is_finished(download) {
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            download.feed_prefix(&buf[..n])?;
        }
        let kept = download.prefix_kept();
        self.file.set_len(kept)?;
        self.file.seek(SeekFrom::Start(kept))?;
        Ok(kept)
    }

    /// The file, positioned where the machine's plaintext continues.
    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Where the partial plaintext lives.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// After a verified download: flushes it to disk and renames it to the target.
    ///
    /// # Errors
    /// Syncing or renaming.
    pub fn publish(mut self) -> io::Result<()> {
        use crate::outfile::{existing, Existing};
        if self.is_direct() {
            return std::io::Write::flush(&mut self.file);
        }
        self.file.sync_all()?;
        // Never renamed over what is not a regular file (it may have changed meanwhile).
        match existing(&self.target)? {
            Existing::Missing | Existing::Regular => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is no longer a regular file: the verified download stays in {}",
                        self.target.display(),
                        self.path.display()
                    ),
                ))
            }
        }
        std::fs::rename(&self.path, &self.target)?;
        if let Some(id) = &self.id_path {
            let _ = std::fs::remove_file(id);
        }
        Ok(())
    }

    /// Ends a download that failed: an integrity failure removes the unverified
    /// plaintext; any other failure keeps it for the next run to resume.
    pub fn fail(self, error: &Error) {
        let integrity = matches!(error, Error::Download(d) if d.is_integrity());
        let refused = matches!(
            error,
            Error::Download(
                DownloadError::MediaGone { .. }
                    | DownloadError::MediaExpired { .. }
                    | DownloadError::MaliciousPath { .. }
                    | DownloadError::UntrustedUrl { .. }
                    | DownloadError::Unsupported(_)
                    | DownloadError::NothingToVerify
            )
        );
        if self.is_direct() {
            return;
        }
        let empty = self.file.metadata().map_or(true, |m| m.len() == 0);
        if integrity || refused || empty {
            let _ = std::fs::remove_file(&self.path);
            if let Some(id) = &self.id_path {
                let _ = std::fs::remove_file(id);
            }
        } else {
            let _ = self.file.sync_all();
        }
    }
}
