//! Upload and download back with surf on async-std, three uploads at once sharing one
//! client (and so one media connection). Run: `cargo run -p wamedia-cli --example async_upload`.

use std::time::Instant;

use wamedia_surf::{Client, MediaType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let conn = cdn.media_conn(Instant::now());
    async_std::task::block_on(async {
        // An async source: what your WhatsApp client's media-connection query looks like.
        let client = Client::new(move |_force: bool| {
            let conn = conn.clone();
            async move { Ok::<_, std::io::Error>(conn) }
        });
        let uploads = (0..3u8).map(|i| {
            let client = client.clone();
            async_std::task::spawn(async move {
                client.upload(vec![i; 100_000], MediaType::Image).await
            })
        });
        let mut results = Vec::new();
        for u in uploads.collect::<Vec<_>>() {
            results.push(u.await?);
        }
        let (plain, d) = client.download(results[0].download_spec()).to_vec().await?;
        assert_eq!(plain, vec![0u8; 100_000]);
        println!(
            "{{\"uploads\":{},\"downloaded_and_verified\":{}}}",
            results.len(),
            d.verified.file_length
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
