//! The first frame of a video, from the `ffmpeg` program when it is installed (as Baileys
//! does), within a time limit. ffmpeg writes one PNG frame, already scaled down to fit
//! 512 × 512 and turned as the file's display matrix says, to a pipe; the thumbnail is made
//! from it like a picture's.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::FfmpegOptions;

/// The most bytes read from ffmpeg (a 512 × 512 RGBA PNG is at most ~1 MiB).
const MAX_OUTPUT: u64 = 8 << 20;

/// Why there is no frame.
pub(crate) enum NoFrame {
    /// ffmpeg is not installed (or not where the options say).
    Missing,
    Failed(String),
}

/// Runs ffmpeg on `path` and returns the PNG bytes of the first video frame.
pub(crate) fn first_frame(path: &Path, opts: &FfmpegOptions) -> Result<Vec<u8>, NoFrame> {
    let args = [
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        "scale=w='min(512,iw)':h='min(512,ih)':force_original_aspect_ratio=decrease",
        "-f",
        "image2pipe",
        "-c:v",
        "png",
        "-",
    ];
    let out = run(path, &args, opts, |stdout| {
        let mut out = Vec::new();
        let _ = stdout.take(MAX_OUTPUT).read_to_end(&mut out);
        out
    })?;
    if out.is_empty() {
        return Err(NoFrame::Failed("ffmpeg wrote no frame".into()));
    }
    Ok(out)
}

/// Decodes the first audio stream of `path` to 48 kHz 16-bit PCM of its first channel and
/// hands each piece of samples to `each` (which returns `false` to stop reading).
pub(crate) fn pcm_channel0(
    path: &Path,
    opts: &FfmpegOptions,
    mut each: impl FnMut(&[i16]) -> bool + Send,
) -> Result<(), NoFrame> {
    let args = [
        "-map",
        "0:a:0",
        "-af",
        "pan=mono|c0=c0",
        "-ar",
        "48000",
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        "-",
    ];
    run(path, &args, opts, |mut stdout| {
        let mut buf = vec![0u8; 64 << 10];
        let mut samples = Vec::with_capacity(32 << 10);
        let mut odd: Option<u8> = None;
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            samples.clear();
            let mut bytes = &buf[..n];
            if let (Some(lo), Some((&hi, rest))) = (odd.take(), bytes.split_first()) {
                samples.push(i16::from_le_bytes([lo, hi]));
                bytes = rest;
            }
            let pairs = bytes.chunks_exact(2);
            odd = pairs.remainder().first().copied();
            samples.extend(pairs.map(|p| i16::from_le_bytes([p[0], p[1]])));
            if !each(&samples) {
                return;
            }
        }
    })
}

/// Runs `ffmpeg -nostdin -v error -i PATH ARGS…`, hands its stdout to `consume` on a
/// thread of its own, and stops ffmpeg at the time limit or once `consume` returned.
fn run<T: Send>(
    path: &Path,
    args: &[&str],
    opts: &FfmpegOptions,
    consume: impl FnOnce(std::process::ChildStdout) -> T + Send,
) -> Result<T, NoFrame> {
    let mut child = Command::new(&opts.program)
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NoFrame::Missing,
            _ => NoFrame::Failed(format!("could not start ffmpeg: {e}")),
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(NoFrame::Failed("ffmpeg's output could not be read".into()));
    };
    std::thread::scope(|s| {
        let reader = s.spawn(move || consume(stdout));
        let errors = s.spawn(move || {
            let mut text = String::new();
            let _ = stderr.take(4096).read_to_string(&mut text);
            text
        });
        let deadline = Instant::now().checked_add(opts.timeout);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(Some(status)),
                // The consumer has what it wanted: ffmpeg's remaining work is not needed.
                Ok(None) if reader.is_finished() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Ok(None);
                }
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(NoFrame::Failed(format!(
                        "ffmpeg took longer than {:?}; stopped",
                        opts.timeout
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(NoFrame::Failed(format!("waiting for ffmpeg failed: {e}")));
                }
            }
        };
        let out = reader
            .join()
            .map_err(|_| NoFrame::Failed("reading ffmpeg's output panicked".into()))?;
        let errors = errors.join().unwrap_or_default();
        match status? {
            Some(status) if !status.success() => {
                let why = errors.lines().next().unwrap_or("no reason given").trim();
                Err(NoFrame::Failed(format!(
                    "ffmpeg failed ({status}): {}",
                    why
                )))
            }
            _ => Ok(out),
        }
    })
}

/// Why a run that writes a file failed.
pub(crate) enum RunError {
    /// ffmpeg is not installed (or not where the options say).
    Missing,
    /// Stopped at the time limit.
    TimedOut,
    /// It could not be started or waited for.
    Io(std::io::Error),
    /// It exited unsuccessfully: the exit status and the head of what it wrote on stderr.
    Failed(std::process::ExitStatus, String),
}

/// The most bytes of ffmpeg's stderr kept for an error (the rest is read and dropped, so
/// a chatty ffmpeg never blocks on a full pipe).
const MAX_STDERR: u64 = 4096;

/// Runs `ffmpeg ARGS…` (the arguments name the input and the output file), with no stdin
/// and no stdout, waits for it to exit, and stops it at the time limit.
pub(crate) fn run_to_file(
    args: &[std::ffi::OsString],
    opts: &FfmpegOptions,
) -> Result<(), RunError> {
    let mut child = Command::new(&opts.program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RunError::Missing,
            _ => RunError::Io(e),
        })?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(RunError::Io(std::io::Error::other(
            "ffmpeg's stderr could not be read",
        )));
    };
    std::thread::scope(|s| {
        let errors = s.spawn(move || {
            let mut stderr = stderr;
            let mut text = Vec::new();
            let _ = (&mut stderr).take(MAX_STDERR).read_to_end(&mut text);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            String::from_utf8_lossy(&text).into_owned()
        });
        let deadline = Instant::now().checked_add(opts.timeout);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RunError::TimedOut);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RunError::Io(e));
                }
            }
        };
        let errors = errors.join().unwrap_or_default();
        let status = status?;
        if status.success() {
            Ok(())
        } else {
            Err(RunError::Failed(status, errors))
        }
    })
}
