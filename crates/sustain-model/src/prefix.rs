//! Models whose stage likelihood is a product of per-event factors (spec section
//! 10): the event-based (mixture) model and the ordinal model. When event `e`
//! happens, each subject's factor for its biomarker changes by a fixed ratio, so
//! `log p(x_m | k, S) = offset_m + sum_{j < k} delta[m][S_j]`: stage values are
//! prefix sums along the sequence.

use crate::error::{ModelError, Result};
use crate::kernels::LANES;
use crate::prefix_chain::{ChainRows, PrefixShard};
use crate::prefix_em::PrefixBatch;
use crate::prefix_lanes::PrefixLanes;
use crate::sequence::Sequence;
use std::sync::{Arc, OnceLock};
use sustain_core::{
    neumaier_sum, BatchEvaluator, EventOrder, Mixture, ShardState, StageModel, SustainModel,
};

/// Smallest probability taken in logarithms: a zero factor becomes `ln` of the
/// smallest normal number (about -708), so a stage it rules out gets a weight of
/// about `1e-308` rather than a `-inf` that would poison the prefix sums.
pub(crate) fn log_floor(p: f64) -> f64 {
    p.max(f64::MIN_POSITIVE).ln()
}

/// Which family a [`PrefixModel`] is, and what it was built from (for results and
/// messages).
#[derive(Debug, Clone, PartialEq)]
pub enum PrefixFamily {
    /// Event-based (pySuStaIn `MixtureSustain`): one event per biomarker.
    EventBased,
    /// Ordinal (pySuStaIn `OrdinalSustain`): `score_vals` per biomarker (0 = no
    /// event), events numbered score-major.
    Ordinal {
        /// Scores of each biomarker's events, zeros where given.
        score_vals: Vec<Vec<f64>>,
    },
}

/// A model of per-event factors on prepared data.
///
/// Invariant: `delta.len() == n_subjects * n_events`, `offset.len() == n_subjects`,
/// every value finite.
#[derive(Debug, Clone)]
pub struct PrefixModel {
    family: PrefixFamily,
    order: EventOrder,
    n_subjects: usize,
    /// `delta[m * N + e]`: the change of subject `m`'s log-likelihood when event `e`
    /// happens.
    delta: Vec<f64>,
    /// Per subject: the log-likelihood at stage 0 and the stage prior `-ln(N + 1)`.
    offset: Vec<f64>,
    /// `delta` in groups of subjects, event-major, for the vectorised paths.
    lanes: PrefixLanes,
    /// The chains' layout of the deltas, built by the first chain.
    chain_rows: OnceLock<Arc<ChainRows>>,
}

impl PrefixModel {
    /// A model from per-subject event deltas (`delta[m][e]`) and stage-0
    /// log-likelihoods (`base[m]`, without the stage prior).
    pub(crate) fn from_parts(
        family: PrefixFamily,
        order: EventOrder,
        delta: Vec<f64>,
        base: Vec<f64>,
    ) -> Result<Self> {
        let n = order.n_events();
        let n_subjects = base.len();
        if n_subjects == 0 {
            return Err(ModelError::NoSubjects);
        }
        if delta.len() != n_subjects * n {
            return Err(ModelError::Shape(format!(
                "{} event factors for {n_subjects} subjects and {n} events",
                delta.len()
            )));
        }
        let prior = -(order.n_stages() as f64).ln();
        Ok(Self {
            family,
            lanes: PrefixLanes::new(&delta, n_subjects, n),
            chain_rows: OnceLock::new(),
            order,
            n_subjects,
            delta,
            offset: base.into_iter().map(|b| b + prior).collect(),
        })
    }

    /// The family and its parameters.
    pub fn family(&self) -> &PrefixFamily {
        &self.family
    }

    /// `delta[m * N + e]`: how subject `m`'s log-likelihood changes when event `e`
    /// happens (subject-major; N events). With [`StageModel::subject_offsets`] this
    /// is the whole prepared data, for backends that keep it elsewhere (the GPU).
    pub fn event_deltas(&self) -> &[f64] {
        &self.delta
    }

    /// The bits of the prepared data, for fingerprints of fits: offsets, then the
    /// event deltas, little-endian.
    pub fn identity_bytes(&self) -> Vec<u8> {
        self.offset
            .iter()
            .chain(&self.delta)
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect()
    }

    /// `log p(x_m | k, S)` less the offset, for one subject, into `out` (N + 1).
    #[inline]
    fn subject_stages(&self, m: usize, order: &[u16], out: &mut [f64]) {
        let n = self.order.n_events();
        let d = &self.delta[m * n..(m + 1) * n];
        let mut acc = 0.0;
        out[0] = 0.0;
        for (o, &e) in out[1..].iter_mut().zip(order) {
            acc += d[e as usize];
            *o = acc;
        }
    }
}

/// Fails unless `subjects` (for [`StageModel::subset`]) is non-empty and each
/// below `n_subjects`.
pub(crate) fn check_subset(subjects: &[usize], n_subjects: usize) -> Result<()> {
    if let Some(&m) = subjects.iter().find(|&&m| m >= n_subjects) {
        return Err(ModelError::Shape(format!("subject {m} of {n_subjects}")));
    }
    if subjects.is_empty() {
        return Err(ModelError::NoSubjects);
    }
    Ok(())
}

impl StageModel for PrefixModel {
    fn order(&self) -> &EventOrder {
        &self.order
    }
    fn n_subjects(&self) -> usize {
        self.n_subjects
    }
    fn stage_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let ns = self.order.n_stages();
        let order = sequence.order_u16();
        for (m, row) in out.chunks_exact_mut(ns).take(self.n_subjects).enumerate() {
            self.subject_stages(m, order, row);
        }
    }
    fn subject_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let mut padded = vec![0.0; self.lanes.n_groups * LANES];
        self.lanes.subtype_lse(sequence.order_u16(), &mut padded);
        let n = out.len().min(self.n_subjects);
        out[..n].copy_from_slice(&padded[..n]);
    }
    fn subset(&self, subjects: &[usize]) -> Result<Self> {
        let n = self.order.n_events();
        check_subset(subjects, self.n_subjects)?;
        let delta: Vec<f64> = subjects
            .iter()
            .flat_map(|&m| self.delta[m * n..(m + 1) * n].iter().copied())
            .collect();
        Ok(Self {
            family: self.family.clone(),
            order: self.order.clone(),
            n_subjects: subjects.len(),
            lanes: PrefixLanes::new(&delta, subjects.len(), n),
            chain_rows: OnceLock::new(),
            delta,
            offset: subjects.iter().map(|&m| self.offset[m]).collect(),
        })
    }
    fn subject_offsets(&self) -> &[f64] {
        &self.offset
    }
}

impl PrefixModel {
    /// The subject-blocked layout.
    pub(crate) fn lanes(&self) -> &PrefixLanes {
        &self.lanes
    }

    /// The chains' layout ([`ChainRows`]).
    pub(crate) fn chain_rows(&self) -> Arc<ChainRows> {
        Arc::clone(
            self.chain_rows
                .get_or_init(|| Arc::new(ChainRows::new(&self.lanes))),
        )
    }
}

/// Per-subtype `ln f`.
pub(crate) fn log_fractions(mixture: &Mixture) -> Vec<f64> {
    mixture.fractions().iter().map(|f| f.ln()).collect()
}

impl SustainModel for PrefixModel {
    fn loglike(&self, mixture: &Mixture) -> f64 {
        neumaier_sum(&self.log_p_subjects(mixture))
    }
    fn log_p_subjects(&self, mixture: &Mixture) -> Vec<f64> {
        let orders: Vec<&[u16]> = mixture.sequences().iter().map(|s| s.order_u16()).collect();
        let mut mix = vec![0.0; self.lanes.n_groups * LANES];
        let log_f = log_fractions(mixture);
        self.lanes
            .mixture_ln(&orders, mixture.fractions(), &log_f, &mut mix);
        mix.truncate(self.n_subjects);
        for (v, o) in mix.iter_mut().zip(&self.offset) {
            *v += o;
        }
        mix
    }
    fn shard_state(model: Arc<Self>, start: &Mixture) -> Box<dyn ShardState> {
        Box::new(PrefixShard::new(model, start))
    }
    fn batch_evaluator(model: &Arc<Self>) -> Box<dyn BatchEvaluator + Send> {
        Box::new(PrefixBatch::new(Arc::clone(model)))
    }
}
