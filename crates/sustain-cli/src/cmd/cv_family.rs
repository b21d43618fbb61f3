//! `sustain cv` of a mixture (event-based), ordinal or mixed-type model: the same folds, fold
//! files, CVIC and report as a z-score model's, fitted through the model seam on
//! the CPU.

use sustain::cv::make_folds;
use sustain::cv_model::run_model_fold;
use sustain::fit::{prefix_input, ModelInput};
use sustain::mixed::mixed_input;
use sustain::model::SustainModel;

use super::cv::{check_training_part, cv_config, run_folds, CvArgs};
use crate::error::CliError;
use crate::families::{self, Family};

/// Refuses the options of `sustain cv` that serve z-score models only.
fn refuse_zscore_only(args: &CvArgs, family: Family) -> Result<(), CliError> {
    for (given, flag) in [
        (args.fold_column.is_some(), "--fold-column"),
        (args.stratify_by.is_some(), "--stratify-by"),
        (args.subtype_count.is_some(), "--subtype-count"),
    ] {
        if given {
            return Err(CliError::new(format!(
                "{flag} is not available for {} models yet (z-score models only); use --folds",
                family.name()
            )));
        }
    }
    Ok(())
}

/// The number of folds `sustain cv` of a `family` model would run (reading the model
/// as it would): what `slurm cv` submits one task per.
pub fn n_folds(args: &CvArgs, family: Family, seed: u64) -> Result<usize, CliError> {
    refuse_zscore_only(args, family)?;
    let model = args
        .input
        .model
        .as_deref()
        .ok_or_else(|| CliError::new("--model is required"))?;
    let (data, id_column) = (args.input.data.as_deref(), args.input.id_column.as_deref());
    let n = super::fit_family::subjects_of(model, family, data, id_column)?;
    Ok(make_folds(n, args.folds.unwrap_or(0), None, seed)
        .map_err(|e| CliError::new(format!("--folds: {e}")))?
        .len())
}

/// Runs `sustain cv` on a model of `family` (not z-score).
pub fn run(args: &CvArgs, family: Family) -> Result<(), CliError> {
    let model_path = args
        .input
        .model
        .as_deref()
        .ok_or_else(|| CliError::new("--model is required"))?;
    if args.input.zvals.is_some() {
        return Err(CliError::new("--zvals and --zmax belong to z-score models"));
    }
    refuse_zscore_only(args, family)?;
    let (data, id_column) = (args.input.data.as_deref(), args.input.id_column.as_deref());
    if family == Family::Mixed {
        let loaded = crate::families_mixed::load_mixed(model_path, data, id_column)?;
        return run_model(args, &mixed_input(&loaded.model, &loaded.biomarkers));
    }
    let loaded = families::load(model_path, family, data, id_column)?;
    run_model(args, &prefix_input(&loaded.model, &loaded.biomarkers))
}

/// `sustain cv` of the model `input`.
fn run_model<M: SustainModel>(args: &CvArgs, input: &ModelInput<M>) -> Result<(), CliError> {
    let mut config = cv_config(args)?;
    crate::backend::cpu_only_family(args.backend, args.require_gpu)?;
    config.backend = sustain::config::Backend::Cpu;
    let n_subjects = input.model.n_subjects();
    let k = args.folds.unwrap_or(0);
    let folds = make_folds(n_subjects, k, None, config.seed)
        .map_err(|e| CliError::new(format!("--folds: {e}")))?;
    if let Some(i) = args.fold {
        if i >= folds.len() {
            return Err(CliError::new(format!(
                "--fold {i} is out of range: folds are numbered 0..{} ({} folds)",
                folds.len() - 1,
                folds.len()
            )));
        }
    }
    crate::limits::check_fit_memory(&config, n_subjects, input.model.order().n_events())?;
    for i in (0..folds.len()).filter(|&i| args.fold.is_none_or(|f| f == i)) {
        check_training_part(n_subjects - folds[i].len(), i, config.max_subtypes)?;
    }
    crate::io::create_dir(&args.out)?;
    let fingerprint = format!(
        "{}-folds{k}-stratify:",
        sustain::checkpoint::fingerprint_of(&input.identity, &config)
    );
    run_folds(
        args,
        &folds,
        &fingerprint,
        None,
        |_, _| Err(CliError::new("--subtype-count is for z-score models only")),
        |i, progress| run_model_fold(input, &config, &folds, i, &fingerprint, progress),
    )
}
