//! Request-head parsing: ringway's full parse (httparse plus validation,
//! header classification and the zero-copy split) against raw httparse on
//! the same bytes. Target: at most 1.3x raw httparse.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::bench::{parse_request, HeadLimits};
use ringway_benches::HEADS;

fn parse(c: &mut Criterion) {
    let limits = HeadLimits {
        max_head: 32 * 1024,
        max_headers: 100,
        max_target: 8 * 1024,
        slashes: ringway_config::EncodedSlashes::Reject,
        underscores: ringway_config::UnderscoresInHeaders::Drop,
    };
    for (name, bytes) in HEADS {
        let mut group = c.benchmark_group(format!("head/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("httparse", |b| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 100];
                let mut req = httparse::Request::new(&mut headers);
                let n = req.parse(std::hint::black_box(bytes)).expect("valid");
                std::hint::black_box((n, req.headers.len()));
            })
        });
        // The buffer and span list are reused, as on a keep-alive connection.
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut spans = Vec::with_capacity(100);
        group.bench_function("ringway", |b| {
            b.iter(|| {
                buf.clear();
                buf.reserve(16 * 1024);
                buf.extend_from_slice(std::hint::black_box(bytes));
                let head = parse_request(&mut buf, limits, &mut spans)
                    .expect("valid")
                    .expect("complete");
                std::hint::black_box(head.headers.len());
                spans = head.into_headers();
            })
        });
        // The copy into the buffer alone, to subtract from the above.
        group.bench_function("copy-only", |b| {
            b.iter(|| {
                buf.clear();
                buf.reserve(16 * 1024);
                buf.extend_from_slice(std::hint::black_box(bytes));
                std::hint::black_box(buf.len());
            })
        });
        group.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
