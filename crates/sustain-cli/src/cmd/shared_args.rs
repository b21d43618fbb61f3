//! Argument groups that several subcommands flatten (`#[command(flatten)]`): a flag
//! that means the same in every subcommand is declared and documented once, so its
//! name, value name, default and help cannot drift apart.

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

    #[command(flatten)]
    pub ids: IdColumn,

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
            self.ids.name(),
        )?;
        Ok((model, data))
    }
}

/// `--id-column`: the column of subject ids of the data a subcommand reads.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IdColumn {
    /// Column of the data holding subject ids, used to label the outputs [default:
    /// none; subjects are numbered by their 1-based data row].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,
}

impl IdColumn {
    /// The column's name, if given.
    pub fn name(&self) -> Option<&str> {
        self.id_column.as_deref()
    }
}

/// `--threads` of the subcommands that fit or stage.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Threads {
    /// Worker threads (fits: E-M start points and chains, split by subjects when
    /// there are fewer chains than threads; staging: subjects); results do not
    /// depend on it [default: the available cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `--quiet` of the long-running subcommands.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Quiet {
    /// No progress lines on stderr [default: off].
    #[arg(long)]
    pub quiet: bool,
}

/// `--no-report` of the subcommands that finish a fit or a cross-validation.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct NoReport {
    /// Write no DIR/report.html at the end (see `sustain report`) [default: off].
    #[arg(long)]
    pub no_report: bool,
}

/// `--force` of the subcommands whose --out is never one of their inputs (they
/// refuse that even with --force) and that refuse outputs they did not write.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Overwrite {
    /// Replace an --out, or files in it, that this command did not write [default:
    /// off].
    #[arg(long)]
    pub force: bool,
}

/// `--force` of the subcommands that refuse, unless forced, both an --out that is
/// one of their inputs and one they did not write.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct OverwriteInputs {
    /// Write --out even when it is an input of this command or a file (or a figure
    /// beside it) that this command did not write [default: off].
    #[arg(long)]
    pub force: bool,
}
