//! Whether a server may take requests: passive outlier ejection, active
//! check results, draining and slow start, in one record per server that
//! every worker shares.
//!
//! A worker asks [`Health::available`] on every pick, so the state that
//! answers it lives in one `AtomicU64` read with a single relaxed load: the
//! ejection's end time, the active-check state, the draining flag and how
//! many times the server has been ejected. Slow start adds one more load
//! (when the server last came back). Writes are rare (a failure streak
//! crossing its threshold, a check result, an admin drain) and use a
//! compare-and-swap on the same word, so no field is ever torn from the
//! others.
//!
//! An ejection ends by itself: `available` compares its end with the clock,
//! so nothing has to run at that moment. Nothing is counted either: how
//! many servers of a group are ejected (for `max-ejected-percent`) is
//! counted when an ejection is decided, by looking at the group's servers,
//! so the figure cannot leak or drift when an ejection expires unseen or a
//! reload removes an ejected server. Decisions for one group are taken one
//! at a time behind a try-lock ([`GroupHealth`]); a worker that finds it
//! taken leaves the ejection to the next failure, whose streak is still
//! over the threshold.
//!
//! Time is milliseconds since a process-wide epoch ([`now_ms`]), passed in
//! by the caller, so tests move the clock instead of sleeping. The
//! ejection's end has 40 bits: 34 years of uptime.
//!
//! Rules, after Envoy's outlier detection and nginx's `slow_start`:
//! - N failures in a row (passive) eject a server for
//!   `base × times ejected`, capped at `max`. The multiplier goes down by
//!   one for every `base` the server then spends back in service, so a
//!   server that failed once last week starts again at `base`.
//! - At most `max-ejected-percent` of a group's servers are ejected at
//!   once, but one always may be when the group has two or more.
//! - A server with active checks starts unknown (not available); its first
//!   check decides (as Envoy does for new hosts, so a start or a reload
//!   does not keep a server out for `healthy-threshold` intervals). After
//!   that, `unhealthy-threshold` failures in a row take it out and
//!   `healthy-threshold` passes in a row bring it back. Any pass ends an
//!   ejection.
//! - A server that is not available (unhealthy, unknown, draining, already
//!   ejected) is not ejected: it is out already, and would only take a
//!   place under the group's cap.
//! - Slow start ramps a server's share from 10% to 100% from the moment it
//!   last became available: back from an ejection, healthy after
//!   unhealthy or unknown, or no longer draining. A server without active
//!   checks that was never ejected does not ramp.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Milliseconds since the process-wide epoch (the first call).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Outlier detection as the engine applies it (mapped from an upstream's
/// `[upstreams.outlier-detection]`; a disabled table means no calls to
/// [`Health::failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutlierParams {
    /// Failures in a row that eject a server (0 counts as 1).
    pub(crate) consecutive_failures: u32,
    pub(crate) base_ejection_ms: u64,
    pub(crate) max_ejection_ms: u64,
    /// 0..=100.
    pub(crate) max_ejected_percent: u8,
}

/// A server's state as far as active checks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActiveState {
    /// The upstream has no active checks.
    Off,
    /// Checks are on and none has answered yet.
    Unknown,
    Healthy,
    Unhealthy,
}

impl ActiveState {
    fn bits(self) -> u64 {
        match self {
            ActiveState::Off => 0,
            ActiveState::Unknown => 1,
            ActiveState::Healthy => 2,
            ActiveState::Unhealthy => 3,
        }
    }

    fn from_bits(bits: u64) -> ActiveState {
        match bits & 0b11 {
            0 => ActiveState::Off,
            1 => ActiveState::Unknown,
            2 => ActiveState::Healthy,
            _ => ActiveState::Unhealthy,
        }
    }

    /// Whether the active state lets requests through.
    fn serves(self) -> bool {
        matches!(self, ActiveState::Off | ActiveState::Healthy)
    }
}

/// The packed word: `until` (ms, bits 0..40), the active state (40..42),
/// draining (42), times ejected (43..64).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

const UNTIL_MASK: u64 = (1 << 40) - 1;
const ACTIVE_SHIFT: u32 = 40;
const DRAINING: u64 = 1 << 42;
const TIMES_SHIFT: u32 = 43;
const TIMES_MAX: u64 = (1 << (64 - TIMES_SHIFT)) - 1;

impl Word {
    /// When the current (or last) ejection ends; 0 when never ejected.
    fn until(self) -> u64 {
        self.0 & UNTIL_MASK
    }

    fn ejected(self, now_ms: u64) -> bool {
        self.until() > now_ms
    }

    fn active(self) -> ActiveState {
        ActiveState::from_bits(self.0 >> ACTIVE_SHIFT)
    }

    fn draining(self) -> bool {
        self.0 & DRAINING != 0
    }

    fn times(self) -> u64 {
        self.0 >> TIMES_SHIFT
    }

    fn available(self, now_ms: u64) -> bool {
        !self.draining() && !self.ejected(now_ms) && self.active().serves()
    }

    fn with_until(self, until: u64) -> Word {
        Word(self.0 & !UNTIL_MASK | until.min(UNTIL_MASK))
    }

    fn with_active(self, a: ActiveState) -> Word {
        Word(self.0 & !(0b11 << ACTIVE_SHIFT) | a.bits() << ACTIVE_SHIFT)
    }

    fn with_draining(self, on: bool) -> Word {
        if on {
            Word(self.0 | DRAINING)
        } else {
            Word(self.0 & !DRAINING)
        }
    }

    fn with_times(self, times: u64) -> Word {
        Word(self.0 & !(TIMES_MAX << TIMES_SHIFT) | times.min(TIMES_MAX) << TIMES_SHIFT)
    }
}

/// Active-check results, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct CheckCounts {
    pub(crate) passed: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// What the admin API shows of a server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthView {
    /// "healthy", "unhealthy", "unknown", "ejected" or "draining" (the
    /// first that applies of draining, ejected, the active state).
    pub(crate) state: &'static str,
    /// Ejections since the record was made.
    pub(crate) ejections: u32,
    /// Time left of the current ejection; 0 when not ejected.
    pub(crate) ejected_for_ms: u64,
    /// Passive failures in a row.
    pub(crate) consecutive_failures: u32,
}

/// One server's health, shared by every worker and the health checker,
/// kept across reloads while the server stays in its upstream.
#[derive(Debug)]
pub(crate) struct Health {
    word: AtomicU64,
    /// When the server last became available after a time out of service
    /// (ms, at least 1); 0 = never, so no slow start. The end of the last
    /// ejection counts too, read from `word`.
    back_at: AtomicU64,
    /// Passive failures in a row.
    failures: AtomicU32,
    /// Active results in a row: the count, with [`PASSING`] set when they
    /// are passes. Written by the health checker only.
    streak: AtomicU32,
    ejections: AtomicU32,
    checks: CheckCounts,
}

const PASSING: u32 = 1 << 31;

/// Takes a group's ejection decision; frees it when dropped.
struct Gate<'a>(&'a AtomicBool);

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The servers among which `max-ejected-percent` is counted (an
/// upstream's, as one generation has them).
#[derive(Debug)]
pub(crate) struct GroupHealth {
    members: Vec<Arc<Health>>,
    deciding: AtomicBool,
}

impl GroupHealth {
    pub(crate) fn new(members: Vec<Arc<Health>>) -> GroupHealth {
        GroupHealth {
            members,
            deciding: AtomicBool::new(false),
        }
    }

    /// How many servers the group has.
    pub(crate) fn servers(&self) -> usize {
        self.members.len()
    }

    /// How many of them are ejected at `now_ms`.
    pub(crate) fn ejected(&self, now_ms: u64) -> usize {
        self.members.iter().filter(|m| m.ejected(now_ms)).count()
    }

    /// How many may be ejected at once: `percent` of the servers, rounded
    /// down, but one when there are two or more.
    pub(crate) fn allowed(&self, percent: u8) -> usize {
        let n = self.members.len();
        let allowed = n * usize::from(percent.min(100)) / 100;
        if n >= 2 {
            allowed.max(1)
        } else {
            allowed
        }
    }

    fn gate(&self) -> Option<Gate<'_>> {
        self.deciding
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Gate(&self.deciding))
    }
}

/// How long an ejection lasts.
enum Length {
    /// After a failure streak: `base × times`, capped.
    Streak { base_ms: u64, max_ms: u64 },
    /// As long as the server asked (Retry-After).
    Fixed(u64),
}

impl Health {
    /// A new record: with active checks on, the server is unknown (not
    /// available) until a check answers.
    pub(crate) fn new(active: bool) -> Health {
        let state = if active {
            ActiveState::Unknown
        } else {
            ActiveState::Off
        };
        Health {
            word: AtomicU64::new(Word(0).with_active(state).0),
            back_at: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            streak: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            checks: CheckCounts::default(),
        }
    }

    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Relaxed))
    }

    /// Applies `f` to the word until it sticks; the words before and
    /// after, or `None` when `f` declined.
    fn update(&self, mut f: impl FnMut(Word) -> Option<Word>) -> Option<(Word, Word)> {
        let mut after = Word(0);
        let before = self
            .word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                after = f(Word(w))?;
                Some(after.0)
            })
            .ok()?;
        Some((Word(before), after))
    }

    /// Whether requests may go to the server now: not draining, not
    /// ejected (an ejection past its end counts as over), and healthy
    /// when active checks are on. One relaxed load.
    pub(crate) fn available(&self, now_ms: u64) -> bool {
        self.load().available(now_ms)
    }

    /// Whether an ejection is in force at `now_ms`.
    pub(crate) fn ejected(&self, now_ms: u64) -> bool {
        self.load().ejected(now_ms)
    }

    /// The share of its weight the server gets, 10..=100 percent, ramping
    /// over `slow_start_ms` from when it last became available.
    pub(crate) fn slow_start_percent(&self, now_ms: u64, slow_start_ms: u64) -> u32 {
        if slow_start_ms == 0 {
            return 100;
        }
        let since = self
            .back_at
            .load(Ordering::Relaxed)
            .max(self.load().until());
        if since == 0 {
            return 100;
        }
        let elapsed = now_ms.saturating_sub(since);
        if elapsed >= slow_start_ms {
            return 100;
        }
        10 + (90 * elapsed / slow_start_ms) as u32
    }

    /// A request to the server succeeded: the failure streak ends. Costs
    /// a load only, unless there was a streak.
    pub(crate) fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A request to the server failed; true when this failure ejected it.
    pub(crate) fn failure(&self, now_ms: u64, od: &OutlierParams, group: &GroupHealth) -> bool {
        let n = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n < od.consecutive_failures.max(1) {
            return false;
        }
        let length = Length::Streak {
            base_ms: od.base_ejection_ms.max(1),
            max_ms: od.max_ejection_ms.max(od.base_ejection_ms).max(1),
        };
        self.eject(now_ms, length, od.max_ejected_percent, group)
    }

    /// Ejects the server for `ms` (an answer's Retry-After, which the
    /// caller caps), within the group's `max_ejected_percent`; an ejection
    /// already in force is extended, never shortened. True when the server
    /// is ejected now. The multiplier of later ejections is not raised.
    pub(crate) fn eject_for(
        &self,
        now_ms: u64,
        ms: u64,
        od: &OutlierParams,
        group: &GroupHealth,
    ) -> bool {
        let until = now_ms.saturating_add(ms.max(1));
        let mut ejected = false;
        let _ = self.update(|w| {
            ejected = w.ejected(now_ms);
            (ejected && w.until() < until).then(|| w.with_until(until))
        });
        ejected
            || self.eject(
                now_ms,
                Length::Fixed(ms.max(1)),
                od.max_ejected_percent,
                group,
            )
    }

    fn eject(&self, now_ms: u64, length: Length, percent: u8, group: &GroupHealth) -> bool {
        if !self.available(now_ms) {
            return false;
        }
        let Some(_gate) = group.gate() else {
            return false;
        };
        let others = group
            .members
            .iter()
            .filter(|m| !std::ptr::eq(m.as_ref(), self) && m.ejected(now_ms))
            .count();
        if others >= group.allowed(percent) {
            return false;
        }
        let done = self.update(|w| {
            if !w.available(now_ms) {
                return None;
            }
            Some(match length {
                Length::Streak { base_ms, max_ms } => {
                    // One step down for every `base` in service since the
                    // last ejection ended.
                    let quiet = match w.until() {
                        0 => 0,
                        end => now_ms.saturating_sub(end) / base_ms,
                    };
                    let times = w.times().saturating_sub(quiet) + 1;
                    let ms = base_ms.saturating_mul(times).min(max_ms);
                    w.with_times(times).with_until(now_ms.saturating_add(ms))
                }
                Length::Fixed(ms) => w.with_until(now_ms.saturating_add(ms)),
            })
        });
        if done.is_none() {
            return false;
        }
        self.failures.store(0, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Records an active check's result. A pass ends an ejection. Returns
    /// the active state's change, if any: from unknown the first result
    /// decides; otherwise `unhealthy_threshold` failures in a row make the
    /// server unhealthy and `healthy_threshold` passes in a row healthy.
    pub(crate) fn check_result(
        &self,
        passed: bool,
        now_ms: u64,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Option<(ActiveState, ActiveState)> {
        let counter = if passed {
            &self.checks.passed
        } else {
            &self.checks.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let flag = if passed { PASSING } else { 0 };
        let mut streak = 0;
        let _ = self
            .streak
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                streak = if s & PASSING == flag {
                    (s & !PASSING).saturating_add(1).min(PASSING - 1)
                } else {
                    1
                };
                Some(streak | flag)
            });
        let (before, after) = self.update(|w| {
            let to = match (w.active(), passed) {
                (ActiveState::Unknown, true) => ActiveState::Healthy,
                (ActiveState::Unknown, false) => ActiveState::Unhealthy,
                (ActiveState::Unhealthy, true) if streak >= healthy_threshold => {
                    ActiveState::Healthy
                }
                (ActiveState::Healthy | ActiveState::Off, false)
                    if streak >= unhealthy_threshold =>
                {
                    ActiveState::Unhealthy
                }
                // Results only arrive while checks are on: a server that
                // had none keeps serving.
                (ActiveState::Off, true) => ActiveState::Healthy,
                (same, _) => same,
            };
            let mut next = w.with_active(to);
            if passed && w.ejected(now_ms) {
                next = next.with_until(now_ms.max(1));
            }
            (next != w).then_some(next)
        })?;
        let (from, to) = (before.active(), after.active());
        if !from.serves() && to.serves() {
            self.back_at.store(now_ms.max(1), Ordering::Relaxed);
        }
        (from != to).then_some((from, to))
    }

    /// Turns active checks on or off for the server (a reload changed
    /// its upstream's `health-check`). A server that served without checks
    /// keeps serving until they say otherwise.
    pub(crate) fn set_active(&self, on: bool) {
        let changed = self.update(|w| {
            let to = match (on, w.active()) {
                (true, ActiveState::Off) => ActiveState::Healthy,
                (true, same) => same,
                (false, _) => ActiveState::Off,
            };
            (to != w.active()).then(|| w.with_active(to))
        });
        if changed.is_some() {
            self.streak.store(0, Ordering::Relaxed);
        }
    }

    /// Starts or ends draining: a draining server takes no new requests
    /// but stays in its upstream. Ending it starts slow start.
    pub(crate) fn set_draining(&self, on: bool, now_ms: u64) {
        let changed = self.update(|w| (w.draining() != on).then(|| w.with_draining(on)));
        if changed.is_some() && !on {
            self.back_at.store(now_ms.max(1), Ordering::Relaxed);
        }
    }

    pub(crate) fn draining(&self) -> bool {
        self.load().draining()
    }

    /// The active-check state.
    #[cfg(test)]
    pub(crate) fn active(&self) -> ActiveState {
        self.load().active()
    }

    /// Active-check results so far.
    pub(crate) fn checks(&self) -> &CheckCounts {
        &self.checks
    }

    /// What the admin API shows.
    pub(crate) fn view(&self, now_ms: u64) -> HealthView {
        let w = self.load();
        let state = if w.draining() {
            "draining"
        } else if w.ejected(now_ms) {
            "ejected"
        } else {
            match w.active() {
                ActiveState::Off | ActiveState::Healthy => "healthy",
                ActiveState::Unknown => "unknown",
                ActiveState::Unhealthy => "unhealthy",
            }
        };
        HealthView {
            state,
            ejections: self.ejections.load(Ordering::Relaxed),
            ejected_for_ms: w.until().saturating_sub(now_ms),
            consecutive_failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OD: OutlierParams = OutlierParams {
        consecutive_failures: 3,
        base_ejection_ms: 1_000,
        max_ejection_ms: 2_500,
        max_ejected_percent: 50,
    };

    fn group(n: usize, active: bool) -> (Vec<Arc<Health>>, GroupHealth) {
        let members: Vec<_> = (0..n).map(|_| Arc::new(Health::new(active))).collect();
        let group = GroupHealth::new(members.clone());
        (members, group)
    }

    /// Fails `h` until it is ejected (at most `OD.consecutive_failures`
    /// times); whether it was.
    fn fail_streak(h: &Health, now: u64, g: &GroupHealth) -> bool {
        (0..OD.consecutive_failures).any(|_| h.failure(now, &OD, g))
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_streak() {
        let (s, g) = group(2, false);
        let h = &s[0];
        assert!(!h.failure(10, &OD, &g));
        assert!(!h.failure(10, &OD, &g));
        h.success();
        assert_eq!(h.view(10).consecutive_failures, 0);
        assert!(!h.failure(10, &OD, &g));
        assert!(!h.failure(10, &OD, &g));
        assert!(h.available(10));
        assert!(h.failure(10, &OD, &g), "the third failure in a row ejects");
        assert!(!h.available(10));
        let v = h.view(10);
        assert_eq!(v.state, "ejected");
        assert_eq!(v.ejections, 1);
        assert_eq!(v.ejected_for_ms, 1_000);
        assert_eq!(v.consecutive_failures, 0);
        assert!(s[1].available(10));
    }

    #[test]
    fn ejection_time_grows_with_times_ejected_up_to_the_cap() {
        let (s, g) = group(2, false);
        let h = &s[0];
        let mut now = 0;
        for want in [1_000, 2_000, 2_500, 2_500] {
            assert!(fail_streak(h, now, &g));
            assert_eq!(h.view(now).ejected_for_ms, want);
            assert!(!h.available(now + want - 1));
            assert!(h.available(now + want), "the ejection ends at its time");
            // Fails again as soon as it is back: no time to step down.
            now += want;
        }
        assert_eq!(h.view(now).ejections, 4);
    }

    #[test]
    fn time_in_service_steps_the_multiplier_down() {
        let (s, g) = group(2, false);
        let h = &s[0];
        assert!(fail_streak(h, 0, &g)); // 1 s, ends at 1_000
        assert!(fail_streak(h, 1_000, &g)); // 2 s, ends at 3_000
                                            // Back for 1.5 base periods: one step down, then up again.
        assert!(fail_streak(h, 4_500, &g));
        assert_eq!(h.view(4_500).ejected_for_ms, 2_000);
        // Back for ten periods: from the start.
        assert!(fail_streak(h, 16_500, &g));
        assert_eq!(h.view(16_500).ejected_for_ms, 1_000);
    }

    #[test]
    fn max_ejected_percent_limits_ejections_of_a_group() {
        let (s, g) = group(4, false);
        assert_eq!(g.allowed(50), 2);
        assert!(fail_streak(&s[0], 0, &g));
        assert!(fail_streak(&s[1], 0, &g));
        assert!(!fail_streak(&s[2], 0, &g), "half of four are out already");
        assert_eq!(g.ejected(0), 2);
        assert!(s[2].available(0));
        // The streak stays over the threshold: the next failure after an
        // ejection ends ejects.
        assert_eq!(s[2].view(0).consecutive_failures, 3);
        assert!(s[2].failure(1_000, &OD, &g));
        assert_eq!(g.ejected(1_000), 1);
    }

    #[test]
    fn one_server_may_always_be_ejected_from_two_or_more() {
        for (n, percent, allowed) in [
            (2, 0, 1),
            (2, 10, 1),
            (3, 50, 1),
            (10, 10, 1),
            (10, 25, 2),
            (4, 100, 4),
            (1, 50, 0),
            (1, 100, 1),
            (0, 100, 0),
        ] {
            let (_, g) = group(n, false);
            assert_eq!(g.allowed(percent), allowed, "{n} servers at {percent}%");
        }
        let (s, g) = group(2, false);
        let od = OutlierParams {
            max_ejected_percent: 0,
            ..OD
        };
        assert!((0..3).any(|_| s[0].failure(0, &od, &g)));
        assert!(!(0..3).any(|_| s[1].failure(0, &od, &g)));
        let (s, g) = group(1, false);
        assert!(!fail_streak(&s[0], 0, &g), "the only server stays at 50%");
    }

    #[test]
    fn an_expired_ejection_frees_its_place_without_anyone_looking() {
        let (s, g) = group(2, false);
        assert!(fail_streak(&s[0], 0, &g));
        assert_eq!(g.ejected(999), 1);
        // Nobody asked s[0] anything since: its place is free at 1_000.
        assert_eq!(g.ejected(1_000), 0);
        assert!(fail_streak(&s[1], 1_000, &g));
        // A new generation's group counts the same servers the same way.
        let next = GroupHealth::new(s.clone());
        assert_eq!(next.ejected(1_000), 1);
        assert!(!fail_streak(&s[0], 1_000, &next));
    }

    #[test]
    fn failures_of_an_unavailable_server_do_not_eject_it() {
        let (s, g) = group(3, true);
        // Unknown.
        assert!(!fail_streak(&s[0], 0, &g));
        s[1].check_result(true, 0, 2, 3);
        s[1].set_draining(true, 0);
        assert!(!fail_streak(&s[1], 0, &g));
        assert_eq!(g.ejected(0), 0);
        // An ejected server's late failures do not extend its ejection.
        s[2].check_result(true, 0, 2, 3);
        assert!(fail_streak(&s[2], 0, &g));
        assert!(!fail_streak(&s[2], 500, &g));
        assert_eq!(s[2].view(500).ejected_for_ms, 500);
    }

    #[test]
    fn a_taken_decision_leaves_the_ejection_to_the_next_failure() {
        let (s, g) = group(2, false);
        let gate = g.gate().expect("free");
        assert!(!fail_streak(&s[0], 0, &g));
        drop(gate);
        assert!(s[0].failure(0, &OD, &g));
    }

    #[test]
    fn active_checks_start_unknown_and_the_first_result_decides() {
        let h = Health::new(true);
        assert!(!h.available(0));
        assert_eq!(h.view(0).state, "unknown");
        assert_eq!(
            h.check_result(true, 5, 2, 3),
            Some((ActiveState::Unknown, ActiveState::Healthy))
        );
        assert!(h.available(5));
        let h = Health::new(true);
        assert_eq!(
            h.check_result(false, 5, 2, 3),
            Some((ActiveState::Unknown, ActiveState::Unhealthy))
        );
        assert_eq!(h.view(5).state, "unhealthy");
        let c = h.checks();
        assert_eq!(
            (
                c.passed.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed)
            ),
            (0, 1)
        );
    }

    #[test]
    fn active_thresholds_count_results_in_a_row() {
        let h = Health::new(true);
        h.check_result(true, 0, 2, 3);
        // Two failures, a pass, then three failures.
        assert_eq!(h.check_result(false, 1, 2, 3), None);
        assert_eq!(h.check_result(false, 2, 2, 3), None);
        assert_eq!(h.check_result(true, 3, 2, 3), None);
        assert_eq!(h.check_result(false, 4, 2, 3), None);
        assert_eq!(h.check_result(false, 5, 2, 3), None);
        assert!(h.available(5));
        assert_eq!(
            h.check_result(false, 6, 2, 3),
            Some((ActiveState::Healthy, ActiveState::Unhealthy))
        );
        assert!(!h.available(6));
        // One pass, a failure, then two passes.
        assert_eq!(h.check_result(true, 7, 2, 3), None);
        assert_eq!(h.check_result(false, 8, 2, 3), None);
        assert_eq!(h.check_result(true, 9, 2, 3), None);
        assert!(!h.available(9));
        assert_eq!(
            h.check_result(true, 10, 2, 3),
            Some((ActiveState::Unhealthy, ActiveState::Healthy))
        );
        assert!(h.available(10));
        let c = h.checks();
        assert_eq!(c.passed.load(Ordering::Relaxed), 5);
        assert_eq!(c.failed.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_passing_check_ends_an_ejection() {
        let (s, g) = group(2, true);
        s[0].check_result(true, 0, 2, 3);
        assert!(fail_streak(&s[0], 100, &g));
        assert!(!s[0].available(200));
        // A failed check changes nothing; a pass brings it back at once.
        assert_eq!(s[0].check_result(false, 200, 2, 3), None);
        assert!(!s[0].available(200));
        assert_eq!(s[0].check_result(true, 300, 2, 3), None);
        assert!(s[0].available(300));
        assert_eq!(g.ejected(300), 0);
        assert_eq!(s[0].view(300).state, "healthy");
        // It came back at 300: slow start counts from there.
        assert_eq!(s[0].slow_start_percent(300, 1_000), 10);
    }

    #[test]
    fn drain_keeps_the_server_out_until_it_ends() {
        let h = Health::new(false);
        h.set_draining(true, 0);
        assert!(h.draining());
        assert!(!h.available(0));
        assert_eq!(h.view(0).state, "draining");
        h.set_draining(false, 1_000);
        assert!(!h.draining());
        assert!(h.available(1_000));
        assert_eq!(h.slow_start_percent(1_000, 1_000), 10);
        // Ending a drain that was not on does not restart slow start.
        h.set_draining(false, 5_000);
        assert_eq!(h.slow_start_percent(5_000, 1_000), 100);
    }

    #[test]
    fn slow_start_ramps_linearly_from_when_the_server_came_back() {
        let h = Health::new(false);
        assert_eq!(h.slow_start_percent(0, 10_000), 100, "never out: no ramp");
        let h = Health::new(true);
        h.check_result(false, 0, 2, 3);
        h.check_result(true, 1_000, 2, 3);
        h.check_result(true, 2_000, 2, 3);
        for (now, want) in [
            (2_000, 10),
            (3_000, 19),
            (7_000, 55),
            (11_999, 99),
            (12_000, 100),
            (50_000, 100),
        ] {
            assert_eq!(h.slow_start_percent(now, 10_000), want, "at {now}");
        }
        assert_eq!(h.slow_start_percent(3_000, 0), 100, "slow start off");
        // Back from an ejection: from the moment it ended.
        let (s, g) = group(2, false);
        assert!(fail_streak(&s[0], 100, &g));
        assert_eq!(s[0].slow_start_percent(1_100, 1_000), 10);
        assert_eq!(s[0].slow_start_percent(1_600, 1_000), 55);
        assert_eq!(s[0].slow_start_percent(2_100, 1_000), 100);
    }

    #[test]
    fn retry_after_ejects_for_the_time_given_and_only_extends() {
        let (s, g) = group(4, false);
        assert!(s[0].eject_for(0, 5_000, &OD, &g));
        assert_eq!(s[0].view(0).ejected_for_ms, 5_000);
        assert!(s[0].eject_for(1_000, 1_000, &OD, &g), "already ejected");
        assert_eq!(s[0].view(1_000).ejected_for_ms, 4_000, "not shortened");
        assert!(s[0].eject_for(1_000, 8_000, &OD, &g));
        assert_eq!(s[0].view(1_000).ejected_for_ms, 8_000);
        assert!(s[0].available(9_000));
        // It does not raise the failure multiplier.
        assert!(fail_streak(&s[0], 9_000, &g));
        assert_eq!(s[0].view(9_000).ejected_for_ms, 1_000);
        // It counts under the group's cap.
        assert!(s[1].eject_for(9_000, 5_000, &OD, &g));
        assert!(!s[2].eject_for(9_000, 5_000, &OD, &g));
        assert_eq!(s[2].view(9_000).state, "healthy");
    }

    #[test]
    fn turning_checks_on_keeps_a_serving_server_in() {
        let h = Health::new(false);
        h.set_active(true);
        assert_eq!(h.active(), ActiveState::Healthy);
        assert!(h.available(0));
        h.check_result(false, 1, 2, 1);
        assert!(!h.available(1));
        h.set_active(false);
        assert_eq!(h.active(), ActiveState::Off);
        assert!(h.available(2));
    }

    #[test]
    fn fields_of_the_word_do_not_overlap() {
        let w = Word(0)
            .with_until(UNTIL_MASK)
            .with_active(ActiveState::Unhealthy)
            .with_draining(true)
            .with_times(TIMES_MAX);
        assert_eq!(w.0, u64::MAX);
        let w = w
            .with_until(0)
            .with_active(ActiveState::Off)
            .with_draining(false)
            .with_times(0);
        assert_eq!(w.0, 0);
        assert_eq!(Word(0).with_until(u64::MAX).until(), UNTIL_MASK);
        assert_eq!(Word(0).with_times(u64::MAX).times(), TIMES_MAX);
    }
}
