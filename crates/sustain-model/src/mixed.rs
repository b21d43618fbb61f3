//! The mixed-type model (pySuStaIn `MixedTypeSustain`, spec section 10): z-scored
//! biomarkers (section 2's ramps) with ordinal and event-based ones in one sequence.
//!
//! Biomarkers are ordered z-score, then ordinal, then event (an event biomarker is
//! an ordinal one with the single score 1). Events are numbered score-major over
//! the padded biomarkers x levels matrix of `z_vals` and `score_vals`, zeros
//! skipped, as the reference numbers them. For subject `m` at stage `k`:
//!
//! `log p(x_m | k, S) = offset_m - sum_{b z-scored, observed} (x_mb - mu_b(k))^2 / 2
//!                      + sum_{j < k} delta[m][S_j]`
//!
//! where `mu_b` is the z-score model's ramp through the positions of `b`'s events
//! in the whole mixed sequence (`z_min` 0, `z_max[b]`, `N` = all events), and the
//! deltas are those of the ordinal and event-based models (the change of the log
//! likelihood when a discrete event happens). The offset holds each subject's
//! stage-0 discrete terms, `-ln(2 pi) / 2` per observed z-score and the stage prior
//! `-ln(N + 1)`, so absolute values are the reference's.
//!
//! Missing values: a missing (NaN) z-score is marginalised (it contributes 0 at
//! every stage, the z-score model's `Marginalise` convention; the reference has no
//! missing z-scores); a missing discrete value as the ordinal and event-based
//! models treat it (NaN in all of its inputs: the same factor at every stage).

use crate::data::MAX_ABS_VALUE;
use crate::error::{ModelError, Result};
use crate::events::EventSet;
use crate::ordinal::score_events;
use crate::sequence::Sequence;
use crate::stages::fill_curve;
use ndarray::ArrayView2;
use std::collections::HashMap;
use sustain_core::{EventOrder, StageModel, SustainModel};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

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

/// The mixed-type model on prepared data.
///
/// Invariants: `z.len() == n_subjects * n_zscore`, `delta.len() == n_subjects * N`
/// (0 for z-score events), `offset.len() == n_subjects`.
#[derive(Debug, Clone)]
pub struct MixedModel {
    spec: MixedSpec,
    order: EventOrder,
    n_subjects: usize,
    /// Each event's threshold (z-score events) or score.
    value: Vec<f64>,
    /// z-scores, subject-major, NaN = missing.
    z: Vec<f64>,
    /// `delta[m * N + e]`: the change of subject `m`'s log-likelihood when the
    /// discrete event `e` happens.
    delta: Vec<f64>,
    offset: Vec<f64>,
}

/// The number of subjects every given part agrees on.
fn subject_count(rows: &[(&'static str, usize)]) -> Result<usize> {
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
fn shift_column(err: ModelError, by: usize) -> ModelError {
    match err {
        ModelError::BadProbability {
            what,
            row,
            column,
            value,
            why,
        } => ModelError::BadProbability {
            what,
            row,
            column: column + by,
            value,
            why,
        },
        other => other,
    }
}

/// Checks the z-scores (finite or NaN, not too large); errors name 0-based row and
/// column.
fn check_zscores(data: ArrayView2<f64>) -> Result<()> {
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

impl MixedModel {
    /// Builds the model from its parts (at least one). Errors name the input and,
    /// for data, the 0-based row and the column in the mixed biomarker order.
    pub fn new(
        zscore: Option<ZscorePart>,
        ordinal: Option<OrdinalPart>,
        event: Option<EventPart>,
    ) -> Result<Self> {
        let mut rows = Vec::new();
        if let Some(z) = &zscore {
            rows.push(("the z-score data", z.data.nrows()));
        }
        if let Some(o) = &ordinal {
            rows.push(("p_normal", o.p_normal.nrows()));
        }
        if let Some(e) = &event {
            rows.push(("p_event", e.p_event.nrows()));
        }
        let n_subjects = subject_count(&rows)?;
        let spec = MixedSpec {
            z_vals: zscore.map_or(Vec::new(), |z| z.z_vals.to_vec()),
            z_max: zscore.map_or(Vec::new(), |z| z.z_max.to_vec()),
            score_vals: ordinal.map_or(Vec::new(), |o| o.score_vals.to_vec()),
            n_event: event.map_or(0, |e| e.p_event.ncols()),
        };
        let (n_z, n_o) = (spec.n_zscore(), spec.n_ordinal());
        if let Some(z) = &zscore {
            // The z-score model's checks of z_vals and z_max (biomarkers come first,
            // so its biomarker numbers are the mixed ones).
            EventSet::new(z.z_vals, z.z_max)?;
            if z.data.ncols() != n_z {
                return Err(ModelError::BiomarkerCount {
                    data: z.data.ncols(),
                    model: n_z,
                });
            }
            check_zscores(z.data)?;
        }
        let values = spec.values();
        let (order, events) = score_events(&values)?;
        let labels = events
            .iter()
            .map(|&(b, j)| match b {
                b if b < n_z => format!("z = {}", values[b][j]),
                b if b < n_z + n_o => format!("score {}", values[b][j]),
                _ => "event".to_string(),
            })
            .collect();
        let order = order.with_labels(labels)?;
        let index: HashMap<(usize, usize), usize> =
            events.iter().enumerate().map(|(e, &be)| (be, e)).collect();
        let n = order.n_events();
        let mut delta = vec![0.0; n_subjects * n];
        let mut discrete_base = vec![0.0; n_subjects];
        if let Some(o) = &ordinal {
            let parts = crate::ordinal::ordinal_parts(o.score_vals, o.p_normal, o.p_score)
                .map_err(|e| shift_column(e, n_z))?;
            let local_n = parts.order.n_events();
            for (le, &(b, j)) in parts.events.iter().enumerate() {
                let e = index[&(n_z + b, j)];
                for m in 0..n_subjects {
                    delta[m * n + e] = parts.delta[m * local_n + le];
                }
            }
            discrete_base = parts.base;
        }
        if let Some(ev) = &event {
            let (local, ev_delta, ev_base) =
                crate::event_based::event_parts(ev.p_event, ev.p_no_event)
                    .map_err(|e| shift_column(e, n_z + n_o))?;
            let local_n = local.n_events();
            for b in 0..local_n {
                let e = index[&(n_z + n_o + b, 0)];
                for m in 0..n_subjects {
                    delta[m * n + e] = ev_delta[m * local_n + b];
                }
            }
            for (d, v) in discrete_base.iter_mut().zip(ev_base) {
                *d += v;
            }
        }
        let z: Vec<f64> = zscore.map_or(Vec::new(), |z| z.data.iter().copied().collect());
        let prior = -(order.n_stages() as f64).ln();
        let offset = (0..n_subjects)
            .map(|m| {
                let observed = z[m * n_z..(m + 1) * n_z]
                    .iter()
                    .filter(|v| !v.is_nan())
                    .count();
                discrete_base[m] - HALF_LN_2PI * observed as f64 + prior
            })
            .collect();
        let value = events.iter().map(|&(b, j)| values[b][j]).collect();
        Ok(Self {
            spec,
            order,
            n_subjects,
            value,
            z,
            delta,
            offset,
        })
    }

    /// What the model is made of.
    pub fn spec(&self) -> &MixedSpec {
        &self.spec
    }

    /// Each event's threshold (z-score events) or score (ordinal; 1 for an event
    /// biomarker's event).
    pub fn event_values(&self) -> &[f64] {
        &self.value
    }

    /// Whether biomarker `b` (mixed order) is z-scored.
    pub fn is_zscore(&self, b: usize) -> bool {
        b < self.spec.n_zscore()
    }

    /// The bits of the prepared data, for fingerprints of fits: offsets, deltas,
    /// then the z-scores, little-endian.
    pub fn identity_bytes(&self) -> Vec<u8> {
        self.offset
            .iter()
            .chain(&self.delta)
            .chain(&self.z)
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect()
    }

    /// The expected z of each z-scored biomarker at each stage of `sequence`,
    /// biomarker-major (`mu[b * (N + 1) + k]`).
    fn ramps(&self, sequence: &Sequence) -> Vec<f64> {
        let ns = self.order.n_stages();
        let mut mu = vec![0.0; self.spec.n_zscore() * ns];
        let mut knots: Vec<(usize, f64)> = Vec::with_capacity(8);
        for (b, out) in mu.chunks_exact_mut(ns).enumerate() {
            knots.clear();
            knots.push((0, 0.0));
            for &e in self.order.biomarker_events(b) {
                knots.push((sequence.position(e) + 1, self.value[e]));
            }
            knots.push((ns, self.spec.z_max[b]));
            fill_curve(&knots, out);
        }
        mu
    }

    /// Subject `m`'s stage log-likelihoods less its offset into `row` (N + 1).
    fn subject_row(&self, m: usize, order: &[u16], mu: &[f64], row: &mut [f64]) {
        let n = self.order.n_events();
        let d = &self.delta[m * n..(m + 1) * n];
        let mut acc = 0.0;
        row[0] = 0.0;
        for (o, &e) in row[1..].iter_mut().zip(order) {
            acc += d[e as usize];
            *o = acc;
        }
        let n_z = self.spec.n_zscore();
        let ns = row.len();
        for (b, &x) in self.z[m * n_z..(m + 1) * n_z].iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            for (o, &u) in row.iter_mut().zip(&mu[b * ns..(b + 1) * ns]) {
                let r = x - u;
                *o -= 0.5 * r * r;
            }
        }
    }
}

impl StageModel for MixedModel {
    fn order(&self) -> &EventOrder {
        &self.order
    }
    fn n_subjects(&self) -> usize {
        self.n_subjects
    }
    fn stage_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let ns = self.order.n_stages();
        let mu = self.ramps(sequence);
        let order = sequence.order_u16();
        for (m, row) in out.chunks_exact_mut(ns).take(self.n_subjects).enumerate() {
            self.subject_row(m, order, &mu, row);
        }
    }
    fn subject_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        // One row at a time: no subjects x stages buffer.
        let mu = self.ramps(sequence);
        let order = sequence.order_u16();
        let mut row = vec![0.0; self.order.n_stages()];
        for (m, o) in out.iter_mut().take(self.n_subjects).enumerate() {
            self.subject_row(m, order, &mu, &mut row);
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            *o = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        }
    }
    fn subset(&self, subjects: &[usize]) -> Result<Self> {
        if let Some(&m) = subjects.iter().find(|&&m| m >= self.n_subjects) {
            return Err(ModelError::Shape(format!(
                "subject {m} of {}",
                self.n_subjects
            )));
        }
        if subjects.is_empty() {
            return Err(ModelError::NoSubjects);
        }
        let (n, n_z) = (self.order.n_events(), self.spec.n_zscore());
        let rows = |v: &[f64], w: usize| -> Vec<f64> {
            subjects
                .iter()
                .flat_map(|&m| v[m * w..(m + 1) * w].iter().copied())
                .collect()
        };
        Ok(Self {
            spec: self.spec.clone(),
            order: self.order.clone(),
            n_subjects: subjects.len(),
            value: self.value.clone(),
            z: rows(&self.z, n_z),
            delta: rows(&self.delta, n),
            offset: rows(&self.offset, 1),
        })
    }
    fn subject_offsets(&self) -> &[f64] {
        &self.offset
    }
}

/// E-M, chains, staging and cross-validation through the generic evaluations.
impl SustainModel for MixedModel {}
