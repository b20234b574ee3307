//! Files a driver writes beside an output path, where other users of the same folder may
//! have planted something (PROTOCOL-independent driver hygiene): what is at a path
//! before it is written, private files that never follow a symbolic link and never adopt
//! another user's file, an advisory lock that keeps two runs off one file, and names that
//! fit the file system's limit whatever the output's name.

use std::fs::File;
use std::io;
use std::path::Path;

/// What is at an output path before anything is written there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Existing {
    /// Nothing: a new file will be made.
    Missing,
    /// A regular file: replaced by a rename once the new content is complete.
    Regular,
    /// A symbolic link: never followed unless the caller resolves it first.
    Symlink,
    /// A folder.
    Directory,
    /// A character or block device, a FIFO or a socket: written into directly, never
    /// replaced.
    Special,
}

/// What is at `path`, without following a symbolic link.
///
/// # Errors
/// A failure to look other than "nothing there".
pub fn existing(path: &Path) -> io::Result<Existing> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            Ok(if t.is_symlink() {
                Existing::Symlink
            } else if t.is_dir() {
                Existing::Directory
            } else if t.is_file() {
                Existing::Regular
            } else {
                Existing::Special
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Missing),
        Err(e) => Err(e),
    }
}

/// The longest file name (in bytes) the names made here may have: Linux's `NAME_MAX`.
pub const NAME_MAX: usize = 255;

/// `.{name}{suffix}`, shortened to fit [`NAME_MAX`] when `name` is long: then the first
/// bytes of `name` (cut on a character boundary), a dash and 16 hex digits of the
/// SHA-256 of the whole name, so that different long names keep different files.
pub fn hidden_name(name: &str, suffix: &str) -> String {
    let full = format!(".{name}{suffix}");
    if full.len() <= NAME_MAX {
        return full;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    // "." + prefix + "-" + 16 hex + suffix
    let fixed = tag.len().saturating_add(suffix.len()).saturating_add(2);
    let room = NAME_MAX.saturating_sub(fixed);
    let cut = (0..=room.min(name.len()))
        .rev()
        .find(|&i| name.is_char_boundary(i))
        .unwrap_or(0);
    format!(".{}-{tag}{suffix}", &name[..cut])
}

/// Opens `path` for reading and writing as a file of ours that nobody else can read:
/// an existing **regular file owned by this user with one link** is taken (made 0600) and
/// `true` returned with it; anything else there (a symbolic link, another user's file, a
/// hard-linked file, a device) is unlinked (the link itself, never its target) and a new
/// file is made with `O_EXCL`, mode 0600 (`false`). A symbolic link is never followed.
///
/// # Errors
/// The folder cannot be written, or what is there cannot be removed (another user's file
/// in a sticky folder: the error names the path).
pub fn open_private(path: &Path) -> io::Result<(File, bool)> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true);
    nofollow(&mut o);
    match o.open(path) {
        Ok(f) => {
            if is_ours(&f)? {
                restrict(&f)?;
                return Ok((f, true));
            }
            drop(f);
            remove_planted(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // A symbolic link (ELOOP under O_NOFOLLOW), or something that will not open:
        // it is not ours to use; remove the link itself.
        Err(_) if existing(path)? != Existing::Missing => remove_planted(path)?,
        Err(e) => return Err(e),
    }
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create_new(true);
    nofollow(&mut o);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    restrict(&f)?;
    Ok((f, false))
}

fn remove_planted(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{} is not a private file of ours and cannot be removed: {e}",
                path.display()
            ),
        )
    })
}

#[cfg(unix)]
fn nofollow(o: &mut std::fs::OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt as _;
    o.custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32);
}

#[cfg(not(unix))]
fn nofollow(_: &mut std::fs::OpenOptions) {}

#[cfg(unix)]
fn is_ours(f: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let m = f.metadata()?;
    Ok(m.file_type().is_file() && m.uid() == rustix::process::geteuid().as_raw() && m.nlink() == 1)
}

#[cfg(not(unix))]
fn is_ours(f: &File) -> io::Result<bool> {
    Ok(f.metadata()?.file_type().is_file())
}

#[cfg(unix)]
fn restrict(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &File) -> io::Result<()> {
    Ok(())
}

/// True when `path` itself (not what a link points to) is a folder owned by this user.
pub fn is_own_dir(path: &Path) -> bool {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        m.is_dir() && m.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        m.is_dir()
    }
}

/// Removes `path` when it is a stale temporary of ours: a regular file owned by this user
/// with one link that no running process holds locked (its writer died). Returns whether
/// it was removed; anything else is left alone.
pub fn remove_if_stale(path: &Path) -> bool {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    nofollow(&mut o);
    let Ok(f) = o.open(path) else {
        return false;
    };
    if !is_ours(&f).unwrap_or(false) || !try_lock(&f).unwrap_or(false) {
        return false;
    }
    std::fs::remove_file(path).is_ok()
}

/// Takes an exclusive advisory lock on `f` without waiting (`flock`): `Ok(false)` when
/// another open file (another run) holds it. The lock lasts until `f` is closed.
///
/// # Errors
/// A failure other than "held elsewhere".
#[cfg(unix)]
pub fn try_lock(f: &File) -> io::Result<bool> {
    match rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Takes an exclusive advisory lock on `f` without waiting: always granted where the
/// platform has no `flock`.
///
/// # Errors
/// None here.
#[cfg(not(unix))]
pub fn try_lock(_: &File) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_to_fit_and_stay_distinct() {
        let short = hidden_name("photo.jpg", ".wamedia-partial");
        assert_eq!(short, ".photo.jpg.wamedia-partial");
        let a = "é".repeat(120) + "a";
        let b = "é".repeat(120) + "b";
        for n in [&a, &b] {
            assert!(n.len() > 236 && n.len() <= 255);
            let h = hidden_name(n, ".wamedia-partial.id");
            assert!(h.len() <= NAME_MAX, "{}", h.len());
        }
        assert_ne!(
            hidden_name(&a, ".wamedia-partial"),
            hidden_name(&b, ".wamedia-partial")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join(".out.wamedia-partial");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let (mut f, existed) = open_private(&planted).unwrap();
        assert!(!existed);
        io::Write::write_all(&mut f, b"plaintext").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(existing(&planted).unwrap(), Existing::Regular);
    }

    #[cfg(unix)]
    #[test]
    fn a_hard_linked_file_is_not_adopted_and_ours_is_made_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"theirs").unwrap();
        let p = dir.path().join(".x.wamedia-partial");
        std::fs::hard_link(&other, &p).unwrap();
        let (_, existed) = open_private(&p).unwrap();
        assert!(!existed);
        assert_eq!(std::fs::read(&other).unwrap(), b"theirs");
        // Our own file, left 0666 by someone: taken, and made 0600.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (f, existed) = open_private(&p).unwrap();
        assert!(existed);
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_second_lock_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let (a, _) = open_private(&p).unwrap();
        let (b, _) = open_private(&p).unwrap();
        assert!(try_lock(&a).unwrap());
        assert!(!try_lock(&b).unwrap());
        drop(a);
        assert!(try_lock(&b).unwrap());
    }
}
