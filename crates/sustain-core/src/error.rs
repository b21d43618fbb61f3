//! Errors of the model crate. Every message names what was wrong and where.

use thiserror::Error;

/// Why a model, data set or sequence was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// `z_vals` and `z_max` disagree on the number of biomarkers, or rows are ragged.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A threshold or `z_max` is NaN or infinite.
    #[error("non-finite value in {what} for biomarker {biomarker}")]
    NonFiniteModel {
        /// What was wrong (the input or parameter).
        what: &'static str,
        /// 0-based biomarker index.
        biomarker: usize,
    },
    /// A biomarker's non-zero thresholds are not strictly increasing.
    #[error("thresholds of biomarker {biomarker} are not strictly increasing: {values:?}")]
    ThresholdsNotIncreasing {
        /// 0-based biomarker index.
        biomarker: usize,
        /// The values as given.
        values: Vec<f64>,
    },
    /// A threshold is negative (z-scores are oriented so that larger is more abnormal).
    #[error("threshold {value} of biomarker {biomarker} is negative: thresholds must be positive (0 means no event)")]
    NegativeThreshold {
        /// 0-based biomarker index.
        biomarker: usize,
        /// The offending value.
        value: f64,
    },
    /// No biomarker has any event.
    #[error("the model has no events: every threshold in z_vals is 0")]
    NoEvents,
    /// More events than a sequence can index compactly.
    #[error("the model has {0} events; at most 65535 are supported")]
    TooManyEvents(usize),
    /// A data value is +/-infinity (0-based row and column).
    #[error("infinite value at row {row}, column {column}")]
    InfiniteValue {
        /// 0-based row (subject).
        row: usize,
        /// 0-based column (biomarker).
        column: usize,
    },
    /// A data value is beyond `data::MAX_ABS_VALUE` (0-based row and column): its
    /// square would overflow the likelihood.
    #[error("value {value:e} at row {row}, column {column} is too large: z-scores beyond 1e150 overflow the likelihood")]
    ValueTooLarge {
        /// 0-based row (subject).
        row: usize,
        /// 0-based column (biomarker).
        column: usize,
        /// The offending value.
        value: f64,
    },
    /// A model value is beyond `data::MAX_ABS_VALUE`, or `z_max` is not positive.
    #[error("{what} of biomarker {biomarker} is {value}: it must be positive and at most 1e150")]
    ModelValueOutOfRange {
        /// What was wrong (the input or parameter).
        what: &'static str,
        /// 0-based biomarker index.
        biomarker: usize,
        /// The offending value.
        value: f64,
    },
    /// Every value of a subject is missing (0-based row).
    #[error("subject at row {row} has every biomarker missing")]
    AllMissing {
        /// 0-based row (subject).
        row: usize,
    },
    /// The data has no subjects.
    #[error("the data has no subjects")]
    NoSubjects,
    /// The data and the model disagree on the number of biomarkers.
    #[error("the data has {data} biomarkers but the model has {model}")]
    BiomarkerCount {
        /// Biomarkers of the data.
        data: usize,
        /// Biomarkers of the model.
        model: usize,
    },
    /// A sequence is not a valid ordering of the events.
    #[error("invalid sequence: {0}")]
    InvalidSequence(String),
    /// Fractions are negative, non-finite, of the wrong length or do not sum to 1.
    #[error("invalid fractions: {0}")]
    InvalidFractions(String),
    /// A move asked for a position the event may not take.
    #[error("event {event} may not move to position {position}; allowed {low}..={high}")]
    MoveNotAllowed {
        /// The event.
        event: usize,
        /// The position asked for.
        position: usize,
        /// Lowest allowed position.
        low: usize,
        /// Highest allowed position.
        high: usize,
    },
    /// A probability or likelihood input is out of its range (0-based row and
    /// column; `what` names the input, e.g. `p_event`).
    #[error("{what} at row {row}, column {column} is {value}: {why}")]
    BadProbability {
        /// What was wrong (the input or parameter).
        what: &'static str,
        /// 0-based row (subject).
        row: usize,
        /// 0-based column (biomarker).
        column: usize,
        /// The offending value.
        value: f64,
        /// Why it is refused.
        why: &'static str,
    },
    /// A backend could not evaluate (e.g. a GPU error).
    #[error("backend error: {0}")]
    Backend(String),
}

/// Result alias of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;
