//! The subject-blocked layout of a [`crate::MixedModel`]: subjects in groups of
//! [`LANES`], each group's event deltas event-major and its z-scores
//! biomarker-major, so that one sequence's stage values of a whole group are built
//! stage by stage in lanes and summed with the vectorised exponential (the
//! z-score kernels' `stage_exp`).

use crate::kernels::{stage_exp, Fused, Isa, Plain, LANES};

/// A mixed model's data in groups of [`LANES`] subjects (padding lanes: delta 0,
/// no observed z-score).
#[derive(Debug, Clone)]
pub(crate) struct MixedLanes {
    n_events: usize,
    n_zscore: usize,
    pub(crate) n_groups: usize,
    /// `delta[(g * n_events + e) * LANES + l]`.
    delta: Vec<f64>,
    /// `x[(g * n_zscore + b) * LANES + l]`, 0 where missing.
    x: Vec<f64>,
    /// `-0.5` where observed, 0 where missing (same layout as `x`).
    weight: Vec<f64>,
    isa: Isa,
}

impl MixedLanes {
    /// From subject-major deltas (`delta[m * n_events + e]`) and z-scores
    /// (`z[m * n_zscore + b]`, NaN = missing).
    pub(crate) fn new(delta: &[f64], z: &[f64], n_subjects: usize, n_events: usize) -> Self {
        let n_zscore = z.len().checked_div(n_subjects).unwrap_or(0);
        let n_groups = n_subjects.div_ceil(LANES);
        let mut d = vec![0.0; n_groups * n_events * LANES];
        let mut x = vec![0.0; n_groups * n_zscore * LANES];
        let mut weight = vec![0.0; n_groups * n_zscore * LANES];
        for m in 0..n_subjects {
            let (g, l) = (m / LANES, m % LANES);
            for e in 0..n_events {
                d[(g * n_events + e) * LANES + l] = delta[m * n_events + e];
            }
            for b in 0..n_zscore {
                let v = z[m * n_zscore + b];
                if !v.is_nan() {
                    x[(g * n_zscore + b) * LANES + l] = v;
                    weight[(g * n_zscore + b) * LANES + l] = -0.5;
                }
            }
        }
        Self {
            n_events,
            n_zscore,
            n_groups,
            delta: d,
            x,
            weight,
            isa: Isa::detect(),
        }
    }

    /// `log sum_k exp(v_k)` per subject (padding lanes included) for the sequence
    /// `order` whose z-score ramps are `mu` (`mu[b * (N + 1) + k]`), into `out`
    /// (`n_groups * LANES`); `stages` is scratch.
    pub(crate) fn subtype_lse(
        &self,
        order: &[u16],
        mu: &[f64],
        stages: &mut Vec<f64>,
        out: &mut [f64],
    ) {
        let ns = self.n_events + 1;
        stages.resize(ns * LANES, 0.0);
        for (g, out) in out.chunks_exact_mut(LANES).take(self.n_groups).enumerate() {
            let at = g * self.n_zscore * LANES..(g + 1) * self.n_zscore * LANES;
            group_stages(
                self.isa,
                &self.delta[g * self.n_events * LANES..(g + 1) * self.n_events * LANES],
                &self.x[at.clone()],
                &self.weight[at],
                order,
                mu,
                stages,
            );
            // exp(v - max) in place, then the sum over stages.
            let mut max = [0.0; LANES];
            stage_exp(self.isa, stages, ns, &mut max);
            let mut sum = [0.0; LANES];
            for row in stages.chunks_exact(LANES) {
                for l in 0..LANES {
                    sum[l] += row[l];
                }
            }
            for l in 0..LANES {
                out[l] = max[l] + sum[l].ln();
            }
        }
    }
}

multiversion!(
    /// One group's stage values `stages[k][lane]` (compiled for each ISA).
    fn group_stages(delta: &[f64], x: &[f64], weight: &[f64], order: &[u16], mu: &[f64], stages: &mut [f64]) => group_stages_body
);

/// The prefix sums of the group's event deltas (`delta[e][lane]`) along `order`,
/// plus each observed z-score's `-(x - mu)^2 / 2` (`x[b][lane]`, `weight[b][lane]`
/// -0.5 where observed, else 0), as `MixedModel`'s rows.
// `F` is what `multiversion!` passes; no multiply-add here is fused, so that these
// are the bits of `MixedModel::stage_loglikes`.
#[allow(clippy::extra_unused_type_parameters)]
#[inline(always)]
fn group_stages_body<F: crate::kernels::MulAdd>(
    delta: &[f64],
    x: &[f64],
    weight: &[f64],
    order: &[u16],
    mu: &[f64],
    stages: &mut [f64],
) {
    let ns = order.len() + 1;
    let mut acc = [0.0; LANES];
    stages[..LANES].copy_from_slice(&acc);
    for (row, &e) in stages[LANES..ns * LANES].chunks_exact_mut(LANES).zip(order) {
        let d = &delta[e as usize * LANES..(e as usize + 1) * LANES];
        for l in 0..LANES {
            acc[l] += d[l];
        }
        row.copy_from_slice(&acc);
    }
    for (b, (x, w)) in x
        .chunks_exact(LANES)
        .zip(weight.chunks_exact(LANES))
        .enumerate()
    {
        for (row, &u) in stages
            .chunks_exact_mut(LANES)
            .zip(&mu[b * ns..(b + 1) * ns])
        {
            for l in 0..LANES {
                let r = x[l] - u;
                row[l] += w[l] * r * r;
            }
        }
    }
}
