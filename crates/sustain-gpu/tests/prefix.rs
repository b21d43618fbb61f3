//! The GPU evaluator of the prefix models (event-based mixture, ordinal) against
//! the models' serial CPU evaluators: the conformance suite, and random batches of
//! 1 to 4 subtypes on 5 to 60 events with missing values, split over dispatches.
//!
//! Every test needs a GPU adapter (lavapipe counts); a test skips, printing a
//! NOTICE, only when no adapter at all can be created.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_gpu::{test_context, GpuEvaluator};
use sustain_model::{BatchEvaluator, Mixture, PrefixModel, Sequence, StageModel, SustainModel};
use sustain_testkit::conformance::{
    check_batch_evaluator, small_mixture_model, small_ordinal_model, Tolerances,
};

/// The GPU's single-precision tolerances, as for the z-score model
/// (`tests/agreement.rs`): 1e-5 relative for log-likelihoods; the staging
/// posteriors of the prefix models are computed on the CPU.
const GPU: Tolerances = Tolerances {
    loglike_rel: 1e-5,
    posterior_abs: 1e-12,
};

#[test]
fn prefix_models_pass_the_conformance_suite() {
    let Some(ctx) = test_context() else { return };
    for (name, model, seed) in [
        ("mixture", small_mixture_model(300, 8, 71), 72),
        ("ordinal", small_ordinal_model(300, 4, 73), 74),
        // 60 events, subjects over two workgroups.
        ("mixture, 60 events", small_mixture_model(290, 60, 75), 76),
        ("ordinal, 60 events", small_ordinal_model(290, 20, 77), 78),
    ] {
        let model = Arc::new(model);
        let mut gpu = GpuEvaluator::for_prefix(Arc::clone(&ctx), &model).unwrap();
        check_batch_evaluator(
            &format!("GPU {name}"),
            PrefixModel::batch_evaluator(&model).as_mut(),
            &mut gpu,
            GPU,
            seed,
        );
    }
}

/// A random mixture of `k` subtypes; sometimes one fraction is 0.
fn random_mixture(model: &PrefixModel, k: usize, rng: &mut Pcg64) -> Mixture {
    let seqs = (0..k)
        .map(|_| Sequence::random(model.order(), rng))
        .collect();
    let mut f: Vec<f64> = (0..k).map(|_| rng.gen_range(0.02..1.0)).collect();
    if k > 1 && rng.gen_bool(0.2) {
        f[rng.gen_range(0..k)] = 0.0;
    }
    let sum: f64 = f.iter().sum();
    Mixture::new(seqs, f.iter().map(|v| v / sum).collect()).unwrap()
}

/// Relative error of `got` against `want` (at least 1 in the denominator, as the
/// conformance suite).
fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1.0)
}

#[test]
fn random_batches_of_one_to_four_subtypes() {
    let Some(ctx) = test_context() else { return };
    let mut rng = Pcg64::seed_from_u64(80);
    let mut worst = (0.0f64, 0.0f64);
    for case in 0..8 {
        let subjects = rng.gen_range(1..700);
        let model = if case % 2 == 0 {
            small_mixture_model(subjects, rng.gen_range(5..=60), case)
        } else {
            small_ordinal_model(subjects, rng.gen_range(2..=20), case)
        };
        let model = Arc::new(model);
        let n = model.order().n_events();
        let mut cpu = PrefixModel::batch_evaluator(&model);
        let mut gpu = GpuEvaluator::for_prefix(Arc::clone(&ctx), &model).unwrap();
        // Small dispatches: the batch is split, and records of 1 to 4 subtypes
        // share one dispatch.
        gpu.limit_dispatch(7);
        let batch: Vec<Mixture> = (0..40)
            .map(|_| random_mixture(&model, rng.gen_range(1..=4), &mut rng))
            .collect();
        let want = cpu.loglike_batch(&batch).unwrap();
        let got = gpu.loglike_batch(&batch).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let e = rel(*g, *w);
            assert!(
                e <= 1e-5,
                "case {case} ({n} events, {subjects} subjects), mixture {i}: {g} vs {w}"
            );
            worst.0 = worst.0.max(e);
        }
        let want = cpu.log_p_subjects_batch(&batch[..9]).unwrap();
        let got = gpu.log_p_subjects_batch(&batch[..9]).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), subjects);
            for (m, (a, b)) in g.iter().zip(w).enumerate() {
                let e = rel(*a, *b);
                assert!(
                    e <= 1e-5,
                    "case {case}, mixture {i}, subject {m}: {a} vs {b}"
                );
                worst.1 = worst.1.max(e);
            }
        }
    }
    eprintln!(
        "largest relative error: totals {:.2e}, per subject {:.2e}",
        worst.0, worst.1
    );
}

/// A sequence of another model is an error, not a wrong number.
#[test]
fn rejects_sequences_of_another_model() {
    let Some(ctx) = test_context() else { return };
    let model = Arc::new(small_mixture_model(20, 6, 1));
    let other = small_mixture_model(20, 7, 2);
    let mut gpu = GpuEvaluator::for_prefix(ctx, &model).unwrap();
    let mut rng = Pcg64::seed_from_u64(3);
    let bad = random_mixture(&other, 1, &mut rng);
    assert!(gpu.loglike_batch(&[bad]).is_err());
}
