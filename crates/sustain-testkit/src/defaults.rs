//! Evaluators with some of their own methods hidden, so that the trait's defaults
//! run in their place: the tests that an evaluator's fast path decides as the
//! default does.

use sustain_model::{forward_batch_evaluator, BatchEvaluator, Result, SubtypeOf};

/// Only the required methods of the evaluator: every E-M method is the trait's
/// default.
pub struct RequiredOnly<E>(pub E);

impl<E: BatchEvaluator> BatchEvaluator for RequiredOnly<E> {
    forward_batch_evaluator!(0: required);
}

/// The evaluator's own candidate scores and choice, with `best_event_position`
/// left to the trait's default (every candidate built and handed to
/// `best_subtype_candidate`).
pub struct CandidatesOnly<E>(pub E);

impl<E: BatchEvaluator> BatchEvaluator for CandidatesOnly<E> {
    forward_batch_evaluator!(0: required, loglike_subtype_candidates, best_subtype_candidate);
}

/// Every method of the evaluator, counting the calls of `best_event_position`
/// (how many event moves E-M scored).
pub struct CountingMoves<E>(pub E, pub usize);

impl<E: BatchEvaluator> BatchEvaluator for CountingMoves<E> {
    forward_batch_evaluator!(0: required, loglike_subtype_candidates, best_subtype_candidate);
    fn best_event_position(
        &mut self,
        slot: SubtypeOf<'_>,
        event: usize,
        allowed: std::ops::RangeInclusive<usize>,
    ) -> Result<usize> {
        self.1 += 1;
        self.0.best_event_position(slot, event, allowed)
    }
    fn choices_are_pure(&self) -> bool {
        self.0.choices_are_pure()
    }
}
