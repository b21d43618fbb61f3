//! `sustain stage`: subtypes and stages of (new) subjects under a finished fit.

use std::path::PathBuf;

use sustain::model::Likelihood;

use crate::backend::Backend;
use crate::error::CliError;
use crate::fit_outputs::{read_fit_folder, result_events, write_subjects, Stager};
use crate::io::{self, DataColumns};
use std::sync::Arc;

/// Arguments of `sustain stage`.
#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// Fit folder written by `sustain fit` (reads DIR/results.json).
    #[arg(long, value_name = "DIR")]
    pub fit: PathBuf,

    /// Data CSV of the subjects to stage: the fit's biomarker columns are taken by
    /// name, other columns are ignored. Empty cells, NA, NaN and nan are missing.
    #[arg(long, value_name = "DATA.csv")]
    pub data: PathBuf,

    /// Output CSV: id, ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage.
    /// Written atomically.
    #[arg(long, value_name = "SUBJECTS.csv")]
    pub out: PathBuf,

    /// Which model to stage with, by its number of subtypes [default: the largest
    /// fitted].
    #[arg(long, value_name = "K")]
    pub subtypes: Option<usize>,

    /// Column of the data holding subject ids [default: none; subjects are
    /// numbered by their 1-based data row].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,

    /// Worker threads; results do not depend on it [default: the available cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Where the staging posteriors are computed: the CPU (f64), or the GPU (f32
    /// posteriors, summed over samples in f64; they agree with the CPU to about 1e-6).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,

    /// With --backend gpu: fail (exit status 2) when no GPU can be used [default:
    /// off].
    #[arg(long)]
    pub require_gpu: bool,

    /// Write --out even when it is an input (--data, the fit's results.json) or a
    /// file that `sustain stage` did not write [default: off].
    #[arg(long)]
    pub force: bool,
}

/// Runs `sustain stage`.
pub fn run(args: &StageArgs) -> Result<(), CliError> {
    let results = args.fit.join("results.json");
    crate::overwrite::refuse_inputs(
        &args.out,
        &[("--data", &args.data), ("--fit", &results)],
        args.force,
    )?;
    crate::overwrite::refuse_fit_results(&args.out, args.force)?;
    crate::overwrite::refuse_foreign_file(
        &args.out,
        crate::fit_outputs::SUBJECTS_HEADER,
        "stage",
        args.force,
    )?;
    let engine = args.backend.select(args.require_gpu)?.engine;
    let result = read_fit_folder(&args.fit)?;
    let path = args.fit.join("results.json");
    let events = result_events(&result, &path)?;
    let model = match args.subtypes {
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
    })?;
    let data = io::read_data(
        &args.data,
        DataColumns::Named(&result.biomarkers),
        args.id_column.as_deref(),
    )?;
    let lik = Likelihood::new(events, &data.dataset, result.settings.missing)
        .map_err(|e| CliError::in_file(&args.data, e))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(CliError::new("--threads must be at least 1"));
    }
    crate::limits::check_bound("--threads", threads, crate::limits::MAX_THREADS)?;
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
    io::write_stdout(&format!(
        "staged {} subjects with the {}-subtype model: {}\n",
        data.ids.len(),
        model.n_subtypes,
        args.out.display()
    ))
}
