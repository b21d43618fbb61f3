//! `sustain`: SuStaIn (Subtype and Stage Inference) from the command line.
//!
//! Every subcommand lives in its own module under `cmd/` with an `Args` struct and a
//! `run` function; adding one is a variant of [`Command`] and a match arm in `main`.
//! Errors are printed as one line, `error: <message>`, on stderr, with exit status 2;
//! so are clap's usage errors (see [`parse`]).

mod backend;
mod bars;
mod cmd;
mod error;
mod families;
mod families_mixed;
mod family_model;
mod fit_outputs;
mod folder_lock;
mod io;
mod limits;
mod nanjson;
mod overwrite;
// Figures; not every drawing helper is used by the subcommands.
#[allow(dead_code, unused_imports)]
mod plot;
mod printing;
mod quantiles;
mod rate_meter;
mod report;
mod results_file;
mod shard_samples;
mod suggest;
mod zscore;

use std::io::Write;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::{CliError, EXIT_USER_ERROR};

/// SuStaIn: subtypes and stages of a progressive disease from cross-sectional
/// z-score data.
#[derive(Debug, Parser)]
#[command(name = "sustain", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Log-likelihood of data under given sequences and subtype fractions, in total
    /// and per subject (JSON on stdout).
    Evaluate(cmd::evaluate::EvaluateArgs),
    /// Raw biomarker values to z-scores against the controls, after regressing out
    /// covariates (the pySuStaIn tutorial's preparation).
    Zscore(cmd::zscore::ZscoreArgs),
    /// Fit models with 1..K subtypes (E-M, then MCMC chains) and write results.json,
    /// each subject's subtype and stage, and figures to a folder.
    Fit(Box<cmd::merge::FitCommandArgs>),
    /// Subtypes and stages of (new) subjects under a finished fit.
    Stage(cmd::stage::StageArgs),
    /// Cross-validation: fit each fold's training subjects, evaluate its test
    /// subjects, and combine the folds into CVIC.
    Cv(Box<cmd::cv::CvArgs>),
    /// Combine the fold_*.json files of `sustain cv --fold I` into cv.json and the
    /// CVIC figure.
    CvCombine(cmd::cv::CvCombineArgs),
    /// Combine the chain shards of `sustain fit --chain-shard I/N` (DIR/shards/)
    /// into the outputs of a single `sustain fit`.
    Merge(cmd::merge::MergeArgs),
    /// Run `fit` (chain shards) or `cv` (folds) on a SLURM cluster: write a job
    /// array and a combine job into DIR/slurm/ and submit them with sbatch.
    Slurm(Box<cmd::slurm::SlurmArgs>),
    /// Per biomarker, fit a two-component mixture to controls and patients (as
    /// kde_ebm) and write the event / no-event likelihoods of a mixture model,
    /// its model.json and a figure of the fits.
    Mixture(cmd::mixture::MixtureArgs),
    /// Redraw the figures of a fit folder from its results.json.
    Plot(cmd::plot::PlotArgs),
    /// Write DIR/report.html: one self-contained page on a fit or cross-validation
    /// folder (model and data, diagrams, fractions, convergence, CVIC, subjects,
    /// the command that made it) that opens anywhere, without network.
    Report(cmd::report::ReportArgs),
    /// Propose a z-score model (model.json) from z-scores: per biomarker, the
    /// thresholds enough patients reach and z_max near their 95th percentile, with
    /// the reasoning printed and a figure of each distribution.
    SuggestModel(cmd::suggest_model::SuggestModelArgs),
    /// Fit the bundled small example with quick settings (a few seconds).
    Demo(cmd::demo::DemoArgs),
    /// Simulate a z-score cohort of any size: data.csv, model.json (for `fit
    /// --model`) and truth.json (the true sequences, fractions, subtypes, stages).
    Simulate(cmd::simulate::SimulateArgs),
    /// Chain-scaling benchmark: 1, 2, 4 and 8 MCMC chains on the simulated workload W1;
    /// wall time, throughput, speedup, efficiency and ESS per second.
    BenchChains(cmd::bench_chains::BenchChainsArgs),
}

fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Zscore(args) => cmd::zscore::run(args),
        Command::Fit(args) => cmd::merge::run_fit(args),
        Command::Stage(args) => cmd::stage::run(args),
        Command::Cv(args) => cmd::cv::run(args),
        Command::CvCombine(args) => cmd::cv::run_combine(args),
        Command::Merge(args) => cmd::merge::run_merge(args),
        Command::Slurm(args) => cmd::slurm::run(args),
        Command::Mixture(args) => cmd::mixture::run(args),
        Command::Plot(args) => cmd::plot::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::SuggestModel(args) => cmd::suggest_model::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::BenchChains(args) => cmd::bench_chains::run(args),
    }
}

/// The command line: clap's parser with every option value allowed to be a negative
/// number (so `--subtypes -1` reaches the value check instead of being taken for an
/// option). Help and version are printed by clap (stdout, status 0); every usage
/// error becomes one line on stderr (status 2).
fn parse() -> Result<Cli, ExitCode> {
    let command = negative_numbers_as_values(Cli::command());
    let parsed = command
        .clone()
        .try_get_matches_from(negative_lists_attached(std::env::args_os().collect()))
        .and_then(|matches| Cli::from_arg_matches(&matches));
    parsed.map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "{}", usage_error_line(&e, &command));
            ExitCode::from(EXIT_USER_ERROR)
        }
    })
}

/// `--zvals -1,1` as `--zvals=-1,1`: a comma-separated list of numbers that starts
/// with a minus sign is the value of the option before it (clap takes single
/// negative numbers as values, see [`negative_numbers_as_values`], but not lists).
fn negative_lists_attached(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_negative_list = |s: &str| {
        s.starts_with('-')
            && s.contains(',')
            && s.split(',').all(|v| v.trim().parse::<f64>().is_ok())
    };
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let option = arg
            .to_str()
            .filter(|a| a.starts_with("--") && a.len() > 2 && !a.contains('='))
            .map(str::to_string);
        if let Some(option) = option {
            if let Some(list) = it
                .peek()
                .and_then(|v| v.to_str())
                .filter(|v| is_negative_list(v))
            {
                out.push(format!("{option}={list}").into());
                it.next();
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// `command` and its subcommands with negative numbers accepted as option values.
fn negative_numbers_as_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
        .mut_subcommands(negative_numbers_as_values)
}

/// A clap error as one line: `error: <what>` with the details clap puts on further
/// lines (missing arguments, tips) joined in, and where to read more.
fn usage_error_line(e: &clap::Error, command: &clap::Command) -> String {
    let text = e.render().to_string();
    // The subcommand named on the command line (`sustain slurm fit ...`): the words
    // before the first option that name a subcommand.
    let mut cmd = command;
    let mut path = vec![cmd.get_name().to_string()];
    for word in std::env::args_os().skip(1) {
        let Some(word) = word.to_str().filter(|w| !w.starts_with('-')) else {
            break;
        };
        match cmd.find_subcommand(word) {
            Some(sub) => {
                cmd = sub;
                path.push(word.to_string());
            }
            None => break,
        }
    }
    let path = path.join(" ");
    let help = format!("see '{path} --help'");
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        || e.kind() == ErrorKind::MissingSubcommand
    {
        // clap would print the whole help: name the subcommands instead.
        let names: Vec<&str> = cmd
            .get_subcommands()
            .map(|c| c.get_name())
            .filter(|n| *n != "help")
            .collect();
        return format!(
            "error: '{path}' needs a subcommand: {} ({help})",
            names.join(", ")
        );
    }
    if let (
        ErrorKind::ValueValidation,
        Some(ContextValue::String(arg)),
        Some(ContextValue::String(value)),
    ) = (
        e.kind(),
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) {
        let int = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::num::ParseIntError>())
            .is_some_and(|p| *p.kind() == std::num::IntErrorKind::InvalidDigit);
        if int {
            return format!(
                "error: invalid value '{value}' for '{arg}': expected a whole number, 0 or more ({help})"
            );
        }
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .unwrap_or("error: invalid command line")
        .to_string();
    if !line.starts_with("error:") {
        line = format!("error: {line}");
    }
    // "[possible values: a, b]" reads as "(possible values: a, b)".
    let details: Vec<&str> = lines
        .map(|l| {
            l.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(l)
        })
        .collect();
    if !details.is_empty() {
        if line.ends_with(':') {
            line = format!("{line} {}", details.join(", "));
        } else {
            line = format!("{line} ({})", details.join("; "));
        }
    }
    format!("{line} ({help})")
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", e.one_line());
            ExitCode::from(EXIT_USER_ERROR)
        }
    }
}
