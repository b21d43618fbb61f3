//! `sustain plot`: redraws the figures of a fit folder from its results.json.

use std::path::PathBuf;

use crate::error::CliError;
use crate::fit_outputs::{draw_figures_any, results_path_of};
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
    let path = results_path_of(&args.fit);
    if !path.is_file() {
        return Err(CliError::new(format!(
            "{} is not a fit folder (no results.json)",
            args.fit.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::read(&path, &e))?;
    // Any model family: its figures are drawn as `fit` drew them.
    let (result, order) = crate::results_file::parse_any(&path, &text)?;
    let _lock = crate::folder_lock::FolderLock::take(&args.fit, crate::folder_lock::FOLDER_LOCK)?;
    crate::folder_lock::remove_dead_temps(&args.fit, ".");
    let files = draw_figures_any(&args.fit, &result, &order)?;
    let mut text = String::from("figures written:\n");
    for f in files {
        text.push_str(&format!("  {}\n", f.display()));
    }
    io::write_stdout(&text)
}
