//! The blocking side: a runtime whose "blocking threads" are the caller's own, and the
//! executor a blocking facade runs the driver's futures on.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use crate::Runtime;

/// The runtime of a blocking adapter: sleeps on the calling thread, and runs blocking
/// work in place. Futures of a driver on this runtime are run with [`block_on`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking;

impl Runtime for Blocking {
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send + 'static {
        std::future::poll_fn(move |_| {
            let left = t.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
            Poll::Ready(())
        })
    }

    fn spawn_blocking<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let mut f = Some(f);
        std::future::poll_fn(move |_| match f.take() {
            Some(f) => Poll::Ready(f()),
            None => Poll::Pending,
        })
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on the calling thread (parking it while the future waits).
/// What the blocking facades (`wamedia-ureq`) run the driver with.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
