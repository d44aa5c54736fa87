//! What an idle keep-alive connection holds, and what a burst of them
//! leaves behind once they close.
//!
//! A counting global allocator tracks the live bytes allocated on the
//! worker thread. Opening connections that have each made one request and
//! gone idle grows them by the connection's waiting state only (its task
//! and its socket), not by request buffers or the answering future; once
//! the connections close, the worker is back to what it held before, give
//! or take its pools' floor. (`scripts/idle-conn-memory.sh` measures the
//! process's RSS, allocator and kernel included, against nginx.)

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::counting::live;
use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

const CONNS: usize = 2000;

fn open_idle(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("send");
            let mut buf = [0u8; 256];
            let mut got = 0;
            // The answer is small: read until its body ("ok") is in.
            while !buf[..got].ends_with(b"ok") {
                got += s.read(&mut buf[got..]).expect("read");
            }
            s
        })
        .collect()
}

#[test]
fn idle_connections_are_small_and_leave_nothing_behind() {
    for driver in DRIVERS {
        let gw = TestGateway::start(
            "workers = 1\n[limits]\nkeepalive-timeout = \"300s\"\n\
             [[routes]]\n[routes.respond]\nbody = \"ok\"\n",
            driver,
        );
        // Warm the pools and the worker's tables, then let them settle.
        drop(open_idle(gw.addr, CONNS));
        gw.wait_for("warm-up closed", |t| t.connections_open == 0);
        let base = live();

        let conns = open_idle(gw.addr, CONNS);
        gw.wait_for("all open", |t| t.connections_open == CONNS as u64);
        // Each connection's answering state goes once it has been idle for
        // a moment; what stays is the waiting state.
        let per = |l: i64| (l - base) / CONNS as i64;
        wait_until("idle connections shrink to their waiting state", || {
            per(live()) <= 1280
        });
        eprintln!("{driver}: {} live bytes per idle connection", per(live()));

        drop(conns);
        gw.wait_for("all closed", |t| t.connections_open == 0);
        wait_until("a burst leaves nothing behind", || {
            live() - base <= 64 << 10
        });
        eprintln!(
            "{driver}: {} bytes above the start after closing",
            live() - base
        );
    }
}
