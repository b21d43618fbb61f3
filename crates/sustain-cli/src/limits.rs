//! Resources planned before work starts: every count option has an upper bound, and
//! the memory a fit will need is estimated from its options and compared with the
//! memory available, so no setting makes the program abort on a failed allocation.

use sustain::config::FitConfig;

use crate::error::CliError;

/// Upper bounds of the count options (documented in docs/formats.md).
pub const MAX_STARTPOINTS: usize = 10_000;
/// `--chains`.
pub const MAX_CHAINS: usize = 4_096;
/// `--iterations` and `--tuning-iterations`.
pub const MAX_ITERATIONS: usize = 1_000_000_000;
/// `--threads` (and `--cpus-per-task`).
pub const MAX_THREADS: usize = 4_096;

/// Refuses a count option above its bound: `--chains 5000 is more than the
/// supported 4096`.
pub fn check_bound(option: &str, value: usize, max: usize) -> Result<(), CliError> {
    if value > max {
        return Err(CliError::new(format!(
            "{option} {value} is more than the supported {max}"
        )));
    }
    Ok(())
}

/// The bounds of the fit settings.
pub fn check_fit_counts(config: &FitConfig) -> Result<(), CliError> {
    check_bound("--startpoints", config.n_startpoints, MAX_STARTPOINTS)?;
    check_bound("--chains", config.n_chains, MAX_CHAINS)?;
    check_bound("--iterations", config.n_iterations, MAX_ITERATIONS)?;
    check_bound(
        "--tuning-iterations",
        config.tuning_iterations,
        MAX_ITERATIONS,
    )?;
    check_bound("--threads", config.threads, MAX_THREADS)
}

/// An upper estimate of the memory (bytes) a fit of `n_subjects` subjects and
/// `n_events` events with `config` needs: the chain traces of every subtype count
/// (every iteration a new state: event positions, fractions, log-likelihood and run
/// length; the tuning passes' samples too), and the per-subject likelihood tables
/// of each subtype count.
pub fn fit_memory_estimate(config: &FitConfig, n_subjects: usize, n_events: usize) -> f64 {
    let position_bytes = if n_events <= 256 { 1.0 } else { 2.0 };
    let events = n_events as f64;
    let chains = config
        .chain_range
        .as_ref()
        .map_or(config.n_chains, |r| r.len()) as f64;
    let iterations = config.n_iterations as f64 + 3.0 * config.tuning_iterations as f64;
    let mut total = 0.0;
    for k in 1..=config.max_subtypes {
        let k = k as f64;
        let state = k * events * position_bytes + 8.0 * k + 8.0 + 4.0;
        total += chains * iterations * state;
        // Subjects x stages x subtypes, a few tables per thread.
        total += 4.0 * n_subjects as f64 * (events + 1.0) * k * 8.0;
    }
    total
}

/// The memory this machine has available (bytes), from /proc/meminfo; `None` where
/// it cannot be read (then no run is refused for memory).
pub fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses a fit whose memory estimate exceeds the memory available, naming the
/// estimate and the options to change.
pub fn check_fit_memory(
    config: &FitConfig,
    n_subjects: usize,
    n_events: usize,
) -> Result<(), CliError> {
    let need = fit_memory_estimate(config, n_subjects, n_events);
    match available_memory() {
        Some(have) if need > have => Err(CliError::new(format!(
            "--iterations {} with --chains {}, --tuning-iterations {} and --subtypes {} may need up to {} of memory for the MCMC traces ({n_events} events, {n_subjects} subjects), but {} is available; lower --iterations, --chains or --subtypes",
            config.n_iterations,
            config.n_chains,
            config.tuning_iterations,
            config.max_subtypes,
            human_bytes(need),
            human_bytes(have)
        ))),
        _ => Ok(()),
    }
}

/// `1.5 GB`: bytes in decimal units.
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_option() {
        let mut c = FitConfig {
            n_chains: usize::MAX,
            ..FitConfig::default()
        };
        let e = check_fit_counts(&c).unwrap_err().to_string();
        assert!(
            e.starts_with("--chains 18446744073709551615 is more"),
            "{e}"
        );
        c.n_chains = 4;
        assert!(check_fit_counts(&c).is_ok());
        c.n_iterations = MAX_ITERATIONS + 1;
        assert!(check_fit_counts(&c)
            .unwrap_err()
            .to_string()
            .contains("--iterations"));
    }

    #[test]
    fn the_estimate_grows_with_the_options() {
        let c = FitConfig {
            n_chains: 4,
            n_iterations: 1000,
            tuning_iterations: 0,
            max_subtypes: 1,
            ..FitConfig::default()
        };
        // One subtype, 10 events: 4 chains x 1000 states x (10 + 8 + 12) bytes,
        // plus the likelihood tables 4 x 5 subjects x 11 stages x 8 bytes.
        let e = fit_memory_estimate(&c, 5, 10);
        assert_eq!(e, 4.0 * 1000.0 * 30.0 + 4.0 * 5.0 * 11.0 * 8.0);
        let more = FitConfig {
            n_chains: 8,
            ..c.clone()
        };
        assert!(fit_memory_estimate(&more, 5, 10) > e);
        assert_eq!(human_bytes(1.5e9), "1.5 GB");
        assert_eq!(human_bytes(12.0), "12 B");
    }
}
