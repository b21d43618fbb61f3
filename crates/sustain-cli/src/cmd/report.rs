//! `sustain report DIR`: one self-contained page (`DIR/report.html`) on a fit or
//! cross-validation folder, for the people who read the results.

use std::path::PathBuf;

use crate::cmd::shared_args::Overwrite;
use crate::error::CliError;
use crate::folder_lock::{remove_dead_temps, FolderLock, FOLDER_LOCK};
use crate::io;
use crate::report;

/// Arguments of `sustain report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A fit folder (results.json, from `fit` or `merge`) or a cross-validation
    /// folder (cv.json, from `cv` or `cv-combine`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// A cross-validation folder whose CVIC to add to the report of the fit in DIR
    /// [default: DIR itself when it holds cv.json].
    #[arg(long, value_name = "CV_DIR")]
    pub cv: Option<PathBuf>,

    /// Where to write the page [default: DIR/report.html].
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub overwrite: Overwrite,
}

/// Runs `sustain report`.
pub fn run(args: &ReportArgs) -> Result<(), CliError> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(CliError::new(format!("{} is not a folder", dir.display())));
    }
    let has_fit = dir.join("results.json").is_file();
    let cv_dir = match &args.cv {
        Some(cv) => {
            if !cv.join("cv.json").is_file() {
                return Err(CliError::new(format!(
                    "--cv {} holds no cv.json (run `sustain cv` or `sustain cv-combine` there first)",
                    cv.display()
                )));
            }
            Some(cv.as_path())
        }
        None => dir.join("cv.json").is_file().then_some(dir.as_path()),
    };
    if !has_fit && cv_dir.is_none() {
        return Err(CliError::new(format!(
            "{} holds neither a fit (results.json) nor a cross-validation (cv.json)",
            dir.display()
        )));
    }
    let out = args.out.clone().unwrap_or_else(|| report::report_path(dir));
    crate::overwrite::refuse_inputs(
        &out,
        &[
            ("DIR", &dir.join("results.json")),
            ("DIR", &dir.join("cv.json")),
        ],
        false,
    )?;
    report::refuse_foreign_report(&out, args.overwrite.force)?;
    let text = report::build(has_fit.then_some(dir.as_path()), cv_dir)?;
    // The folder's lock while writing into it (a fit may be running there).
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let _lock = match parent {
        parent if crate::overwrite::same_file(parent, dir) => {
            let lock = FolderLock::take(dir, FOLDER_LOCK)?;
            remove_dead_temps(dir, ".report.html.");
            Some(lock)
        }
        _ => None,
    };
    report::write(&out, &text)?;
    io::write_stdout(&format!("report: {}\n", out.display()))
}
