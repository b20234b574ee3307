//! Progress, cancellation and observers of one transfer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wamedia::MediaConn;
use wamedia::Misuse;

/// A cancellation handle: clone it, give one to the transfer, call
/// [`cancel`](Self::cancel) from anywhere. Transports check it between chunks.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the transfer to stop at the next chunk.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sees every exchange a transport makes, in order: how record mode captures cassettes.
/// Transports call these; an observer never changes what happens.
pub trait Observer: Send {
    /// A media connection was handed to the machine (after it asked, `force` as asked).
    fn media_conn(&mut self, conn: &MediaConn, force: bool);
    /// A request is about to be sent.
    fn request(&mut self, req: &wamedia::Request);
    /// The head of its answer arrived.
    fn response_head(&mut self, id: wamedia::RequestId, status: u16, headers: &http::HeaderMap);
    /// Bytes of its answer's body arrived.
    fn response_body(&mut self, id: wamedia::RequestId, data: &[u8]);
    /// The answer is complete.
    fn response_end(&mut self, id: wamedia::RequestId);
    /// The request failed in the transport (after a head: the body was cut short).
    fn failed(&mut self, id: wamedia::RequestId, reason: &str);
}

/// A progress callback: `(bytes_done, total)`.
pub type ProgressFn<'a> = Box<dyn FnMut(u64, Option<u64>) + Send + 'a>;

/// Progress callback and cancellation for one transfer run by a transport.
#[derive(Default)]
pub struct Transfer<'a> {
    progress: Option<ProgressFn<'a>>,
    cancel: Cancel,
    observer: Option<&'a mut dyn Observer>,
}

impl std::fmt::Debug for Transfer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl<'a> Transfer<'a> {
    /// No progress callback, not cancellable from outside.
    pub fn new() -> Self {
        Self::default()
    }
    /// Calls `f(bytes_done, total)` as the body moves.
    pub fn on_progress(mut self, f: impl FnMut(u64, Option<u64>) + Send + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
    /// Stops the transfer (with [`Error::Cancelled`](crate::Error::Cancelled)) once `cancel` is cancelled.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }
    /// Shows every exchange to `observer` (record mode).
    pub fn observe(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }
    /// The observer, if any (for transports).
    pub fn observer(&mut self) -> Option<&mut (dyn Observer + 'a)> {
        self.observer.as_deref_mut()
    }
    /// Reports progress to the callback, if any (for transports).
    pub fn report(&mut self, done: u64, total: Option<u64>) {
        if let Some(f) = self.progress.as_mut() {
            f(done, total);
        }
    }
    /// The cancellation handle (for transports).
    pub fn cancel_handle(&self) -> &Cancel {
        &self.cancel
    }
}

/// Feeds `input` to the machine, showing answers to the transfer's observer first: the
/// one place transports pass answers through, so record mode sees exactly what the
/// machine sees.
///
/// # Errors
/// The machine's [`Misuse`].
pub fn feed<M: wamedia::Machine>(
    m: &mut M,
    transfer: &mut Transfer<'_>,
    input: wamedia::Input<'_>,
) -> Result<(), Misuse> {
    use wamedia::Input;
    if let Some(o) = transfer.observer() {
        match &input {
            Input::Head {
                id,
                status,
                headers,
            } => o.response_head(*id, *status, headers),
            Input::Body { id, data } => o.response_body(*id, data),
            Input::End { id } => o.response_end(*id),
            Input::Failed { id, reason } => o.failed(*id, reason),
            _ => {}
        }
    }
    m.handle_input(Instant::now(), input)
}
