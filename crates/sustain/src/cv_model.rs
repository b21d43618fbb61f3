//! Cross-validation of a model of any family ([`ModelInput`]: event-based, ordinal,
//! ...): the folds of [`crate::cv`], fitted through the model seam on a ready engine
//! (see [`Engine::for_model`]), with the same fold files, seeds and CVIC as a
//! z-score model's.

use std::sync::Arc;

use crate::backend::Engine;
use crate::builder::Fit;
use crate::config::FitConfig;
use crate::cv::{evaluated_fold, evaluated_part, fold_rows, CvRun, FoldPart, FoldResult};
use crate::fit::{ModelInput, Progress};
use crate::Error;
use sustain_core::SustainModel;

/// The training model (as a [`ModelInput`]), the test subjects' model and the
/// settings (its own seed) of fold `fold` of `input`.
type FoldModels<'a, M> = (ModelInput<'a, M>, Arc<M>, FitConfig);

fn fold_models<'a, M: SustainModel>(
    input: &ModelInput<'a, M>,
    cv: &CvRun,
    fold: usize,
) -> Result<FoldModels<'a, M>, Error> {
    let (train, test, fold_config) = fold_rows(input.model.n_subjects(), cv, fold)?;
    let train = ModelInput {
        model: Arc::new(input.model.subset(&train)?),
        biomarkers: input.biomarkers,
        descriptor: input.descriptor.clone(),
        events: input.events.clone(),
        identity: input.identity.clone(),
    };
    let test_model = Arc::new(input.model.subset(test)?);
    Ok((train, test_model, fold_config))
}

/// Fits fold `fold` of `input` (trained on the other folds' subjects, with the
/// fold's own seed) and evaluates its test subjects, as [`crate::cv::run_fold`]
/// does for a z-score model, on `engine`.
pub fn run_model_fold<M: SustainModel>(
    engine: &Engine,
    input: &ModelInput<M>,
    cv: &CvRun,
    fold: usize,
    progress: &dyn Fn(Progress),
) -> Result<FoldResult, Error> {
    let (train, test_model, fold_config) = fold_models(input, cv, fold)?;
    let fit = Fit::new(train, fold_config).engine(engine);
    let result = fit.on_progress(progress).run()?;
    evaluated_fold(engine, &test_model, &result.models, cv, fold)
}

/// Fits only subtype count `k` of fold `fold` of `input` and evaluates its test
/// subjects: one part of [`run_model_fold`], equal to it bit for bit, as
/// [`crate::cv::run_fold_part`] is for a z-score model.
pub fn run_model_fold_part<M: SustainModel>(
    engine: &Engine,
    input: &ModelInput<M>,
    cv: &CvRun,
    fold: usize,
    k: usize,
    progress: &dyn Fn(Progress),
) -> Result<FoldPart, Error> {
    let (train, test_model, fold_config) = fold_models(input, cv, fold)?;
    let fit = Fit::new(train, fold_config).engine(engine);
    let model = fit.on_progress(progress).run_subtype_count(k)?;
    evaluated_part(engine, &test_model, &model, cv, fold)
}
