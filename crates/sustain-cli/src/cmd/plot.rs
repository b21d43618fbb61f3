//! `sustain plot`: redraws the figures of a fit folder from its results.json.

use std::path::PathBuf;

use crate::error::CliError;
use crate::fit_outputs::{draw_figures_any, read_fit_folder};
use crate::io;

/// Arguments of `sustain plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Fit folder written by `sustain fit`: pvd_k{K}.svg/.png and
    /// trace_k{K}.svg/.png are redrawn there from results.json (byte for byte what
    /// `fit` wrote).
    #[arg(long, value_name = "DIR")]
    pub fit: PathBuf,
}

/// Runs `sustain plot`.
pub fn run(args: &PlotArgs) -> Result<(), CliError> {
    // Any model family: its figures are drawn as `fit` drew them.
    let (result, order) = read_fit_folder(&args.fit)?;
    let _lock = crate::folder_lock::FolderLock::take(&args.fit, crate::folder_lock::FOLDER_LOCK)?;
    crate::folder_lock::remove_dead_temps(&args.fit, ".");
    let files = draw_figures_any(&args.fit, &result, &order)?;
    let mut text = String::from("figures written:\n");
    for f in files {
        text.push_str(&format!("  {}\n", f.display()));
    }
    io::write_stdout(&text)
}
