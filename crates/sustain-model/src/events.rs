//! The event set: one event per (biomarker, non-zero threshold), numbered as the
//! reference numbers them (z-score-major).

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use sustain_core::EventOrder;

/// One event: biomarker `biomarker` reaches threshold `z`, its `level`-th threshold
/// (0-based, thresholds in increasing order).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Biomarker index (column of the data).
    pub biomarker: usize,
    /// Threshold level among the biomarker's own thresholds, 0-based.
    pub level: usize,
    /// The z-score threshold.
    pub z: f64,
}

/// The events of a z-score model and the curve parameters of each biomarker.
///
/// Invariants: at least one event; per biomarker the thresholds are strictly
/// increasing and positive; events are numbered z-score-major (walk threshold
/// columns `j`, then biomarkers `b`), exactly as the reference implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSet {
    events: Vec<Event>,
    /// Which biomarker each event belongs to and what precedes what (the part every
    /// model family shares; `EventSet` derefs to it).
    order: EventOrder,
    /// `z_vals` as given, zeros in place (rectangular, short rows padded with 0):
    /// the events' numbering depends on where the zeros are, so a saved model
    /// must keep them there.
    z_vals: Vec<Vec<f64>>,
    z_max: Vec<f64>,
    /// z at stage 0 (the reference uses 0).
    z_min: f64,
    /// Noise standard deviation (the reference uses 1).
    sigma: f64,
}

impl EventSet {
    /// Builds the event set from `z_vals` (biomarkers x levels, 0 = no event) and
    /// `z_max` (one per biomarker). Rows of `z_vals` may be ragged (shorter rows mean
    /// fewer events).
    ///
    /// ```
    /// use sustain_model::EventSet;
    /// let ev = EventSet::new(&[vec![1.0, 2.0], vec![1.0, 0.0]], &[5.0, 4.0]).unwrap();
    /// assert_eq!(ev.n_events(), 3);
    /// // z-score-major: (b0,1), (b1,1), then (b0,2)
    /// assert_eq!(ev.event(2).biomarker, 0);
    /// ```
    pub fn new(z_vals: &[Vec<f64>], z_max: &[f64]) -> Result<Self> {
        let n_biomarkers = z_vals.len();
        if n_biomarkers == 0 {
            return Err(ModelError::Shape("z_vals has no biomarkers".into()));
        }
        if z_max.len() != n_biomarkers {
            return Err(ModelError::Shape(format!(
                "z_vals has {} biomarkers but z_max has {} values",
                n_biomarkers,
                z_max.len()
            )));
        }
        for (b, row) in z_vals.iter().enumerate() {
            if row.iter().any(|z| !z.is_finite()) {
                return Err(ModelError::NonFiniteModel {
                    what: "z_vals",
                    biomarker: b,
                });
            }
            if !z_max[b].is_finite() {
                return Err(ModelError::NonFiniteModel {
                    what: "z_max",
                    biomarker: b,
                });
            }
            if !(z_max[b] > 0.0 && z_max[b] <= crate::data::MAX_ABS_VALUE) {
                return Err(ModelError::ModelValueOutOfRange {
                    what: "z_max",
                    biomarker: b,
                    value: z_max[b],
                });
            }
            if let Some(&z) = row.iter().find(|&&z| z > crate::data::MAX_ABS_VALUE) {
                return Err(ModelError::ModelValueOutOfRange {
                    what: "a threshold",
                    biomarker: b,
                    value: z,
                });
            }
            if let Some(&z) = row.iter().find(|&&z| z < 0.0) {
                return Err(ModelError::NegativeThreshold {
                    biomarker: b,
                    value: z,
                });
            }
            check_increasing(b, row)?;
        }
        let n_levels = z_vals.iter().map(Vec::len).max().unwrap_or(0);
        let mut events = Vec::new();
        let mut by_biomarker = vec![Vec::new(); n_biomarkers];
        for (b, j) in level_major_events(z_vals) {
            by_biomarker[b].push(events.len());
            events.push(Event {
                biomarker: b,
                level: by_biomarker[b].len() - 1,
                z: z_vals[b][j],
            });
        }
        let biomarker_of: Vec<usize> = events.iter().map(|e| e.biomarker).collect();
        let order = EventOrder::new(&biomarker_of, n_biomarkers)?
            .with_labels(events.iter().map(|e| format!("z = {}", e.z)).collect())?;
        debug_assert!((0..n_biomarkers).all(|b| order.biomarker_events(b) == by_biomarker[b]));
        let z_vals = z_vals
            .iter()
            .map(|row| {
                let mut row = row.clone();
                row.resize(n_levels, 0.0);
                row
            })
            .collect();
        Ok(Self {
            events,
            order,
            z_vals,
            z_max: z_max.to_vec(),
            z_min: 0.0,
            sigma: 1.0,
        })
    }

    /// Builds a model where every biomarker has the same thresholds.
    pub fn uniform(n_biomarkers: usize, thresholds: &[f64], z_max: f64) -> Result<Self> {
        Self::new(
            &vec![thresholds.to_vec(); n_biomarkers],
            &vec![z_max; n_biomarkers],
        )
    }

    /// The event order (biomarkers and precedence), model-neutral.
    pub fn order(&self) -> &EventOrder {
        &self.order
    }
    /// Event `e`.
    pub fn event(&self, e: usize) -> Event {
        self.events[e]
    }
    /// All events, by index.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
    /// The value biomarker `b` reaches at the end of the disease.
    pub fn z_max(&self, b: usize) -> f64 {
        self.z_max[b]
    }
    /// All `z_max` values.
    pub fn z_max_all(&self) -> &[f64] {
        &self.z_max
    }
    /// z at stage 0 (0 in the reference).
    pub fn z_min(&self) -> f64 {
        self.z_min
    }
    /// Noise standard deviation (1 in the reference).
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
    /// `z_vals` as given (biomarkers x levels, 0 = no event, zeros where they
    /// were: they decide the events' numbering), short rows padded with 0 at the
    /// end (which numbers nothing differently).
    pub fn z_vals(&self) -> Vec<Vec<f64>> {
        self.z_vals.clone()
    }
}

/// An `EventSet` is an event order with thresholds: everything that needs only the
/// order (sequences, chains, E-M moves) takes it as one.
impl std::ops::Deref for EventSet {
    type Target = EventOrder;
    fn deref(&self) -> &EventOrder {
        &self.order
    }
}

/// Fails unless the nonzero values of biomarker `b`'s `row` (thresholds or
/// scores; 0 = no event) increase strictly.
pub(crate) fn check_increasing(b: usize, row: &[f64]) -> Result<()> {
    let nonzero: Vec<f64> = row.iter().copied().filter(|&v| v != 0.0).collect();
    if nonzero.windows(2).any(|w| w[1] <= w[0]) {
        return Err(ModelError::ThresholdsNotIncreasing {
            biomarker: b,
            values: row.to_vec(),
        });
    }
    Ok(())
}

/// The events of per-biomarker levels `vals[b][j]` (0 = no event), numbered
/// level-major: `(b, j)` for each column `j`, then each biomarker `b` with a
/// nonzero value there.
pub(crate) fn level_major_events(vals: &[Vec<f64>]) -> Vec<(usize, usize)> {
    let levels = vals.iter().map(Vec::len).max().unwrap_or(0);
    let mut events = Vec::new();
    for j in 0..levels {
        for (b, row) in vals.iter().enumerate() {
            if row.get(j).is_some_and(|&v| v != 0.0) {
                events.push((b, j));
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with zeros before or between thresholds numbers its events by the
    /// zeros' places (as the reference does); `z_vals()` keeps them there, so a
    /// saved and reloaded model numbers its events the same way.
    #[test]
    fn z_vals_round_trip_keeps_the_numbering() {
        for (z, zmax) in [
            (
                vec![vec![0.0, 1.0, 2.0], vec![1.0, 2.0, 3.0]],
                vec![4.0, 5.0],
            ),
            (
                vec![vec![1.0, 0.0, 2.0], vec![1.0, 2.0, 3.0], vec![1.0, 2.0]],
                vec![4.0, 5.0, 5.0],
            ),
            (vec![vec![0.0, 0.0, 3.0], vec![2.0]], vec![4.0, 5.0]),
        ] {
            let a = EventSet::new(&z, &zmax).unwrap();
            let b = EventSet::new(&a.z_vals(), &zmax).unwrap();
            assert_eq!(a.events(), b.events(), "{z:?}");
            assert_eq!(a, b);
        }
        // The numbering itself: (b1, 1) comes before (b0, 1) when b0's first column
        // is 0.
        let a = EventSet::new(&[vec![0.0, 1.0], vec![1.0, 2.0]], &[4.0, 5.0]).unwrap();
        assert_eq!(a.event(0).biomarker, 1);
        assert_eq!(a.event(1).biomarker, 0);
        assert_eq!(a.z_vals(), vec![vec![0.0, 1.0], vec![1.0, 2.0]]);
    }
}
