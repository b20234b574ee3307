//! The blocking side: a runtime whose "blocking threads" are the caller's own, and the
//! executor a blocking facade runs the driver's futures on.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use crate::Runtime;

thread_local! {
    /// The earliest time a [`Blocking`] timer polled on this thread wants to be woken at.
    static NEXT_WAKE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The runtime of a blocking adapter: its timers wake [`block_on`] (which parks the
/// calling thread until the earliest of them, or until a waker fires), and its blocking
/// work runs in place. Futures of a driver on this runtime are run with [`block_on`]; its
/// timers never fire under another executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking;

impl Runtime for Blocking {
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send + 'static {
        std::future::poll_fn(move |_| {
            if Instant::now() >= t {
                return Poll::Ready(());
            }
            NEXT_WAKE.with(|n| n.set(Some(n.get().map_or(t, |m| m.min(t)))));
            Poll::Pending
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

/// Runs `fut` to completion on the calling thread, parking it while the future waits:
/// until a waker fires or the earliest [`Blocking`] timer it polled is due. What the
/// blocking facades (`wamedia-ureq`) run the driver with.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    // A block_on inside another (a blocking body read) keeps the outer one's timer.
    let outer = NEXT_WAKE.with(|n| n.take());
    let out = loop {
        NEXT_WAKE.with(|n| n.set(None));
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            break v;
        }
        match NEXT_WAKE.with(|n| n.get()) {
            Some(t) => std::thread::park_timeout(t.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    };
    NEXT_WAKE.with(|n| n.set(outer));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_timer_parks_until_it_is_due_and_no_longer() {
        let start = Instant::now();
        let t = start + Duration::from_millis(30);
        block_on(Blocking.sleep_until(t));
        assert!(Instant::now() >= t);
    }

    #[test]
    fn a_future_woken_from_another_thread_completes() {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waker = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let (d, w) = (done.clone(), waker.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            d.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(w) = w.lock().unwrap().take() {
                w.wake();
            }
        });
        block_on(std::future::poll_fn(|cx| {
            *waker.lock().unwrap() = Some(cx.waker().clone());
            if done.load(std::sync::atomic::Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        t.join().unwrap();
    }
}
