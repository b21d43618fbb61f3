//! `sustain`: SuStaIn (Subtype and Stage Inference) from the command line.
//!
//! Every subcommand lives in its own module under `cmd/` with an `Args` struct and a
//! `run` function; adding one is a variant of [`Command`] and a match arm in `main`.
//! Errors are printed as one line, `error: <message>`, on stderr, with exit status 2
//! (clap's usage errors also exit with 2).

mod backend;
mod cmd;
mod error;
mod io;
// Figures for the coming `plot` subcommand; unused until it is added.
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
}

fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Zscore(args) => cmd::zscore::run(args),
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
