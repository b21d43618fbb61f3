//! A rate and a time left that are true: measured between moments the iteration
//! counter was seen to advance, never guessed before it has. Chains that wait for a
//! core (or for their step-size tuning) show that they have not started, not
//! "0 iterations/s, about 400000000000000 s left".

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Advances of the counter the rate is measured over: the newest ones, so the rate
/// follows a change of pace (another subtype count's chains finishing, a core freed).
const ADVANCES_KEPT: usize = 16;

/// Shortest stretch a rate is measured over: shorter ones mostly measure when the
/// counters happened to be read.
const MIN_MEASURED: Duration = Duration::from_millis(500);

/// What can be said about a counter's progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimate {
    /// The counter has not advanced since it was first read.
    NotStarted,
    /// It has advanced, but not yet over a stretch long enough to measure a rate.
    Measuring,
    /// Iterations per second between measured advances, and the seconds left at it.
    Rate { per_s: f64, left_s: f64 },
}

/// Watches one counter of iterations (read every so often) and measures its rate.
#[derive(Debug, Default)]
pub struct RateMeter {
    /// The value at the first reading: work done before the meter watched is not timed.
    first: Option<u64>,
    /// (when, value) at the readings where the counter had advanced, newest last.
    advances: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a reading of the counter, `done` iterations at `now`.
    pub fn observe(&mut self, now: Instant, done: u64) {
        let last = match (self.advances.back(), self.first) {
            (Some(&(_, d)), _) => d,
            (None, Some(d)) => d,
            (None, None) => {
                self.first = Some(done);
                return;
            }
        };
        if done > last {
            self.advances.push_back((now, done));
            if self.advances.len() > ADVANCES_KEPT {
                self.advances.pop_front();
            }
        }
    }

    /// The estimate for a counter that ends at `total`. The first advance only marks
    /// when the work was seen running (it may have begun any time before), so a rate
    /// needs at least two advances at least `MIN_MEASURED` apart.
    pub fn estimate(&self, total: u64) -> Estimate {
        let (Some(&(t0, d0)), Some(&(t1, d1))) = (self.advances.front(), self.advances.back())
        else {
            return Estimate::NotStarted;
        };
        let span = t1.duration_since(t0);
        if d1 <= d0 || span < MIN_MEASURED {
            return Estimate::Measuring;
        }
        let per_s = (d1 - d0) as f64 / span.as_secs_f64();
        Estimate::Rate {
            per_s,
            left_s: total.saturating_sub(d1) as f64 / per_s,
        }
    }
}

/// The estimate in words, for a progress line: "not started yet", "measuring the
/// rate" or "1234 iterations/s, about 5 min left".
pub fn describe(estimate: Estimate) -> String {
    match estimate {
        Estimate::NotStarted => "not started yet".to_string(),
        Estimate::Measuring => "measuring the rate".to_string(),
        Estimate::Rate { per_s, left_s } => {
            format!(
                "{per_s:.0} iterations/s, about {} left",
                duration_words(left_s)
            )
        }
    }
}

/// Seconds as a reader takes them in: "45 s", "12 min", "3.5 h", "2.1 days".
fn duration_words(s: f64) -> String {
    if s < 100.0 {
        format!("{s:.0} s")
    } else if s < 100.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 48.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    /// A meter that read the counter `done` at each (seconds, done).
    fn meter_after(readings: &[(f64, u64)]) -> RateMeter {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        for &(s, done) in readings {
            meter.observe(at(t0, s), done);
        }
        meter
    }

    /// The case of the issue: chains waiting for a core, read every 0.1 s for 20 s.
    /// Nothing is known about their speed, and the line must not pretend otherwise.
    #[test]
    fn no_rate_and_no_time_left_before_the_chains_advance() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        for i in 0..=200 {
            meter.observe(at(t0, i as f64 * 0.1), 0);
        }
        assert_eq!(meter.estimate(40_000), Estimate::NotStarted);
        let words = describe(meter.estimate(40_000));
        assert!(!words.contains("iterations/s"), "{words}");
        assert!(!words.contains("left"), "{words}");
    }

    /// One advance tells that the chains run, not how fast.
    #[test]
    fn one_advance_gives_no_rate() {
        let meter = meter_after(&[(0.0, 0), (30.0, 1000), (31.0, 1000)]);
        assert_eq!(meter.estimate(40_000), Estimate::Measuring);
        assert_eq!(describe(meter.estimate(40_000)), "measuring the rate");
    }

    /// 20 s of waiting, then 100 iterations/s in blocks of 1000: the rate is the
    /// chains' own, not diluted by the wait (averaging since the display started
    /// would say 50 iterations/s at 40 s), and the time left follows from it.
    #[test]
    fn the_rate_is_measured_between_advances_not_from_the_start() {
        let readings = [
            (0.0, 0),
            (20.0, 0),
            (30.0, 1000),
            (35.0, 1000),
            (40.0, 2000),
        ];
        let meter = meter_after(&readings);
        match meter.estimate(10_000) {
            Estimate::Rate { per_s, left_s } => {
                assert!((per_s - 100.0).abs() < 1e-9, "{per_s}");
                assert!((left_s - 80.0).abs() < 1e-9, "{left_s}");
            }
            other => panic!("expected a rate, got {other:?}"),
        }
        assert_eq!(
            describe(meter.estimate(10_000)),
            "100 iterations/s, about 80 s left"
        );
    }

    /// Work done before the meter first read the counter is not timed.
    #[test]
    fn work_before_the_first_reading_is_not_counted() {
        let meter = meter_after(&[(0.0, 5000), (10.0, 6000), (20.0, 7000)]);
        match meter.estimate(8000) {
            Estimate::Rate { per_s, .. } => assert!((per_s - 100.0).abs() < 1e-9),
            other => panic!("expected a rate, got {other:?}"),
        }
    }

    /// The rate follows the newest advances when the pace changes.
    #[test]
    fn the_rate_follows_a_change_of_pace() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        meter.observe(t0, 0);
        let mut s = 0.0;
        let mut done = 0;
        for _ in 0..40 {
            s += 10.0; // 100 iterations/s
            done += 1000;
            meter.observe(at(t0, s), done);
        }
        for _ in 0..40 {
            s += 1.0; // 1000 iterations/s once a core is freed
            done += 1000;
            meter.observe(at(t0, s), done);
        }
        match meter.estimate(1_000_000) {
            Estimate::Rate { per_s, .. } => assert!((per_s - 1000.0).abs() < 1e-6, "{per_s}"),
            other => panic!("expected a rate, got {other:?}"),
        }
    }

    #[test]
    fn long_durations_in_words() {
        assert_eq!(duration_words(42.4), "42 s");
        assert_eq!(duration_words(720.0), "12 min");
        assert_eq!(duration_words(3.5 * 3600.0), "3.5 h");
        assert_eq!(duration_words(3.0 * 86_400.0), "3.0 days");
    }
}
