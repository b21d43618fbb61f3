//! Generic evaluations built on [`StageModel`] alone: what any model family gets
//! without writing more than its stage likelihoods. Exact in double precision;
//! a family may replace them with faster ones of its own.

use crate::error::{ModelError, Result};
use crate::evaluate::SubtypeOf;
use crate::evaluate::{common_subtypes, BatchEvaluator, ChainEvaluator, Screened};
use crate::mixture::Mixture;
use crate::model::{ShardState, StageModel, SustainModel};
use crate::order::EventOrder;
use crate::sequence::Sequence;
use crate::sum::neumaier_sum;
use ndarray::Array3;
use std::sync::Arc;

/// `log sum_i exp(v_i)`, `-inf` when every term is `-inf`.
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// [`StageModel::subject_loglikes`] from [`StageModel::stage_loglikes`].
pub fn subject_loglikes_from_stages<M: StageModel>(
    model: &M,
    sequence: &Sequence,
    out: &mut [f64],
) {
    let ns = model.order().n_stages();
    let mut stages = vec![0.0; model.n_subjects() * ns];
    model.stage_loglikes(sequence, &mut stages);
    for (o, row) in out.iter_mut().zip(stages.chunks_exact(ns)) {
        *o = log_sum_exp(row.iter().copied());
    }
}

/// Each subtype's [`StageModel::subject_loglikes`], one vector per subtype.
fn per_subtype<M: StageModel>(model: &M, mixture: &Mixture) -> Vec<Vec<f64>> {
    mixture
        .sequences()
        .iter()
        .map(|s| {
            let mut v = vec![0.0; model.n_subjects()];
            model.subject_loglikes(s, &mut v);
            v
        })
        .collect()
}

/// `log p(x_m)` of subject `m` from each subtype's subject log-likelihoods.
fn subject_total(offsets: &[f64], log_f: &[f64], per: &[Vec<f64>], m: usize) -> f64 {
    let offset = offsets.get(m).copied().unwrap_or(0.0);
    offset + log_sum_exp(log_f.iter().zip(per).map(|(lf, v)| lf + v[m]))
}

fn log_fractions(mixture: &Mixture) -> Vec<f64> {
    mixture.fractions().iter().map(|f| f.ln()).collect()
}

/// [`SustainModel::log_p_subjects`] from the stage likelihoods.
pub fn log_p_subjects<M: StageModel>(model: &M, mixture: &Mixture) -> Vec<f64> {
    let per = per_subtype(model, mixture);
    let log_f = log_fractions(mixture);
    (0..model.n_subjects())
        .map(|m| subject_total(model.subject_offsets(), &log_f, &per, m))
        .collect()
}

/// [`SustainModel::loglike`] from the stage likelihoods.
pub fn loglike<M: StageModel>(model: &M, mixture: &Mixture) -> f64 {
    neumaier_sum(&log_p_subjects(model, mixture))
}

/// [`SustainModel::posterior_sums`] from the stage likelihoods.
pub fn posterior_sums<M: StageModel>(model: &M, mixtures: &[Mixture]) -> Result<Array3<f64>> {
    let k = common_subtypes(mixtures)?;
    let (n, ns) = (model.n_subjects(), model.order().n_stages());
    let mut out = Array3::zeros((n, ns, k));
    let flat = out
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("a new array is contiguous"));
    posterior_sums_into(model, mixtures, 0..n, flat)?;
    Ok(out)
}

/// [`SustainModel::posterior_sums_into`] from the stage likelihoods.
pub fn posterior_sums_into<M: StageModel>(
    model: &M,
    mixtures: &[Mixture],
    subjects: std::ops::Range<usize>,
    out: &mut [f64],
) -> Result<()> {
    let k = common_subtypes(mixtures)?;
    let (n, ns) = (model.n_subjects(), model.order().n_stages());
    if subjects.end > n || out.len() != subjects.len() * ns * k {
        return Err(ModelError::Shape(format!(
            "posterior sums of subjects {subjects:?} of {n} into {} values",
            out.len()
        )));
    }
    let mut stages = vec![vec![0.0; n * ns]; k];
    let mut w = vec![0.0; ns * k];
    for mixture in mixtures {
        for (buf, seq) in stages.iter_mut().zip(mixture.sequences()) {
            model.stage_loglikes(seq, buf);
        }
        let log_f = log_fractions(mixture);
        for (row, m) in subjects.clone().enumerate() {
            for (s, buf) in stages.iter().enumerate() {
                for st in 0..ns {
                    w[st * k + s] = log_f[s] + buf[m * ns + st];
                }
            }
            let total = log_sum_exp(w.iter().copied());
            if !total.is_finite() {
                continue;
            }
            for (o, v) in out[row * ns * k..(row + 1) * ns * k].iter_mut().zip(&w) {
                *o += (v - total).exp();
            }
        }
    }
    Ok(())
}

/// The single-thread [`BatchEvaluator`] of any model: its exact evaluations, and
/// E-M candidates scored with the other subtypes combined once.
pub struct Batch<M: SustainModel> {
    model: Arc<M>,
}

impl<M: SustainModel> Batch<M> {
    /// Wraps a model.
    pub fn new(model: Arc<M>) -> Self {
        Self { model }
    }
}

impl<M: SustainModel> BatchEvaluator for Batch<M> {
    fn events(&self) -> &EventOrder {
        self.model.order()
    }
    fn n_subjects(&self) -> usize {
        self.model.n_subjects()
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>> {
        Ok(mixtures.iter().map(|m| self.model.loglike(m)).collect())
    }
    fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>> {
        Ok(mixtures
            .iter()
            .map(|m| self.model.log_p_subjects(m))
            .collect())
    }
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<Array3<f64>> {
        self.model.posterior_sums(mixtures)
    }
    fn loglike_subtype_candidates(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<Vec<f64>> {
        let model = &*self.model;
        let n = model.n_subjects();
        let log_f = log_fractions(slot.base);
        // The other subtypes' weighted likelihood, once for every candidate.
        let others: Vec<Vec<f64>> = slot
            .base
            .sequences()
            .iter()
            .enumerate()
            .filter(|&(s, _)| s != slot.subtype)
            .map(|(s, seq)| {
                let mut v = vec![0.0; n];
                model.subject_loglikes(seq, &mut v);
                v.iter_mut().for_each(|x| *x += log_f[s]);
                v
            })
            .collect();
        let rest: Vec<f64> = (0..n)
            .map(|m| log_sum_exp(others.iter().map(|v| v[m])))
            .collect();
        let mut cand = vec![0.0; n];
        let mut per = vec![0.0; n];
        Ok(candidates
            .iter()
            .map(|c| {
                model.subject_loglikes(c, &mut cand);
                for m in 0..n {
                    let offset = model.subject_offsets().get(m).copied().unwrap_or(0.0);
                    per[m] =
                        offset + log_sum_exp([rest[m], log_f[slot.subtype] + cand[m]].into_iter());
                }
                neumaier_sum(&per)
            })
            .collect())
    }
}

/// The generic [`ShardState`]: each subtype's subject log-likelihoods kept, a
/// proposal recomputing only the subtypes it changes.
pub struct CachedShard<M: SustainModel> {
    model: Arc<M>,
    block: usize,
    current: Vec<Vec<f64>>,
    log_f: Vec<f64>,
    current_partials: Vec<f64>,
    /// The last proposal: its changed subtypes' values, fractions and partials.
    proposed: Vec<Option<Vec<f64>>>,
    proposed_log_f: Vec<f64>,
    partials: Vec<f64>,
}

impl<M: SustainModel> CachedShard<M> {
    /// The state at `start`, with partial sums over blocks of `block` subjects.
    pub fn new(model: Arc<M>, start: &Mixture, block: usize) -> Self {
        let mut s = Self {
            model,
            block: block.max(1),
            current: Vec::new(),
            log_f: Vec::new(),
            current_partials: Vec::new(),
            proposed: Vec::new(),
            proposed_log_f: Vec::new(),
            partials: Vec::new(),
        };
        s.reset_shard(start);
        s
    }

    fn block_partials(&self, per: &[&Vec<f64>], log_f: &[f64], out: &mut Vec<f64>) {
        let offsets = self.model.subject_offsets();
        let n = self.model.n_subjects();
        out.clear();
        let mut values = Vec::with_capacity(self.block);
        for start in (0..n).step_by(self.block) {
            values.clear();
            for m in start..(start + self.block).min(n) {
                let offset = offsets.get(m).copied().unwrap_or(0.0);
                values.push(offset + log_sum_exp(log_f.iter().zip(per).map(|(lf, v)| lf + v[m])));
            }
            out.push(neumaier_sum(&values));
        }
    }
}

impl<M: SustainModel> ShardState for CachedShard<M> {
    fn reset_shard(&mut self, mixture: &Mixture) -> bool {
        self.current = per_subtype(&*self.model, mixture);
        self.log_f = log_fractions(mixture);
        self.proposed = vec![None; self.current.len()];
        let mut partials = Vec::new();
        self.block_partials(
            &self.current.iter().collect::<Vec<_>>(),
            &self.log_f,
            &mut partials,
        );
        self.current_partials.clone_from(&partials);
        self.partials = partials;
        true
    }

    fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        if mixture.n_subtypes() != self.current.len() {
            return self.reset_shard(mixture);
        }
        let n = self.model.n_subjects();
        for (s, seq) in mixture.sequences().iter().enumerate() {
            self.proposed[s] = if changed.get(s).copied().unwrap_or(true) {
                let mut v = vec![0.0; n];
                self.model.subject_loglikes(seq, &mut v);
                Some(v)
            } else {
                None
            };
        }
        self.proposed_log_f = log_fractions(mixture);
        let per: Vec<&Vec<f64>> = self
            .proposed
            .iter()
            .zip(&self.current)
            .map(|(p, c)| p.as_ref().unwrap_or(c))
            .collect();
        let mut partials = std::mem::take(&mut self.partials);
        self.block_partials(&per, &self.proposed_log_f, &mut partials);
        self.partials = partials;
        true
    }

    fn accept_shard(&mut self, _rebuild: bool) {
        for (c, p) in self.current.iter_mut().zip(self.proposed.iter_mut()) {
            if let Some(p) = p.take() {
                *c = p;
            }
        }
        std::mem::swap(&mut self.log_f, &mut self.proposed_log_f);
        self.current_partials.clone_from(&self.partials);
    }

    fn reject(&mut self) {
        self.proposed.iter_mut().for_each(|p| *p = None);
        self.partials.clone_from(&self.current_partials);
    }

    fn partials(&self) -> &[f64] {
        &self.partials
    }
}

/// A chain's evaluator over one [`ShardState`] holding every subject.
pub struct ShardChain<M: SustainModel> {
    model: Arc<M>,
    state: Box<dyn ShardState>,
    rebuild: bool,
}

impl<M: SustainModel> ShardChain<M> {
    /// Wraps a state over all of `model`'s subjects.
    pub fn new(model: Arc<M>, state: Box<dyn ShardState>) -> Self {
        Self {
            model,
            state,
            rebuild: false,
        }
    }

    fn total(&self, ok: bool, mixture: &Mixture) -> f64 {
        if ok {
            neumaier_sum(self.state.partials())
        } else {
            self.model.loglike(mixture)
        }
    }
}

impl<M: SustainModel> ChainEvaluator for ShardChain<M> {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        self.rebuild = false;
        let ok = self.state.reset_shard(mixture);
        self.total(ok, mixture)
    }
    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        let ok = self.state.propose_shard(mixture, changed);
        self.rebuild = !ok;
        self.total(ok, mixture)
    }
    fn accept(&mut self) {
        self.state.accept_shard(self.rebuild);
    }
    fn reject(&mut self) {
        self.state.reject();
    }
    fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
        let ok = self.state.propose_shard_unless_rejected(proposal)?;
        self.rebuild = !ok;
        Some(self.total(ok, proposal.mixture))
    }
}
