//! `sustain fit` of a mixture (event-based) or ordinal model: the same E-M, chains,
//! diagnostics, checkpoints, staging and figures as a z-score fit, through the
//! model seam, on the CPU.

use std::path::PathBuf;

use sustain::backend::Engine;
use sustain::fit::{fit_model_observed, prefix_input};
use sustain::model::StageModel;

use super::fit::{check_subtypes, fit_config, prepare_folder, FitArgs};
use crate::error::CliError;
use crate::families::{self, Family};
use crate::fit_outputs::{
    draw_model_figures_of, results_json_text, results_path_of, write_subjects_csv,
};
use crate::folder_lock::FolderLock;
use crate::io;
use crate::printing::{progress_printer, summary};

/// Runs `sustain fit` on a model of `family` (not z-score), holding `lock` on
/// `--out` (taken here when `None`).
pub fn run(args: &FitArgs, family: Family, lock: Option<FolderLock>) -> Result<(), CliError> {
    let model_path = args
        .input
        .model
        .as_deref()
        .ok_or_else(|| CliError::new("--model is required"))?;
    if args.input.zvals.is_some() {
        return Err(CliError::new("--zvals and --zmax belong to z-score models"));
    }
    let loaded = families::load(
        model_path,
        family,
        args.input.data.as_deref(),
        args.input.id_column.as_deref(),
    )?;
    let mut config = fit_config(args)?;
    crate::backend::cpu_only_family(args.backend, args.require_gpu)?;
    config.backend = sustain::config::Backend::Cpu;
    let model = &loaded.model;
    let n_subjects = model.n_subjects();
    check_subtypes(args, n_subjects)?;
    let order = model.order().clone();
    crate::limits::check_fit_memory(&config, n_subjects, order.n_events())?;
    let out = &args.out;
    let (_lock, checkpoints) = prepare_folder(args, lock, &order)?;
    let input = prefix_input(model, &loaded.biomarkers);
    let printer = progress_printer(args.quiet, String::new());
    let result = fit_model_observed(
        &input,
        &config,
        &Engine::Cpu,
        Some(&checkpoints),
        &printer,
        &|_| {},
    )
    .map_err(|e| CliError::new(e.to_string()))?;

    // Each event's (biomarker, level, value) for the figures.
    let event_list: Vec<(usize, usize, f64)> = (0..order.n_events())
        .map(|e| (order.biomarker_of(e), order.level_of(e), input.events[e].z))
        .collect();
    let mut subjects: Vec<PathBuf> = Vec::new();
    let mut figures: Vec<PathBuf> = Vec::new();
    for m in &result.models {
        let path = out.join(format!("subjects_k{}.csv", m.n_subtypes));
        let staged = sustain::stage::stage_subjects(
            model,
            m,
            &loaded.ids,
            config.staging_samples,
            config.threads,
        );
        write_subjects_csv(&path, &staged)?;
        subjects.push(path);
        let value_name = if family == Family::Ordinal {
            "score"
        } else {
            ""
        };
        figures.extend(draw_model_figures_of(
            out,
            &loaded.biomarkers,
            &event_list,
            value_name,
            m,
        )?);
    }
    // results.json last: it marks the fit as finished.
    let json = results_json_text(out, &result)?;
    let results = results_path_of(out);
    io::write_atomic(&results, json.as_bytes())?;
    let mut files = vec![results, out.join(sustain::samples_file::SAMPLES_FILE)];
    files.extend(subjects);
    files.extend(figures);
    io::write_stdout(&summary(&result, &files))
}
