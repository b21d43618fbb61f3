//! Evaluators with some of their own methods hidden, so that the trait's defaults
//! run in their place: the tests that an evaluator's fast path decides as the
//! default does.

use ndarray::Array3;
use sustain_model::{BatchEvaluator, EventOrder, Mixture, Result, Sequence, SubtypeOf};

/// The methods [`BatchEvaluator`] requires, forwarded to the wrapped evaluator.
macro_rules! forward_required {
    () => {
        fn events(&self) -> &EventOrder {
            self.0.events()
        }
        fn n_subjects(&self) -> usize {
            self.0.n_subjects()
        }
        fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>> {
            self.0.loglike_batch(mixtures)
        }
        fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>> {
            self.0.log_p_subjects_batch(mixtures)
        }
        fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<Array3<f64>> {
            self.0.posterior_sums(mixtures)
        }
    };
}

/// The evaluator's own candidate scores and choice among candidates, forwarded.
macro_rules! forward_candidates {
    () => {
        fn loglike_subtype_candidates(
            &mut self,
            slot: SubtypeOf<'_>,
            candidates: &[Sequence],
        ) -> Result<Vec<f64>> {
            self.0.loglike_subtype_candidates(slot, candidates)
        }
        fn best_subtype_candidate(
            &mut self,
            slot: SubtypeOf<'_>,
            candidates: &[Sequence],
        ) -> Result<usize> {
            self.0.best_subtype_candidate(slot, candidates)
        }
    };
}

/// Only the required methods of the evaluator: every E-M method is the trait's
/// default.
pub struct RequiredOnly<E>(pub E);

impl<E: BatchEvaluator> BatchEvaluator for RequiredOnly<E> {
    forward_required!();
}

/// The evaluator's own candidate scores and choice, with `best_event_position`
/// left to the trait's default (every candidate built and handed to
/// `best_subtype_candidate`).
pub struct CandidatesOnly<E>(pub E);

impl<E: BatchEvaluator> BatchEvaluator for CandidatesOnly<E> {
    forward_required!();
    forward_candidates!();
}

/// Every method of the evaluator, counting the calls of `best_event_position`
/// (how many event moves E-M scored).
pub struct CountingMoves<E>(pub E, pub usize);

impl<E: BatchEvaluator> BatchEvaluator for CountingMoves<E> {
    forward_required!();
    forward_candidates!();
    fn best_event_position(
        &mut self,
        slot: SubtypeOf<'_>,
        event: usize,
        allowed: std::ops::RangeInclusive<usize>,
    ) -> Result<usize> {
        self.1 += 1;
        self.0.best_event_position(slot, event, allowed)
    }
}
