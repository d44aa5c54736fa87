//! The cache's per-request work: building a key and finding the stored
//! response in a store of 10,000 entries (plain, selected by Vary, and
//! while another thread hits the same entry), and laying out a response
//! for storing.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use ringway::bench::{parse_request, HeadLimits, RequestHead};
use ringway::bench::{Entry, Parts};
use ringway::bench::{Identity, LocalCache, RouteCache, SharedCache};
use ringway_config::Config;

const T: u64 = 1_800_000_000;

const PLAIN: &str =
    "GET /api/items/4242?b=2&a=1 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\n\
                     Accept: */*\r\n\r\n";

fn head(raw: &str) -> RequestHead {
    let limits = HeadLimits {
        max_head: 16 * 1024,
        max_headers: 100,
        max_target: 8 * 1024,
        slashes: ringway_config::EncodedSlashes::Reject,
        underscores: ringway_config::UnderscoresInHeaders::Drop,
    };
    let mut buf = BytesMut::from(raw.as_bytes());
    let mut spans = Vec::new();
    parse_request(&mut buf, limits, &mut spans)
        .expect("valid")
        .expect("complete")
}

fn entry(vary: Option<&str>, secondary: Vec<u8>) -> Arc<Entry> {
    let mut fields = vec![
        ("Content-Type", "application/json"),
        ("Cache-Control", "max-age=600"),
        ("ETag", "\"abc123\""),
        ("Date", "Sun, 22 Nov 2026 12:00:00 GMT"),
    ];
    if let Some(v) = vary {
        fields.push(("Vary", v));
    }
    Arc::new(Entry::build(Parts {
        status: 200,
        reason: b"OK",
        fields: fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        body: Bytes::from(vec![b'x'; 1024]),
        request_time: T,
        response_time: T,
        secondary,
        targeted: b"",
    }))
}

fn cache(c: &mut Criterion) {
    let config = Config::from_toml_str(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[[upstreams]]\nname = \"up\"\nservers = [\"127.0.0.1:9\"]\n\
         [[routes]]\nupstream = \"up\"\n[routes.cache]\nsort-query = true\n",
    )
    .expect("valid config");
    let local = LocalCache::new(Arc::new(SharedCache::compile(&config, None)));
    let rc: &RouteCache = local.route(0).expect("caching route");
    let mut key = Vec::new();
    for i in 0..10_000 {
        let h = head(&format!(
            "GET /api/items/{i}?b=2&a=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n"
        ));
        rc.key(&mut key, &h, false, Identity::default());
        rc.insert(&key, entry(None, Vec::new()));
    }
    let varied = head(
        "GET /api/varied?b=2&a=1 HTTP/1.1\r\nHost: shop.example\r\nAccept-Encoding: gzip, br\r\n\r\n",
    );
    let names = vec![b"accept-encoding".to_vec()];
    rc.key(&mut key, &varied, false, Identity::default());
    rc.insert(
        &key,
        entry(
            Some("Accept-Encoding"),
            RouteCache::secondary_of(&names, &varied),
        ),
    );

    let mut group = c.benchmark_group("cache");
    let plain = head(PLAIN);
    group.bench_function("key+lookup/hit", |b| {
        b.iter(|| {
            rc.key(&mut key, &plain, false, Identity::default());
            std::hint::black_box(rc.lookup(&local, &key, &plain).expect("hit"))
        })
    });
    group.bench_function("key+lookup/hit-vary", |b| {
        b.iter(|| {
            rc.key(&mut key, &varied, false, Identity::default());
            std::hint::black_box(rc.lookup(&local, &key, &varied).expect("hit"))
        })
    });
    // What a fresh hit on the request path does: read the entry in place
    // (no reference count) and copy its head and small body out.
    let mut out = BytesMut::with_capacity(4096);
    group.bench_function("key+peek/hit", |b| {
        b.iter(|| {
            rc.key(&mut key, &plain, false, Identity::default());
            std::hint::black_box(rc.peek(&local, &key, &plain, |e| copy_out(e, &mut out)))
        })
    });
    // The same hits while another thread hits the same entry without
    // pause, the same way, as a second worker would: with `lookup` the
    // entry's reference count is then written from two cores; with `peek`
    // nothing is (the hit counter saturates).
    for peek in [false, true] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = {
            let stop = stop.clone();
            let shared = local.shared();
            std::thread::spawn(move || {
                let plain = head(PLAIN);
                let local = LocalCache::new(shared);
                let rc = local.route(0).expect("caching route");
                let mut key = Vec::new();
                let mut out = BytesMut::with_capacity(4096);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    rc.key(&mut key, &plain, false, Identity::default());
                    if peek {
                        std::hint::black_box(
                            rc.peek(&local, &key, &plain, |e| copy_out(e, &mut out)),
                        );
                    } else {
                        std::hint::black_box(rc.lookup(&local, &key, &plain));
                    }
                }
            })
        };
        let name = if peek {
            "key+peek/hit-shared-with-another-thread"
        } else {
            "key+lookup/hit-shared-with-another-thread"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                rc.key(&mut key, &plain, false, Identity::default());
                if peek {
                    std::hint::black_box(rc.peek(&local, &key, &plain, |e| copy_out(e, &mut out)))
                        .expect("hit");
                } else {
                    std::hint::black_box(rc.lookup(&local, &key, &plain).expect("hit"));
                }
            })
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        other.join().expect("the other thread");
    }
    let missing = head("GET /api/other?x=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n");
    group.bench_function("key+lookup/miss", |b| {
        b.iter(|| {
            rc.key(&mut key, &missing, false, Identity::default());
            std::hint::black_box(rc.lookup(&local, &key, &missing).is_none())
        })
    });
    group.bench_function("entry/build-1KiB", |b| {
        b.iter(|| std::hint::black_box(entry(None, Vec::new())))
    });
    group.finish();
}

/// A hit's copy of a stored response: its head and its body.
fn copy_out(e: &Entry, out: &mut BytesMut) -> usize {
    out.clear();
    e.write_head(out, false, b"ringway-cache-control");
    out.extend_from_slice(e.body());
    out.len()
}

criterion_group!(benches, cache);
criterion_main!(benches);
