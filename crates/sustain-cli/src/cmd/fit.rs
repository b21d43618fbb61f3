//! `sustain fit`: fits models with 1..K subtypes (E-M, then MCMC chains), and writes
//! `results.json`, one subjects CSV and the figures per subtype count
//! ([`crate::fit_outputs`]). Also holds what `cv`, `demo`, `merge` and `slurm` share
//! of it: the fit options, reading the inputs, and preparing the output folder.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use sustain::checkpoint::Checkpoints;
use sustain::config::{default_proposal, tempering_rungs, FitConfig, UntilConverged};
use sustain::fit::{FitInput, Progress};
use sustain::model::{EventOrder, EventSet};
use sustain::results::SubtypeModel;
use sustain::sampler::ProposalMode;
use sustain::Fit;

use crate::backend::BackendArgs;
use crate::cmd::shared_args::{IdColumn, Quiet, Threads};
use crate::cmd::Missing;
use crate::error::CliError;
use crate::families::{self, Family};
use crate::fit_outputs::{events_of, finish_folder, results_path_of, EarlyFiles, FitFolder};
use crate::folder_lock::{remove_dead_temps, FolderLock, FOLDER_LOCK};
use crate::io::create_dir;
use crate::io::{self, DataColumns, DataTable};
use crate::printing::{progress_printer, summary};

/// The MCMC proposal (`--proposal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Proposal {
    /// Sequence moves with their Hastings correction and a symmetric fraction move:
    /// samples the posterior exactly.
    #[default]
    Exact,
    /// pySuStaIn's moves exactly (no Hastings correction).
    Reference,
    /// Exact, one block a step: one subtype's sequence (never an event's own
    /// position) or the fractions.
    Blockwise,
}

impl Proposal {
    /// The sampler's mode.
    pub fn mode(self) -> ProposalMode {
        match self {
            Proposal::Exact => ProposalMode::Exact,
            Proposal::Reference => ProposalMode::Reference,
            Proposal::Blockwise => ProposalMode::Blockwise,
        }
    }

    /// The name `--proposal` takes.
    pub fn name(self) -> &'static str {
        match self {
            Proposal::Exact => "exact",
            Proposal::Reference => "reference",
            Proposal::Blockwise => "blockwise",
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

    #[command(flatten)]
    pub ids: IdColumn,

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
                    self.ids.name(),
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
                    self.ids.name(),
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

    /// A fixed number of MCMC iterations per chain, after tuning: the fixed-length
    /// runs of earlier versions, sample for sample [default: none; the chains run
    /// in rounds that each add about half the iterations so far until every quantity converges, or until
    /// --max-seconds or --max-iterations].
    #[arg(long, value_name = "N", conflicts_with_all = ["max_seconds", "max_iterations"])]
    pub iterations: Option<usize>,

    /// Without --iterations: the most seconds of tuning and chains per subtype
    /// count; chains stopped by it keep what they sampled [default: 300].
    #[arg(long, value_name = "S")]
    pub max_seconds: Option<f64>,

    /// Without --iterations: the most iterations per chain, all rounds together
    /// [default: 2000000].
    #[arg(long, value_name = "N")]
    pub max_iterations: Option<usize>,

    /// Replica exchange: each chain a ladder of N tempered copies that swap
    /// states (only the untempered one is kept); costs N times the work per
    /// iteration, helps chains that sit in different modes; 1 turns it off
    /// [default: 2 without --iterations, 1 with it].
    #[arg(long, value_name = "N")]
    pub tempering: Option<usize>,

    /// Independent MCMC chains started from the E-M optimum.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub chains: usize,

    /// Iterations of each of the 3 step-size tuning passes before the chains.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub tuning_iterations: usize,

    /// Run seed: the whole run is determined by it (not by --threads).
    #[arg(long, value_name = "SEED", default_value_t = 42)]
    pub seed: u64,

    /// MCMC proposal [default: blockwise when the chains run until they converge;
    /// exact with --iterations, as in earlier versions].
    #[arg(long, value_enum)]
    pub proposal: Option<Proposal>,

    #[command(flatten)]
    pub threads: Threads,
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
        let (n_iterations, until_converged) = self.chain_length()?;
        let proposal = self.proposal(self.iterations.is_none());
        let mut config = FitConfig {
            n_startpoints: self.startpoints,
            max_subtypes: self.subtypes,
            n_iterations,
            until_converged,
            n_chains: self.chains,
            tuning_iterations: self.tuning_iterations,
            seed: self.seed,
            proposal,
            missing: missing.convention(),
            ..FitConfig::default()
        };
        if let Some(t) = self.threads.threads {
            config.threads = t;
        }
        crate::limits::check_fit_counts(&config)?;
        Ok(config)
    }
}

impl FitSettings {
    /// `--proposal`, or [`default_proposal`].
    pub fn proposal(&self, until_converged: bool) -> ProposalMode {
        self.proposal
            .map_or_else(|| default_proposal(until_converged), Proposal::mode)
    }
}

/// Iterations of the first round when chains run until they converge.
pub const FIRST_ROUND: usize = 5_000;
/// Default --max-seconds.
pub const DEFAULT_MAX_SECONDS: f64 = 300.0;
/// Default --max-iterations.
pub const DEFAULT_MAX_ITERATIONS: usize = 2_000_000;

impl FitSettings {
    /// `(n_iterations, until_converged)`: --iterations N is a fixed length N (with
    /// --tempering above 1, one round of N with a ladder); without it the chains
    /// run until they converge, from a first round of [`FIRST_ROUND`] iterations,
    /// within --max-seconds and --max-iterations.
    fn chain_length(&self) -> Result<(usize, Option<UntilConverged>), CliError> {
        if let Some(n) = self.iterations {
            let ladder = self
                .tempering
                .filter(|&r| r != 1)
                .map(|r| UntilConverged::one_round(n, r));
            return Ok((n, ladder));
        }
        let max_seconds = self.max_seconds.unwrap_or(DEFAULT_MAX_SECONDS);
        if !(max_seconds.is_finite() && max_seconds > 0.0) {
            return Err(CliError::new(format!(
                "--max-seconds {max_seconds} must be a positive number of seconds"
            )));
        }
        let max_iterations = self.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
        crate::limits::check_bound(
            "--max-iterations",
            max_iterations,
            crate::limits::MAX_ITERATIONS,
        )?;
        if max_iterations < 100 {
            return Err(CliError::new(format!(
                "--max-iterations {max_iterations} is too few to judge convergence (at least 100)"
            )));
        }
        Ok((
            FIRST_ROUND.min(max_iterations),
            Some(UntilConverged {
                max_iterations,
                max_seconds: Some(max_seconds),
                tempering_rungs: tempering_rungs(self.tempering),
                ..UntilConverged::default()
            }),
        ))
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

    #[command(flatten)]
    pub backend: BackendArgs,

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

    #[command(flatten)]
    pub progress: Quiet,
}

/// The data summary of a fit's `--data` for its run record (z-score models; the
/// others' data are not one table of values): the data are read again, after the
/// fit, so that the fit itself is untouched.
pub fn data_summary(input: &FitData) -> Option<crate::report::run_record::DataSummary> {
    if input.family().ok()? != Family::ZScore {
        return None;
    }
    let loaded = input.load(None).ok()?;
    Some(crate::report::run_record::DataSummary::of(
        &loaded.data.dataset,
    ))
}

/// The validated settings of `sustain fit` (shared with its chain shards).
pub fn fit_config(args: &FitArgs) -> Result<FitConfig, CliError> {
    let mut config = args.settings.config(args.input.missing)?;
    config.burn_in = args.burn_in;
    config.thin = args.thin;
    if let Some(u) = config
        .until_converged
        .as_mut()
        .filter(|_| args.settings.iterations.is_none())
    {
        // The first round keeps samples after the burn-in.
        config.n_iterations = config.n_iterations.max(2 * args.burn_in);
        u.max_iterations = u.max_iterations.max(config.n_iterations);
    }
    on_backend(config, args.backend)
}

/// `config` on `backend`, validated and with enough samples per chain: the last
/// step of every fitting command's settings.
pub fn on_backend(mut config: FitConfig, backend: BackendArgs) -> Result<FitConfig, CliError> {
    config.backend = backend.backend.config();
    config.require_gpu = backend.require_gpu;
    config
        .validate()
        .map_err(|e| CliError::new(format!("invalid settings: {e}")))?;
    check_samples_per_chain(&config)?;
    Ok(config)
}

/// Fewest samples per chain (after burn-in and thinning) that the convergence
/// diagnostics can use: split R-hat halves each chain, and ESS needs a few lags.
pub const MIN_SAMPLES_PER_CHAIN: usize = 4;

/// Why chain shards (`what`: the option or command) refuse `config`, whose
/// chains have rounds or ladders.
pub fn shard_refusal(what: &str, config: &FitConfig) -> CliError {
    CliError::new(if config.fixed_length() {
        format!("{what} runs plain chains: leave out --tempering (a ladder's copies are not shared between shards)")
    } else {
        format!(
            "{what} runs chains of a fixed length: give --iterations N (a shard cannot see the \
             other shards' chains to judge convergence)"
        )
    })
}

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
    crate::overwrite::refuse_foreign_samples(out, args.force)?;
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

/// Refuses more subtypes than subjects (they could only repeat subtypes).
pub(crate) fn check_subtypes(args: &FitArgs, n_subjects: usize) -> Result<(), CliError> {
    if args.settings.subtypes <= n_subjects {
        return Ok(());
    }
    Err(CliError::new(format!(
        "cannot fit {} subtypes: the data has only {n_subjects} subject(s); use --subtypes {n_subjects} or fewer",
        args.settings.subtypes
    )))
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
    check_subtypes(args, n_subjects)?;
    // The backend first: a required GPU that is missing fails before any output
    // folder is made. Without --require-gpu the fit falls back to the CPU after a
    // one-line notice (and records backend cpu).
    let selection = args.backend.select()?;
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
    let printer = progress_printer(args.progress.quiet, String::new());
    let (result, files) = std::thread::scope(|scope| {
        let early = EarlyFiles::new(&folder, scope, config.threads, config.max_subtypes);
        let progress = |p: Progress| {
            early.track(&p);
            printer(p)
        };
        let on_model = |model: &SubtypeModel| early.model_done(model);
        let result = Fit::zscore(&input, config.clone())
            .engine(&engine)
            .checkpoints(&checkpoints)
            .on_progress(&progress)
            .on_model(&on_model)
            .run()
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
