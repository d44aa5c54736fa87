//! Which CPUs the generator's threads are pinned to.
//!
//! By default the threads go round robin over the CPUs this process may
//! use — its affinity mask, which `taskset` and cpusets set — read from
//! `/proc/self/status` so that no unsafe `sched_getaffinity` call is
//! needed. `--cpus` names them explicitly (`0,1`, `2-5`, `0-1,6`), so the
//! generator can be kept off the cores of the server under test.

/// Parses a CPU list: comma-separated numbers and inclusive ranges.
pub fn parse_list(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("`{part}` is not a CPU number or range (e.g. 0,1 or 2-5)");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b >= 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                let c: usize = part.parse().map_err(|_| bad())?;
                if c >= 4096 {
                    return Err(bad());
                }
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err("empty CPU list".to_string());
    }
    Ok(out)
}

/// CPUs this process may run on, ascending; falls back to
/// `0..available_parallelism` where `/proc` is unavailable.
pub fn allowed() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|l| parse_list(l.trim()).ok())
        })
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        })
}

/// The CPU of each thread: `threads` of them, round robin over `cpus`.
pub fn assign(threads: usize, cpus: &[usize]) -> Vec<usize> {
    let cpus: &[usize] = if cpus.is_empty() { &[0] } else { cpus };
    (0..threads.max(1)).map(|i| cpus[i % cpus.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok: &[(&str, &[usize])] = &[
            ("0", &[0]),
            ("0,1", &[0, 1]),
            ("0-3", &[0, 1, 2, 3]),
            ("0-1, 6", &[0, 1, 6]),
        ];
        for (text, want) in ok {
            assert_eq!(parse_list(text).as_deref(), Ok(*want), "{text}");
        }
        for bad in ["", "a", "3-1", "1-", "9999"] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assign_round_robin() {
        assert_eq!(assign(3, &[4, 5]), vec![4, 5, 4]);
        assert_eq!(assign(1, &[]), vec![0]);
    }

    #[test]
    fn allowed_is_not_empty() {
        assert!(!allowed().is_empty());
    }
}
