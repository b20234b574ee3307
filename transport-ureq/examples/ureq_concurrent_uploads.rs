//! Memory per in-flight upload: N uploads of one 64 KiB plaintext at once, one thread
//! each, against a CDN in another process; prints the peak resident memory.
//!
//! ```sh
//! wamedia serve --addr 127.0.0.1:0 > conn.json &
//! cargo run --release -p wamedia-ureq --example ureq_concurrent_uploads -- conn.json 1000
//! ```
//! (`benches/concurrent_uploads.sh` runs both.)

use std::time::Instant;

use wamedia_ureq::{Client, MediaConn, MediaType, UploadData};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let conn_path = args
        .next()
        .ok_or("usage: concurrent_uploads CONN.json [N]")?;
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let conn = MediaConn::from_json(&std::fs::read_to_string(conn_path)?, Instant::now())?;
    let data: &'static [u8] = Box::leak(
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let client = Client::new(conn);
    let before = peak_rss_kib();
    let start = Instant::now();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (client, barrier) = (client.clone(), barrier.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let source = UploadData::seekable(std::io::Cursor::new(data));
                    client
                        .upload(source, MediaType::Image)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .expect("a thread")
        })
        .collect();
    let failed = threads
        .into_iter()
        .map(|t| t.join())
        .filter(|r| !matches!(r, Ok(Ok(()))))
        .count();
    let peak = peak_rss_kib();
    println!(
        "{n} concurrent 64 KiB uploads: {failed} failed, {:.1} s, peak RSS {:.1} MiB (before {:.1} MiB)",
        start.elapsed().as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    Ok(())
}
