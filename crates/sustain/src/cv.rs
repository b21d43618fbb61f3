//! Cross-validation (spec section 7): folds fitted independently (so a cluster can
//! run them as separate jobs) and combined into the log-likelihood matrix and CVIC.

use crate::backend::Engine;
use crate::builder::Fit;
use crate::config::FitConfig;
use crate::fit::{on_selected_engine, FitInput, Progress};
use crate::results::SubtypeModel;
use crate::stage::{evenly_spaced, sample_mixture};
use crate::{CheckpointError, ConfigError, Error};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use sustain_core::SustainModel;
use sustain_model::{Dataset, Likelihood};
use sustain_sampler::rng;

/// Test-set indices of each fold: stratified by `labels` when given (each label's
/// subjects dealt round-robin over folds after a seeded shuffle), else a seeded
/// shuffle dealt round-robin.
pub fn make_folds(
    n_subjects: usize,
    n_folds: usize,
    labels: Option<&[String]>,
    seed: u64,
) -> Result<Vec<Vec<usize>>, Error> {
    if n_folds < 2 || n_folds > n_subjects {
        return Err(ConfigError::FoldCount {
            n_folds,
            n_subjects,
        }
        .into());
    }
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for m in 0..n_subjects {
        groups
            .entry(labels.map_or("", |l| l[m].as_str()))
            .or_default()
            .push(m);
    }
    let mut rng = rng::stream(seed, rng::purpose::FOLD, 0);
    let mut folds = vec![Vec::new(); n_folds];
    let mut next = 0;
    for members in groups.values_mut() {
        members.shuffle(&mut rng);
        for &m in members.iter() {
            folds[next % n_folds].push(m);
            next += 1;
        }
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    Ok(folds)
}

/// Test folds given by the user: `labels[m]` names subject `m`'s test fold. Labels
/// that are all integers are ordered numerically, others as text; fold `i` holds
/// the subjects of the `i`-th label (increasing rows). Needs at least 2 distinct
/// labels; an empty label is an error naming its row (1-based).
pub fn folds_from_labels(labels: &[String]) -> Result<Vec<Vec<usize>>, Error> {
    if let Some(m) = labels.iter().position(|l| l.trim().is_empty()) {
        return Err(ConfigError::MissingFoldLabel { row: m + 1 }.into());
    }
    let mut distinct: Vec<&str> = labels.iter().map(|l| l.trim()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let numeric: Option<Vec<i64>> = distinct.iter().map(|l| l.parse().ok()).collect();
    if let Some(mut nums) = numeric {
        // Numeric labels in numeric order ("2" before "10"); equal numbers written
        // differently ("01", "1") are one fold.
        nums.sort_unstable();
        nums.dedup();
        let folds: Vec<Vec<usize>> = nums
            .iter()
            .map(|n| {
                (0..labels.len())
                    .filter(|&m| labels[m].trim().parse::<i64>().ok() == Some(*n))
                    .collect()
            })
            .collect();
        return check_user_folds(folds);
    }
    let folds = distinct
        .iter()
        .map(|d| {
            (0..labels.len())
                .filter(|&m| labels[m].trim() == *d)
                .collect()
        })
        .collect();
    check_user_folds(folds)
}

fn check_user_folds(folds: Vec<Vec<usize>>) -> Result<Vec<Vec<usize>>, Error> {
    if folds.len() < 2 {
        return Err(ConfigError::TooFewFolds {
            n_folds: folds.len(),
        }
        .into());
    }
    Ok(folds)
}

/// Result of one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// Fold index.
    pub fold: usize,
    /// Number of folds.
    pub n_folds: usize,
    /// Test subjects (row indices).
    pub test: Vec<usize>,
    /// Per subtype count: mean over samples of the test set's total log-likelihood.
    pub loglike: Vec<f64>,
    /// Per subtype count and test subject: `log(mean over samples of p(x_m))`.
    pub log_mean_p: Vec<Vec<f64>>,
    /// Fingerprint of the whole CV's data and settings.
    pub fingerprint: String,
}

/// Combined cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// Schema version.
    pub version: u32,
    /// `loglike_matrix[fold][s]` for `s + 1` subtypes.
    pub loglike_matrix: Vec<Vec<f64>>,
    /// CVIC per subtype count (lower is better).
    pub cvic: Vec<f64>,
    /// Fingerprint of the data and settings.
    pub fingerprint: String,
}

/// Sample thinning of spec section 7.
fn cv_thin(n_samples: usize) -> usize {
    if n_samples < 100_000 {
        1
    } else if n_samples < 1_000_000 {
        100
    } else {
        1000
    }
}

/// Result of one subtype count of one fold (`sustain cv --fold I --subtype-count K`):
/// the pieces of a [`FoldResult`] for that count; [`assemble_fold`] joins them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldPart {
    /// Fold index.
    pub fold: usize,
    /// Number of folds.
    pub n_folds: usize,
    /// The subtype count of this part.
    pub n_subtypes: usize,
    /// Largest subtype count of the run (parts 1..=max make a fold).
    pub max_subtypes: usize,
    /// Test subjects (row indices).
    pub test: Vec<usize>,
    /// Mean over samples of the test set's total log-likelihood.
    pub loglike: f64,
    /// Per test subject: `log(mean over samples of p(x_m))`.
    pub log_mean_p: Vec<f64>,
    /// Fingerprint of the whole CV's data and settings.
    pub fingerprint: String,
}

/// What every fold of one cross-validation shares: its settings, its folds (test
/// rows of each) and the fingerprint of its data and settings.
#[derive(Debug, Clone, Copy)]
pub struct CvRun<'a> {
    /// The settings of the whole run (each fold gets its own seed from them).
    pub config: &'a FitConfig,
    /// Test rows of each fold ([`make_folds`]).
    pub folds: &'a [Vec<usize>],
    /// Fingerprint of the whole run's data and settings, kept in every fold file.
    pub fingerprint: &'a str,
}

/// The training rows (every subject of `0..n_subjects` outside fold `fold`), the
/// test rows and the fold's settings (its own seed) of fold `fold`.
pub(crate) fn fold_rows<'f>(
    n_subjects: usize,
    cv: &CvRun<'f>,
    fold: usize,
) -> Result<(Vec<usize>, &'f [usize], FitConfig), Error> {
    let folds = cv.folds;
    if fold >= folds.len() {
        return Err(ConfigError::FoldOutOfRange {
            fold,
            n_folds: folds.len(),
        }
        .into());
    }
    let test = &folds[fold];
    let train: Vec<usize> = (0..n_subjects)
        .filter(|m| test.binary_search(m).is_err())
        .collect();
    let mut fold_config = cv.config.clone();
    fold_config.seed = cv.config.seed.wrapping_add(1000 * (fold as u64 + 1));
    Ok((train, test, fold_config))
}

/// Training data, test data and the fold's settings (its own seed) of fold `fold`.
fn fold_inputs(
    input: &FitInput,
    cv: &CvRun,
    fold: usize,
) -> Result<(Dataset, Dataset, FitConfig), Error> {
    let (train, test, fold_config) = fold_rows(input.data.n_subjects(), cv, fold)?;
    Ok((
        input.data.select(&train)?,
        input.data.select(test)?,
        fold_config,
    ))
}

/// Test-set evaluation of one model on `engine` (`lik`: the test subjects): the mean
/// over (thinned, spec section 7) samples of the total log-likelihood, and per
/// subject `log(mean over samples of p(x_m))`. A batch engine (the GPU) evaluates
/// the samples in batches and reads back per-subject values.
pub fn test_loglikes<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    model: &SubtypeModel,
    threads: usize,
) -> Result<(f64, Vec<f64>), Error> {
    let all = model.samples.len();
    let picks = evenly_spaced(&model.samples, all.div_ceil(cv_thin(all)));
    let per_sample = engine.log_p_subjects_of(
        lik,
        picks.len(),
        |i| sample_mixture(lik.order(), &model.samples, picks[i]),
        threads,
    )?;
    let n = per_sample.len() as f64;
    let loglike = per_sample
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .sum::<f64>()
        / n;
    let per_subject: Vec<f64> = (0..lik.n_subjects())
        .map(|m| {
            let max = per_sample
                .iter()
                .map(|v| v[m])
                .fold(f64::NEG_INFINITY, f64::max);
            max + (per_sample.iter().map(|v| (v[m] - max).exp()).sum::<f64>() / n).ln()
        })
        .collect();
    Ok((loglike, per_subject))
}

/// The [`FoldResult`] of fold `fold` of `cv` from its fitted `models`, its test
/// subjects `test` evaluated on `engine`.
pub(crate) fn evaluated_fold<M: SustainModel>(
    engine: &Engine,
    test: &Arc<M>,
    models: &[SubtypeModel],
    cv: &CvRun,
    fold: usize,
) -> Result<FoldResult, Error> {
    let mut loglike = Vec::new();
    let mut log_mean_p = Vec::new();
    for model in models {
        let (ll, per) = test_loglikes(engine, test, model, cv.config.threads)?;
        loglike.push(ll);
        log_mean_p.push(per);
    }
    Ok(FoldResult {
        fold,
        n_folds: cv.folds.len(),
        test: cv.folds[fold].clone(),
        loglike,
        log_mean_p,
        fingerprint: cv.fingerprint.to_string(),
    })
}

/// The [`FoldPart`] of fold `fold` of `cv` for the subtype count of `model`, its
/// test subjects `test` evaluated on `engine`.
pub(crate) fn evaluated_part<M: SustainModel>(
    engine: &Engine,
    test: &Arc<M>,
    model: &SubtypeModel,
    cv: &CvRun,
    fold: usize,
) -> Result<FoldPart, Error> {
    let (loglike, log_mean_p) = test_loglikes(engine, test, model, cv.config.threads)?;
    Ok(FoldPart {
        fold,
        n_folds: cv.folds.len(),
        n_subtypes: model.n_subtypes,
        max_subtypes: cv.config.max_subtypes,
        test: cv.folds[fold].clone(),
        loglike,
        log_mean_p,
        fingerprint: cv.fingerprint.to_string(),
    })
}

impl CvRun<'_> {
    /// Runs `job` for fold `fold` on the configured backend (selected once for the
    /// fit and the test-set evaluation) with the fold's settings (its own seed), its
    /// training subjects and the likelihood of its test subjects.
    fn on_fold<T>(
        &self,
        input: &FitInput,
        fold: usize,
        progress: &dyn Fn(Progress),
        job: impl FnOnce(&Engine, &FitConfig, &FitInput, &Arc<Likelihood>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (train_data, test_data, fold_config) = fold_inputs(input, self, fold)?;
        on_selected_engine(&fold_config, progress, |engine, fold_config| {
            let train = FitInput {
                events: input.events,
                biomarkers: input.biomarkers,
                data: &train_data,
            };
            let test = Arc::new(Likelihood::new(
                input.events.clone(),
                &test_data,
                self.config.missing,
            )?);
            job(engine, fold_config, &train, &test)
        })
    }
}

/// Fits fold `fold` (train on the others) and evaluates its test subjects, both on
/// the configured backend (test subjects in batches of samples on a batch engine).
pub fn run_fold(
    input: &FitInput,
    cv: &CvRun,
    fold: usize,
    progress: &dyn Fn(Progress),
) -> Result<FoldResult, Error> {
    cv.on_fold(input, fold, progress, |engine, fold_config, train, lik| {
        let fit = Fit::zscore(train, fold_config.clone()).engine(engine);
        let result = fit.on_progress(progress).run()?;
        evaluated_fold(engine, lik, &result.models, cv, fold)
    })
}

/// Fits only subtype count `k` of fold `fold` ([`Fit::run_subtype_count`])
/// and evaluates its test subjects: one part of [`run_fold`], equal to it bit for
/// bit.
pub fn run_fold_part(
    input: &FitInput,
    cv: &CvRun,
    fold: usize,
    k: usize,
    progress: &dyn Fn(Progress),
) -> Result<FoldPart, Error> {
    cv.on_fold(input, fold, progress, |engine, fold_config, train, lik| {
        let fit = Fit::zscore(train, fold_config.clone()).engine(engine);
        let model = fit.on_progress(progress).run_subtype_count(k)?;
        evaluated_part(engine, lik, &model, cv, fold)
    })
}

/// Joins the parts of one fold (any order) into its [`FoldResult`]; refuses parts
/// of other runs or folds and names the subtype counts that are missing.
pub fn assemble_fold(parts: &[FoldPart]) -> Result<FoldResult, Error> {
    let Some(first) = parts.first() else {
        return Err(ConfigError::NoFoldParts.into());
    };
    let max = first.max_subtypes;
    let slot = |p: &FoldPart| {
        if p.fingerprint != first.fingerprint
            || p.fold != first.fold
            || p.n_folds != first.n_folds
            || p.max_subtypes != max
            || p.test != first.test
        {
            return Err(CheckpointError::ForeignPart {
                n_subtypes: p.n_subtypes,
                fold: p.fold,
                first_n_subtypes: first.n_subtypes,
                first_fold: first.fold,
            });
        }
        if p.n_subtypes == 0 || p.n_subtypes > max {
            return Err(CheckpointError::PartCount {
                fold: p.fold,
                n_subtypes: p.n_subtypes,
                max,
            });
        }
        Ok(p.n_subtypes - 1)
    };
    let parts = in_slots(parts, max, slot, |missing| CheckpointError::MissingParts {
        fold: first.fold,
        missing: missing.iter().map(|i| i + 1).collect(),
        max,
    })?;
    Ok(FoldResult {
        fold: first.fold,
        n_folds: first.n_folds,
        test: first.test.clone(),
        loglike: parts.iter().map(|p| p.loglike).collect(),
        log_mean_p: parts.iter().map(|p| p.log_mean_p.clone()).collect(),
        fingerprint: first.fingerprint.clone(),
    })
}

/// `items` in the order of their slots `0..n`: `slot` gives an item's slot or
/// refuses it (the first refusal is the error), a later item in a slot replaces
/// an earlier one, and slots left empty are refused with `missing(their slots)`.
fn in_slots<T>(
    items: &[T],
    n: usize,
    slot: impl Fn(&T) -> Result<usize, CheckpointError>,
    missing: impl FnOnce(Vec<usize>) -> CheckpointError,
) -> Result<Vec<&T>, Error> {
    let mut by_slot: Vec<Option<&T>> = vec![None; n];
    for item in items {
        by_slot[slot(item)?] = Some(item);
    }
    let empty: Vec<usize> = (0..n).filter(|&i| by_slot[i].is_none()).collect();
    if !empty.is_empty() {
        return Err(missing(empty).into());
    }
    Ok(by_slot.into_iter().flatten().collect())
}

/// Combines folds (in any order) into the matrix and CVIC; refuses folds of other
/// runs and names any fold that is missing.
pub fn combine(folds: &[FoldResult]) -> Result<CvResult, Error> {
    let Some(first) = folds.first() else {
        return Err(ConfigError::NoFolds.into());
    };
    let n = first.n_folds;
    let slot = |f: &FoldResult| {
        if f.fingerprint != first.fingerprint || f.n_folds != n {
            return Err(CheckpointError::ForeignFold {
                fold: f.fold,
                first_fold: first.fold,
            });
        }
        if f.fold >= n {
            return Err(CheckpointError::FoldOutOfRange {
                fold: f.fold,
                n_folds: n,
            });
        }
        Ok(f.fold)
    };
    let folds = in_slots(folds, n, slot, |missing| CheckpointError::MissingFolds {
        missing,
        n_folds: n,
    })?;
    let n_models = folds[0].loglike.len();
    let loglike_matrix = folds.iter().map(|f| f.loglike.clone()).collect();
    let cvic = (0..n_models)
        .map(|s| {
            -2.0 * folds
                .iter()
                .map(|f| f.log_mean_p[s].iter().sum::<f64>())
                .sum::<f64>()
        })
        .collect();
    Ok(CvResult {
        version: crate::results::SCHEMA_VERSION,
        loglike_matrix,
        cvic,
        fingerprint: first.fingerprint.clone(),
    })
}
