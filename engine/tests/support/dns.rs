//! A DNS name server for tests: UDP on 127.0.0.1:0 in a std thread,
//! answering from a table the test changes while it runs.
//!
//! A names: the table's addresses (TTL 0, so nothing is cached). AAAA
//! and other types for a known name: NOERROR with no answer. A name not in
//! the table: NXDOMAIN. Queries are counted per name (every type), so a
//! test can wait until a resolver has asked again instead of sleeping.
//!
//! The resolver's unit tests include this file too (`#[path]`), so it
//! names nothing from the rest of the test support.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

#[derive(Default)]
struct Zone {
    names: HashMap<String, Vec<Ipv4Addr>>,
    queries: HashMap<String, u64>,
}

/// A running name server; dropping it stops it.
pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The table's key for a name: lower case, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the test name server");
        // Short reads so the thread sees `stop` soon after a drop.
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set a read timeout");
        let addr = socket.local_addr().expect("the test name server's address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::Builder::new()
                .name("test-dns".into())
                .spawn(move || serve(&socket, &zone, &stop))
                .expect("spawn the test name server")
        };
        DnsServer {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers A queries for `name` with `addrs` from now on.
    pub fn set(&self, name: &str, addrs: Vec<Ipv4Addr>) {
        self.zone().names.insert(key(name), addrs);
    }

    /// Answers NXDOMAIN for `name` from now on.
    pub fn remove(&self, name: &str) {
        self.zone().names.remove(&key(name));
    }

    /// Queries received for `name` so far, of every type.
    pub fn queries(&self, name: &str) -> u64 {
        self.zone().queries.get(&key(name)).copied().unwrap_or(0)
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, Zone> {
        self.zone.lock().expect("the test name server's table")
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(socket: &UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Acquire) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if request.metadata.message_type != MessageType::Query {
            continue;
        }
        let answer = {
            let mut zone = zone.lock().expect("the test name server's table");
            answer(&request, &mut zone)
        };
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

fn answer(request: &Message, zone: &mut Zone) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.edns = request.edns.clone();
    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(query.clone());
    let name = key(&query.name().to_ascii());
    *zone.queries.entry(name.clone()).or_default() += 1;
    match zone.names.get(&name) {
        None => response.metadata.response_code = ResponseCode::NXDomain,
        Some(addrs) if query.query_type() == RecordType::A => {
            for ip in addrs {
                response.add_answer(Record::from_rdata(
                    query.name().clone(),
                    0,
                    RData::A(A(*ip)),
                ));
            }
        }
        Some(_) => {}
    }
    response
}
