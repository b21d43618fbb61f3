//! Ordinal probabilities of the mixed-type model from raw scores, per biomarker as
//! the reference's `MixedTypeSustain.generate_data` builds them: biomarker `b`'s
//! score is correct with probability `p_correct[b]`, and each of its other `Z_b`
//! scores (`Z_b` its highest score) has `(1 - p_correct[b]) / Z_b`.

use crate::error::{ModelError, Result};
use crate::mixed::{EventPart, MixedModel, OrdinalPart, ZscorePart};
use crate::mixed_parts::shift_column;
use crate::ordinal::score_probabilities;
use ndarray::{Array2, ArrayView2, Axis};

/// The ordinal biomarkers as raw scores, for [`MixedModel::from_scores`].
#[derive(Debug, Clone, Copy)]
pub struct OrdinalScores<'a> {
    /// Scores per biomarker (0 = no event).
    pub score_vals: &'a [Vec<f64>],
    /// Raw scores, subjects x biomarkers (NaN = missing).
    pub scores: ArrayView2<'a, f64>,
    /// Probability that a biomarker's score is correct, one per biomarker.
    pub p_correct: &'a [f64],
}

impl MixedModel {
    /// [`MixedModel::new`] with the ordinal part given as raw scores, whose
    /// probabilities [`ordinal_score_probabilities`] makes (as the reference
    /// does). Errors of the scores name their column in the mixed biomarker order.
    pub fn from_scores(
        zscore: Option<ZscorePart>,
        ordinal: Option<OrdinalScores>,
        event: Option<EventPart>,
    ) -> Result<Self> {
        let n_z = zscore.map_or(0, |z| z.z_vals.len());
        let probs = match ordinal {
            Some(o) => Some(
                ordinal_score_probabilities(o.score_vals, o.scores, o.p_correct)
                    .map_err(|e| shift_column(e, n_z))?,
            ),
            None => None,
        };
        let views: Vec<_> = probs
            .iter()
            .flat_map(|(_, levels)| levels.iter().map(|t| t.view()))
            .collect();
        let ordinal = ordinal.zip(probs.as_ref()).map(|(o, (nl, _))| OrdinalPart {
            score_vals: o.score_vals,
            p_normal: nl.view(),
            p_score: &views,
        });
        MixedModel::new(zscore, ordinal, event)
    }
}

/// `P(observed score | normal)` and one table per score level (column of
/// `score_vals`), each subjects x biomarkers. Errors name the 0-based row and
/// column of a score that is not a whole number from 0 to its biomarker's highest.
pub fn ordinal_score_probabilities(
    score_vals: &[Vec<f64>],
    scores: ArrayView2<f64>,
    p_correct: &[f64],
) -> Result<(Array2<f64>, Vec<Array2<f64>>)> {
    let n_biomarkers = score_vals.len();
    if scores.ncols() != n_biomarkers {
        return Err(ModelError::BiomarkerCount {
            data: scores.ncols(),
            model: n_biomarkers,
        });
    }
    if p_correct.len() != n_biomarkers {
        return Err(ModelError::Shape(format!(
            "{} values of p_correct for {n_biomarkers} ordinal biomarkers",
            p_correct.len()
        )));
    }
    let levels = score_vals.iter().map(Vec::len).max().unwrap_or(0);
    let dim = scores.dim();
    let mut normal = Array2::zeros(dim);
    // A level a biomarker lacks is never read: its entries stay at 1.
    let mut per_level = vec![Array2::ones(dim); levels];
    for b in 0..n_biomarkers {
        let column = scores.slice(ndarray::s![.., b..b + 1]);
        let (nl, lv) = score_probabilities(&score_vals[b..b + 1], column, p_correct[b]).map_err(
            |e| match e {
                ModelError::BadProbability {
                    what,
                    row,
                    value,
                    why,
                    ..
                } => ModelError::BadProbability {
                    what,
                    row,
                    column: b,
                    value,
                    why,
                },
                other => other,
            },
        )?;
        normal.column_mut(b).assign(&nl.index_axis(Axis(1), 0));
        for (table, t) in per_level.iter_mut().zip(&lv) {
            table.column_mut(b).assign(&t.index_axis(Axis(1), 0));
        }
    }
    Ok((normal, per_level))
}
