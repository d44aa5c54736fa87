//! `ringway-ws-load`: a WebSocket echo server and a closed-loop echo load
//! client, for `scripts/bench-ws.sh` (the gateway's tunnels against
//! nginx's, in front of the same server).
//!
//! Both sides are tungstenite over blocking sockets, a thread per
//! connection: the simplest widely used implementation, with no runtime
//! of its own to tune. The script reports the client straight at the
//! server too, so a proxy's figures can be read against what the client
//! and server manage alone.
//!
//! `server ADDR` echoes every text and binary message. `load URL` opens
//! `--connections` WebSockets, then on each sends a `--size`-byte binary
//! message and waits for its echo, again and again, for `--duration`
//! (after `--warmup`), and prints one line: messages/s, MiB/s each way
//! and the round trip's percentiles in microseconds.

#![forbid(unsafe_code)]

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use tungstenite::{Message, WebSocket};

#[derive(Parser)]
#[command(
    name = "ringway-ws-load",
    about = "WebSocket echo server and echo load client"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Echo every message on ADDR (e.g. 127.0.0.1:9000) until killed.
    Server { addr: String },
    /// Closed-loop echo round trips against URL (ws://HOST:PORT/PATH).
    Load {
        url: String,
        /// WebSockets open at once, each with one message in flight.
        #[arg(short, long, default_value_t = 64)]
        connections: usize,
        /// Measured time, in seconds.
        #[arg(short, long, default_value_t = 10.0)]
        duration: f64,
        /// Unmeasured time before it, in seconds.
        #[arg(short, long, default_value_t = 1.0)]
        warmup: f64,
        /// Message payload, in bytes.
        #[arg(short, long, default_value_t = 64)]
        size: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Server { addr } => serve(&addr),
        Cmd::Load {
            url,
            connections,
            duration,
            warmup,
            size,
        } => load(&url, connections, duration, warmup, size),
    }
}

fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                loop {
                    match ws.read() {
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                            if ws.send(m).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
            .context("spawn")?;
    }
    Ok(())
}

/// One connection's count and round trips in the measured window.
struct Tally {
    messages: u64,
    rtt: Histogram<u64>,
}

fn load(
    url: &str,
    connections: usize,
    duration: f64,
    warmup: f64,
    size: usize,
) -> anyhow::Result<()> {
    let timed = duration.is_finite() && duration > 0.0 && warmup.is_finite() && warmup >= 0.0;
    if connections == 0 || size == 0 || !timed {
        bail!("connections and size must be at least 1, duration above 0");
    }
    let host = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .context("URL must be ws://HOST:PORT/PATH")?
        .to_owned();
    let mut sockets: Vec<WebSocket<TcpStream>> = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(&host).with_context(|| format!("connect {host}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let (ws, resp) = tungstenite::client(url, stream)
            .map_err(|e| anyhow::anyhow!("handshake with {url}: {e}"))?;
        if resp.status().as_u16() != 101 {
            bail!("{url} answered {}", resp.status());
        }
        sockets.push(ws);
    }
    let start = Arc::new(Barrier::new(connections + 1));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let payload: bytes::Bytes = (0..size).map(|i| (i % 251) as u8).collect();
    let workers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let (start, measuring, stop) = (start.clone(), measuring.clone(), stop.clone());
            let payload = payload.clone();
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || -> anyhow::Result<Tally> {
                    let mut tally = Tally {
                        messages: 0,
                        rtt: Histogram::new_with_bounds(1, 60_000_000, 3)?,
                    };
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        ws.send(Message::binary(payload.clone()))?;
                        loop {
                            match ws.read()? {
                                Message::Binary(b) if b.len() == payload.len() => break,
                                Message::Binary(_) | Message::Text(_) => {
                                    bail!("the echo differs from the message")
                                }
                                _ => continue,
                            }
                        }
                        if measuring.load(Ordering::Relaxed) {
                            let us = sent.elapsed().as_micros() as u64;
                            tally.rtt.record(us.clamp(1, 60_000_000))?;
                            tally.messages += 1;
                        }
                    }
                    let _ = ws.close(None);
                    Ok(tally)
                })
                .context("spawn")
        })
        .collect::<anyhow::Result<_>>()?;
    start.wait();
    thread::sleep(Duration::from_secs_f64(warmup));
    measuring.store(true, Ordering::Relaxed);
    let began = Instant::now();
    thread::sleep(Duration::from_secs_f64(duration));
    measuring.store(false, Ordering::Relaxed);
    let took = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut messages = 0;
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for w in workers {
        let t = w
            .join()
            .map_err(|_| anyhow::anyhow!("a connection panicked"))??;
        messages += t.messages;
        rtt.add(&t.rtt)?;
    }
    if messages == 0 {
        bail!("no round trip completed");
    }
    let rate = messages as f64 / took;
    let mib = rate * size as f64 / f64::from(1 << 20);
    println!(
        "msgs_per_s={rate:.0} mib_per_s={mib:.2} p50_us={} p99_us={} max_us={} messages={messages}",
        rtt.value_at_quantile(0.5),
        rtt.value_at_quantile(0.99),
        rtt.max()
    );
    Ok(())
}
