//! One way to run a fit: [`Fit`], a builder over a model of any family.
//!
//! ```
//! use sustain::prelude::*;
//! use rand::SeedableRng;
//! let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
//! let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
//! let truth = Mixture::single(Sequence::random(&events, &mut rng));
//! let sim = simulate(&events, &truth, &SimulationSpec { n_subjects: 60, ..Default::default() }, 3).unwrap();
//! let names: Vec<String> = (0..3).map(|b| format!("b{b}")).collect();
//! let config = FitConfig { n_startpoints: 2, max_subtypes: 1, n_iterations: 300,
//!     tuning_iterations: 100, n_chains: 2, ..FitConfig::default() };
//! let result = Fit::zscore(&FitInput { events: &events, biomarkers: &names, data: &sim.data }, config)
//!     .on_progress(&|p| eprintln!("{p:?}"))
//!     .run()
//!     .unwrap();
//! assert_eq!(result.models.len(), 1);
//! ```

use crate::backend::Engine;
use crate::checkpoint::Checkpoints;
use crate::config::FitConfig;
use crate::fit::{
    fit_model_observed, on_selected_engine, prepared_likelihood, zscore_input, FitInput,
    ModelInput, Progress,
};
use crate::results::{FitResult, SubtypeModel};
use crate::Error;
use sustain_core::SustainModel;
use sustain_model::Likelihood;

/// A fit of subtype counts 1..=`config.max_subtypes`: the model and settings, then
/// optionally the engine (default: [`FitConfig::backend`], resolved with its
/// fallback), checkpoints, and observers of progress and of each finished model.
pub struct Fit<'a, M: SustainModel> {
    input: Result<ModelInput<'a, M>, Error>,
    config: FitConfig,
    engine: Option<&'a Engine>,
    checkpoints: Option<&'a Checkpoints>,
    progress: &'a dyn Fn(Progress),
    on_model: &'a dyn Fn(&SubtypeModel),
}

impl<'a, M: SustainModel> Fit<'a, M> {
    /// A fit of `input` (any model family) with `config`.
    pub fn new(input: ModelInput<'a, M>, config: FitConfig) -> Self {
        Self::with(Ok(input), config)
    }

    fn with(input: Result<ModelInput<'a, M>, Error>, config: FitConfig) -> Self {
        Self {
            input,
            config,
            engine: None,
            checkpoints: None,
            progress: &|_| {},
            on_model: &|_| {},
        }
    }

    /// Runs on `engine` (for example [`Engine::batch`] over any batch evaluator)
    /// instead of the configured backend; `config.backend` is then only recorded.
    pub fn engine(mut self, engine: &'a Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Saves each subtype count as it finishes and resumes from those saved.
    pub fn checkpoints(mut self, checkpoints: &'a Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Reports progress (E-M and chain counters, warnings) to `progress`.
    pub fn on_progress(mut self, progress: &'a dyn Fn(Progress)) -> Self {
        self.progress = progress;
        self
    }

    /// Hands each subtype count's model to `on_model` as soon as it is final.
    pub fn on_model(mut self, on_model: &'a dyn Fn(&SubtypeModel)) -> Self {
        self.on_model = on_model;
        self
    }

    /// Runs the fit.
    pub fn run(self) -> Result<FitResult, Error> {
        let input = self.input?;
        match self.engine {
            Some(engine) => fit_model_observed(
                &input,
                &self.config,
                engine,
                self.checkpoints,
                self.progress,
                self.on_model,
            ),
            None => on_selected_engine(&self.config, self.progress, |engine, config| {
                fit_model_observed(
                    &input,
                    config,
                    engine,
                    self.checkpoints,
                    self.progress,
                    self.on_model,
                )
            }),
        }
    }
}

impl<'a> Fit<'a, Likelihood> {
    /// A fit of a z-score model (`input`: events, biomarker names, data), prepared
    /// with `config`'s missing-value convention.
    pub fn zscore(input: &'a FitInput<'a>, config: FitConfig) -> Self {
        let prepared = prepared_likelihood(input, &config).map(|lik| zscore_input(input, lik));
        Self::with(prepared, config)
    }
}
