//! MCMC iterations per second of one chain on W1 and W2, on one thread and split
//! over two threads by subjects (the same chain, the same samples), best of
//! several runs (robust to a busy machine):
//! `cargo run --release --example mcmc_timing` (`MCMC_REPEATS=N` for N runs per
//! workload instead of 5; `MCMC_ONLY=W1` or `W2` for one workload, one thread). The cohorts are
//! `sustain_testkit::w1` and `w2`, those of the benches (before issue 23 this example
//! drew them with equal fractions).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::*;
use sustain_sampler::ProposalMode;

fn main() {
    // Runs per workload (the best counts); more on a busy machine.
    let repeats: usize = std::env::var("MCMC_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("MCMC_ONLY").ok();
    for (name, cohort) in [
        (
            "W1 (M=1000, B=10, N=30, S=3)",
            sustain_testkit::w1 as fn() -> _,
        ),
        ("W2 (M=2000, B=15, N=45, S=5)", sustain_testkit::w2),
    ] {
        if only.as_ref().is_some_and(|o| !name.starts_with(o.as_str())) {
            continue;
        }
        let w = cohort();
        let (events, truth) = (w.events, w.truth);
        let lik = Arc::new(
            Likelihood::new(events.clone(), &w.data, MissingConvention::Marginalise).unwrap(),
        );
        let steps = common::tuned_steps(&lik, &truth, 5);
        let iterations = 3000;
        // One chain on one thread, then the same chain split over two threads
        // (the same results, to the bit).
        for threads in [1, 2] {
            if only.is_some() && threads > 1 {
                continue;
            }
            let settings = ChainSettings {
                mode: ProposalMode::Exact,
                steps: steps.clone(),
                n_iterations: iterations,
                seed: 3,
                threads,
                chain_threads: threads,
            };
            let mut best = f64::INFINITY;
            let mut acc = 0.0;
            for _ in 0..repeats {
                let t = Instant::now();
                let runs = run_chains(&lik, &truth, &settings, 0..1);
                best = best.min(t.elapsed().as_secs_f64());
                acc = runs[0].acceptance;
            }
            println!(
                "{name}: {:.0} iterations/s per chain on {threads} thread(s) (acceptance {acc:.2})",
                iterations as f64 / best
            );
        }
    }
}
