//! The evaluator traits: how E-M, staging and cross-validation score many models at
//! once ([`BatchEvaluator`]) and how a chain scores its proposals
//! ([`ChainEvaluator`]). Backends implement them; nothing here names a model family.

use crate::error::{ModelError, Result};
use crate::mixture::Mixture;
use crate::order::EventOrder;
use crate::sequence::Sequence;
use ndarray::Array3;
use std::ops::RangeInclusive;

/// Scores batches of candidate models against resident data.
pub trait BatchEvaluator {
    /// The model's events.
    fn events(&self) -> &EventOrder;
    /// Number of subjects of the resident data.
    fn n_subjects(&self) -> usize;
    /// One total log-likelihood per mixture.
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>>;
    /// As [`Self::loglike_batch`] on the concatenation of `parts`, in order: one call
    /// for mixtures held in several places (the lockstep driver's per-thread blocks of
    /// chains). The default copies them into one batch; a backend that packs mixtures
    /// for a device reads the parts in place.
    fn loglike_batch_parts(&mut self, parts: &[&[Mixture]]) -> Result<Vec<f64>> {
        match parts {
            [one] => self.loglike_batch(one),
            _ => self.loglike_batch(&parts.concat()),
        }
    }
    /// Per-subject `log p(x_m)` for each mixture (staging, cross-validation).
    fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>>;
    /// Staging: the sum over `mixtures` of the joint posteriors `p(subtype s, stage k |
    /// x_m)` (spec section 3), shaped (subjects, stages, subtypes). Every mixture must
    /// have the same number of subtypes; an empty batch gives zeros of one subtype.
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<Array3<f64>>;
    /// The E-M seam: the total log-likelihood of `base` with subtype `subtype`'s
    /// sequence replaced by each candidate in turn (other subtypes and fractions fixed).
    fn loglike_subtype_candidates(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<Vec<f64>> {
        let mixtures: Vec<Mixture> = candidates
            .iter()
            .map(|c| {
                let mut m = slot.base.clone();
                m.sequences_mut()[slot.subtype] = c.clone();
                m
            })
            .collect();
        self.loglike_batch(&mixtures)
    }
    /// E-M's decision: the index of the candidate with the largest
    /// [`Self::loglike_subtype_candidates`] score, the first of equal maxima (a NaN
    /// score never wins). A backend may skip exact scores of candidates it can
    /// prove are not the best; the answer must be the same.
    fn best_subtype_candidate(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<usize> {
        let scores = self.loglike_subtype_candidates(slot, candidates)?;
        Ok(first_max(&scores))
    }
    /// E-M's move of one event: the position in `allowed` (positions of subtype
    /// `subtype`'s sequence of `base`, from [`Sequence::allowed_positions`]) that
    /// [`Self::best_subtype_candidate`] chooses among the sequences with `event`
    /// moved to each of them ([`event_candidates`]), the first of equal maxima. A
    /// backend may score the positions in any way that makes the same choice; the
    /// default builds the candidates and asks [`Self::best_subtype_candidate`].
    fn best_event_position(
        &mut self,
        slot: SubtypeOf<'_>,
        event: usize,
        allowed: RangeInclusive<usize>,
    ) -> Result<usize> {
        best_event_position_of_candidates(self, slot, event, allowed)
    }
    /// Whether [`Self::best_event_position`] answers from its arguments alone, to
    /// the bit, whatever this evaluator computed before (exact scores from an
    /// incrementally updated state differ in the last bits, and so can a choice
    /// between near-equal candidates). Then the start points of one E-M share
    /// their choices. False unless the backend guarantees it.
    fn choices_are_pure(&self) -> bool {
        false
    }
}

/// [`BatchEvaluator::best_event_position`] as the default makes it: builds every
/// candidate and asks `evaluator`'s [`BatchEvaluator::best_subtype_candidate`];
/// for a backend that does so only in some cases.
pub fn best_event_position_of_candidates<E: BatchEvaluator + ?Sized>(
    evaluator: &mut E,
    slot: SubtypeOf<'_>,
    event: usize,
    allowed: RangeInclusive<usize>,
) -> Result<usize> {
    let start = *allowed.start();
    let candidates = event_candidates(slot, event, allowed);
    if candidates.len() <= 1 {
        return Ok(start);
    }
    Ok(start + evaluator.best_subtype_candidate(slot, &candidates)?)
}

/// The candidates of E-M's move of `event` in subtype `subtype`'s sequence of
/// `base`: that sequence with the event moved to each position of `allowed`.
pub fn event_candidates(
    slot: SubtypeOf<'_>,
    event: usize,
    allowed: RangeInclusive<usize>,
) -> Vec<Sequence> {
    event_candidates_at(slot, event, allowed)
}

/// As [`event_candidates`], the event moved to each of `positions` in turn.
pub fn event_candidates_at(
    slot: SubtypeOf<'_>,
    event: usize,
    positions: impl Iterator<Item = usize>,
) -> Vec<Sequence> {
    let seq = &slot.base.sequences()[slot.subtype];
    positions
        .map(|to| {
            let mut c = seq.clone();
            c.move_unchecked(event, to);
            c
        })
        .collect()
}

/// Index of the first largest value (0 when empty; a NaN never wins).
pub fn first_max(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in scores.iter().enumerate() {
        if *v > scores[best] {
            best = i;
        }
    }
    best
}

/// The number of subtypes shared by every mixture of a staging batch (1 when empty).
pub fn common_subtypes(mixtures: &[Mixture]) -> Result<usize> {
    let k = mixtures.first().map_or(1, Mixture::n_subtypes);
    match mixtures.iter().find(|m| m.n_subtypes() != k) {
        Some(m) => Err(ModelError::Shape(format!(
            "a staging batch mixes models of {k} and {} subtypes",
            m.n_subtypes()
        ))),
        None => Ok(k),
    }
}

/// The subtype `subtype` of `base`: where E-M puts its candidate sequences (the
/// other subtypes and the fractions fixed).
#[derive(Clone, Copy, Debug)]
pub struct SubtypeOf<'a> {
    /// The mixture.
    pub base: &'a Mixture,
    /// Which of its subtypes.
    pub subtype: usize,
}

impl<'a> SubtypeOf<'a> {
    /// Subtype `subtype` of `base`.
    pub fn new(base: &'a Mixture, subtype: usize) -> Self {
        Self { base, subtype }
    }
}

/// A chain's proposal that an evaluator may skip when the chain certainly rejects
/// it ([`ChainEvaluator::propose_unless_rejected`]).
#[derive(Clone, Copy)]
pub struct Screened<'a> {
    /// The proposed state.
    pub mixture: &'a Mixture,
    /// Which subtypes' sequences differ from the current state's (fractions may
    /// differ).
    pub changed: &'a [bool],
    /// The chain's decision at a log-likelihood (nondecreasing in it).
    pub accepts: &'a dyn Fn(f64) -> bool,
}

/// Stateful evaluation of one chain's proposals.
pub trait ChainEvaluator {
    /// Sets the current state; returns its log-likelihood.
    fn reset(&mut self, mixture: &Mixture) -> f64;
    /// Evaluates a proposal whose sequences differ from the current ones only where
    /// `changed[s]` (fractions may differ). The state is kept until accept/reject.
    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64;
    /// Makes the last proposal current.
    fn accept(&mut self);
    /// Drops the last proposal.
    fn reject(&mut self);
    /// As [`Self::propose`], but may skip the evaluation of a proposal the chain
    /// certainly rejects: `proposal.accepts(ll)` is the chain's decision at
    /// log-likelihood `ll`. `None`: the proposal is rejected and already dropped
    /// (no accept/reject follows). `Some(ll)`: the value [`Self::propose`] gives,
    /// to the bit; accept or reject follows. By default every proposal is
    /// evaluated.
    fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
        Some(self.propose(proposal.mixture, proposal.changed))
    }
}

/// A borrowed or boxed evaluator (e.g. to read its counters after the chain).
macro_rules! forward_chain_evaluator {
    ($($t:tt)*) => {
        impl<E: ChainEvaluator + ?Sized> ChainEvaluator for $($t)* {
            fn reset(&mut self, mixture: &Mixture) -> f64 {
                (**self).reset(mixture)
            }
            fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
                (**self).propose(mixture, changed)
            }
            fn accept(&mut self) {
                (**self).accept()
            }
            fn reject(&mut self) {
                (**self).reject()
            }
            fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
                (**self).propose_unless_rejected(proposal)
            }
        }
    };
}
forward_chain_evaluator!(&mut E);
forward_chain_evaluator!(Box<E>);

/// Evaluates every proposal in full through any [`BatchEvaluator`] (a batch of one).
pub struct FullEvaluator<B: BatchEvaluator> {
    batch: B,
}

impl<B: BatchEvaluator> FullEvaluator<B> {
    /// Wraps a batch evaluator.
    pub fn new(batch: B) -> Self {
        Self { batch }
    }
}

impl<B: BatchEvaluator> ChainEvaluator for FullEvaluator<B> {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        self.propose(mixture, &[])
    }
    fn propose(&mut self, mixture: &Mixture, _changed: &[bool]) -> f64 {
        self.batch
            .loglike_batch(std::slice::from_ref(mixture))
            .map(|v| v[0])
            .unwrap_or(f64::NEG_INFINITY)
    }
    fn accept(&mut self) {}
    fn reject(&mut self) {}
}
