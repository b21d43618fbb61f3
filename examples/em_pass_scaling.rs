//! How the time of one E-M pass grows (issue 28): the z-score evaluator's walk over
//! an event's positions against scoring every candidate whole (as before the walk;
//! `SerialEvaluator::with_walk(false)`), on one thread, side by side in one process.
//! - with events: 30, 60, 120, 240 events (10, 20, 40, 80 biomarkers x z 1, 2, 3);
//! - with biomarkers at 120 events: 10, 20, 40, 80 biomarkers (12, 6, 3 and 1-2
//!   thresholds each, spread evenly below z_max 5).
//!
//! Every cohort: 1000 subjects, one subtype, 10% missing, simulated from fixed
//! seeds. A pass is `sustain::em::em_pass` from one random start (the same for both
//! paths; both make the same choices, checked here); walked passes are the best of
//! two, interleaved with the whole-candidate pass. Also printed: the walk's time per
//! candidate and subject x stage, whose constancy down a column shows that the work
//! per candidate no longer grows with the number of biomarkers.
//!
//! `cargo run --release --example em_pass_scaling` (`EM_SCALING_QUICK=1`: 30 and 60
//! events only)

use rand::SeedableRng;
use std::sync::Arc;
use std::time::Instant;
use sustain::em::{em_pass, MlFit};
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::{EventSet, Likelihood, MissingConvention, Mixture, Sequence, SerialEvaluator};

const SUBJECTS: usize = 1000;

/// `n_biomarkers` biomarkers sharing `n_events` events as evenly as possible
/// (thresholds spread evenly in (0, 5), z_max 5).
fn events(n_biomarkers: usize, n_events: usize) -> EventSet {
    let z_vals: Vec<Vec<f64>> = (0..n_biomarkers)
        .map(|b| {
            let levels = n_events / n_biomarkers + usize::from(b < n_events % n_biomarkers);
            (1..=levels)
                .map(|i| 5.0 * i as f64 / (levels + 1) as f64)
                .collect()
        })
        .collect();
    EventSet::new(&z_vals, &vec![5.0; n_biomarkers]).unwrap()
}

fn pass(lik: &Likelihood, walk: bool, start: &Mixture) -> (f64, MlFit) {
    let mut ev = SerialEvaluator::new(Arc::new(lik.clone())).with_walk(walk);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let t = Instant::now();
    let fit = em_pass(lik, &mut ev, start, &mut rng).unwrap();
    (t.elapsed().as_secs_f64(), fit)
}

fn row(n_biomarkers: usize, n_events: usize) {
    let ev = events(n_biomarkers, n_events);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(n_events as u64);
    let truth = Mixture::single(Sequence::random(&ev, &mut rng));
    let spec = SimulationSpec {
        n_subjects: SUBJECTS,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    let data = simulate(&ev, &truth, &spec, 1).unwrap().data;
    let lik = Likelihood::new(ev.clone(), &data, MissingConvention::Marginalise).unwrap();
    let start = Mixture::single(Sequence::random(&ev, &mut rng));
    // Candidates of the pass: every event's allowed positions (at the start).
    let seq = &start.sequences()[0];
    let candidates: usize = (0..ev.n_events())
        .map(|e| seq.allowed_positions(&ev, e).count())
        .sum();
    let (w1, walked) = pass(&lik, true, &start);
    let (whole, exact) = pass(&lik, false, &start);
    let (w2, _) = pass(&lik, true, &start);
    assert_eq!(walked.loglike.to_bits(), exact.loglike.to_bits());
    assert_eq!(walked.mixture, exact.mixture);
    let walk = w1.min(w2);
    let unit = walk / (candidates * SUBJECTS * ev.n_stages()) as f64 * 1e9;
    println!(
        "| {n_events} | {n_biomarkers} | {candidates} | {whole:.3} | {walk:.3} | {:.1}x | {unit:.2} |",
        whole / walk
    );
}

fn main() {
    let quick = std::env::var_os("EM_SCALING_QUICK").is_some();
    println!("{SUBJECTS} subjects, 1 subtype, 10% missing; one E-M pass on one thread");
    println!("| events | biomarkers | candidates | whole candidates (s) | walk (s) | speedup | walk ns per candidate x subject x stage |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let by_events: &[usize] = if quick {
        &[30, 60]
    } else {
        &[30, 60, 120, 240]
    };
    for &n in by_events {
        row(n / 3, n);
    }
    if !quick {
        for b in [10, 20, 40, 80] {
            row(b, 120);
        }
    }
}
