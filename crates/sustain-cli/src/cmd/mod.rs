//! One module per subcommand, each with an `Args` struct (clap derive) and a
//! `run(&Args) -> Result<(), CliError>`; `main.rs` dispatches to them. Options that
//! several subcommands share live in [`shared_args`] as flattenable `clap::Args`
//! groups (`--backend` and `--require-gpu` in [`crate::backend::BackendArgs`]).

pub mod bench_chains;
pub mod cv;
pub mod cv_family;
pub mod demo;
pub mod evaluate;
pub mod fit;
pub mod fit_family;
pub mod merge;
pub mod mixture;
pub mod plot;
pub mod report;
pub mod shared_args;
pub mod simulate;
pub mod slurm;
pub mod stage;
pub mod suggest_model;
pub mod zscore;

pub use shared_args::{Missing, ModelDataArgs};
