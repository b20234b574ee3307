//! A progress line on stderr (bytes, rate, ETA), only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws at most ten times a second; silent when quiet or not on a terminal.
pub struct Bar {
    on: bool,
    label: &'static str,
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Bar {
    pub fn new(quiet: bool, label: &'static str) -> Bar {
        Bar {
            on: !quiet && std::io::stderr().is_terminal(),
            label,
            start: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.on
            || self
                .last
                .is_some_and(|l| l.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let mib = |b: f64| b / (1024.0 * 1024.0);
        let line = match total {
            Some(t) if t > 0 => {
                let eta = if rate > 0.0 {
                    (t.saturating_sub(done)) as f64 / rate
                } else {
                    0.0
                };
                format!(
                    "{} {:5.1}% {:.1}/{:.1} MiB {:.1} MiB/s ETA {:.0}s",
                    self.label,
                    100.0 * done as f64 / t as f64,
                    mib(done as f64),
                    mib(t as f64),
                    mib(rate),
                    eta
                )
            }
            _ => format!(
                "{} {:.1} MiB {:.1} MiB/s",
                self.label,
                mib(done as f64),
                mib(rate)
            ),
        };
        eprint!("\r{line:<70}");
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
