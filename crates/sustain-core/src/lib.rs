//! # sustain-core
//!
//! What every SuStaIn model family shares (Young et al. 2018; spec sections 3-8):
//! the event order (which events there are and what must precede what), validated
//! sequences, mixtures of subtypes, the model trait a family implements
//! ([`StageModel`], [`SustainModel`]), and the evaluator traits backends implement
//! ([`BatchEvaluator`], [`ChainEvaluator`]). No model family, no threads, no GPU.
//!
//! A new model family writes [`StageModel`] (its stage likelihoods) and an empty
//! `impl SustainModel`; E-M, chains, staging and cross-validation then run on it.

#![warn(missing_docs)]

#[macro_use]
mod clone_reusing;
pub mod error;
pub mod evaluate;
mod forward;
pub mod generic;
pub mod mixture;
pub mod model;
pub mod order;
pub mod sequence;
mod sum;

pub use error::{ModelError, Result};
pub use evaluate::{first_max, BatchEvaluator, ChainEvaluator, FullEvaluator, Screened, SubtypeOf};
pub use mixture::Mixture;
pub use model::{ShardState, StageModel, SustainModel};
pub use order::EventOrder;
pub use sequence::Sequence;
pub use sum::neumaier_sum;

// For `forward_batch_evaluator!`, whose methods name `Array3` in the callers' crates.
#[doc(hidden)]
pub use ndarray as __ndarray;
