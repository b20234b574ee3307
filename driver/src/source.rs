//! Where media connections come from: a [`MediaConnSource`] owned by the client, asked on
//! first use, when the connection expires, and with `force = true` after the CDN rejected
//! its auth. Transfers running at once share one connection and one renewal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

use wamedia::MediaConn;

use crate::Error;

/// Why a source had no connection to give: any error type.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An async source of media connections: your WhatsApp client's `media_conn` IQ.
///
/// Implemented for
/// - async closures, `|force: bool| async move { … Ok::<_, E>(conn) }`, with any error
///   type `E: std::error::Error + Send + Sync + 'static` (or a `String`);
/// - a [`MediaConn`] (a static connection, given as is every time);
/// - [`FromBlocking`]: a blocking source ([`BlockingSource`]) for a blocking client.
///
/// `force` is true after the CDN rejected the auth of the connection last given: the
/// source must not answer from a cache then.
pub trait MediaConnSource: Send + 'static {
    /// A media connection; a fresh one when `force`.
    fn media_conn(
        &mut self,
        force: bool,
    ) -> impl Future<Output = Result<MediaConn, SourceError>> + Send + '_;
}

impl MediaConnSource for MediaConn {
    async fn media_conn(&mut self, _force: bool) -> Result<MediaConn, SourceError> {
        Ok(self.clone())
    }
}

impl<F, Fut, E> MediaConnSource for F
where
    F: FnMut(bool) -> Fut + Send + 'static,
    Fut: Future<Output = Result<MediaConn, E>> + Send + 'static,
    E: Into<SourceError>,
{
    fn media_conn(
        &mut self,
        force: bool,
    ) -> impl Future<Output = Result<MediaConn, SourceError>> + Send + '_ {
        let fut = self(force);
        async move { fut.await.map_err(Into::into) }
    }
}

/// A blocking source of media connections, for a blocking client (`wamedia-ureq`):
/// implemented for closures `|force: bool| -> Result<MediaConn, E>` and for a
/// [`MediaConn`].
pub trait BlockingSource: Send + 'static {
    /// A media connection; a fresh one when `force`.
    ///
    /// # Errors
    /// Why none could be had.
    fn media_conn(&mut self, force: bool) -> Result<MediaConn, SourceError>;
}

impl BlockingSource for MediaConn {
    fn media_conn(&mut self, _force: bool) -> Result<MediaConn, SourceError> {
        Ok(self.clone())
    }
}

impl<F, E> BlockingSource for F
where
    F: FnMut(bool) -> Result<MediaConn, E> + Send + 'static,
    E: Into<SourceError>,
{
    fn media_conn(&mut self, force: bool) -> Result<MediaConn, SourceError> {
        self(force).map_err(Into::into)
    }
}

/// A [`BlockingSource`] used as a [`MediaConnSource`]: it runs on the thread that drives
/// the transfer (right for a blocking client; on an async runtime it would hold an
/// executor thread while it runs).
#[derive(Debug, Clone)]
pub struct FromBlocking<S>(pub S);

impl<S: BlockingSource> MediaConnSource for FromBlocking<S> {
    async fn media_conn(&mut self, force: bool) -> Result<MediaConn, SourceError> {
        self.0.media_conn(force)
    }
}

/// Object-safe form of [`MediaConnSource`], for the client to own any source.
trait DynSource: Send {
    fn get(
        &mut self,
        force: bool,
    ) -> Pin<Box<dyn Future<Output = Result<MediaConn, SourceError>> + Send + '_>>;
}

impl<S: MediaConnSource> DynSource for S {
    fn get(
        &mut self,
        force: bool,
    ) -> Pin<Box<dyn Future<Output = Result<MediaConn, SourceError>> + Send + '_>> {
        Box::pin(self.media_conn(force))
    }
}

/// The client's source and the connection it last gave, shared by every transfer.
pub(crate) struct Conns {
    source: async_lock::Mutex<Box<dyn DynSource>>,
    /// The connection last given, and how many have been had (its generation).
    cached: Mutex<(Option<MediaConn>, u64)>,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").finish_non_exhaustive()
    }
}

impl Conns {
    pub(crate) fn new(source: impl MediaConnSource) -> Self {
        Conns {
            source: async_lock::Mutex::new(Box::new(source)),
            cached: Mutex::new((None, 0)),
        }
    }

    fn cached(&self, force: bool, seen: u64) -> Option<(MediaConn, u64)> {
        let c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let (conn, generation) = (&c.0, c.1);
        match conn {
            // A forced renewal is served by a connection had after the rejected one.
            Some(conn) if (!force || generation > seen) && !conn.is_expired(Instant::now()) => {
                Some((conn.clone(), generation))
            }
            _ => None,
        }
    }

    /// A connection for a transfer that last saw generation `seen`: the cached one while
    /// it is valid (and, when `force`, newer than `seen`), otherwise the source's. One
    /// transfer asks the source at a time; the others wait and take its answer.
    pub(crate) async fn get(&self, force: bool, seen: u64) -> Result<(MediaConn, u64), Error> {
        if let Some(c) = self.cached(force, seen) {
            return Ok(c);
        }
        let mut source = self.source.lock().await;
        if let Some(c) = self.cached(force, seen) {
            return Ok(c);
        }
        let conn = source
            .get(force)
            .await
            .map_err(|e| Error::MediaConn(e.to_string()))?;
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        c.1 = c.1.wrapping_add(1);
        c.0 = Some(conn.clone());
        Ok((conn, c.1))
    }
}
