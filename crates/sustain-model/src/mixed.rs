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

use crate::error::{ModelError, Result};
use crate::events::EventSet;
use crate::kernels::LANES;
use crate::mixed_lanes::MixedLanes;
use crate::mixed_parts::{check_zscores, shift_column, subject_count};
pub use crate::mixed_parts::{EventPart, MixedSpec, OrdinalPart, ZscorePart};
use crate::ordinal::score_events;
use crate::prefix::check_subset;
use crate::sequence::Sequence;
use crate::stages::fill_curve;
use std::collections::HashMap;
use sustain_core::{EventOrder, StageModel, SustainModel};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

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
    /// `z` and `delta` in groups of subjects, for the vectorised path.
    lanes: MixedLanes,
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
            lanes: MixedLanes::new(&delta, &z, n_subjects, n),
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
        // In groups of subjects, stage by stage: the same stage values as
        // `stage_loglikes`, summed with the vectorised exponential.
        let mu = self.ramps(sequence);
        let mut padded = vec![0.0; self.lanes.n_groups * LANES];
        self.lanes
            .subtype_lse(sequence.order_u16(), &mu, &mut Vec::new(), &mut padded);
        let n = out.len().min(self.n_subjects);
        out[..n].copy_from_slice(&padded[..n]);
    }
    fn subset(&self, subjects: &[usize]) -> Result<Self> {
        check_subset(subjects, self.n_subjects)?;
        let (n, n_z) = (self.order.n_events(), self.spec.n_zscore());
        let rows = |v: &[f64], w: usize| -> Vec<f64> {
            subjects
                .iter()
                .flat_map(|&m| v[m * w..(m + 1) * w].iter().copied())
                .collect()
        };
        let (z, delta) = (rows(&self.z, n_z), rows(&self.delta, n));
        Ok(Self {
            spec: self.spec.clone(),
            order: self.order.clone(),
            n_subjects: subjects.len(),
            value: self.value.clone(),
            lanes: MixedLanes::new(&delta, &z, subjects.len(), n),
            z,
            delta,
            offset: rows(&self.offset, 1),
        })
    }
    fn subject_offsets(&self) -> &[f64] {
        &self.offset
    }
}

/// E-M, chains, staging and cross-validation through the generic evaluations.
impl SustainModel for MixedModel {}
