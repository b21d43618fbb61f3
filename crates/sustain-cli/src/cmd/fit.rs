//! `sustain fit`: fits models with 1..K subtypes (E-M, then MCMC chains), and writes
//! `results.json`, one subjects CSV and the figures per subtype count. Also holds the
//! pieces that `stage`, `cv`, `plot` and `demo` share: the fit options, reading the
//! inputs, and writing the outputs of a fit folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use sustain::backend::Engine;
use sustain::checkpoint::Checkpoints;
use sustain::config::FitConfig;
use sustain::fit::{fit_with_engine_observed, FitInput, Progress};
use sustain::model::{EventOrder, EventSet, Likelihood};
use sustain::results::{FitResult, SubjectStage, SubtypeModel};
use sustain::sampler::ProposalMode;

use crate::backend::Backend;
use crate::cmd::Missing;
use crate::error::CliError;
use crate::families::{self, Family};
use crate::folder_lock::{remove_dead_temps, FolderLock, FOLDER_LOCK};
use crate::io::{self, DataColumns, DataTable};
use crate::plot::{draw_pvd, draw_traces, PvdInput, PvdPanel};

/// The MCMC proposal (`--proposal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Proposal {
    /// Sequence moves with their Hastings correction and a symmetric fraction move:
    /// samples the posterior exactly.
    #[default]
    Exact,
    /// pySuStaIn's moves exactly (no Hastings correction).
    Reference,
}

impl Proposal {
    /// The sampler's mode.
    pub fn mode(self) -> ProposalMode {
        match self {
            Proposal::Exact => ProposalMode::Exact,
            Proposal::Reference => ProposalMode::Reference,
        }
    }
}

/// The inputs of a fit: the data and either a model file or uniform thresholds.
#[derive(Debug, Clone, clap::Args)]
pub struct FitData {
    /// Data CSV with a header row: one row per subject, one column per biomarker
    /// (z-scores, larger = more abnormal; raw scores for an ordinal model with
    /// p_correct). With --model, the columns are taken by the model's biomarker
    /// names and other columns are ignored. Empty cells, NA, NaN and nan are missing
    /// values. Not needed for a mixture model (its model.json names its files).
    #[arg(long, value_name = "DATA.csv")]
    pub data: Option<PathBuf>,

    /// Model JSON: {"biomarkers": [names], "z_vals": [[thresholds per biomarker, 0 =
    /// no event]], "z_max": [one per biomarker]} [default: none; then --zvals and
    /// --zmax are required].
    #[arg(long, value_name = "MODEL.json", required_unless_present = "zvals", conflicts_with_all = ["zvals", "zmax"])]
    pub model: Option<PathBuf>,

    /// Comma-separated z-score thresholds used for every biomarker (e.g. 1,2,3),
    /// instead of --model; then every column of the data except the id (and
    /// stratification) column is a biomarker and must be numeric [default: none].
    #[arg(long, value_name = "Z1,Z2", value_delimiter = ',', requires = "zmax")]
    pub zvals: Option<Vec<f64>>,

    /// With --zvals: the z-score every biomarker reaches at the last stage
    /// [default: none].
    #[arg(long, value_name = "Z", requires = "zvals")]
    pub zmax: Option<f64>,

    /// Column of the data holding subject ids, used to label the outputs [default:
    /// none; subjects are numbered by their 1-based data row].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,

    /// How missing values enter the likelihood (marginalise: a missing value
    /// contributes nothing; reference: pySuStaIn's absolute log-likelihoods).
    #[arg(long, value_enum, default_value_t = Missing::Marginalise)]
    pub missing: Missing,
}

/// Loaded inputs of a fit.
pub struct Loaded {
    /// The events.
    pub events: EventSet,
    /// The data (ids, biomarker names, values, kept columns).
    pub data: DataTable,
}

impl FitData {
    /// `--data`, which z-score models need.
    pub fn data_path(&self) -> Result<&Path, CliError> {
        self.data.as_deref().ok_or_else(|| {
            CliError::new(
                "--data is required for a z-score model (--model without \"model\", or --zvals)",
            )
        })
    }

    /// The model family of `--model` (z-score with --zvals).
    pub fn family(&self) -> Result<Family, CliError> {
        match &self.model {
            Some(path) => families::family_of(path),
            None => Ok(Family::ZScore),
        }
    }

    /// Reads the model (or builds the uniform one) and the data, keeping the columns
    /// in `keep` (which are not biomarkers with --zvals).
    pub fn load(&self, keep: Option<&str>) -> Result<Loaded, CliError> {
        let keep_list: Vec<&str> = keep.into_iter().collect();
        let data_path = self.data_path()?;
        match (&self.model, &self.zvals, self.zmax) {
            (Some(model_path), _, _) => {
                let model = io::read_model(model_path)?;
                let data = io::read_data_keeping(
                    data_path,
                    DataColumns::Named(&model.biomarkers),
                    self.id_column.as_deref(),
                    &keep_list,
                )?;
                Ok(Loaded {
                    events: model.events,
                    data,
                })
            }
            (None, Some(zvals), Some(zmax)) => {
                let data = io::read_data_keeping(
                    data_path,
                    DataColumns::AllNumericExcept(keep),
                    self.id_column.as_deref(),
                    &keep_list,
                )?;
                let events = EventSet::uniform(data.biomarkers.len(), zvals, zmax)
                    .map_err(|e| CliError::new(format!("--zvals/--zmax: {e}")))?;
                let top = zvals.iter().copied().fold(0.0_f64, f64::max);
                if zmax <= top {
                    return Err(CliError::new(format!(
                        "--zmax {zmax} must be larger than the largest of --zvals ({top})"
                    )));
                }
                Ok(Loaded { events, data })
            }
            _ => Err(CliError::new("give --model, or --zvals and --zmax")),
        }
    }
}

/// The settings of a fit that `fit` and `cv` share.
#[derive(Debug, Clone, clap::Args)]
pub struct FitSettings {
    /// Largest number of subtypes; models with 1..K subtypes are fitted (at most 8).
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub subtypes: usize,

    /// E-M start points per subtype count.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub startpoints: usize,

    /// MCMC iterations per chain, after tuning.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub iterations: usize,

    /// Independent MCMC chains started from the E-M optimum.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub chains: usize,

    /// Iterations of each of the 3 step-size tuning passes before the chains.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub tuning_iterations: usize,

    /// Run seed: the whole run is determined by it (not by --threads).
    #[arg(long, value_name = "SEED", default_value_t = 42)]
    pub seed: u64,

    /// MCMC proposal.
    #[arg(long, value_enum, default_value_t = Proposal::Exact)]
    pub proposal: Proposal,

    /// Worker threads: E-M start points, chains, and with fewer chains than
    /// threads the last subtype count's chains split by subjects; results do not
    /// depend on it [default: the available cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl FitSettings {
    /// The library's settings (burn-in 0, thin 1; `fit` adjusts them).
    pub fn config(&self, missing: Missing) -> Result<FitConfig, CliError> {
        if self.tuning_iterations == 0 {
            // The step sizes are estimated from the tuning passes' samples: without
            // any, they collapse to their floors and the chains barely move.
            return Err(CliError::new(
                "--tuning-iterations must be at least 1 (the proposal step sizes are tuned on them)",
            ));
        }
        let mut config = FitConfig {
            n_startpoints: self.startpoints,
            max_subtypes: self.subtypes,
            n_iterations: self.iterations,
            n_chains: self.chains,
            tuning_iterations: self.tuning_iterations,
            seed: self.seed,
            proposal: self.proposal.mode(),
            missing: missing.convention(),
            ..FitConfig::default()
        };
        if let Some(t) = self.threads {
            config.threads = t;
        }
        crate::limits::check_fit_counts(&config)?;
        Ok(config)
    }
}

/// Arguments of `sustain fit`.
#[derive(Debug, Clone, clap::Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub input: FitData,

    #[command(flatten)]
    pub settings: FitSettings,

    /// Iterations dropped at the start of each chain before merging.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub burn_in: usize,

    /// Keep every N-th iteration when merging chains.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub thin: usize,

    /// Where likelihoods are evaluated. With gpu: E-M start points one after another
    /// and the MCMC chains in lockstep on the GPU (step-size tuning on the CPU).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,

    /// With --backend gpu: fail (exit status 2) instead of running on the CPU when no
    /// GPU can be used [default: off].
    #[arg(long)]
    pub require_gpu: bool,

    /// Output folder (created if absent): results.json, subjects_k{K}.csv,
    /// pvd_k{K}.svg/.png, trace_k{K}.svg/.png, and checkpoints/ (one file per
    /// finished subtype count). Without --resume, a folder that already holds
    /// results.json or checkpoints is refused.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Continue an interrupted (or finished) fit in --out: subtype counts saved in
    /// DIR/checkpoints are loaded instead of refitted, and saved E-M optima are not
    /// searched again (only their chains run); checkpoints made from other data or
    /// settings are refused [default: off].
    #[arg(long)]
    pub resume: bool,

    /// Replace a fit that --out already holds: its results.json, subjects CSVs,
    /// figures and checkpoints are removed before the new fit starts (a chain shard
    /// is written beside it, and `merge --force` replaces it) [default: off].
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,

    /// No progress lines on stderr [default: off].
    #[arg(long)]
    pub quiet: bool,
}

/// A progress line on stderr (ignored when it cannot be written).
///
/// On the CPU with several threads the chains of every subtype count run at once
/// after E-M, so one chain display per subtype count may be live at once.
pub fn progress_printer(quiet: bool, prefix: String) -> impl Fn(Progress) {
    type Handle = std::thread::JoinHandle<()>;
    let em: std::cell::RefCell<Option<Handle>> = Default::default();
    let chains: std::cell::RefCell<Vec<(usize, Handle)>> = Default::default();
    move |p| {
        if quiet && !matches!(p, Progress::Warning(_)) {
            return;
        }
        match &p {
            // E-M is done: let its display finish before the next line.
            Progress::McmcStarted { .. } => {
                if let Some(handle) = em.borrow_mut().take() {
                    let _ = handle.join();
                }
            }
            // A subtype count is done: so are its chains (and their display).
            Progress::ModelDone { n_subtypes, .. } => {
                if let Some(handle) = em.borrow_mut().take() {
                    let _ = handle.join();
                }
                let mut live = chains.borrow_mut();
                if let Some(i) = live.iter().position(|(k, _)| k == n_subtypes) {
                    let _ = live.remove(i).1.join();
                }
            }
            _ => {}
        }
        let line = match p {
            Progress::EmJobs {
                n_subtypes,
                progress,
            } => {
                *em.borrow_mut() =
                    Some(crate::bars::show_jobs(prefix.clone(), n_subtypes, progress));
                return;
            }
            Progress::Chains {
                n_subtypes,
                progress,
            } => {
                chains.borrow_mut().push((
                    n_subtypes,
                    crate::bars::show(prefix.clone(), n_subtypes, progress),
                ));
                return;
            }
            Progress::EmStarted { n_subtypes } => {
                format!("{prefix}{n_subtypes} subtype(s): E-M")
            }
            Progress::McmcStarted {
                n_subtypes,
                chains,
                iterations,
            } => format!(
                "{prefix}{n_subtypes} subtype(s): MCMC, {chains} chain(s) x {iterations} iterations"
            ),
            Progress::ModelDone {
                n_subtypes,
                resumed: true,
            } => {
                format!("{prefix}{n_subtypes} subtype(s): loaded from checkpoint")
            }
            Progress::ModelDone {
                n_subtypes,
                resumed: false,
            } => {
                format!("{prefix}{n_subtypes} subtype(s): done")
            }
            Progress::Warning(line) => {
                // Shown even with --quiet, once per process.
                crate::backend::warn_once(&line);
                return;
            }
        };
        eprint_line(&line);
    }
}

/// One line on stderr; a failure to write it is ignored.
pub fn eprint_line(line: &str) {
    crate::bars::eprint_line(line)
}

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", dir.display())))
}

/// The validated settings of `sustain fit` (shared with its chain shards).
pub fn fit_config(args: &FitArgs) -> Result<FitConfig, CliError> {
    let mut config = args.settings.config(args.input.missing)?;
    config.burn_in = args.burn_in;
    config.thin = args.thin;
    config.backend = args.backend.config();
    config.require_gpu = args.require_gpu;
    config
        .validate()
        .map_err(|e| CliError::new(format!("invalid settings: {e}")))?;
    check_samples_per_chain(&config)?;
    Ok(config)
}

/// Fewest samples per chain (after burn-in and thinning) that the convergence
/// diagnostics can use: split R-hat halves each chain, and ESS needs a few lags.
pub const MIN_SAMPLES_PER_CHAIN: usize = 4;

/// Refuses settings that leave fewer than [`MIN_SAMPLES_PER_CHAIN`] samples per
/// chain after burn-in and thinning (`config` is validated: burn-in < iterations,
/// thin >= 1).
pub fn check_samples_per_chain(config: &FitConfig) -> Result<(), CliError> {
    let kept = config.n_iterations.saturating_sub(config.burn_in);
    let samples = kept.div_ceil(config.thin.max(1));
    if samples >= MIN_SAMPLES_PER_CHAIN {
        return Ok(());
    }
    let min = MIN_SAMPLES_PER_CHAIN;
    let after_burn_in = if config.burn_in > 0 {
        format!(" after --burn-in {}", config.burn_in)
    } else {
        String::new()
    };
    Err(CliError::new(if kept < min {
        format!(
            "--iterations {} leaves {kept} sample(s) per chain{after_burn_in}; R-hat and ESS need \
             at least {min} per chain: raise --iterations{}",
            config.n_iterations,
            if config.burn_in > 0 {
                " or lower --burn-in"
            } else {
                ""
            }
        )
    } else {
        format!(
            "--thin {} leaves {samples} sample(s) per chain (of {kept} iterations{after_burn_in}); \
             R-hat and ESS need at least {min} per chain: use --thin {} or less",
            config.thin,
            (kept - 1) / (min - 1)
        )
    }))
}

/// Runs `sustain fit`.
pub fn run(args: &FitArgs) -> Result<(), CliError> {
    run_locked(args, None)
}

/// Checks every finished subtype count saved in `dir` (checkpoint_k{K}.json) before
/// `--resume` loads it: an edited or damaged file is refused with its name.
fn check_saved_models(dir: &Path, events: &EventOrder) -> Result<(), CliError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let k = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint_k")?.strip_suffix(".json"))
            .and_then(|k| k.parse::<usize>().ok());
        if let Some(k) = k {
            crate::results_file::check_checkpoint(&entry.path(), k, events)?;
        }
    }
    Ok(())
}

/// The refusal of a folder that holds a fit.
fn already_holds_a_fit(out: &Path) -> CliError {
    CliError::new(format!(
        "{} already holds a fit; pass --resume to continue it, --force to replace it, or choose another --out",
        out.display()
    ))
}

/// Makes `--out`, takes its lock (unless `lock` is given), refuses a folder that
/// holds a fit (or clears it with --force), removes temporary files of dead
/// processes, checks the saved models with --resume; the lock and checkpoints.
pub(crate) fn prepare_folder(
    args: &FitArgs,
    lock: Option<FolderLock>,
    events: &EventOrder,
) -> Result<(FolderLock, Checkpoints), CliError> {
    let out = &args.out;
    let checkpoint_dir = out.join("checkpoints");
    let holds_fit = || {
        // Temporary files of an interrupted write are no checkpoints.
        let has_checkpoints = std::fs::read_dir(&checkpoint_dir).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_none_or(|n| crate::folder_lock::temp_file_pid(n).is_none())
            })
        });
        out.join("results.json").exists() || has_checkpoints
    };
    create_dir(out)?;
    // One writer per folder, from before the first file is written to the end.
    let lock = match lock {
        Some(lock) => lock,
        None => FolderLock::take(out, FOLDER_LOCK)?,
    };
    if !args.resume && holds_fit() {
        if !args.force {
            return Err(already_holds_a_fit(out));
        }
        crate::overwrite::clear_fit_outputs(out)?;
    }
    // Temporary files of an interrupted run: no other process writes here now.
    remove_dead_temps(out, ".");
    remove_dead_temps(&checkpoint_dir, ".");
    if args.resume {
        check_saved_models(&checkpoint_dir, events)?;
    }
    let checkpoints =
        Checkpoints::new(&checkpoint_dir).map_err(|e| CliError::new(e.to_string()))?;
    Ok((lock, checkpoints))
}

/// Runs `sustain fit` holding `lock` on `--out` (taken here when `None`).
pub fn run_locked(args: &FitArgs, lock: Option<FolderLock>) -> Result<(), CliError> {
    let family = args.input.family()?;
    if family != Family::ZScore {
        return super::fit_family::run(args, family, lock);
    }
    let loaded = args.input.load(None)?;
    let mut config = fit_config(args)?;
    let n_subjects = loaded.data.dataset.n_subjects();
    if args.settings.subtypes > n_subjects {
        // More subtypes than subjects can only repeat subtypes.
        return Err(CliError::new(format!(
            "cannot fit {} subtypes: the data has only {n_subjects} subject(s); use --subtypes {n_subjects} or fewer",
            args.settings.subtypes
        )));
    }
    // The backend first: a required GPU that is missing fails before any output
    // folder is made. Without --require-gpu the fit falls back to the CPU after a
    // one-line notice (and records backend cpu).
    let selection = args.backend.select(args.require_gpu)?;
    if selection.notice.is_some() {
        config.backend = sustain::config::Backend::Cpu;
    }
    let engine = selection.engine;

    crate::limits::check_fit_memory(&config, n_subjects, loaded.events.n_events())?;
    let out = &args.out;
    let (_lock, checkpoints) = prepare_folder(args, lock, &loaded.events)?;

    let input = FitInput {
        events: &loaded.events,
        biomarkers: &loaded.data.biomarkers,
        data: &loaded.data.dataset,
    };
    // The fit's engine also stages the subjects (one GPU device for both). The
    // events as results.json will record them.
    let events = events_of(
        &loaded.events.z_vals(),
        loaded.events.z_max_all(),
        &results_path_of(out),
    )?;
    let folder = FitFolder::new(
        out,
        &loaded.data,
        &loaded.data.biomarkers,
        events,
        &config,
        &engine,
    )?;
    let printer = progress_printer(args.quiet, String::new());
    let (result, files) = std::thread::scope(|scope| {
        let early = EarlyFiles::new(&folder, scope, config.threads, config.max_subtypes);
        let progress = |p: Progress| {
            early.track(&p);
            printer(p)
        };
        let on_model = |model: &SubtypeModel| early.model_done(model);
        let result = fit_with_engine_observed(
            &input,
            &config,
            &engine,
            Some(&checkpoints),
            &progress,
            &on_model,
        )
        .map_err(|e| CliError::new(e.to_string()))?;
        let (claimed, mut written, running) = early.stop();
        let (json, rest) = folder.write_rest(&result, config.threads, &claimed);
        written.extend(rest);
        for job in running {
            written.extend(job.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        let files = finish_folder(out, json, written, result.models.len())?;
        Ok::<_, CliError>((result, files))
    })?;
    io::write_stdout(&summary(&result, &files))
}

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
struct ModelFiles {
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
struct FitFolder<'a> {
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
    fn new(
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
    fn model_files(&self, model: &SubtypeModel, threads: usize) -> ModelFiles {
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
    fn models_files(
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
    fn write_rest(
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

/// The text of `out/results.json`.
pub(crate) fn results_json_text(out: &Path, result: &FitResult) -> Result<String, CliError> {
    let mut text = serde_json::to_string(result).map_err(|e| {
        CliError::new(format!(
            "cannot write {}: {e}",
            results_path_of(out).display()
        ))
    })?;
    text.push('\n');
    Ok(text)
}

/// Writes results.json once every model's outputs are written (it marks the fit
/// as finished, so a failed figure leaves no finished-looking folder); the files
/// written, in the order `summary` lists them (results.json, the subjects CSVs, the
/// figures of each model), or the first error in that order.
fn finish_folder(
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
    let mut files = vec![path.clone()];
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
fn both<A, B: Send>(parallel: bool, a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
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
struct EarlyFiles<'scope, 'env> {
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
    fn new(
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
    fn track(&self, p: &Progress) {
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
    fn model_done(&self, model: &SubtypeModel) {
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
    fn stop(self) -> (Vec<bool>, Vec<(usize, ModelFiles)>, Vec<Job<'scope>>) {
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
fn events_of(z_vals: &[Vec<f64>], z_max: &[f64], path: &Path) -> Result<EventSet, CliError> {
    EventSet::new(z_vals, z_max)
        .map_err(|e| CliError::in_file(path, format!("invalid z_vals/z_max: {e}")))
}

/// Reads `DIR/results.json`, refusing another schema version or contents that do
/// not fit its model (see [`crate::results_file`]).
pub fn read_fit_folder(dir: &Path) -> Result<FitResult, CliError> {
    let path = results_path_of(dir);
    if !path.is_file() {
        return Err(CliError::new(format!(
            "{} is not a fit folder (no results.json)",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::read(&path, &e))?;
    // The schema version, then everything staging and the figures index.
    Ok(crate::results_file::parse(&path, &text)?.0)
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
fn stage(
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
        biomarker_names: biomarkers,
        events: event_list,
        value_name,
        panels: &panels,
    };
    files.extend(draw_pvd(&out.join(format!("pvd_k{k}")), &input).map_err(|e| CliError::new(e.0))?);
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

/// The text printed at the end of `fit`.
pub fn summary(result: &FitResult, files: &[PathBuf]) -> String {
    let mut s = String::new();
    for m in &result.models {
        let f: Vec<String> = m.mean_f.iter().map(|v| format!("{v:.3}")).collect();
        let d = &m.diagnostics;
        let _ = writeln!(
            s,
            "{} subtype(s): ML log-likelihood {:.3}, mean fractions [{}], R-hat {:.3}, {}",
            m.n_subtypes,
            m.ml_loglike,
            f.join(", "),
            d.rhat_loglike,
            if d.converged {
                "converged"
            } else {
                "NOT converged"
            }
        );
        for w in &d.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
    }
    let _ = writeln!(s, "files written:");
    for f in files {
        let _ = writeln!(s, "  {}", f.display());
    }
    s
}
