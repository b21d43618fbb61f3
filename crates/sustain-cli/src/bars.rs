//! Chain progress on stderr: indicatif bars (iterations per second, time left) on a
//! terminal, a plain line every few seconds otherwise. Both read the chains'
//! counters from a thread of their own, so the chains never wait for the display.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sustain::sampler::progress::ChainProgress;

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
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bars: Vec<ProgressBar> = (0..progress.n_chains())
        .map(|i| {
            let bar = multi.add(ProgressBar::new(progress.total()));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{prefix}{n_subtypes} subtype(s), chain {}", i + 1));
            bar
        })
        .collect();
    loop {
        for (i, bar) in bars.iter().enumerate() {
            bar.set_position(progress.done(i));
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
    let t0 = Instant::now();
    let mut last = Instant::now();
    let total = progress.total() * progress.n_chains() as u64;
    while !progress.finished() {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let done: u64 = (0..progress.n_chains()).map(|i| progress.done(i)).sum();
            let rate = done as f64 / t0.elapsed().as_secs_f64();
            let left = (total - done.min(total)) as f64 / rate.max(1e-9);
            crate::cmd::fit::eprint_line(&format!(
                "{prefix}{n_subtypes} subtype(s): chains {:.0}% ({:.0} iterations/s, about {:.0} s left)",
                100.0 * done as f64 / total.max(1) as f64,
                rate,
                left
            ));
        }
    }
}

/// Starts displaying the E-M job counter (start points and splits; the total is
/// not known in advance): a spinner with the count on a terminal, nothing otherwise
/// (the E-M start and end lines are printed anyway).
pub fn show_jobs(
    prefix: String,
    n_subtypes: usize,
    progress: Arc<ChainProgress>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let spinner = multi().add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template(
                "{prefix} {spinner} {pos} E-M start points done ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_prefix(format!("{prefix}{n_subtypes} subtype(s):"));
        while !progress.finished() {
            spinner.set_position(progress.done(0));
            spinner.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
        spinner.finish_and_clear();
    })
}
