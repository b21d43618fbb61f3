//! Peak memory of a long multi-chain run on W2 (issue 6): 4 chains of 1e6 iterations
//! on 2 threads with the CPU backend (`sustain_cpu::run_chains`), started at the true
//! mixture with step sizes tuned by `sustain_sampler::tune_steps` (2 x 2000).
//!
//! W2: 2000 subjects, 15 biomarkers x thresholds 1, 2, 3 (45 events), 5 subtypes with
//! fractions 0.3/0.25/0.2/0.15/0.1, 10% missing values: `sustain_testkit::w2`, the
//! cohort of `benches/likelihood.rs`.
//!
//! Prints the peak resident memory of the process (`VmHWM` of `/proc/self/status`,
//! Linux only) and the memory of the chains' traces (`Trace::memory_bytes`).
//!
//! `cargo run --release --example memory_w2 [-- ITERATIONS [CHAINS [THREADS]]]`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::{Likelihood, MissingConvention};
use sustain_sampler::ProposalMode;

/// A `kB` field of `/proc/self/status` in bytes (None where it is absent).
fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let iterations = args.first().copied().unwrap_or(1_000_000);
    let n_chains = args.get(1).copied().unwrap_or(4);
    let threads = args.get(2).copied().unwrap_or(2);

    let sustain_model::simulate::Cohort {
        events,
        truth,
        data,
        ..
    } = sustain_testkit::w2();
    let lik = Arc::new(Likelihood::new(
        events.clone(),
        &data,
        MissingConvention::Marginalise,
    )?);
    let rss_data = proc_status_bytes("VmRSS:");

    let t0 = Instant::now();
    let steps = common::tuned_steps(&lik, &truth, 11);
    let tune_s = t0.elapsed().as_secs_f64();
    let settings = ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations: iterations,
        seed: 12,
        threads,
        chain_threads: 1,
    };
    let t1 = Instant::now();
    let runs = run_chains(&lik, &truth, &settings, 0..n_chains);
    let wall = t1.elapsed().as_secs_f64();
    let trace_bytes: usize = runs.iter().map(|r| r.trace.memory_bytes()).sum();
    let states: usize = runs.iter().map(|r| r.trace.n_states()).sum();
    let acceptance: f64 = runs.iter().map(|r| r.acceptance).sum::<f64>() / runs.len() as f64;
    let peak = proc_status_bytes("VmHWM:");

    println!("workload: W2 M2000_B15_N45_S5_miss10, {n_chains} chains x {iterations} iterations, {threads} threads");
    println!("tuning 2 x 2000: {tune_s:.1} s; chains: {wall:.1} s ({:.0} chain-iterations/s in total, {:.0} per chain)",
        (n_chains * iterations) as f64 / wall,
        runs.iter().map(|r| iterations as f64 / r.wall_s).sum::<f64>() / runs.len() as f64);
    println!("mean acceptance {acceptance:.3}; distinct states stored {states}");
    println!(
        "trace memory (Trace::memory_bytes, all chains): {:.1} MiB ({:.1} MiB per chain per 1e6 iterations)",
        mib(trace_bytes as u64),
        mib(trace_bytes as u64) / n_chains as f64 * 1e6 / iterations as f64
    );
    match (rss_data, peak) {
        (Some(d), Some(p)) => println!(
            "resident memory after loading the data (VmRSS): {:.1} MiB; peak resident memory (VmHWM): {:.1} MiB; target < 1024 MiB: {}",
            mib(d),
            mib(p),
            if p < 1 << 30 { "met" } else { "NOT met" }
        ),
        _ => println!("peak resident memory: /proc/self/status not available on this system"),
    }
    Ok(())
}
