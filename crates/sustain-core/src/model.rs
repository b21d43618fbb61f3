//! The model seam. A SuStaIn model family (z-scores, event-based mixtures,
//! ordinal scores, ...) differs only in what each subject's data contributes at
//! each stage of a sequence (spec sections 3 and 10). [`StageModel`] is that
//! contribution, the one thing a new family must write; [`SustainModel`] adds the
//! evaluations E-M, chains and staging need, each with a generic default that a
//! family may replace with a faster exact one (as the z-score model does).

use crate::error::Result;
use crate::evaluate::{BatchEvaluator, ChainEvaluator, Screened};
use crate::generic;
use crate::mixture::Mixture;
use crate::order::EventOrder;
use crate::sequence::Sequence;
use ndarray::Array3;
use std::ops::Range;
use std::sync::Arc;

/// What a subject contributes at each stage: the likelihood of its data given the
/// stage `k` of a sequence, for every subject of the model's data.
pub trait StageModel: Send + Sync + Sized + 'static {
    /// The events and what must precede what.
    fn order(&self) -> &EventOrder;
    /// Number of subjects of the model's data.
    fn n_subjects(&self) -> usize;
    /// `log p(x_m | k, S)` for every subject `m` and stage `k = 0..=N`, including the
    /// uniform stage prior `1/(N+1)`, less [`Self::subject_offsets`]; row-major
    /// `out[m * (N + 1) + k]`.
    fn stage_loglikes(&self, sequence: &Sequence, out: &mut [f64]);
    /// The same model on the subjects `subjects` of its data, in that order (E-M's
    /// splits, cross-validation folds).
    fn subset(&self, subjects: &[usize]) -> Result<Self>;
    /// `log sum_k p(x_m | k, S)` per subject, less [`Self::subject_offsets`]. The
    /// default takes the log-sum-exp of [`Self::stage_loglikes`].
    fn subject_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        generic::subject_loglikes_from_stages(self, sequence, out)
    }
    /// A per-subject term of `log p(x_m | ...)` that no sequence or fraction
    /// changes, left out of the values above so that they stay in range; empty
    /// means zero for every subject.
    fn subject_offsets(&self) -> &[f64] {
        &[]
    }
}

/// One shard (a contiguous range of subjects) of a chain's incremental state: the
/// protocol by which a CPU backend splits one chain over threads. The total
/// log-likelihood is the compensated sum ([`crate::neumaier_sum`]) of every
/// shard's [`Self::partials`], in shard order.
pub trait ShardState: Send {
    /// Rebuilds the state for `mixture`. False when a subject left the state's
    /// range: the caller then takes the total from [`SustainModel::loglike`].
    fn reset_shard(&mut self, mixture: &Mixture) -> bool;
    /// Evaluates a proposal differing from the current state only where
    /// `changed[s]` (fractions may differ); the return value as for
    /// [`Self::reset_shard`].
    fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool;
    /// As [`Self::propose_shard`] for a chain held in one shard, which may skip a
    /// proposal `accepts` certainly refuses (see
    /// [`ChainEvaluator::propose_unless_rejected`]): `None` when it did.
    fn propose_shard_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<bool> {
        Some(self.propose_shard(proposal.mixture, proposal.changed))
    }
    /// Makes the last proposal current; `rebuild` when its evaluation left the
    /// range (the state is then rebuilt).
    fn accept_shard(&mut self, rebuild: bool);
    /// Drops the last proposal.
    fn reject(&mut self);
    /// Partial sums of the last reset or proposal, one per block of
    /// [`SustainModel::SHARD_BLOCK`] subjects.
    fn partials(&self) -> &[f64];
}

/// A model as E-M, chains, staging and cross-validation use it. Every method has a
/// default built on [`StageModel`]; a family replaces those it can do faster, with
/// the same values.
pub trait SustainModel: StageModel {
    /// Subjects per partial sum of a [`ShardState`]; shards of a split chain start
    /// on multiples of it, so that a split chain adds the same partials.
    const SHARD_BLOCK: usize = 64;

    /// The total log-likelihood of `mixture` (spec section 3).
    fn loglike(&self, mixture: &Mixture) -> f64 {
        generic::loglike(self, mixture)
    }
    /// `log p(x_m)` per subject.
    fn log_p_subjects(&self, mixture: &Mixture) -> Vec<f64> {
        generic::log_p_subjects(self, mixture)
    }
    /// The sum over `mixtures` of the joint posteriors `p(subtype s, stage k | x_m)`,
    /// shaped (subjects, stages, subtypes); every mixture has the same subtypes.
    fn posterior_sums(&self, mixtures: &[Mixture]) -> Result<Array3<f64>> {
        generic::posterior_sums(self, mixtures)
    }
    /// [`Self::posterior_sums`] of the subjects `subjects` only (a range starting on
    /// a [`Self::SHARD_BLOCK`] boundary), added into `out` (their rows of the
    /// `[subject, stage, subtype]` array): threads split staging by subjects, and a
    /// subject's sums must be the same bits whatever range computes them.
    fn posterior_sums_into(
        &self,
        mixtures: &[Mixture],
        subjects: Range<usize>,
        out: &mut [f64],
    ) -> Result<()> {
        generic::posterior_sums_into(self, mixtures, subjects, out)
    }
    /// The subjects `subjects` (a range on a [`Self::SHARD_BLOCK`] boundary) as a
    /// model of their own, for one shard of a split chain.
    fn shard(&self, subjects: Range<usize>) -> Result<Self> {
        self.subset(&subjects.collect::<Vec<_>>())
    }
    /// A chain's incremental state over all of `model`'s subjects, at `start`.
    fn shard_state(model: Arc<Self>, start: &Mixture) -> Box<dyn ShardState> {
        Box::new(generic::CachedShard::new(model, start, Self::SHARD_BLOCK))
    }
    /// The evaluator of one chain on one thread, at `start`.
    fn chain_evaluator(model: &Arc<Self>, start: &Mixture) -> Box<dyn ChainEvaluator + Send> {
        Box::new(generic::ShardChain::new(
            Arc::clone(model),
            Self::shard_state(Arc::clone(model), start),
        ))
    }
    /// The single-thread batch evaluator (E-M, staging, cross-validation).
    fn batch_evaluator(model: &Arc<Self>) -> Box<dyn BatchEvaluator + Send> {
        Box::new(generic::Batch::new(Arc::clone(model)))
    }
}
