//! A fit run from Python: the facade works on its own thread with the GIL
//! released, while the calling thread wakes ten times a second to report progress
//! and to notice Ctrl-C, which cancels the run through its progress counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use sustain::checkpoint::Checkpoints;
use sustain::config::FitConfig;
use sustain::fit::{prefix_input, FitInput, Progress};
use sustain::results::FitResult;
use sustain::Fit;
use sustain_sampler::progress::ChainProgress;

use crate::convert::py_err;
use crate::model::{Family, Model};

/// What to fit.
pub struct FitRequest<'a> {
    /// The model on its data.
    pub model: &'a Model,
    /// Biomarker names.
    pub biomarkers: &'a [String],
    /// Settings.
    pub config: &'a FitConfig,
    /// Where the facade keeps its per-subtype-count checkpoints, if anywhere.
    pub checkpoint_dir: Option<&'a str>,
}

/// What the progress display shows: the current phase and its counters.
#[derive(Default)]
struct Shared {
    /// ("em" | "chains", subtype count, counters) of the phases seen so far.
    phases: Vec<(&'static str, usize, Arc<ChainProgress>)>,
    /// One-line notices (e.g. the GPU fell back to the CPU).
    warnings: Vec<String>,
}

/// Runs the fit; returns it with the notices it raised.
pub fn run_fit(
    py: Python<'_>,
    request: &FitRequest,
    progress: Option<&Py<PyAny>>,
) -> PyResult<(FitResult, Vec<String>)> {
    let shared = Mutex::new(Shared::default());
    let cancel = AtomicBool::new(false);
    let on_progress = |p: Progress| {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let phase = match p {
            Progress::EmJobs {
                n_subtypes,
                progress,
            } => Some(("em", n_subtypes, progress)),
            Progress::Chains {
                n_subtypes,
                progress,
            } => Some(("chains", n_subtypes, progress)),
            Progress::Warning(w) => {
                s.warnings.push(w);
                None
            }
            _ => None,
        };
        if let Some(phase) = phase {
            // Counters that appear after Ctrl-C stop at once.
            if cancel.load(Ordering::Relaxed) {
                phase.2.cancel();
            }
            s.phases.push(phase);
        }
    };
    let mut interrupted: Option<PyErr> = None;
    let result = py.detach(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| fit_on_this_thread(request, &on_progress));
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(100));
                Python::attach(|py| {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.store(true, Ordering::Relaxed);
                            let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                            for (_, _, c) in &s.phases {
                                c.cancel();
                            }
                            interrupted = Some(e);
                            return;
                        }
                    }
                    if let (Some(cb), None) = (progress, &interrupted) {
                        if let Err(e) = report(py, cb, &shared) {
                            // A failing display must not lose the fit: show it once.
                            e.print(py);
                        }
                    }
                });
            }
            worker.join().unwrap_or(Err(sustain::Error::Backend(
                sustain::BackendError::FitThreadPanicked,
            )))
        })
    });
    if let Some(cb) = progress {
        let _ = report(py, cb, &shared);
    }
    if let Some(e) = interrupted {
        return Err(e);
    }
    let warnings = std::mem::take(&mut shared.lock().unwrap_or_else(|e| e.into_inner()).warnings);
    Ok((result.map_err(py_err)?, warnings))
}

/// Calls `cb(kind, n_subtypes, done, total, finished)` for every phase seen so far
/// (`total` 0 when unknown, as for E-M jobs); chains of several subtype counts may
/// run at once.
fn report(py: Python<'_>, cb: &Py<PyAny>, shared: &Mutex<Shared>) -> PyResult<()> {
    let phases: Vec<_> = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        s.phases
            .iter()
            .map(|(kind, k, c)| {
                let done: u64 = (0..c.n_chains()).map(|i| c.done(i)).sum();
                // E-M's job counter learns its total once E-M has begun.
                let per_slot = if *kind == "em" { c.target() } else { c.total() };
                let total = per_slot * c.n_chains() as u64;
                (*kind, *k, done, total, c.finished())
            })
            .collect()
    };
    for (kind, k, done, total, finished) in phases {
        cb.call1(py, (kind, k, done, total, finished))?;
    }
    Ok(())
}

/// The fit itself, on the worker thread.
fn fit_on_this_thread(
    request: &FitRequest,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FitResult, sustain::Error> {
    let checkpoints = request.checkpoint_dir.map(Checkpoints::new).transpose()?;
    let (config, checkpoints) = (request.config.clone(), checkpoints.as_ref());
    // Without an engine the fit runs on the configured backend where it serves the
    // model's family, else on the CPU after a notice.
    match &request.model.family {
        Family::Zscore(lik) => {
            let input = FitInput {
                events: lik.events(),
                biomarkers: request.biomarkers,
                data: lik.data(),
            };
            let fit = Fit::zscore(&input, config).checkpoints(checkpoints);
            fit.on_progress(progress).run()
        }
        Family::Prefix(model) => {
            let fit = Fit::new(prefix_input(model, request.biomarkers), config);
            fit.checkpoints(checkpoints).on_progress(progress).run()
        }
        Family::Mixed(model) => {
            let input = sustain::mixed::mixed_input(model, request.biomarkers);
            let fit = Fit::new(input, config).checkpoints(checkpoints);
            fit.on_progress(progress).run()
        }
    }
}
