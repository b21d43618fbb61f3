//! The whole algorithm for subtype counts 1..=K: E-M, then MCMC from the E-M
//! optimum, merged, diagnosed, with subtypes ordered by descending mean fraction,
//! checkpointed after each count.

use crate::checkpoint::{self, Checkpoints};
use crate::config::FitConfig;
use crate::em::{self, MlFit};
use crate::results::{EventInfo, FitResult, SubtypeModel, Timing, SCHEMA_VERSION};
use crate::Error;
use std::sync::Arc;
use std::time::Instant;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::{Dataset, EventSet, IncrementalLikelihood, Likelihood, Mixture};
use sustain_sampler::{merge, tune_steps, ChainRun};

/// What a fit reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// E-M for a subtype count started.
    EmStarted { n_subtypes: usize },
    /// MCMC for a subtype count started (`chains` chains of `iterations`).
    McmcStarted {
        n_subtypes: usize,
        chains: usize,
        iterations: usize,
    },
    /// A subtype count finished (or was loaded from a checkpoint).
    ModelDone { n_subtypes: usize, resumed: bool },
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

/// Fits models with 1..=`config.max_subtypes` subtypes. With `checkpoints`, each
/// subtype count is saved after it finishes and a rerun with the same inputs
/// resumes from the last one saved.
pub fn fit(
    input: &FitInput,
    config: &FitConfig,
    checkpoints: Option<&Checkpoints>,
    progress: &dyn Fn(Progress),
) -> Result<FitResult, Error> {
    config.validate().map_err(Error::Config)?;
    if input.biomarkers.len() != input.events.n_biomarkers() {
        return Err(Error::Config(format!(
            "{} biomarker names for {} biomarkers",
            input.biomarkers.len(),
            input.events.n_biomarkers()
        )));
    }
    let lik = Arc::new(Likelihood::new(
        input.events.clone(),
        input.data,
        config.missing,
    )?);
    let fingerprint = checkpoint::fingerprint(input, config);
    let mut models: Vec<SubtypeModel> = Vec::new();
    let mut em_fits: Vec<MlFit> = Vec::new();
    for k in 1..=config.max_subtypes {
        if let Some(cp) = checkpoints {
            if let Some((model, em_fit)) = cp.load(k, &fingerprint, input.events)? {
                models.push(model);
                em_fits.push(em_fit);
                progress(Progress::ModelDone {
                    n_subtypes: k,
                    resumed: true,
                });
                continue;
            }
        }
        progress(Progress::EmStarted { n_subtypes: k });
        let t0 = Instant::now();
        let em_fit = if k == 1 {
            em::fit_one_subtype(&lik, config, 1)?
        } else {
            em::fit_split(&lik, input.data, &em_fits[k - 2], config, k as u64)?
        };
        let em_s = t0.elapsed().as_secs_f64();
        progress(Progress::McmcStarted {
            n_subtypes: k,
            chains: config.n_chains,
            iterations: config.n_iterations,
        });
        let model = uncertainty(&lik, &em_fit, config, k, em_s)?;
        if let Some(cp) = checkpoints {
            cp.save(k, &fingerprint, &model, &em_fit)?;
        }
        progress(Progress::ModelDone {
            n_subtypes: k,
            resumed: false,
        });
        models.push(model);
        em_fits.push(em_fit);
    }
    Ok(FitResult {
        version: SCHEMA_VERSION,
        biomarkers: input.biomarkers.to_vec(),
        z_vals: input.events.z_vals(),
        z_max: input.events.z_max_all().to_vec(),
        events: input
            .events
            .events()
            .iter()
            .map(|e| EventInfo {
                biomarker: input.biomarkers[e.biomarker].clone(),
                z: e.z,
            })
            .collect(),
        settings: config.clone(),
        fingerprint,
        models,
    })
}

/// Tuning, chains, merge, ordering of subtypes by descending mean fraction.
pub fn uncertainty(
    lik: &Arc<Likelihood>,
    em_fit: &MlFit,
    config: &FitConfig,
    k: usize,
    em_s: f64,
) -> Result<SubtypeModel, Error> {
    let t0 = Instant::now();
    let events = lik.events();
    let steps = tune_steps(
        events,
        || IncrementalLikelihood::new(Arc::clone(lik), &em_fit.mixture),
        &em_fit.mixture,
        config.proposal,
        config.tuning_passes,
        config.tuning_iterations,
        config.seed.wrapping_add(k as u64),
    );
    let settings = ChainSettings {
        mode: config.proposal,
        steps: steps.clone(),
        n_iterations: config.n_iterations,
        seed: config.seed.wrapping_add(k as u64),
        threads: config.threads,
    };
    let range = config.chain_range.clone().unwrap_or(0..config.n_chains);
    let runs = run_chains(lik, &em_fit.mixture, &settings, range);
    let mcmc_s = t0.elapsed().as_secs_f64();
    Ok(assemble(lik, em_fit, runs, config, steps, em_s, mcmc_s))
}

/// Builds a model from chain runs (also used when merging chain shards).
pub fn assemble(
    lik: &Likelihood,
    em_fit: &MlFit,
    runs: Vec<ChainRun>,
    config: &FitConfig,
    steps: sustain_sampler::StepSizes,
    em_s: f64,
    mcmc_s: f64,
) -> SubtypeModel {
    let iters_per_s: Vec<f64> = runs
        .iter()
        .map(|r| r.trace.n_iterations() as f64 / r.wall_s.max(1e-9))
        .collect();
    let (mut samples, mut diagnostics) = merge(runs, config.burn_in, config.thin);
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
        let m = crate::stage::sample_mixture(lik, &samples, (c, st));
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
    }
}
