//! Plugging an existing WhatsApp client in. Your client already speaks to WhatsApp: its
//! media-connection query is an IQ over its socket whose answer arrives as a decoded
//! binary node. Hand that node to `MediaConn::from_json` inside the client's source, and
//! wamedia asks it on first use, on expiry, and with `force = true` after the CDN rejected
//! the auth.
//!
//! `FakeWhatsApp` stands in for such a client (whatsapp-rust's `refresh_media_conn(force)`,
//! say): its answer has the real shape (PROTOCOL v3 §3), a download-only pop host first,
//! then the upload host, which is a fake CDN on 127.0.0.1. No account, no network:
//!
//! ```sh
//! cargo run -p wamedia-reqwest --example whatsapp_client
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use wamedia_reqwest::{Client, DownloadSpec, MediaConn, MediaType};

/// A WhatsApp client's session, as far as media is concerned.
struct FakeWhatsApp {
    cdn_host: String,
    auth: String,
    queries: AtomicU32,
}

impl FakeWhatsApp {
    /// The `media_conn` IQ and its answer, decoded from the binary node: what a client
    /// hands over (its own cache is skipped when `force`).
    async fn refresh_media_conn(&self, force: bool) -> std::io::Result<Value> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        eprintln!("whatsapp: media_conn IQ (force = {force})");
        tokio::task::yield_now().await; // the round trip over the socket
        Ok(json!({
            "tag": "iq",
            "attrs": {"type": "result", "from": "s.whatsapp.net"},
            "content": [{
                "tag": "media_conn",
                "attrs": {"auth": self.auth, "ttl": "300", "auth_ttl": "21600", "max_buckets": "12"},
                "content": [
                    // A regional pop host (media-fra5-1.cdn.whatsapp.net, say): here a closed
                    // loopback port, so nothing leaves the machine and downloads move on.
                    {"tag": "host",
                     "attrs": {"hostname": "http://127.0.0.1:9", "type": "primary", "class": "pop"},
                     "content": [{"tag": "upload", "content": []},
                                 {"tag": "download", "content": [{"tag": "image"}, {"tag": "video"}]}]},
                    {"tag": "host", "attrs": {"hostname": self.cdn_host, "type": "primary"}}
                ]
            }]
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cdn = wamedia_conformance::FakeCdn::start()?;
    let wa = Arc::new(FakeWhatsApp {
        cdn_host: cdn.host().to_string(),
        auth: cdn.media_conn(Instant::now()).auth,
        queries: AtomicU32::new(0),
    });
    let session = wa.clone();
    let client = Client::new(move |force: bool| {
        let wa = session.clone();
        async move {
            let node = wa.refresh_media_conn(force).await?;
            MediaConn::from_json(&node.to_string(), Instant::now()).map_err(std::io::Error::other)
        }
    });

    let picture = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/media/sample.png"
    ));
    let up = client.upload(picture, MediaType::Image).await?;
    println!("{}", up.to_json());

    // The receiving side, from the message as a bot gets it.
    let message = json!({"imageMessage": {
        "url": up.url,
        "directPath": up.direct_path,
        "mediaKey": up.media_key.as_ref().map(|k| k.to_base64()),
        "fileEncSha256": up.file_enc_sha256.map(|h| wamedia::b64::std(&h)),
        "fileSha256": wamedia::b64::std(&up.file_sha256),
        "fileLength": up.file_length.to_string(),
        "mimetype": "image/png",
    }});
    let spec = DownloadSpec::from_message_json(&message.to_string())?;
    let (back, _) = client.download(spec).to_vec().await?;
    assert_eq!(
        back,
        std::fs::read(picture)?,
        "the downloaded picture differs"
    );
    eprintln!(
        "uploaded and downloaded back {} bytes; the WhatsApp client was asked {} time(s)",
        back.len(),
        wa.queries.load(Ordering::SeqCst)
    );
    Ok(())
}
