//! The whole algorithm for subtype counts 1..=K: E-M, then MCMC from the E-M
//! optimum, merged, diagnosed, with subtypes ordered by descending mean fraction,
//! checkpointed after each count.

use crate::backend::{self, Engine};
use crate::checkpoint::{self, Checkpoints, Fingerprints, Match};
use crate::config::FitConfig;
use crate::em::{self, MlFit};
use crate::executor::{chain_state, Chains, JobThreads};
use crate::results::{EventInfo, FitResult, ModelDescriptor, SubtypeModel, Timing, SCHEMA_VERSION};
use crate::rounds::RoundSaver;
use crate::{CheckpointError, ConfigError, Error};
use std::sync::Arc;
use std::time::Instant;
use sustain_core::{StageModel, SustainModel};
use sustain_model::{Dataset, EventSet, Likelihood, Mixture};
use sustain_sampler::chain_summary::{
    disagreements, event_numbers, explain, summarize_chains, ChainSummary, Disagreement,
};
use sustain_sampler::progress::ChainProgress;
use sustain_sampler::ChainSettings;
use sustain_sampler::{merge, tune_steps, ChainRun};

/// What a fit reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// E-M for a subtype count started.
    EmStarted {
        /// Subtype count.
        n_subtypes: usize,
    },
    /// MCMC for a subtype count started (`chains` chains of `iterations`).
    McmcStarted {
        /// Subtype count.
        n_subtypes: usize,
        /// Number of chains.
        chains: usize,
        /// Iterations per chain.
        iterations: usize,
    },
    /// A subtype count finished (or was loaded from a checkpoint).
    ModelDone {
        /// Subtype count.
        n_subtypes: usize,
        /// Whether it was loaded from a checkpoint.
        resumed: bool,
    },
    /// E-M for a subtype count is running; slot 0 counts finished E-M jobs (start
    /// points: of one subtype, of each split, of each E-M on all data after a
    /// split); the counter's [`ChainProgress::target`] is their number once known
    /// (0 before), and the counter is closed when E-M ends.
    EmJobs {
        /// Subtype count.
        n_subtypes: usize,
        /// The counters (read them from any thread).
        progress: Arc<ChainProgress>,
    },
    /// One line the user should see, e.g. that the GPU backend is unavailable and
    /// the run continues on the CPU.
    Warning(String),
    /// A round of chains that run until they converge ended
    /// ([`crate::config::FitConfig::until_converged`]).
    RoundDone {
        /// Subtype count.
        n_subtypes: usize,
        /// Round number, from 1.
        round: usize,
        /// Iterations per chain so far.
        iterations_per_chain: usize,
        /// What has not converged yet (empty: converged).
        unmet: Vec<String>,
    },
    /// Chains are running; their counters advance as they go (read them from any
    /// thread, e.g. to draw progress bars).
    Chains {
        /// Subtype count.
        n_subtypes: usize,
        /// The counters (read them from any thread).
        progress: Arc<ChainProgress>,
    },
}

/// Inputs of a fit.
pub struct FitInput<'a> {
    /// The model's events.
    pub events: &'a EventSet,
    /// Biomarker names (one per biomarker).
    pub biomarkers: &'a [String],
    /// The data.
    pub data: &'a Dataset,
}

/// A prepared model of any family, with what results and checkpoints record of it.
pub struct ModelInput<'a, M: SustainModel> {
    /// The model on its data.
    pub model: Arc<M>,
    /// Biomarker names (one per biomarker).
    pub biomarkers: &'a [String],
    /// The family and its parameters, as results.json records them.
    pub descriptor: ModelDescriptor,
    /// Each event as results.json lists it.
    pub events: Vec<EventInfo>,
    /// What the fingerprint of checkpoints and results hashes of the data and the
    /// model (the settings are added per run); [`checkpoint::identity`] for a
    /// z-score model.
    pub identity: Vec<u8>,
}

// By hand: a derive would ask `M: Clone`, but only the `Arc` is cloned.
impl<M: SustainModel> Clone for ModelInput<'_, M> {
    fn clone(&self) -> Self {
        Self {
            model: Arc::clone(&self.model),
            biomarkers: self.biomarkers,
            descriptor: self.descriptor.clone(),
            events: self.events.clone(),
            identity: self.identity.clone(),
        }
    }
}

/// Resolves [`FitConfig::backend`] and runs `job` on the engine: on the CPU (with
/// `backend: cpu` recorded) after one [`Progress::Warning`] when the GPU was asked
/// for but is unavailable, or fails under [`FitConfig::require_gpu`].
pub(crate) fn on_selected_engine<T>(
    config: &FitConfig,
    progress: &dyn Fn(Progress),
    job: impl FnOnce(&Engine, &FitConfig) -> Result<T, Error>,
) -> Result<T, Error> {
    config.validate().map_err(ConfigError::Settings)?;
    let selection = backend::select(config.backend, config.require_gpu)?;
    if let Some(notice) = selection.notice {
        progress(Progress::Warning(notice));
        let mut cpu = config.clone();
        cpu.backend = crate::config::Backend::Cpu;
        return job(&Engine::Cpu, &cpu);
    }
    job(&selection.engine, config)
}

/// Refuses a subtype count outside `1..=config.max_subtypes`.
fn check_subtype_count(config: &FitConfig, k: usize) -> Result<(), Error> {
    if k == 0 || k > config.max_subtypes {
        return Err(ConfigError::SubtypeOutOfRange {
            k,
            max: config.max_subtypes,
        }
        .into());
    }
    Ok(())
}

/// Only subtype count `k` ([`crate::Fit::run_subtype_count`]) on a ready engine:
/// E-M for `1..=k`, then the chains of `k` alone, the same bits as that count of a
/// whole fit.
pub(crate) fn fit_model_subtype_count<M: SustainModel>(
    lik: &Arc<M>,
    config: &FitConfig,
    engine: &Engine,
    k: usize,
    progress: &dyn Fn(Progress),
) -> Result<SubtypeModel, Error> {
    check_subtype_count(config, k)?;
    let mut previous: Option<MlFit> = None;
    let mut em_s = 0.0;
    for j in 1..=k {
        let (em_fit, s) = em_step(engine, lik, config, j, previous.as_ref(), progress)?;
        previous = Some(em_fit);
        em_s = s;
    }
    let em_fit = previous.ok_or(ConfigError::NoSubtypeCount)?;
    let counters = chains_started(config, k, progress);
    let model = uncertainty_impl(
        engine,
        lik,
        &em_fit,
        config,
        k,
        JobThreads::fixed(config.threads),
        em_s,
        &counters,
        progress,
        None,
    )?;
    progress(Progress::ModelDone {
        n_subtypes: k,
        resumed: false,
    });
    Ok(model)
}

/// One name per biomarker.
fn check_names(names: &[String], n_biomarkers: usize) -> Result<(), Error> {
    if names.len() == n_biomarkers {
        return Ok(());
    }
    Err(ConfigError::BiomarkerNames {
        names: names.len(),
        biomarkers: n_biomarkers,
    }
    .into())
}

/// The likelihood of `input` after checking its biomarker names.
pub(crate) fn prepared_likelihood(
    input: &FitInput,
    config: &FitConfig,
) -> Result<Arc<Likelihood>, Error> {
    check_names(input.biomarkers, input.events.n_biomarkers())?;
    Ok(Arc::new(Likelihood::new(
        input.events.clone(),
        input.data,
        config.missing,
    )?))
}

/// E-M of subtype count `k` (from the `k - 1` optimum `previous`, none for `k = 1`),
/// with its job counter shown through `progress`; the optimum and its wall time.
fn em_step<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    config: &FitConfig,
    k: usize,
    previous: Option<&MlFit>,
    progress: &dyn Fn(Progress),
) -> Result<(MlFit, f64), Error> {
    progress(Progress::EmStarted { n_subtypes: k });
    let engine = &engine.for_em(lik);
    let t0 = Instant::now();
    let jobs = Arc::new(ChainProgress::new(1, 0));
    progress(Progress::EmJobs {
        n_subtypes: k,
        progress: Arc::clone(&jobs),
    });
    let em_config = FitConfig {
        em_progress: Some(Arc::clone(&jobs)),
        ..config.clone()
    };
    let em_fit = match previous {
        None => em::fit_one_subtype_with(engine, lik, &em_config, 1).map_err(Error::from),
        Some(prev) => em::fit_split_with(engine, lik, prev, &em_config, k as u64),
    };
    jobs.close();
    if jobs.cancelled() {
        return Err(Error::Cancelled);
    }
    Ok((em_fit?, t0.elapsed().as_secs_f64()))
}

/// The z-score model of `input` as a [`ModelInput`].
pub(crate) fn zscore_input<'a>(
    input: &'a FitInput,
    lik: Arc<Likelihood>,
) -> ModelInput<'a, Likelihood> {
    ModelInput {
        model: lik,
        biomarkers: input.biomarkers,
        descriptor: ModelDescriptor::Zscore {
            z_vals: input.events.z_vals(),
            z_max: input.events.z_max_all().to_vec(),
        },
        events: input
            .events
            .events()
            .iter()
            .map(|e| EventInfo {
                biomarker: input.biomarkers[e.biomarker].clone(),
                z: e.z,
            })
            .collect(),
        identity: checkpoint::identity(input),
    }
}

/// The event-based or ordinal model `model` (biomarkers `biomarkers`) as a
/// [`ModelInput`].
pub fn prefix_input<'a>(
    model: &'a Arc<sustain_model::PrefixModel>,
    biomarkers: &'a [String],
) -> ModelInput<'a, sustain_model::PrefixModel> {
    use sustain_model::PrefixFamily;
    let order = model.order();
    // Each event's value as results list it: 1 for a mixture event, the score
    // reached for an ordinal one.
    let (descriptor, values): (ModelDescriptor, Vec<f64>) = match model.family() {
        PrefixFamily::EventBased => (ModelDescriptor::Mixture, vec![1.0; order.n_events()]),
        PrefixFamily::Ordinal { score_vals } => {
            let values = (0..order.n_events())
                .map(|e| {
                    // The event's score: its biomarker's (level + 1)-th nonzero score.
                    score_vals[order.biomarker_of(e)]
                        .iter()
                        .copied()
                        .filter(|v| *v != 0.0)
                        .nth(order.level_of(e))
                        .unwrap_or(0.0)
                })
                .collect();
            (
                ModelDescriptor::Ordinal {
                    score_vals: score_vals.clone(),
                },
                values,
            )
        }
    };
    family_input(
        model,
        biomarkers,
        descriptor,
        &values,
        model.identity_bytes(),
    )
}

/// A model of a family other than z-scores as a [`ModelInput`]: `values[e]` is
/// event `e`'s value as results list it, `data_bytes` the bits of its prepared
/// data (the fingerprint adds the biomarker names and the descriptor).
pub(crate) fn family_input<'a, M: SustainModel>(
    model: &'a Arc<M>,
    biomarkers: &'a [String],
    descriptor: ModelDescriptor,
    values: &[f64],
    data_bytes: Vec<u8>,
) -> ModelInput<'a, M> {
    let order = model.order();
    let events = (0..order.n_events())
        .map(|e| EventInfo {
            biomarker: biomarkers
                .get(order.biomarker_of(e))
                .cloned()
                .unwrap_or_default(),
            z: values[e],
        })
        .collect();
    let mut identity = data_bytes;
    identity.extend(format!("{biomarkers:?}{descriptor:?}").bytes());
    ModelInput {
        model: Arc::clone(model),
        biomarkers,
        descriptor,
        events,
        identity,
    }
}

/// Fits a model of any family ([`ModelInput`]) on a ready engine
/// ([`crate::Fit::run`]): each subtype count's model goes to `on_model` as soon as
/// it is final.
pub(crate) fn fit_model_observed<M: SustainModel>(
    input: &ModelInput<M>,
    config: &FitConfig,
    engine: &Engine,
    checkpoints: Option<&Checkpoints>,
    progress: &dyn Fn(Progress),
    on_model: &dyn Fn(&SubtypeModel),
) -> Result<FitResult, Error> {
    config.validate().map_err(ConfigError::Settings)?;
    check_names(input.biomarkers, input.model.order().n_biomarkers())?;
    let run = Run {
        config,
        lik: &input.model,
        fingerprint: Fingerprints::of(&input.identity, config),
        checkpoints,
        progress,
        on_model,
    };
    let models = if engine.shares_threads() && config.threads > 1 {
        run.all_em_then_all_chains()?
    } else {
        run.one_count_after_another(engine)?
    };
    Ok(fit_result(
        input,
        config.clone(),
        run.fingerprint.full,
        models,
    ))
}

/// One fit's inputs, settings and outputs (checkpoints, progress).
struct Run<'a, M: SustainModel> {
    config: &'a FitConfig,
    lik: &'a Arc<M>,
    fingerprint: Fingerprints,
    checkpoints: Option<&'a Checkpoints>,
    progress: &'a dyn Fn(Progress),
    on_model: &'a dyn Fn(&SubtypeModel),
}

/// What is left of subtype count `k` once its E-M optimum is known: nothing (its
/// model came from a checkpoint), or its chains (with the E-M seconds to report).
enum Stage {
    Done(Box<SubtypeModel>),
    Chains { em_s: f64 },
}

impl<M: SustainModel> Run<'_, M> {
    /// E-M of subtype count `k` from the previous optimum, unless a checkpoint holds
    /// the finished model or the E-M optimum; saves the E-M optimum.
    fn em_or_checkpoint(
        &self,
        engine: &Engine,
        k: usize,
        previous: Option<&MlFit>,
    ) -> Result<(MlFit, Stage), Error> {
        let events = self.lik.order();
        if let Some(cp) = self.checkpoints {
            if let Some((model, em_fit, matched)) = cp.load(k, &self.fingerprint, events)? {
                if matched == Match::Same || self.final_under_this_budget(&model) {
                    (self.progress)(Progress::ModelDone {
                        n_subtypes: k,
                        resumed: true,
                    });
                    (self.on_model)(&model);
                    return Ok((em_fit, Stage::Done(Box::new(model))));
                }
                // Stopped by another budget: its chains go on from their last
                // saved round.
                let em_s = model.timing.em_s;
                return Ok((em_fit, Stage::Chains { em_s }));
            }
            if let Some((em_fit, em_s)) = cp.load_em(k, &self.fingerprint, events)? {
                return Ok((em_fit, Stage::Chains { em_s }));
            }
        }
        let (em_fit, em_s) = em_step(engine, self.lik, self.config, k, previous, self.progress)?;
        if let Some(cp) = self.checkpoints {
            cp.save_em(k, &self.fingerprint, &em_fit, em_s)?;
        }
        Ok((em_fit, Stage::Chains { em_s }))
    }

    /// Whether `model`, fitted with other budgets of chains that run until they
    /// converge, is what this run's budget would give: chains that converged in
    /// rounds this budget runs too.
    fn final_under_this_budget(&self, model: &SubtypeModel) -> bool {
        let (Some(until), Some(c)) = (&self.config.until_converged, &model.convergence) else {
            return false;
        };
        c.stopped == crate::rounds::Stop::Converged
            && crate::rounds::on_schedule(&c.rounds, self.config.n_iterations, until.max_iterations)
    }

    /// Where the chains of subtype count `k` save and find their rounds.
    fn rounds(&self) -> Option<RoundSaver<'_>> {
        self.checkpoints.map(|checkpoints| RoundSaver {
            checkpoints,
            resume_fingerprint: &self.fingerprint.resume,
        })
    }

    /// Saves and reports the finished model of subtype count `k`.
    fn finished(&self, k: usize, model: &SubtypeModel, em_fit: &MlFit) -> Result<(), Error> {
        if let Some(cp) = self.checkpoints {
            cp.save(k, &self.fingerprint, model, em_fit)?;
            // A converged count is final under any budget that runs its rounds
            // ([`Self::final_under_this_budget`]): its chains are not needed again.
            let converged = model
                .convergence
                .as_ref()
                .is_some_and(|c| c.stopped == crate::rounds::Stop::Converged);
            if converged {
                cp.remove_rounds(k);
            }
        }
        (self.progress)(Progress::ModelDone {
            n_subtypes: k,
            resumed: false,
        });
        (self.on_model)(model);
        Ok(())
    }

    /// E-M then chains of each subtype count in turn, each on all threads (a batch
    /// engine, or one CPU thread).
    fn one_count_after_another(&self, engine: &Engine) -> Result<Vec<SubtypeModel>, Error> {
        let mut models = Vec::new();
        let mut previous: Option<MlFit> = None;
        for k in 1..=self.config.max_subtypes {
            let (em_fit, stage) = self.em_or_checkpoint(engine, k, previous.as_ref())?;
            let model = match stage {
                Stage::Done(model) => *model,
                Stage::Chains { em_s } => {
                    let counters = chains_started(self.config, k, self.progress);
                    let model = uncertainty_impl(
                        engine,
                        self.lik,
                        &em_fit,
                        self.config,
                        k,
                        JobThreads::fixed(self.config.threads),
                        em_s,
                        &counters,
                        self.progress,
                        self.rounds(),
                    )?;
                    self.finished(k, &model, &em_fit)?;
                    model
                }
            };
            models.push(model);
            previous = Some(em_fit);
        }
        Ok(models)
    }

    /// On the CPU with several threads: E-M of every subtype count first, each on
    /// all threads (E-M of k + 1 needs only E-M of k), then the chains of every
    /// subtype count at once, the largest count first, the threads shared out among
    /// them. With few chains this keeps every core busy: one chain per subtype
    /// count runs beside the others instead of beside the next E-M (which it would
    /// slow down) or split over threads (which gains little at a few hundred
    /// subjects). Each E-M optimum is checkpointed as soon as it is found, each
    /// model as soon as its chains finish. Results do not depend on the schedule:
    /// every chain's stream is fixed by the seed, the subtype count and its index.
    fn all_em_then_all_chains(&self) -> Result<Vec<SubtypeModel>, Error> {
        let k_max = self.config.max_subtypes;
        let mut done: Vec<Option<SubtypeModel>> = (0..k_max).map(|_| None).collect();
        let mut em_fits: Vec<MlFit> = Vec::new();
        let mut pending = Vec::new();
        for k in 1..=k_max {
            let (em_fit, stage) = self.em_or_checkpoint(&Engine::Cpu, k, em_fits.last())?;
            match stage {
                Stage::Done(model) => done[k - 1] = Some(*model),
                Stage::Chains { em_s } => pending.push((k, em_s)),
            }
            em_fits.push(em_fit);
        }
        // The chains start once every E-M is done.
        let pending: Vec<_> = pending
            .into_iter()
            .map(|(k, em_s)| (k, em_s, chains_started(self.config, k, self.progress)))
            .collect();
        // `pending` is in increasing subtype count: the largest (the longest
        // chains) is taken first, by the worker with the most threads.
        let mut first_error = None;
        let em_fits = &em_fits;
        let store = self.rounds();
        crate::executor::share_threads_lending(
            pending,
            self.config.threads,
            |(k, em_s, counters), threads| {
                let config = FitConfig {
                    threads: threads.own(),
                    ..self.config.clone()
                };
                let em_fit = &em_fits[k - 1];
                let model = uncertainty_impl(
                    &Engine::Cpu,
                    self.lik,
                    em_fit,
                    &config,
                    k,
                    threads,
                    em_s,
                    &counters,
                    &|_| {},
                    store,
                );
                (k, model)
            },
            // Models are saved and reported as they finish, on this thread.
            |(k, model)| {
                match model.and_then(|m| self.finished(k, &m, &em_fits[k - 1]).map(|()| m)) {
                    Ok(m) => done[k - 1] = Some(m),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                first_error.is_none()
            },
        );
        if let Some(e) = first_error {
            return Err(e);
        }
        done.into_iter()
            .enumerate()
            .map(|(i, m)| {
                m.ok_or_else(|| ConfigError::ChainsDidNotRun { n_subtypes: i + 1 }.into())
            })
            .collect()
    }
}

/// The result of a fit: the model description, the settings and the models.
fn fit_result<M: SustainModel>(
    input: &ModelInput<M>,
    settings: FitConfig,
    fingerprint: String,
    models: Vec<SubtypeModel>,
) -> FitResult {
    // z-score fits keep z_vals and z_max at the top level too, as every reader of
    // results.json before the model descriptor expects.
    let (z_vals, z_max) = match &input.descriptor {
        ModelDescriptor::Zscore { z_vals, z_max } => (z_vals.clone(), z_max.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    FitResult {
        version: SCHEMA_VERSION,
        biomarkers: input.biomarkers.to_vec(),
        model: Some(input.descriptor.clone()),
        z_vals,
        z_max,
        events: input.events.clone(),
        settings,
        fingerprint,
        models,
    }
}

/// Tuning, chains, merge, ordering of subtypes by descending mean fraction, on the
/// CPU (a whole fit runs them on its engine: see [`crate::Fit`]).
pub fn uncertainty<M: SustainModel>(
    lik: &Arc<M>,
    em_fit: &MlFit,
    config: &FitConfig,
    k: usize,
    em_s: f64,
) -> Result<SubtypeModel, Error> {
    let counters = chain_counters(config);
    uncertainty_impl(
        &Engine::Cpu,
        lik,
        em_fit,
        config,
        k,
        JobThreads::fixed(config.threads),
        em_s,
        &counters,
        &|_| {},
        None,
    )
}

/// Per-chain iteration counters for the chains `config` runs.
fn chain_counters(config: &FitConfig) -> Arc<ChainProgress> {
    let range = config.chain_range.clone().unwrap_or(0..config.n_chains);
    // Until convergence the total is the budget: the length is not known ahead.
    let total = config
        .until_converged
        .as_ref()
        .map_or(config.n_iterations, |u| u.max_iterations);
    Arc::new(ChainProgress::new(range.len(), total as u64))
}

/// Tells `progress` that the chains of subtype count `k` start, with the counters
/// they will advance (returned for the chains).
fn chains_started(config: &FitConfig, k: usize, progress: &dyn Fn(Progress)) -> Arc<ChainProgress> {
    progress(Progress::McmcStarted {
        n_subtypes: k,
        chains: config.n_chains,
        iterations: config.n_iterations,
    });
    let counters = chain_counters(config);
    progress(Progress::Chains {
        n_subtypes: k,
        progress: Arc::clone(&counters),
    });
    counters
}

/// The chains of subtype count `k` from the E-M optimum on `engine`, then the
/// model. Tuning always runs on the CPU incremental path (one chain at a time is
/// too small a batch); a batch engine then runs the chains in lockstep, one batch
/// of every chain's proposal per iteration, with the CPU path's per-chain random
/// streams.
#[allow(clippy::too_many_arguments)]
fn uncertainty_impl<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    em_fit: &MlFit,
    config: &FitConfig,
    k: usize,
    threads: JobThreads<'_>,
    em_s: f64,
    counters: &Arc<ChainProgress>,
    progress: &dyn Fn(Progress),
    store: Option<RoundSaver<'_>>,
) -> Result<SubtypeModel, Error> {
    // Close the counters however this ends (a batch engine does not advance them),
    // so a display waiting on them stops.
    struct CloseOnDrop<'a>(&'a ChainProgress);
    impl Drop for CloseOnDrop<'_> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close = CloseOnDrop(counters);
    let range = config.chain_range.clone().unwrap_or(0..config.n_chains);
    // Chains saved after a round that this run's budget runs too go on from
    // there, with their step sizes and clock (on any engine). One round by
    // construction has nothing to continue from.
    let store = store.filter(|_| !config.fixed_length());
    let saved = match (&config.until_converged, &store) {
        (Some(until), Some(store)) => store
            .checkpoints
            .load_rounds(k, store.resume_fingerprint, lik.order(), range.clone())?
            .filter(|s| {
                crate::rounds::on_schedule(&s.rounds, config.n_iterations, until.max_iterations)
            }),
        _ => None,
    };
    let spent = saved
        .as_ref()
        .and_then(|s| s.rounds.last())
        .map_or(0.0, |r| r.seconds);
    let now = Instant::now();
    let t0 = now
        .checked_sub(std::time::Duration::from_secs_f64(spent))
        .unwrap_or(now);
    let settings = match &saved {
        Some(s) => chain_settings(config, k, threads.own(), s.steps.clone()),
        None => tuned_chain_settings(lik, em_fit, config, k, threads.own()),
    };
    let steps = settings.steps.clone();
    let (merged, convergence) = match &config.until_converged {
        None => {
            let runs = engine.run_chains(lik, &em_fit.mixture, &settings, range, counters)?;
            (merge(runs, config.burn_in, config.thin), None)
        }
        Some(until) => {
            let (merged, convergence) = crate::rounds::run_until_converged(
                engine,
                lik,
                &em_fit.mixture,
                &settings,
                range,
                config,
                until,
                k,
                threads,
                counters,
                progress,
                t0,
                saved,
                store,
            )?;
            (merged, Some(convergence))
        }
    };
    if counters.cancelled() {
        return Err(Error::Cancelled);
    }
    let mcmc_s = t0.elapsed().as_secs_f64();
    let mut model = assemble_merged(&**lik, em_fit, merged, steps, em_s, mcmc_s);
    // A fixed length (one round with a ladder) is no budget that stopped them.
    if let Some(c) = convergence.as_ref().filter(|_| !config.fixed_length()) {
        if let Some(line) = crate::rounds::budget_line(c) {
            model.nonconvergence.insert(0, line);
        }
    }
    model.convergence = convergence;
    Ok(model)
}

/// Builds a model from chain runs (also used when merging chain shards).
fn assemble<M: SustainModel>(
    lik: &M,
    em_fit: &MlFit,
    runs: Vec<ChainRun>,
    config: &FitConfig,
    steps: sustain_sampler::StepSizes,
    em_s: f64,
    mcmc_s: f64,
) -> SubtypeModel {
    let merged = merge(runs, config.burn_in, config.thin);
    assemble_merged(lik, em_fit, merged, steps, em_s, mcmc_s)
}

/// [`assemble`] from chains already merged (with `config`'s burn-in and thinning).
fn assemble_merged<M: SustainModel>(
    lik: &M,
    em_fit: &MlFit,
    merged: (sustain_sampler::MergedSamples, sustain_sampler::Diagnostics),
    steps: sustain_sampler::StepSizes,
    em_s: f64,
    mcmc_s: f64,
) -> SubtypeModel {
    let (mut samples, mut diagnostics) = merged;
    let iters_per_s: Vec<f64> = samples
        .chains
        .iter()
        .map(|r| r.trace.n_iterations() as f64 / r.wall_s.max(1e-9))
        .collect();
    let k = em_fit.mixture.n_subtypes();
    let mean_f = samples.mean_fractions();
    // Subtype order: descending mean fraction (stable on ties).
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|a, b| {
        mean_f[*b]
            .partial_cmp(&mean_f[*a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for run in &mut samples.chains {
        run.trace.permute_subtypes(&order);
    }
    diagnostics.rhat_f = order.iter().map(|&s| diagnostics.rhat_f[s]).collect();
    diagnostics.ess_f = order.iter().map(|&s| diagnostics.ess_f[s]).collect();
    if diagnostics.ess_tail_f.len() == k {
        diagnostics.ess_tail_f = order.iter().map(|&s| diagnostics.ess_tail_f[s]).collect();
    }
    let (chains, disagreements, nonconvergence) = chain_report(&samples, &diagnostics, &order);
    let steps = sustain_sampler::StepSizes {
        sigma_seq: order.iter().map(|&s| steps.sigma_seq[s].clone()).collect(),
        sigma_f: order.iter().map(|&s| steps.sigma_f[s]).collect(),
    };
    let reorder = |m: &Mixture| -> (Vec<Vec<usize>>, Vec<f64>) {
        (
            order.iter().map(|&s| m.sequences()[s].order()).collect(),
            order.iter().map(|&s| m.fractions()[s]).collect(),
        )
    };
    let (em_sequences, em_f) = reorder(&em_fit.mixture);
    // Maximum likelihood over the E-M optimum and every sample.
    let (c, st, ll) = samples.max_likelihood();
    let (ml_sequences, ml_f, ml_loglike) = if ll > em_fit.loglike {
        let m = crate::stage::sample_mixture(lik.order(), &samples, (c, st));
        (
            m.sequences().iter().map(|s| s.order()).collect(),
            m.fractions().to_vec(),
            ll,
        )
    } else {
        (em_sequences.clone(), em_f.clone(), em_fit.loglike)
    };
    SubtypeModel {
        n_subtypes: k,
        ml_sequences,
        ml_f,
        ml_loglike,
        em_sequences,
        em_f,
        em_loglike: em_fit.loglike,
        mean_f: samples.mean_fractions(),
        pvd: samples.position_frequencies(),
        diagnostics,
        timing: Timing {
            em_s,
            mcmc_s,
            mcmc_iterations_per_s: iters_per_s,
        },
        steps,
        samples,
        convergence: None,
        chains,
        disagreements,
        nonconvergence,
    }
}

/// Per-chain summaries of merged samples (subtypes in the final `order`), the
/// chains' disagreements, and what is wrong in words when they did not converge.
fn chain_report(
    samples: &sustain_sampler::MergedSamples,
    diagnostics: &sustain_sampler::Diagnostics,
    order: &[usize],
) -> (Vec<ChainSummary>, Vec<Disagreement>, Vec<String>) {
    // Chain c's own label of final subtype j: merge relabelled its subtype
    // perm[i] as i, then subtypes were put in `order`.
    let own: Vec<Vec<usize>> = diagnostics
        .relabelled
        .iter()
        .map(|perm| order.iter().map(|&o| perm[o]).collect())
        .collect();
    let chains = summarize_chains(samples, &own);
    if diagnostics.converged {
        return (chains, Vec::new(), Vec::new());
    }
    let found = disagreements(samples, &chains);
    let lines = explain(&chains, &found, &diagnostics.rhat_f, &|e| event_numbers(e));
    (chains, found, lines)
}

/// The reference's step-size tuning from the E-M optimum (on the CPU incremental
/// path, whatever the backend), then the settings every chain of subtype count `k`
/// shares; chain `i` uses stream `(seed + k, CHAIN, i)`. `chain_threads`: how many
/// threads one chain may use (its share when several subtype counts' chains run
/// at once); the tuning chain is split the same way. Results do not depend on it.
fn tuned_chain_settings<M: SustainModel>(
    lik: &Arc<M>,
    em_fit: &MlFit,
    config: &FitConfig,
    k: usize,
    chain_threads: usize,
) -> ChainSettings {
    let steps = sustain_sampler::StepSizes::initial(k, lik.order().n_events());
    let mut settings = chain_settings(config, k, chain_threads, steps);
    let seed = settings.seed;
    let shards = settings.shards_per_chain::<M>(lik.n_subjects(), 1);
    settings.steps = tune_steps(
        lik.order(),
        || chain_state(lik, &em_fit.mixture, shards),
        &em_fit.mixture,
        config.proposal,
        config.tuning_passes,
        config.tuning_iterations,
        seed,
    );
    settings
}

/// The settings every chain of subtype count `k` shares, with step sizes `steps`
/// (see [`tuned_chain_settings`]).
fn chain_settings(
    config: &FitConfig,
    k: usize,
    chain_threads: usize,
    steps: sustain_sampler::StepSizes,
) -> ChainSettings {
    ChainSettings {
        mode: config.proposal,
        steps,
        n_iterations: config.n_iterations,
        seed: config.seed.wrapping_add(k as u64),
        threads: config.threads,
        chain_threads,
    }
}

/// One subtype count of a chain shard (`sustain fit --chain-shard I/N`): the E-M
/// optimum and tuned step sizes (the same in every shard: both are determined by
/// the seed), and this shard's chain runs as they came out of the sampler (before
/// any merge, realignment or subtype reordering).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardModel {
    /// Number of subtypes.
    pub n_subtypes: usize,
    /// E-M optimum: sequences (event indices, first to last), subtype order of E-M.
    pub em_sequences: Vec<Vec<usize>>,
    /// E-M fractions.
    pub em_f: Vec<f64>,
    /// E-M log-likelihood.
    pub em_loglike: f64,
    /// Step sizes after tuning (subtype order of E-M).
    pub steps: sustain_sampler::StepSizes,
    /// This shard's chains, raw.
    pub runs: Vec<ChainRun>,
    /// E-M wall time of this shard, seconds.
    pub em_s: f64,
    /// Tuning and chains wall time of this shard, seconds.
    pub mcmc_s: f64,
}

/// Tuning and the chains of `config.chain_range` (all chains without it) for
/// subtype count `k`, raw: `(steps, runs, seconds)`. The same streams as
/// [`uncertainty`], so shards reproduce a single run's chains exactly.
fn chain_runs<M: SustainModel>(
    lik: &Arc<M>,
    em_fit: &MlFit,
    config: &FitConfig,
    k: usize,
) -> (sustain_sampler::StepSizes, Vec<ChainRun>, f64) {
    let t0 = Instant::now();
    let settings = tuned_chain_settings(lik, em_fit, config, k, config.threads);
    let steps = settings.steps.clone();
    let range = config.chain_range.clone().unwrap_or(0..config.n_chains);
    let chains = Chains {
        model: lik,
        settings: &settings,
    };
    let runs = chains.run(&em_fit.mixture, range, None);
    (steps, runs, t0.elapsed().as_secs_f64())
}

/// One chain shard (`config.chain_range`) of subtype counts 1..=max
/// ([`crate::Fit::run_chain_shard`]): E-M exactly as a whole fit does, then tuning
/// and this shard's chains, unmerged.
pub(crate) fn fit_model_chain_shard<M: SustainModel>(
    input: &ModelInput<M>,
    config: &FitConfig,
    progress: &dyn Fn(Progress),
) -> Result<Vec<ShardModel>, Error> {
    config.validate().map_err(ConfigError::Settings)?;
    check_names(input.biomarkers, input.model.order().n_biomarkers())?;
    let lik = &input.model;
    let range = config.chain_range.clone().unwrap_or(0..config.n_chains);
    if config.backend != crate::config::Backend::Cpu {
        if config.require_gpu {
            return Err(ConfigError::ShardsNeedCpu.into());
        }
        progress(Progress::Warning(
            "chain shards run on the CPU only; this shard runs on the CPU".into(),
        ));
    }
    let mut em_fits: Vec<MlFit> = Vec::new();
    let mut out = Vec::new();
    for k in 1..=config.max_subtypes {
        progress(Progress::EmStarted { n_subtypes: k });
        let t0 = Instant::now();
        let em_fit = if k == 1 {
            em::fit_one_subtype(lik, config, 1)?
        } else {
            em::fit_split(lik, &em_fits[k - 2], config, k as u64)?
        };
        let em_s = t0.elapsed().as_secs_f64();
        progress(Progress::McmcStarted {
            n_subtypes: k,
            chains: range.len(),
            iterations: config.n_iterations,
        });
        let (steps, runs, mcmc_s) = chain_runs(lik, &em_fit, config, k);
        progress(Progress::ModelDone {
            n_subtypes: k,
            resumed: false,
        });
        out.push(ShardModel {
            n_subtypes: k,
            em_sequences: em_fit
                .mixture
                .sequences()
                .iter()
                .map(|s| s.order())
                .collect(),
            em_f: em_fit.mixture.fractions().to_vec(),
            em_loglike: em_fit.loglike,
            steps,
            runs,
            em_s,
            mcmc_s,
        });
        em_fits.push(em_fit);
    }
    Ok(out)
}

/// Merges chain shards into the [`FitResult`] of a whole fit
/// ([`crate::Fit::merge_shards`]): chains sorted by index, then [`assemble`].
pub(crate) fn merge_model_chain_shards<M: SustainModel>(
    input: &ModelInput<M>,
    config: &FitConfig,
    shards: Vec<Vec<ShardModel>>,
) -> Result<FitResult, Error> {
    let mut config = config.clone();
    config.chain_range = None;
    config.validate().map_err(ConfigError::Settings)?;
    let lik = &input.model;
    let fingerprint = checkpoint::fingerprint_of(&input.identity, &config);
    let mut per_k: Vec<Vec<ShardModel>> = (0..config.max_subtypes).map(|_| Vec::new()).collect();
    for shard in shards {
        if shard.len() != config.max_subtypes {
            return Err(CheckpointError::ShardCounts {
                held: shard.len(),
                expected: config.max_subtypes,
            }
            .into());
        }
        for (k, m) in shard.into_iter().enumerate() {
            if m.n_subtypes != k + 1 {
                return Err(CheckpointError::ShardModelOrder {
                    position: k + 1,
                    n_subtypes: m.n_subtypes,
                }
                .into());
            }
            per_k[k].push(m);
        }
    }
    let mut models = Vec::new();
    for (k, parts) in per_k.into_iter().enumerate() {
        let Some(first) = parts.first() else {
            return Err(CheckpointError::NoShards.into());
        };
        if parts.iter().any(|p| {
            p.em_sequences != first.em_sequences
                || p.em_f
                    .iter()
                    .map(|v| v.to_bits())
                    .ne(first.em_f.iter().map(|v| v.to_bits()))
                || p.em_loglike.to_bits() != first.em_loglike.to_bits()
                || p.steps != first.steps
        }) {
            return Err(CheckpointError::ShardsDisagree { n_subtypes: k + 1 }.into());
        }
        let seqs = first
            .em_sequences
            .iter()
            .map(|s| sustain_model::Sequence::new(lik.order(), s))
            .collect::<Result<Vec<_>, _>>()?;
        let em_fit = MlFit {
            mixture: Mixture::new(seqs, first.em_f.clone())?,
            loglike: first.em_loglike,
        };
        let steps = first.steps.clone();
        let em_s = first.em_s;
        let mcmc_s = parts.iter().map(|p| p.mcmc_s).fold(0.0, f64::max);
        let mut runs: Vec<ChainRun> = parts.into_iter().flat_map(|p| p.runs).collect();
        runs.sort_by_key(|r| r.index);
        let indices: Vec<usize> = runs.iter().map(|r| r.index).collect();
        if indices != (0..config.n_chains).collect::<Vec<_>>() {
            return Err(CheckpointError::ShardChains {
                chains: indices,
                n_subtypes: k + 1,
                n_chains: config.n_chains,
            }
            .into());
        }
        models.push(assemble(
            &**lik, &em_fit, runs, &config, steps, em_s, mcmc_s,
        ));
    }
    Ok(fit_result(input, config, fingerprint, models))
}
