//! The one way to run a fit: [`Fit`], a builder over a model of any family.
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
//!
//! Besides the whole fit ([`Fit::run`]) the builder runs one subtype count alone
//! ([`Fit::run_subtype_count`]), one chain shard ([`Fit::run_chain_shard`]) and
//! merges chain shards ([`Fit::merge_shards`]), all with the same inputs and
//! settings, so that the parts of a fit can run as separate jobs.

use crate::backend::Engine;
use crate::checkpoint::Checkpoints;
use crate::config::{Backend, FitConfig};
use crate::fit::{
    fit_model_chain_shard, fit_model_observed, fit_model_subtype_count, merge_model_chain_shards,
    on_selected_engine, prepared_likelihood, zscore_input, FitInput, ModelInput, Progress,
    ShardModel,
};
use crate::results::{FitResult, SubtypeModel};
use crate::{BackendError, Error};
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

    /// Saves each subtype count as it finishes and resumes from those saved (none:
    /// `None`, the default).
    pub fn checkpoints(mut self, checkpoints: impl Into<Option<&'a Checkpoints>>) -> Self {
        self.checkpoints = checkpoints.into();
        self
    }

    /// Reports progress (E-M and chain counters, warnings) to `progress`.
    pub fn on_progress(mut self, progress: &'a dyn Fn(Progress)) -> Self {
        self.progress = progress;
        self
    }

    /// Hands each subtype count's model to `on_model` as soon as it is final
    /// (saved, and reported as [`Progress::ModelDone`]), in completion order and on
    /// the calling thread. On the CPU with several threads the chains of other
    /// subtype counts keep running meanwhile, so a caller can write a model's
    /// outputs while the fit goes on.
    pub fn on_model(mut self, on_model: &'a dyn Fn(&SubtypeModel)) -> Self {
        self.on_model = on_model;
        self
    }

    /// Runs the fit. Without [`Fit::engine`] the backend is [`FitConfig::backend`]:
    /// when the GPU is asked for but unavailable, or does not evaluate the model's
    /// family, the fit runs on the CPU after one [`Progress::Warning`] (and records
    /// `backend: cpu`), or fails with [`Error::Backend`] under
    /// [`FitConfig::require_gpu`].
    pub fn run(self) -> Result<FitResult, Error> {
        let (checkpoints, progress, on_model) = (self.checkpoints, self.progress, self.on_model);
        self.on_engine(|input, config, engine| {
            fit_model_observed(input, config, engine, checkpoints, progress, on_model)
        })
    }

    /// Runs only subtype count `k` (in `1..=config.max_subtypes`): E-M for 1..=k,
    /// each from the previous optimum, then tuning and chains for `k` alone. The
    /// same model, bit for bit, as the `k`-th of [`Fit::run`], so subtype counts can
    /// run as separate jobs. Checkpoints and `on_model` are not used.
    pub fn run_subtype_count(self, k: usize) -> Result<SubtypeModel, Error> {
        let progress = self.progress;
        self.on_engine(|input, config, engine| {
            fit_model_subtype_count(&input.model, config, engine, k, progress)
        })
    }

    /// Runs the chain shard `config.chain_range` (`sustain fit --chain-shard I/N`)
    /// of every subtype count, on the CPU: E-M exactly as [`Fit::run`] does, then
    /// tuning and this shard's chains, unmerged. A GPU backend is refused under
    /// [`FitConfig::require_gpu`], else replaced by the CPU after one warning.
    pub fn run_chain_shard(self) -> Result<Vec<ShardModel>, Error> {
        fit_model_chain_shard(&self.input?, &self.config, self.progress)
    }

    /// Merges chain shards (`shards[i]`: every subtype count of shard `i`, any
    /// shard order) of this fit into the [`FitResult`] that [`Fit::run`] with the
    /// same settings gives. Every shard must hold the same E-M optimum and step
    /// sizes, and together exactly the chains `0..n_chains`. Timing: `em_s` is the
    /// first shard's, `mcmc_s` the longest shard's.
    pub fn merge_shards(self, shards: Vec<Vec<ShardModel>>) -> Result<FitResult, Error> {
        merge_model_chain_shards(&self.input?, &self.config, shards)
    }

    /// Runs `job` on [`Fit::engine`], or on the engine that the configured backend
    /// selects for the model's family (see [`Fit::run`]).
    fn on_engine<T>(
        self,
        job: impl FnOnce(&ModelInput<'a, M>, &FitConfig, &Engine) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let input = self.input?;
        if let Some(engine) = self.engine {
            return job(&input, &self.config, engine);
        }
        let progress = self.progress;
        on_selected_engine(&self.config, progress, |engine, config| {
            let family = input.descriptor.family();
            let Some(notice) = engine.for_model(&input.model, family)?.notice else {
                return job(&input, config, engine);
            };
            if config.require_gpu {
                let why = notice.split(';').next().unwrap_or_default().to_string();
                return Err(BackendError::GpuRequired { why }.into());
            }
            progress(Progress::Warning(notice));
            let cpu = FitConfig {
                backend: Backend::Cpu,
                ..config.clone()
            };
            job(&input, &cpu, &Engine::Cpu)
        })
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
