//! The process figures Prometheus' client libraries export under the
//! standard `process_*` names, read from `/proc/self` at scrape time.
//!
//! Read on the admin thread only, once per scrape: a few small files, so a
//! scrape costs well under a millisecond here and nothing on the workers.

use std::time::{SystemTime, UNIX_EPOCH};

/// One reading; a figure the system would not give is `None`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Process {
    pub(crate) resident_bytes: Option<u64>,
    pub(crate) virtual_bytes: Option<u64>,
    pub(crate) cpu_seconds: Option<f64>,
    pub(crate) start_time: Option<f64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: Option<u64>,
}

impl Process {
    pub(crate) fn read() -> Process {
        // SAFETY: sysconf only reads a system constant.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().and_then(stat_fields);
        let field = |i: usize| -> Option<u64> { fields.as_ref()?.get(i)?.parse().ok() };
        let tick = (tick > 0).then_some(tick as f64);
        // Fields after the command (numbered from 3 in proc(5)): utime is
        // 14, stime 15, starttime 22, vsize 23, rss 24.
        let cpu_seconds = tick.and_then(|t| Some((field(14)? + field(15)?) as f64 / t));
        let start_time = tick.and_then(|t| Some(boot_time()? + field(22)? as f64 / t));
        Process {
            resident_bytes: field(24).map(|p| p * page.max(0) as u64),
            virtual_bytes: field(23),
            cpu_seconds,
            start_time,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: max_fds(),
        }
    }
}

/// The fields of `/proc/self/stat` indexed as proc(5) numbers them (1 is
/// the pid); the command may hold spaces and parentheses, so the rest is
/// split after its last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let end = stat.rfind(')')?;
    let mut fields = vec!["", "", ""];
    fields.extend(stat[end + 1..].split_whitespace());
    Some(fields)
}

/// System boot time, seconds since the epoch (`btime` in /proc/stat).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line[6..].trim().parse::<u64>().ok().map(|s| s as f64)
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    ok.then_some(lim.rlim_cur)
}

/// Seconds since the epoch, now.
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_read() {
        let p = Process::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 1 << 20));
        assert!(p.open_fds.is_some_and(|n| n >= 3));
        assert!(p.cpu_seconds.is_some());
        let started = p.start_time.expect("start time");
        let now = unix_seconds(SystemTime::now());
        assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0);
    }

    #[test]
    fn a_command_with_spaces_and_parentheses_is_skipped() {
        let f = stat_fields("42 (a b) c) R 1 2 3").expect("fields");
        assert_eq!(f[3], "R");
        assert_eq!(f[4], "1");
    }
}
