//! The mixed-type family in `model.json` (`"model": "mixed"`, pySuStaIn
//! `MixedTypeSustain`): one entry per biomarker with its type and parameters,
//! z-scored biomarkers first, then ordinal, then event (the reference's order,
//! which numbers the events):
//!
//! ```json
//! {"model": "mixed",
//!  "biomarkers": [
//!    {"name": "a", "type": "zscore", "z_vals": [1, 2], "z_max": 5},
//!    {"name": "b", "type": "ordinal", "score_vals": [1, 2, 3], "p_correct": 0.9},
//!    {"name": "c", "type": "event"}],
//!  "p_event": "p_event.csv", "p_no_event": "p_no_event.csv"}
//! ```
//!
//! `--data` holds the z-scores and the raw integer scores side by side (a column
//! per z-scored and ordinal biomarker, by name); `p_event` and `p_no_event` (paths
//! relative to model.json) a column per event biomarker, the same subjects in the
//! same order. An ordinal biomarker's `p_correct` may be given once at the top
//! level for all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sustain_model::{EventPart, MixedModel, ModelError, OrdinalScores, ZscorePart};

use crate::error::CliError;
use crate::families::{at_cell, beside, same_subjects, table};
use crate::io;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum BiomarkerJson {
    Zscore {
        name: String,
        z_vals: Vec<f64>,
        z_max: f64,
    },
    Ordinal {
        name: String,
        score_vals: Vec<f64>,
        p_correct: Option<f64>,
    },
    Event {
        name: String,
    },
}

impl BiomarkerJson {
    fn name(&self) -> &str {
        match self {
            Self::Zscore { name, .. } | Self::Ordinal { name, .. } | Self::Event { name } => name,
        }
    }
    /// Place in the reference's order: z-scored, ordinal, event.
    fn rank(&self) -> usize {
        match self {
            Self::Zscore { .. } => 0,
            Self::Ordinal { .. } => 1,
            Self::Event { .. } => 2,
        }
    }
    fn kind(&self) -> &'static str {
        ["zscore", "ordinal", "event"][self.rank()]
    }
}

#[derive(Deserialize)]
struct MixedJson {
    biomarkers: Vec<BiomarkerJson>,
    p_correct: Option<f64>,
    p_event: Option<PathBuf>,
    p_no_event: Option<PathBuf>,
}

/// A mixed-type model read from its files.
pub struct LoadedMixed {
    /// The prepared model.
    pub model: Arc<MixedModel>,
    /// Biomarker names, in model order.
    pub biomarkers: Vec<String>,
    /// One id per subject.
    pub ids: Vec<String>,
}

/// Reads a mixed-type model (`data`: the z-scores and raw scores CSV).
pub fn load_mixed(
    model_path: &Path,
    data: Option<&Path>,
    id_column: Option<&str>,
) -> Result<LoadedMixed, CliError> {
    let json: MixedJson = io::read_json(model_path)?;
    let in_model = |why: String| CliError::in_file(model_path, why);
    check_order(&json.biomarkers).map_err(in_model)?;
    let names: Vec<String> = json
        .biomarkers
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    let mut z_vals = Vec::new();
    let mut z_max = Vec::new();
    let mut score_vals = Vec::new();
    let mut p_correct = Vec::new();
    for b in &json.biomarkers {
        match b {
            BiomarkerJson::Zscore {
                z_vals: v,
                z_max: m,
                ..
            } => {
                z_vals.push(v.clone());
                z_max.push(*m);
            }
            BiomarkerJson::Ordinal {
                name,
                score_vals: v,
                p_correct: p,
            } => {
                score_vals.push(v.clone());
                p_correct.push(p.or(json.p_correct).ok_or_else(|| {
                    in_model(format!(
                        "ordinal biomarker '{name}' has no \"p_correct\" (give it there or once at the top level)"
                    ))
                })?);
            }
            BiomarkerJson::Event { .. } => {}
        }
    }
    let (n_z, n_o) = (z_vals.len(), score_vals.len());
    let n_e = names.len() - n_z - n_o;
    // The z-scores and raw scores, side by side.
    let data_table = if n_z + n_o > 0 {
        let Some(path) = data else {
            return Err(in_model(
                "a mixed model with z-scored or ordinal biomarkers needs --data (their values side by side)".into(),
            ));
        };
        Some((path, table(path, &names[..n_z + n_o], id_column)?))
    } else {
        None
    };
    let events = if n_e > 0 {
        let (Some(yes), Some(no)) = (&json.p_event, &json.p_no_event) else {
            return Err(in_model(
                "a mixed model with event biomarkers names \"p_event\" and \"p_no_event\" CSVs"
                    .into(),
            ));
        };
        let (yes, no) = (beside(model_path, yes), beside(model_path, no));
        let yes_t = table(&yes, &names[n_z + n_o..], id_column)?;
        let no_t = table(&no, &names[n_z + n_o..], id_column)?;
        same_subjects((&yes, &yes_t.ids), (&no, &no_t.ids))?;
        if let Some((path, t)) = &data_table {
            same_subjects((path, &t.ids), (&yes, &yes_t.ids))?;
        }
        Some(((yes, yes_t), (no, no_t)))
    } else {
        None
    };
    let values = data_table.as_ref().map(|(_, t)| t.dataset.values());
    let z = values.map(|v| v.slice(ndarray::s![.., ..n_z]).to_owned());
    let scores = values.map(|v| v.slice(ndarray::s![.., n_z..]).to_owned());
    let data_err = |e: ModelError| match (&data_table, e) {
        (Some((path, _)), e @ ModelError::BadProbability { .. }) => {
            at_cell(path, &names, 0, e, true)
        }
        (_, e) => in_model(e.to_string()),
    };
    let model = MixedModel::from_scores(
        z.as_ref().filter(|_| n_z > 0).map(|z| ZscorePart {
            data: z.view(),
            z_vals: &z_vals,
            z_max: &z_max,
        }),
        scores.as_ref().filter(|_| n_o > 0).map(|s| OrdinalScores {
            score_vals: &score_vals,
            scores: s.view(),
            p_correct: &p_correct,
        }),
        events.as_ref().map(|((_, y), (_, n))| EventPart {
            p_event: y.dataset.values(),
            p_no_event: n.dataset.values(),
        }),
    )
    .map_err(|e| match (&events, e) {
        (
            Some(((yes, _), (no, _))),
            e @ ModelError::BadProbability {
                what: "p_event" | "p_no_event",
                ..
            },
        ) => {
            let path = if matches!(
                e,
                ModelError::BadProbability {
                    what: "p_event",
                    ..
                }
            ) {
                yes
            } else {
                no
            };
            at_cell(path, &names, 0, e, true)
        }
        (_, e) => data_err(e),
    })?;
    let ids = match (&data_table, &events) {
        (Some((_, t)), _) => t.ids.clone(),
        (None, Some(((_, y), _))) => y.ids.clone(),
        (None, None) => return Err(in_model("the model lists no biomarkers".into())),
    };
    Ok(LoadedMixed {
        model: Arc::new(model),
        biomarkers: names,
        ids,
    })
}

/// The biomarkers must come z-scored first, then ordinal, then event, each name
/// once.
fn check_order(biomarkers: &[BiomarkerJson]) -> Result<(), String> {
    if biomarkers.is_empty() {
        return Err("\"biomarkers\" is empty".into());
    }
    for (i, pair) in biomarkers.windows(2).enumerate() {
        if pair[1].rank() < pair[0].rank() {
            return Err(format!(
                "biomarker {} '{}' ({}) comes after '{}' ({}): list z-score biomarkers first, then ordinal, then event (the reference's order, which numbers the events)",
                i + 2,
                pair[1].name(),
                pair[1].kind(),
                pair[0].name(),
                pair[0].kind()
            ));
        }
    }
    for (i, b) in biomarkers.iter().enumerate() {
        if biomarkers[..i].iter().any(|o| o.name() == b.name()) {
            return Err(format!("biomarker '{}' is listed twice", b.name()));
        }
    }
    Ok(())
}
