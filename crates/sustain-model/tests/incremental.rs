//! The incremental (propose/accept/reject) likelihood equals a fresh evaluation.

use std::sync::Arc;
use sustain_model::*;
use sustain_testkit::{
    accept_or_reject, cohort, random_fractions, random_moves, spec, walk_cohort,
};

/// A random walk of proposals on `walk_cohort(n_biomarkers, thresholds,
/// n_subtypes, n_subjects, seed, 1.0)`, on the CPU's best kernels.
fn check(n_biomarkers: usize, thresholds: &[f64], n_subtypes: usize, n_subjects: usize, seed: u64) {
    let w = walk_cohort(n_biomarkers, thresholds, n_subtypes, n_subjects, seed, 1.0);
    check_on(w, false)
}

/// `check` on a walk cohort `w` (`sustain_testkit::walk_cohort`, whose `scale`
/// multiplies every data value: large values make stage likelihoods span
/// thousands of nats, the guarded paths of the state), on the baseline (portable)
/// kernels if `baseline`, else on the CPU's best.
fn check_on(w: sustain_model::simulate::Cohort, baseline: bool) {
    let n_subtypes = w.truth.n_subtypes();
    let (events, data, mut rng) = (w.events, w.data, w.rng);
    for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
        let lik = Likelihood::new(events.clone(), &data, conv).unwrap();
        let lik = Arc::new(if baseline {
            lik.with_baseline_kernels()
        } else {
            lik
        });
        let start: Vec<Sequence> = (0..n_subtypes)
            .map(|_| Sequence::random(&events, &mut rng))
            .collect();
        let mut current = Mixture::new(start, vec![1.0 / n_subtypes as f64; n_subtypes]).unwrap();
        let mut inc = IncrementalLikelihood::new(Arc::clone(&lik), &current);
        assert!((inc.loglike() - lik.loglike(&current)).abs() < 1e-9 * lik.loglike(&current).abs());
        for it in 0..3000 {
            let mut prop = current.clone();
            let changed = random_moves(&mut prop, &events, 0.7, &mut rng);
            let f = random_fractions(n_subtypes, &mut rng);
            prop.set_fractions(f).unwrap();
            let ll = inc.propose(&prop, &changed);
            let exact = lik.loglike(&prop);
            assert!(
                (ll - exact).abs() < 1e-9 * exact.abs(),
                "iteration {it}: {ll} vs {exact}"
            );
            accept_or_reject(&mut inc, &mut current, prop, &mut rng);
            let now = lik.loglike(&current);
            assert!((inc.loglike() - now).abs() < 1e-9 * now.abs());
        }
    }
}

#[test]
fn incremental_matches_fresh_evaluation_one_subtype() {
    check(4, &[1.0, 2.0, 3.0], 1, 37, 1);
}

#[test]
fn incremental_matches_fresh_evaluation_three_subtypes() {
    check(6, &[1.0, 2.0], 3, 101, 2);
}

#[test]
fn incremental_matches_fresh_evaluation_many_biomarkers() {
    check(40, &[1.0, 2.0, 3.0], 2, 17, 3);
}

#[test]
fn incremental_matches_fresh_evaluation_with_extreme_values() {
    // Values 8-30x a z-score: single moves change stages by hundreds of nats and
    // many stage likelihoods underflow relative to the best one. Checked by hand
    // (counting the paths taken) to exercise every guarded path of the state:
    // groups rebuilt because a move could change them too much, groups that turn
    // fragile after an accepted move, and the additive path of fragile groups.
    check_on(walk_cohort(5, &[1.0, 2.0], 2, 30, 9, 12.0), false);
    check_on(walk_cohort(2, &[1.0, 2.0], 2, 30, 9, 25.0), false);
    check_on(walk_cohort(3, &[1.0, 2.0], 2, 30, 9, 20.0), false);
    check_on(walk_cohort(5, &[1.0, 2.0, 3.0], 2, 41, 4, 30.0), false);
}

/// The portable kernels (what a CPU without AVX2 runs) on the same checks,
/// extreme values included.
#[test]
fn incremental_matches_fresh_evaluation_on_baseline_kernels() {
    check_on(walk_cohort(6, &[1.0, 2.0, 3.0], 3, 70, 11, 1.0), true);
    check_on(walk_cohort(5, &[1.0, 2.0], 2, 30, 9, 12.0), true);
}

#[test]
fn incremental_matches_fresh_evaluation_many_subjects_and_biomarkers() {
    check(60, &[1.0, 2.0], 2, 90, 6);
}

/// A shard of the subjects is the same data: its per-subject values are the
/// whole's, and the incremental states of consecutive shards give the whole
/// state's block partials, to the bit.
#[test]
fn shards_reproduce_the_whole_state() {
    let events = EventSet::uniform(5, &[1.0, 2.0], 4.0).unwrap();
    let w = cohort(events, &[0.6, 0.4], 4, &spec(300, 0.2, 0.3), 8);
    let (events, m, mut rng) = (w.events, w.truth, w.rng);
    let lik =
        Arc::new(Likelihood::new(events.clone(), &w.data, MissingConvention::Reference).unwrap());
    let whole_p = lik.log_p_subjects(&m);
    let mut whole = IncrementalLikelihood::new(Arc::clone(&lik), &m);
    assert!(whole.reset_shard(&m));
    let cuts = [0, 64, 192, 300];
    let mut shards: Vec<IncrementalLikelihood> = cuts
        .windows(2)
        .map(|w| {
            let shard = Arc::new(lik.shard(w[0]..w[1]));
            assert_eq!(shard.log_p_subjects(&m), whole_p[w[0]..w[1]].to_vec());
            IncrementalLikelihood::new(shard, &m)
        })
        .collect();
    let concat = |shards: &[IncrementalLikelihood]| -> Vec<f64> {
        shards.iter().flat_map(|s| s.partials().to_vec()).collect()
    };
    assert_eq!(concat(&shards), whole.partials());
    for step in 0..20 {
        let mut next = m.clone();
        next.sequences_mut()[step % 2] = Sequence::random(&events, &mut rng);
        let changed = [step % 2 == 0, step % 2 == 1];
        assert!(whole.propose_shard(&next, &changed));
        for s in &mut shards {
            assert!(s.propose_shard(&next, &changed));
        }
        assert_eq!(concat(&shards), whole.partials(), "step {step}");
        whole.reject();
        shards.iter_mut().for_each(|s| s.reject());
    }
}

#[test]
#[should_panic(expected = "block boundary")]
fn shards_start_on_block_boundaries() {
    let events = EventSet::uniform(2, &[1.0], 3.0).unwrap();
    let rows: Vec<Vec<f64>> = (0..100).map(|i| vec![i as f64 / 50.0, 0.5]).collect();
    let lik = Likelihood::new(
        events,
        &Dataset::from_rows(&rows).unwrap(),
        MissingConvention::Marginalise,
    )
    .unwrap();
    let _ = lik.shard(8..100);
}

/// The evaluator's exact candidate scores do not depend on what it scored before
/// (its incremental state would differ in the last bits after many updates): an
/// E-M choice is the same whichever evaluator makes it, which lets start points
/// share choices.
#[test]
fn exact_candidate_scores_do_not_depend_on_history() {
    let w = walk_cohort(8, &[1.0, 2.0], 3, 300, 11, 1.0);
    let (events, data, mut rng) = (w.events, w.data, w.rng);
    let lik =
        Arc::new(Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap());
    let mut used = SerialEvaluator::new(Arc::clone(&lik));
    let mut current = w.truth.clone();
    for round in 0..40 {
        // Move the used evaluator's state through many mixtures first.
        for _ in 0..50 {
            let mut next = current.clone();
            random_moves(&mut next, &events, 0.7, &mut rng);
            next.set_fractions(random_fractions(3, &mut rng)).unwrap();
            let slot = SubtypeOf::new(&next, 0);
            let cands = vec![next.sequences()[0].clone()];
            used.loglike_subtype_candidates(slot, &cands).unwrap();
            current = next;
        }
        let t = round % 3;
        let cands: Vec<Sequence> = (0..6)
            .map(|_| {
                let mut m = current.clone();
                random_moves(&mut m, &events, 1.0, &mut rng);
                m.sequences()[t].clone()
            })
            .collect();
        let slot = SubtypeOf::new(&current, t);
        let got = used.loglike_subtype_candidates(slot, &cands).unwrap();
        let fresh = SerialEvaluator::new(Arc::clone(&lik))
            .loglike_subtype_candidates(slot, &cands)
            .unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&fresh), "round {round}");
    }
}
