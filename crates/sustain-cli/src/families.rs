//! Model families in `model.json`: its `"model"` key picks one (no key means the
//! z-score model, so every existing file still works).
//!
//! - `"mixture"` (event-based): `"p_event"` and `"p_no_event"` name two CSVs (paths
//!   relative to model.json) with one column per biomarker: the likelihood of each
//!   subject's value given the event has / has not occurred (pySuStaIn `L_yes`,
//!   `L_no`). No `--data` is needed.
//! - `"ordinal"`: `"score_vals"` (scores per biomarker, 0 = no event) and either
//!   `"p_correct"` with `--data` a CSV of raw integer scores, or `"p_normal"` and
//!   `"p_score"` (a list of CSVs, one per score level) precomputed.
//! - `"mixed"`: see [`crate::families_mixed`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use sustain_model::{event_based, ordinal, score_probabilities, ModelError, PrefixModel};

use crate::error::CliError;
use crate::io::{self, DataColumns, DataTable};

/// The families `model.json` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// z-scores (no `"model"` key, or `"zscore"`).
    ZScore,
    /// Event-based (`"mixture"`).
    Mixture,
    /// Ordinal scores (`"ordinal"`).
    Ordinal,
    /// z-scored, ordinal and event biomarkers in one model (`"mixed"`,
    /// [`crate::families_mixed`]).
    Mixed,
}

impl Family {
    /// The name model.json gives it.
    pub fn name(self) -> &'static str {
        match self {
            Family::ZScore => "zscore",
            Family::Mixture => "mixture",
            Family::Ordinal => "ordinal",
            Family::Mixed => "mixed",
        }
    }
}

/// The family `path` names; an unknown family is an error naming the key's value.
pub fn family_of(path: &Path) -> Result<Family, CliError> {
    let json: Value = io::read_json(path)?;
    match json.get("model") {
        None => Ok(Family::ZScore),
        Some(Value::String(s)) => match s.as_str() {
            "zscore" => Ok(Family::ZScore),
            "mixture" => Ok(Family::Mixture),
            "ordinal" => Ok(Family::Ordinal),
            "mixed" => Ok(Family::Mixed),
            other => Err(CliError::in_file(
                path,
                format!("unknown model family \"{other}\" in \"model\" (expected zscore, mixture, ordinal or mixed)"),
            )),
        },
        Some(other) => Err(CliError::in_file(
            path,
            format!("\"model\" is {other}; it names a family: \"zscore\", \"mixture\", \"ordinal\" or \"mixed\""),
        )),
    }
}

#[derive(Deserialize)]
struct MixtureJson {
    biomarkers: Vec<String>,
    p_event: PathBuf,
    p_no_event: PathBuf,
}

#[derive(Deserialize)]
struct OrdinalJson {
    biomarkers: Vec<String>,
    score_vals: Vec<Vec<f64>>,
    p_correct: Option<f64>,
    p_normal: Option<PathBuf>,
    p_score: Option<Vec<PathBuf>>,
}

/// A non-z-score model read from its files: the model, its biomarker names and
/// the subject ids.
pub struct LoadedModel {
    /// The prepared model.
    pub model: Arc<PrefixModel>,
    /// Biomarker names, in model order.
    pub biomarkers: Vec<String>,
    /// One id per subject.
    pub ids: Vec<String>,
}

/// A path of model.json's, relative to its folder.
pub(crate) fn beside(model: &Path, file: &Path) -> PathBuf {
    model.parent().unwrap_or(Path::new("")).join(file)
}

/// Reads a table of the model's biomarkers (`biomarkers`, by name).
pub(crate) fn table(
    path: &Path,
    biomarkers: &[String],
    id_column: Option<&str>,
) -> Result<DataTable, CliError> {
    io::read_data(path, DataColumns::Named(biomarkers), id_column)
}

/// Files that must list the same subjects (`.1`: their ids) in the same order.
pub(crate) fn same_subjects(
    first: (&Path, &[String]),
    other: (&Path, &[String]),
) -> Result<(), CliError> {
    let (a, b) = (first.1, other.1);
    if a.len() != b.len() {
        return Err(CliError::in_file(
            other.0,
            format!(
                "{} subjects, but {} has {}",
                b.len(),
                first.0.display(),
                a.len()
            ),
        ));
    }
    if let Some(r) = (0..a.len()).find(|&r| a[r] != b[r]) {
        return Err(CliError::in_file(
            other.0,
            format!(
                "row {}: id '{}' where {} has '{}' (the files must list the same subjects in the same order)",
                r + 1,
                b[r],
                first.0.display(),
                a[r]
            ),
        ));
    }
    Ok(())
}

/// A model error about a value of `path`: its 1-based row and the column's name
/// (`column + shift` of `names`); `name_what` puts the quantity's name (p_event,
/// ...) before the value, as mixed models' messages do.
pub(crate) fn at_cell(
    path: &Path,
    names: &[String],
    shift: usize,
    err: ModelError,
    name_what: bool,
) -> CliError {
    match err {
        ModelError::BadProbability {
            what,
            row,
            column,
            value,
            why,
        } => {
            let what = if name_what {
                format!("{what} ")
            } else {
                String::new()
            };
            CliError::in_file(
                path,
                format!(
                    "row {}, column '{}': {what}{value}: {why}",
                    row + 1,
                    names.get(column + shift).map_or("?", String::as_str)
                ),
            )
        }
        other => CliError::in_file(path, other),
    }
}

/// A model error about a value of the table `table` read from `path`.
fn in_table(path: &Path, table: &DataTable, err: ModelError) -> CliError {
    at_cell(path, &table.biomarkers, 0, err, false)
}

/// Reads a mixture or ordinal model (`family` from [`family_of`]); `data` is the
/// raw-score CSV of an ordinal model with `p_correct`.
pub fn load(
    model_path: &Path,
    family: Family,
    data: Option<&Path>,
    id_column: Option<&str>,
) -> Result<LoadedModel, CliError> {
    match family {
        Family::ZScore => Err(CliError::in_file(
            model_path,
            "a z-score model, not a mixture or ordinal one",
        )),
        Family::Mixed => Err(CliError::in_file(
            model_path,
            "a mixed-type model: this command does not take one yet (evaluate, fit, cv, merge, stage and plot do)",
        )),
        Family::Mixture => {
            let json: MixtureJson = io::read_json(model_path)?;
            let (yes_path, no_path) = (
                beside(model_path, &json.p_event),
                beside(model_path, &json.p_no_event),
            );
            let yes = table(&yes_path, &json.biomarkers, id_column)?;
            let no = table(&no_path, &json.biomarkers, id_column)?;
            same_subjects((&yes_path, &yes.ids), (&no_path, &no.ids))?;
            let model = event_based(yes.dataset.values(), no.dataset.values()).map_err(|e| {
                let which = matches!(
                    &e,
                    ModelError::BadProbability {
                        what: "p_no_event",
                        ..
                    }
                );
                if which {
                    in_table(&no_path, &no, e)
                } else {
                    in_table(&yes_path, &yes, e)
                }
            })?;
            Ok(LoadedModel {
                model: Arc::new(model),
                biomarkers: json.biomarkers,
                ids: yes.ids,
            })
        }
        Family::Ordinal => {
            let json: OrdinalJson = io::read_json(model_path)?;
            if json.score_vals.len() != json.biomarkers.len() {
                return Err(CliError::in_file(
                    model_path,
                    format!(
                        "{} biomarker names but score_vals has {} rows (one row per biomarker)",
                        json.biomarkers.len(),
                        json.score_vals.len()
                    ),
                ));
            }
            let model_err = |e: ModelError| CliError::in_file(model_path, e);
            match (json.p_correct, &json.p_normal, &json.p_score) {
                (Some(p_correct), None, None) => {
                    let Some(data) = data else {
                        return Err(CliError::in_file(
                            model_path,
                            "an ordinal model with p_correct needs --data, a CSV of raw scores",
                        ));
                    };
                    let scores = table(data, &json.biomarkers, id_column)?;
                    let (nl, levels) = score_probabilities(&json.score_vals, scores.dataset.values(), p_correct)
                        .map_err(|e| match e {
                            ModelError::BadProbability { .. } => in_table(data, &scores, e),
                            other => model_err(other),
                        })?;
                    let views: Vec<_> = levels.iter().map(|t| t.view()).collect();
                    let model = ordinal(&json.score_vals, nl.view(), &views).map_err(model_err)?;
                    Ok(LoadedModel {
                        model: Arc::new(model),
                                biomarkers: json.biomarkers,
                                ids: scores.ids,
                    })
                }
                (None, Some(p_normal), Some(p_score)) => {
                    let nl_path = beside(model_path, p_normal);
                    let nl = table(&nl_path, &json.biomarkers, id_column)?;
                    let mut levels = Vec::with_capacity(p_score.len());
                    for p in p_score {
                        let path = beside(model_path, p);
                        let t = table(&path, &json.biomarkers, id_column)?;
                        same_subjects((&nl_path, &nl.ids), (&path, &t.ids))?;
                        levels.push((path, t));
                    }
                    let views: Vec<_> = levels.iter().map(|(_, t)| t.dataset.values()).collect();
                    let model = ordinal(&json.score_vals, nl.dataset.values(), &views).map_err(|e| match e {
                        ModelError::BadProbability { what: "p_score", row, column, .. } => {
                            // The first score table whose value there is not a probability.
                            let (path, t) = levels
                                .iter()
                                .find(|(_, t)| !(0.0..=1.0).contains(&t.dataset.values()[[row, column]]))
                                .unwrap_or(&levels[0]);
                            in_table(path, t, e)
                        }
                        ModelError::BadProbability { .. } => in_table(&nl_path, &nl, e),
                        other => model_err(other),
                    })?;
                    Ok(LoadedModel {
                        model: Arc::new(model),
                                biomarkers: json.biomarkers,
                                ids: nl.ids,
                    })
                }
                _ => Err(CliError::in_file(
                    model_path,
                    "an ordinal model gives either \"p_correct\" (with --data raw scores) or both \"p_normal\" and \"p_score\"",
                )),
            }
        }
    }
}
