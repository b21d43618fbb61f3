//! `sustain slurm fit|cv`: the shards of a run as a SLURM job array plus a combine
//! job that depends on it (`afterok`). Every job runs a plain `sustain` command
//! line (`sustain fit ... --chain-shard I/N`, `sustain cv ... --fold I`, `sustain
//! merge`, `sustain cv-combine`), so any other scheduler can run the same lines.
//! Resubmitting the same command submits only the shards whose file is missing.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::cv::CvArgs;
use crate::cmd::fit::{fit_config, FitArgs};
use crate::cmd::merge::shard_path;
use crate::cmd::shared_args::Threads;
use crate::error::CliError;
use crate::io;
use crate::io::create_dir;

/// Arguments of `sustain slurm`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmArgs {
    #[command(subcommand)]
    pub job: SlurmJob,
}

/// What runs on the cluster.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SlurmJob {
    /// `sustain fit` as a job array of chain shards (`fit --chain-shard I/N`), then
    /// `sustain merge`. Takes every option of `sustain fit`.
    Fit(Box<SlurmFitArgs>),
    /// `sustain cv` as a job array of folds (`cv --fold I`), then `sustain
    /// cv-combine`. Takes every option of `sustain cv` except --fold.
    Cv(Box<SlurmCvArgs>),
}

/// Options of the batch scripts (standard `sbatch` options only).
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmOptions {
    /// SLURM partition (#SBATCH --partition) [default: the cluster's default].
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,

    /// Time limit of each job (#SBATCH --time, e.g. 02:00:00) [default: the
    /// partition's].
    #[arg(long, value_name = "T")]
    pub time: Option<String>,

    /// CPUs of each job (#SBATCH --cpus-per-task); also passed as --threads unless
    /// --threads is given [default: the cluster's default].
    #[arg(long, value_name = "C")]
    pub cpus_per_task: Option<usize>,

    /// Write the scripts into DIR/slurm/ without submitting them [default: off].
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `sustain slurm fit`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmFitArgs {
    #[command(flatten)]
    pub fit: FitArgs,

    #[command(flatten)]
    pub slurm: SlurmOptions,

    /// Number of chain shards, one array task each [default: --chains, one chain
    /// per task].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

/// Arguments of `sustain slurm cv`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmCvArgs {
    #[command(flatten)]
    pub cv: CvArgs,

    #[command(flatten)]
    pub slurm: SlurmOptions,

    /// One array task per subtype count of each fold (`cv --fold I --subtype-count
    /// K`: folds x max-subtypes tasks, task t = fold t / max + count t % max + 1)
    /// instead of one per fold: more, shorter jobs [default: off].
    #[arg(long)]
    pub per_subtype_count: bool,
}

/// Options of `sustain slurm` that are not passed on to the jobs: with a value, and
/// flags.
const OWN_WITH_VALUE: [&str; 4] = ["--partition", "--time", "--cpus-per-task", "--shards"];
const OWN_FLAGS: [&str; 2] = ["--dry-run", "--per-subtype-count"];

/// The command-line arguments after `slurm fit` / `slurm cv`, without the options
/// that only `sustain slurm` knows.
pub fn job_arguments(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if OWN_FLAGS.contains(&a.as_str()) {
            continue;
        }
        if OWN_WITH_VALUE.contains(&a.as_str()) {
            it.next();
            continue;
        }
        if OWN_WITH_VALUE
            .iter()
            .any(|o| a.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// `s` quoted for bash (unchanged when it needs no quotes).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,+-@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Indices as a SLURM array spec: `0-3,5,7-8`.
pub fn array_spec(indices: &[usize]) -> String {
    sustain::sampler::chain_summary::compress_runs(indices, ",")
}

/// Everything the two scripts need.
struct Plan {
    /// "fit" or "cv".
    kind: &'static str,
    /// Absolute output folder.
    out: PathBuf,
    /// Shard count.
    n: usize,
    /// Shards whose file is missing.
    missing: Vec<usize>,
    /// The job arguments (after the subcommand).
    args: Vec<String>,
    /// The shard option appended to the array task's command line.
    shard_arg: String,
    /// The combine command (after the executable).
    combine: Vec<String>,
    /// What one shard is, in words.
    unit: &'static str,
}

/// Runs `sustain slurm`.
pub fn run(args: &SlurmArgs) -> Result<(), CliError> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a: OsString| a.to_string_lossy().into_owned())
        .collect();
    // argv: sustain slurm fit|cv ARGS...
    let start = argv
        .iter()
        .position(|a| a == "slurm")
        .map_or(argv.len(), |p| (p + 2).min(argv.len()));
    let mut job_args = job_arguments(&argv[start..]);
    let slurm = match &args.job {
        SlurmJob::Fit(a) => &a.slurm,
        SlurmJob::Cv(a) => &a.slurm,
    };
    check_sbatch_options(slurm)?;
    match &args.job {
        SlurmJob::Fit(a) => {
            // The inputs are read as the jobs will read them, so that bad input
            // fails here rather than in every task.
            let family = a.fit.input.family()?;
            if family == crate::families::Family::ZScore {
                drop(a.fit.input.load(None)?);
            } else {
                drop(crate::cmd::fit_family::load(&a.fit.input, family)?);
            }
            let config = fit_config(&a.fit)?;
            if config.until_converged.is_some() {
                return Err(crate::cmd::fit::shard_refusal("slurm fit", &config));
            }
            let n = a.shards.unwrap_or(config.n_chains);
            if n == 0 || n > config.n_chains {
                return Err(CliError::new(format!(
                    "--shards {n} must be between 1 and --chains ({})",
                    config.n_chains
                )));
            }
            add_threads(&mut job_args, a.fit.settings.threads, &a.slurm);
            let out = absolute_out(&a.fit.out)?;
            let missing = (0..n)
                .filter(|&i| !shard_path(&out, i, n).exists())
                .collect();
            submit(
                &Plan {
                    kind: "fit",
                    out: out.clone(),
                    n,
                    missing,
                    args: job_args,
                    shard_arg: format!("--chain-shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\""),
                    combine: combine_args("merge", &out, &a.slurm),
                    unit: "chain shard",
                },
                &a.slurm,
            )
        }
        SlurmJob::Cv(a) => {
            if a.cv.fold.is_some() || a.cv.subtype_count.is_some() {
                return Err(CliError::new(
                    "--fold and --subtype-count are set by the job array (one task per fold, or per subtype count of a fold with --per-subtype-count); leave them out",
                ));
            }
            let config = crate::cmd::cv::cv_config(&a.cv)?;
            let family = a.cv.input.family()?;
            let folds = if family == crate::families::Family::ZScore {
                let loaded = a.cv.input.load(crate::cmd::cv::kept_column(&a.cv))?;
                crate::cmd::cv::resolve_folds(&a.cv, &loaded, config.seed)?
                    .0
                    .len()
            } else {
                crate::cmd::cv_family::n_folds(&a.cv, family, config.seed)?
            };
            add_threads(&mut job_args, a.cv.settings.threads, &a.slurm);
            let out = absolute_out(&a.cv.out)?;
            let whole = |i: usize| out.join(format!("fold_{i}.json")).exists();
            if a.per_subtype_count {
                let kmax = config.max_subtypes;
                let n = folds * kmax;
                let missing = (0..n)
                    .filter(|&t| {
                        let (i, k) = (t / kmax, t % kmax + 1);
                        !whole(i) && !crate::cmd::cv::part_path(&out, i, k).exists()
                    })
                    .collect();
                return submit(
                    &Plan {
                        kind: "cv",
                        out: out.clone(),
                        n,
                        missing,
                        args: job_args,
                        shard_arg: format!(
                            "--fold \"$((SLURM_ARRAY_TASK_ID / {kmax}))\" --subtype-count \"$((SLURM_ARRAY_TASK_ID % {kmax} + 1))\""
                        ),
                        combine: combine_args("cv-combine", &out, &a.slurm),
                        unit: "fold part",
                    },
                    &a.slurm,
                );
            }
            let missing = (0..folds).filter(|&i| !whole(i)).collect();
            submit(
                &Plan {
                    kind: "cv",
                    out: out.clone(),
                    n: folds,
                    missing,
                    args: job_args,
                    shard_arg: "--fold \"${SLURM_ARRAY_TASK_ID}\"".into(),
                    combine: combine_args("cv-combine", &out, &a.slurm),
                    unit: "fold",
                },
                &a.slurm,
            )
        }
    }
}

fn add_threads(job_args: &mut Vec<String>, threads: Threads, slurm: &SlurmOptions) {
    if let (None, Some(c)) = (threads.threads, slurm.cpus_per_task) {
        job_args.push("--threads".into());
        job_args.push(c.to_string());
    }
}

fn combine_args(cmd: &str, out: &Path, slurm: &SlurmOptions) -> Vec<String> {
    let mut v = vec![cmd.to_string(), "--out".into(), out.display().to_string()];
    if let (Some(c), "merge") = (slurm.cpus_per_task, cmd) {
        v.push("--threads".into());
        v.push(c.to_string());
    }
    v
}

fn absolute_out(out: &Path) -> Result<PathBuf, CliError> {
    create_dir(out)?;
    std::fs::canonicalize(out)
        .map_err(|e| CliError::new(format!("cannot resolve {}: {e}", out.display())))
}

/// The `#SBATCH` header shared by both scripts (`slurm` checked by
/// [`check_sbatch_options`]).
fn header(
    name: &str,
    out_file: &Path,
    err_file: &Path,
    slurm: &SlurmOptions,
) -> Result<String, CliError> {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --output={}", sbatch_path(out_file)?);
    let _ = writeln!(s, "#SBATCH --error={}", sbatch_path(err_file)?);
    if let Some(p) = &slurm.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(t) = &slurm.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    if let Some(c) = slurm.cpus_per_task {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    Ok(s)
}

/// Refuses option values that would not stay one value of their `#SBATCH` line:
/// partition names and time limits are letters, digits and `_ . , : -` only (no
/// spaces, quotes, `$`, backticks or line breaks).
pub fn check_sbatch_options(slurm: &SlurmOptions) -> Result<(), CliError> {
    for (option, value) in [("--partition", &slurm.partition), ("--time", &slurm.time)] {
        let Some(value) = value else { continue };
        let ok = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.,:-".contains(c));
        if !ok {
            return Err(CliError::new(format!(
                "{option} {}: only letters, digits and _ . , : - may appear in it (it becomes an #SBATCH line)",
                escaped(value)
            )));
        }
    }
    if let Some(c) = slurm.cpus_per_task {
        if c == 0 {
            return Err(CliError::new("--cpus-per-task must be at least 1"));
        }
        crate::limits::check_bound("--cpus-per-task", c, crate::limits::MAX_THREADS)?;
    }
    Ok(())
}

/// A path as the value of an `#SBATCH` line: as it is, or in double quotes when it
/// holds spaces; refused when it holds a line break or other control character,
/// or a double quote or backslash that quoting cannot carry.
fn sbatch_path(path: &Path) -> Result<String, CliError> {
    let text = path.to_str().ok_or_else(|| {
        CliError::new(format!(
            "{}: a folder name that is not UTF-8 cannot go into a SLURM script",
            path.display()
        ))
    })?;
    check_script_text(text)?;
    if text.contains(['"', '\\']) {
        return Err(CliError::new(format!(
            "{}: a folder name with a double quote or backslash cannot go into an #SBATCH line; choose another --out",
            escaped(text)
        )));
    }
    if text.chars().any(char::is_whitespace) {
        Ok(format!("\"{text}\""))
    } else {
        Ok(text.to_string())
    }
}

/// Refuses text with a line break or another control character: in a comment or
/// an `#SBATCH` line of the script it would start a line of its own.
fn check_script_text(text: &str) -> Result<(), CliError> {
    if text.chars().any(char::is_control) {
        return Err(CliError::new(format!(
            "{}: a path with a line break or control character cannot go into a SLURM script; choose another",
            escaped(text)
        )));
    }
    Ok(())
}

/// `text` with control characters escaped (`\n`, `\u{0}`), for messages.
fn escaped(text: &str) -> String {
    text.chars().flat_map(char::escape_debug).collect()
}

fn command_line(exe: &str, args: &[String]) -> String {
    std::iter::once(shell_quote(exe))
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes both scripts and (without --dry-run) submits them.
fn submit(plan: &Plan, slurm: &SlurmOptions) -> Result<(), CliError> {
    let dir = plan.out.join("slurm");
    let logs = dir.join("logs");
    create_dir(&logs)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find the sustain executable: {e}")))?;
    let exe = exe.display().to_string();
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::new(format!("cannot read the current folder: {e}")))?;
    let cd = format!("cd {}\n", shell_quote(&cwd.display().to_string()));
    // The folder also appears in comment lines of the scripts.
    check_script_text(&plan.out.display().to_string())?;

    let shards_path = dir.join("shards.sbatch");
    let combine_path = dir.join("combine.sbatch");
    let name = format!("sustain-{}", plan.kind);
    let mut shards = header(
        &name,
        &logs.join("shard_%A_%a.out"),
        &logs.join("shard_%A_%a.err"),
        slurm,
    )?;
    let array = array_spec(&plan.missing);
    if !plan.missing.is_empty() {
        let _ = writeln!(shards, "#SBATCH --array={array}");
    }
    let _ = write!(
        shards,
        "# Written by `sustain slurm {kind}`: array task I runs {unit} I of {n} and writes\n\
         # its file into {out}. Only the {unit}s whose file was missing are in --array.\n\
         # Any scheduler can run this line with SLURM_ARRAY_TASK_ID = 0..{last}.\n\
         set -eu\n{cd}exec {cmd} {shard}\n",
        kind = plan.kind,
        unit = plan.unit,
        n = plan.n,
        out = plan.out.display(),
        last = plan.n - 1,
        cmd = command_line(
            &exe,
            &std::iter::once(plan.kind.to_string())
                .chain(plan.args.iter().cloned())
                .collect::<Vec<_>>()
        ),
        shard = plan.shard_arg,
    );
    let mut combine = header(
        &format!("{name}-combine"),
        &logs.join("combine_%j.out"),
        &logs.join("combine_%j.err"),
        slurm,
    )?;
    let _ = write!(
        combine,
        "# Written by `sustain slurm {kind}`: combines the {n} {unit} files of {out}\n\
         # (submitted with --dependency=afterok on the array job).\n\
         set -eu\n{cd}exec {cmd}\n",
        kind = plan.kind,
        n = plan.n,
        unit = plan.unit,
        out = plan.out.display(),
        cmd = command_line(&exe, &plan.combine),
    );
    io::write_atomic(&shards_path, shards.as_bytes())?;
    io::write_atomic(&combine_path, combine.as_bytes())?;

    let mut text = format!(
        "wrote {} ({} of {} {}s to run{}) and {}\n",
        shards_path.display(),
        plan.missing.len(),
        plan.n,
        plan.unit,
        if plan.missing.is_empty() {
            String::new()
        } else {
            format!(": array {array}")
        },
        combine_path.display()
    );
    if slurm.dry_run {
        let _ = writeln!(
            text,
            "dry run: nothing submitted; to submit:\n  sbatch --parsable {}\n  sbatch --dependency=afterok:<array job id> {}",
            shards_path.display(),
            combine_path.display()
        );
        return io::write_stdout(&text);
    }
    let mut ids = Vec::new();
    let combine_id = if plan.missing.is_empty() {
        let _ = writeln!(
            text,
            "every {} file is there: submitting only the combine job",
            plan.unit
        );
        sbatch(&[], &combine_path)?
    } else {
        let array_id = sbatch(&[], &shards_path)?;
        let _ = writeln!(
            text,
            "submitted array job {array_id} (tasks {array})\n  logs: {}",
            logs.join(format!("shard_{array_id}_<task>.out/.err"))
                .display()
        );
        ids.push(array_id.clone());
        sbatch(&[format!("--dependency=afterok:{array_id}")], &combine_path)?
    };
    let _ = writeln!(
        text,
        "submitted combine job {combine_id}\n  logs: {}",
        logs.join(format!("combine_{combine_id}.out/.err"))
            .display()
    );
    ids.push(combine_id);
    let _ = writeln!(
        text,
        "follow: squeue -j {}\nif tasks fail: rerun this command; only the missing {}s are resubmitted",
        ids.join(","),
        plan.unit
    );
    io::write_stdout(&text)
}

/// `sbatch --parsable EXTRA SCRIPT`; returns the job id.
fn sbatch(extra: &[String], script: &Path) -> Result<String, CliError> {
    let out =
        Command::new("sbatch")
            .arg("--parsable")
            .args(extra)
            .arg(script)
            .output()
            .map_err(|e| {
                CliError::new(format!(
                "cannot run sbatch ({e}); the scripts are in {} (use --dry-run to only write them)",
                script.parent().map_or(String::new(), |p| p.display().to_string())
            ))
            })?;
    if !out.status.success() {
        return Err(CliError::new(format!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(CliError::new(format!(
            "sbatch {} printed no job id",
            script.display()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_options_are_removed() {
        let args: Vec<String> = [
            "--data",
            "d.csv",
            "--partition",
            "p",
            "--time=1:00",
            "--dry-run",
            "--chains",
            "4",
            "--shards",
            "2",
            "--cpus-per-task=2",
            "--out",
            "o",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            job_arguments(&args),
            ["--data", "d.csv", "--chains", "4", "--out", "o"]
        );
    }

    #[test]
    fn arrays_and_quotes() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[1, 3, 4, 7]), "1,3-4,7");
        assert_eq!(array_spec(&[]), "");
        assert_eq!(shell_quote("/a/b.csv"), "/a/b.csv");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
