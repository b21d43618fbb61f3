//! E-M's event moves screened by walking the candidate positions in order.
//!
//! E-M moves event `e` of subtype `t` to each allowed position `lo..=hi`. The
//! candidate at `j + 1` is the one at `j` with `e` swapped with its right
//! neighbour `n`: only the curves of `e`'s and `n`'s biomarkers change, on the
//! stages between their neighbouring knots. The walk keeps, per subject, `E[k] =
//! exp(L[k] - ref)` with `L[k] = sum_obs (x mu_k - mu_k^2 / 2)` (the stage
//! kernel's values); a step multiplies the changed `E[k]` by `exp(q_k)`, `q_k`
//! the two biomarkers' change of `L[k]`, then takes the sum over stages and one
//! logarithm. Between the knots of the old and new curves both are linear in `k`,
//! so `q_k` is quadratic there: on chunks of at most [`CHUNK`] stages of such a
//! run, `exp(q_k)` follows `G_{k+1} = G_k R_k`, `R_{k+1} = R_k C` from three
//! exponentials, instead of one per stage. The work per candidate is subjects x
//! stages, whatever the number of biomarkers (a whole evaluation is subjects x
//! stages x biomarkers); only the first candidate is evaluated whole.
//!
//! The walked scores are a screen, as in the `screen` module: every candidate
//! whose exact score could be the largest is kept and scored exactly by the
//! caller, so the choice is the one exact scoring makes (the first of equal
//! maxima). All arithmetic is in double precision. With `u = 2^-53`, `Z_b >=
//! |mu_b[k]|` for every sequence, `U_m = sum_b (|x_b| + Z_b)^2` and `V_m = max_b
//! (|x_b| + Z_b)^2`:
//! - a fresh `L[k]` is within `(B + 2) u U_m` of exact (every term is at most
//!   `(|x_b| + Z_b)^2`), and `exp` adds `3e-16` relative (`exp_lanes`);
//! - a step's `q_k` is computed within `16 u V_m` (two biomarkers); the recurrence
//!   extrapolates the quadratic through a chunk's first three values, which
//!   multiplies their errors by at most `s^2 + 1` at offset `s < CHUNK`. Where
//!   every mask is 0 or 1 the second difference comes instead from the moved
//!   curves' `d2` alone (the `d1` are linear there, so `x` drops out) and is
//!   picked exactly per lane; four `d2` values, each within the error of a `q`,
//!   then err at most twice as much as three `q` values. Its three exponentials
//!   and `2 s` products add `(s^2 + 2 s + 2) 3e-16 + 2 s u` relative: so a step
//!   changes `ln E[k]` by at most `(CHUNK^2 + 1) 32 u V_m + (CHUNK^2 + 2 CHUNK +
//!   2) 3e-16 + 2 CHUNK u` more than exact, and `W` steps by `W` times that;
//! - the log-sum-exp is 1-Lipschitz in the `ln E[k]`; the sum of `N + 1` terms adds
//!   `(N + 1) u`, the logarithm `1e-15` relative to its result, mixing with the
//!   other subtypes under `8u`; the sum over subjects `M u sum_m |score_m|`;
//! - mixing as `ln f + ref + ln(s + b)` with `b = exp(o - ln f - ref)` kept per
//!   group (one logarithm per candidate; only where `o - ln f - ref <= 600`, so
//!   `|ref| <= |o| + |score| + |ln f| + 830`): `b`'s argument is within `3u (|o| +
//!   |ln f| + |ref|)`, `exp` `3e-16` relative, the logarithm `1e-15` of at most
//!   `600` and the two additions `2u (|ln f| + |ref| + |score|)`: per subject
//!   within `1e-14 (|o| + |score| + |ln f| + 830) + 1e-12`.
//!
//! The window keeps every candidate within twice that bound (`beta`) plus the
//! margin of the `screen` module (covering the exact scorer's own rounding) of
//! the best. Exponents never clamp: a step whose `|q|` could exceed [`STEP_MAX`]
//! for a group, or that would bring the group's total `|q|` since its last fresh
//! evaluation past [`DRIFT_MAX`], evaluates the group afresh instead; so does a
//! subject whose sum over stages leaves `(1e-100, 1e100)`. Between fresh
//! evaluations a value that fell below `1e-300` (where products lose precision)
//! can grow by at most `exp(DRIFT_MAX)`, to below `1e-150`: nothing against a sum
//! above `1e-100`.

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
const SUM_RANGE: f64 = 1e100;
/// Longest run of stages one recurrence covers.
const CHUNK: usize = 64;
/// Largest `|q|` bound of a step a group takes by recurrence (its second
/// differences stay below 700, where `exp` clamps).
const STEP_MAX: f64 = 150.0;
/// Largest total of a group's step bounds between fresh evaluations.
const DRIFT_MAX: f64 = 345.0;

/// One step of the walk: the changes of the two moved biomarkers on stages
/// `k0..k1` (`d1 = mu' - mu`, `d2 = -(mu'^2 - mu^2) / 2`, scaled by 1/sigma; 0
/// where a biomarker did not change).
pub(crate) struct WalkStep<'a> {
    be: usize,
    bn: usize,
    k0: usize,
    /// Runs of stages on which `q` is one quadratic, at most [`CHUNK`] long,
    /// covering `k0..k1` in order.
    chunks: &'a [(usize, usize)],
    /// Per chunk, where every observed mask is 0 or 1: `exp` of the second
    /// difference of `q` for a subject that observes `e`'s biomarker only, `n`'s
    /// only, and both (see [`walk_update_body`]).
    curvature: Option<&'a [[f64; 3]]>,
    d1e: &'a [f64],
    d2e: &'a [f64],
    d1n: &'a [f64],
    d2n: &'a [f64],
}

/// Multiplies one group's `e` on the changed stages by `exp(q_k)`, by recurrence
/// on each chunk (see the module docs).
#[inline(always)]
fn walk_update_body<F: MulAdd>(step: &WalkStep, x: &[f64], obs: &[f64], e: &mut [f64]) {
    walk_update_groups::<F, 1>(step, [x], [obs], [e]);
}

/// [`walk_update_body`] for [`WALK_BATCH`] groups at once.
#[inline(always)]
fn walk_update_batch_body<F: MulAdd>(
    step: &WalkStep,
    x: [&[f64]; WALK_BATCH],
    obs: [&[f64]; WALK_BATCH],
    e: [&mut [f64]; WALK_BATCH],
) {
    walk_update_groups::<F, WALK_BATCH>(step, x, obs, e);
}

/// Groups whose recurrences run side by side: each is a chain of dependent
/// products, whose latency one group alone waits on.
const WALK_BATCH: usize = 4;

/// [`walk_update_body`] for `N` groups (`x`, `obs`, `e` each), their
/// recurrences interleaved stage by stage; each group's arithmetic is the same
/// as alone, in the same order.
#[inline(always)]
fn walk_update_groups<F: MulAdd, const N: usize>(
    step: &WalkStep,
    x: [&[f64]; N],
    obs: [&[f64]; N],
    mut e: [&mut [f64]; N],
) {
    let (mut xe, mut oe, mut xn, mut on) = (
        [[0.0; LANES]; N],
        [[0.0; LANES]; N],
        [[0.0; LANES]; N],
        [[0.0; LANES]; N],
    );
    for i in 0..N {
        (xe[i], oe[i], xn[i], on[i]) = (
            lanes(x[i], step.be),
            lanes(obs[i], step.be),
            lanes(x[i], step.bn),
            lanes(obs[i], step.bn),
        );
    }
    let (mut g, mut r, mut c) = ([[0.0; LANES]; N], [[0.0; LANES]; N], [[0.0; LANES]; N]);
    // `step_q` is called directly, not through a closure: closures do not inherit
    // the caller's target features, and their `mul_add` becomes a library call.
    for (ci, &(ka, kb)) in step.chunks.iter().enumerate() {
        if kb - ka < 3 {
            for i in 0..N {
                for k in ka..kb {
                    let f = exp_lanes::<F>(step_q::<F>(step, &xe[i], &oe[i], &xn[i], &on[i], k));
                    for (v, f) in e[i][k * LANES..(k + 1) * LANES].iter_mut().zip(f) {
                        *v *= f;
                    }
                }
            }
            continue;
        }
        for i in 0..N {
            let (q0, q1) = (
                step_q::<F>(step, &xe[i], &oe[i], &xn[i], &on[i], ka),
                step_q::<F>(step, &xe[i], &oe[i], &xn[i], &on[i], ka + 1),
            );
            let mut d1 = [0.0; LANES];
            for ln in 0..LANES {
                d1[ln] = q1[ln] - q0[ln];
            }
            c[i] = match step.curvature {
                // The curves are linear on the chunk, so `q`'s second difference
                // has no `x` term: it is one of three numbers (or 0), picked by
                // the lane's masks; the multiply-adds below pick one exactly.
                Some(curvature) => {
                    let [ce, cn, cb] = curvature[ci];
                    let mut c = [0.0; LANES];
                    for ln in 0..LANES {
                        let (me, mn) = (oe[i][ln], on[i][ln]);
                        let with_e = F::fma(mn, cb, (1.0 - mn) * ce);
                        let without_e = F::fma(mn, cn, 1.0 - mn);
                        c[ln] = F::fma(me, with_e, (1.0 - me) * without_e);
                    }
                    c
                }
                None => {
                    let q2 = step_q::<F>(step, &xe[i], &oe[i], &xn[i], &on[i], ka + 2);
                    let mut d2 = [0.0; LANES];
                    for ln in 0..LANES {
                        d2[ln] = (q2[ln] - q1[ln]) - d1[ln];
                    }
                    exp_lanes::<F>(d2)
                }
            };
            g[i] = exp_lanes::<F>(q0);
            r[i] = exp_lanes::<F>(d1);
        }
        let range = ka * LANES..kb * LANES;
        if let ([e0, e1, e2, e3], [g0, g1, g2, g3], [r0, r1, r2, r3], [c0, c1, c2, c3]) =
            (&mut e[..], &mut g[..], &mut r[..], &c[..])
        {
            // Four groups as named streams and registers: indexed arrays of
            // them are kept in memory and the loop scalarised.
            let rows = e0[range.clone()]
                .chunks_exact_mut(LANES)
                .zip(e1[range.clone()].chunks_exact_mut(LANES))
                .zip(e2[range.clone()].chunks_exact_mut(LANES))
                .zip(e3[range].chunks_exact_mut(LANES));
            for (((w0, w1), w2), w3) in rows {
                recurrence_row(w0, g0, r0, c0);
                recurrence_row(w1, g1, r1, c1);
                recurrence_row(w2, g2, r2, c2);
                recurrence_row(w3, g3, r3, c3);
            }
        } else {
            for i in 0..N {
                for row in e[i][range.clone()].chunks_exact_mut(LANES) {
                    recurrence_row(row, &mut g[i], &mut r[i], &c[i]);
                }
            }
        }
    }
}

/// One stage of a recurrence: `row *= g`, `g *= r`, `r *= c`, lane by lane.
#[inline(always)]
fn recurrence_row(row: &mut [f64], g: &mut Lanes, r: &mut Lanes, c: &Lanes) {
    for ln in 0..LANES {
        row[ln] *= g[ln];
        g[ln] *= r[ln];
        r[ln] *= c[ln];
    }
}

/// Biomarker `b`'s lanes of a group's `[b][lane]` array.
#[inline(always)]
fn lanes(v: &[f64], b: usize) -> Lanes {
    v[b * LANES..(b + 1) * LANES]
        .try_into()
        .unwrap_or_else(|_| unreachable!("a lane group"))
}

/// A step's `q_k` for one group's lanes.
#[inline(always)]
fn step_q<F: MulAdd>(
    step: &WalkStep,
    xe: &Lanes,
    oe: &Lanes,
    xn: &Lanes,
    on: &Lanes,
    k: usize,
) -> Lanes {
    let i = k - step.k0;
    let (a, b, c, d) = (step.d1e[i], step.d2e[i], step.d1n[i], step.d2n[i]);
    let mut out = [0.0; LANES];
    for ln in 0..LANES {
        out[ln] = F::fma(xe[ln], a, F::fma(oe[ln], b, F::fma(xn[ln], c, on[ln] * d)));
    }
    out
}

/// One group's sum over stages (`total`), and its score per lane:
/// `ln(f_t exp(ref + ln sum) + exp(others))`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn walk_score_body<F: MulAdd>(
    total: &Lanes,
    reference: &Lanes,
    ln_f: f64,
    others: &Lanes,
    mix: Option<&Lanes>,
    sum: &mut Lanes,
    score: &mut Lanes,
) {
    let s = *total;
    if let Some(b) = mix {
        // `ln(f exp(ref) s + exp(o)) = ln f + ref + ln(s + b)`, `b = exp(o - ln f -
        // ref)` kept while the reference stays: one logarithm. One subtype: `b`
        // is `exp(-inf)`, clamped to about 1e-304, which leaves `s` unchanged.
        let mut y = [0.0; LANES];
        for ln in 0..LANES {
            y[ln] = s[ln] + b[ln];
        }
        let lg = ln_lanes::<F>(y);
        for ln in 0..LANES {
            sum[ln] = s[ln];
            score[ln] = ln_f + reference[ln] + lg[ln];
        }
        return;
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

/// The sum over stages of a group's `e`, per lane.
#[inline(always)]
// `multiversion!` passes every body its multiply-add flavour; a sum needs none.
#[allow(clippy::extra_unused_type_parameters)]
fn stage_sum_body<F: MulAdd>(e: &[f64], n_stages: usize, out: &mut Lanes) {
    // Four partial sums (stages 4i + p into part p): one chain of additions would
    // wait on each one's latency. Named accumulators and whole rows: indexing one
    // array of parts led the compiler to half-width loads and blends.
    let (mut p0, mut p1, mut p2, mut p3) = ([0.0; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let mut rows = e[..n_stages * LANES].chunks_exact(4 * LANES);
    for quad in rows.by_ref() {
        add_row(&mut p0, &quad[..LANES]);
        add_row(&mut p1, &quad[LANES..2 * LANES]);
        add_row(&mut p2, &quad[2 * LANES..3 * LANES]);
        add_row(&mut p3, &quad[3 * LANES..]);
    }
    for (p, row) in rows.remainder().chunks_exact(LANES).enumerate() {
        add_row([&mut p0, &mut p1, &mut p2][p], row);
    }
    for ln in 0..LANES {
        out[ln] = (p0[ln] + p1[ln]) + (p2[ln] + p3[ln]);
    }
}

multiversion!(
    /// [`stage_sum_body`] compiled for the CPU (on its own: inlined into the
    /// scoring, the compiler split its rows into half-width loads and blends).
    fn stage_sum(e: &[f64], n_stages: usize, out: &mut Lanes) => stage_sum_body
);

/// `acc += row`, lane by lane (`row` is one stage's lanes).
#[inline(always)]
fn add_row(acc: &mut Lanes, row: &[f64]) {
    let row: &Lanes = row
        .try_into()
        .unwrap_or_else(|_| unreachable!("one stage's lanes"));
    for ln in 0..LANES {
        acc[ln] += row[ln];
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
    fn walk_update(step: &WalkStep, x: &[f64], obs: &[f64], e: &mut [f64]) => walk_update_body
);
multiversion!(
    /// [`walk_update_batch_body`] compiled for the CPU.
    fn walk_update_batch(step: &WalkStep, x: [&[f64]; WALK_BATCH], obs: [&[f64]; WALK_BATCH], e: [&mut [f64]; WALK_BATCH]) => walk_update_batch_body
);
multiversion!(
    /// [`walk_score_body`] compiled for the CPU.
    #[allow(clippy::too_many_arguments)]
    fn walk_score(total: &Lanes, reference: &Lanes, ln_f: f64, others: &Lanes, mix: Option<&Lanes>, sum: &mut Lanes, score: &mut Lanes) => walk_score_body
);
multiversion!(
    /// [`mix_factor_body`] compiled for the CPU.
    fn mix_factor(others: &Lanes, ln_f: f64, reference: &Lanes) -> Option<Lanes> => mix_factor_body
);

/// Above this `o - ln f - ref` a lane's mixing factor would leave the range of
/// `exp_lanes` (which clamps at 700) or swamp the sum: such groups are scored by
/// the general formula.
const MIX_MAX: f64 = 600.0;

/// A group's mixing factor `exp(o - ln f - ref)` per lane (see
/// [`walk_score_body`]), or None where a lane is out of [`MIX_MAX`] or NaN.
#[inline(always)]
fn mix_factor_body<F: MulAdd>(others: &Lanes, ln_f: f64, reference: &Lanes) -> Option<Lanes> {
    let mut d = [0.0; LANES];
    for ln in 0..LANES {
        d[ln] = others[ln] - ln_f - reference[ln];
        if d[ln].is_nan() || d[ln] > MIX_MAX {
            return None;
        }
    }
    Some(exp_lanes::<F>(d))
}
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
    /// `sum_m U_m` and `sum_m V_m` over real subjects (see the module docs).
    sum_u: f64,
    sum_v: f64,
    /// Per group and biomarker, the largest `|x|` of its lanes (`[g][b]`).
    xmax: Vec<f64>,
    /// Stage values of a fresh evaluation (`[k][lane]`, the stage stride).
    l: Vec<f64>,
    /// `e[g][k][lane]`, rows of the stage stride.
    e: Vec<f64>,
    reference: Vec<Lanes>,
    /// Per group, the reference its mixing factor was made for and the factor
    /// (see [`walk_score_body`]); reset when a walk starts.
    mix: Vec<Option<(Lanes, Option<Lanes>)>>,
    /// Per group, the total of its step bounds since its last fresh evaluation.
    drift: Vec<f64>,
    /// `mu[b][k]` of the current candidate, scaled by 1/sigma.
    mu: Vec<f64>,
    row: Vec<f64>,
    d: [Vec<f64>; 4],
    chunks: Vec<(usize, usize)>,
    /// Per chunk, [`WalkStep::curvature`].
    curvature: Vec<[f64; 3]>,
    /// Whether every observed mask is 0 or 1 (as [`Likelihood`] builds them).
    binary_masks: bool,
    knots: Vec<(usize, f64)>,
    scratch: Scratch,
    /// Whether `scratch` holds the current candidate's stage inputs.
    scratch_current: bool,
    others: Option<Others>,
    scores: Vec<f64>,
}

impl EventWalk {
    /// The walk of `lik`'s data.
    pub(crate) fn new(lik: &Likelihood) -> Self {
        let events = lik.events();
        let nb = events.n_biomarkers();
        let z = largest_values(events);
        let (mut sum_u, mut sum_v) = (0.0, 0.0);
        let mut xmax = vec![0.0f64; lik.n_groups() * nb];
        for g in 0..lik.n_groups() {
            let (x, _) = lik.group_arrays(g);
            for b in 0..nb {
                for lane in 0..LANES {
                    xmax[g * nb + b] = xmax[g * nb + b].max(x[b * LANES + lane].abs());
                }
            }
            for lane in 0..LANES {
                if g * LANES + lane >= lik.n_subjects() {
                    break;
                }
                let terms = (0..nb).map(|b| (x[b * LANES + lane].abs() + z[b]).powi(2));
                sum_u += terms.clone().sum::<f64>();
                sum_v += terms.fold(0.0, f64::max);
            }
        }
        Self {
            sum_u,
            sum_v,
            xmax,
            l: Vec::new(),
            e: Vec::new(),
            reference: Vec::new(),
            mix: Vec::new(),
            drift: Vec::new(),
            mu: Vec::new(),
            row: Vec::new(),
            d: Default::default(),
            chunks: Vec::new(),
            curvature: Vec::new(),
            binary_masks: lik
                .all_group_arrays()
                .1
                .iter()
                .all(|&m| m == 0.0 || m == 1.0),
            knots: Vec::with_capacity(8),
            scratch: Scratch::default(),
            scratch_current: false,
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
        let others_scale = self.others.as_ref()?.scale;

        // The first candidate, evaluated whole.
        let mut seq = base.sequences()[t].clone();
        seq.move_unchecked(e, lo);
        let values = StageValues::new(events, &seq);
        self.mu.clear();
        self.mu
            .extend(values.as_slice().iter().map(|v| v * inv_sigma));
        lik.fill_stage_input(&values, &mut self.scratch);
        self.scratch_current = true;
        self.e.resize(ng * stride * LANES, 0.0);
        self.reference.resize(ng, [0.0; LANES]);
        self.drift.clear();
        self.drift.resize(ng, 0.0);
        self.mix.clear();
        self.mix.resize(ng, None);
        for g in 0..ng {
            self.fresh_group(lik, g, stride);
        }
        self.scores.clear();
        let (mut total, mut abs_scores) = (0.0, 0.0);
        for g in 0..ng {
            let (t, a) = self.group_total(lik, &seq, g, stride, ln_f);
            total += t;
            abs_scores += a;
        }
        self.scores.push(total);

        // Each further position: one swap.
        for d in self.d.iter_mut() {
            d.resize(ns, 0.0);
        }
        self.row.resize(ns, 0.0);
        let knot = |seq: &Sequence, ev: Option<usize>, none: usize| {
            ev.map_or(none, |v| seq.position(v) + 1)
        };
        for j in lo..hi {
            let n = seq.event_at(j + 1);
            let (be, bn) = (events.biomarker_of(e), events.biomarker_of(n));
            seq.move_unchecked(e, j + 1);
            self.scratch_current = false;
            let (ke, kn) = (
                self.changes(events, &seq, be, inv_sigma, 0),
                self.changes(events, &seq, bn, inv_sigma, 2),
            );
            let (k0, k1) = match (ke, kn) {
                (Some(a), Some(b)) => (a.0.min(b.0), a.1.max(b.1)),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => (0, 0),
            };
            // Zero the changes outside each biomarker's own range; the largest
            // changes bound a step's `|q|` per group.
            let mut dmax = [0.0f64; 4];
            for (pair, range) in [(0, ke), (2, kn)] {
                let (a, b) = range.unwrap_or((k0, k0));
                for k in (k0..a).chain(b..k1) {
                    self.d[pair][k] = 0.0;
                    self.d[pair + 1][k] = 0.0;
                }
                for k in a..b {
                    dmax[pair] = dmax[pair].max(self.d[pair][k].abs());
                    dmax[pair + 1] = dmax[pair + 1].max(self.d[pair + 1][k].abs());
                }
            }
            // Runs between the knots of the old and new curves of both
            // biomarkers, cut into chunks.
            let mut cuts = vec![
                k0,
                k1,
                j + 1,
                j + 2,
                knot(&seq, events.lower_neighbour(e), 0),
                knot(&seq, events.upper_neighbour(e), ns),
                knot(&seq, events.lower_neighbour(n), 0),
                knot(&seq, events.upper_neighbour(n), ns),
            ];
            cuts.retain(|&c| (k0..=k1).contains(&c));
            cuts.sort_unstable();
            cuts.dedup();
            self.chunks.clear();
            for w in cuts.windows(2) {
                let mut a = w[0];
                while a < w[1] {
                    let b = (a + CHUNK).min(w[1]);
                    self.chunks.push((a, b));
                    a = b;
                }
            }
            self.curvature.clear();
            if self.binary_masks {
                for &(ka, kb) in &self.chunks {
                    let second = |d: &[f64]| {
                        if kb - ka < 3 {
                            return 0.0;
                        }
                        (d[ka + 2] - d[ka + 1]) - (d[ka + 1] - d[ka])
                    };
                    let (se, sn) = (second(&self.d[1]), second(&self.d[3]));
                    self.curvature.push([se.exp(), sn.exp(), (se + sn).exp()]);
                }
            }
            // Groups updated a batch at a time and summed right after (their
            // stages stay in cache), in order.
            let (mut total, mut abs) = (0.0, 0.0);
            let len = stride * LANES;
            for g0 in (0..ng).step_by(WALK_BATCH) {
                let g1 = (g0 + WALK_BATCH).min(ng);
                let mut walked = [false; WALK_BATCH];
                for g in g0..g1 {
                    let bound = self.xmax[g * nb + be] * dmax[0]
                        + dmax[1]
                        + self.xmax[g * nb + bn] * dmax[2]
                        + dmax[3];
                    if k1 == k0 {
                    } else if bound > STEP_MAX || self.drift[g] + bound > DRIFT_MAX {
                        self.ensure_scratch(lik, &seq);
                        self.fresh_group(lik, g, stride);
                    } else {
                        self.drift[g] += bound;
                        walked[g - g0] = true;
                    }
                }
                let step = WalkStep {
                    be,
                    bn,
                    k0,
                    chunks: &self.chunks,
                    curvature: self.binary_masks.then_some(&self.curvature[..]),
                    d1e: &self.d[0][k0..k1],
                    d2e: &self.d[1][k0..k1],
                    d1n: &self.d[2][k0..k1],
                    d2n: &self.d[3][k0..k1],
                };
                let block = &mut self.e[g0 * len..g1 * len];
                if walked.iter().all(|&w| w) {
                    let mut groups = block.chunks_exact_mut(len);
                    let e = std::array::from_fn(|_| {
                        groups
                            .next()
                            .unwrap_or_else(|| unreachable!("a full batch"))
                    });
                    let x = std::array::from_fn(|i| lik.group_arrays(g0 + i).0);
                    let obs = std::array::from_fn(|i| lik.group_arrays(g0 + i).1);
                    walk_update_batch(isa, &step, x, obs, e);
                } else {
                    for (i, e) in block.chunks_exact_mut(len).enumerate() {
                        if walked[i] {
                            let (x, obs) = lik.group_arrays(g0 + i);
                            walk_update(isa, &step, x, obs, e);
                        }
                    }
                }
                for g in g0..g1 {
                    let (t, a) = self.group_total(lik, &seq, g, stride, ln_f);
                    total += t;
                    abs += a;
                }
            }
            abs_scores = f64::max(abs_scores, abs);
            self.scores.push(total);
        }
        let steps = (hi - lo) as f64;
        let m = n_real as f64;
        let per_step = ((CHUNK * CHUNK + 1) as f64) * 32.0 * U64 * self.sum_v
            + (((CHUNK * CHUNK + 2 * CHUNK + 2) as f64) * 3e-16 + (2 * CHUNK) as f64 * U64) * m;
        let beta = (nb as f64 + 2.0) * U64 * self.sum_u
            + steps * per_step
            + m * (ns as f64 + 64.0) * U64
            + (1e-15 + m * U64) * abs_scores
            + 1e-14 * (others_scale + abs_scores + m * (ln_f.abs() + 830.0))
            + 1e-12 * m;
        Some((beta, self.sum_u + others_scale + m))
    }

    /// Makes `scratch` hold the stage inputs of `seq` (the current candidate).
    fn ensure_scratch(&mut self, lik: &Likelihood, seq: &Sequence) {
        if !self.scratch_current {
            let values = StageValues::new(lik.events(), seq);
            lik.fill_stage_input(&values, &mut self.scratch);
            self.scratch_current = true;
        }
    }

    /// Evaluates group `g` afresh from `scratch`: its reference (each lane's
    /// largest stage value) and `e`.
    fn fresh_group(&mut self, lik: &Likelihood, g: usize, stride: usize) {
        let ns = lik.events().n_stages();
        self.l.resize(stride * LANES, 0.0);
        let st = lik.stage_input(&self.scratch);
        crate::kernels::stage_values(lik.isa(), &st, &lik.group(g), &mut self.l);
        walk_reference(
            lik.isa(),
            &self.l,
            ns,
            &mut self.reference[g],
            &mut self.e[g * stride * LANES..(g + 1) * stride * LANES],
        );
        self.drift[g] = 0.0;
    }

    /// Group `g`'s part of the current candidate's (`seq`'s) total: the sum of
    /// its real lanes' scores and of their absolute values; a group whose sums
    /// left the trusted range is evaluated afresh first.
    fn group_total(
        &mut self,
        lik: &Likelihood,
        seq: &Sequence,
        g: usize,
        stride: usize,
        ln_f: f64,
    ) -> (f64, f64) {
        let isa = lik.isa();
        let ns = lik.events().n_stages();
        let r = g * stride * LANES..(g + 1) * stride * LANES;
        let o: Lanes = self
            .others
            .as_ref()
            .unwrap_or_else(|| unreachable!("set before scoring"))
            .values[g * LANES..(g + 1) * LANES]
            .try_into()
            .unwrap_or_else(|_| unreachable!("a lane group"));
        let (mut sum, mut score) = ([0.0; LANES], [0.0; LANES]);
        let real = (lik.n_subjects() - g * LANES).min(LANES);
        // Scored from the group's running values, and once more from fresh ones
        // when a sum left its range.
        for fresh in [false, true] {
            if fresh {
                self.ensure_scratch(lik, seq);
                self.fresh_group(lik, g, stride);
            }
            let reference = self.reference[g];
            let mix = match self.mix[g] {
                Some((at, m)) if at == reference => m,
                _ => {
                    let m = mix_factor(isa, &o, ln_f, &reference);
                    self.mix[g] = Some((reference, m));
                    m
                }
            };
            let mut total = [0.0; LANES];
            stage_sum(isa, &self.e[r.clone()], ns, &mut total);
            walk_score(
                isa,
                &total,
                &reference,
                ln_f,
                &o,
                mix.as_ref(),
                &mut sum,
                &mut score,
            );
            if sum[..real]
                .iter()
                .all(|s| *s > 1.0 / SUM_RANGE && *s < SUM_RANGE)
            {
                break;
            }
        }
        let total: f64 = score[..real].iter().sum();
        let abs: f64 = score[..real].iter().map(|v| v.abs()).sum();
        (total, abs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::likelihood::MissingConvention;
    use crate::simulate::{scaled, test_cohort};

    /// The largest spread of `walked - exact` over one walk's positions, over
    /// `2 beta`, of every walk of every event of every subtype of `mixtures`
    /// (the exact score a fresh evaluation of the candidate); fails where one is
    /// over 1. Walked scores leave out terms that are the same for every
    /// candidate, so only their differences are compared: the window keeps
    /// every candidate within `2 beta` of the best walked one.
    fn worst_ratio(lik: &Likelihood, mixtures: &[Mixture]) -> f64 {
        let events = lik.events();
        let mut walk = EventWalk::new(lik);
        let mut worst = 0.0f64;
        for mixture in mixtures {
            for t in 0..mixture.n_subtypes() {
                for e in 0..events.n_events() {
                    let allowed = mixture.sequences()[t].allowed_positions(events, e);
                    let (lo, hi) = (*allowed.start(), *allowed.end());
                    let (beta, _) = walk.score(lik, mixture, t, e, lo, hi).expect("walkable");
                    let (mut low, mut high, mut slack) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
                    for (j, &walked) in walk.scores.iter().enumerate() {
                        let mut m = mixture.clone();
                        m.sequences_mut()[t].move_unchecked(e, lo + j);
                        let exact = lik.loglike(&m);
                        low = low.min(walked - exact);
                        high = high.max(walked - exact);
                        // The exact evaluation's own rounding: far below beta.
                        slack = slack.max(1e-13 * exact.abs());
                    }
                    let ratio = (high - low) / (2.0 * beta);
                    assert!(
                        high - low <= 2.0 * beta + slack,
                        "subtype {t} event {e}: walked - exact spans {low}..{high}, beta {beta}"
                    );
                    worst = worst.max(ratio);
                }
            }
        }
        worst
    }

    /// Walked scores stay within their bound of the exact ones: at the truth
    /// and at random mixtures, 1 and 3 subtypes, both missing-value
    /// conventions, and with the data scaled up so that stage likelihoods span
    /// hundreds of nats (steps then shift most of a subject's weight between
    /// stages, and groups are evaluated afresh).
    #[test]
    fn walked_scores_are_within_their_bound() {
        for (fractions, scale, seed) in [
            (vec![1.0], 1.0, 3),
            (vec![0.5, 0.3, 0.2], 1.0, 4),
            (vec![0.6, 0.4], 4.0, 5),
        ] {
            let mut w = test_cohort(61, 6, &fractions, seed);
            let data = scaled(&w.data, scale).unwrap();
            let k = fractions.len();
            let random = Mixture::new(
                (0..k)
                    .map(|_| Sequence::random(&w.events, &mut w.rng))
                    .collect(),
                fractions.clone(),
            )
            .unwrap();
            for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
                for baseline in [false, true] {
                    let lik = Likelihood::new(w.events.clone(), &data, conv).unwrap();
                    let lik = if baseline {
                        lik.with_baseline_kernels()
                    } else {
                        lik
                    };
                    let worst = worst_ratio(&lik, &[w.truth.clone(), random.clone()]);
                    eprintln!(
                        "{k} subtype(s), scale {scale}, {conv:?}, baseline kernels {baseline}: \
                         worst {worst:.3e} of the bound"
                    );
                }
            }
        }
    }
}
