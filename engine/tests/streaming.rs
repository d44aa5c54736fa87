//! A 200 MiB body streams through the gateway in each direction while the
//! process's memory stays flat: bodies are never gathered.
//!
//! Its own test binary, so no other test's allocations share the process.

mod support;

use std::io::{Read, Write};

use support::*;

const BODY: u64 = 200 << 20;
/// Allowed RSS growth over the transfer (client, upstream and gateway all
/// live in this process; a buffered body would add 200 MiB).
const FLAT: u64 = 24 << 20;

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[test]
fn two_hundred_mib_each_way_with_flat_memory() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            if req.method == "POST" {
                Reply::Raw(response(200, "stored"))
            } else {
                Reply::Stream(BODY)
            }
        });
        let gw = TestGateway::proxy_to(up.addr, "[limits]\nmax-body-size = \"1GiB\"", driver);
        // Warm up pools and threads before the baseline.
        let mut c = gw.client();
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
        assert_eq!(c.read_response(false).expect("warm").status, 200);
        let before = rss();

        // Download: read the body in pieces, never holding it.
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut stream = c.stream.try_clone().expect("clone");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.contains(&format!("content-length: {BODY}")), "{head}");
        let mut left = BODY;
        let mut buf = vec![0u8; 256 * 1024];
        let mut peak = 0;
        while left > 0 {
            let n = stream
                .read(&mut buf[..(left.min(256 * 1024) as usize)])
                .expect("body");
            assert!(n > 0, "body ended early with {left} left");
            left -= n as u64;
            peak = peak.max(rss());
        }

        // Upload: write the body in pieces.
        let chunk = vec![b'u'; 256 * 1024];
        stream
            .write_all(
                format!("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n")
                    .as_bytes(),
            )
            .expect("head");
        let mut left = BODY;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            stream.write_all(&chunk[..k]).expect("upload");
            left -= k as u64;
            peak = peak.max(rss());
        }
        let r = c.read_response(false).expect("upload response");
        assert_eq!(r.text(), "stored");
        let growth = peak.saturating_sub(before);
        eprintln!("driver={driver}: RSS before {before} peak {peak} growth {growth}");
        assert!(
            growth < FLAT,
            "RSS grew by {growth} bytes while streaming 2×200 MiB"
        );
    }
}
