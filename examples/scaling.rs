//! How the cost of one log-likelihood and of one MCMC iteration grows (issue 6):
//! - with subjects: 1e3, 1e4, 1e5, 3e5 subjects; 10 biomarkers x z 1,2,3 (30 events);
//! - with biomarkers: 10, 50, 200 biomarkers x z 1,2,3 (30, 150, 600 events); 1000
//!   subjects.
//!
//! Every cohort: 3 subtypes with fractions 0.5/0.3/0.2, 10% missing, z_max 5, simulated
//! with `sustain_model::simulate::simulate` from fixed seeds. One log-likelihood is
//! `Likelihood::loglike` of the true mixture on one thread (median of repeats). One
//! MCMC iteration is the steady-state cost in a one-chain `sustain_cpu::run_chains` run
//! (exact proposals, sequence step 1, fraction step 0.02, from the true mixture): the
//! wall time of 2n iterations minus that of n, over n (n up to 4000, so that a run of
//! n takes about 1 s; best of 3 runs each), which leaves out building the state.
//! Also printed: the likelihood's cost per subject x stage x biomarker unit and the
//! iteration's cost per subject, whose constancy down a column shows linear growth.
//!
//! `cargo run --release --example scaling`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::{Likelihood, MissingConvention, Mixture};
use sustain_sampler::{ProposalMode, StepSizes};

/// A `sustain_testkit::uniform_cohort` (3 subtypes, fractions 0.5 / 0.3 / 0.2).
fn cohort(n_subjects: usize, n_biomarkers: usize, seed: u64) -> (Arc<Likelihood>, Mixture) {
    let w = sustain_testkit::uniform_cohort(n_subjects, n_biomarkers, &[0.5, 0.3, 0.2], seed);
    let lik = Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap();
    (Arc::new(lik), w.truth)
}

/// Median seconds of one `loglike`, over repeats that take about 1 s in all.
fn time_loglike(lik: &Likelihood, m: &Mixture) -> f64 {
    let t = Instant::now();
    black_box(lik.loglike(black_box(m)));
    let once = t.elapsed().as_secs_f64();
    let reps = ((1.0 / once.max(1e-7)) as usize).clamp(5, 20_000);
    let batch = (reps / 5).max(1);
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(lik.loglike(black_box(m)));
            }
            t.elapsed().as_secs_f64() / batch as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

/// (seconds per MCMC iteration at steady state, iterations, acceptance): the time of
/// a run of 2n iterations minus that of n iterations, over n, so that building the
/// chain's state (a few full likelihoods) is not counted.
fn time_iteration(lik: &Arc<Likelihood>, m: &Mixture) -> (f64, usize, f64) {
    let mut steps = StepSizes::initial(3, lik.events().n_events());
    steps.sigma_f = vec![0.02; 3];
    let mut settings = ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations: 20,
        seed: 9,
        threads: 1,
        chain_threads: 1,
    };
    let probe = run_chains(lik, m, &settings, 0..1);
    let per_it = probe[0].wall_s / 20.0;
    let n = ((1.0 / per_it) as usize).clamp(20, 4000);
    let mut wall = |iterations: usize| {
        settings.n_iterations = iterations;
        // Best of 3: robust to a busy machine.
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let runs = run_chains(lik, m, &settings, 0..1);
                (t.elapsed().as_secs_f64(), runs[0].acceptance)
            })
            .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a })
    };
    let (short, _) = wall(n);
    let (long, acc) = wall(2 * n);
    ((long - short).max(0.0) / n as f64, n, acc)
}

fn row(label: &str, n_subjects: usize, n_biomarkers: usize, seed: u64) {
    let (lik, m) = cohort(n_subjects, n_biomarkers, seed);
    let stages = lik.events().n_stages();
    let ll = time_loglike(&lik, &m);
    let (it, n_it, acc) = time_iteration(&lik, &m);
    // Work unit of the likelihood: subjects x stages x biomarkers, per subtype.
    let units = (n_subjects * stages * n_biomarkers * 3) as f64;
    println!(
        "| {label} | {n_subjects} | {n_biomarkers} | {} | {:.3} | {:.2} | {:.3} | {:.2} | {:.0} (2 x {n_it} it, acc {acc:.2}) |",
        lik.events().n_events(),
        ll * 1e3,
        ll / units * 1e9 * 1e3,
        it * 1e3,
        it / n_subjects as f64 * 1e9,
        1.0 / it,
    );
}

fn main() {
    println!(
        "| axis | subjects | biomarkers | events | loglike (ms) | loglike ps per subject-stage-biomarker-subtype | MCMC iteration (ms) | MCMC iteration ns per subject | MCMC it/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, m) in [1_000usize, 10_000, 100_000, 300_000]
        .into_iter()
        .enumerate()
    {
        row("subjects", m, 10, 20 + i as u64 * 2);
    }
    for (i, b) in [10usize, 50, 200].into_iter().enumerate() {
        row("biomarkers", 1000, b, 40 + i as u64 * 2);
    }
}
