//! A decoder's panic is caught without a word on stderr, and costs only what it had to
//! (issue 20, item 15). Its own test binary: it installs a panic hook, which is
//! process-global.

use std::sync::atomic::{AtomicUsize, Ordering};

use wamedia_info::{analyze_bytes, MediaKind, Options};

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_sticker_that_panics_image_webp_prints_nothing_and_keeps_its_header() {
    // The program's own hook, there before wamedia-info is used: what prints on stderr.
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    // One byte of a frame changed: image-webp 0.2.4 indexes past a slice (yuv.rs) on it.
    let mut webp = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/animated.webp"
    ))
    .unwrap();
    webp[850] = 0;
    let opts = Options::default();
    let info = analyze_bytes(MediaKind::Sticker, &webp, None, &opts);
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "the panic was printed"
    );
    let bug = info
        .warnings
        .iter()
        .find(|w| w.field == "jpeg_thumbnail")
        .expect("a warning about the thumbnail");
    assert!(bug.message.contains("a bug"), "{bug}");
    // What the chunk headers said stands.
    assert_eq!(info.animated, Some(true));
    assert_eq!(info.first_frame_length, Some(1340));
    assert!(info.width.is_some() && info.height.is_some());
    assert_eq!(info.mimetype.as_deref(), Some("image/webp"));
    assert_eq!(info.jpeg_thumbnail, None);
    // The same twice.
    assert_eq!(analyze_bytes(MediaKind::Sticker, &webp, None, &opts), info);
    // A panic elsewhere still reaches the program's hook.
    let _ = std::panic::catch_unwind(|| panic!("the program's own"));
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1);
}
