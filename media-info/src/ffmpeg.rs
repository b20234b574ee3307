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
    let mut child = Command::new(&opts.program)
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
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
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NoFrame::Missing,
            _ => NoFrame::Failed(format!("could not start ffmpeg: {e}")),
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut out);
        }
        out
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now().checked_add(opts.timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(NoFrame::Failed(format!(
                    "ffmpeg took longer than {:?}; stopped",
                    opts.timeout
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(NoFrame::Failed(format!("waiting for ffmpeg failed: {e}"))),
        }
    };
    let out = reader.join().unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    let status = status?;
    if !status.success() || out.is_empty() {
        let why = errors
            .lines()
            .next()
            .unwrap_or("no frame written")
            .trim()
            .to_string();
        return Err(NoFrame::Failed(format!("ffmpeg failed ({status}): {why}")));
    }
    Ok(out)
}
