//! `sustain fit` of a mixture (event-based), ordinal or mixed-type model: the same E-M, chains,
//! diagnostics, checkpoints, staging and figures as a z-score fit, through the
//! model seam; on the GPU under `--backend gpu` where it evaluates the family
//! (mixture, ordinal), else on the CPU.

use std::path::{Path, PathBuf};

use sustain::fit::ModelInput;
use sustain::model::SustainModel;
use sustain::results::FitResult;
use sustain::Fit;

use super::fit::{check_subtypes, fit_config, prepare_folder, FitArgs, FitData};
use crate::backend::engine_for;
use crate::error::CliError;
use crate::families::Family;
use crate::family_model::{load_family, FamilyJob, LoadedFamily};
use crate::fit_outputs::{
    draw_figures_any, results_json_text, results_path_of, write_subjects_csv,
};
use crate::folder_lock::FolderLock;
use crate::io;
use crate::printing::{progress_printer, summary};

/// Reads the model of a fit's (or cv's) inputs (`family`: not z-score): its
/// --model, with --data and --id-column.
pub fn load(input: &FitData, family: Family) -> Result<LoadedFamily, CliError> {
    if input.zvals.is_some() {
        return Err(CliError::new("--zvals and --zmax belong to z-score models"));
    }
    let model = input
        .model
        .as_deref()
        .ok_or_else(|| CliError::new("--model is required"))?;
    load_family(model, family, input.data.as_deref(), input.ids.name())
}

/// Runs `sustain fit` on a model of `family` (not z-score), holding `lock` on
/// `--out` (taken here when `None`).
pub fn run(args: &FitArgs, family: Family, lock: Option<FolderLock>) -> Result<(), CliError> {
    load(&args.input, family)?.run(FitJob { args, family, lock })
}

/// `sustain fit` of a loaded model.
struct FitJob<'a> {
    args: &'a FitArgs,
    family: Family,
    lock: Option<FolderLock>,
}

impl<'a> FamilyJob<'a> for FitJob<'_> {
    type Output = Result<(), CliError>;
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, ids: &'a [String]) -> Self::Output {
        fit_and_write(self.args, self.family, self.lock, &input, ids)
    }
}

/// Fits `input`, stages the subjects `ids` and writes the subjects CSVs, figures
/// and results.json.
fn fit_and_write<M: SustainModel>(
    args: &FitArgs,
    family: Family,
    lock: Option<FolderLock>,
    input: &ModelInput<M>,
    ids: &[String],
) -> Result<(), CliError> {
    let mut config = fit_config(args)?;
    let model = &input.model;
    let (engine, ran_on) = engine_for(args.backend, model, family.name())?;
    config.backend = ran_on.config();
    let n_subjects = model.n_subjects();
    check_subtypes(args, n_subjects)?;
    let order = model.order().clone();
    crate::limits::check_fit_memory(&config, n_subjects, order.n_events())?;
    let (_lock, checkpoints) = prepare_folder(args, lock, &order)?;
    let printer = progress_printer(args.progress.quiet, String::new());
    let result = Fit::new(input.clone(), config.clone())
        .engine(&engine)
        .checkpoints(&checkpoints)
        .on_progress(&printer)
        .run()
        .map_err(|e| CliError::new(e.to_string()))?;
    let files = write_outputs(&args.out, input, ids, &result, config.threads)?;
    io::write_stdout(&summary(&result, &files))
}

/// Writes a finished fit of `input` into `out` (also `sustain merge` of its chain
/// shards): each subtype count's staged subjects `ids` and figures (drawn as
/// `sustain plot` redraws them), then results.json last, which marks the fit as
/// finished. Returns the files written.
pub fn write_outputs<M: SustainModel>(
    out: &Path,
    input: &ModelInput<M>,
    ids: &[String],
    result: &FitResult,
    threads: usize,
) -> Result<Vec<PathBuf>, CliError> {
    let model = &input.model;
    let mut subjects: Vec<PathBuf> = Vec::new();
    for m in &result.models {
        let path = out.join(format!("subjects_k{}.csv", m.n_subtypes));
        let staged =
            sustain::stage::stage_subjects(model, m, ids, result.settings.staging_samples, threads);
        write_subjects_csv(&path, &staged)?;
        subjects.push(path);
    }
    let drawn = draw_figures_any(out, result, model.order())?;
    // results.json last: it marks the fit as finished.
    let json = results_json_text(out, result)?;
    let results = results_path_of(out);
    io::write_atomic(&results, json.as_bytes())?;
    let mut files = vec![results, out.join(sustain::samples_file::SAMPLES_FILE)];
    files.extend(subjects);
    files.extend(drawn);
    Ok(files)
}
