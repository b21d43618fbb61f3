//! `sustain cv` and `sustain cv-combine`: cross-validation (CVIC), fold by fold so
//! that folds can run as separate jobs, then combined.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sustain::config::FitConfig;
use sustain::cv::{
    assemble_fold, combine, make_folds, run_fold, run_fold_part, CvResult, CvRun, FoldPart,
    FoldResult,
};
use sustain::fit::FitInput;

use crate::backend::BackendArgs;
use crate::cmd::fit::{self, FitData, FitSettings};
use crate::cmd::shared_args::{NoReport, Quiet};
use crate::error::CliError;
use crate::folder_lock::{remove_dead_temps, FolderLock, FOLDER_LOCK};
use crate::io;
use crate::io::create_dir;
use crate::plot::draw_cvic;
use crate::printing::{eprint_line, progress_printer};

/// Arguments of `sustain cv`.
#[derive(Debug, Clone, clap::Args)]
pub struct CvArgs {
    #[command(flatten)]
    pub input: FitData,

    #[command(flatten)]
    pub settings: FitSettings,

    /// Number of folds (2 to the number of subjects). With --fold-column, the
    /// number of distinct labels (checked if given).
    #[arg(long, value_name = "K", required_unless_present = "fold_column")]
    pub folds: Option<usize>,

    /// Column naming each subject's test fold (user-given folds: labels that are
    /// all integers are ordered numerically, others as text; fold i holds the
    /// subjects of the i-th label). Read from --data; for a mixture model, --data
    /// is then a CSV of its subjects in the same order holding the column
    /// [default: folds made from --folds and --seed].
    #[arg(long, value_name = "COLUMN", conflicts_with = "stratify_by")]
    pub fold_column: Option<String>,

    /// Run only this fold (0-based) and write DIR/fold_{I}.json; combine the folds
    /// later with `sustain cv-combine` [default: every fold, then combine].
    #[arg(long, value_name = "I")]
    pub fold: Option<usize>,

    /// With --fold: run only this subtype count of the fold (E-M for 1..=K, chains
    /// for K alone) and write DIR/fold_{I}_k{K}.json; `sustain cv-combine` joins
    /// the parts of a fold (equal to the whole fold bit for bit) [default: every
    /// subtype count].
    #[arg(long, value_name = "K", requires = "fold")]
    pub subtype_count: Option<usize>,

    /// Column whose values the folds are stratified by (each value's subjects
    /// spread evenly over the folds), read from --data as --fold-column is
    /// [default: none; a seeded shuffle].
    #[arg(long, value_name = "COLUMN")]
    pub stratify_by: Option<String>,

    /// Output folder (created if absent): fold_{i}.json, and, when every fold has
    /// run, cv.json and cvic.svg/.png. A fold file of the same data and settings
    /// already there is reused; one of other data or settings is an error.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub backend: BackendArgs,

    #[command(flatten)]
    pub progress: Quiet,

    #[command(flatten)]
    pub report: NoReport,
}

/// Arguments of `sustain cv-combine`.
#[derive(Debug, Clone, clap::Args)]
pub struct CvCombineArgs {
    /// Folder with the fold_{i}.json files of `sustain cv --fold I` (or, for a fold
    /// without one, its fold_{i}_k{k}.json parts of `--subtype-count K`); cv.json
    /// and cvic.svg/.png are written there.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub report: NoReport,
}

fn fold_path(out: &Path, i: usize) -> PathBuf {
    out.join(format!("fold_{i}.json"))
}

/// File of subtype count `k` of fold `i`.
pub fn part_path(out: &Path, i: usize, k: usize) -> PathBuf {
    out.join(format!("fold_{i}_k{k}.json"))
}

/// The data column `sustain cv` needs besides the biomarkers (labels to stratify
/// by, or the user's folds).
pub fn kept_column(args: &CvArgs) -> Option<&str> {
    args.stratify_by.as_deref().or(args.fold_column.as_deref())
}

/// The folds of a run (test rows of each) and what identifies them in the
/// fingerprint of fold files: made from --folds, --seed and --stratify-by, or read
/// from --fold-column.
pub fn resolve_folds(
    args: &CvArgs,
    loaded: &crate::cmd::fit::Loaded,
    seed: u64,
) -> Result<(Vec<Vec<usize>>, String), CliError> {
    folds_of(
        args,
        loaded.data.dataset.n_subjects(),
        &loaded.data.extra,
        seed,
    )
}

/// [`resolve_folds`] of `n` subjects whose `--data` columns [`kept_column`] are
/// in `columns` (of any model family).
pub fn folds_of(
    args: &CvArgs,
    n: usize,
    columns: &BTreeMap<String, Vec<String>>,
    seed: u64,
) -> Result<(Vec<Vec<usize>>, String), CliError> {
    let column = |name: &str| {
        columns
            .get(name)
            .cloned()
            .ok_or_else(|| CliError::new(format!("column '{name}' was not read")))
    };
    if let Some(name) = &args.fold_column {
        let labels = column(name)?;
        let folds = sustain::cv::folds_from_labels(&labels).map_err(|e| {
            let why = match e {
                sustain::Error::Config(why) => why.to_string(),
                other => other.to_string(),
            };
            CliError::new(format!(
                "{}: column {name}: {why}",
                args.input
                    .data
                    .as_deref()
                    .unwrap_or(Path::new("--data"))
                    .display()
            ))
        })?;
        if let Some(k) = args.folds {
            if k != folds.len() {
                return Err(CliError::new(format!(
                    "--folds {k} but --fold-column {name} names {} folds",
                    folds.len()
                )));
            }
        }
        // FNV-1a over the assignment: stable across builds, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (i, f) in folds.iter().enumerate() {
            for &m in f {
                for byte in (i as u64)
                    .to_le_bytes()
                    .into_iter()
                    .chain((m as u64).to_le_bytes())
                {
                    h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        return Ok((
            folds.clone(),
            format!("folds{}-column:{name}:{h:016x}", folds.len()),
        ));
    }
    let k = args.folds.unwrap_or(0);
    let labels = match &args.stratify_by {
        Some(name) => Some(column(name)?),
        None => None,
    };
    let folds = make_folds(n, k, labels.as_deref(), seed)
        .map_err(|e| CliError::new(format!("--folds: {e}")))?;
    Ok((
        folds,
        format!(
            "folds{k}-stratify:{}",
            args.stratify_by.as_deref().unwrap_or("")
        ),
    ))
}

/// The validated settings of `sustain cv` (shared with `sustain slurm cv`).
pub fn cv_config(args: &CvArgs) -> Result<FitConfig, CliError> {
    let config = args.settings.config(args.input.missing)?;
    fit::on_backend(config, args.backend)
}

/// Refuses a fold whose training part (the subjects outside it) is too small to
/// split into `subtypes` subtypes, before anything runs.
pub(crate) fn check_training_part(
    train: usize,
    fold: usize,
    subtypes: usize,
) -> Result<(), CliError> {
    if subtypes >= 2 && train < 2 {
        return Err(CliError::new(format!(
            "cannot fit {subtypes} subtypes in fold {fold}: its training part (the subjects \
             of the other folds) has only {train} subject(s), and a split needs at least 2; \
             use --subtypes 1, or folds that leave more subjects for training"
        )));
    }
    Ok(())
}

/// Runs `sustain cv`.
pub fn run(args: &CvArgs) -> Result<(), CliError> {
    let family = args.input.family()?;
    if family != crate::families::Family::ZScore {
        return super::cv_family::run(args, family);
    }
    let loaded = args.input.load(kept_column(args))?;
    let config = cv_config(args)?;
    let (folds, fold_id) = resolve_folds(args, &loaded, config.seed)?;
    let n_subjects = loaded.data.dataset.n_subjects();
    check_run(args, &config, &folds, n_subjects, loaded.events.n_events())?;
    if args.backend.require_gpu {
        // Fails before the output folder is made when the GPU is missing (every fold
        // selects its backend again).
        args.backend.select()?;
    }
    let input = FitInput {
        events: &loaded.events,
        biomarkers: &loaded.data.biomarkers,
        data: &loaded.data.dataset,
    };
    let fingerprint = format!(
        "{}-{fold_id}",
        sustain::checkpoint::fingerprint(&input, &config),
    );
    let data = crate::report::run_record::DataSummary::of(&loaded.data.dataset);
    let cv = CvRun {
        config: &config,
        folds: &folds,
        fingerprint: &fingerprint,
    };
    run_folds(
        args,
        &cv,
        Some(data),
        |i, k, progress| run_fold_part(&input, &cv, i, k, progress),
        |i, progress| run_fold(&input, &cv, i, progress),
    )
}

/// Checks what `sustain cv` (of any model family) is asked to run before anything
/// runs: --fold and --subtype-count in range, the memory of a fit of `n_subjects`
/// subjects and `n_events` events, and every fold to run leaving enough subjects
/// to train on.
pub(crate) fn check_run(
    args: &CvArgs,
    config: &FitConfig,
    folds: &[Vec<usize>],
    n_subjects: usize,
    n_events: usize,
) -> Result<(), CliError> {
    let n_folds = folds.len();
    if let Some(i) = args.fold {
        if i >= n_folds {
            return Err(CliError::new(format!(
                "--fold {i} is out of range: folds are numbered 0..{} ({n_folds} folds)",
                n_folds - 1,
            )));
        }
    }
    if let Some(k) = args.subtype_count {
        if k == 0 || k > config.max_subtypes {
            return Err(CliError::new(format!(
                "--subtype-count {k} is out of range 1..={} (--subtypes)",
                config.max_subtypes
            )));
        }
    }
    crate::limits::check_fit_memory(config, n_subjects, n_events)?;
    for i in (0..n_folds).filter(|&i| args.fold.is_none_or(|f| f == i)) {
        let k = args.subtype_count.unwrap_or(config.max_subtypes);
        check_training_part(n_subjects - folds[i].len(), i, k)?;
    }
    Ok(())
}

/// The folder (made here), its lock and the folds of `sustain cv` (of any model
/// family): runs the folds `args` asks for with `fold` (reusing the fold files of
/// the same run), or one part of a fold with `part` (--fold I --subtype-count K),
/// then writes the combined results and the report when every fold has run.
pub fn run_folds(
    args: &CvArgs,
    cv: &CvRun,
    data: Option<crate::report::run_record::DataSummary>,
    part: impl FnOnce(usize, usize, &dyn Fn(sustain::fit::Progress)) -> Result<FoldPart, sustain::Error>,
    fold: impl Fn(usize, &dyn Fn(sustain::fit::Progress)) -> Result<FoldResult, sustain::Error>,
) -> Result<(), CliError> {
    create_dir(&args.out)?;
    let (folds, fingerprint) = (cv.folds, cv.fingerprint);
    let n_folds = folds.len();
    // Folds (and their parts) of a SLURM array run at once into one folder: each
    // locks its own file; a run of every fold locks the folder.
    let lock_name = match (args.fold, args.subtype_count) {
        (Some(i), Some(k)) => format!(".fold_{i}_k{k}.lock"),
        (Some(i), None) => format!(".fold_{i}.lock"),
        (None, _) => FOLDER_LOCK.to_string(),
    };
    let lock = FolderLock::take(&args.out, &lock_name)?;
    let own_temps = match (args.fold, args.subtype_count) {
        (Some(i), Some(k)) => format!(".fold_{i}_k{k}."),
        (Some(i), None) => format!(".fold_{i}."),
        // cv.json and the CVIC figures (fold files may be another run's).
        (None, _) => ".cv".to_string(),
    };
    remove_dead_temps(&args.out, &own_temps);
    if let (Some(i), Some(k)) = (args.fold, args.subtype_count) {
        let result = run_part(args, folds, i, k, fingerprint, part);
        drop(lock);
        return result;
    }
    let todo: Vec<usize> = match args.fold {
        Some(i) => vec![i],
        None => (0..n_folds).collect(),
    };
    let mut results = Vec::new();
    for &i in &todo {
        let path = fold_path(&args.out, i);
        if path.exists() {
            let saved = read_fold(&path)?;
            if saved.fingerprint == fingerprint && saved.test == folds[i] && saved.fold == i {
                if !args.progress.quiet {
                    eprint_line(&format!("fold {i}: reusing {}", path.display()));
                }
                results.push(saved);
                continue;
            }
            return Err(CliError::new(format!(
                "{} was made from different data, settings or folds; delete it or choose another --out",
                path.display()
            )));
        }
        if !args.progress.quiet {
            eprint_line(&format!("fold {i} of {n_folds}"));
        }
        let progress = progress_printer(args.progress.quiet, format!("fold {i}: "));
        let result = fold(i, &progress).map_err(|e| CliError::new(format!("fold {i}: {e}")))?;
        io::write_json(&path, &result)?;
        results.push(result);
    }
    let mut text = String::new();
    for r in &results {
        let ll: Vec<String> = r.loglike.iter().map(|v| format!("{v:.3}")).collect();
        text.push_str(&format!(
            "fold {}: test log-likelihood per subtype count [{}] ({})\n",
            r.fold,
            ll.join(", "),
            fold_path(&args.out, r.fold).display()
        ));
    }
    if args.fold.is_none() {
        text.push_str(&write_combined(&args.out, &results)?);
    } else {
        text.push_str("run the other folds, then `sustain cv-combine --out DIR`\n");
    }
    io::write_stdout(&text)?;
    if args.fold.is_none() {
        // The report takes the folder's lock itself.
        drop(lock);
        crate::report::after_run(&args.out, false, data, args.report.no_report);
    }
    Ok(())
}

/// `sustain cv --fold I --subtype-count K`: one part of a fold, run by `part`
/// (reused when its file is already there from the same run).
fn run_part(
    args: &CvArgs,
    folds: &[Vec<usize>],
    i: usize,
    k: usize,
    fingerprint: &str,
    part: impl FnOnce(usize, usize, &dyn Fn(sustain::fit::Progress)) -> Result<FoldPart, sustain::Error>,
) -> Result<(), CliError> {
    let path = part_path(&args.out, i, k);
    if path.exists() {
        let saved: FoldPart = read_json(&path, "fold part")?;
        if saved.fingerprint == fingerprint
            && saved.test == folds[i]
            && saved.fold == i
            && saved.n_subtypes == k
        {
            if !args.progress.quiet {
                eprint_line(&format!(
                    "fold {i}, {k} subtype(s): reusing {}",
                    path.display()
                ));
            }
            return io::write_stdout(&part_summary(&saved, &path));
        }
        return Err(CliError::new(format!(
            "{} was made from different data, settings or folds; delete it or choose another --out",
            path.display()
        )));
    }
    if !args.progress.quiet {
        eprint_line(&format!("fold {i} of {}, {k} subtype(s) only", folds.len()));
    }
    let progress = progress_printer(args.progress.quiet, format!("fold {i}: "));
    let part = part(i, k, &progress).map_err(|e| CliError::new(format!("fold {i}: {e}")))?;
    io::write_json(&path, &part)?;
    io::write_stdout(&part_summary(&part, &path))
}

fn part_summary(part: &FoldPart, path: &Path) -> String {
    format!(
        "fold {}, {} subtype(s): test log-likelihood {:.3} ({})\n\
         run the other parts and folds, then `sustain cv-combine --out DIR`\n",
        part.fold,
        part.n_subtypes,
        part.loglike,
        path.display()
    )
}

/// Combines folds into DIR/cv.json and DIR/cvic.svg/.png; returns the summary text.
fn write_combined(out: &Path, folds: &[FoldResult]) -> Result<String, CliError> {
    let cv: CvResult =
        combine(folds).map_err(|e| CliError::new(format!("{}: {e}", out.display())))?;
    let path = out.join("cv.json");
    io::write_json(&path, &cv)?;
    let figures = draw_cvic(&out.join("cvic"), &cv.cvic, &cv.loglike_matrix)
        .map_err(|e| CliError::new(e.0))?;
    let cvic: Vec<String> = cv.cvic.iter().map(|v| format!("{v:.3}")).collect();
    let best = cv
        .cvic
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(s, _)| s + 1);
    let mut text = format!(
        "CVIC per subtype count (lower is better): [{}]\n",
        cvic.join(", ")
    );
    if let Some(b) = best {
        text.push_str(&format!("lowest CVIC: {b} subtype(s)\n"));
    }
    text.push_str(&format!("files written:\n  {}\n", path.display()));
    for f in figures {
        text.push_str(&format!("  {}\n", f.display()));
    }
    Ok(text)
}

/// Runs `sustain cv-combine`.
pub fn run_combine(args: &CvCombineArgs) -> Result<(), CliError> {
    let lock = if args.out.is_dir() {
        let lock = FolderLock::take(&args.out, FOLDER_LOCK)?;
        remove_dead_temps(&args.out, ".cv");
        Some(lock)
    } else {
        None
    };
    let entries = std::fs::read_dir(&args.out)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", args.out.display())))?;
    // fold_{i}.json: whole folds; fold_{i}_k{k}.json: parts.
    let mut whole: Vec<(usize, PathBuf)> = Vec::new();
    let mut parts: std::collections::BTreeMap<usize, Vec<PathBuf>> = Default::default();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("fold_"))
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        match stem.split_once("_k") {
            None => {
                if let Ok(i) = stem.parse::<usize>() {
                    whole.push((i, path));
                }
            }
            Some((i, k)) => {
                if let (Ok(i), Ok(_)) = (i.parse::<usize>(), k.parse::<usize>()) {
                    parts.entry(i).or_default().push(path);
                }
            }
        }
    }
    whole.sort();
    if whole.is_empty() && parts.is_empty() {
        return Err(CliError::new(format!(
            "{} holds no fold_*.json files (run `sustain cv --fold I` first)",
            args.out.display()
        )));
    }
    let mut folds = whole
        .iter()
        .map(|(_, p)| read_fold(p))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, paths) in &parts {
        if whole.iter().any(|(w, _)| w == i) {
            continue;
        }
        let mut list = paths.clone();
        list.sort();
        let loaded = list
            .iter()
            .map(|p| read_json::<FoldPart>(p, "fold part"))
            .collect::<Result<Vec<_>, _>>()?;
        let fold = assemble_fold(&loaded)
            .map_err(|e| CliError::new(format!("{}: {e}", args.out.display())))?;
        folds.push(fold);
    }
    io::write_stdout(&write_combined(&args.out, &folds)?)?;
    // The report takes the folder's lock itself.
    drop(lock);
    crate::report::after_run(&args.out, false, None, args.report.no_report);
    Ok(())
}

/// Reads a JSON file written by `sustain cv` (non-finite numbers were written as
/// null); `what` names the kind of file in errors.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::read(path, &e))?;
    crate::nanjson::from_str(&text)
        .map_err(|e| CliError::in_file(path, format!("not a valid {what} file: {e}")))
}

/// Reads a fold file.
fn read_fold(path: &Path) -> Result<FoldResult, CliError> {
    read_json(path, "fold")
}
