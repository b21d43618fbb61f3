//! One conformance suite for batch evaluators (burn-style): every backend (the
//! serial evaluator, CPU threads, the GPU) and every model family's own evaluator
//! is run through the same checks against a reference evaluator over the same
//! model and data, each backend with its own stated tolerances.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use sustain_model::SubtypeOf;
use sustain_model::{
    event_based, ordinal, score_probabilities, BatchEvaluator, EventOrder, EventPart, MixedModel,
    Mixture, OrdinalPart, PrefixModel, Sequence, ZscorePart,
};

/// How close a candidate must be to the reference.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// Relative error of total and per-subject log-likelihoods and E-M scores.
    pub loglike_rel: f64,
    /// Absolute error of summed posteriors (probabilities).
    pub posterior_abs: f64,
}

impl Tolerances {
    /// Double precision throughout (CPU backends): 1e-12 relative, 1e-12 absolute.
    pub const EXACT: Tolerances = Tolerances {
        loglike_rel: 1e-12,
        posterior_abs: 1e-12,
    };
}

fn random_mixture(order: &EventOrder, k: usize, rng: &mut Pcg64) -> Mixture {
    let sequences = (0..k).map(|_| Sequence::random(order, rng)).collect();
    let w: Vec<f64> = (0..k).map(|_| rng.gen_range(0.05..1.0)).collect();
    let total: f64 = w.iter().sum();
    Mixture::new(sequences, w.iter().map(|v| v / total).collect())
        .unwrap_or_else(|e| panic!("random fractions: {e}"))
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1.0)
}

/// Runs every check of `candidate` (named `name` in failures) against `reference`,
/// with random mixtures of 1 to 3 subtypes drawn from `seed`:
/// - the same events and number of subjects;
/// - total log-likelihoods of a batch;
/// - per-subject log-likelihoods;
/// - summed subtype-stage posteriors of a batch of one subtype count;
/// - E-M scores of one event moved through every allowed position, and the
///   candidate's choice scoring within tolerance of the reference's best.
pub fn check_batch_evaluator(
    name: &str,
    reference: &mut dyn BatchEvaluator,
    candidate: &mut dyn BatchEvaluator,
    tol: Tolerances,
    seed: u64,
) {
    assert_eq!(candidate.events(), reference.events(), "{name}: events");
    assert_eq!(
        candidate.n_subjects(),
        reference.n_subjects(),
        "{name}: subjects"
    );
    let order = reference.events().clone();
    let mut rng = Pcg64::seed_from_u64(seed);
    for k in 1..=3 {
        let batch: Vec<Mixture> = (0..6)
            .map(|_| random_mixture(&order, k, &mut rng))
            .collect();
        let want = reference.loglike_batch(&batch).expect("reference loglikes");
        let got = candidate.loglike_batch(&batch).expect("candidate loglikes");
        assert_eq!(got.len(), want.len(), "{name}: batch length");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                close(*g, *w, tol.loglike_rel),
                "{name}: loglike {i} of k={k}: {g} vs {w}"
            );
        }
        let want = reference
            .log_p_subjects_batch(&batch[..2])
            .expect("reference subjects");
        let got = candidate
            .log_p_subjects_batch(&batch[..2])
            .expect("candidate subjects");
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!(
                close(*g, *w, tol.loglike_rel),
                "{name}: per subject, k={k}: {g} vs {w}"
            );
        }
        let want = reference
            .posterior_sums(&batch)
            .expect("reference posteriors");
        let got = candidate
            .posterior_sums(&batch)
            .expect("candidate posteriors");
        assert_eq!(got.dim(), want.dim(), "{name}: posterior shape");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= tol.posterior_abs,
                "{name}: posterior, k={k}: {g} vs {w}"
            );
        }
        // E-M: each event of subtype k - 1 moved through its allowed positions.
        let base = &batch[0];
        let s = k - 1;
        for e in 0..order.n_events() {
            let seq = &base.sequences()[s];
            let candidates: Vec<Sequence> = seq
                .allowed_positions(&order, e)
                .map(|to| {
                    let mut c = seq.clone();
                    c.move_unchecked(e, to);
                    c
                })
                .collect();
            let want = reference
                .loglike_subtype_candidates(SubtypeOf::new(base, s), &candidates)
                .expect("reference candidates");
            let got = candidate
                .loglike_subtype_candidates(SubtypeOf::new(base, s), &candidates)
                .expect("candidate candidates");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    close(*g, *w, tol.loglike_rel),
                    "{name}: E-M score of event {e}: {g} vs {w}"
                );
            }
            let best = want.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let chosen = candidate
                .best_subtype_candidate(SubtypeOf::new(base, s), &candidates)
                .expect("candidate choice");
            assert!(
                close(want[chosen], best, tol.loglike_rel),
                "{name}: E-M chose position {chosen} ({}) below the best {best}",
                want[chosen]
            );
            let allowed = seq.allowed_positions(&order, e);
            let start = *allowed.start();
            let position = candidate
                .best_event_position(SubtypeOf::new(base, s), e, allowed)
                .expect("candidate position");
            assert!(
                close(want[position - start], best, tol.loglike_rel),
                "{name}: E-M moved event {e} to {position} ({}) below the best {best}",
                want[position - start]
            );
        }
    }
}

/// A small event-based model: `n` subjects, `b` biomarkers, likelihoods drawn from
/// `seed` (a tenth of the values missing in both inputs, some exact zeros).
pub fn small_mixture_model(n: usize, b: usize, seed: u64) -> PrefixModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut yes = Array2::zeros((n, b));
    let mut no = Array2::zeros((n, b));
    for m in 0..n {
        for j in 0..b {
            let (y, q) = if rng.gen_bool(0.1) {
                (f64::NAN, f64::NAN)
            } else if rng.gen_bool(0.02) {
                (0.0, rng.gen_range(0.01..2.0))
            } else {
                (rng.gen_range(1e-4..3.0), rng.gen_range(1e-4..3.0))
            };
            yes[[m, j]] = y;
            no[[m, j]] = q;
        }
    }
    event_based(yes.view(), no.view()).unwrap_or_else(|e| panic!("mixture model: {e}"))
}

/// A small ordinal model: `n` subjects, `b` biomarkers scored 0-3 (scores 1, 2, 3
/// are events), raw scores drawn from `seed` with a twentieth missing, p_correct 0.9.
pub fn small_ordinal_model(n: usize, b: usize, seed: u64) -> PrefixModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let scores = Array2::from_shape_fn((n, b), |_| {
        if rng.gen_bool(0.05) {
            f64::NAN
        } else {
            f64::from(rng.gen_range(0u8..4))
        }
    });
    let score_vals = vec![vec![1.0, 2.0, 3.0]; b];
    let (nl, levels) = score_probabilities(&score_vals, scores.view(), 0.9)
        .unwrap_or_else(|e| panic!("scores: {e}"));
    let views: Vec<_> = levels.iter().map(|t| t.view()).collect();
    ordinal(&score_vals, nl.view(), &views).unwrap_or_else(|e| panic!("ordinal model: {e}"))
}

/// A small mixed-type model: `n` subjects with 3 z-scored biomarkers (thresholds
/// 1, 2 and 1, 2, 3; a twentieth of the values missing), 2 ordinal ones scored 0-3
/// (p_correct 0.9) and 2 event biomarkers (likelihoods as
/// [`small_mixture_model`]'s), drawn from `seed`.
pub fn small_mixed_model(n: usize, seed: u64) -> MixedModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let z = Array2::from_shape_fn((n, 3), |_| {
        if rng.gen_bool(0.05) {
            f64::NAN
        } else {
            rng.gen_range(-1.5..4.5)
        }
    });
    let z_vals = vec![vec![1.0, 2.0], vec![1.0, 2.0, 3.0], vec![1.0, 2.0]];
    let z_max = [3.0, 5.0, 4.0];
    let scores = Array2::from_shape_fn((n, 2), |_| f64::from(rng.gen_range(0u8..4)));
    let score_vals = vec![vec![1.0, 2.0, 3.0]; 2];
    let (nl, levels) = score_probabilities(&score_vals, scores.view(), 0.9)
        .unwrap_or_else(|e| panic!("scores: {e}"));
    let views: Vec<_> = levels.iter().map(|t| t.view()).collect();
    let yes = Array2::from_shape_fn((n, 2), |_| rng.gen_range(1e-3..1.0));
    let no = yes.mapv(|v| 1.0 - v);
    MixedModel::new(
        Some(ZscorePart {
            data: z.view(),
            z_vals: &z_vals,
            z_max: &z_max,
        }),
        Some(OrdinalPart {
            score_vals: &score_vals,
            p_normal: nl.view(),
            p_score: &views,
        }),
        Some(EventPart {
            p_event: yes.view(),
            p_no_event: no.view(),
        }),
    )
    .unwrap_or_else(|e| panic!("mixed model: {e}"))
}
