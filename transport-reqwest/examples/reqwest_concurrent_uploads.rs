//! Memory per in-flight upload over reqwest: N uploads of one 64 KiB plaintext at once, as
//! tasks on one Tokio runtime (two worker threads, as many cores as CI has), against a CDN
//! in another process; prints the peak resident memory. `benches/concurrent_uploads.sh`
//! runs it beside the ureq and surf ones.
//!
//! ```sh
//! wamedia serve --addr 127.0.0.1:0 > conn.json &
//! cargo run --release -p wamedia-reqwest --example reqwest_concurrent_uploads -- conn.json 1000
//! ```

use std::time::Instant;

use wamedia_reqwest::{Client, MediaConn, MediaType, UploadData};

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
        .ok_or("usage: reqwest_concurrent_uploads CONN.json [N]")?;
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let conn = MediaConn::from_json(&std::fs::read_to_string(conn_path)?, Instant::now())?;
    // One plaintext shared by every upload: `Bytes` clones are references.
    let data = bytes::Bytes::from(
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let before = peak_rss_kib();
    let start = Instant::now();
    let failed = runtime.block_on(async {
        let client = Client::new(conn);
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, data) = (client.clone(), data.clone());
                tokio::spawn(async move {
                    let source = UploadData::seekable(std::io::Cursor::new(data));
                    client.upload(source, MediaType::Image).await.is_ok()
                })
            })
            .collect();
        let mut failed = 0;
        for t in tasks {
            if !t.await.unwrap_or(false) {
                failed += 1;
            }
        }
        failed
    });
    let peak = peak_rss_kib();
    println!(
        "reqwest: {n} concurrent 64 KiB uploads: {failed} failed, {:.1} s, peak RSS {:.1} MiB (before {:.1} MiB)",
        start.elapsed().as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    Ok(())
}
