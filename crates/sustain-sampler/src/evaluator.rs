//! How a chain evaluates its proposals: the seam that makes the sampler generic
//! over the likelihood backend.

use std::sync::Arc;
use sustain_model::{BatchEvaluator, IncrementalLikelihood, Likelihood, Mixture};

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
    /// certainly rejects: `accepts(ll)` is the chain's decision at log-likelihood
    /// `ll` (nondecreasing in `ll`). `None`: the proposal is rejected and already
    /// dropped (no accept/reject follows). `Some(ll)`: the value
    /// [`Self::propose`] gives, to the bit; accept or reject follows. By default
    /// every proposal is evaluated.
    fn propose_unless_rejected(
        &mut self,
        mixture: &Mixture,
        changed: &[bool],
        accepts: &dyn Fn(f64) -> bool,
    ) -> Option<f64> {
        let _ = accepts;
        Some(self.propose(mixture, changed))
    }
}

impl ChainEvaluator for IncrementalLikelihood {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        IncrementalLikelihood::reset(self, mixture)
    }
    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        IncrementalLikelihood::propose(self, mixture, changed)
    }
    fn accept(&mut self) {
        IncrementalLikelihood::accept(self)
    }
    fn reject(&mut self) {
        IncrementalLikelihood::reject(self)
    }
    fn propose_unless_rejected(
        &mut self,
        mixture: &Mixture,
        changed: &[bool],
        accepts: &dyn Fn(f64) -> bool,
    ) -> Option<f64> {
        IncrementalLikelihood::propose_unless_rejected(self, mixture, changed, accepts)
    }
}

/// A borrowed evaluator (e.g. to read its counters after the chain).
impl<E: ChainEvaluator + ?Sized> ChainEvaluator for &mut E {
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
    fn propose_unless_rejected(
        &mut self,
        mixture: &Mixture,
        changed: &[bool],
        accepts: &dyn Fn(f64) -> bool,
    ) -> Option<f64> {
        (**self).propose_unless_rejected(mixture, changed, accepts)
    }
}

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

/// The default CPU evaluator of a chain.
pub fn incremental(lik: &Arc<Likelihood>, start: &Mixture) -> IncrementalLikelihood {
    IncrementalLikelihood::new(Arc::clone(lik), start)
}
