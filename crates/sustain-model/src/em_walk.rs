//! E-M's event moves screened by walking the candidate positions in order.
//!
//! E-M moves event `e` of subtype `t` to each allowed position `lo..=hi`. The
//! candidate at `j + 1` is the one at `j` with `e` swapped with its right
//! neighbour `n`: only the curves of `e`'s and `n`'s biomarkers change, on the
//! stages between their neighbouring knots. So the walk keeps, per subject, the
//! stage values `L[k] = sum_obs (x mu_k - mu_k^2 / 2)` (the stage kernel's) and
//! `E[k] = exp(L[k] - ref)`; a step adds the two biomarkers' changes to `L` on
//! the changed stages, recomputes `E` there, and takes the sum over stages and one
//! logarithm. The work per candidate is subjects x stages, whatever the number of
//! biomarkers (a whole evaluation is subjects x stages x biomarkers); only the
//! first candidate is evaluated whole.
//!
//! The walked scores are a screen, as in the `screen` module: every candidate
//! whose exact score could be the largest is kept and scored exactly by the
//! caller, so the choice is the one exact scoring makes (the first of equal
//! maxima). All arithmetic is in double precision. With `u = 2^-53`,
//! `Z_b >= |mu_b[k]|` for every sequence and `U_m = sum_b (|x_b| + Z_b)^2`:
//! - every term of `L` (and of a step's change) is at most `(|x_b| + Z_b)^2`, so a
//!   fresh `L[k]` is within `(B + 2) u U_m` of exact, and each step adds at most
//!   `4 u U_m` (two biomarkers' changes, one addition); after `s` steps a value is
//!   within `(B + 2 + 4 s) u U_m`;
//! - the log-sum-exp is 1-Lipschitz in the `L[k]`; the exponential adds 3e-16
//!   relative (`exp_lanes`), the sum of `N + 1` terms `(N + 1) u`, the logarithm
//!   `1e-15` relative to its result, and mixing with the other subtypes (an
//!   exponential and a logarithm of a value in `[1, 2]`) under `8u`: a subject's
//!   score is within `(B + 2 + 4 s) u U_m + (N + 64) u + 1e-15 |score|`;
//! - the sum over subjects adds `M u sum_m |score_m|`.
//!
//! The window keeps every candidate within twice that bound (`beta`) plus the
//! margin of the `screen` module (covering the exact scorer's own rounding) of
//! the best. A subject whose sum over stages leaves `(1e-200, 1e200)` (a
//! reference left far behind by the walk) is re-referenced and its `E` recomputed
//! in full, so clamped or overflowing exponentials never reach a score.

#![allow(clippy::needless_range_loop)]

use crate::events::EventSet;
use crate::kernels::{exp_lanes, ln_lanes, Fused, Isa, Lanes, MulAdd, Plain, LANES};
use crate::likelihood::{stage_stride, Likelihood, Scratch};
use crate::mixture::Mixture;
use crate::sequence::Sequence;
use crate::stages::{biomarker_values, StageValues};
use std::ops::RangeInclusive;

/// Unit roundoff of f64.
const U64: f64 = f64::EPSILON / 2.0;
/// A subject's sum over stages is trusted inside `(1 / SUM_RANGE, SUM_RANGE)`.
const SUM_RANGE: f64 = 1e200;

/// One step of the walk: the changes of the two moved biomarkers on stages
/// `k0..k1` (`d1 = mu' - mu`, `d2 = -(mu'^2 - mu^2) / 2`, scaled by 1/sigma; 0
/// where a biomarker did not change).
pub(crate) struct WalkStep<'a> {
    be: usize,
    bn: usize,
    k0: usize,
    k1: usize,
    d1e: &'a [f64],
    d2e: &'a [f64],
    d1n: &'a [f64],
    d2n: &'a [f64],
}

/// Adds a step's changes to one group's `l` and recomputes `e = exp(l - ref)` on
/// the changed stages.
#[inline(always)]
fn walk_update_body<F: MulAdd>(
    step: &WalkStep,
    x: &[f64],
    obs: &[f64],
    reference: &Lanes,
    l: &mut [f64],
    e: &mut [f64],
) {
    let lanes = |v: &[f64], b: usize| -> Lanes {
        v[b * LANES..(b + 1) * LANES]
            .try_into()
            .unwrap_or_else(|_| unreachable!("a lane group"))
    };
    let (xe, oe, xn, on) = (
        lanes(x, step.be),
        lanes(obs, step.be),
        lanes(x, step.bn),
        lanes(obs, step.bn),
    );
    for k in step.k0..step.k1 {
        let i = k - step.k0;
        let (a, b, c, d) = (step.d1e[i], step.d2e[i], step.d1n[i], step.d2n[i]);
        let mut dl = [0.0; LANES];
        for ln in 0..LANES {
            let change = F::fma(xe[ln], a, F::fma(oe[ln], b, F::fma(xn[ln], c, on[ln] * d)));
            let v = l[k * LANES + ln] + change;
            l[k * LANES + ln] = v;
            dl[ln] = v - reference[ln];
        }
        let ex = exp_lanes::<F>(dl);
        e[k * LANES..(k + 1) * LANES].copy_from_slice(&ex);
    }
}

/// One group's sum over stages of `e`, and its score per lane:
/// `ln(f_t exp(ref + ln sum) + exp(others))`.
#[inline(always)]
fn walk_score_body<F: MulAdd>(
    e: &[f64],
    n_stages: usize,
    reference: &Lanes,
    ln_f: f64,
    others: &Lanes,
    sum: &mut Lanes,
    score: &mut Lanes,
) {
    let mut s = [0.0; LANES];
    for k in 0..n_stages {
        for ln in 0..LANES {
            s[ln] += e[k * LANES + ln];
        }
    }
    let lg = ln_lanes::<F>(s);
    let mut a = [0.0; LANES];
    let mut lo = [0.0; LANES];
    for ln in 0..LANES {
        a[ln] = ln_f + reference[ln] + lg[ln];
        lo[ln] = a[ln].min(others[ln]) - a[ln].max(others[ln]);
        // One subtype: others are -inf; exp_lanes clamps to about 1e-304.
        if lo[ln].is_nan() {
            lo[ln] = f64::NEG_INFINITY;
        }
    }
    let ex = exp_lanes::<F>(lo);
    let mut one_plus = [0.0; LANES];
    for ln in 0..LANES {
        one_plus[ln] = 1.0 + ex[ln];
    }
    let l1 = ln_lanes::<F>(one_plus);
    for ln in 0..LANES {
        sum[ln] = s[ln];
        // A NaN stays NaN (the caller then scores every candidate exactly).
        score[ln] = if a[ln].is_nan() {
            f64::NAN
        } else {
            a[ln].max(others[ln]) + l1[ln]
        };
    }
}

/// Sets `ref` to each lane's largest `l` and `e = exp(l - ref)` on every stage.
#[inline(always)]
fn walk_reference_body<F: MulAdd>(
    l: &[f64],
    n_stages: usize,
    reference: &mut Lanes,
    e: &mut [f64],
) {
    let mut max = [f64::NEG_INFINITY; LANES];
    for k in 0..n_stages {
        for ln in 0..LANES {
            max[ln] = max[ln].max(l[k * LANES + ln]);
        }
    }
    for k in 0..n_stages {
        let mut d = [0.0; LANES];
        for ln in 0..LANES {
            d[ln] = l[k * LANES + ln] - max[ln];
        }
        let ex = exp_lanes::<F>(d);
        e[k * LANES..(k + 1) * LANES].copy_from_slice(&ex);
    }
    *reference = max;
}

multiversion!(
    /// [`walk_update_body`] compiled for the CPU.
    fn walk_update(step: &WalkStep, x: &[f64], obs: &[f64], reference: &Lanes, l: &mut [f64], e: &mut [f64]) => walk_update_body
);
multiversion!(
    /// [`walk_score_body`] compiled for the CPU.
    fn walk_score(e: &[f64], n_stages: usize, reference: &Lanes, ln_f: f64, others: &Lanes, sum: &mut Lanes, score: &mut Lanes) => walk_score_body
);
multiversion!(
    /// [`walk_reference_body`] compiled for the CPU.
    fn walk_reference(l: &[f64], n_stages: usize, reference: &mut Lanes, e: &mut [f64]) => walk_reference_body
);

/// The other subtypes' mixture per subject, for one subtype of one mixture.
#[derive(Debug, Clone)]
struct Others {
    subtype: usize,
    sequences: Vec<Sequence>,
    fractions: Vec<f64>,
    /// `ln sum_{s != t} f_s exp(lse_s[m])` per padded subject (-inf for one
    /// subtype).
    values: Vec<f64>,
    /// `sum_m |values_m|` over real subjects (finite ones).
    scale: f64,
}

/// The walk's buffers and the data's constants; one per evaluator.
#[derive(Debug, Clone)]
pub(crate) struct EventWalk {
    /// `sum_m U_m` over real subjects (see the module docs).
    sum_u: f64,
    /// `l[g][k][lane]`, rows of the stage stride.
    l: Vec<f64>,
    /// `e[g][k][lane]`, rows of the stage stride.
    e: Vec<f64>,
    reference: Vec<Lanes>,
    /// `mu[b][k]` of the current candidate, scaled by 1/sigma.
    mu: Vec<f64>,
    row: Vec<f64>,
    d: [Vec<f64>; 4],
    knots: Vec<(usize, f64)>,
    scratch: Scratch,
    others: Option<Others>,
    scores: Vec<f64>,
}

impl EventWalk {
    /// The walk of `lik`'s data.
    pub(crate) fn new(lik: &Likelihood) -> Self {
        let events = lik.events();
        let nb = events.n_biomarkers();
        let z = largest_values(events);
        let mut sum_u = 0.0;
        for g in 0..lik.n_groups() {
            let (x, _) = lik.group_arrays(g);
            for lane in 0..LANES {
                if g * LANES + lane >= lik.n_subjects() {
                    break;
                }
                sum_u += (0..nb)
                    .map(|b| (x[b * LANES + lane].abs() + z[b]).powi(2))
                    .sum::<f64>();
            }
        }
        Self {
            sum_u,
            l: Vec::new(),
            e: Vec::new(),
            reference: Vec::new(),
            mu: Vec::new(),
            row: Vec::new(),
            d: Default::default(),
            knots: Vec::with_capacity(8),
            scratch: Scratch::default(),
            others: None,
            scores: Vec::new(),
        }
    }

    /// Indices into `allowed` (ascending) of the positions of event `e` in
    /// subtype `t`'s sequence of `base` whose exact score may be the largest:
    /// every other position's candidate is certainly below one of these.
    pub(crate) fn window(
        &mut self,
        lik: &Likelihood,
        base: &Mixture,
        t: usize,
        e: usize,
        allowed: RangeInclusive<usize>,
    ) -> Vec<usize> {
        let (lo, hi) = (*allowed.start(), *allowed.end());
        let all = || (0..=hi - lo).collect();
        let Some((beta, margin_scale)) = self.score(lik, base, t, e, lo, hi) else {
            return all();
        };
        let best = self
            .scores
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        let width = 2.0 * (beta + 1e-9 * (margin_scale + best.abs()));
        if !best.is_finite() || !width.is_finite() || self.scores.iter().any(|v| v.is_nan()) {
            return all();
        }
        (0..self.scores.len())
            .filter(|&j| self.scores[j] >= best - width)
            .collect()
    }

    /// The walked score of every position `lo..=hi` into `self.scores`; returns
    /// `beta` and the scale of the margin, or None where the walk cannot score.
    fn score(
        &mut self,
        lik: &Likelihood,
        base: &Mixture,
        t: usize,
        e: usize,
        lo: usize,
        hi: usize,
    ) -> Option<(f64, f64)> {
        let events = lik.events();
        let isa = lik.isa();
        let (nb, ns) = (events.n_biomarkers(), events.n_stages());
        let stride = stage_stride(ns);
        let ng = lik.n_groups();
        let n_real = lik.n_subjects();
        let inv_sigma = 1.0 / events.sigma();
        let ln_f = base.fractions()[t].ln();
        self.update_others(lik, base, t);
        let others = self.others.as_ref()?;
        let others_scale = others.scale;

        // The first candidate, evaluated whole.
        let mut seq = base.sequences()[t].clone();
        seq.move_unchecked(e, lo);
        let values = StageValues::new(events, &seq);
        self.mu.clear();
        self.mu
            .extend(values.as_slice().iter().map(|v| v * inv_sigma));
        lik.fill_stage_input(&values, &mut self.scratch);
        self.l.resize(ng * stride * LANES, 0.0);
        self.e.resize(ng * stride * LANES, 0.0);
        self.reference.resize(ng, [0.0; LANES]);
        {
            let st = lik.stage_input(&self.scratch);
            for g in 0..ng {
                let block = &mut self.l[g * stride * LANES..(g + 1) * stride * LANES];
                crate::kernels::stage_values(isa, &st, &lik.group(g), block);
                walk_reference(
                    isa,
                    block,
                    ns,
                    &mut self.reference[g],
                    &mut self.e[g * stride * LANES..(g + 1) * stride * LANES],
                );
            }
        }
        self.scores.clear();
        let mut abs_scores: f64 = 0.0;
        let total = self.total(lik, ns, stride, ln_f, n_real, &mut abs_scores);
        self.scores.push(total);

        // Each further position: one swap.
        for d in self.d.iter_mut() {
            d.resize(ns, 0.0);
        }
        self.row.resize(ns, 0.0);
        for j in lo..hi {
            let n = seq.event_at(j + 1);
            let (be, bn) = (events.biomarker_of(e), events.biomarker_of(n));
            seq.move_unchecked(e, j + 1);
            let (ke, kn) = (
                self.changes(events, &seq, be, inv_sigma, 0),
                self.changes(events, &seq, bn, inv_sigma, 2),
            );
            let (k0, k1) = match (ke, kn) {
                (Some(a), Some(b)) => (a.0.min(b.0), a.1.max(b.1)),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => (0, 0),
            };
            // Zero the changes outside each biomarker's own range.
            for (pair, range) in [(0, ke), (2, kn)] {
                let (a, b) = range.unwrap_or((k0, k0));
                for k in (k0..a).chain(b..k1) {
                    self.d[pair][k] = 0.0;
                    self.d[pair + 1][k] = 0.0;
                }
            }
            let step = WalkStep {
                be,
                bn,
                k0,
                k1,
                d1e: &self.d[0][k0..k1],
                d2e: &self.d[1][k0..k1],
                d1n: &self.d[2][k0..k1],
                d2n: &self.d[3][k0..k1],
            };
            if k1 > k0 {
                for g in 0..ng {
                    let (x, obs) = lik.group_arrays(g);
                    let r = g * stride * LANES..(g + 1) * stride * LANES;
                    walk_update(
                        isa,
                        &step,
                        x,
                        obs,
                        &self.reference[g],
                        &mut self.l[r.clone()],
                        &mut self.e[r],
                    );
                }
            }
            let total = self.total(lik, ns, stride, ln_f, n_real, &mut abs_scores);
            self.scores.push(total);
        }
        let steps = (hi - lo) as f64;
        let m = n_real as f64;
        let beta = (nb as f64 + 2.0 + 4.0 * steps) * U64 * self.sum_u
            + m * (ns as f64 + 64.0) * U64
            + (1e-15 + m * U64) * abs_scores;
        Some((beta, self.sum_u + others_scale + m))
    }

    /// The sum over real subjects of the current candidate's scores (groups whose
    /// sums left the trusted range re-referenced first); raises `abs_scores` to
    /// the candidate's `sum_m |score_m|` if larger.
    fn total(
        &mut self,
        lik: &Likelihood,
        ns: usize,
        stride: usize,
        ln_f: f64,
        n_real: usize,
        abs_scores: &mut f64,
    ) -> f64 {
        let isa = lik.isa();
        let others = self
            .others
            .as_ref()
            .unwrap_or_else(|| unreachable!("set before scoring"));
        let mut acc = [0.0; LANES];
        let mut abs = 0.0;
        for g in 0..lik.n_groups() {
            let r = g * stride * LANES..(g + 1) * stride * LANES;
            let o: Lanes = others.values[g * LANES..(g + 1) * LANES]
                .try_into()
                .unwrap_or_else(|_| unreachable!("a lane group"));
            let (mut sum, mut score) = ([0.0; LANES], [0.0; LANES]);
            walk_score(
                isa,
                &self.e[r.clone()],
                ns,
                &self.reference[g],
                ln_f,
                &o,
                &mut sum,
                &mut score,
            );
            let real = (n_real - g * LANES).min(LANES);
            if sum[..real]
                .iter()
                .any(|s| !(*s > 1.0 / SUM_RANGE && *s < SUM_RANGE))
            {
                walk_reference(
                    isa,
                    &self.l[r.clone()],
                    ns,
                    &mut self.reference[g],
                    &mut self.e[r.clone()],
                );
                walk_score(
                    isa,
                    &self.e[r],
                    ns,
                    &self.reference[g],
                    ln_f,
                    &o,
                    &mut sum,
                    &mut score,
                );
            }
            for ln in 0..real {
                acc[ln] += score[ln];
                abs += score[ln].abs();
            }
        }
        *abs_scores = abs_scores.max(abs);
        acc.iter().sum()
    }

    /// Biomarker `b`'s new values for `seq` against `self.mu`: writes `d1`, `d2`
    /// into `self.d[slot]`, `self.d[slot + 1]` on the changed stages, updates
    /// `self.mu`, and returns the changed range (None if none changed).
    fn changes(
        &mut self,
        events: &EventSet,
        seq: &Sequence,
        b: usize,
        inv_sigma: f64,
        slot: usize,
    ) -> Option<(usize, usize)> {
        let ns = events.n_stages();
        biomarker_values(events, seq, b, &mut self.knots, &mut self.row);
        let old = &mut self.mu[b * ns..(b + 1) * ns];
        let mut range: Option<(usize, usize)> = None;
        for k in 0..ns {
            let new = self.row[k] * inv_sigma;
            if new != old[k] {
                range = Some(range.map_or((k, k + 1), |(a, _)| (a, k + 1)));
            }
        }
        let (a, c) = range?;
        for k in a..c {
            let new = self.row[k] * inv_sigma;
            self.d[slot][k] = new - old[k];
            self.d[slot + 1][k] = -0.5 * (new - old[k]) * (new + old[k]);
            old[k] = new;
        }
        Some((a, c))
    }

    /// Brings the other subtypes' mixture to subtype `t` of `base` (kept while
    /// the other sequences and the fractions stay the same, as within one
    /// subtype's moves of an E-M pass).
    fn update_others(&mut self, lik: &Likelihood, base: &Mixture, t: usize) {
        let n = base.n_subtypes();
        let others_of = |m: &Mixture| -> Vec<Sequence> {
            (0..n)
                .filter(|&s| s != t)
                .map(|s| m.sequences()[s].clone())
                .collect()
        };
        if let Some(o) = &self.others {
            if o.subtype == t
                && o.fractions == base.fractions()
                && o.sequences.len() + 1 == n
                && (0..n)
                    .filter(|&s| s != t)
                    .zip(&o.sequences)
                    .all(|(s, q)| &base.sequences()[s] == q)
            {
                return;
            }
        }
        let mp = lik.padded_subjects();
        let mut values = vec![f64::NEG_INFINITY; mp];
        if n > 1 {
            let mut lse: Vec<Vec<f64>> = Vec::with_capacity(n - 1);
            let mut ln_f = Vec::with_capacity(n - 1);
            for s in (0..n).filter(|&s| s != t) {
                let mut v = vec![0.0; mp];
                lik.subtype_lse_into(&base.sequences()[s], &mut self.scratch, &mut v);
                lse.push(v);
                ln_f.push(base.fractions()[s].ln());
            }
            for (m, out) in values.iter_mut().enumerate() {
                let max = lse
                    .iter()
                    .zip(&ln_f)
                    .map(|(v, f)| v[m] + f)
                    .fold(f64::NEG_INFINITY, f64::max);
                if max.is_finite() {
                    let s: f64 = lse
                        .iter()
                        .zip(&ln_f)
                        .map(|(v, f)| (v[m] + f - max).exp())
                        .sum();
                    *out = max + s.ln();
                }
            }
        }
        let scale = values[..lik.n_subjects()]
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.abs())
            .sum();
        self.others = Some(Others {
            subtype: t,
            sequences: others_of(base),
            fractions: base.fractions().to_vec(),
            values,
            scale,
        });
    }
}

/// `Z_b`: the largest `|mu|` any sequence gives biomarker `b` (scaled by
/// 1/sigma): the curve only takes values between its knots.
fn largest_values(events: &EventSet) -> Vec<f64> {
    let inv_sigma = 1.0 / events.sigma();
    (0..events.n_biomarkers())
        .map(|b| {
            events
                .biomarker_events(b)
                .iter()
                .map(|&e| events.event(e).z.abs())
                .fold(events.z_max(b).abs(), f64::max)
                .max(events.z_min().abs())
                * inv_sigma
        })
        .collect()
}
