//! Run-time backend selection: what [`crate::config::Backend`] turns into.
//!
//! [`select`] resolves the configured backend into an [`Engine`]:
//!
//! - [`Backend::Cpu`] is [`Engine::Cpu`]: E-M start points in parallel on CPU threads,
//!   each with the model's single-thread batch evaluator; MCMC chains on threads with the incremental
//!   likelihood (`sustain_cpu::run_chains` with the `cpu` feature, one chain after another without it).
//! - [`Backend::Gpu`], in a build with the `gpu` feature and a usable adapter, is an
//!   [`Engine::Batch`] over one shared `sustain_gpu::GpuContext`: E-M start points run
//!   up to 8 at once on CPU threads, each with a `GpuEvaluator` of its own (one E-M
//!   call is too small to fill a GPU; concurrent ones keep it busy), and MCMC uses the
//!   lockstep driver ([`sustain_sampler::lockstep`]), all chains' proposals (every
//!   copy of a replica-exchange ladder one more lane) in one dispatch per
//!   iteration; chains run in rounds continue from the last round's state on
//!   either engine. Step-size tuning stays on the CPU incremental
//!   path (one chain: too small a batch for a GPU); so do the likelihood-derived
//!   steps that are not batch evaluations (E-M's fraction updates, staging
//!   posteriors).
//!   E-M runs on the CPU instead wherever the model's own evaluator makes pure
//!   exact choices ([`Engine::for_em`]: the z-score walk, from 16 biomarkers).
//!   The GPU evaluates the z-score and the prefix (mixture, ordinal) models; for
//!   other families (mixed-type) [`Engine::for_model`] gives the CPU and a one-line
//!   notice.
//! - [`Backend::Gpu`] without a usable adapter, or in a build without the `gpu`
//!   feature, falls back to [`Engine::Cpu`] with a one-line [`Selection::notice`]
//!   ("no GPU adapter found (...); running on the CPU"), or fails with
//!   [`Error::Backend`] when `require_gpu` is set.
//!
//! [`Engine::Batch`] takes any [`BatchEvaluator`] factory, so other batch backends
//! (and tests without the `gpu` feature) plug in the same way.

use crate::config::Backend;
use crate::executor::ChainState;
use crate::{BackendError, Error};
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;
use sustain_core::{BatchEvaluator, Mixture, ModelError, SustainModel};
use sustain_sampler::lockstep::{continue_lockstep, run_lockstep, LockstepSettings};
use sustain_sampler::progress::ChainProgress;
use sustain_sampler::{ChainRun, ChainSettings, PausedChain, Round, RoundEnd};

/// A boxed batch evaluator that may move between threads.
pub type BoxedEvaluator = Box<dyn BatchEvaluator + Send>;

/// Makes a batch evaluator for a model, given as its `Arc<M>` behind `Any`; `None`
/// when the engine does not serve that model family (the CPU evaluator is used).
pub type EvaluatorFactory =
    dyn Fn(&dyn Any) -> Option<Result<BoxedEvaluator, ModelError>> + Send + Sync;

/// Where a run's likelihoods are evaluated.
#[derive(Clone)]
pub enum Engine {
    /// CPU threads: parallel E-M start points, incremental MCMC chains on threads.
    Cpu,
    /// A batch evaluator (the GPU): concurrent E-M start points, each with one of the
    /// factory's evaluators; lockstep MCMC chains with one batch per iteration.
    Batch {
        /// One line naming it (e.g. the GPU adapter).
        name: String,
        /// Makes an evaluator for a data set.
        factory: Arc<EvaluatorFactory>,
    },
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Cpu => f.write_str("Cpu"),
            Engine::Batch { name, .. } => f.debug_struct("Batch").field("name", name).finish(),
        }
    }
}

impl Engine {
    /// A batch engine from an evaluator factory.
    pub fn batch(
        name: impl Into<String>,
        factory: impl Fn(&dyn Any) -> Option<Result<BoxedEvaluator, ModelError>> + Send + Sync + 'static,
    ) -> Self {
        Engine::Batch {
            name: name.into(),
            factory: Arc::new(factory),
        }
    }

    /// The GPU engine over `ctx` (`GpuEvaluator`s sharing one device).
    #[cfg(feature = "gpu")]
    pub fn gpu(ctx: Arc<sustain_gpu::GpuContext>) -> Self {
        let name = format!("GPU: {}", ctx.description());
        Engine::batch(name, move |model| {
            // The GPU has kernels for the z-score and the prefix (mixture, ordinal)
            // models; other families stay on the CPU.
            let ctx = Arc::clone(&ctx);
            let made = if let Some(lik) = model.downcast_ref::<Arc<sustain_model::Likelihood>>() {
                sustain_gpu::GpuEvaluator::from_likelihood(ctx, lik, lik.data())
            } else {
                let prefix = model.downcast_ref::<Arc<sustain_model::PrefixModel>>()?;
                sustain_gpu::GpuEvaluator::for_prefix(ctx, prefix)
            };
            Some(
                made.map(|e| Box::new(e) as BoxedEvaluator)
                    .map_err(ModelError::from),
            )
        })
    }

    /// The engine that runs `model` (of the family named `family` in messages): this
    /// one, or, where a batch engine does not evaluate the model's family, the CPU
    /// with a one-line notice ("the GPU backend does not evaluate {family} models;
    /// running on the CPU"). Fails when the batch engine cannot set up the model.
    pub fn for_model<M: SustainModel>(
        &self,
        model: &Arc<M>,
        family: &str,
    ) -> Result<Selection, ModelError> {
        let Engine::Batch { factory, .. } = self else {
            return Ok(Selection {
                engine: Engine::Cpu,
                notice: None,
            });
        };
        match factory(model as &dyn Any) {
            // Made once here, so that a model the device cannot hold fails now.
            Some(made) => made.map(|_| Selection {
                engine: self.clone(),
                notice: None,
            }),
            None => Ok(Selection {
                engine: Engine::Cpu,
                notice: Some(format!(
                    "the GPU backend does not evaluate {family} models; running on the CPU"
                )),
            }),
        }
    }

    /// The engine E-M runs on for `model`: the CPU where the model's own evaluator
    /// makes pure exact choices ([`BatchEvaluator::choices_are_pure`]: the z-score
    /// model's walk, from 16 biomarkers), else this engine. A batch engine such as
    /// the GPU decides from single-precision totals: on a cohort of 114 events its
    /// choices ended E-M at other, lower optima than the CPU's, while the walk is
    /// exact and its work per candidate does not grow with the biomarkers.
    pub fn for_em<M: SustainModel>(&self, model: &Arc<M>) -> Engine {
        match self {
            Engine::Batch { .. } if !M::batch_evaluator(model).choices_are_pure() => self.clone(),
            _ => Engine::Cpu,
        }
    }

    /// One line naming the engine: `CPU` or the batch engine's name.
    pub fn name(&self) -> String {
        match self {
            Engine::Cpu => "CPU".into(),
            Engine::Batch { name, .. } => name.clone(),
        }
    }

    /// Whether this is the CPU engine (for reports: which engine ran; decisions go
    /// through the capability methods below).
    pub fn is_cpu(&self) -> bool {
        matches!(self, Engine::Cpu)
    }

    /// How many E-M jobs (start points, splits) run at once on `threads` threads:
    /// all threads on the CPU; on a batch engine at most [`MAX_BATCH_JOBS`], each
    /// holding an evaluator of its own (one E-M call is too small to fill a GPU;
    /// a few concurrent streams of calls hide its latency).
    pub fn em_jobs_at_once(&self, threads: usize) -> usize {
        match self {
            Engine::Cpu => threads,
            Engine::Batch { .. } => threads.min(MAX_BATCH_JOBS),
        }
    }

    /// Whether E-M jobs borrow evaluators from a pool (a batch engine's evaluators
    /// hold device memory) rather than make a fresh one each (the CPU's are cheap).
    pub fn pools_evaluators(&self) -> bool {
        matches!(self, Engine::Batch { .. })
    }

    /// Whether the work of several subtype counts (E-M, chains, output files) may
    /// share the machine's threads at once: on the CPU yes; a batch engine runs
    /// one subtype count after another, each filling the device.
    pub fn shares_threads(&self) -> bool {
        matches!(self, Engine::Cpu)
    }

    /// `log p(x_m)` per subject for `n` mixtures (`mixture(i)` makes the `i`-th):
    /// on CPU threads, or in batches of [`TEST_BATCH`] on a batch engine (bounding
    /// what is read back per call).
    pub fn log_p_subjects_of<M: SustainModel>(
        &self,
        model: &Arc<M>,
        n: usize,
        mixture: impl Fn(usize) -> Mixture + Sync,
        threads: usize,
    ) -> Result<Vec<Vec<f64>>, ModelError> {
        match self {
            Engine::Cpu => Ok(crate::executor::parallel_map(n, threads, |i| {
                model.log_p_subjects(&mixture(i))
            })),
            Engine::Batch { .. } => {
                let mut evaluator = self.evaluator(model)?;
                let mut out = Vec::with_capacity(n);
                for start in (0..n).step_by(TEST_BATCH) {
                    let batch: Vec<Mixture> =
                        (start..(start + TEST_BATCH).min(n)).map(&mixture).collect();
                    out.extend(evaluator.log_p_subjects_batch(&batch)?);
                }
                Ok(out)
            }
        }
    }

    /// A batch evaluator for `model`: the model's own single-thread evaluator on the
    /// CPU (or where the batch engine does not serve the model), the factory's
    /// evaluator otherwise.
    pub fn evaluator<M: SustainModel>(&self, model: &Arc<M>) -> Result<BoxedEvaluator, ModelError> {
        match self {
            Engine::Cpu => Ok(M::batch_evaluator(model)),
            Engine::Batch { factory, .. } => {
                factory(model as &dyn Any).unwrap_or_else(|| Ok(M::batch_evaluator(model)))
            }
        }
    }

    /// Runs the chains `range` of one subtype count from `start`: on the CPU each
    /// chain on threads with the model's incremental evaluator (iterations counted
    /// into `counters`); on a batch engine in lockstep, one batch of every chain's
    /// proposal per iteration, with the CPU path's per-chain random streams.
    pub fn run_chains<M: SustainModel>(
        &self,
        model: &Arc<M>,
        start: &Mixture,
        settings: &ChainSettings,
        range: std::ops::Range<usize>,
        counters: &ChainProgress,
    ) -> Result<Vec<ChainRun>, ModelError> {
        match self {
            Engine::Cpu => {
                let chains = crate::executor::Chains { model, settings };
                Ok(chains.run(start, range, Some(counters)))
            }
            Engine::Batch { .. } => {
                let mut evaluator = self.evaluator(model)?;
                let lockstep = LockstepSettings {
                    mode: settings.mode,
                    steps: settings.steps.clone(),
                    n_iterations: settings.n_iterations,
                    seed: settings.seed,
                    threads: settings.threads,
                };
                run_lockstep(evaluator.as_mut(), start, &lockstep, range)
            }
        }
    }

    /// Continues every chain of `paused` (between rounds; plain or tempered) by
    /// `round.n` iterations, stopping early at its deadline or on cancellation: on
    /// the CPU each chain on threads (the round's, spare ones of other jobs
    /// joining), each round's evaluators built afresh from the chains' states; on
    /// a batch engine in lockstep, every copy of every chain one lane of each
    /// iteration's batch. Both draw from each chain's own random streams alike,
    /// so they give the same samples but where a decision falls within the
    /// evaluators' rounding. Chain `i` of `paused` counts into the round's
    /// counters' slot `i`.
    pub(crate) fn continue_chains<M: SustainModel>(
        &self,
        model: &Arc<M>,
        paused: &mut [PausedChain<ChainState<M>>],
        settings: &ChainSettings,
        round: ChainRound<'_>,
    ) -> Result<Vec<RoundEnd>, ModelError> {
        let ChainRound {
            n,
            counters,
            deadline,
            threads,
        } = round;
        match self {
            Engine::Cpu => {
                let chains = crate::executor::Chains { model, settings };
                Ok(chains.resume(paused, n, Some(counters), deadline, threads))
            }
            Engine::Batch { .. } => {
                let mut evaluator = self.evaluator(model)?;
                let round = Round {
                    progress: Some((counters, 0)),
                    deadline,
                    ..Round::new(settings.mode, &settings.steps, n)
                };
                let end = continue_lockstep(evaluator.as_mut(), paused, round, settings.threads)?;
                Ok(vec![end])
            }
        }
    }
}

/// One round of chains ([`Engine::continue_chains`]): `n` more iterations each,
/// until `deadline`, counted into `counters`, on `threads`.
pub(crate) struct ChainRound<'a> {
    pub n: usize,
    pub counters: &'a ChainProgress,
    pub deadline: Option<Instant>,
    pub threads: crate::executor::JobThreads<'a>,
}

/// Most E-M jobs that run at once on a batch engine.
pub const MAX_BATCH_JOBS: usize = 8;

/// Mixtures per batch-engine call when scoring many samples (bounds the
/// per-subject read-back).
pub const TEST_BATCH: usize = 256;

/// The outcome of [`select`]: the engine, and a one-line notice when the requested
/// backend was not available and the run falls back to the CPU.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Where the run evaluates likelihoods.
    pub engine: Engine,
    /// The fallback line, e.g. "no GPU adapter found (...); running on the CPU".
    pub notice: Option<String>,
}

/// Resolves `backend`: the CPU, or the GPU (one device and compiled shaders, shared
/// by every evaluator of the run). When the GPU is unavailable the selection is the
/// CPU with a one-line notice, or, with `require_gpu`, an [`Error::Backend`] whose
/// message is one line.
pub fn select(backend: Backend, require_gpu: bool) -> Result<Selection, Error> {
    match backend {
        Backend::Cpu => Ok(Selection {
            engine: Engine::Cpu,
            notice: None,
        }),
        Backend::Gpu => match gpu_engine() {
            Ok(engine) => Ok(Selection {
                engine,
                notice: None,
            }),
            Err(why) if require_gpu => Err(BackendError::GpuRequired { why }.into()),
            Err(why) => Ok(Selection {
                engine: Engine::Cpu,
                notice: Some(format!("{why}; running on the CPU")),
            }),
        },
    }
}

/// The GPU engine, or why there is none (one line).
#[cfg(feature = "gpu")]
fn gpu_engine() -> Result<Engine, String> {
    match sustain_gpu::GpuContext::new() {
        Ok(ctx) => Ok(Engine::gpu(Arc::new(ctx))),
        Err(sustain_gpu::GpuError::NoAdapter(why)) => Err(format!("no GPU adapter found ({why})")),
        Err(e) => Err(format!("the GPU cannot be used ({e})")),
    }
}

/// The GPU engine, or why there is none (one line).
#[cfg(not(feature = "gpu"))]
fn gpu_engine() -> Result<Engine, String> {
    Err("this build has no GPU support (feature gpu)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_selects_cpu() {
        let s = select(Backend::Cpu, true).unwrap();
        assert!(s.engine.is_cpu());
        assert!(s.notice.is_none());
    }

    /// A batch engine serves the models its factory knows; any other family runs on
    /// the CPU with one line naming it.
    #[test]
    fn for_model_falls_back_for_families_the_engine_does_not_evaluate() {
        use sustain_model::PrefixModel;
        use sustain_testkit::conformance::{small_mixed_model, small_mixture_model};
        let engine = Engine::batch("serial", |model: &dyn Any| {
            let prefix = model.downcast_ref::<Arc<PrefixModel>>()?;
            Some(Ok(PrefixModel::batch_evaluator(prefix)))
        });
        let mixture = Arc::new(small_mixture_model(20, 4, 1));
        let served = engine.for_model(&mixture, "mixture").unwrap();
        assert_eq!(served.engine.name(), "serial");
        assert!(served.notice.is_none());
        let mixed = Arc::new(small_mixed_model(20, 2));
        let other = engine.for_model(&mixed, "mixed").unwrap();
        assert!(other.engine.is_cpu());
        assert_eq!(
            other.notice.as_deref(),
            Some("the GPU backend does not evaluate mixed models; running on the CPU")
        );
        let cpu = Engine::Cpu.for_model(&mixed, "mixed").unwrap();
        assert!(cpu.engine.is_cpu() && cpu.notice.is_none());
    }

    #[cfg(not(feature = "gpu"))]
    #[test]
    fn gpu_without_feature_falls_back_or_fails() {
        let s = select(Backend::Gpu, false).unwrap();
        assert!(s.engine.is_cpu());
        assert_eq!(
            s.notice.as_deref(),
            Some("this build has no GPU support (feature gpu); running on the CPU")
        );
        let e = select(Backend::Gpu, true).unwrap_err().to_string();
        assert!(e.contains("no GPU support"), "{e}");
        assert!(!e.contains('\n'));
    }
}
