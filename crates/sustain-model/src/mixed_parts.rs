//! The inputs of a [`crate::MixedModel`] (one part per biomarker type), what it
//! records of them, and their checks.

use crate::data::MAX_ABS_VALUE;
use crate::error::{ModelError, Result};
use ndarray::ArrayView2;

/// The z-scored biomarkers: data (subjects x biomarkers, NaN = missing) and the
/// z-score model's parameters.
#[derive(Debug, Clone, Copy)]
pub struct ZscorePart<'a> {
    /// z-scores, subjects x biomarkers.
    pub data: ArrayView2<'a, f64>,
    /// Thresholds per biomarker (0 = no event).
    pub z_vals: &'a [Vec<f64>],
    /// The value each biomarker reaches at the end of the disease.
    pub z_max: &'a [f64],
}

/// The ordinal biomarkers, as [`crate::ordinal`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct OrdinalPart<'a> {
    /// Scores per biomarker (0 = no event).
    pub score_vals: &'a [Vec<f64>],
    /// `P(observed score | normal)`, subjects x biomarkers (pySuStaIn `prob_nl`).
    pub p_normal: ArrayView2<'a, f64>,
    /// `P(observed score | score level j)`, one table per column of `score_vals`.
    pub p_score: &'a [ArrayView2<'a, f64>],
}

/// The event-based biomarkers, as [`crate::event_based`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct EventPart<'a> {
    /// Likelihood of each value given the event has happened (`L_yes`).
    pub p_event: ArrayView2<'a, f64>,
    /// Likelihood of each value given it has not (`L_no`).
    pub p_no_event: ArrayView2<'a, f64>,
}

/// What a mixed model is made of (for results files and figures).
#[derive(Debug, Clone, PartialEq)]
pub struct MixedSpec {
    /// Thresholds of the z-scored biomarkers (first in the biomarker order).
    pub z_vals: Vec<Vec<f64>>,
    /// `z_max` of the z-scored biomarkers.
    pub z_max: Vec<f64>,
    /// Scores of the ordinal biomarkers (after the z-scored ones).
    pub score_vals: Vec<Vec<f64>>,
    /// Number of event biomarkers (last).
    pub n_event: usize,
}

impl MixedSpec {
    /// The padded biomarkers x levels matrix whose non-zero entries are the events
    /// (z rows, ordinal rows, then `[1]` per event biomarker), as the reference's
    /// `mixed_data_vals`.
    pub fn values(&self) -> Vec<Vec<f64>> {
        let mut rows: Vec<Vec<f64>> = self.z_vals.clone();
        rows.extend(self.score_vals.iter().cloned());
        rows.extend((0..self.n_event).map(|_| vec![1.0]));
        rows
    }
    /// Number of z-scored biomarkers.
    pub fn n_zscore(&self) -> usize {
        self.z_vals.len()
    }
    /// Number of ordinal biomarkers.
    pub fn n_ordinal(&self) -> usize {
        self.score_vals.len()
    }
}

/// The number of subjects every given part agrees on.
pub(crate) fn subject_count(rows: &[(&'static str, usize)]) -> Result<usize> {
    let Some(&(first, n)) = rows.first() else {
        return Err(ModelError::Shape(
            "a mixed model needs z-score, ordinal or event biomarkers".into(),
        ));
    };
    if let Some(&(what, other)) = rows.iter().find(|r| r.1 != n) {
        return Err(ModelError::Shape(format!(
            "{what} has {other} subjects but {first} has {n}"
        )));
    }
    if n == 0 {
        return Err(ModelError::NoSubjects);
    }
    Ok(n)
}

/// A discrete builder's error with its column moved to the mixed biomarker order.
pub(crate) fn shift_column(mut err: ModelError, by: usize) -> ModelError {
    if let ModelError::BadProbability { column, .. } = &mut err {
        *column += by;
    }
    err
}

/// Checks the z-scores (finite or NaN, not too large); errors name 0-based row and
/// column.
pub(crate) fn check_zscores(data: ArrayView2<f64>) -> Result<()> {
    for ((row, column), &v) in data.indexed_iter() {
        if v.is_infinite() {
            return Err(ModelError::InfiniteValue { row, column });
        }
        if v.abs() > MAX_ABS_VALUE {
            return Err(ModelError::ValueTooLarge {
                row,
                column,
                value: v,
            });
        }
    }
    Ok(())
}
