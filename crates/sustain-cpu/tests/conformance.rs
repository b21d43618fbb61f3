//! The conformance suite (`sustain_testkit::conformance`) on the CPU backends: the
//! threaded evaluator on 1 to 3 threads against the serial one, for the z-score
//! model, both prefix models and the mixed-type model; and each family's own fast evaluator against
//! the generic one built on its stage likelihoods alone.

use std::sync::Arc;
use sustain_core::generic::Batch;
use sustain_core::SustainModel;
use sustain_cpu::ThreadedEvaluator;
use sustain_model::{Likelihood, MissingConvention, PrefixModel, SerialEvaluator};
use sustain_testkit::conformance::{
    check_batch_evaluator, small_mixed_model, small_mixture_model, small_ordinal_model, Tolerances,
};
use sustain_testkit::{cohort, spec};

fn zscore() -> Arc<Likelihood> {
    let events = sustain_model::EventSet::new(
        &[vec![1.0, 2.0], vec![1.0, 0.0, 3.0], vec![2.0]],
        &[4.0, 5.0, 4.0],
    )
    .unwrap();
    let c = cohort(events.clone(), &[0.6, 0.4], 3, &spec(150, 0.1, 0.1), 4);
    Arc::new(Likelihood::new(events, &c.data, MissingConvention::Marginalise).unwrap())
}

#[test]
fn threaded_evaluators_conform_to_the_serial_one() {
    let lik = zscore();
    for threads in 1..=3 {
        check_batch_evaluator(
            &format!("threaded z-score, {threads} thread(s)"),
            &mut SerialEvaluator::new(Arc::clone(&lik)),
            &mut ThreadedEvaluator::new(Arc::clone(&lik), threads),
            Tolerances::EXACT,
            threads as u64,
        );
    }
    for (name, model) in [
        ("mixture", small_mixture_model(130, 6, 5)),
        ("ordinal", small_ordinal_model(130, 3, 6)),
    ] {
        threads_change_nothing(name, model, 7);
    }
    // The mixed-type model through the generic evaluations: threads change nothing.
    threads_change_nothing("mixed", small_mixed_model(130, 8), 9);
}

/// The threaded evaluator of `model` on 1 and 3 threads gives exactly what the
/// generic serial one does.
fn threads_change_nothing<M: SustainModel>(name: &str, model: M, seed: u64) {
    let model = Arc::new(model);
    for threads in [1, 3] {
        check_batch_evaluator(
            &format!("threaded {name}, {threads} thread(s)"),
            &mut Batch::new(Arc::clone(&model)),
            &mut ThreadedEvaluator::new(Arc::clone(&model), threads),
            Tolerances::EXACT,
            seed,
        );
    }
}

/// The fast paths of each family (the z-score SIMD and screened E-M evaluator,
/// the prefix models' vectorised evaluator and E-M by prefix sums) against the
/// generic evaluations of the same stage likelihoods.
#[test]
fn each_family_s_own_evaluator_conforms_to_the_generic_one() {
    let lik = zscore();
    check_batch_evaluator(
        "z-score serial evaluator",
        &mut Batch::new(Arc::clone(&lik)),
        Likelihood::batch_evaluator(&lik).as_mut(),
        Tolerances {
            loglike_rel: 1e-11,
            posterior_abs: 1e-11,
        },
        8,
    );
    for (name, model) in [
        ("mixture", small_mixture_model(130, 6, 9)),
        ("ordinal", small_ordinal_model(130, 3, 10)),
    ] {
        let model = Arc::new(model);
        check_batch_evaluator(
            &format!("{name} evaluator"),
            &mut Batch::new(Arc::clone(&model)),
            PrefixModel::batch_evaluator(&model).as_mut(),
            Tolerances {
                loglike_rel: 1e-11,
                posterior_abs: 1e-11,
            },
            11,
        );
    }
}
