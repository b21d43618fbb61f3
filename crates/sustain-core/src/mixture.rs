//! A SuStaIn model: one sequence per subtype and the subtype fractions.

use crate::error::{ModelError, Result};
use crate::sequence::Sequence;

/// Tolerance on `sum(f) == 1`.
pub const FRACTION_SUM_TOLERANCE: f64 = 1e-6;

/// Sequences `S` (one per subtype) and fractions `f` (non-negative, summing to 1).
#[derive(Debug, PartialEq)]
pub struct Mixture {
    sequences: Vec<Sequence>,
    fractions: Vec<f64>,
}

clone_reusing_buffers!(Mixture {
    sequences,
    fractions
});

impl Mixture {
    /// Validates the fractions (finite, non-negative, sum 1 within 1e-6, one per
    /// sequence). The sequences are valid by construction.
    pub fn new(sequences: Vec<Sequence>, fractions: Vec<f64>) -> Result<Self> {
        validate_fractions(&fractions, sequences.len())?;
        if let Some(first) = sequences.first() {
            if sequences.iter().any(|s| s.len() != first.len()) {
                return Err(ModelError::InvalidSequence(
                    "sequences differ in length".into(),
                ));
            }
        }
        Ok(Self {
            sequences,
            fractions,
        })
    }
    /// One subtype with fraction 1.
    pub fn single(sequence: Sequence) -> Self {
        Self {
            sequences: vec![sequence],
            fractions: vec![1.0],
        }
    }
    /// Number of subtypes.
    pub fn n_subtypes(&self) -> usize {
        self.sequences.len()
    }
    /// The sequences, by subtype.
    pub fn sequences(&self) -> &[Sequence] {
        &self.sequences
    }
    /// Mutable sequences (they stay valid: `Sequence` only allows valid moves).
    pub fn sequences_mut(&mut self) -> &mut [Sequence] {
        &mut self.sequences
    }
    /// The fractions, by subtype.
    pub fn fractions(&self) -> &[f64] {
        &self.fractions
    }
    /// Replaces the fractions, validating them.
    pub fn set_fractions(&mut self, fractions: Vec<f64>) -> Result<()> {
        validate_fractions(&fractions, self.sequences.len())?;
        self.fractions = fractions;
        Ok(())
    }
    /// Replaces the fractions by a copy of `fractions`, validating them (no allocation
    /// when the count is unchanged).
    pub fn copy_fractions_from(&mut self, fractions: &[f64]) -> Result<()> {
        validate_fractions(fractions, self.sequences.len())?;
        self.fractions.clear();
        self.fractions.extend_from_slice(fractions);
        Ok(())
    }
    /// Splits into parts.
    pub fn into_parts(self) -> (Vec<Sequence>, Vec<f64>) {
        (self.sequences, self.fractions)
    }
}

/// Checks fractions: `n` values, finite, non-negative, summing to 1.
pub fn validate_fractions(f: &[f64], n: usize) -> Result<()> {
    if n == 0 {
        return Err(ModelError::InvalidFractions(
            "a model needs at least one subtype".into(),
        ));
    }
    if f.len() != n {
        return Err(ModelError::InvalidFractions(format!(
            "{} fractions for {} subtypes",
            f.len(),
            n
        )));
    }
    if let Some(v) = f.iter().find(|v| !v.is_finite() || **v < 0.0) {
        return Err(ModelError::InvalidFractions(format!(
            "fraction {v} is negative or not finite"
        )));
    }
    let sum: f64 = f.iter().sum();
    if (sum - 1.0).abs() > FRACTION_SUM_TOLERANCE {
        return Err(ModelError::InvalidFractions(format!(
            "fractions sum to {sum}, not 1"
        )));
    }
    Ok(())
}
