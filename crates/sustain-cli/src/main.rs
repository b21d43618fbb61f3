//! `sustain`: SuStaIn (Subtype and Stage Inference) from the command line.
//!
//! Every subcommand lives in its own module under `cmd/` with an `Args` struct and a
//! `run` function; adding one is a variant of [`Command`] and a match arm in `main`.
//! Errors are printed as one line, `error: <message>`, on stderr, with exit status 2
//! (clap's usage errors also exit with 2).

mod backend;
mod bars;
mod cmd;
mod error;
mod io;
mod nanjson;
// Figures; not every drawing helper is used by the subcommands.
#[allow(dead_code, unused_imports)]
mod plot;
mod zscore;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Redraw the figures of a fit folder from its results.json.
    Plot(cmd::plot::PlotArgs),
    /// Fit the bundled small example with quick settings (a few seconds).
    Demo(cmd::demo::DemoArgs),
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
        Command::Plot(args) => cmd::plot::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::BenchChains(args) => cmd::bench_chains::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", e.one_line());
            ExitCode::from(EXIT_USER_ERROR)
        }
    }
}
