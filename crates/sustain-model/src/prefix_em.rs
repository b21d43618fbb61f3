//! E-M's candidate scoring for a [`PrefixModel`] (the reference's `use_dp` idea).
//! E-M moves one event `e` through every allowed position of a subtype's
//! sequence. With `B` the sequence without `e`, `Q_k = exp(w_k)` its prefix
//! products (`w_k` the prefix sums of deltas) and `r = exp(delta_e)`, inserting
//! `e` at position `p` gives `sum_k exp(v_k) = A_p + r T_p`, where `A_p` sums `Q_k`
//! for `k <= p` and `T_p` for `k >= p`: every candidate costs one logarithm per
//! subject once `Q`, `A` and `T` are known.
//!
//! Those scores differ from the exact ones by rounding only, so they screen: every
//! candidate within a bound well above that rounding of the best screened score
//! is scored exactly, and the first exact maximum among them is the answer (the
//! same as exact scoring of every candidate). Candidate lists not of that form,
//! or subjects whose delta of `e` is too large for `exp`, take exact scoring.

use crate::kernels::LANES;
use crate::prefix::{log_fractions, PrefixModel};
use crate::sequence::Sequence;
use crate::SubtypeOf;
use std::sync::Arc;
use sustain_core::generic::Batch;
use sustain_core::{first_max, BatchEvaluator, Mixture, Result, StageModel};

/// Screened scores are trusted to this fraction of `sum_m (1 + |score_m|)`.
const SCREEN_TOLERANCE: f64 = 1e-11;
/// Prefix products of event ratios are used within `1/PRODUCT_RANGE..PRODUCT_RANGE`.
const PRODUCT_RANGE: f64 = 1e250;
/// Deltas of the moved event beyond this take exact scoring.
const DELTA_LIMIT: f64 = 600.0;

/// The batch evaluator of a [`PrefixModel`]: the generic one, with E-M's choice
/// screened by prefix sums.
pub(crate) struct PrefixBatch {
    model: Arc<PrefixModel>,
    exact: Batch<PrefixModel>,
}

impl PrefixBatch {
    pub(crate) fn new(model: Arc<PrefixModel>) -> Self {
        Self {
            exact: Batch::new(Arc::clone(&model)),
            model,
        }
    }

    /// The moved event and the insertion position of each candidate, when every
    /// candidate is one sequence `B` with one event inserted somewhere.
    fn insertions(candidates: &[Sequence]) -> Option<(usize, Vec<u16>, Vec<usize>)> {
        let c0 = candidates.first()?.order_u16();
        let c1 = candidates.get(1)?.order_u16();
        let first = c0.iter().zip(c1).position(|(a, b)| a != b)?;
        // The moved event is at the first difference of one of the two.
        [c0[first], c1[first]]
            .into_iter()
            .find_map(|e| Self::insertions_of(candidates, e))
    }

    fn insertions_of(candidates: &[Sequence], e: u16) -> Option<(usize, Vec<u16>, Vec<usize>)> {
        let base: Vec<u16> = candidates[0]
            .order_u16()
            .iter()
            .copied()
            .filter(|&x| x != e)
            .collect();
        let mut at = Vec::with_capacity(candidates.len());
        for c in candidates {
            let o = c.order_u16();
            let p = o.iter().position(|&x| x == e)?;
            if o[..p] != base[..p] || o[p + 1..] != base[p..] {
                return None;
            }
            at.push(p);
        }
        Some((e as usize, base, at))
    }

    /// Screened scores of inserting `e` into `base` at each of `at`; `None` when a
    /// subject's delta of `e` is out of range.
    fn screened(
        &self,
        mixture: &Mixture,
        subtype: usize,
        e: usize,
        base: &[u16],
        at: &[usize],
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let model = &*self.model;
        let n = model.n_subjects();
        let n_events = model.order().n_events();
        let delta = model.event_deltas();
        let lanes = model.lanes();
        let offsets = model.subject_offsets();
        let log_f = log_fractions(mixture);
        // The other subtypes' weighted sum per subject.
        let mut rest = vec![f64::NEG_INFINITY; n];
        let mut buf = vec![0.0; n];
        for (s, seq) in mixture.sequences().iter().enumerate() {
            if s == subtype {
                continue;
            }
            model.subject_loglikes(seq, &mut buf);
            for (r, v) in rest.iter_mut().zip(&buf) {
                let x = v + log_f[s];
                let (hi, lo) = if *r > x { (*r, x) } else { (x, *r) };
                *r = if hi == f64::NEG_INFINITY {
                    hi
                } else {
                    hi + (lo - hi).exp().ln_1p()
                };
            }
        }
        let lf = log_f[subtype];
        let np = base.len() + 1;
        let mut scores = vec![0.0; at.len()];
        let mut sizes = vec![0.0; at.len()];
        let (mut w, mut a, mut t) = (vec![0.0; np], vec![0.0; np], vec![0.0; np]);
        for m in 0..n {
            let d = &delta[m * n_events..(m + 1) * n_events];
            let de = d[e];
            if de.abs() > DELTA_LIMIT {
                return None;
            }
            // Q_k as products of the event ratios (no exponential), where they stay
            // well inside the range of normal numbers; else from the log domain.
            let (grp, lane) = (m / LANES, m % LANES);
            let ratio = &lanes.ratio[grp * n_events * LANES..(grp + 1) * n_events * LANES];
            let mut max = 0.0f64;
            let mut q = 1.0f64;
            w[0] = 1.0;
            let mut tame = true;
            for (k, &x) in base.iter().enumerate() {
                q *= ratio[x as usize * LANES + lane];
                w[k + 1] = q;
                tame &= q > PRODUCT_RANGE.recip() && q < PRODUCT_RANGE;
            }
            if !tame {
                let mut acc = 0.0;
                w[0] = 0.0;
                for (k, &x) in base.iter().enumerate() {
                    acc += d[x as usize];
                    w[k + 1] = acc;
                    max = max.max(acc);
                }
                for v in w.iter_mut() {
                    *v = (*v - max).exp();
                }
            }
            let mut run = 0.0;
            for k in 0..np {
                run += w[k];
                a[k] = run;
            }
            let mut run = 0.0;
            for k in (0..np).rev() {
                run += w[k];
                t[k] = run;
            }
            let r = de.exp();
            let offset = offsets[m];
            // Subject's score: offset + log(exp(rest) + exp(lf + max) * sum).
            let g = rest[m] - (lf + max);
            // One logarithm per candidate: the exponential of `g` is shared.
            let (near, scale) = (
                g <= DELTA_LIMIT,
                if g <= DELTA_LIMIT {
                    g.exp()
                } else {
                    (-g).exp()
                },
            );
            for (i, &p) in at.iter().enumerate() {
                let sum = a[p] + r * t[p];
                let v = if near {
                    offset + lf + max + (scale + sum).ln()
                } else {
                    offset + rest[m] + (sum * scale).ln_1p()
                };
                scores[i] += v;
                sizes[i] += 1.0 + v.abs();
            }
        }
        Some((scores, sizes))
    }
}

/// The exact evaluations are the generic ones (of the same model); only the
/// choice among E-M's candidates is screened.
impl BatchEvaluator for PrefixBatch {
    sustain_core::forward_batch_evaluator!(exact: required, loglike_subtype_candidates);
    fn best_subtype_candidate(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<usize> {
        let screened = Self::insertions(candidates)
            .and_then(|(e, seq, at)| self.screened(slot.base, slot.subtype, e, &seq, &at));
        let Some((scores, sizes)) = screened else {
            let exact = self.exact.loglike_subtype_candidates(slot, candidates)?;
            return Ok(first_max(&exact));
        };
        let best = first_max(&scores);
        let bound = 2.0 * SCREEN_TOLERANCE * sizes[best];
        if !scores[best].is_finite() || !bound.is_finite() {
            let exact = self.exact.loglike_subtype_candidates(slot, candidates)?;
            return Ok(first_max(&exact));
        }
        let near: Vec<usize> = (0..candidates.len())
            .filter(|&i| scores[i] >= scores[best] - bound)
            .collect();
        if near.len() == 1 {
            return Ok(near[0]);
        }
        let subset: Vec<Sequence> = near.iter().map(|&i| candidates[i].clone()).collect();
        let exact = self.exact.loglike_subtype_candidates(slot, &subset)?;
        Ok(near[first_max(&exact)])
    }
}
