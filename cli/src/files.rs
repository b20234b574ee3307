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

/// Creates (or truncates) `path` readable by its owner only: cassettes and JSON hold
/// the media key, `.bin` files the plaintext.
pub fn private_file(path: &Path) -> Result<File, Fail> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path).map_err(|e| cannot_write(path, e))?;
    // An existing file keeps its mode through `open`: tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Fail::usage(format!("cannot restrict {}: {e}", path.display())))?;
    }
    Ok(f)
}

/// Writes `data` into the private file `path`.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), Fail> {
    private_file(path)?
        .write_all(data)
        .map_err(|e| cannot_write(path, e))
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

/// Writes to a temporary file beside `path` (or a spool for stdout) and publishes it
/// only when [`Atomic::commit`] is called; dropping it discards everything.
pub struct Atomic {
    tmp: tempfile::NamedTempFile,
    dest: Option<PathBuf>,
}

impl Atomic {
    /// An output for `path` (`-`: stdout, written only at [`Atomic::commit`]).
    pub fn new(path: &str) -> Result<Atomic, Fail> {
        let dest = (path != "-").then(|| PathBuf::from(path));
        let dir = match &dest {
            Some(p) => {
                check_writable(p)?;
                parent(p).to_owned()
            }
            None => std::env::temp_dir(),
        };
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| Fail::usage(format!("cannot write in {}: {e}", dir.display())))?;
        Ok(Atomic { tmp, dest })
    }

    /// The temporary's path (for a program that writes the file itself).
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where the bytes go meanwhile.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Publishes the file (renames it into place, or copies it to stdout).
    pub fn commit(mut self) -> Result<(), Fail> {
        let shown = self.dest.clone().unwrap_or_else(|| PathBuf::from("stdout"));
        self.tmp
            .as_file_mut()
            .flush()
            .map_err(|e| cannot_write(&shown, e))?;
        match self.dest {
            Some(p) => {
                self.tmp
                    .persist(&p)
                    .map_err(|e| cannot_write(&p, e.error))?;
            }
            None => copy_to_stdout(self.tmp.path())?,
        }
        Ok(())
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
