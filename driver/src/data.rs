//! What an upload reads: bytes, a path, a file or a reader.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::body::ReadSeekSend;

/// The plaintext of an upload. Made from `Vec<u8>`, `&[u8]`, `&Path`, `PathBuf`, a
/// [`File`], or a reader ([`reader`](Self::reader), [`seekable`](Self::seekable)).
///
/// Whatever it is, it is read twice: once for the hashes and the MAC, once more while
/// the body is sent (regenerated on the fly, so memory stays flat). A reader that cannot
/// seek (a pipe) is spooled first: in memory up to
/// [`Options::spool_in_memory`](crate::Options::spool_in_memory), then in a temporary
/// file.
pub struct UploadData(Data);

enum Data {
    Bytes(Vec<u8>),
    Path(PathBuf),
    Seekable(Box<dyn ReadSeekSend>),
    Stream(Box<dyn Read + Send>),
}

impl std::fmt::Debug for UploadData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Data::Bytes(b) => write!(f, "UploadData::Bytes({} bytes)", b.len()),
            Data::Path(p) => write!(f, "UploadData::Path({})", p.display()),
            Data::Seekable(_) => f.write_str("UploadData::Seekable"),
            Data::Stream(_) => f.write_str("UploadData::Stream"),
        }
    }
}

impl UploadData {
    /// A reader that cannot seek (a pipe, a socket, stdin): spooled before it is sent.
    pub fn reader(r: impl Read + Send + 'static) -> Self {
        UploadData(Data::Stream(Box::new(r)))
    }

    /// A reader that can seek back to its start (read from there).
    pub fn seekable(r: impl Read + Seek + Send + 'static) -> Self {
        UploadData(Data::Seekable(Box::new(r)))
    }

    /// Opens or spools the data into a source read from its start (blocking work).
    pub(crate) fn into_source(self, spool_in_memory: usize) -> io::Result<Box<dyn ReadSeekSend>> {
        let mut s: Box<dyn ReadSeekSend> = match self.0 {
            Data::Bytes(b) => Box::new(io::Cursor::new(b)),
            Data::Path(p) => Box::new(
                File::open(&p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
            ),
            Data::Seekable(s) => s,
            Data::Stream(mut r) => {
                let mut spool = tempfile::SpooledTempFile::new(spool_in_memory);
                io::copy(&mut r, &mut spool)?;
                Box::new(spool)
            }
        };
        s.seek(SeekFrom::Start(0))?;
        Ok(s)
    }
}

impl From<Vec<u8>> for UploadData {
    fn from(b: Vec<u8>) -> Self {
        UploadData(Data::Bytes(b))
    }
}

impl From<&[u8]> for UploadData {
    fn from(b: &[u8]) -> Self {
        UploadData(Data::Bytes(b.to_vec()))
    }
}

impl<const N: usize> From<&[u8; N]> for UploadData {
    fn from(b: &[u8; N]) -> Self {
        UploadData(Data::Bytes(b.to_vec()))
    }
}

impl From<&Vec<u8>> for UploadData {
    fn from(b: &Vec<u8>) -> Self {
        UploadData(Data::Bytes(b.clone()))
    }
}

impl From<&Path> for UploadData {
    fn from(p: &Path) -> Self {
        UploadData(Data::Path(p.to_owned()))
    }
}

impl From<PathBuf> for UploadData {
    fn from(p: PathBuf) -> Self {
        UploadData(Data::Path(p))
    }
}

impl From<&PathBuf> for UploadData {
    fn from(p: &PathBuf) -> Self {
        UploadData(Data::Path(p.clone()))
    }
}

impl From<File> for UploadData {
    fn from(f: File) -> Self {
        UploadData(Data::Seekable(Box::new(f)))
    }
}
