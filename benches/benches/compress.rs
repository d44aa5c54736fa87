//! The CPU cost of response compression: a 1 MiB JSON body (an API's list
//! answer) pushed through each encoder in 16 KiB pieces, each flushed, as
//! the body filter does with a streamed body. Criterion reports MiB/s;
//! µs per MiB is its inverse (1e6 / MiB/s). A 4 KiB body shows what one
//! response costs where the encoder's setup (its state is allocated per
//! response) weighs more than the bytes.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::bench::Encoder;
use ringway_config::ContentCoding;

/// About `n` bytes of JSON records with varied values, so it compresses
/// as real API bodies do (about 8:1 with gzip -6) rather than to nothing.
fn json(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() < n {
        let x = i.wrapping_mul(2_654_435_761) % 1_000_003;
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user-{x}\",\"email\":\"u{x}@example.com\",\
             \"score\":{},\"active\":{},\"tags\":[\"t{}\",\"t{}\"],\"updated\":\"2026-11-{:02}T12:{:02}:00Z\"}},",
            x % 977,
            i.is_multiple_of(3),
            x % 13,
            x % 29,
            1 + x % 28,
            x % 60
        ));
        i += 1;
    }
    s.push_str("{}]");
    s.into_bytes()
}

const PIECE: usize = 16 << 10;

fn compress(c: &mut Criterion) {
    let body = json(1 << 20);
    let mut group = c.benchmark_group("compress-1MiB-json");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    let mut out = BytesMut::with_capacity(body.len());
    let cases = [
        (ContentCoding::Gzip, [1u8, 6, 9].as_slice()),
        (ContentCoding::Brotli, [1, 4, 6].as_slice()),
        (ContentCoding::Zstd, [1, 3, 9].as_slice()),
    ];
    for (coding, levels) in cases {
        for &level in levels {
            // The compressed size, once, for the ratio.
            out.clear();
            let mut e = Encoder::new(coding, level).expect("starts");
            for piece in body.chunks(PIECE) {
                e.push(piece, &mut out);
            }
            e.finish(&mut out);
            eprintln!(
                "{coding}-{level}: {} -> {} bytes ({:.1}:1)",
                body.len(),
                out.len(),
                body.len() as f64 / out.len() as f64
            );
            group.bench_function(format!("{coding}-{level}"), |b| {
                b.iter(|| {
                    out.clear();
                    let mut e = Encoder::new(coding, level).expect("starts");
                    for piece in body.chunks(PIECE) {
                        e.push(std::hint::black_box(piece), &mut out);
                    }
                    e.finish(&mut out);
                    std::hint::black_box(out.len());
                })
            });
        }
    }
    group.finish();

    let small = json(4 << 10);
    let mut group = c.benchmark_group("compress-4KiB-json");
    group.throughput(Throughput::Bytes(small.len() as u64));
    for (coding, level) in [
        (ContentCoding::Gzip, 1),
        (ContentCoding::Gzip, 6),
        (ContentCoding::Brotli, 4),
        (ContentCoding::Zstd, 3),
    ] {
        group.bench_function(format!("{coding}-{level}"), |b| {
            b.iter(|| {
                out.clear();
                let mut e = Encoder::new(coding, level).expect("starts");
                e.push(std::hint::black_box(&small), &mut out);
                e.finish(&mut out);
                std::hint::black_box(out.len());
            })
        });
    }
    group.finish();

    // What flushing each piece costs: a 64 KiB body in 16 KiB pieces (as
    // it comes off the upstream socket), against the whole in one push.
    let mid = json(64 << 10);
    let mut group = c.benchmark_group("compress-64KiB-json");
    group.throughput(Throughput::Bytes(mid.len() as u64));
    for (coding, level) in [(ContentCoding::Gzip, 6), (ContentCoding::Zstd, 3)] {
        for (name, piece) in [("pieces", PIECE), ("whole", mid.len())] {
            group.bench_function(format!("{coding}-{level}/{name}"), |b| {
                b.iter(|| {
                    out.clear();
                    let mut e = Encoder::new(coding, level).expect("starts");
                    for p in mid.chunks(piece) {
                        e.push(std::hint::black_box(p), &mut out);
                    }
                    e.finish(&mut out);
                    std::hint::black_box(out.len());
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compress);
criterion_main!(benches);
