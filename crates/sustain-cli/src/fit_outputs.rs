//! The outputs of a fit folder: staging the subjects, the subjects CSVs, the
//! figures, and results.json written last; and reading a finished folder back
//! (`stage`, `plot` and `merge` use both).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sustain::backend::Engine;
use sustain::config::FitConfig;
use sustain::fit::Progress;
use sustain::model::{EventSet, Likelihood};
use sustain::results::{FitResult, SubjectStage, SubtypeModel};

use crate::error::CliError;
use crate::io::{self, DataTable};
use crate::plot::{draw_pvd, draw_traces, PvdInput, PvdPanel};

/// Writes results.json, the subjects CSVs and the figures; returns the files
/// written. The subjects and figures are made from the values results.json holds
/// (see [`FitFolder`]), so `stage` and `plot` (which read it) reproduce them exactly.
pub fn write_fit_folder(
    out: &Path,
    result: &FitResult,
    data: &DataTable,
    threads: usize,
    engine: &Engine,
) -> Result<Vec<PathBuf>, CliError> {
    let events = result_events(result, &results_path_of(out))?;
    let folder = FitFolder::new(
        out,
        data,
        &result.biomarkers,
        events,
        &result.settings,
        engine,
    )?;
    let (json, written) = folder.write_rest(result, threads, &[]);
    finish_folder(out, json, written, result.models.len())
}

/// One model's outputs: its subjects CSV, and its figures.
pub(crate) struct ModelFiles {
    subjects: Result<PathBuf, CliError>,
    figures: Result<Vec<PathBuf>, CliError>,
}

/// The outputs of a fit folder, each model's as soon as the model is final.
///
/// They are made from the values that results.json holds, without reading the file
/// back: staging reads the samples' positions (integers) and fractions (finite,
/// written as the shortest text that reads back to the same bits, and read with
/// serde_json's `float_roundtrip`), and the figures take every number through
/// [`as_written`]. So `stage` and `plot`, which read results.json, reproduce them
/// byte for byte.
pub(crate) struct FitFolder<'a> {
    out: &'a Path,
    data: &'a DataTable,
    biomarkers: &'a [String],
    events: EventSet,
    lik: Arc<Likelihood>,
    engine: &'a Engine,
    staging_samples: usize,
}

impl<'a> FitFolder<'a> {
    /// The folder `out` of a fit of `data` (biomarkers named `biomarkers`) with
    /// `events` and `settings`, as results.json records them.
    pub(crate) fn new(
        out: &'a Path,
        data: &'a DataTable,
        biomarkers: &'a [String],
        events: EventSet,
        settings: &FitConfig,
        engine: &'a Engine,
    ) -> Result<Self, CliError> {
        let lik = Likelihood::new(events.clone(), &data.dataset, settings.missing)
            .map_err(|e| CliError::new(e.to_string()))?;
        Ok(Self {
            out,
            data,
            biomarkers,
            events,
            lik: Arc::new(lik),
            engine,
            staging_samples: settings.staging_samples,
        })
    }

    /// Stages the subjects with `model` on `threads` (beside it, when there are
    /// several, the figures are drawn) and writes the subjects CSV.
    pub(crate) fn model_files(&self, model: &SubtypeModel, threads: usize) -> ModelFiles {
        let path = self.out.join(format!("subjects_k{}.csv", model.n_subtypes));
        let stager = Stager {
            lik: Arc::clone(&self.lik),
            engine: self.engine,
            threads,
        };
        let (subjects, figures) = both(
            threads > 1,
            || {
                let table = stage(&stager, model, &self.data.ids, self.staging_samples)?;
                write_subjects_csv(&path, &table)?;
                Ok(path)
            },
            || draw_model_figures(self.out, self.biomarkers, &self.events, model),
        );
        ModelFiles { subjects, figures }
    }

    /// [`Self::model_files`] of `models` (index, model), sharing `threads`: on the
    /// CPU the models run at once, the largest subtype count first (staging one
    /// small cohort does not keep several threads busy); results do not depend on
    /// the threads.
    pub(crate) fn models_files(
        &self,
        mut models: Vec<(usize, &SubtypeModel)>,
        threads: usize,
    ) -> Vec<(usize, ModelFiles)> {
        if models.len() > 1 && self.engine.shares_threads() {
            models.sort_by_key(|(_, m)| m.n_subtypes);
            let mut written = Vec::new();
            sustain_cpu::share_threads(
                models,
                threads,
                |(i, model), share| (i, self.model_files(model, share)),
                |files| {
                    written.push(files);
                    true
                },
            );
            return written;
        }
        models
            .into_iter()
            .map(|(i, model)| (i, self.model_files(model, threads)))
            .collect()
    }

    /// Makes the text of results.json and, beside it, writes the outputs of every
    /// model not in `claimed` (`claimed[i]`: model `i`'s are written elsewhere);
    /// results.json itself is written by [`finish_folder`], after every other file.
    pub(crate) fn write_rest(
        &self,
        result: &FitResult,
        threads: usize,
        claimed: &[bool],
    ) -> (Result<String, CliError>, Vec<(usize, ModelFiles)>) {
        let models: Vec<(usize, &SubtypeModel)> = result
            .models
            .iter()
            .enumerate()
            .filter(|(i, _)| !claimed.get(*i).copied().unwrap_or(false))
            .collect();
        both(
            threads > 1,
            || results_json_text(self.out, result),
            || self.models_files(models, threads),
        )
    }
}

/// The text of `out/results.json`, after writing the samples it names to
/// `out/samples.npz` ([`write_samples`]).
pub(crate) fn results_json_text(out: &Path, result: &FitResult) -> Result<String, CliError> {
    let shell = write_samples(out, result)?;
    let mut text = serde_json::to_string(&shell).map_err(|e| {
        CliError::new(format!(
            "cannot write {}: {e}",
            results_path_of(out).display()
        ))
    })?;
    text.push('\n');
    Ok(text)
}

/// Writes the traces of every model to `out/samples.npz` (atomically) and returns
/// the result as results.json keeps it: the samples named, not inline.
pub(crate) fn write_samples(out: &Path, result: &FitResult) -> Result<FitResult, CliError> {
    use sustain::samples_file::{shell, write, SAMPLES_FILE};
    let path = out.join(SAMPLES_FILE);
    let all: Vec<_> = result.models.iter().map(|m| &m.samples).collect();
    let file = write(&path, &io::temp_path(&path), &all).map_err(|e| CliError::write(&path, &e))?;
    Ok(FitResult {
        version: result.version,
        biomarkers: result.biomarkers.clone(),
        model: result.model.clone(),
        z_vals: result.z_vals.clone(),
        z_max: result.z_max.clone(),
        events: result.events.clone(),
        settings: result.settings.clone(),
        fingerprint: result.fingerprint.clone(),
        models: result.models.iter().map(|m| shell(m, &file)).collect(),
    })
}

/// Reads the samples that the models of `result` (read from the results file
/// `path`) keep in a file beside it; files with inline samples pass unchanged.
pub(crate) fn load_samples(result: &mut FitResult, path: &Path) -> Result<(), CliError> {
    sustain::samples_file::load_fit(result, path).map_err(|e| CliError::in_file(&e.path, e.message))
}

/// Writes results.json once every model's outputs are written (it marks the fit
/// as finished, so a failed figure leaves no finished-looking folder); the files
/// written, in the order `summary` lists them (results.json, the subjects CSVs, the
/// figures of each model), or the first error in that order.
pub(crate) fn finish_folder(
    out: &Path,
    json: Result<String, CliError>,
    mut written: Vec<(usize, ModelFiles)>,
    n_models: usize,
) -> Result<Vec<PathBuf>, CliError> {
    written.sort_by_key(|(i, _)| *i);
    if written.iter().map(|(i, _)| *i).ne(0..n_models) {
        return Err(CliError::new("the outputs of some models were not written"));
    }
    let json = json?;
    let path = results_path_of(out);
    let mut files = vec![path.clone(), out.join(sustain::samples_file::SAMPLES_FILE)];
    let mut figures = Vec::new();
    for (_, model) in written {
        files.push(model.subjects?);
        figures.push(model.figures);
    }
    for f in figures {
        files.extend(f?);
    }
    io::write_atomic(&path, json.as_bytes())?;
    Ok(files)
}

/// `a()` here and `b()` beside it on a thread of its own when `parallel`; one after
/// the other otherwise.
pub(crate) fn both<A, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        let a = a();
        return (a, b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        (a, b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

type Job<'scope> = std::thread::ScopedJoinHandle<'scope, Vec<(usize, ModelFiles)>>;

/// The outputs of models that are final while the fit still runs, written where
/// threads are free: on the CPU with several threads the chains of every subtype
/// count run at once, and a thread whose chains are done would otherwise wait for
/// the others. The model that finishes last is left to [`FitFolder::write_rest`],
/// which writes it beside results.json.
pub(crate) struct EarlyFiles<'scope, 'env> {
    folder: &'env FitFolder<'env>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    threads: usize,
    n_models: usize,
    /// Models final so far.
    received: std::cell::Cell<usize>,
    /// Subtype counts whose chains started and are not done.
    chains_running: std::cell::Cell<usize>,
    /// Final models waiting for a free thread (index, model).
    queue: std::cell::RefCell<Vec<(usize, SubtypeModel)>>,
    /// `claimed[i]`: model `i`'s outputs are written here.
    claimed: std::cell::RefCell<Vec<bool>>,
    /// Outputs written on this thread.
    written: std::cell::RefCell<Vec<(usize, ModelFiles)>>,
    /// Threads writing others, with how many threads each uses.
    jobs: std::cell::RefCell<Vec<(usize, Job<'scope>)>>,
}

impl<'scope, 'env> EarlyFiles<'scope, 'env> {
    pub(crate) fn new(
        folder: &'env FitFolder<'env>,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        threads: usize,
        n_models: usize,
    ) -> Self {
        Self {
            folder,
            scope,
            threads: threads.max(1),
            n_models,
            received: Default::default(),
            chains_running: Default::default(),
            queue: Default::default(),
            claimed: std::cell::RefCell::new(vec![false; n_models]),
            written: Default::default(),
            jobs: Default::default(),
        }
    }

    /// Follows which subtype counts' chains run.
    pub(crate) fn track(&self, p: &Progress) {
        let running = &self.chains_running;
        match p {
            Progress::McmcStarted { .. } => running.set(running.get() + 1),
            Progress::ModelDone { resumed: false, .. } => {
                running.set(running.get().saturating_sub(1))
            }
            _ => {}
        }
    }

    /// Model `model` is final: its outputs are written now if threads are free
    /// (on this thread when nothing else runs), else queued for the next free
    /// thread; the last model is left for the end.
    pub(crate) fn model_done(&self, model: &SubtypeModel) {
        self.received.set(self.received.get() + 1);
        let Some(i) = model.n_subtypes.checked_sub(1) else {
            return;
        };
        if self.received.get() >= self.n_models || i >= self.n_models {
            return;
        }
        self.claimed.borrow_mut()[i] = true;
        let busy: usize = self
            .jobs
            .borrow()
            .iter()
            .filter(|(_, job)| !job.is_finished())
            .map(|(t, _)| t)
            .sum();
        let running = self.chains_running.get();
        if running == 0 && busy == 0 {
            // Between subtype counts fitted one after another (one thread, a batch
            // engine) or loaded from checkpoints: the fit waits, as it would at
            // the end.
            let queue = std::mem::take(&mut *self.queue.borrow_mut());
            let mut models: Vec<(usize, &SubtypeModel)> =
                queue.iter().map(|(j, m)| (*j, m)).collect();
            models.push((i, model));
            let files = self.folder.models_files(models, self.threads);
            self.written.borrow_mut().extend(files);
            return;
        }
        self.queue.borrow_mut().push((i, model.clone()));
        let free = self.threads.saturating_sub(running + busy);
        if free == 0 {
            return;
        }
        let queue = std::mem::take(&mut *self.queue.borrow_mut());
        let folder = self.folder;
        let job = self.scope.spawn(move || {
            let models = queue.iter().map(|(j, m)| (*j, m)).collect();
            folder.models_files(models, free)
        });
        self.jobs.borrow_mut().push((free, job));
    }

    /// Takes no more models: which models' outputs are written here (the others'
    /// are for [`FitFolder::write_rest`]), those written, and the jobs still
    /// writing some.
    pub(crate) fn stop(self) -> (Vec<bool>, Vec<(usize, ModelFiles)>, Vec<Job<'scope>>) {
        let mut claimed = self.claimed.into_inner();
        for (i, _) in self.queue.into_inner() {
            claimed[i] = false;
        }
        let jobs = self.jobs.into_inner().into_iter().map(|(_, j)| j);
        (claimed, self.written.into_inner(), jobs.collect())
    }
}

pub(crate) fn results_path_of(dir: &Path) -> PathBuf {
    dir.join("results.json")
}

/// The events of a fit, rebuilt from its z_vals and z_max.
pub fn result_events(result: &FitResult, path: &Path) -> Result<EventSet, CliError> {
    events_of(&result.z_vals, &result.z_max, path)
}

/// Events rebuilt from `z_vals` and `z_max` (of the results file `path`).
pub(crate) fn events_of(
    z_vals: &[Vec<f64>],
    z_max: &[f64],
    path: &Path,
) -> Result<EventSet, CliError> {
    EventSet::new(z_vals, z_max)
        .map_err(|e| CliError::in_file(path, format!("invalid z_vals/z_max: {e}")))
}

/// Reads `DIR/results.json`, refusing another schema version or contents that do
/// not fit its model (see [`crate::results_file`]).
pub fn read_fit_folder(dir: &Path) -> Result<(FitResult, sustain::model::EventOrder), CliError> {
    let path = results_path_of(dir);
    if !path.is_file() {
        return Err(CliError::new(format!(
            "{} is not a fit folder (no results.json)",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::read(&path, &e))?;
    // The schema version, then everything staging and the figures index.
    crate::results_file::parse_any(&path, &text)
}

/// Where `write_subjects` stages: the prepared data and the engine.
pub struct Stager<'a> {
    /// The data to stage, prepared for the fit's events.
    pub lik: Arc<Likelihood>,
    /// The CPU (threads) or a batch engine (the GPU's staging shader).
    pub engine: &'a Engine,
    /// CPU threads.
    pub threads: usize,
}

/// Stages the subjects with `model` and writes the subjects CSV.
pub fn write_subjects(
    path: &Path,
    stager: &Stager<'_>,
    model: &SubtypeModel,
    ids: &[String],
    staging_samples: usize,
) -> Result<(), CliError> {
    write_subjects_csv(path, &stage(stager, model, ids, staging_samples)?)
}

/// The subjects' subtypes and stages under `model`.
pub(crate) fn stage(
    stager: &Stager<'_>,
    model: &SubtypeModel,
    ids: &[String],
    staging_samples: usize,
) -> Result<Vec<SubjectStage>, CliError> {
    let lik = &stager.lik;
    Ok(match stager.engine {
        Engine::Cpu => {
            sustain::stage::stage_subjects(lik, model, ids, staging_samples, stager.threads)
        }
        engine => {
            let mut eval = engine
                .evaluator(lik)
                .map_err(|e| CliError::new(format!("staging on {}: {e}", engine.name())))?;
            sustain::stage::stage_subjects_with(eval.as_mut(), model, ids, staging_samples)
                .map_err(|e| CliError::new(format!("staging on {}: {e}", engine.name())))?
        }
    })
}

/// The header of a subjects CSV.
pub const SUBJECTS_HEADER: &str = "id,ml_subtype,prob_ml_subtype,ml_stage,prob_ml_stage";

/// Writes a subjects CSV.
pub(crate) fn write_subjects_csv(path: &Path, stages: &[SubjectStage]) -> Result<(), CliError> {
    let mut csv = format!("{SUBJECTS_HEADER}\n");
    let mut writer = csv::Writer::from_writer(Vec::new());
    for s in stages {
        writer
            .write_record([
                s.id.clone(),
                s.ml_subtype.to_string(),
                io::format_cell(s.prob_ml_subtype),
                s.ml_stage.to_string(),
                io::format_cell(s.prob_ml_stage),
            ])
            .map_err(|e| CliError::write(path, &std::io::Error::other(e.to_string())))?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| CliError::write(path, &std::io::Error::other(e.to_string())))?;
    csv.push_str(&String::from_utf8_lossy(&body));
    io::write_atomic(path, csv.as_bytes())
}

/// Draws pvd_k{K} and trace_k{K} (svg and png) for every model; returns the files.
/// Draws the figures of every model of a fit of any family (`order` as
/// [`crate::results_file::parse_any`] gives it): z-score events are coloured by
/// threshold, ordinal ones by score, mixture ones in one colour.
pub fn draw_figures_any(
    out: &Path,
    result: &FitResult,
    order: &sustain::model::EventOrder,
) -> Result<Vec<PathBuf>, CliError> {
    let descriptor = result.model_descriptor();
    let value_name = match descriptor {
        sustain::results::ModelDescriptor::Zscore { .. } => return draw_figures(out, result),
        sustain::results::ModelDescriptor::Ordinal { .. } => "score",
        _ => "",
    };
    let value_names = sustain::mixed::value_names(&descriptor, result.biomarkers.len());
    let event_list: Vec<(usize, usize, f64)> = (0..order.n_events())
        .map(|e| (order.biomarker_of(e), order.level_of(e), result.events[e].z))
        .collect();
    let mut files = Vec::new();
    for model in &result.models {
        files.extend(draw_model_figures_named(
            out,
            &result.biomarkers,
            &value_names,
            &event_list,
            value_name,
            model,
        )?);
    }
    Ok(files)
}

/// Draws the figures of every model of a z-score fit.
pub fn draw_figures(out: &Path, result: &FitResult) -> Result<Vec<PathBuf>, CliError> {
    let events = result_events(result, &results_path_of(out))?;
    let mut files = Vec::new();
    for model in &result.models {
        files.extend(draw_model_figures(out, &result.biomarkers, &events, model)?);
    }
    Ok(files)
}

/// `v` as results.json gives it back: a finite number exactly, anything else
/// (written as `null`) as NaN. The figures take their numbers through it, so a
/// model drawn before it is written gives the same files as the model read back.
fn as_written(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        f64::NAN
    }
}

/// Draws pvd_k{K} and trace_k{K} (svg and png) of one model; returns the files.
fn draw_model_figures(
    out: &Path,
    biomarkers: &[String],
    events: &EventSet,
    model: &SubtypeModel,
) -> Result<Vec<PathBuf>, CliError> {
    let event_list: Vec<(usize, usize, f64)> = events
        .events()
        .iter()
        .map(|e| (e.biomarker, e.level, e.z))
        .collect();
    draw_model_figures_of(out, biomarkers, &event_list, "z", model)
}

/// [`draw_model_figures`] from each event's (biomarker, level, value): the PVD
/// colours an event by its level (one colour for a mixture model's single level,
/// one per score for an ordinal one).
pub(crate) fn draw_model_figures_of(
    out: &Path,
    biomarkers: &[String],
    event_list: &[(usize, usize, f64)],
    value_name: &str,
    model: &SubtypeModel,
) -> Result<Vec<PathBuf>, CliError> {
    draw_model_figures_named(out, biomarkers, &[], event_list, value_name, model)
}

/// One PVD panel per chain and subtype (chains in rows, subtypes in the merged
/// labels), for a model whose chains did not converge: where they disagree shows
/// at a glance. None for a converged model, a single chain, or samples not loaded.
fn chain_panels(model: &SubtypeModel) -> Option<Vec<PvdPanel>> {
    let samples = &model.samples;
    if model.diagnostics.converged || samples.chains.len() < 2 {
        return None;
    }
    let k = model.n_subtypes;
    if samples.chains.iter().any(|run| run.trace.n_subtypes != k) {
        return None;
    }
    let mut panels = Vec::new();
    for c in 0..samples.chains.len() {
        let pvd = samples.chain_position_frequencies(c);
        for (s, certainty) in pvd.into_iter().enumerate() {
            let f = model
                .chains
                .get(c)
                .and_then(|summary| summary.mean_f.get(s))
                .copied()
                .unwrap_or(f64::NAN);
            panels.push(PvdPanel {
                title: format!(
                    "Chain {}, subtype {} (f = {:.2})",
                    c + 1,
                    s + 1,
                    as_written(f)
                ),
                certainty,
            });
        }
    }
    Some(panels)
}

/// [`draw_model_figures_of`] where each biomarker's values have their own name
/// (`value_names`, one per biomarker: the mixed-type model's "z", "score", "").
pub(crate) fn draw_model_figures_named(
    out: &Path,
    biomarkers: &[String],
    value_names: &[&str],
    event_list: &[(usize, usize, f64)],
    value_name: &str,
    model: &SubtypeModel,
) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    let k = model.n_subtypes;
    let panels: Vec<PvdPanel> = (0..k)
        .map(|s| PvdPanel {
            title: format!(
                "Subtype {} (f = {:.2})",
                s + 1,
                as_written(model.mean_f.get(s).copied().unwrap_or(f64::NAN))
            ),
            certainty: model
                .pvd
                .get(s)
                .map(|rows| {
                    rows.iter()
                        .map(|row| row.iter().map(|&v| as_written(v)).collect())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let input = PvdInput {
        biomarker_value_names: value_names,
        biomarker_names: biomarkers,
        events: event_list,
        value_name,
        panels: &panels,
        per_row: 0,
    };
    files.extend(draw_pvd(&out.join(format!("pvd_k{k}")), &input).map_err(|e| CliError::new(e.0))?);
    if let Some(panels) = chain_panels(model) {
        let input = PvdInput {
            panels: &panels,
            per_row: k,
            ..input
        };
        files.extend(
            draw_pvd(&out.join(format!("pvd_chains_k{k}")), &input)
                .map_err(|e| CliError::new(e.0))?,
        );
    } else {
        // Chains that converged once resumed with a larger budget: the per-chain
        // figure of the stopped run no longer applies.
        for ext in ["svg", "png"] {
            let _ = std::fs::remove_file(out.join(format!("pvd_chains_k{k}.{ext}")));
        }
    }
    let chains: Vec<Vec<f64>> = model
        .samples
        .chains
        .iter()
        .map(|c| {
            let mut series = c.trace.loglike_series(0, 1);
            series.iter_mut().for_each(|v| *v = as_written(*v));
            series
        })
        .collect();
    let d = &model.diagnostics;
    let title = format!(
        "{k} subtype(s): log-likelihood, R-hat {:.3}, {}",
        as_written(d.rhat_loglike),
        if d.converged {
            "converged"
        } else {
            "NOT converged"
        }
    );
    files.extend(
        draw_traces(&out.join(format!("trace_k{k}")), &title, &chains)
            .map_err(|e| CliError::new(e.0))?,
    );
    Ok(files)
}
