//! How chains scale with the number of events (issue 28, part 3): iterations per
//! second and effective samples per second of the slowest-mixing quantity for 30,
//! 60, 120 and 240 events (10, 20, 40, 80 biomarkers x z 1, 2, 3, z_max 5).
//!
//! Every cohort: 1000 subjects, 3 subtypes (fractions 0.5 / 0.3 / 0.2), 10%
//! missing, simulated from fixed seeds. Two chains start at the true mixture with
//! step sizes tuned by `tune_steps` (2 passes of 1000 iterations), one chain per
//! thread on 2 threads, with the exact and then the blockwise proposal (the
//! run-until-converged default). ESS is the smallest bulk or tail ESS of the
//! log-likelihood and the fractions over both chains after 10% burn-in
//! (`verdict::slowest_ess`), per second of the chains' wall time.
//!
//! `cargo run --release --example chain_scaling` (`CHAIN_SCALING_ITERATIONS=N`
//! iterations per chain, default 20000; `CHAIN_SCALING_QUICK=1`: 30 and 60 events)

use std::sync::Arc;
use std::time::Instant;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::simulate::{random_cohort, SimulationSpec};
use sustain_model::{EventSet, IncrementalLikelihood, Likelihood, MissingConvention};
use sustain_sampler::verdict::slowest_ess;
use sustain_sampler::{merge, tune_steps, ProposalMode};

const SUBJECTS: usize = 1000;
const CHAINS: usize = 2;

fn row(n_biomarkers: usize, iterations: usize) {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let n_events = events.n_events();
    let spec = SimulationSpec {
        n_subjects: SUBJECTS,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    let cohort = random_cohort(events, &[0.5, 0.3, 0.2], 1, &spec, 2).unwrap();
    let lik = Likelihood::new(cohort.events, &cohort.data, MissingConvention::Marginalise).unwrap();
    let (lik, truth) = (Arc::new(lik), cohort.truth);
    for (name, mode) in [
        ("exact", ProposalMode::Exact),
        ("blockwise", ProposalMode::Blockwise),
    ] {
        let steps = tune_steps(
            lik.events(),
            || IncrementalLikelihood::new(Arc::clone(&lik), &truth),
            &truth,
            mode,
            2,
            1000,
            3,
        );
        let settings = ChainSettings {
            mode,
            steps,
            n_iterations: iterations,
            seed: 4,
            threads: CHAINS,
            chain_threads: 1,
        };
        let t0 = Instant::now();
        let runs = run_chains(&lik, &truth, &settings, 0..CHAINS);
        let wall = t0.elapsed().as_secs_f64();
        let (_, diagnostics) = merge(runs, iterations / 10, 1);
        let (ess, slowest) = slowest_ess(&diagnostics);
        println!(
            "| {n_events} | {n_biomarkers} | {name} | {:.0} | {:.1} | {slowest} |",
            iterations as f64 / wall,
            ess / wall,
        );
    }
}

fn main() {
    let iterations = std::env::var("CHAIN_SCALING_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let quick = std::env::var_os("CHAIN_SCALING_QUICK").is_some();
    println!(
        "{SUBJECTS} subjects, 3 subtypes, 10% missing; {CHAINS} chains x {iterations} iterations on {CHAINS} threads"
    );
    println!("| events | biomarkers | proposal | iterations/s per chain | min ESS/s | slowest quantity |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let biomarkers: &[usize] = if quick { &[10, 20] } else { &[10, 20, 40, 80] };
    for &b in biomarkers {
        row(b, iterations);
    }
}
