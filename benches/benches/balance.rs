//! One pick of a server by each balancing policy, over groups of 10 and
//! 100 servers with weights 1 to 3, all available, with requests in flight
//! and latency estimates; hash picks cycle through 1,024 keys.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ringway::bench::{hash_key, Balancer, Load, Maglev, Policy, Servers};
use ringway::bench::{Picker, DEFAULT_DECAY_NS, MAGLEV_SIZE};

const NOW_NS: u64 = 60_000_000_000;

struct Group {
    names: Vec<String>,
    /// Weight and state side by side, as a gateway keeps them per server.
    servers: Vec<(u32, Load)>,
}

impl Group {
    fn new(n: usize) -> Group {
        let servers: Vec<(u32, Load)> = (0..n)
            .map(|i| (1 + (i % 3) as u32, Load::default()))
            .collect();
        for (i, (_, load)) in servers.iter().enumerate() {
            // A latency sample of 1 to 20 ms, then 0 to 4 requests in flight.
            load.start();
            let latency = Duration::from_millis(1 + (i as u64 * 7) % 20);
            load.finish(latency, NOW_NS - 1_000_000_000, DEFAULT_DECAY_NS);
            for _ in 0..i % 5 {
                load.start();
            }
        }
        Group {
            names: (0..n)
                .map(|i| format!("10.0.{}.{}:8080", i / 256, i % 256))
                .collect(),
            servers,
        }
    }

    fn maglev(&self) -> Arc<Maglev> {
        let ids: Vec<(&[u8], u32)> = self
            .names
            .iter()
            .zip(&self.servers)
            .map(|(name, (w, _))| (name.as_bytes(), *w))
            .collect();
        Arc::new(Maglev::new(&ids, MAGLEV_SIZE))
    }
}

impl Servers for Group {
    fn len(&self) -> usize {
        self.servers.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.servers[i].0
    }
    fn load(&self, i: usize) -> &Load {
        &self.servers[i].1
    }
}

fn balance(c: &mut Criterion) {
    let keys: Vec<u64> = (0..1024)
        .map(|k| hash_key(format!("198.51.100.{k}").as_bytes()))
        .collect();
    for n in [10, 100] {
        let group = Group::new(n);
        let policies = [
            ("round-robin", Policy::RoundRobin),
            ("least-request", Policy::LeastRequest),
            (
                "ewma",
                Policy::Ewma {
                    decay_ns: DEFAULT_DECAY_NS,
                },
            ),
            ("random", Policy::Random),
            ("hash", Policy::Hash(group.maglev())),
        ];
        let mut g = c.benchmark_group(format!("balance/{n}"));
        for (name, policy) in policies {
            let balancer = Balancer::new(policy, 0x5eed);
            let mut k = 0;
            g.bench_function(name, |b| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    std::hint::black_box(balancer.pick(&group, keys[k], NOW_NS))
                })
            });
        }
        g.finish();
    }
}

/// The whole choice as a worker makes it per request, over a config's
/// upstream of 100 servers (weights 1 to 3, slow start on, two backups):
/// the shared health word of every server the policy looks at, then the
/// policy.
fn pick(c: &mut Criterion) {
    let keys: Vec<u64> = (0..1024)
        .map(|k| hash_key(format!("198.51.100.{k}").as_bytes()))
        .collect();
    let servers: Vec<String> = (0..100)
        .map(|i| {
            let backup = if i >= 98 { ", backup = true" } else { "" };
            format!(
                "{{ address = \"10.0.{}.{}:8080\", weight = {}{backup} }}",
                i / 256,
                i % 256,
                1 + i % 3
            )
        })
        .collect();
    let mut g = c.benchmark_group("pick/100");
    for (name, policy) in [
        ("round-robin", ""),
        (
            "least-request",
            "[upstreams.balance]\npolicy = \"least-request\"\n",
        ),
        ("ewma", "[upstreams.balance]\npolicy = \"ewma\"\n"),
        ("random", "[upstreams.balance]\npolicy = \"random\"\n"),
        (
            "hash",
            "[upstreams.balance]\npolicy = \"hash\"\nkey = \"client-ip\"\n",
        ),
    ] {
        let toml = format!(
            "[[upstreams]]\nname = \"app\"\nservers = [{}]\nslow-start = \"30s\"\n{policy}\
             [[routes]]\nupstream = \"app\"\n[[listeners]]\naddress = \"127.0.0.1:0\"\n",
            servers.join(", ")
        );
        let config = ringway_config::Config::from_toml_str(&toml).expect("valid config");
        let picker = Picker::new(&config);
        let mut k = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                k = (k + 1) & 1023;
                std::hint::black_box(picker.pick(keys[k]))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, balance, pick);
criterion_main!(benches);
