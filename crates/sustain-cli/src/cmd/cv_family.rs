//! `sustain cv` of a mixture (event-based), ordinal or mixed-type model: the same folds, fold
//! files, CVIC and report as a z-score model's, fitted through the model seam on
//! the CPU. `--fold-column` and `--stratify-by` read their column from `--data`
//! (the model's own data CSV, or, for a model that reads none, a CSV of the same
//! subjects in the same order).

use std::collections::BTreeMap;
use std::path::Path;

use sustain::cv::CvRun;
use sustain::cv_model::{run_model_fold, run_model_fold_part};
use sustain::fit::ModelInput;
use sustain::model::SustainModel;

use super::cv::{check_run, cv_config, folds_of, kept_column, run_folds, CvArgs};
use crate::backend::engine_for;
use crate::error::CliError;
use crate::families::{same_subjects, Family};
use crate::family_model::{FamilyJob, LoadedFamily};
use crate::io::CsvTable;

/// The model `args` name and the folds of its subjects (with what identifies them
/// in fold files' fingerprints).
fn load_with_folds(
    args: &CvArgs,
    family: Family,
    seed: u64,
) -> Result<(LoadedFamily, Vec<Vec<usize>>, String), CliError> {
    let loaded = super::fit_family::load(&args.input, family)?;
    let model = args.input.model.as_deref().unwrap_or(Path::new("--model"));
    let columns = label_columns(args, model, loaded.ids())?;
    let (folds, fold_id) = folds_of(args, loaded.ids().len(), &columns, seed)?;
    Ok((loaded, folds, fold_id))
}

/// The column of `--data` that --fold-column or --stratify-by names (none when
/// neither is given), checked to list the model's subjects `ids` (read from
/// `model`) in the same order.
fn label_columns(
    args: &CvArgs,
    model: &Path,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let Some(name) = kept_column(args) else {
        return Ok(BTreeMap::new());
    };
    let flag = if args.fold_column.is_some() {
        "--fold-column"
    } else {
        "--stratify-by"
    };
    let Some(path) = args.input.data.as_deref() else {
        return Err(CliError::new(format!(
            "{flag} {name} reads the column from --data: give --data, a CSV with a '{name}' \
             column and one row per subject of the model (the same order; ids in --id-column)"
        )));
    };
    let table = CsvTable::read(path)?;
    let labels = table.column_text(table.column_index(name)?);
    let data_ids = match args.input.ids.name() {
        Some(id) => table.column_text(table.column_index(id)?),
        None => (1..=table.n_rows()).map(|r| r.to_string()).collect(),
    };
    same_subjects((model, ids), (path, &data_ids))?;
    Ok(BTreeMap::from([(name.to_string(), labels)]))
}

/// The number of folds `sustain cv` of a `family` model would run (reading the model
/// as it would): what `slurm cv` submits one task per.
pub fn n_folds(args: &CvArgs, family: Family, seed: u64) -> Result<usize, CliError> {
    Ok(load_with_folds(args, family, seed)?.1.len())
}

/// Runs `sustain cv` on a model of `family` (not z-score).
pub fn run(args: &CvArgs, family: Family) -> Result<(), CliError> {
    let config = cv_config(args)?;
    let (loaded, folds, fold_id) = load_with_folds(args, family, config.seed)?;
    loaded.run(CvJob {
        args,
        family,
        config: &config,
        folds: &folds,
        fold_id: &fold_id,
    })
}

/// `sustain cv` of a loaded model on `folds`.
struct CvJob<'j> {
    args: &'j CvArgs,
    family: Family,
    config: &'j sustain::config::FitConfig,
    folds: &'j [Vec<usize>],
    fold_id: &'j str,
}

impl<'a> FamilyJob<'a> for CvJob<'_> {
    type Output = Result<(), CliError>;
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, _: &'a [String]) -> Self::Output {
        let (args, folds) = (self.args, self.folds);
        let family = self.family.name();
        let (engine, ran_on) = engine_for(args.backend, &input.model, family)?;
        let mut config = self.config.clone();
        config.backend = ran_on.config();
        let (config, engine) = (&config, &engine);
        let n_subjects = input.model.n_subjects();
        check_run(
            args,
            config,
            folds,
            n_subjects,
            input.model.order().n_events(),
        )?;
        let fingerprint = format!(
            "{}-{}",
            sustain::checkpoint::fingerprint_of(&input.identity, config),
            self.fold_id
        );
        let cv = CvRun {
            config,
            folds,
            fingerprint: &fingerprint,
        };
        run_folds(
            args,
            &cv,
            None,
            |i, k, progress| run_model_fold_part(engine, &input, &cv, i, k, progress),
            |i, progress| run_model_fold(engine, &input, &cv, i, progress),
        )
    }
}
