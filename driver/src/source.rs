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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    fn conn(auth: &str, ttl: Duration) -> MediaConn {
        MediaConn::new(auth, vec!["mmg.whatsapp.net".into()], ttl, Instant::now())
    }

    /// A source that counts its calls and names each connection after the call.
    fn counting() -> (Arc<AtomicU32>, Arc<Mutex<Vec<bool>>>, Conns) {
        let calls = Arc::new(AtomicU32::new(0));
        let forces = Arc::new(Mutex::new(Vec::new()));
        let (c, f) = (calls.clone(), forces.clone());
        let conns = Conns::new(move |force: bool| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            f.lock().unwrap().push(force);
            async move { Ok::<_, std::io::Error>(conn(&format!("auth-{n}"), Duration::from_secs(3600))) }
        });
        (calls, forces, conns)
    }

    #[test]
    fn asked_once_then_cached_until_forced() {
        let (calls, forces, conns) = counting();
        let (a, g1) = crate::block_on(conns.get(false, 0)).unwrap();
        let (b, g2) = crate::block_on(conns.get(false, g1)).unwrap();
        assert_eq!(
            (a.auth.as_str(), b.auth.as_str(), g1, g2),
            ("auth-1", "auth-1", 1, 1)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // After a 401 on generation 1, the source is asked again, with force.
        let (c, g3) = crate::block_on(conns.get(true, g1)).unwrap();
        assert_eq!((c.auth.as_str(), g3), ("auth-2", 2));
        assert_eq!(*forces.lock().unwrap(), vec![false, true]);
    }

    #[test]
    fn a_forced_renewal_another_transfer_already_made_is_shared() {
        let (calls, _, conns) = counting();
        let (_, g1) = crate::block_on(conns.get(false, 0)).unwrap();
        // Two transfers saw the same rejected connection: one renewal serves both.
        let (a, _) = crate::block_on(conns.get(true, g1)).unwrap();
        let (b, _) = crate::block_on(conns.get(true, g1)).unwrap();
        assert_eq!((a.auth.as_str(), b.auth.as_str()), ("auth-2", "auth-2"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_expired_connection_is_asked_for_again() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let conns = Conns::new(move |_force: bool| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(conn("short", Duration::ZERO)) }
        });
        crate::block_on(conns.get(false, 0)).unwrap();
        crate::block_on(conns.get(false, 1)).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_source_error_names_why_and_is_a_media_conn_error() {
        let conns = Conns::new(|_force: bool| async move {
            Err::<MediaConn, _>(std::io::Error::other("the phone is offline"))
        });
        match crate::block_on(conns.get(false, 0)) {
            Err(Error::MediaConn(why)) => assert!(why.contains("the phone is offline"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_static_connection_and_a_blocking_closure_are_sources() {
        let c = Conns::new(conn("static", Duration::from_secs(60)));
        assert_eq!(crate::block_on(c.get(false, 0)).unwrap().0.auth, "static");
        let c = Conns::new(FromBlocking(|force: bool| -> Result<MediaConn, String> {
            Ok(conn(
                if force { "fresh" } else { "plain" },
                Duration::from_secs(60),
            ))
        }));
        assert_eq!(crate::block_on(c.get(true, 0)).unwrap().0.auth, "fresh");
    }
}
