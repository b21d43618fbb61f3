//! Chain shards: `sustain fit --chain-shard I/N` runs one shard of the chains and
//! writes `DIR/shards/shard_{I}of{N}.json`; `sustain merge --out DIR` combines every
//! shard into the outputs a single `sustain fit` with the same settings writes.
//!
//! Every shard recomputes the E-M optimum and the step-size tuning (both are
//! determined by the seed, so every shard gets the same ones) and then runs only its
//! chains; chain `i` always uses the random stream `(seed, CHAIN, i)`, so the merged
//! chains are exactly those of a single run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sustain::config::FitConfig;
use sustain::fit::{FitInput, ModelInput, ShardModel};
use sustain::model::SustainModel;
use sustain::Fit;

use crate::cmd::fit::{fit_config, FitArgs, FitData};
use crate::cmd::fit_family::write_outputs;
use crate::cmd::shared_args::{IdColumn, NoReport, Threads};
use crate::cmd::Missing;
use crate::error::CliError;
use crate::families::Family;
use crate::family_model::FamilyJob;
use crate::fit_outputs::write_fit_folder;
use crate::folder_lock::{remove_dead_temps, FolderLock, FOLDER_LOCK};
use crate::io;
use crate::io::create_dir;
use crate::printing::{eprint_line, progress_printer, summary};

/// Arguments of `sustain fit`: the fit, and optionally one shard of its chains.
#[derive(Debug, Clone, clap::Args)]
pub struct FitCommandArgs {
    #[command(flatten)]
    pub fit: FitArgs,

    /// Run only chain shard I of N (0-based): chains I*C/N up to (I+1)*C/N of the
    /// C = --chains chains, with the same random streams as a single run, and write
    /// DIR/shards/shard_{I}of{N}.json (E-M and tuning are recomputed by every shard).
    /// Combine the shards with `sustain merge --out DIR` [default: all chains].
    #[arg(long, value_name = "I/N")]
    pub chain_shard: Option<String>,

    #[command(flatten)]
    pub report: NoReport,
}

/// Arguments of `sustain merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Folder of `sustain fit --chain-shard I/N --out DIR`: the shards are read from
    /// DIR/shards/, and results.json, subjects_k{K}.csv and the figures are written
    /// to DIR, exactly as a single `sustain fit` writes them.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub threads: Threads,

    /// Replace a finished fit in DIR made from other data or settings (its
    /// results.json, subjects CSVs, figures and checkpoints) [default: off].
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub report: NoReport,
}

/// A chain shard `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// Shard index, 0-based.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl ShardSpec {
    /// Parses `I/N` (0 <= I < N).
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let bad = || {
            CliError::new(format!(
                "--chain-shard {text}: expected I/N with 0 <= I < N (e.g. 3/4)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// The chains of this shard out of `n_chains`.
    pub fn chains(&self, n_chains: usize) -> std::ops::Range<usize> {
        self.index * n_chains / self.count..(self.index + 1) * n_chains / self.count
    }
}

/// The file of shard `index` of `count` in the fit folder `out`.
pub fn shard_path(out: &Path, index: usize, count: usize) -> PathBuf {
    out.join("shards")
        .join(format!("shard_{index}of{count}.json"))
}

/// The inputs of a fit as given on the command line (paths made absolute), so that
/// `merge` can read the same data again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInputs {
    /// --data.
    pub data: Option<PathBuf>,
    /// --model.
    pub model: Option<PathBuf>,
    /// --zvals.
    pub zvals: Option<Vec<f64>>,
    /// --zmax.
    pub zmax: Option<f64>,
    /// --id-column.
    pub id_column: Option<String>,
    /// --missing.
    pub missing: String,
}

impl ShardInputs {
    fn of(input: &FitData) -> Self {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Self {
            data: input.data.as_deref().map(abs),
            model: input.model.as_deref().map(abs),
            zvals: input.zvals.clone(),
            zmax: input.zmax,
            id_column: input.ids.id_column.clone(),
            missing: input.missing.name().to_string(),
        }
    }

    fn fit_data(&self) -> Result<FitData, CliError> {
        let missing = <Missing as clap::ValueEnum>::from_str(&self.missing, true)
            .map_err(|e| CliError::new(format!("missing convention: {e}")))?;
        Ok(FitData {
            data: self.data.clone(),
            model: self.model.clone(),
            zvals: self.zvals.clone(),
            zmax: self.zmax,
            ids: IdColumn {
                id_column: self.id_column.clone(),
            },
            missing,
        })
    }
}

/// A shard file (`DIR/shards/shard_{I}of{N}.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    /// Schema version of the results.
    pub version: u32,
    /// Shard index.
    pub shard: usize,
    /// Number of shards.
    pub n_shards: usize,
    /// Chains of this shard: `[first, end)`.
    pub chains: [usize; 2],
    /// Fingerprint of data and settings (without the shard), as in results.json.
    pub fingerprint: String,
    /// The inputs, to read the data again when merging.
    pub inputs: ShardInputs,
    /// The settings (without threads and shard).
    pub settings: FitConfig,
    /// One entry per subtype count: E-M optimum, steps, raw chain runs, timings.
    pub models: Vec<ShardModel>,
    /// The file beside this one that holds the runs' traces (`None`: shard files
    /// written before it, with the traces inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<sustain::sampler::SamplesFile>,
}

fn read_shard(path: &Path) -> Result<ShardFile, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::read(path, &e))?;
    let invalid =
        |e: serde_json::Error| CliError::in_file(path, format!("not a valid shard file: {e}"));
    let value: serde_json::Value = serde_json::from_str(&text).map_err(invalid)?;
    crate::results_file::check_version(&value, "shard")
        .map_err(|why| CliError::in_file(path, why))?;
    let mut shard: ShardFile = crate::nanjson::from_value(value).map_err(invalid)?;
    if let Some(file) = &shard.samples {
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::shard_samples::load(&mut shard.models, file, dir)?;
    }
    Ok(shard)
}

/// Runs `sustain fit`, or one chain shard of it with --chain-shard.
pub fn run_fit(args: &FitCommandArgs) -> Result<(), CliError> {
    match &args.chain_shard {
        None => {
            crate::cmd::fit::run(&args.fit)?;
            let data = crate::cmd::fit::data_summary(&args.fit.input);
            crate::report::after_run(&args.fit.out, true, data, args.report.no_report);
            Ok(())
        }
        Some(spec) => run_shard(&args.fit, ShardSpec::parse(spec)?),
    }
}

/// One shard's E-M and chains for subtype counts 1..=max, of a model loaded once.
type ShardRun<'a> = Box<
    dyn FnOnce(
            &FitConfig,
            &dyn Fn(sustain::fit::Progress),
        ) -> Result<Vec<ShardModel>, sustain::Error>
        + 'a,
>;

/// The fingerprint, size and shard job of a fit of a loaded model with `config`.
struct ShardJob<'c> {
    config: &'c FitConfig,
}

impl<'a> FamilyJob<'a> for ShardJob<'_> {
    type Output = (String, usize, usize, ShardRun<'a>);
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, _: &'a [String]) -> Self::Output {
        (
            sustain::checkpoint::fingerprint_of(&input.identity, self.config),
            input.model.n_subjects(),
            input.model.order().n_events(),
            Box::new(move |c, p| Fit::new(input, c.clone()).on_progress(p).run_chain_shard()),
        )
    }
}

/// Runs chain shard `spec` of the fit `args`.
fn run_shard(args: &FitArgs, spec: ShardSpec) -> Result<(), CliError> {
    let mut config = fit_config(args)?;
    if config.until_converged.is_some() {
        return Err(crate::cmd::fit::shard_refusal("--chain-shard", &config));
    }
    if config.backend != sustain::config::Backend::Cpu {
        return Err(CliError::new(
            "--chain-shard runs on the CPU backend only (use --backend cpu)",
        ));
    }
    if spec.count > config.n_chains {
        return Err(CliError::new(format!(
            "--chain-shard {}/{}: {} shards of {} chain(s) would leave shards without chains",
            spec.index, spec.count, spec.count, config.n_chains
        )));
    }
    // The model of any family: its fingerprint (without the shard: chain_range is
    // not serialised), size, and the shard's E-M and chains.
    let family = args.input.family()?;
    let (zscore, other);
    let (fingerprint, n_subjects, n_events, shard): (String, usize, usize, ShardRun) =
        if family == Family::ZScore {
            zscore = args.input.load(None)?;
            let input = FitInput {
                events: &zscore.events,
                biomarkers: &zscore.data.biomarkers,
                data: &zscore.data.dataset,
            };
            (
                sustain::checkpoint::fingerprint(&input, &config),
                zscore.data.dataset.n_subjects(),
                zscore.events.n_events(),
                Box::new(move |c, p| {
                    Fit::zscore(&input, c.clone())
                        .on_progress(p)
                        .run_chain_shard()
                }),
            )
        } else {
            other = crate::cmd::fit_family::load(&args.input, family)?;
            other.run(ShardJob { config: &config })
        };
    crate::limits::check_fit_memory(
        &FitConfig {
            chain_range: Some(spec.chains(config.n_chains)),
            ..config.clone()
        },
        n_subjects,
        n_events,
    )?;
    let path = shard_path(&args.out, spec.index, spec.count);
    refuse_other_fit(&args.out, &fingerprint, args.force, "--chain-shard")?;
    let shards_dir = args.out.join("shards");
    create_dir(&shards_dir)?;
    // Shards of one fit run at once into one folder: each locks its own file.
    let shard_name = format!("shard_{}of{}", spec.index, spec.count);
    let _lock = FolderLock::take(&shards_dir, &format!(".{shard_name}.lock"))?;
    remove_dead_temps(&shards_dir, &format!(".{shard_name}."));
    if path.exists() {
        let saved = read_shard(&path)?;
        if saved.fingerprint == fingerprint
            && saved.shard == spec.index
            && saved.n_shards == spec.count
        {
            if !args.progress.quiet {
                eprint_line(&format!(
                    "shard {}/{}: reusing {}",
                    spec.index,
                    spec.count,
                    path.display()
                ));
            }
            return io::write_stdout(&format!(
                "shard {} of {} already done: {}\n",
                spec.index,
                spec.count,
                path.display()
            ));
        }
        return Err(CliError::new(format!(
            "{} was made from different data, settings or seed; delete it or choose another --out",
            path.display()
        )));
    }
    let chains = spec.chains(config.n_chains);
    config.chain_range = Some(chains.clone());
    let progress = progress_printer(
        args.progress.quiet,
        format!("shard {}/{}: ", spec.index, spec.count),
    );
    let mut models = shard(&config, &progress).map_err(|e| CliError::new(e.to_string()))?;
    config.chain_range = None;
    // The traces first, beside the JSON that names them.
    let samples = crate::shard_samples::write(&mut models, &path.with_extension("npz"))?;
    let file = ShardFile {
        version: sustain::results::SCHEMA_VERSION,
        shard: spec.index,
        n_shards: spec.count,
        chains: [chains.start, chains.end],
        fingerprint,
        inputs: ShardInputs::of(&args.input),
        settings: config,
        models,
        samples: Some(samples),
    };
    io::write_json(&path, &file)?;
    io::write_stdout(&format!(
        "shard {} of {} (chains {}..{}) written to {}\nwhen every shard has run: sustain merge --out {}\n",
        spec.index,
        spec.count,
        chains.start,
        chains.end,
        path.display(),
        args.out.display()
    ))
}

/// Refuses, unless `force`, to write into `out` when it holds a finished fit
/// (results.json) of other data or settings than `fingerprint`: a shard or merge
/// there would replace it. A fit of the same data and settings (an earlier merge of
/// these shards, or the same single fit) is the same result and not refused.
fn refuse_other_fit(
    out: &Path,
    fingerprint: &str,
    force: bool,
    what: &str,
) -> Result<(), CliError> {
    let path = out.join("results.json");
    if force || !path.exists() {
        return Ok(());
    }
    let saved = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("fingerprint")?.as_str().map(str::to_string));
    if saved.as_deref() == Some(fingerprint) {
        return Ok(());
    }
    let flag = if what == "merge" {
        "pass --force to replace it"
    } else {
        "pass --force to run the shard anyway (then `merge --force` replaces that fit)"
    };
    Err(CliError::new(format!(
        "{} holds a finished fit of other data or settings ({}); choose another --out, or {flag}",
        out.display(),
        path.display()
    )))
}

/// The shard files in `DIR/shards`: `(index, count, path)`.
pub fn list_shards(out: &Path) -> Vec<(usize, usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(out.join("shards")) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (i, n) = name
                .strip_prefix("shard_")?
                .strip_suffix(".json")?
                .split_once("of")?;
            Some((i.parse().ok()?, n.parse().ok()?, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Runs `sustain merge`.
pub fn run_merge(args: &MergeArgs) -> Result<(), CliError> {
    if let Some(t) = args.threads.threads {
        crate::limits::check_bound("--threads", t, crate::limits::MAX_THREADS)?;
    }
    let found = list_shards(&args.out);
    let Some((_, count, _)) = found.first() else {
        return Err(CliError::new(format!(
            "{} holds no shards/shard_IofN.json files (run `sustain fit --chain-shard I/N --out {}` first)",
            args.out.display(),
            args.out.display()
        )));
    };
    let count = *count;
    if let Some((_, other, _)) = found.iter().find(|(_, n, _)| *n != count) {
        return Err(CliError::new(format!(
            "{} holds shards of two splits ({count} and {other} shards); delete the files of one",
            args.out.join("shards").display()
        )));
    }
    let mut shards: Vec<ShardFile> = Vec::new();
    for (i, _, path) in &found {
        let s = read_shard(path)?;
        if s.shard != *i || s.n_shards != count {
            return Err(CliError::in_file(
                path,
                format!("holds shard {}/{}, not {i}/{count}", s.shard, s.n_shards),
            ));
        }
        if let Some(first) = shards.first() {
            if s.fingerprint != first.fingerprint {
                return Err(CliError::new(format!(
                    "{} was made from different data, settings or seed than {} (fingerprint {} vs {}); shards of one fit must share all of them",
                    path.display(),
                    found[0].2.display(),
                    &s.fingerprint[..12.min(s.fingerprint.len())],
                    &first.fingerprint[..12.min(first.fingerprint.len())]
                )));
            }
        }
        shards.push(s);
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !found.iter().any(|(j, _, _)| j == i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::new(format!(
            "missing shard{} {} of {count} in {} (run `sustain fit ... --chain-shard I/{count}` for {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            args.out.join("shards").display(),
            if missing.len() > 1 { "each" } else { "it" }
        )));
    }
    let first = &shards[0];
    let mut config = first.settings.clone();
    config.threads = args
        .threads
        .threads
        .unwrap_or_else(|| FitConfig::default().threads)
        .max(1);
    let fit_data = first.inputs.fit_data()?;
    let family = fit_data.family()?;
    if family != Family::ZScore {
        return merge_family(args, &fit_data, family, &config, shards);
    }
    let loaded = fit_data.load(None)?;
    let input = FitInput {
        events: &loaded.events,
        biomarkers: &loaded.data.biomarkers,
        data: &loaded.data.dataset,
    };
    let fingerprint = sustain::checkpoint::fingerprint(&input, &config);
    if fingerprint != first.fingerprint {
        return Err(CliError::new(format!(
            "the data or model ({}) changed since the shards ran (fingerprint {} vs {})",
            first
                .inputs
                .data
                .as_deref()
                .unwrap_or(Path::new("--data"))
                .display(),
            &fingerprint[..12],
            &first.fingerprint[..12.min(first.fingerprint.len())]
        )));
    }
    let lock = lock_for_merge(args, &fingerprint)?;
    let threads = config.threads;
    let models: Vec<Vec<ShardModel>> = shards.into_iter().map(|s| s.models).collect();
    let result = Fit::zscore(&input, config.clone())
        .merge_shards(models)
        .map_err(|e| CliError::new(format!("{}: {e}", args.out.display())))?;
    let files = write_fit_folder(
        &args.out,
        &result,
        &loaded.data,
        threads,
        &sustain::backend::Engine::Cpu,
    )?;
    io::write_stdout(&summary(&result, &files))?;
    // The report takes the folder's lock itself.
    drop(lock);
    let data = crate::report::run_record::DataSummary::of(&loaded.data.dataset);
    crate::report::after_run(&args.out, true, Some(data), args.report.no_report);
    Ok(())
}

/// Takes the folder's lock for `merge` and clears a finished fit of other inputs
/// there (with --force; refused without).
fn lock_for_merge(args: &MergeArgs, fingerprint: &str) -> Result<FolderLock, CliError> {
    let lock = FolderLock::take(&args.out, FOLDER_LOCK)?;
    if let Err(e) = refuse_other_fit(&args.out, fingerprint, false, "merge") {
        if !args.force {
            return Err(e);
        }
        crate::overwrite::clear_fit_outputs(&args.out)?;
    }
    crate::overwrite::refuse_foreign_samples(&args.out, args.force)?;
    remove_dead_temps(&args.out, ".");
    Ok(lock)
}

/// `sustain merge` of the shards of a mixture, ordinal or mixed-type fit.
fn merge_family(
    args: &MergeArgs,
    fit_data: &FitData,
    family: Family,
    config: &FitConfig,
    shards: Vec<ShardFile>,
) -> Result<(), CliError> {
    let model_path = fit_data
        .model
        .as_deref()
        .ok_or_else(|| CliError::new("the shards name no --model"))?;
    crate::cmd::fit_family::load(fit_data, family)?.run(MergeJob {
        args,
        model_path,
        config,
        shards,
    })
}

/// Merges `shards` of a fit of a loaded model (read from `model_path`) into
/// `args.out`.
struct MergeJob<'j> {
    args: &'j MergeArgs,
    model_path: &'j Path,
    config: &'j FitConfig,
    shards: Vec<ShardFile>,
}

impl<'a> FamilyJob<'a> for MergeJob<'_> {
    type Output = Result<(), CliError>;
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, ids: &'a [String]) -> Self::Output {
        let (args, config, shards) = (self.args, self.config, self.shards);
        let fingerprint = sustain::checkpoint::fingerprint_of(&input.identity, config);
        if fingerprint != shards[0].fingerprint {
            return Err(CliError::new(format!(
                "the model ({}) or its data changed since the shards ran (fingerprint {} vs {})",
                self.model_path.display(),
                &fingerprint[..12],
                &shards[0].fingerprint[..12.min(shards[0].fingerprint.len())]
            )));
        }
        let lock = lock_for_merge(args, &fingerprint)?;
        let models: Vec<Vec<ShardModel>> = shards.into_iter().map(|s| s.models).collect();
        let result = Fit::new(input.clone(), config.clone())
            .merge_shards(models)
            .map_err(|e| CliError::new(format!("{}: {e}", args.out.display())))?;
        let files = write_outputs(&args.out, &input, ids, &result, config.threads)?;
        io::write_stdout(&summary(&result, &files))?;
        drop(lock);
        crate::report::after_run(&args.out, true, None, args.report.no_report);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_cover_the_chains() {
        let s = ShardSpec::parse("3/4").unwrap();
        assert_eq!(s.chains(16), 12..16);
        for n in 1..=5 {
            let mut all = Vec::new();
            for i in 0..n {
                all.extend(ShardSpec { index: i, count: n }.chains(7));
            }
            assert_eq!(all, (0..7).collect::<Vec<_>>());
        }
        assert!(ShardSpec::parse("4/4").is_err());
        assert!(ShardSpec::parse("1").is_err());
        assert!(ShardSpec::parse("0/0").is_err());
    }
}
