//! How a chain evaluates its proposals: the seam that makes the sampler generic
//! over the likelihood backend. The traits live in the model-neutral core
//! (`sustain-core`); they are re-exported here, where chains use them.

pub use sustain_core::{ChainEvaluator, FullEvaluator};
