//! Files the command reads and writes: private files, atomic outputs, the checks made
//! before any work (a missing folder, a folder where a file goes, an output that is the
//! input), each error naming its path.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::Fail;

/// `cannot write PATH: ERROR`, exit 2.
pub fn cannot_write(path: &Path, e: impl std::fmt::Display) -> Fail {
    Fail::usage(format!("cannot write {}: {e}", path.display()))
}

/// `cannot read PATH: ERROR`, exit 2.
pub fn cannot_read(path: &Path, e: impl std::fmt::Display) -> Fail {
    Fail::usage(format!("cannot read {}: {e}", path.display()))
}

/// True when both paths name the same existing file (through links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        x.dev() == y.dev() && x.ino() == y.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (x, y);
        matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(p), Ok(q)) if p == q
        )
    }
}

/// Refuses an output that is one of the inputs: it would be truncated before being read.
pub fn refuse_same(out: &Path, inputs: &[&Path]) -> Result<(), Fail> {
    for i in inputs {
        if same_file(out, i) {
            return Err(Fail::usage(format!(
                "{} is also the input {}: write somewhere else",
                out.display(),
                i.display()
            )));
        }
    }
    Ok(())
}

/// Checks, before any work, that a file can be made at `path`: its folder exists and
/// `path` is not a folder.
pub fn check_writable(path: &Path) -> Result<(), Fail> {
    if path.is_dir() {
        return Err(cannot_write(path, "it is a folder: give a file name"));
    }
    let dir = parent(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(cannot_write(
            path,
            format!("{} is not a folder", dir.display()),
        )),
        Err(e) => Err(cannot_write(path, e)),
    }
}

/// The folder `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates (or empties) `path` readable by its owner only, in place: the `.bin` copy of
/// a recorded plaintext. A symbolic link or another user's file planted there is removed,
/// never followed or adopted ([`wamedia_driver::outfile::open_private`]).
pub fn private_file(path: &Path) -> Result<File, Fail> {
    let (f, _) = wamedia_driver::outfile::open_private(path).map_err(|e| cannot_write(path, e))?;
    f.set_len(0).map_err(|e| cannot_write(path, e))?;
    Ok(f)
}

/// Writes `data` to `path` as an [`Atomic`] output: cassettes and JSON hold the media
/// key, so the file is private, and it replaces only a regular file.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), Fail> {
    let mut out = Atomic::new(&path.to_string_lossy())?;
    out.file()
        .write_all(data)
        .map_err(|e| cannot_write(path, e))?;
    out.commit()
}

/// Opens `path` for reading (`-`: stdin); a folder is refused by name.
pub fn open_in(path: &str) -> Result<Box<dyn Read>, Fail> {
    if path == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let p = Path::new(path);
    let f = File::open(p).map_err(|e| cannot_read(p, e))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(cannot_read(p, "it is a folder"));
    }
    Ok(Box::new(f))
}

/// Writes an output without ever replacing what it is not: a new name or a regular file
/// gets a private temporary beside it (`.NAME.wamedia-tmp.XXXXXX`, locked while it is
/// written, so the next run to the same output removes one left by a killed run) renamed
/// over it only at [`Atomic::commit`]; a device or a FIFO (`/dev/null`, a named pipe) is
/// written into directly, never replaced (its bytes are unverified until the command exits
/// 0: [`Atomic::is_direct`]); a symbolic link is refused. Stdout gets a spool in the
/// temporary folder, copied out at commit. Dropping it discards the temporary.
pub struct Atomic {
    out: Out,
}

enum Out {
    Temp {
        tmp: tempfile::NamedTempFile,
        dest: Option<PathBuf>,
    },
    Direct {
        file: File,
        dest: PathBuf,
    },
}

/// Set by `--follow-symlinks`: an output that is a symbolic link is written through, to the
/// file it points to, instead of being refused.
pub static FOLLOW_SYMLINKS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `path`, or with `--follow-symlinks` the file a symbolic link at `path` points to (when it
/// resolves); a link is otherwise left for the caller to refuse.
pub fn resolve_out(path: &Path) -> PathBuf {
    let follow = FOLLOW_SYMLINKS.load(std::sync::atomic::Ordering::Relaxed);
    let is_link = matches!(
        wamedia_driver::outfile::existing(path),
        Ok(wamedia_driver::outfile::Existing::Symlink)
    );
    if follow && is_link {
        if let Ok(real) = std::fs::canonicalize(path) {
            return real;
        }
    }
    path.to_owned()
}

/// The recognisable prefix of temporaries for the file name `name`.
fn temp_prefix(name: &str) -> String {
    const RAND: &str = "XXXXXX";
    let full = wamedia_driver::outfile::hidden_name(name, &format!(".wamedia-tmp.{RAND}"));
    full[..full.len() - RAND.len()].to_owned()
}

/// Removes the temporaries with `prefix` in `dir` that a killed run left behind.
fn sweep(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten().take(10_000) {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            wamedia_driver::outfile::remove_if_stale(&e.path());
        }
    }
}

impl Atomic {
    /// An output for `path` (`-`: stdout, written only at [`Atomic::commit`]).
    pub fn new(path: &str) -> Result<Atomic, Fail> {
        use wamedia_driver::outfile::{existing, Existing};
        let dest = (path != "-").then(|| resolve_out(Path::new(path)));
        let (dir, prefix) = match &dest {
            Some(p) => {
                match existing(p).map_err(|e| cannot_write(p, e))? {
                    Existing::Symlink => {
                        return Err(cannot_write(
                            p,
                            "it is a symbolic link, never followed: give the file it points to, or --follow-symlinks",
                        ))
                    }
                    Existing::Special => {
                        let file = std::fs::OpenOptions::new()
                            .write(true)
                            .open(p)
                            .map_err(|e| cannot_write(p, e))?;
                        return Ok(Atomic {
                            out: Out::Direct {
                                file,
                                dest: p.clone(),
                            },
                        });
                    }
                    _ => {}
                }
                check_writable(p)?;
                let name = p
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                (parent(p).to_owned(), temp_prefix(&name))
            }
            None => (std::env::temp_dir(), ".wamedia-stdout.".to_owned()),
        };
        sweep(&dir, &prefix);
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(6)
            .tempfile_in(&dir)
            .map_err(|e| Fail::usage(format!("cannot write in {}: {e}", dir.display())))?;
        // Held until the temporary is renamed or removed: a later run can tell it from
        // one a killed run left.
        let _ = wamedia_driver::outfile::try_lock(tmp.as_file());
        Ok(Atomic {
            out: Out::Temp { tmp, dest },
        })
    }

    /// True when the output is a device or a FIFO written into directly.
    pub fn is_direct(&self) -> bool {
        matches!(self.out, Out::Direct { .. })
    }

    /// The temporary's path (for a program that writes the file itself); the output itself
    /// when it is written directly.
    pub fn path(&self) -> &Path {
        match &self.out {
            Out::Temp { tmp, .. } => tmp.path(),
            Out::Direct { dest, .. } => dest,
        }
    }

    /// Where the bytes go meanwhile.
    pub fn file(&mut self) -> &mut File {
        match &mut self.out {
            Out::Temp { tmp, .. } => tmp.as_file_mut(),
            Out::Direct { file, .. } => file,
        }
    }

    /// Publishes the file (renames it into place, or copies it to stdout).
    pub fn commit(self) -> Result<(), Fail> {
        use wamedia_driver::outfile::{existing, Existing};
        match self.out {
            Out::Direct { mut file, dest } => file.flush().map_err(|e| cannot_write(&dest, e)),
            Out::Temp { mut tmp, dest } => {
                let shown = dest.clone().unwrap_or_else(|| PathBuf::from("stdout"));
                tmp.as_file_mut()
                    .flush()
                    .map_err(|e| cannot_write(&shown, e))?;
                match dest {
                    Some(p) => {
                        // Renamed only over a regular file or a new name, whatever
                        // appeared there meanwhile.
                        match existing(&p).map_err(|e| cannot_write(&p, e))? {
                            Existing::Missing | Existing::Regular => {}
                            _ => {
                                return Err(cannot_write(
                                    &p,
                                    "it is no longer a regular file: nothing was replaced",
                                ))
                            }
                        }
                        tmp.persist(&p).map_err(|e| cannot_write(&p, e.error))?;
                    }
                    None => copy_to_stdout(tmp.path())?,
                }
                Ok(())
            }
        }
    }
}

/// Copies the file at `path` to stdout.
pub fn copy_to_stdout(path: &Path) -> Result<(), Fail> {
    let mut f = File::open(path).map_err(|e| cannot_read(path, e))?;
    let mut out = io::stdout().lock();
    io::copy(&mut f, &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| cannot_write(Path::new("stdout"), e))?;
    Ok(())
}
