//! The ordinal model (pySuStaIn `OrdinalSustain`, spec section 10): biomarker `b`
//! has scores `score_vals[b]` (0 = no event); event `(b, j)` is `b` reaching its
//! `j`-th score, numbered score-major as the z-score model numbers its events.
//! Inputs are `P(observed score | normal)` and `P(observed score | level j)` per
//! subject and biomarker, or raw scores with a probability of a correct score.

use crate::error::{ModelError, Result};
use crate::events::{check_increasing, level_major_events};
use crate::prefix::{log_floor, PrefixFamily, PrefixModel};
use ndarray::{Array2, ArrayView2};
use sustain_core::EventOrder;

/// The events of `score_vals`: score-major numbering, each biomarker's nonzero
/// scores strictly increasing and positive. Returns the order and, per event, its
/// biomarker and score level `j` (column of `score_vals`).
pub(crate) fn score_events(score_vals: &[Vec<f64>]) -> Result<(EventOrder, Vec<(usize, usize)>)> {
    if score_vals.is_empty() {
        return Err(ModelError::Shape("score_vals has no biomarkers".into()));
    }
    for (b, row) in score_vals.iter().enumerate() {
        if row.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::ModelValueOutOfRange {
                what: "a score of score_vals",
                biomarker: b,
                value: row
                    .iter()
                    .copied()
                    .find(|v| !v.is_finite() || *v < 0.0)
                    .unwrap_or(f64::NAN),
            });
        }
        check_increasing(b, row)?;
    }
    let events = level_major_events(score_vals);
    let biomarker_of: Vec<usize> = events.iter().map(|e| e.0).collect();
    let order = EventOrder::new(&biomarker_of, score_vals.len())?.with_labels(
        events
            .iter()
            .map(|&(b, j)| format!("score {}", score_vals[b][j]))
            .collect(),
    )?;
    Ok((order, events))
}

/// The ordinal model from `p_normal[m][b]` (probability of the observed score if
/// biomarker `b` is normal; pySuStaIn `prob_nl`) and `p_score[j][m][b]` (if it has
/// reached its `j`-th score; `prob_score[m, b, j]`). A probability missing (NaN) in
/// every input of a subject and biomarker contributes the same factor at every
/// stage. Errors name the input, 0-based row and column.
pub fn ordinal(
    score_vals: &[Vec<f64>],
    p_normal: ArrayView2<f64>,
    p_score: &[ArrayView2<f64>],
) -> Result<PrefixModel> {
    let parts = ordinal_parts(score_vals, p_normal, p_score)?;
    PrefixModel::from_parts(
        PrefixFamily::Ordinal {
            score_vals: score_vals.to_vec(),
        },
        parts.order,
        parts.delta,
        parts.base,
    )
}

/// What the ordinal and event-based builders compute, before it becomes a model
/// (the mixed-type model places these deltas among its own events).
pub(crate) struct PrefixParts {
    /// The events (score-major).
    pub order: EventOrder,
    /// Each event's biomarker and score level (column of `score_vals`).
    pub events: Vec<(usize, usize)>,
    /// `delta[m * N + e]`.
    pub delta: Vec<f64>,
    /// Per subject: the stage-0 log-likelihood, without the stage prior.
    pub base: Vec<f64>,
}

/// [`ordinal`]'s validated deltas and stage-0 log-likelihoods.
pub(crate) fn ordinal_parts(
    score_vals: &[Vec<f64>],
    p_normal: ArrayView2<f64>,
    p_score: &[ArrayView2<f64>],
) -> Result<PrefixParts> {
    let (order, events) = score_events(score_vals)?;
    let n_biomarkers = score_vals.len();
    let levels = score_vals.iter().map(Vec::len).max().unwrap_or(0);
    if p_normal.ncols() != n_biomarkers {
        return Err(ModelError::BiomarkerCount {
            data: p_normal.ncols(),
            model: n_biomarkers,
        });
    }
    if p_score.len() < levels {
        return Err(ModelError::Shape(format!(
            "{} score probability tables for {levels} score levels",
            p_score.len()
        )));
    }
    if let Some(t) = p_score.iter().find(|t| t.dim() != p_normal.dim()) {
        return Err(ModelError::Shape(format!(
            "a score probability table is {:?}, p_normal {:?} (subjects x biomarkers)",
            t.dim(),
            p_normal.dim()
        )));
    }
    let n_subjects = p_normal.nrows();
    let n = order.n_events();
    let mut delta = vec![0.0; n_subjects * n];
    let mut base = vec![0.0; n_subjects];
    for m in 0..n_subjects {
        for b in 0..n_biomarkers {
            // The biomarker's inputs: normal, then each of its event levels.
            let levels_b: Vec<usize> = (0..score_vals[b].len())
                .filter(|&j| score_vals[b][j] != 0.0)
                .collect();
            let mut values = vec![("p_normal", p_normal[[m, b]])];
            values.extend(levels_b.iter().map(|&j| ("p_score", p_score[j][[m, b]])));
            let missing = values.iter().filter(|v| v.1.is_nan()).count();
            if missing == values.len() {
                continue;
            }
            for &(what, v) in &values {
                if !(0.0..=1.0).contains(&v) {
                    return Err(ModelError::BadProbability {
                        what,
                        row: m,
                        column: b,
                        value: v,
                        why: if v.is_nan() {
                            "missing where the other probabilities of this value are not"
                        } else {
                            "a probability must be between 0 and 1"
                        },
                    });
                }
            }
            if values.iter().all(|v| v.1 == 0.0) {
                return Err(ModelError::BadProbability {
                    what: "p_normal",
                    row: m,
                    column: b,
                    value: 0.0,
                    why: "every probability of this value is 0: it is impossible at any stage",
                });
            }
            base[m] += log_floor(values[0].1);
            for (i, w) in values.windows(2).enumerate() {
                let e = events
                    .iter()
                    .position(|&ev| ev == (b, levels_b[i]))
                    .unwrap_or_else(|| unreachable!("every nonzero score is an event"));
                delta[m * n + e] = log_floor(w[1].1) - log_floor(w[0].1);
            }
        }
    }
    Ok(PrefixParts {
        order,
        events,
        delta,
        base,
    })
}

/// `P(observed score | level)` from raw integer scores as the reference's tutorial
/// builds them: the correct score with probability `p_correct`, each of the other
/// `Z` scores (`Z` the highest score of `score_vals`) with `(1 - p_correct) / Z`.
/// Returns `p_normal` and one table per score level. Errors name the 0-based row
/// and column of a score that is not a whole number in `0..=Z`.
pub fn score_probabilities(
    score_vals: &[Vec<f64>],
    scores: ArrayView2<f64>,
    p_correct: f64,
) -> Result<(Array2<f64>, Vec<Array2<f64>>)> {
    if !(p_correct > 0.0 && p_correct <= 1.0) {
        return Err(ModelError::Shape(format!(
            "p_correct is {p_correct}: it must be above 0 and at most 1"
        )));
    }
    if scores.ncols() != score_vals.len() {
        return Err(ModelError::BiomarkerCount {
            data: scores.ncols(),
            model: score_vals.len(),
        });
    }
    let top = score_vals.iter().flatten().copied().fold(0.0f64, f64::max);
    let wrong = (1.0 - p_correct) / top.max(1.0);
    for ((m, b), &s) in scores.indexed_iter() {
        let whole_in_range = (0.0..=top).contains(&s) && s.fract() == 0.0;
        if !s.is_nan() && !whole_in_range {
            return Err(ModelError::BadProbability {
                what: "score",
                row: m,
                column: b,
                value: s,
                why: "a score must be a whole number from 0 to the highest of score_vals",
            });
        }
    }
    let given = |level: f64| {
        scores.mapv(|s| {
            if s.is_nan() {
                f64::NAN
            } else if s == level {
                p_correct
            } else {
                wrong
            }
        })
    };
    let levels = score_vals.iter().map(Vec::len).max().unwrap_or(0);
    let per_level = (0..levels)
        .map(|j| {
            let mut t = Array2::zeros(scores.dim());
            for ((m, b), v) in t.indexed_iter_mut() {
                let level = score_vals[b].get(j).copied().unwrap_or(0.0);
                let s = scores[[m, b]];
                *v = if s.is_nan() {
                    f64::NAN
                } else if level == 0.0 {
                    // No event at this level: never read.
                    wrong
                } else if s == level {
                    p_correct
                } else {
                    wrong
                };
            }
            t
        })
        .collect();
    Ok((given(0.0), per_level))
}
