//! Which CPUs this process may run on, and how many workers that allows.
//!
//! `workers = "auto"` must respect what the operator restricted, not the
//! machine's core count: the affinity mask (`taskset`, cpusets) and a
//! cgroup CPU quota (containers with `--cpus`). A quota of 1.5 CPUs allows
//! two workers (rounded up: a worker that is throttled part of the time
//! still beats an idle core's worth of queued connections).

use std::fs;

/// CPUs in this thread's affinity mask, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data for which all-zero is a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size we pass.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, the capacity of `set`.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// The cgroup CPU quota as a whole number of CPUs (rounded up), if any.
pub(crate) fn cgroup_cpu_limit() -> Option<usize> {
    // cgroup v2: "max 100000" or "150000 100000".
    if let Ok(s) = fs::read_to_string(cgroup_v2_path("cpu.max")) {
        let mut it = s.split_whitespace();
        let quota = it.next()?;
        let period: f64 = it.next()?.parse().ok()?;
        return quota_cpus(quota.parse().ok()?, period);
    }
    // cgroup v1.
    let quota: f64 = fs::read_to_string("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let period: f64 = fs::read_to_string("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    quota_cpus(quota, period)
}

fn quota_cpus(quota: f64, period: f64) -> Option<usize> {
    if quota <= 0.0 || period <= 0.0 {
        return None;
    }
    Some(((quota / period).ceil() as usize).max(1))
}

/// The process's own cgroup v2 directory, falling back to the root.
fn cgroup_v2_path(file: &str) -> String {
    let own = fs::read_to_string("/proc/self/cgroup").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(|p| p.trim().to_string())
    });
    match own {
        Some(p) if p != "/" => {
            let candidate = format!("/sys/fs/cgroup{p}/{file}");
            if fs::metadata(&candidate).is_ok() {
                return candidate;
            }
            format!("/sys/fs/cgroup/{file}")
        }
        _ => format!("/sys/fs/cgroup/{file}"),
    }
}

/// The CPU each worker is pinned to. `requested` is `None` for "auto".
pub(crate) fn plan(
    requested: Option<usize>,
    allowed: &[usize],
    quota: Option<usize>,
) -> Vec<usize> {
    let allowed: &[usize] = if allowed.is_empty() { &[0] } else { allowed };
    let count = match requested {
        Some(n) => n.max(1),
        None => allowed.len().min(quota.unwrap_or(usize::MAX)).max(1),
    };
    (0..count).map(|i| allowed[i % allowed.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (
        Option<usize>,
        &'static [usize],
        Option<usize>,
        &'static [usize],
    );

    #[test]
    fn plan_table() {
        let cases: &[Case] = &[
            (None, &[0, 1, 2, 3], None, &[0, 1, 2, 3]),
            (None, &[3], None, &[3]),
            (None, &[0, 1, 2, 3], Some(2), &[0, 1]),
            (None, &[2, 5], Some(8), &[2, 5]),
            (Some(3), &[3], None, &[3, 3, 3]),
            (Some(3), &[1, 2], None, &[1, 2, 1]),
            (None, &[], None, &[0]),
        ];
        for (req, allowed, quota, want) in cases {
            assert_eq!(
                plan(*req, allowed, *quota),
                *want,
                "{req:?} {allowed:?} {quota:?}"
            );
        }
    }

    #[test]
    fn quota_rounds_up() {
        assert_eq!(quota_cpus(150_000.0, 100_000.0), Some(2));
        assert_eq!(quota_cpus(50_000.0, 100_000.0), Some(1));
        assert_eq!(quota_cpus(-1.0, 100_000.0), None);
    }

    #[test]
    fn allowed_cpus_is_nonempty() {
        assert!(!allowed_cpus().is_empty());
    }
}
