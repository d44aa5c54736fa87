//! `connection-balance`: which worker the kernel gives a new connection.
//!
//! With "cpu", every connection a client makes from one CPU lands on the
//! worker pinned to that CPU (on loopback the kernel receives a connection
//! on the CPU its client runs on); with "hash" (the default), connections
//! from one CPU spread over the workers. The clients here run on threads
//! pinned to each CPU in turn, and the admin API's per-worker request
//! counts show where their requests went.

mod support;

use std::net::SocketAddr;
use std::thread;

use support::process::{admin_call, ADMIN};
use support::{driver, wait_until, TestClient, TestGateway, TestUpstream};

/// Connections opened from each CPU.
const CONNECTIONS: usize = 24;

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data for which all-zero is a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from the affinity mask, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; 0 is this
    // thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity({cpu})");
}

/// (cpu, requests) per worker, in worker order.
fn requests_per_worker(gw: &TestGateway) -> Vec<(usize, u64)> {
    let (status, doc) = admin_call(gw.admin_addr(), "GET", "/status", &[], b"");
    assert_eq!(status, 200);
    doc["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            (
                w["cpu"].as_u64().expect("cpu") as usize,
                w["requests"].as_u64().expect("requests"),
            )
        })
        .collect()
}

/// Opens [`CONNECTIONS`] connections from a thread pinned to `cpu`, all
/// held open until each has had its answer (so each is a new one), and
/// returns how many requests each worker took meanwhile.
fn requests_from(gw: &TestGateway, cpu: usize) -> Vec<u64> {
    let before = requests_per_worker(gw);
    let addr: SocketAddr = gw.addr;
    thread::spawn(move || {
        pin(cpu);
        let mut held: Vec<TestClient> = (0..CONNECTIONS)
            .map(|_| TestClient::connect(addr))
            .collect();
        for c in &mut held {
            assert_eq!(c.get("/").status, 200);
        }
    })
    .join()
    .expect("client thread");
    // A worker counts a request once its answer is written, which may be
    // just after the client read it.
    let took = || -> Vec<u64> {
        let after = requests_per_worker(gw);
        before.iter().zip(&after).map(|(b, a)| a.1 - b.1).collect()
    };
    wait_until("every request counted", || {
        took().iter().sum::<u64>() == CONNECTIONS as u64
    });
    took()
}

/// The gateway's two workers, on two different CPUs; `None` when this
/// machine lets the process use only one.
fn two_cpus() -> Option<[usize; 2]> {
    let cpus = ringway::allowed_cpus();
    match cpus[..] {
        [a, b, ..] => Some([a, b]),
        _ => {
            eprintln!("one CPU allowed ({cpus:?}): nothing to steer between");
            None
        }
    }
}

#[test]
fn with_cpu_balance_a_connection_goes_to_the_worker_on_its_cpu() {
    let Some(cpus) = two_cpus() else { return };
    let origin = TestUpstream::ok("ok");
    let gw = TestGateway::proxy_to(
        origin.addr,
        "workers = 2\nconnection-balance = \"cpu\"",
        driver(),
    );
    let workers: Vec<usize> = requests_per_worker(&gw).iter().map(|w| w.0).collect();
    assert_eq!(workers, cpus, "worker i is pinned to the i-th allowed CPU");
    for (worker, &cpu) in cpus.iter().enumerate() {
        let took = requests_from(&gw, cpu);
        let mut want = vec![0; 2];
        want[worker] = CONNECTIONS as u64;
        assert_eq!(
            took, want,
            "connections from CPU {cpu} all went to worker {worker}, pinned there"
        );
    }
}

#[test]
fn with_hash_balance_connections_from_one_cpu_reach_every_worker() {
    let Some(cpus) = two_cpus() else { return };
    let origin = TestUpstream::ok("ok");
    let gw = TestGateway::proxy_to(origin.addr, "workers = 2", driver());
    let took = requests_from(&gw, cpus[0]);
    assert_eq!(took.iter().sum::<u64>(), CONNECTIONS as u64);
    // By hash, all 24 on one worker has a chance of 2 in 2^24.
    assert!(
        took.iter().all(|&n| n > 0),
        "connections from CPU {} spread over both workers: {took:?}",
        cpus[0]
    );
}

#[test]
fn connection_balance_changes_only_at_a_restart() {
    let origin = TestUpstream::ok("ok");
    let gw = TestGateway::proxy_to(origin.addr, "workers = 2", driver());
    let toml = format!(
        "workers = 2\ndriver = \"{}\"\nconnection-balance = \"cpu\"\n\
         [[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}\
         [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"up\"\n",
        driver(),
        origin.addr
    );
    let (code, body) = admin_call(gw.admin_addr(), "PUT", "/config", &[], toml.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["restart_required"],
        serde_json::json!(["connection-balance"]),
        "{body}"
    );
    let (_, got) = admin_call(gw.admin_addr(), "GET", "/config", &[], b"");
    assert_eq!(
        got["config"]["connection-balance"], "hash",
        "the running value stays: {got}"
    );
    assert_eq!(gw.client().get("/").status, 200);
}
