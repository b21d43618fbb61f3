//! The portable kernel bodies: plain loops over fixed-width lane arrays, generic
//! over [`MulAdd`] (fused or plain multiply-add), that LLVM vectorises under the
//! target features of whichever caller inlines them. `mod.rs` compiles each body
//! once per instruction set behind one entry point (`multiversion!`); the
//! hand-written AVX2 and AVX-512 kernels live in `avx2.rs` and `avx512.rs`.

#![allow(clippy::needless_range_loop, clippy::excessive_precision)]

use super::*;

/// Writes `out[k][lane]` = sum over observed b of `x*mu - mu^2/2` (the stage-dependent
/// part of the log-likelihood) for one group; `out` has `n_stages * LANES` values.
#[inline(always)]
fn stage_loglike_group<F: MulAdd>(st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    let nb = st.n_biomarkers;
    let ns = st.n_stages;
    let stride = st.stride;
    let mut k0 = 0;
    while k0 < ns {
        let mut acc = [[0.0f64; LANES]; STAGE_TILE];
        for b in 0..nb {
            let xb: &Lanes = g.x[b * LANES..(b + 1) * LANES].try_into().unwrap();
            let mub: &[f64; STAGE_TILE] = st.mu[b * stride + k0..b * stride + k0 + STAGE_TILE]
                .try_into()
                .unwrap();
            for t in 0..STAGE_TILE {
                for l in 0..LANES {
                    acc[t][l] = F::fma(xb[l], mub[t], acc[t][l]);
                }
            }
        }
        for t in 0..STAGE_TILE.min(ns - k0) {
            let c = st.neg_half_sum_mu_sq[k0 + t];
            let o: &mut Lanes = (&mut out[(k0 + t) * LANES..(k0 + t + 1) * LANES])
                .try_into()
                .unwrap();
            for l in 0..LANES {
                o[l] = acc[t][l] + c;
            }
        }
        k0 += STAGE_TILE;
    }
    // A missing value contributes nothing: add back the mu^2/2 removed above, a
    // whole column of lanes at a time (vectorises; a per-entry scatter did not).
    for (i, &b) in g.miss_cols.iter().enumerate() {
        let mask: &Lanes = g.miss_mask[i * LANES..(i + 1) * LANES].try_into().unwrap();
        let h = &st.half_mu_sq[b as usize * stride..b as usize * stride + ns];
        for k in 0..ns {
            for l in 0..LANES {
                out[k * LANES + l] = F::fma(mask[l], h[k], out[k * LANES + l]);
            }
        }
    }
}

/// `log sum_k exp(v[k][lane])` for each lane of a stage-major `n_stages x LANES` block.
#[inline(always)]
fn log_sum_exp_stages<F: MulAdd>(v: &[f64], n_stages: usize) -> Lanes {
    let mut max = [f64::NEG_INFINITY; LANES];
    for k in 0..n_stages {
        for l in 0..LANES {
            max[l] = max[l].max(v[k * LANES + l]);
        }
    }
    let mut sum = [0.0; LANES];
    for k in 0..n_stages {
        let (e, _) = exp_minus::<F>(row(v, k), &max);
        for l in 0..LANES {
            sum[l] += e[l];
        }
    }
    max_plus_ln::<F>(&max, sum)
}

/// Lane group `i` of `v` (`v[i * LANES..(i + 1) * LANES]`).
#[inline(always)]
pub fn row(v: &[f64], i: usize) -> &Lanes {
    v[i * LANES..(i + 1) * LANES].try_into().unwrap()
}

/// `exp(v[lane] - r[lane])` ([`exp_lanes`]) and the differences `v - r`: a term of
/// a sum of exponentials scaled by `exp(-r)`.
#[inline(always)]
pub fn exp_minus<F: MulAdd>(v: &Lanes, r: &Lanes) -> (Lanes, Lanes) {
    let mut d = [0.0; LANES];
    for l in 0..LANES {
        d[l] = v[l] - r[l];
    }
    (exp_lanes::<F>(d), d)
}

/// `max[lane] + ln sum[lane]`: the end of a log-sum-exp whose terms were scaled by
/// `exp(-max)` ([`exp_minus`]).
#[inline(always)]
pub fn max_plus_ln<F: MulAdd>(max: &Lanes, sum: Lanes) -> Lanes {
    let lg = ln_lanes::<F>(sum);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = max[l] + lg[l];
    }
    out
}

/// `exp(x)` for `x <= 0` lanes (inputs below -700 return about 1e-304: harmless
/// inside sums whose largest term is 1). Relative error below 3e-16 in range.
#[inline(always)]
pub fn exp_lanes<F: MulAdd>(x: Lanes) -> Lanes {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: rounds to integer
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        let xc = x[l].clamp(-700.0, 700.0);
        let t = F::fma(xc, LOG2E, SHIFT);
        let n = t - SHIFT;
        let r = F::fma(n, -LN2_HI, xc);
        let r = F::fma(n, -LN2_LO, r);
        // exp(r) = 1 + r + r^2 q(r) on |r| <= ln2/2 (`EXP_Q`), Horner.
        let mut q = EXP_Q[9];
        for &c in EXP_Q[..9].iter().rev() {
            q = F::fma(q, r, c);
        }
        let p = F::fma(q, r * r, 1.0 + r);
        // Times 2^n: n (the low bits of t) added to p's exponent field.
        let n_bits = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
        out[l] = f64::from_bits((p.to_bits() as i64).wrapping_add(n_bits << 52) as u64);
    }
    out
}

/// `ln(x)` for positive, finite, normal lanes. Relative error below 1e-15.
#[inline(always)]
pub fn ln_lanes<F: MulAdd>(x: Lanes) -> Lanes {
    const LN2: f64 = std::f64::consts::LN_2;
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        let bits = x[l].to_bits();
        let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        // Bring m into [sqrt(1/2), sqrt(2)).
        let big = m >= SQRT2;
        m = if big { m * 0.5 } else { m };
        e += big as i64;
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        // 2 * atanh(s) = 2 (s + s^3/3 + ... + s^21/21)
        let mut p: f64 = 1.0 / 21.0;
        p = F::fma(p, s2, 1.0 / 19.0);
        p = F::fma(p, s2, 1.0 / 17.0);
        p = F::fma(p, s2, 1.0 / 15.0);
        p = F::fma(p, s2, 1.0 / 13.0);
        p = F::fma(p, s2, 1.0 / 11.0);
        p = F::fma(p, s2, 1.0 / 9.0);
        p = F::fma(p, s2, 1.0 / 7.0);
        p = F::fma(p, s2, 1.0 / 5.0);
        p = F::fma(p, s2, 1.0 / 3.0);
        p = F::fma(p, s2, 1.0);
        out[l] = (e as f64).mul_add(LN2, 2.0 * s * p);
    }
    out
}

/// For every subject group: `lse[m] = log sum_k exp(L[k][m])` with the
/// stage-dependent part `L` of one subtype. `scratch` holds `n_stages * LANES`.
#[inline(always)]
pub(super) fn subtype_lse_body<F: MulAdd>(
    st: &StageInput,
    groups: &[GroupInput],
    scratch: &mut [f64],
    lse: &mut [f64],
) {
    for (gi, g) in groups.iter().enumerate() {
        stage_loglike_group::<F>(st, g, scratch);
        let r = log_sum_exp_stages::<F>(scratch, st.n_stages);
        lse[gi * LANES..(gi + 1) * LANES].copy_from_slice(&r);
    }
}

/// Per-subject log of the mixture: `log sum_s exp(log_f[s] + lse[s][m])`.
#[inline(always)]
pub(super) fn mixture_body<F: MulAdd>(log_f: &[f64], lse: &[&[f64]], out: &mut [f64]) {
    let n = out.len() / LANES;
    for g in 0..n {
        let mut max = [f64::NEG_INFINITY; LANES];
        for (s, ls) in lse.iter().enumerate() {
            for l in 0..LANES {
                max[l] = max[l].max(ls[g * LANES + l] + log_f[s]);
            }
        }
        let mut sum = [0.0; LANES];
        for (s, ls) in lse.iter().enumerate() {
            let mut d = [0.0; LANES];
            for l in 0..LANES {
                // log f = -inf (an empty subtype) gives exp(-inf) = 0 through the clamp.
                d[l] = (ls[g * LANES + l] + log_f[s] - max[l]).max(-745.0);
            }
            let e = exp_lanes::<F>(d);
            for l in 0..LANES {
                sum[l] += e[l];
            }
        }
        out[g * LANES..(g + 1) * LANES].copy_from_slice(&max_plus_ln::<F>(&max, sum));
    }
}

pub(super) fn stage_values_body<F: MulAdd>(st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    stage_loglike_group::<F>(st, g, out)
}

/// Turns one group's stage values `l[k][lane]` (as [`stage_values`] writes them)
/// into `exp(l - r)` in place, `r[lane] = max_k l[k][lane]`, and returns `r`.
/// Values below `exp(-700)` are 0. Every mixture that uses the sequence then
/// needs one exponential per subtype, not one per stage ([`posterior_group`]).
#[inline(always)]
pub(super) fn stage_exp_body<F: MulAdd>(l: &mut [f64], n_stages: usize, r: &mut Lanes) {
    assert!(l.len() >= n_stages * LANES && n_stages > 0);
    let mut max = [f64::NEG_INFINITY; LANES];
    for k in 0..n_stages {
        for ln in 0..LANES {
            let v = l[k * LANES + ln];
            max[ln] = if v > max[ln] { v } else { max[ln] };
        }
    }
    for k in 0..n_stages {
        let (e, d) = exp_minus::<F>(row(l, k), &max);
        for ln in 0..LANES {
            l[k * LANES + ln] = if d[ln] >= -700.0 { e[ln] } else { 0.0 };
        }
    }
    *r = max;
}

/// Adds the subtype-stage posteriors of one group under one mixture to `acc`:
/// `acc[s][k][lane] += f_s exp(L_s[k]) / sum_{s', k'} f_s' exp(L_s'[k'])`, where
/// `blocks[s]` holds `exp(L_s[k][lane] - refs[s][lane])` and `refs[s]` the
/// reference (as [`stage_exp`] makes them) and `log_f[s] = ln f_s`; `tmp` is
/// scratch of the same size as `acc`. So one mixture costs one exponential per
/// subtype and lane: `f_s exp(L_s[k]) / C = exp(ln f_s + ref_s - M) * block_s[k]`
/// with `M = max_s (ln f_s + ref_s)`, the largest term. A subtype whose weight is
/// below `exp(-700)` of the largest (a zero fraction among them) adds exact zeros.
#[inline(always)]
pub(super) fn posterior_group_body<F: MulAdd>(
    log_f: &[f64],
    blocks: &[&[f64]],
    refs: &[&Lanes],
    n_stages: usize,
    tmp: &mut [f64],
    acc: &mut [f64],
) {
    let size = check_posterior_shapes(log_f, blocks, refs, n_stages, tmp, acc);
    let mut max = [f64::NEG_INFINITY; LANES];
    for (lf, r) in log_f.iter().zip(refs) {
        for l in 0..LANES {
            let v = lf + r[l];
            max[l] = if v > max[l] { v } else { max[l] };
        }
    }
    let mut total = [0.0; LANES];
    for (s, ((lf, r), b)) in log_f.iter().zip(refs).zip(blocks).enumerate() {
        let mut d = [0.0; LANES];
        for l in 0..LANES {
            d[l] = lf + r[l] - max[l];
        }
        let e = exp_lanes::<F>(d);
        let mut w = [0.0; LANES];
        for l in 0..LANES {
            // `!(d >= -700)` also catches -inf - (-inf) = NaN of a lane whose
            // every fraction is zero (never a valid mixture).
            w[l] = if d[l] >= -700.0 { e[l] } else { 0.0 };
        }
        for k in 0..n_stages {
            let o = &mut tmp[(s * n_stages + k) * LANES..(s * n_stages + k + 1) * LANES];
            for l in 0..LANES {
                o[l] = w[l] * b[k * LANES + l];
                total[l] += o[l];
            }
        }
    }
    let mut inv = [0.0; LANES];
    for l in 0..LANES {
        inv[l] = 1.0 / total[l];
    }
    for (a, t) in acc[..size]
        .chunks_exact_mut(LANES)
        .zip(tmp[..size].chunks_exact(LANES))
    {
        for l in 0..LANES {
            a[l] = F::fma(t[l], inv[l], a[l]);
        }
    }
}

/// Full state of one subtype for one group: `l[k][lane]` (stage part of the
/// log-likelihood), `e[k][lane] = exp(l - reference)` and `p[lane] = sum_k e`.
#[inline(always)]
pub(super) fn group_state_body<F: MulAdd>(
    st: &StageInput,
    g: &GroupInput,
    reference: &Lanes,
    l: &mut [f64],
    e: &mut [f64],
    p: &mut Lanes,
) {
    stage_loglike_group::<F>(st, g, l);
    let mut sum = [0.0; LANES];
    for k in 0..st.n_stages {
        let (ex, _) = exp_minus::<F>(row(l, k), reference);
        e[k * LANES..(k + 1) * LANES].copy_from_slice(&ex);
        for ln in 0..LANES {
            sum[ln] += ex[ln];
        }
    }
    *p = sum;
}

/// Proposal for one group: new `l`, `e` at the changed stages (`new_l[i][lane]`,
/// `new_e[i][lane]` for the i-th changed stage) and the new stage sum.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn group_delta_body<F: MulAdd>(
    x: &[f64],
    obs: &[f64],
    changes: &[StageDelta],
    unchanged: &[usize],
    reference: &Lanes,
    l: &[f64],
    e: &[f64],
    new_l: &mut [f64],
    new_e: &mut [f64],
    new_p: &mut Lanes,
) {
    for (i, ch) in changes.iter().enumerate() {
        let mut acc: Lanes = l[ch.stage * LANES..(ch.stage + 1) * LANES]
            .try_into()
            .unwrap();
        for &(b, dmu, dhsq) in ch.deltas {
            let xb: &Lanes = x[b * LANES..(b + 1) * LANES].try_into().unwrap();
            let ob: &Lanes = obs[b * LANES..(b + 1) * LANES].try_into().unwrap();
            for ln in 0..LANES {
                acc[ln] = F::fma(xb[ln], dmu, F::fma(-ob[ln], dhsq, acc[ln]));
            }
        }
        let (ex, _) = exp_minus::<F>(&acc, reference);
        new_l[i * LANES..(i + 1) * LANES].copy_from_slice(&acc);
        new_e[i * LANES..(i + 1) * LANES].copy_from_slice(&ex);
    }
    *new_p = stage_sum(e, new_e, changes.len(), unchanged);
}

/// Proposal of one group after a sequence move, multiplicatively with one
/// exponential per changed stage: `new_e = e exp(sum_b x dmu - obs dh)` (cheaper
/// than [`group_sweep_body`] when knots are dense).
#[inline(always)]
pub(super) fn group_factors_body<F: MulAdd>(
    x: &[f64],
    obs: &[f64],
    changes: &[StageDelta],
    unchanged: &[usize],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut Lanes,
) {
    for (i, ch) in changes.iter().enumerate() {
        let mut acc = [0.0; LANES];
        for &(b, dmu, dhsq) in ch.deltas {
            let xb: &Lanes = x[b * LANES..(b + 1) * LANES].try_into().unwrap();
            let ob: &Lanes = obs[b * LANES..(b + 1) * LANES].try_into().unwrap();
            for ln in 0..LANES {
                acc[ln] = F::fma(xb[ln], dmu, F::fma(-ob[ln], dhsq, acc[ln]));
            }
        }
        let ex = exp_lanes::<F>(acc);
        for ln in 0..LANES {
            new_e[i * LANES + ln] = e[ch.stage * LANES + ln] * ex[ln];
        }
    }
    *new_p = stage_sum(e, new_e, changes.len(), unchanged);
}

/// Per lane, the new stage sum of a proposal: the changed stages' `new_e[0..n_new]`
/// plus `e[k]` of every stage `k` in `unchanged`, re-summed in full so no
/// subtract-and-add drift builds up (two running sums each, so the additions do
/// not wait on one another).
#[inline(always)]
fn stage_sum(e: &[f64], new_e: &[f64], n_new: usize, unchanged: &[usize]) -> Lanes {
    let mut sums = [[0.0; LANES]; 4];
    for (i, v) in new_e[..n_new * LANES].chunks_exact(LANES).enumerate() {
        for ln in 0..LANES {
            sums[i % 2][ln] += v[ln];
        }
    }
    for (i, &k) in unchanged.iter().enumerate() {
        let v = &e[k * LANES..(k + 1) * LANES];
        for ln in 0..LANES {
            sums[2 + i % 2][ln] += v[ln];
        }
    }
    let mut out = [0.0; LANES];
    for ln in 0..LANES {
        out[ln] = (sums[0][ln] + sums[1][ln]) + (sums[2][ln] + sums[3][ln]);
    }
    out
}

/// Proposal of one group after a sequence move, without per-stage exponentials:
/// carries `G(k) = exp(sum_b T_b(k))` along the changed stages ([`Sweep`]) and
/// writes `new_e[i][lane] = e[k][lane] G(k)` for the `i`-th changed stage `k`, and
/// the new stage sum `new_p`.
#[inline(always)]
pub(super) fn group_sweep_body<F: MulAdd>(
    sweep: &Sweep,
    x: &[f64],
    obs: &[f64],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut Lanes,
) {
    #[inline(always)]
    fn lanes(v: &[f64], b: u32) -> Lanes {
        let b = b as usize;
        v[b * LANES..(b + 1) * LANES].try_into().unwrap()
    }
    // `exp(sum_terms x a - obs d)`.
    #[inline(always)]
    fn linear<F: MulAdd>(x: &[f64], obs: &[f64], terms: &[SweepTerm]) -> Lanes {
        let mut t = [0.0; LANES];
        for term in terms {
            let (xb, ob) = (lanes(x, term.b), lanes(obs, term.b));
            for l in 0..LANES {
                t[l] = F::fma(xb[l], term.a, F::fma(-ob[l], term.d, t[l]));
            }
        }
        exp_lanes::<F>(t)
    }
    let mut g = [1.0; LANES];
    let mut r = [1.0; LANES];
    let mut rho = [1.0; LANES];
    for op in sweep.ops {
        let terms = &sweep.terms[op.terms.0 as usize..op.terms.1 as usize];
        match op.kind {
            SweepKind::Begin => g = linear::<F>(x, obs, terms),
            SweepKind::Direct => {
                r = linear::<F>(x, obs, terms);
                for l in 0..LANES {
                    g[l] *= r[l];
                }
            }
            SweepKind::Linked | SweepKind::Repeat => {
                if op.kind == SweepKind::Linked {
                    rho = [1.0; LANES];
                    for term in terms {
                        let ob = lanes(obs, term.b);
                        for l in 0..LANES {
                            rho[l] *= F::fma(ob[l], term.a, 1.0);
                        }
                    }
                }
                for l in 0..LANES {
                    r[l] *= rho[l];
                    g[l] *= r[l];
                }
            }
        }
        if op.slot != u32::MAX {
            let (i, k) = (op.slot as usize, op.k as usize);
            let src: &Lanes = e[k * LANES..(k + 1) * LANES].try_into().unwrap();
            let dst: &mut Lanes = (&mut new_e[i * LANES..(i + 1) * LANES]).try_into().unwrap();
            for l in 0..LANES {
                dst[l] = src[l] * g[l];
            }
        }
    }
    *new_p = stage_sum(e, new_e, sweep.stages.len(), sweep.unchanged);
}
