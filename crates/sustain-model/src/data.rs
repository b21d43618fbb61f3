//! Subjects x biomarkers z-score data with a missing mask.

use crate::error::{ModelError, Result};
use ndarray::{Array2, ArrayView2, Axis};

/// Z-scores of `n_subjects` x `n_biomarkers`, oriented so that larger is more
/// abnormal. NaN marks a missing value.
///
/// Invariants: at least one subject; no infinities; every subject has at least one
/// observed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    values: Array2<f64>,
}

/// Largest `|value|` a data set or model may hold: squares of larger values (and
/// their sums over biomarkers) overflow the likelihood to NaN.
pub const MAX_ABS_VALUE: f64 = 1e150;

impl Dataset {
    /// Validates a subjects x biomarkers matrix (NaN = missing).
    ///
    /// ```
    /// use sustain_model::Dataset;
    /// let d = Dataset::new(ndarray::array![[0.5, f64::NAN], [1.0, 2.0]]).unwrap();
    /// assert_eq!(d.n_missing(), 1);
    /// assert!(Dataset::new(ndarray::array![[f64::INFINITY, 1.0]]).is_err());
    /// ```
    pub fn new(values: Array2<f64>) -> Result<Self> {
        if values.nrows() == 0 {
            return Err(ModelError::NoSubjects);
        }
        for (row, subject) in values.axis_iter(Axis(0)).enumerate() {
            if let Some(column) = subject.iter().position(|v| v.is_infinite()) {
                return Err(ModelError::InfiniteValue { row, column });
            }
            if let Some(column) = subject.iter().position(|v| v.abs() > MAX_ABS_VALUE) {
                let value = subject[column];
                return Err(ModelError::ValueTooLarge { row, column, value });
            }
            if subject.iter().all(|v| v.is_nan()) {
                return Err(ModelError::AllMissing { row });
            }
        }
        Ok(Self { values })
    }

    /// Builds from rows; each row must have the same length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let width = rows.first().map_or(0, Vec::len);
        if let Some(bad) = rows.iter().position(|r| r.len() != width) {
            return Err(ModelError::Shape(format!(
                "row {bad} has {} values, row 0 has {width}",
                rows[bad].len()
            )));
        }
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let values = Array2::from_shape_vec((rows.len(), width), flat)
            .map_err(|e| ModelError::Shape(e.to_string()))?;
        Self::new(values)
    }

    /// Number of subjects `M`.
    pub fn n_subjects(&self) -> usize {
        self.values.nrows()
    }
    /// Number of biomarkers `B`.
    pub fn n_biomarkers(&self) -> usize {
        self.values.ncols()
    }
    /// The values (NaN = missing).
    pub fn values(&self) -> ArrayView2<'_, f64> {
        self.values.view()
    }
    /// Whether subject `m`'s biomarker `b` is missing.
    pub fn is_missing(&self, m: usize, b: usize) -> bool {
        self.values[[m, b]].is_nan()
    }
    /// Number of missing values.
    pub fn n_missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }
    /// The subjects at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Result<Self> {
        Self::new(self.values.select(Axis(0), rows))
    }
}
