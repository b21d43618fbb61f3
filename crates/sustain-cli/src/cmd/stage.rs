//! `sustain stage`: subtypes and stages of (new) subjects under a finished fit.

use std::path::PathBuf;

use sustain::model::{EventOrder, Likelihood};
use sustain::results::{FitResult, ModelDescriptor, SubtypeModel};

use crate::backend::BackendArgs;
use crate::cmd::shared_args::{IdColumn, OverwriteInputs, Threads};
use crate::error::CliError;
use crate::families;
use crate::family_model::{load_family, FamilyJob};
use crate::fit_outputs::{result_events, write_subjects, Stager};
use crate::io::{self, DataColumns};
use std::sync::Arc;
use sustain::fit::ModelInput;
use sustain::model::SustainModel;

/// Arguments of `sustain stage`.
#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// Fit folder written by `sustain fit` (reads DIR/results.json).
    #[arg(long, value_name = "DIR")]
    pub fit: PathBuf,

    /// Data CSV of the subjects to stage: the fit's biomarker columns are taken by
    /// name, other columns are ignored. Empty cells, NA, NaN and nan are missing.
    /// For an ordinal fit whose model.json has p_correct: the raw scores.
    #[arg(long, value_name = "DATA.csv", required_unless_present = "model")]
    pub data: Option<PathBuf>,

    /// For a mixture or ordinal fit: the new subjects' model.json, as `fit --model`
    /// takes it (the same family, biomarkers and scores as the fit; its tables hold
    /// the subjects to stage).
    #[arg(long, value_name = "MODEL.json")]
    pub model: Option<PathBuf>,

    /// Output CSV: id, ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage.
    /// Written atomically.
    #[arg(long, value_name = "SUBJECTS.csv")]
    pub out: PathBuf,

    /// Which model to stage with, by its number of subtypes [default: the largest
    /// fitted].
    #[arg(long, value_name = "K")]
    pub subtypes: Option<usize>,

    #[command(flatten)]
    pub ids: IdColumn,

    #[command(flatten)]
    pub threads: Threads,

    #[command(flatten)]
    pub backend: BackendArgs,

    #[command(flatten)]
    pub overwrite: OverwriteInputs,
}

/// Runs `sustain stage`.
pub fn run(args: &StageArgs) -> Result<(), CliError> {
    let results = args.fit.join("results.json");
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("--fit", &results)];
    if let Some(d) = &args.data {
        inputs.push(("--data", d));
    }
    if let Some(m) = &args.model {
        inputs.push(("--model", m));
    }
    crate::overwrite::refuse_inputs(&args.out, &inputs, args.overwrite.force)?;
    crate::overwrite::refuse_fit_results(&args.out, args.overwrite.force)?;
    crate::overwrite::refuse_foreign_file(
        &args.out,
        crate::fit_outputs::SUBJECTS_HEADER,
        "stage",
        args.overwrite.force,
    )?;
    let (result, order) = crate::fit_outputs::read_fit_folder(&args.fit)?;
    let model = chosen_model(args, &result)?;
    let threads = args
        .threads
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(CliError::new("--threads must be at least 1"));
    }
    crate::limits::check_bound("--threads", threads, crate::limits::MAX_THREADS)?;
    let n_staged = if matches!(result.model_descriptor(), ModelDescriptor::Zscore { .. }) {
        stage_zscore(args, &result, model, threads)?
    } else {
        stage_family(args, &result, &order, model, threads)?
    };
    io::write_stdout(&format!(
        "staged {n_staged} subjects with the {}-subtype model: {}\n",
        model.n_subtypes,
        args.out.display()
    ))
}

/// The model of `--subtypes` (the largest by default).
fn chosen_model<'a>(args: &StageArgs, result: &'a FitResult) -> Result<&'a SubtypeModel, CliError> {
    match args.subtypes {
        None => result.models.last(),
        Some(k) => result.models.iter().find(|m| m.n_subtypes == k),
    }
    .ok_or_else(|| {
        CliError::new(format!(
            "--subtypes {}: the fit in {} has models with 1..{} subtypes",
            args.subtypes.unwrap_or(0),
            args.fit.display(),
            result.models.len()
        ))
    })
}

/// Stages the subjects of `--data` under a z-score fit; their number.
fn stage_zscore(
    args: &StageArgs,
    result: &FitResult,
    model: &SubtypeModel,
    threads: usize,
) -> Result<usize, CliError> {
    let Some(data_path) = &args.data else {
        return Err(CliError::new(
            "a z-score fit stages the subjects of --data (a CSV of z-scores)",
        ));
    };
    let engine = args.backend.select()?.engine;
    let events = result_events(result, &args.fit.join("results.json"))?;
    let data = io::read_data(
        data_path,
        DataColumns::Named(&result.biomarkers),
        args.ids.name(),
    )?;
    let lik = Likelihood::new(events, &data.dataset, result.settings.missing)
        .map_err(|e| CliError::in_file(data_path, e))?;
    let stager = Stager {
        lik: Arc::new(lik),
        engine: &engine,
        threads,
    };
    write_subjects(
        &args.out,
        &stager,
        model,
        &data.ids,
        result.settings.staging_samples,
    )?;
    Ok(data.ids.len())
}

/// Stages the subjects of the `--model` tables under a fit of a family other than
/// z-scores (on the CPU); their number.
fn stage_family(
    args: &StageArgs,
    result: &FitResult,
    order: &EventOrder,
    model: &SubtypeModel,
    threads: usize,
) -> Result<usize, CliError> {
    crate::backend::cpu_staging(args.backend)?;
    let Some(model_path) = &args.model else {
        return Err(CliError::new(format!(
            "{} holds a mixture or ordinal fit: give the new subjects' model.json with --model",
            args.fit.display()
        )));
    };
    let family = families::family_of(model_path)?;
    let loaded = load_family(model_path, family, args.data.as_deref(), args.ids.name())?;
    loaded.run(StageJob {
        args,
        result,
        order,
        model_path,
        what: loaded.what_must_match(),
        model,
        threads,
    })
}

/// Stages the subjects of a loaded model under `model` of the fit `result`, once
/// the loaded model is the fit's: the same family, parameters (descriptor),
/// biomarkers and events (`what` says so in the error).
struct StageJob<'j> {
    args: &'j StageArgs,
    result: &'j FitResult,
    order: &'j EventOrder,
    model_path: &'j std::path::Path,
    what: &'static str,
    model: &'j SubtypeModel,
    threads: usize,
}

impl<'a> FamilyJob<'a> for StageJob<'_> {
    type Output = Result<usize, CliError>;
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, ids: &'a [String]) -> Self::Output {
        let (order, new_order) = (self.order, input.model.order());
        let same_events = new_order.n_events() == order.n_events()
            && (0..order.n_events()).all(|e| {
                new_order.biomarker_of(e) == order.biomarker_of(e)
                    && new_order.level_of(e) == order.level_of(e)
            });
        let matches = input.biomarkers == self.result.biomarkers.as_slice()
            && input.descriptor == self.result.model_descriptor()
            && same_events;
        if !matches {
            return Err(CliError::in_file(
                self.model_path,
                format!(
                    "is not the model of the fit in {} ({} must match)",
                    self.args.fit.display(),
                    self.what
                ),
            ));
        }
        let staged = sustain::stage::stage_subjects(
            &input.model,
            self.model,
            ids,
            self.result.settings.staging_samples,
            self.threads,
        );
        crate::fit_outputs::write_subjects_csv(&self.args.out, &staged)?;
        Ok(ids.len())
    }
}
