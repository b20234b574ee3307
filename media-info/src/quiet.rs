//! Catching a panic of a parser or decoder without printing it.
//!
//! `catch_unwind` stops a panic, but the panic hook has already printed its message (and a
//! backtrace, with `RUST_BACKTRACE`) on stderr by then: a bug in a decoder reached the
//! terminal of a program that recovered from it. The hook is process-global, so this module
//! installs one hook, once, that wraps whatever hook was there before and stays silent only
//! for a panic on a thread that is inside [`catch`] at that moment (a thread-local depth);
//! every other panic, on any thread, goes to the previous hook unchanged. The message of a
//! silenced panic is kept and returned, so the caller's warning can say what failed.
//!
//! The choice, for a library: the hook is touched once, on the first analysis, and only
//! ever chained. A program that sets its own hook later replaces ours: its hook then prints
//! decoder panics again, and nothing else changes.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let inside = DEPTH.try_with(Cell::get).unwrap_or(0) > 0;
            if !inside {
                previous(info);
                return;
            }
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            // The crate and file, not the path of the registry on this machine.
            let at = info
                .location()
                .map(|l| {
                    let parts: Vec<&str> = l.file().rsplit(['/', '\\']).take(3).collect();
                    let short: Vec<&str> = parts.into_iter().rev().collect();
                    format!(" at {}:{}", short.join("/"), l.line())
                })
                .unwrap_or_default();
            let _ = MESSAGE.try_with(|m| *m.borrow_mut() = Some(format!("{what}{at}")));
        }));
    });
}

/// Runs `f`; a panic inside it is caught without output and comes back as its message.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install();
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    r.map_err(|_| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into())
    })
}
