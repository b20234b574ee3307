//! The upload cache end to end against the fake CDN: one scenario per test, run on each
//! store (memory, disk, and Redis when `redis-server` is installed and the `redis`
//! feature is on).

mod support;

use std::io::Cursor;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use wamedia_cache::{CacheKey, DiskStore, Entry, Event, MemoryStore, Policy, Store, UploadCache};
use wamedia_driver::UploadJob;
use wamedia_fake_cdn::FakeCdn;

/// Runs `scenario` on every store there is here.
fn on_each_store(scenario: impl Fn(&str, Arc<dyn Store>)) {
    scenario("memory", Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    scenario(
        "disk",
        Arc::new(DiskStore::in_dir(&dir.path().join("cache")).unwrap()),
    );
    #[cfg(feature = "redis")]
    if let Some(server) = RedisServer::start() {
        scenario(
            "redis",
            Arc::new(wamedia_cache::RedisStore::open(&server.url).unwrap()),
        );
    }
}

fn cache_on(store: &Arc<dyn Store>) -> UploadCache {
    UploadCache::new(store.clone())
}

fn key_of(plain: &[u8]) -> String {
    let (sha, _) = wamedia::hash_reader(plain).unwrap();
    CacheKey::new("video", false, sha).as_text()
}

#[test]
fn a_second_upload_of_the_same_file_is_a_probe_answered_complete_with_no_body() {
    on_each_store(|name, store| {
        let cdn = FakeCdn::start().unwrap();
        let cache = cache_on(&store);
        let plain = data(300_000, 1);
        let first = upload(&cache, &cdn, &plain).unwrap();
        assert!(!first.cached && !first.already_stored, "{name}");
        assert!(first.to_json().get("cached").is_none());
        assert_eq!(
            bodies_and_probes(&cdn),
            (1, 0),
            "{name}: a fresh key never probes"
        );

        let again = upload(&cache, &cdn, &plain).unwrap();
        assert!(again.cached && again.already_stored, "{name}");
        assert_eq!(again.to_json()["cached"], true);
        assert_eq!(again.media_key, first.media_key, "{name}: the same key");
        assert_eq!(again.media_key_timestamp, first.media_key_timestamp);
        assert_eq!(again.file_enc_sha256, first.file_enc_sha256);
        assert_eq!(again.streaming_sidecar, first.streaming_sidecar);
        assert_eq!(
            bodies_and_probes(&cdn),
            (1, 1),
            "{name}: one probe, no second body"
        );
        // Another file is another entry.
        let other = upload(&cache, &cdn, &data(300_000, 2)).unwrap();
        assert!(
            !other.cached && other.media_key != first.media_key,
            "{name}"
        );
    });
}

#[test]
fn a_cdn_that_lost_the_object_gets_the_whole_body_again_under_the_same_key() {
    on_each_store(|name, store| {
        let cache = cache_on(&store);
        let plain = data(200_000, 3);
        let first = upload(&cache, &FakeCdn::start().unwrap(), &plain).unwrap();
        // A CDN that never saw it (the object is gone): the probe says so.
        let lost = FakeCdn::start().unwrap();
        let again = upload(&cache, &lost, &plain).unwrap();
        assert!(
            !again.cached && !again.already_stored,
            "{name}: never from the store alone"
        );
        assert_eq!(again.media_key, first.media_key, "{name}");
        assert_eq!(
            bodies_and_probes(&lost),
            (1, 1),
            "{name}: probe, then the body"
        );
        assert_eq!(lost.object_count(), 1);
        // The entry now points at where the body is.
        let third = upload(&cache, &lost, &plain).unwrap();
        assert!(third.cached, "{name}");
        assert_eq!(bodies_and_probes(&lost), (1, 2), "{name}");
    });
}

#[test]
fn an_entry_past_its_age_or_its_oe_gets_a_fresh_key() {
    on_each_store(|name, store| {
        let cdn = FakeCdn::start().unwrap();
        let plain = data(100_000, 4);
        let first = upload(&cache_on(&store), &cdn, &plain).unwrap();

        // Age: counted from the key's timestamp.
        let young = cache_on(&store).with_policy(Policy {
            max_age: Duration::ZERO,
            ..Policy::default()
        });
        let aged = upload(&young, &cdn, &plain).unwrap();
        assert!(!aged.cached, "{name}");
        assert_ne!(aged.media_key, first.media_key, "{name}: a fresh key");
        assert_eq!(
            bodies_and_probes(&cdn),
            (2, 0),
            "{name}: no probe for a fresh key"
        );

        // oe: a direct path whose signature has run out.
        let key = key_of(&plain);
        let mut entry = Entry::decode(&store.get(&key).unwrap().unwrap()).unwrap();
        entry.direct_path = "/v/t62.7118-24/x?ccb=11-4&oh=a&oe=5F5E1000&_nc_sid=5e03e0".into();
        store
            .put(&key, &entry.encode(), Duration::from_secs(3600))
            .unwrap();
        let past_oe = upload(&cache_on(&store), &cdn, &plain).unwrap();
        assert!(!past_oe.cached, "{name}");
        assert_ne!(past_oe.media_key, aged.media_key, "{name}: a fresh key");
        assert_eq!(bodies_and_probes(&cdn), (3, 0), "{name}");

        // A key "made" ten days from now: its age cannot be told, so it is not used.
        let mut entry = Entry::decode(&store.get(&key).unwrap().unwrap()).unwrap();
        entry.media_key_timestamp = wamedia_driver::unix_now() + 10 * 86400;
        store
            .put(&key, &entry.encode(), Duration::from_secs(3600))
            .unwrap();
        let future = upload(&cache_on(&store), &cdn, &plain).unwrap();
        assert!(!future.cached, "{name}");
        assert_ne!(future.media_key, past_oe.media_key, "{name}: a fresh key");
        assert_eq!(bodies_and_probes(&cdn), (4, 0), "{name}");
    });
}

#[test]
fn a_second_worker_waits_for_the_first_and_takes_its_result() {
    on_each_store(|name, store| {
        let cdn = FakeCdn::start().unwrap();
        let plain = data(400_000, 5);
        let (tx, waiting) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let notify: wamedia_cache::OnEvent = Arc::new(move |e: &Event| {
            if matches!(e, Event::Waiting) {
                let _ = tx.lock().unwrap().send(());
            }
        });
        let cache = cache_on(&store).with_policy(Policy {
            on_event: Some(notify),
            ..Policy::default()
        });
        // The first worker looks up and holds the lease...
        let job = job();
        let mut src = Cursor::new(plain.clone());
        let mut lookup = cache.begin(&job, &mut src).unwrap();
        assert!(!lookup.is_hit() && lookup.holds_lease(), "{name}");
        assert!(lookup.take_prepared().is_none());
        std::thread::scope(|s| {
            // ...while the second one arrives and waits.
            let second = s.spawn(|| upload(&cache, &cdn, &plain));
            waiting
                .recv_timeout(Duration::from_secs(60))
                .expect("the second worker waits");
            let prepared = job.prepare(&mut src).unwrap();
            src.set_position(0);
            let mut first = client(&cdn)
                .upload_prepared(prepared.clone(), wamedia_ureq::UploadData::seekable(src))
                .wait()
                .unwrap();
            cache.finish(lookup, &prepared, &mut first);
            let second = second.join().unwrap().unwrap();
            assert!(second.cached, "{name}");
            assert_eq!(second.media_key, first.media_key, "{name}");
        });
        assert_eq!(bodies_and_probes(&cdn), (1, 1), "{name}: one body in all");
    });
}

#[test]
fn a_crashed_holders_lease_runs_out_and_the_waiter_uploads() {
    on_each_store(|name, store| {
        let cdn = FakeCdn::start().unwrap();
        let plain = data(50_000, 6);
        // A holder that took the lease and died: nobody renews or releases it.
        assert!(store
            .try_lease(&key_of(&plain), "crashed", Duration::from_millis(300))
            .unwrap());
        let cache = cache_on(&store);
        let mut src = Cursor::new(plain.clone());
        let lookup = cache.begin(&job(), &mut src).unwrap();
        assert!(
            lookup.waited() && lookup.holds_lease() && !lookup.is_hit(),
            "{name}"
        );
        drop(lookup);
        // Released on drop: the next worker does not wait.
        let r = upload(&cache, &cdn, &plain).unwrap();
        assert!(!r.cached, "{name}");
        assert_eq!(bodies_and_probes(&cdn), (1, 0), "{name}");
    });
}

#[test]
fn channel_media_and_a_callers_own_key_are_not_looked_up() {
    let cache = UploadCache::default();
    let mut src = Cursor::new(data(1000, 7));
    let l = cache.begin(&job().newsletter(), &mut src).unwrap();
    assert!(l.is_bypassed());
    assert_eq!(src.position(), 0, "not even read");
    let key = wamedia::MediaKey::generate().unwrap();
    let l = cache
        .begin(
            &UploadJob::new(wamedia::MediaType::Image).with_media_key(key),
            &mut src,
        )
        .unwrap();
    assert!(l.is_bypassed());
}

#[test]
fn the_disk_store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("wamedia");
    let store = DiskStore::in_dir(&folder).unwrap();
    store.put("k", b"v", Duration::from_secs(60)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    // Two handles (two processes alike) take turns on one file.
    let other = DiskStore::in_dir(&folder).unwrap();
    assert!(other.try_lease("k", "a", Duration::from_secs(60)).unwrap());
    assert!(!store.try_lease("k", "b", Duration::from_secs(60)).unwrap());
    other.release("k", "a").unwrap();
    assert!(store.try_lease("k", "b", Duration::from_secs(60)).unwrap());
}

#[test]
fn no_media_key_in_debug_or_errors() {
    let cdn = FakeCdn::start().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let cache = cache_on(&store);
    let plain = data(10_000, 8);
    let r = upload(&cache, &cdn, &plain).unwrap();
    let key = r.media_key.unwrap();
    let entry = Entry::decode(&store.get(&key_of(&plain)).unwrap().unwrap()).unwrap();
    let shown = format!("{entry:?} {cache:?}");
    for spelled in [key.to_base64(), format!("{:?}", key.as_bytes())] {
        assert!(!shown.contains(&spelled), "{shown}");
    }
}

#[test]
fn handles_made_at_the_same_moment_share_one_new_file() {
    // Eight "processes" making the store at once: each one opens it, none fails.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("wamedia");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let folder = &folder;
                s.spawn(move || {
                    let store = DiskStore::in_dir(folder).unwrap();
                    store
                        .put(&format!("k{i}"), b"v", Duration::from_secs(60))
                        .unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let store = DiskStore::in_dir(&folder).unwrap();
    for i in 0..8 {
        assert!(store.get(&format!("k{i}")).unwrap().is_some());
    }
}
