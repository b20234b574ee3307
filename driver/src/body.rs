//! Upload bodies: regenerated from the seekable plaintext chunk by chunk on the runtime's
//! blocking threads, and handed to the adapter as a stream, an `AsyncRead` or a `Read`.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use wamedia::BodyReader;

use crate::{Cancel, PreparedUpload};

use crate::Runtime;

/// Upload body bytes are made and handed over this many at a time.
pub(crate) const CHUNK: usize = 64 * 1024;

/// A seekable plaintext source the driver can move between threads.
pub(crate) trait ReadSeekSend: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeekSend for T {}

/// What the body stream tells the driver: bytes handed to the connection, and a waker.
#[derive(Default, Debug)]
pub(crate) struct Progress {
    pub(crate) sent: AtomicU64,
    pub(crate) waker: AtomicWaker,
}

type Made = io::Result<(Vec<u8>, Option<Vec<u8>>)>;
type Making = Pin<Box<dyn Future<Output = (Box<Chunks>, Made)> + Send>>;
type Spawner = Arc<dyn Fn(Box<Chunks>) -> Making + Send + Sync>;

/// A seekable plaintext shared between the attempts of one upload. Each attempt reads
/// through its own [`AttemptSource`]; starting an attempt retires the previous one, so a
/// chunk still being made for an abandoned attempt never moves the position under the
/// new one.
pub(crate) struct Plaintext {
    prepared: Arc<PreparedUpload>,
    shared: Arc<Mutex<Current>>,
    spawn: Spawner,
}

struct Current {
    source: Box<dyn ReadSeekSend>,
    attempt: u64,
}

fn lock(m: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Plaintext {
    pub(crate) fn new<R: Runtime>(
        prepared: PreparedUpload,
        source: Box<dyn ReadSeekSend>,
        rt: &R,
    ) -> Self {
        let rt = rt.clone();
        let spawn: Spawner = Arc::new(move |mut chunks: Box<Chunks>| -> Making {
            Box::pin(rt.spawn_blocking(move || {
                let r = chunks.step();
                (chunks, r)
            }))
        });
        Plaintext {
            prepared: Arc::new(prepared),
            shared: Arc::new(Mutex::new(Current { source, attempt: 0 })),
            spawn,
        }
    }

    /// The body of a new attempt: `len` bytes from `from`.
    pub(crate) fn attempt(&self, from: u64, len: u64, cancel: Cancel) -> RequestBody {
        let mut c = lock(&self.shared);
        c.attempt = c.attempt.wrapping_add(1);
        let chunks = Box::new(Chunks {
            prepared: self.prepared.clone(),
            source: Some(AttemptSource {
                shared: self.shared.clone(),
                attempt: c.attempt,
            }),
            from,
            left: len,
            reader: None,
        });
        RequestBody {
            len,
            next: Next::Start(chunks),
            last: None,
            spawn: self.spawn.clone(),
            progress: Arc::new(Progress::default()),
            cancel,
            held: Vec::new(),
            pos: 0,
        }
    }
}

/// The plaintext as one attempt sees it: refuses to move once a newer attempt started.
struct AttemptSource {
    shared: Arc<Mutex<Current>>,
    attempt: u64,
}

impl AttemptSource {
    fn with<T>(&self, f: impl FnOnce(&mut dyn ReadSeekSend) -> io::Result<T>) -> io::Result<T> {
        let mut c = lock(&self.shared);
        if c.attempt != self.attempt {
            return Err(io::Error::other("a newer attempt took over the source"));
        }
        f(&mut *c.source)
    }
}

impl Read for AttemptSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|s| s.read(buf))
    }
}

impl Seek for AttemptSource {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.with(|s| s.seek(pos))
    }
}

/// The body of one attempt, made chunk by chunk (blocking work: reads and AES).
pub(crate) struct Chunks {
    prepared: Arc<PreparedUpload>,
    source: Option<AttemptSource>,
    from: u64,
    left: u64,
    reader: Option<BodyReader<AttemptSource>>,
}

impl Chunks {
    /// The next chunk, at most [`CHUNK`] bytes; empty at the end.
    fn next_chunk(&mut self) -> io::Result<Vec<u8>> {
        if self.left == 0 {
            return Ok(Vec::new());
        }
        let reader = match (&mut self.reader, self.source.take()) {
            (Some(r), _) => r,
            (None, Some(source)) => self
                .reader
                .insert(self.prepared.body_reader(source, self.from)?),
            (None, None) => return Err(io::Error::other("the body reader failed earlier")),
        };
        let n = usize::try_from(self.left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; n];
        reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::other("the source ended before the body did (was it changed?)")
            } else {
                e
            }
        })?;
        self.left = self.left.saturating_sub(n as u64);
        if self.left == 0 {
            // The reader's buffers go now, not when the request ends.
            self.reader = None;
        }
        Ok(buf)
    }

    /// One blocking step: the next chunk, and the last one with it when no more than a
    /// chunk would be left, so a small body's tail never waits in the pool's queue.
    fn step(&mut self) -> Made {
        let first = self.next_chunk()?;
        let last = if self.left > 0 && self.left <= CHUNK as u64 {
            Some(self.next_chunk()?)
        } else {
            None
        };
        Ok((first, last))
    }
}

/// Where a body stream is.
enum Next {
    /// Nothing being made yet.
    Start(Box<Chunks>),
    /// A chunk is being made on the runtime's blocking threads (behind a mutex only to
    /// make the body `Sync`, as some clients ask; it is reached through `get_mut`).
    Making(Mutex<Making>),
    /// The end, or a failure already reported.
    Done,
}

/// An upload body, `len` bytes, made while it is sent: the next chunk is made on the
/// runtime's blocking threads while the connection sends the current one, so at most two
/// chunks are held at a time and no executor thread waits on a disk or on AES.
///
/// An adapter hands it to its HTTP client as a stream of chunks
/// ([`futures_core::Stream`]), an [`AsyncRead`](futures_io::AsyncRead) or, in a blocking
/// adapter, a [`Read`]. Every byte taken is counted (progress, idle timeout), and a
/// cancelled transfer ends it with an error.
pub struct RequestBody {
    len: u64,
    next: Next,
    last: Option<Vec<u8>>,
    spawn: Spawner,
    progress: Arc<Progress>,
    cancel: Cancel,
    /// A chunk being read out through `AsyncRead`/`Read`, and how far.
    held: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    /// The body's length in bytes (the request's `Content-Length`).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// The next chunk; `None` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Vec<u8>>>> {
        loop {
            if self.cancel.is_cancelled() && !matches!(self.next, Next::Done) {
                self.next = Next::Done;
                return Poll::Ready(Some(Err(io::Error::other("cancelled"))));
            }
            if let Some(bytes) = self.last.take() {
                return Poll::Ready(Some(Ok(self.handed(bytes))));
            }
            match std::mem::replace(&mut self.next, Next::Done) {
                Next::Done => return Poll::Ready(None),
                Next::Start(chunks) => self.next = Next::Making(Mutex::new((self.spawn)(chunks))),
                Next::Making(mut h) => {
                    let polled = h
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                        .poll(cx);
                    let (chunks, made) = match polled {
                        Poll::Pending => {
                            self.next = Next::Making(h);
                            return Poll::Pending;
                        }
                        Poll::Ready(r) => r,
                    };
                    let bytes = match made {
                        Ok((b, _)) if b.is_empty() => return Poll::Ready(None),
                        Ok((b, last)) => {
                            self.last = last;
                            b
                        }
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    };
                    if chunks.left > 0 {
                        self.next = Next::Making(Mutex::new((self.spawn)(chunks)));
                    }
                    return Poll::Ready(Some(Ok(self.handed(bytes))));
                }
            }
        }
    }

    /// Counts `bytes` as handed to the connection and wakes the driver.
    fn handed(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.progress
            .sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.progress.waker.wake();
        bytes
    }

    fn poll_read_into(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        while self.pos >= self.held.len() {
            match self.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(c))) => {
                    self.held = c;
                    self.pos = 0;
                }
            }
        }
        let rest = self.held.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos = self.pos.saturating_add(n);
        Poll::Ready(Ok(n))
    }
}

impl futures_core::Stream for RequestBody {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_chunk(cx)
    }
}

impl futures_io::AsyncRead for RequestBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_into(cx, buf)
    }
}

/// For blocking adapters (a client whose `send` blocks, on [`crate::Blocking`]): each
/// read waits for its chunk on the calling thread.
impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::blocking::block_on(std::future::poll_fn(|cx| self.poll_read_into(cx, buf)))
    }
}
