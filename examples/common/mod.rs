//! Helpers the example programs share (a folder, so Cargo does not take it for an
//! example of its own).

use std::sync::Arc;
use sustain_model::{IncrementalLikelihood, Likelihood, Mixture};
use sustain_sampler::{tune_steps, ProposalMode, StepSizes};

/// Step sizes tuned from `start` on the z-score likelihood `lik` (exact proposals,
/// 2 passes of 2,000 iterations), drawn from `seed`.
pub fn tuned_steps(lik: &Arc<Likelihood>, start: &Mixture, seed: u64) -> StepSizes {
    tune_steps(
        lik.events(),
        || IncrementalLikelihood::new(Arc::clone(lik), start),
        start,
        ProposalMode::Exact,
        2,
        2000,
        seed,
    )
}
