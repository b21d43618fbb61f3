//! One module per subcommand, each with an `Args` struct (clap derive) and a
//! `run(&Args) -> Result<(), CliError>`; `main.rs` dispatches to them. Options that
//! several subcommands share live here as flattenable `clap::Args` groups.

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
pub mod simulate;
pub mod slurm;
pub mod stage;
pub mod suggest_model;
pub mod zscore;

use std::path::PathBuf;

use clap::ValueEnum;
use sustain_model::MissingConvention;

use crate::error::CliError;
use crate::io::{self, DataColumns, DataTable, ModelFile};

/// How a missing value enters the likelihood (`--missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Missing {
    /// A missing value contributes nothing (it is marginalised out).
    #[default]
    #[value(alias = "marginalize")]
    Marginalise,
    /// Add the reference implementation's constant per missing value, so absolute
    /// log-likelihoods equal pySuStaIn's (posteriors are the same either way).
    Reference,
}

impl Missing {
    /// The model crate's convention.
    pub fn convention(self) -> MissingConvention {
        match self {
            Missing::Marginalise => MissingConvention::Marginalise,
            Missing::Reference => MissingConvention::Reference,
        }
    }

    /// The name used on the command line and in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Missing::Marginalise => "marginalise",
            Missing::Reference => "reference",
        }
    }
}

/// The inputs of every subcommand that evaluates a model on data: `--data`,
/// `--model`, `--id-column`, `--missing`. Flatten it into a subcommand's arguments
/// with `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelDataArgs {
    /// Data CSV with a header row: one row per subject, one column per biomarker
    /// (z-scores, larger = more abnormal; raw integer scores for an ordinal model
    /// with p_correct), taken by the model's biomarker names; other columns are
    /// ignored. Empty cells, NA, NaN and nan are missing values. Not needed for a
    /// mixture model or an ordinal one with precomputed probabilities.
    #[arg(long, value_name = "DATA.csv")]
    pub data: Option<PathBuf>,

    /// Model JSON: {"biomarkers": [names], "z_vals": [[thresholds per biomarker, 0 =
    /// no event]], "z_max": [one per biomarker]}; or, with "model": "mixture" or
    /// "ordinal", the other families (docs/formats.md).
    #[arg(long, value_name = "MODEL.json")]
    pub model: PathBuf,

    /// Column of the data holding subject ids, used to label the output
    /// [default: none; subjects are numbered by their 1-based data row].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,

    /// How missing values enter the likelihood. Only absolute log-likelihoods
    /// differ: posteriors, fits and CVIC differences are the same under both.
    #[arg(long, value_enum, default_value_t = Missing::Marginalise)]
    pub missing: Missing,
}

impl ModelDataArgs {
    /// Reads the model, then the data columns it names.
    pub fn load(&self) -> Result<(ModelFile, DataTable), CliError> {
        let model = io::read_model(&self.model)?;
        let Some(data_path) = &self.data else {
            return Err(CliError::new("--data is required for a z-score model"));
        };
        let data = io::read_data(
            data_path,
            DataColumns::Named(&model.biomarkers),
            self.id_column.as_deref(),
        )?;
        Ok((model, data))
    }
}
