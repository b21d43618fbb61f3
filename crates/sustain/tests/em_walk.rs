//! E-M with the z-score evaluator's walk over an event's positions makes exactly
//! the decisions of scoring every candidate (the trait's default, which the walk
//! replaced): the same sequences and the same log-likelihood bits on sim42, from
//! random starts of 1, 2 and 3 subtypes.

use rand::SeedableRng;
use std::sync::Arc;
use sustain::em::{em, MlFit};
use sustain::prelude::*;
use sustain_core::BatchEvaluator;
use sustain_model::SerialEvaluator;
use sustain_testkit::defaults::{CandidatesOnly, CountingMoves};

/// Random starts with equal fractions, `per_k` for each subtype count of `ks`,
/// drawn in turn from `seed`: (subtype count, its start's index, start).
fn random_starts(
    events: &EventSet,
    ks: std::ops::RangeInclusive<usize>,
    per_k: u64,
    seed: u64,
) -> Vec<(usize, u64, Mixture)> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut starts = Vec::new();
    for k in ks {
        for i in 0..per_k {
            let seqs = (0..k).map(|_| Sequence::random(events, &mut rng)).collect();
            starts.push((k, i, Mixture::new(seqs, vec![1.0 / k as f64; k]).unwrap()));
        }
    }
    starts
}

/// E-M from `start` with its random stream seeded by `seed`.
fn em_from(
    lik: &Likelihood,
    ev: &mut dyn BatchEvaluator,
    start: &Mixture,
    config: &FitConfig,
    seed: u64,
) -> MlFit {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    em(lik, ev, start.clone(), config, &mut rng).unwrap()
}

/// sim42 and its likelihood (None, with a notice, where ../shared is absent).
fn sim42_likelihood(test: &str) -> Option<(sustain_testkit::shared::Sim42, Arc<Likelihood>)> {
    let sim = sustain_testkit::shared::sim42(test)?;
    let lik = Likelihood::new(
        sim.events.clone(),
        &sim.data,
        MissingConvention::Marginalise,
    )
    .unwrap();
    Some((sim, Arc::new(lik)))
}

#[test]
fn sim42_em_is_unchanged_by_the_walk() {
    let Some((sim, lik)) = sim42_likelihood("sim42_em_is_unchanged_by_the_walk") else {
        return;
    };
    let config = FitConfig::default();
    for (k, trial, start) in random_starts(&sim.events, 1..=3, 4, 42) {
        let run = |ev: &mut dyn BatchEvaluator| em_from(&lik, ev, &start, &config, trial);
        let walked = run(&mut SerialEvaluator::new(Arc::clone(&lik)).with_walk(true));
        let exact = run(&mut CandidatesOnly(SerialEvaluator::new(Arc::clone(&lik))));
        assert_eq!(
            walked.loglike.to_bits(),
            exact.loglike.to_bits(),
            "{k} subtype(s), start {trial}: {} vs {}",
            walked.loglike,
            exact.loglike
        );
        assert_eq!(
            walked.mixture, exact.mixture,
            "{k} subtype(s), start {trial}"
        );
    }
}

/// Where the walk pays by itself (20 biomarkers with uneven thresholds, missing
/// values), E-M from random starts of 1 and 2 subtypes is the same as scoring
/// every candidate, to the bit.
#[test]
fn em_is_unchanged_where_the_walk_pays() {
    let z_vals: Vec<Vec<f64>> = (0..20)
        .map(|b| match b % 3 {
            0 => vec![1.0, 2.0, 3.0],
            1 => vec![1.5],
            _ => vec![1.0, 2.5],
        })
        .collect();
    let events = EventSet::new(&z_vals, &[5.0; 20]).unwrap();
    let w = sustain_testkit::cohort(
        events,
        &[0.6, 0.4],
        3,
        &sustain_testkit::spec(150, 0.1, 0.15),
        4,
    );
    let lik = Arc::new(
        Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap(),
    );
    assert!(sustain_model::batch::walk_pays(&lik));
    let config = FitConfig {
        em_max_passes: 4,
        ..FitConfig::default()
    };
    for (k, _, start) in random_starts(&w.events, 1..=2, 1, 9) {
        let run = |ev: &mut dyn BatchEvaluator| em_from(&lik, ev, &start, &config, k as u64);
        let walked = run(&mut SerialEvaluator::new(Arc::clone(&lik)));
        let exact = run(&mut CandidatesOnly(SerialEvaluator::new(Arc::clone(&lik))));
        assert_eq!(
            walked.loglike.to_bits(),
            exact.loglike.to_bits(),
            "{k} subtype(s)"
        );
        assert_eq!(walked.mixture, exact.mixture, "{k} subtype(s)");
    }
}

/// E-M as passes of the public `em_pass`, each from scratch: every event scored
/// in every pass (what `em` did before it skipped settled events).
fn em_pass_by_pass(
    lik: &Likelihood,
    ev: &mut dyn BatchEvaluator,
    start: Mixture,
    config: &FitConfig,
    rng: &mut rand_pcg::Pcg64,
) -> MlFit {
    let loglike = ev.loglike_batch(std::slice::from_ref(&start)).unwrap()[0];
    let mut current = MlFit {
        mixture: start,
        loglike,
    };
    for _ in 0..config.em_max_passes {
        let cand = sustain::em::em_pass(lik, ev, &current.mixture, rng).unwrap();
        let converged =
            sustain::em::pass_converged(current.loglike, cand.loglike, config.em_tolerance);
        if cand.loglike > current.loglike {
            current = cand;
        }
        if converged {
            break;
        }
    }
    current
}

/// E-M skips the events known to be at their best (nothing changed since they
/// were put there) and ends exactly where scoring every event in every pass ends,
/// with fewer event moves scored.
#[test]
fn skipping_settled_events_changes_nothing() {
    let Some((sim, lik)) = sim42_likelihood("skipping_settled_events_changes_nothing") else {
        return;
    };
    let config = FitConfig::default();
    let (mut skipped_total, mut all_total) = (0, 0);
    for (k, trial, start) in random_starts(&sim.events, 1..=2, 3, 7) {
        let mut a = CountingMoves(SerialEvaluator::new(Arc::clone(&lik)), 0);
        let skipping = em_from(&lik, &mut a, &start, &config, trial);
        let mut b = CountingMoves(SerialEvaluator::new(Arc::clone(&lik)), 0);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(trial);
        let every = em_pass_by_pass(&lik, &mut b, start, &config, &mut rng);
        assert_eq!(skipping.loglike.to_bits(), every.loglike.to_bits());
        assert_eq!(skipping.mixture, every.mixture, "{k} subtype(s), {trial}");
        assert!(a.1 <= b.1);
        skipped_total += a.1;
        all_total += b.1;
    }
    // One subtype settles in its last passes: E-M scores fewer moves.
    assert!(
        skipped_total < all_total,
        "{skipped_total} moves scored against {all_total}"
    );
}
