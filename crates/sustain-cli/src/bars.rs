//! Chain progress on stderr: indicatif bars on a terminal, a plain line every few
//! seconds otherwise. Both read the chains' counters from a thread of their own, so
//! the chains never wait for the display, and show a rate and a time left only once
//! the counters have been seen to advance (`crate::rate_meter`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sustain::sampler::progress::ChainProgress;

use crate::rate_meter::{describe, Estimate, RateMeter};

/// Starts displaying `progress`; join the handle once the chains are done.
pub fn show(prefix: String, n_subtypes: usize, progress: Arc<ChainProgress>) -> JoinHandle<()> {
    if std::io::stderr().is_terminal() {
        std::thread::spawn(move || bars(prefix, n_subtypes, progress))
    } else {
        std::thread::spawn(move || plain(prefix, n_subtypes, progress))
    }
}

/// One set of bars for the whole process: chain bars of one subtype count and the
/// E-M spinner of the next can be live at once and must not draw over each other.
fn multi() -> &'static MultiProgress {
    static MULTI: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// One line on stderr: above the live bars on a terminal (so they are not torn),
/// plain otherwise; a failure to write it is ignored.
pub fn eprint_line(line: &str) {
    use std::io::Write;
    if std::io::stderr().is_terminal() {
        let _ = multi().println(line);
    } else {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

fn bars(prefix: String, n_subtypes: usize, progress: Arc<ChainProgress>) {
    let multi = multi();
    // indicatif's own rate and ETA count the time before a chain starts (and show
    // "ETA 0s" while it waits): the message carries the meter's instead.
    let style = ProgressStyle::with_template("{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut meters: Vec<RateMeter> = (0..progress.n_chains()).map(|_| RateMeter::new()).collect();
    let bars: Vec<ProgressBar> = (0..progress.n_chains())
        .map(|i| {
            let bar = multi.add(ProgressBar::new(progress.target()));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{prefix}{n_subtypes} subtype(s), chain {}", i + 1));
            bar.set_message(describe(Estimate::NotStarted));
            bar
        })
        .collect();
    loop {
        let now = Instant::now();
        for (i, (bar, meter)) in bars.iter().zip(&mut meters).enumerate() {
            let done = progress.done(i);
            meter.observe(now, done);
            // Chains that run until they converge head for one round at a time.
            bar.set_length(progress.target());
            bar.set_position(done);
            bar.set_message(describe(meter.estimate(progress.target())));
        }
        if progress.finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for bar in &bars {
        bar.finish_and_clear();
    }
}

fn plain(prefix: String, n_subtypes: usize, progress: Arc<ChainProgress>) {
    let mut last = Instant::now();
    let mut meter = RateMeter::new();
    loop {
        let total = progress.target() * progress.n_chains() as u64;
        let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
        meter.observe(Instant::now(), done);
        if progress.finished() {
            break;
        }
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let line = chains_line(&prefix, n_subtypes, done, total, meter.estimate(total));
            crate::printing::eprint_line(&line);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The plain progress line of a subtype count's chains, `done` of `total`
/// iterations over all of them.
fn chains_line(
    prefix: &str,
    n_subtypes: usize,
    done: u64,
    total: u64,
    estimate: Estimate,
) -> String {
    format!(
        "{prefix}{n_subtypes} subtype(s): chains {:.0}% ({})",
        100.0 * done as f64 / total.max(1) as f64,
        describe(estimate)
    )
}

/// Starts displaying the E-M job counter (start points of every E-M the subtype
/// count runs; the total is known once E-M has begun): a spinner with the count on
/// a terminal, a plain line every [`EM_LINE_EVERY`] otherwise (a 100+-event E-M can
/// run for minutes; the E-M start and end lines are printed anyway).
pub fn show_jobs(
    prefix: String,
    n_subtypes: usize,
    progress: Arc<ChainProgress>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let prefix = format!("{prefix}{n_subtypes} subtype(s):");
        if !std::io::stderr().is_terminal() {
            let mut last = Instant::now();
            while !progress.finished() {
                if last.elapsed() >= EM_LINE_EVERY {
                    last = Instant::now();
                    let (done, target) = (progress.done(0), progress.target());
                    crate::printing::eprint_line(&format!("{prefix} {}", jobs_text(done, target)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
        let spinner = multi().add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_prefix(prefix);
        while !progress.finished() {
            spinner.set_message(jobs_text(progress.done(0), progress.target()));
            spinner.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
        spinner.finish_and_clear();
    })
}

/// How often a plain E-M progress line is printed.
const EM_LINE_EVERY: Duration = Duration::from_secs(30);

/// "E-M, 52 of 100 start points done" (without a total while it is unknown).
fn jobs_text(done: u64, target: u64) -> String {
    if target == 0 {
        format!("E-M, {done} start points done")
    } else {
        format!("E-M, {done} of {target} start points done")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line a 113-event fit printed while its chains waited for a core was
    /// "chains 0% (0 iterations/s, about 400000000000000 s left)". Read the way
    /// `plain` reads the counters, 4 chains that have not started for 30 s must say
    /// so, with no rate and no time left.
    #[test]
    fn waiting_chains_show_no_rate_and_no_time_left() {
        let progress = ChainProgress::new(4, 10_000);
        let total = progress.total() * progress.n_chains() as u64;
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        for tick in 0..=300 {
            let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
            meter.observe(t0 + Duration::from_millis(100 * tick), done);
        }
        let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
        let line = chains_line("", 3, done, total, meter.estimate(total));
        assert_eq!(line, "3 subtype(s): chains 0% (not started yet)");

        // Once they run: two chains advance by a block of 1000 every 10 s each.
        let mut t = t0 + Duration::from_secs(30);
        for block in 1..=3u64 {
            t += Duration::from_secs(10);
            progress.set(0, 1000 * block);
            progress.set(1, 1000 * block);
            let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
            meter.observe(t, done);
        }
        let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
        let line = chains_line("", 3, done, total, meter.estimate(total));
        // 6000 of 40000 done at 200 iterations/s: 34000 / 200 = 170 s = 3 min.
        assert_eq!(
            line,
            "3 subtype(s): chains 15% (200 iterations/s, about 3 min left)"
        );
    }
}
