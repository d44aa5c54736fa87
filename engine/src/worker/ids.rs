//! Where one worker's request IDs and trace ids come from.
//!
//! Request IDs (`http::request_id`) are the process's random prefix and a
//! permutation of this worker's id and its own counter: unique without
//! talking to the other workers. Trace and span ids (`http::trace`) are
//! random: a wyrand generator per worker (64-bit state, one multiply per
//! 64 bits, passes BigCrush; not cryptographic, which ids that only need
//! to be unlikely to collide do not need), seeded from the OS when the
//! worker starts. Both live in `Cell`s on the worker: no lock, no atomic,
//! no allocation per request.

use std::cell::Cell;
use std::sync::OnceLock;

use crate::http::request_id::{IdKeys, RequestId};
use crate::http::trace::{Parent, Trace};

/// One worker's source of ids.
pub(crate) struct Ids {
    keys: IdKeys,
    worker: u16,
    counter: Cell<u64>,
    rng: Cell<u64>,
}

impl Ids {
    pub(crate) fn new(worker: usize) -> Ids {
        let [seed] = os_random::<1>().unwrap_or_else(|| {
            // No OS randomness: distinct per worker still, which is what
            // keeps two workers' traces apart.
            let [a, b, _] = *process_random();
            [a ^ b.rotate_left(worker as u32 % 64)]
        });
        Ids {
            keys: IdKeys::new(*process_random()),
            worker: worker as u16,
            counter: Cell::new(0),
            rng: Cell::new(seed ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    /// A new request ID.
    pub(crate) fn request_id(&self) -> RequestId {
        let n = self.counter.get();
        self.counter.set(n.wrapping_add(1));
        RequestId::generated(&self.keys, self.worker, n)
    }

    /// The trace this request is part of: the client's continued, or a new
    /// one.
    pub(crate) fn trace(&self, parent: Option<Parent>) -> Trace {
        let span = self.nonzero().to_be_bytes();
        match parent {
            Some(p) => Trace::continued(p, span),
            None => {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&self.nonzero().to_be_bytes());
                trace_id[8..].copy_from_slice(&self.next().to_be_bytes());
                Trace::started(trace_id, span)
            }
        }
    }

    /// wyrand (Wang Yi's wyhash PRNG).
    fn next(&self) -> u64 {
        let s = self.rng.get().wrapping_add(0xa076_1d64_78bd_642f);
        self.rng.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// A random value that is not zero (an all-zero id is invalid).
    fn nonzero(&self) -> u64 {
        loop {
            let x = self.next();
            if x != 0 {
                return x;
            }
        }
    }
}

/// The per-process random values: the request ID prefix and permutation
/// keys, drawn once, the same for every worker.
fn process_random() -> &'static [u64; 3] {
    static RANDOM: OnceLock<[u64; 3]> = OnceLock::new();
    RANDOM.get_or_init(|| {
        os_random::<3>().unwrap_or_else(|| {
            // Without OS randomness: the clock, the process id and std's
            // own hash seeding, which differ from run to run.
            use std::hash::{BuildHasher, RandomState};
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let s = RandomState::new();
            let id = std::process::id();
            [
                s.hash_one((now, id, 0u8)),
                s.hash_one((now, id, 1u8)),
                s.hash_one((now, id, 2u8)),
            ]
        })
    })
}

fn os_random<const N: usize>() -> Option<[u64; N]> {
    let mut bytes = [0u8; 24];
    let bytes = &mut bytes[..N * 8];
    aws_lc_rs::rand::fill(bytes).ok()?;
    let mut out = [0u64; N];
    for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *v = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn workers_share_the_prefix_and_never_an_id() {
        let (a, b) = (Ids::new(0), Ids::new(1));
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            for ids in [&a, &b] {
                let id = ids.request_id();
                assert!(seen.insert(id.as_bytes().to_vec()));
            }
        }
        assert_eq!(
            a.request_id().as_bytes()[..16],
            b.request_id().as_bytes()[..16]
        );
    }

    #[test]
    fn new_traces_differ_per_request_and_per_worker() {
        let (a, b) = (Ids::new(0), Ids::new(1));
        let mut traces = HashSet::new();
        let mut spans = HashSet::new();
        for _ in 0..1000 {
            for ids in [&a, &b] {
                let t = ids.trace(None);
                assert!(!t.is_continued());
                assert!(traces.insert(t.trace_id_hex()));
                assert!(spans.insert(t.span_id_hex()));
            }
        }
    }
}
