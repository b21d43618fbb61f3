//! `run.json` beside a fit's or a cross-validation's outputs: the command line and
//! version that made them, and a summary of the data. results.json does not hold
//! them: it must be the same bytes after `--resume` (another command line) as
//! after the run it resumes, so the record lives beside it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::io;

/// The `written_by` mark of run.json.
const WRITTEN_BY: &str = "sustain";

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always "sustain": marks the file as ours.
    pub written_by: String,
    /// The version of `sustain` that ran.
    pub sustain_version: String,
    /// The command line, program name first (as given).
    pub command: Vec<String>,
    /// The folder it ran in (relative paths of the command are relative to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The data, where the command read a data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSummary>,
}

/// The data a fit read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Subjects (rows).
    pub subjects: usize,
    /// Biomarkers (columns used).
    pub biomarkers: usize,
    /// Share of the subject-biomarker cells that are missing (0 to 1).
    pub missing_share: f64,
}

impl DataSummary {
    /// The summary of a data table.
    pub fn of(data: &sustain::model::Dataset) -> Self {
        let (m, b) = (data.n_subjects(), data.n_biomarkers());
        let missing = data.n_missing();
        Self {
            subjects: m,
            biomarkers: b,
            missing_share: if m * b == 0 {
                0.0
            } else {
                missing as f64 / (m * b) as f64
            },
        }
    }
}

/// `DIR/run.json`.
pub fn run_record_path(dir: &Path) -> PathBuf {
    dir.join("run.json")
}

/// The record of this process's command line.
pub fn this_run(data: Option<DataSummary>) -> RunRecord {
    let mut command: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The program as the user knows it, not the path it was started from.
    if let Some(first) = command.first_mut() {
        *first = "sustain".to_string();
    }
    RunRecord {
        written_by: WRITTEN_BY.to_string(),
        sustain_version: env!("CARGO_PKG_VERSION").to_string(),
        command,
        working_dir: std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
        data,
    }
}

/// Writes `DIR/run.json` (temporary name, then renamed), unless a run.json that is
/// not ours is there.
pub fn write_run_record(dir: &Path, record: &RunRecord) -> Result<(), CliError> {
    let path = run_record_path(dir);
    if path.exists() && read_run_record(dir).is_none() {
        return Err(CliError::new(format!(
            "{} exists and was not written by sustain; it is left as it is",
            path.display()
        )));
    }
    io::write_json(&path, record)
}

/// `DIR/run.json`, when there is one of ours.
pub fn read_run_record(dir: &Path) -> Option<RunRecord> {
    let text = std::fs::read_to_string(run_record_path(dir)).ok()?;
    let record: RunRecord = serde_json::from_str(&text).ok()?;
    (record.written_by == WRITTEN_BY).then_some(record)
}

/// A command line as one shell line: words with anything but safe characters in
/// single quotes.
pub fn shell_line(words: &[String]) -> String {
    let safe = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    };
    words
        .iter()
        .map(|w| {
            if safe(w) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let words: Vec<String> = ["sustain", "fit", "--out", "my dir", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_line(&words), "sustain fit --out 'my dir' 'it'\\''s'");
    }

    #[test]
    fn records_read_back_and_foreign_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let record = this_run(None);
        write_run_record(dir.path(), &record).unwrap();
        assert_eq!(read_run_record(dir.path()), Some(record.clone()));
        std::fs::write(run_record_path(dir.path()), "{\"mine\": 1}").unwrap();
        assert!(write_run_record(dir.path(), &record).is_err());
        assert_eq!(
            std::fs::read_to_string(run_record_path(dir.path())).unwrap(),
            "{\"mine\": 1}"
        );
    }
}
