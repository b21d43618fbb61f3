//! # sustain
//!
//! SuStaIn (Subtype and Stage Inference, Young et al. 2018) for Rust: from a
//! subjects x biomarkers table of z-scores to data-driven subtypes, their event
//! sequences with uncertainty from many parallel MCMC chains (with convergence
//! diagnostics), each subject's subtype and stage, and cross-validation (CVIC).
//! It follows the reference implementation pySuStaIn; see `docs/` for the
//! numerical contract and the output formats.
//!
//! A fit runs through one builder, [`Fit`] (the whole fit, one subtype count, chain
//! shards). Backends are chosen by cargo feature (`cpu`, the default; `gpu`) and at
//! run time by [`config::Backend`].
//!
//! ```
//! use sustain::prelude::*;
//! use rand::SeedableRng;
//! // A small simulated cohort: 3 biomarkers with thresholds 1 and 2, 2 subtypes.
//! let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
//! let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
//! let truth = Mixture::new(
//!     vec![Sequence::random(&events, &mut rng), Sequence::random(&events, &mut rng)],
//!     vec![0.6, 0.4],
//! ).unwrap();
//! let sim = simulate(&events, &truth, &SimulationSpec { n_subjects: 100, ..Default::default() }, 3).unwrap();
//! let names: Vec<String> = (0..3).map(|b| format!("b{b}")).collect();
//! let config = FitConfig { n_startpoints: 2, max_subtypes: 2, n_iterations: 500,
//!     tuning_iterations: 200, n_chains: 2, ..FitConfig::default() };
//! let input = FitInput { events: &events, biomarkers: &names, data: &sim.data };
//! let result = Fit::zscore(&input, config).run().unwrap();
//! assert_eq!(result.models.len(), 2);
//! println!("2-subtype ML sequences: {:?}", result.models[1].ml_sequences);
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod builder;
pub mod checkpoint;
pub mod config;
pub mod cv;
pub mod cv_model;
pub mod em;
mod em_memo;
mod error;
mod executor;
pub mod fit;
pub mod mixed;
pub mod npz;
pub mod npz_file;
pub mod results;
mod round_checkpoint;
pub mod rounds;
pub mod samples_file;
pub mod stage;
#[cfg(test)]
mod test_files;
mod trace_file;

pub use sustain_model as model;
pub use sustain_sampler as sampler;

/// Everything a typical user needs.
pub mod prelude {
    pub use crate::builder::Fit;
    pub use crate::config::{Backend, FitConfig};
    pub use crate::fit::{FitInput, Progress};
    pub use crate::results::{FitResult, SubjectStage, SubtypeModel};
    pub use crate::stage::{stage_subjects, stage_subjects_with};
    pub use sustain_model::simulate::{simulate, SimulationSpec};
    pub use sustain_model::{Dataset, EventSet, Likelihood, MissingConvention, Mixture, Sequence};
    pub use sustain_sampler::ProposalMode;
}

pub use builder::Fit;
pub use error::{BackendError, CheckpointError, ConfigError, DataError, Error, IoAction};
