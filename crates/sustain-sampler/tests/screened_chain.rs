//! A chain whose evaluator screens proposals in single precision
//! (`IncrementalLikelihood::propose_unless_rejected`) gives the same samples, to
//! the bit, as one that evaluates every proposal exactly: the screen only skips
//! the exact work of proposals it proves rejected.

use rand::SeedableRng;
use std::sync::Arc;
use sustain_model::kernels::Isa;
use sustain_model::simulate::Cohort;
use sustain_model::{Dataset, IncrementalLikelihood, Likelihood, MissingConvention, Screening};
use sustain_sampler::{run_chain, ProposalMode, Round, StepSizes};
use sustain_testkit::uniform_cohort;

/// Runs the same chain with and without the screen; `min_rejected`: how many
/// proposals the screen must have rejected itself (on CPUs that have it).
fn check(data: &Dataset, w: &Cohort, mode: ProposalMode, label: &str, min_rejected: u64) {
    let base = Likelihood::new(w.events.clone(), data, MissingConvention::Marginalise).unwrap();
    // Both kernels of the screen, where this CPU has them.
    for isa in [Isa::Avx512, Isa::Avx2] {
        if let Some(lik) = base.clone().with_kernels(isa) {
            check_on(
                Arc::new(lik),
                w,
                mode,
                &format!("{label} ({isa:?})"),
                min_rejected,
            );
        }
    }
}

fn check_on(lik: Arc<Likelihood>, w: &Cohort, mode: ProposalMode, label: &str, min_rejected: u64) {
    let steps = StepSizes::initial(w.truth.n_subtypes(), w.events.n_events());
    let run = |screen: Screening| {
        let mut inc = IncrementalLikelihood::new(Arc::clone(&lik), &w.truth);
        inc.set_screening(screen);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        // A borrowed evaluator, to read the screen's count after the run.
        let round = Round::new(mode, &steps, 3000);
        let run = run_chain(0, &w.events, &mut inc, &w.truth, round, &mut rng);
        (run, inc.screen_rejections())
    };
    let (screened, rejected) = run(Screening::Always);
    let (exact, none) = run(Screening::Off);
    let (adaptive, _) = run(Screening::Adaptive);
    assert_eq!(
        adaptive.trace, exact.trace,
        "{label}: traces differ (adaptive)"
    );
    assert_eq!(none, 0);
    assert_eq!(screened.trace, exact.trace, "{label}: traces differ");
    assert_eq!(screened.acceptance, exact.acceptance);
    eprintln!(
        "{label}: acceptance {:.3}, {rejected} of 3000 proposals rejected by the screen",
        exact.acceptance
    );
    {
        assert!(
            rejected >= min_rejected,
            "{label}: the screen rejected only {rejected}"
        );
    }
}

#[test]
fn screened_chain_gives_the_exact_chain() {
    let w = uniform_cohort(400, 8, &[0.5, 0.3, 0.2], 21);
    check(&w.data, &w, ProposalMode::Exact, "ordinary data", 1000);
    check(
        &w.data,
        &w,
        ProposalMode::Reference,
        "reference proposals",
        1000,
    );
    // Outlying values (6x every 23rd value): groups with large factors take the
    // screen's checked path or are declined.
    let mut v = w.data.values().to_owned();
    for (i, x) in v.iter_mut().enumerate() {
        if i % 23 == 0 && x.is_finite() {
            *x *= 6.0;
        }
    }
    check(
        &Dataset::new(v).unwrap(),
        &w,
        ProposalMode::Exact,
        "outlying values",
        1000,
    );
    // One subtype: most proposals accepted.
    let w1 = uniform_cohort(150, 5, &[1.0], 22);
    check(&w1.data, &w1, ProposalMode::Exact, "one subtype", 500);
}
