//! # sustain-model
//!
//! The SuStaIn z-score model (Young et al. 2018) as the reference implementation
//! pySuStaIn defines it: events built from `z_vals`/`z_max`, validated sequences,
//! data with missing values, the exact likelihood in the log domain, posteriors,
//! a simulator, and the batch-evaluation seam that the CPU-thread and GPU backends
//! implement. No threads, no GPU.
//!
//! ```
//! use sustain_model::*;
//! use rand::SeedableRng;
//! let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
//! let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
//! let truth = Mixture::single(Sequence::random(&events, &mut rng));
//! let sim = simulate::simulate(&events, &truth, &simulate::SimulationSpec { n_subjects: 50, ..Default::default() }, 7).unwrap();
//! let lik = Likelihood::new(events, &sim.data, MissingConvention::Marginalise).unwrap();
//! assert!(lik.loglike(&truth).is_finite());
//! ```

#![warn(missing_docs)]

pub mod batch;
/// The model-neutral core, re-exported: paths such as `sustain_model::sequence` keep working.
pub use sustain_core::{error, mixture, sequence};
mod chain_screen;
pub mod data;
pub mod event_based;
pub mod events;
pub mod incremental;
#[macro_use]
pub mod kernels;
mod em_walk;
pub mod likelihood;
pub mod mixed;
mod mixed_lanes;
mod mixed_parts;
mod mixed_scores;
pub mod mixture_fit;
pub mod mixture_kde;
pub mod ordinal;
pub mod prefix;
mod prefix_chain;
mod prefix_em;
mod prefix_lanes;
pub mod prefix_workloads;
mod screen;
mod seam;
pub mod simulate;
pub mod stages;

pub use batch::SerialEvaluator;
pub use data::Dataset;
pub use error::{ModelError, Result};
pub use event_based::event_based;
pub use events::{Event, EventSet};
pub use incremental::{IncrementalLikelihood, Screening};
pub use kernels::TOTAL_BLOCK;
pub use likelihood::{Likelihood, MissingConvention, Posteriors, Scratch};
pub use mixed::{EventPart, MixedModel, MixedSpec, OrdinalPart, ZscorePart};
pub use mixed_scores::{ordinal_score_probabilities, OrdinalScores};
pub use mixture::Mixture;
pub use ordinal::{ordinal, score_probabilities};
pub use prefix::{PrefixFamily, PrefixModel};
pub use sequence::Sequence;
pub use stages::StageValues;
pub use sustain_core::{
    first_max, forward_batch_evaluator, neumaier_sum, BatchEvaluator, ChainEvaluator, EventOrder,
    Screened, ShardState, StageModel, SubtypeOf, SustainModel,
};
