//! Hand-written AVX2+FMA kernels for the hottest loops. Autovectorisation of the
//! generic lane-array code spilled the stage-tile accumulators and split the
//! exponential into 128-bit pieces; these keep 8 accumulators (4 stages x 2 halves of
//! a lane group) in registers and evaluate `exp`/`ln` four lanes at a time. The same
//! polynomials as the generic code, so results agree to rounding.

#![allow(clippy::needless_range_loop)]

use super::{
    GroupInput, StageInput, Sweep, SweepKind, SweepTerm, LANES, SCREEN_BLOCK, TOTAL_RANGE,
};
use std::arch::x86_64::*;

/// `exp(x)` for 4 lanes, `x <= 0` (below -700 clamps to about 1e-304).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn exp4(x: __m256d) -> __m256d {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    #[allow(clippy::excessive_precision)]
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let xc = _mm256_max_pd(x, _mm256_set1_pd(-700.0));
    let t = _mm256_fmadd_pd(xc, _mm256_set1_pd(LOG2E), _mm256_set1_pd(SHIFT));
    let n = _mm256_sub_pd(t, _mm256_set1_pd(SHIFT));
    let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_HI), xc);
    let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_LO), r);
    let c = |v: f64| _mm256_set1_pd(v);
    // exp(r) = 1 + r + r^2 q(r), q of degree 9 (`EXP_Q`) in Estrin's scheme: depth
    // 4, so the exponentials of neighbouring stages overlap in the pipeline, and
    // two multiply-adds fewer than the degree-12 Taylor polynomial this replaced.
    let q = super::EXP_Q;
    let r2 = _mm256_mul_pd(r, r);
    let r4 = _mm256_mul_pd(r2, r2);
    let p0 = _mm256_fmadd_pd(r, c(q[1]), c(q[0]));
    let p1 = _mm256_fmadd_pd(r, c(q[3]), c(q[2]));
    let p2 = _mm256_fmadd_pd(r, c(q[5]), c(q[4]));
    let p3 = _mm256_fmadd_pd(r, c(q[7]), c(q[6]));
    let p4 = _mm256_fmadd_pd(r, c(q[9]), c(q[8]));
    let s0 = _mm256_fmadd_pd(p1, r2, p0);
    let s1 = _mm256_fmadd_pd(p3, r2, p2);
    let u = _mm256_fmadd_pd(p4, r4, s1);
    let qr = _mm256_fmadd_pd(u, r4, s0);
    let p = _mm256_fmadd_pd(qr, r2, _mm256_add_pd(r, c(1.0)));
    // Times 2^n: add n to p's exponent field (p is within [0.7, 1.5] and
    // n >= -1010, so the result stays normal). An integer add instead of a
    // multiplication leaves the FMA units to the polynomial.
    let n_bits = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(c(SHIFT)));
    _mm256_castsi256_pd(_mm256_add_epi64(
        _mm256_castpd_si256(p),
        _mm256_slli_epi64::<52>(n_bits),
    ))
}

/// `exp(x)` for 4 lanes of either sign: [`exp4`] of `x` clamped to at most 700
/// (about 1e304, still finite), as the portable `exp_lanes` does. For values
/// relative to a subject's reference that a state may have outgrown (its groups
/// rebuilt, or updated additively, after moves that raised a stage far above the
/// reference): a sum that large fails the total's range check and the state is
/// rebuilt, where an unclamped `exp4` would wrap its exponent into a wrong finite
/// value.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn exp4_clamped(x: __m256d) -> __m256d {
    exp4(_mm256_min_pd(x, _mm256_set1_pd(700.0)))
}

/// `ln(x)` for 4 positive, finite, normal lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn ln4(x: __m256d) -> __m256d {
    let c = |v: f64| _mm256_set1_pd(v);
    let bits = _mm256_castpd_si256(x);
    // Exponent as a double via the 2^52 magic: (e_bits | 0x4330..) - 2^52 = e_bits.
    let e_bits = _mm256_srli_epi64::<52>(bits);
    let magic = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let e_raw = _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(e_bits, magic)),
        c(4_503_599_627_370_496.0),
    );
    let mant_bits = _mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi64x(0x000f_ffff_ffff_ffff)),
        _mm256_set1_epi64x(0x3ff0_0000_0000_0000),
    );
    let m = _mm256_castsi256_pd(mant_bits);
    let big = _mm256_cmp_pd::<_CMP_GE_OQ>(m, c(std::f64::consts::SQRT_2));
    let m = _mm256_blendv_pd(m, _mm256_mul_pd(m, c(0.5)), big);
    let e = _mm256_add_pd(_mm256_sub_pd(e_raw, c(1023.0)), _mm256_and_pd(big, c(1.0)));
    let s = _mm256_div_pd(_mm256_sub_pd(m, c(1.0)), _mm256_add_pd(m, c(1.0)));
    let s2 = _mm256_mul_pd(s, s);
    // sum_{i <= 10} s2^i / (2i + 1) in Estrin's scheme: depth 5 instead of
    // Horner's 10, so the logarithms of neighbouring subjects overlap.
    let s4 = _mm256_mul_pd(s2, s2);
    let s8 = _mm256_mul_pd(s4, s4);
    let s16 = _mm256_mul_pd(s8, s8);
    let q0 = _mm256_fmadd_pd(s2, c(1.0 / 3.0), c(1.0));
    let q1 = _mm256_fmadd_pd(s2, c(1.0 / 7.0), c(1.0 / 5.0));
    let q2 = _mm256_fmadd_pd(s2, c(1.0 / 11.0), c(1.0 / 9.0));
    let q3 = _mm256_fmadd_pd(s2, c(1.0 / 15.0), c(1.0 / 13.0));
    let q4 = _mm256_fmadd_pd(s2, c(1.0 / 19.0), c(1.0 / 17.0));
    let r0 = _mm256_fmadd_pd(q1, s4, q0);
    let r1 = _mm256_fmadd_pd(q3, s4, q2);
    let r2 = _mm256_fmadd_pd(c(1.0 / 21.0), s4, q4);
    let p = _mm256_fmadd_pd(r2, s16, _mm256_fmadd_pd(r1, s8, r0));
    _mm256_fmadd_pd(
        e,
        c(std::f64::consts::LN_2),
        _mm256_mul_pd(c(2.0), _mm256_mul_pd(s, p)),
    )
}

/// Stage part of the log-likelihood of one group into `out[k][lane]`
/// (`stride x LANES`, rows `>= n_stages` are scratch).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn stage_block(st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    let nb = st.n_biomarkers;
    let stride = st.stride;
    assert!(
        out.len() >= stride * LANES
            && st.mu.len() >= nb * stride
            && st.half_mu_sq.len() >= nb * stride
            && st.neg_half_sum_mu_sq.len() >= stride
            && g.x.len() >= nb * LANES
            && g.miss_mask.len() >= g.miss_cols.len() * LANES
            && g.miss_cols.iter().all(|&b| (b as usize) < nb)
            && stride.is_multiple_of(2)
    );
    // Six stages (12 accumulators) per tile: an FMA's latency is 4-5 cycles and
    // two issue per cycle, so fewer than ~10 independent accumulators leave the
    // FMA units waiting. The even remainder of the stride takes 4- or 2-stage tiles.
    let mut k0 = 0;
    while k0 + 6 <= stride {
        // SAFETY: k0 + 6 <= stride and the sizes were checked above.
        unsafe { stage_tile::<6, 12>(st, g, k0, out) };
        k0 += 6;
    }
    while k0 + 2 <= stride {
        // SAFETY: k0 + 2 <= stride and the sizes were checked above.
        unsafe { stage_tile::<2, 4>(st, g, k0, out) };
        k0 += 2;
    }
}

/// `T` stages from `k0` of [`stage_block`]; `A = 2 T` accumulators.
///
/// # Safety
/// `k0 + T <= st.stride`, and the slices hold what `stage_block` asserts.
#[inline(always)]
unsafe fn stage_tile<const T: usize, const A: usize>(
    st: &StageInput,
    g: &GroupInput,
    k0: usize,
    out: &mut [f64],
) {
    let stride = st.stride;
    let x = g.x.as_ptr();
    let o = out.as_mut_ptr();
    // SAFETY: b < nb, k0 + T <= stride; the caller checked every slice's size.
    unsafe {
        let mut acc = [_mm256_setzero_pd(); A];
        for b in 0..st.n_biomarkers {
            let xl = _mm256_loadu_pd(x.add(b * LANES));
            let xh = _mm256_loadu_pd(x.add(b * LANES + 4));
            let row = st.mu.as_ptr().add(b * stride + k0);
            for t in 0..T {
                let m = _mm256_broadcast_sd(&*row.add(t));
                acc[2 * t] = _mm256_fmadd_pd(xl, m, acc[2 * t]);
                acc[2 * t + 1] = _mm256_fmadd_pd(xh, m, acc[2 * t + 1]);
            }
        }
        // Missing values contribute nothing: add back the mu^2/2 that
        // `neg_half_sum_mu_sq` removed, one masked column per biomarker.
        for (i, &b) in g.miss_cols.iter().enumerate() {
            let ml = _mm256_loadu_pd(g.miss_mask.as_ptr().add(i * LANES));
            let mh = _mm256_loadu_pd(g.miss_mask.as_ptr().add(i * LANES + 4));
            let row = st.half_mu_sq.as_ptr().add(b as usize * stride + k0);
            for t in 0..T {
                let h = _mm256_broadcast_sd(&*row.add(t));
                acc[2 * t] = _mm256_fmadd_pd(ml, h, acc[2 * t]);
                acc[2 * t + 1] = _mm256_fmadd_pd(mh, h, acc[2 * t + 1]);
            }
        }
        for t in 0..T {
            let c = _mm256_broadcast_sd(&*st.neg_half_sum_mu_sq.as_ptr().add(k0 + t));
            _mm256_storeu_pd(o.add((k0 + t) * LANES), _mm256_add_pd(acc[2 * t], c));
            _mm256_storeu_pd(
                o.add((k0 + t) * LANES + 4),
                _mm256_add_pd(acc[2 * t + 1], c),
            );
        }
    }
}

/// Per-lane maximum of 4 lanes over `n_stages` rows of `LANES` from `p` (finite
/// values): four running maxima, so the comparisons do not wait on one another.
///
/// # Safety
/// `p` must point at `n_stages * LANES` readable values, `n_stages > 0`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_stages(p: *const f64, n_stages: usize) -> __m256d {
    // SAFETY: as the caller guarantees.
    unsafe {
        let first = _mm256_loadu_pd(p);
        let mut m = [first; 4];
        let mut k = 1;
        while k + 4 <= n_stages {
            for j in 0..4 {
                m[j] = _mm256_max_pd(m[j], _mm256_loadu_pd(p.add((k + j) * LANES)));
            }
            k += 4;
        }
        while k < n_stages {
            m[0] = _mm256_max_pd(m[0], _mm256_loadu_pd(p.add(k * LANES)));
            k += 1;
        }
        _mm256_max_pd(_mm256_max_pd(m[0], m[1]), _mm256_max_pd(m[2], m[3]))
    }
}

/// Per-lane `log sum_k exp(v[k][lane])` over the first `n_stages` rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lse_block(v: &[f64], n_stages: usize, out: &mut [f64]) {
    assert!(v.len() >= n_stages * LANES && out.len() >= LANES && n_stages > 0);
    let p = v.as_ptr();
    // SAFETY: every index is below n_stages * LANES, checked above.
    unsafe {
        let max_l = max_stages(p, n_stages);
        let max_h = max_stages(p.add(4), n_stages);
        // Two stages per step: four independent exponentials in flight.
        let mut sum = [_mm256_setzero_pd(); 4];
        let mut k = 0;
        while k + 2 <= n_stages {
            for (j, max) in [max_l, max_h, max_l, max_h].into_iter().enumerate() {
                let v = _mm256_loadu_pd(p.add(k * LANES + 4 * j));
                sum[j] = _mm256_add_pd(sum[j], exp4(_mm256_sub_pd(v, max)));
            }
            k += 2;
        }
        if k < n_stages {
            for (j, max) in [max_l, max_h].into_iter().enumerate() {
                let v = _mm256_loadu_pd(p.add(k * LANES + 4 * j));
                sum[j] = _mm256_add_pd(sum[j], exp4(_mm256_sub_pd(v, max)));
            }
        }
        let sum_l = _mm256_add_pd(sum[0], sum[2]);
        let sum_h = _mm256_add_pd(sum[1], sum[3]);
        _mm256_storeu_pd(out.as_mut_ptr(), _mm256_add_pd(max_l, ln4(sum_l)));
        _mm256_storeu_pd(out.as_mut_ptr().add(4), _mm256_add_pd(max_h, ln4(sum_h)));
    }
}

/// AVX2 version of `kernels::subtype_lse`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn subtype_lse(
    st: &StageInput,
    groups: &[GroupInput],
    scratch: &mut [f64],
    lse: &mut [f64],
) {
    for (gi, g) in groups.iter().enumerate() {
        stage_block(st, g, scratch);
        lse_block(scratch, st.n_stages, &mut lse[gi * LANES..(gi + 1) * LANES]);
    }
}

/// AVX2 version of `kernels::stage_values`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn stage_values(st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    stage_block(st, g, out)
}

/// AVX2 version of `kernels::group_state`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `l` holds `stride x LANES` and `e`
/// `n_stages x LANES` values.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn group_state(
    st: &StageInput,
    g: &GroupInput,
    reference: &[f64; LANES],
    l: &mut [f64],
    e: &mut [f64],
    p: &mut [f64; LANES],
) {
    stage_block(st, g, l);
    assert!(e.len() >= st.n_stages * LANES);
    // SAFETY: every index is below n_stages * LANES (checked above; stage_block
    // checked l).
    unsafe {
        let (rl, rh) = (
            _mm256_loadu_pd(reference.as_ptr()),
            _mm256_loadu_pd(reference.as_ptr().add(4)),
        );
        let mut sl = _mm256_setzero_pd();
        let mut sh = _mm256_setzero_pd();
        for k in 0..st.n_stages {
            let lo = exp4_clamped(_mm256_sub_pd(
                _mm256_loadu_pd(l.as_ptr().add(k * LANES)),
                rl,
            ));
            let hi = exp4_clamped(_mm256_sub_pd(
                _mm256_loadu_pd(l.as_ptr().add(k * LANES + 4)),
                rh,
            ));
            _mm256_storeu_pd(e.as_mut_ptr().add(k * LANES), lo);
            _mm256_storeu_pd(e.as_mut_ptr().add(k * LANES + 4), hi);
            sl = _mm256_add_pd(sl, lo);
            sh = _mm256_add_pd(sh, hi);
        }
        _mm256_storeu_pd(p.as_mut_ptr(), sl);
        _mm256_storeu_pd(p.as_mut_ptr().add(4), sh);
    }
}

/// AVX2 version of `kernels::mixture`: per subject
/// `log sum_s exp(log_f[s] + lse[s][m])`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mixture(log_f: &[f64], lse: &[&[f64]], out: &mut [f64]) {
    let n = out.len() / 4;
    for part in lse {
        assert!(part.len() >= n * 4);
    }
    assert!(log_f.len() >= lse.len());
    for i in 0..n {
        // SAFETY: every part holds at least n * 4 values (checked above).
        unsafe {
            let mut max = _mm256_set1_pd(f64::NEG_INFINITY);
            for (s, part) in lse.iter().enumerate() {
                let v = _mm256_add_pd(
                    _mm256_loadu_pd(part.as_ptr().add(4 * i)),
                    _mm256_set1_pd(log_f[s]),
                );
                max = _mm256_max_pd(max, v);
            }
            let mut sum = _mm256_setzero_pd();
            for (s, part) in lse.iter().enumerate() {
                let v = _mm256_add_pd(
                    _mm256_loadu_pd(part.as_ptr().add(4 * i)),
                    _mm256_set1_pd(log_f[s]),
                );
                // log f = -inf (an empty subtype): clamp so exp gives ~0, never NaN.
                let d = _mm256_max_pd(_mm256_sub_pd(v, max), _mm256_set1_pd(-745.0));
                sum = _mm256_add_pd(sum, exp4(d));
            }
            _mm256_storeu_pd(out.as_mut_ptr().add(4 * i), _mm256_add_pd(max, ln4(sum)));
        }
    }
}

/// Writes into `new_p` the per-lane new stage sum of a proposal: the changed
/// stages' `new_e[0..n_new]` plus `e[k]` of every stage `k` in `unchanged`,
/// re-summed in full so no subtract-and-add drift builds up (two running sums per
/// half, so the additions do not wait on one another; the same order as
/// `kernels::stage_sum`).
///
/// # Safety
/// `new_e` must hold `n_new * LANES` values and `e` every stage in `unchanged`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn stage_sum(
    e: &[f64],
    new_e: &[f64],
    n_new: usize,
    unchanged: &[usize],
    new_p: &mut [f64; LANES],
) {
    let z = _mm256_setzero_pd();
    // [even stages lo, hi, odd stages lo, hi] of the new values; the others are
    // summed by `sum_stages`.
    let (mut n0l, mut n0h, mut n1l, mut n1h) = (z, z, z, z);
    // SAFETY: the caller guarantees the sizes.
    unsafe {
        let np = new_e.as_ptr();
        let mut i = 0;
        while i + 2 <= n_new {
            let (a, b) = (np.add(i * LANES), np.add((i + 1) * LANES));
            let (al, ah, bl, bh) = (
                _mm256_loadu_pd(a),
                _mm256_loadu_pd(a.add(4)),
                _mm256_loadu_pd(b),
                _mm256_loadu_pd(b.add(4)),
            );
            (n0l, n0h) = (_mm256_add_pd(n0l, al), _mm256_add_pd(n0h, ah));
            (n1l, n1h) = (_mm256_add_pd(n1l, bl), _mm256_add_pd(n1h, bh));
            i += 2;
        }
        if i < n_new {
            let a = np.add(i * LANES);
            let (al, ah) = (_mm256_loadu_pd(a), _mm256_loadu_pd(a.add(4)));
            (n0l, n0h) = (_mm256_add_pd(n0l, al), _mm256_add_pd(n0h, ah));
        }
        let (ul, uh) = sum_stages(e, unchanged);
        let lo = _mm256_add_pd(_mm256_add_pd(n0l, n1l), ul);
        let hi = _mm256_add_pd(_mm256_add_pd(n0h, n1h), uh);
        _mm256_storeu_pd(new_p.as_mut_ptr(), lo);
        _mm256_storeu_pd(new_p.as_mut_ptr().add(4), hi);
    }
}

/// AVX2 version of `kernels::group_delta` (see there).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn group_delta(
    x: &[f64],
    obs: &[f64],
    changes: &[super::StageDelta],
    unchanged: &[usize],
    reference: &[f64; LANES],
    l: &[f64],
    e: &[f64],
    new_l: &mut [f64],
    new_e: &mut [f64],
    new_p: &mut [f64; LANES],
) {
    let n_stages = l.len() / LANES;
    assert!(
        e.len() >= n_stages * LANES
            && new_l.len() >= changes.len() * LANES
            && new_e.len() >= changes.len() * LANES
    );
    // SAFETY: indices are bounded by the asserts above, by `stage < n_stages` and
    // by `b < n_biomarkers` (x and obs hold n_biomarkers * LANES values).
    unsafe {
        let ref_l = _mm256_loadu_pd(reference.as_ptr());
        let ref_h = _mm256_loadu_pd(reference.as_ptr().add(4));
        for (i, ch) in changes.iter().enumerate() {
            let k = ch.stage;
            assert!(k < n_stages);
            for &(b, ..) in ch.deltas {
                assert!((b + 1) * LANES <= x.len() && (b + 1) * LANES <= obs.len());
            }
            let (al, ah) = add_deltas(
                ch.deltas.iter().copied(),
                x,
                obs,
                _mm256_loadu_pd(l.as_ptr().add(k * LANES)),
                _mm256_loadu_pd(l.as_ptr().add(k * LANES + 4)),
            );
            _mm256_storeu_pd(new_l.as_mut_ptr().add(i * LANES), al);
            _mm256_storeu_pd(new_l.as_mut_ptr().add(i * LANES + 4), ah);
        }
        // The exponentials in a second pass, two stages (four vectors) per step:
        // independent work for the pipeline instead of one stage's short chains.
        let n = changes.len() * LANES;
        let (lp, ep) = (new_l.as_ptr(), new_e.as_mut_ptr());
        let mut i = 0;
        while i + 2 * LANES <= n {
            for (j, r) in [ref_l, ref_h, ref_l, ref_h].into_iter().enumerate() {
                let v = _mm256_loadu_pd(lp.add(i + 4 * j));
                _mm256_storeu_pd(ep.add(i + 4 * j), exp4_clamped(_mm256_sub_pd(v, r)));
            }
            i += 2 * LANES;
        }
        if i < n {
            for (j, r) in [ref_l, ref_h].into_iter().enumerate() {
                let v = _mm256_loadu_pd(lp.add(i + 4 * j));
                _mm256_storeu_pd(ep.add(i + 4 * j), exp4_clamped(_mm256_sub_pd(v, r)));
            }
        }
        stage_sum(e, new_e, changes.len(), unchanged, new_p);
    }
}

/// Adds `sum_b (x_b dmu - obs_b dh)` over `(b, dmu, dh)` terms (one stage's
/// changed biomarkers, or a sweep step's) to `(lo, hi)`, a group's 8 lanes.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and every `(b + 1) * LANES` must be within
/// `x` and `obs`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_deltas(
    deltas: impl IntoIterator<Item = (usize, f64, f64)>,
    x: &[f64],
    obs: &[f64],
    mut al: __m256d,
    mut ah: __m256d,
) -> (__m256d, __m256d) {
    // The `obs dh` parts in their own sums: two short chains of dependent FMAs
    // instead of one long one.
    let (mut bl, mut bh) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for (b, dmu, dhsq) in deltas {
        let dm = _mm256_set1_pd(dmu);
        let dh = _mm256_set1_pd(dhsq);
        // SAFETY: the caller checked that biomarker b's lanes are in x and obs.
        unsafe {
            bl = _mm256_fnmadd_pd(_mm256_loadu_pd(obs.as_ptr().add(b * LANES)), dh, bl);
            bh = _mm256_fnmadd_pd(_mm256_loadu_pd(obs.as_ptr().add(b * LANES + 4)), dh, bh);
            al = _mm256_fmadd_pd(_mm256_loadu_pd(x.as_ptr().add(b * LANES)), dm, al);
            ah = _mm256_fmadd_pd(_mm256_loadu_pd(x.as_ptr().add(b * LANES + 4)), dm, ah);
        }
    }
    (_mm256_add_pd(al, bl), _mm256_add_pd(ah, bh))
}

/// AVX2 version of `kernels::group_factors` (see there).
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the sizes must be those
/// `kernels::group_factors` asserts.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn group_factors(
    x: &[f64],
    obs: &[f64],
    changes: &[super::StageDelta],
    unchanged: &[usize],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut [f64; LANES],
) {
    let (mut sl, mut sh) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    // SAFETY: the caller checked every stage, biomarker and size used below.
    unsafe {
        let ne = new_e.as_mut_ptr();
        for (i, ch) in changes.iter().enumerate() {
            let (al, ah) = add_deltas(
                ch.deltas.iter().copied(),
                x,
                obs,
                _mm256_setzero_pd(),
                _mm256_setzero_pd(),
            );
            let q = e.as_ptr().add(ch.stage * LANES);
            let lo = _mm256_mul_pd(_mm256_loadu_pd(q), exp4(al));
            let hi = _mm256_mul_pd(_mm256_loadu_pd(q.add(4)), exp4(ah));
            _mm256_storeu_pd(ne.add(i * LANES), lo);
            _mm256_storeu_pd(ne.add(i * LANES + 4), hi);
            // Sums as the values are made (as in `group_sweep`).
            (sl, sh) = (_mm256_add_pd(sl, lo), _mm256_add_pd(sh, hi));
        }
        let (ul, uh) = sum_stages(e, unchanged);
        _mm256_storeu_pd(new_p.as_mut_ptr(), _mm256_add_pd(sl, ul));
        _mm256_storeu_pd(new_p.as_mut_ptr().add(4), _mm256_add_pd(sh, uh));
    }
}

/// `x a - obs d` summed over `terms`, 4 + 4 lanes.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and every `(b + 1) * LANES` must be within
/// `x` and `obs`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sweep_terms(terms: &[SweepTerm], x: &[f64], obs: &[f64]) -> (__m256d, __m256d) {
    let z = _mm256_setzero_pd();
    // SAFETY: as the caller guarantees.
    unsafe { add_deltas(terms.iter().map(|t| (t.b as usize, t.a, t.d)), x, obs, z, z) }
}

/// AVX2 version of `kernels::group_sweeps`.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the sizes must be those
/// `kernels::group_sweeps` asserts.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn group_sweeps(
    sweep: &Sweep,
    x: &[f64],
    obs: &[f64],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut [f64],
    groups: std::ops::Range<usize>,
) {
    let (nb, ns, nc) = (sweep.n_biomarkers(), sweep.n_stages(), sweep.n_changed());
    for g in groups {
        // SAFETY: the caller checked the arrays for every group in `groups`.
        unsafe {
            group_sweep(
                sweep,
                x.get_unchecked(g * nb * LANES..(g + 1) * nb * LANES),
                obs.get_unchecked(g * nb * LANES..(g + 1) * nb * LANES),
                e.get_unchecked(g * ns * LANES..(g + 1) * ns * LANES),
                new_e.get_unchecked_mut(g * nc * LANES..(g + 1) * nc * LANES),
                &mut *(new_p.as_mut_ptr().add(g * LANES) as *mut [f64; LANES]),
            )
        }
    }
}

/// One group of [`group_sweeps`] (see `group_sweep_body` in `kernels`).
///
/// # Safety
/// As [`group_sweeps`], for this group's slices.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_sweep(
    sweep: &Sweep,
    x: &[f64],
    obs: &[f64],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut [f64; LANES],
) {
    let one = _mm256_set1_pd(1.0);
    let (mut gl, mut gh) = (one, one);
    let (mut rl, mut rh) = (one, one);
    let (mut pl, mut ph) = (one, one);
    let (mut sl, mut sh) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    // SAFETY: `sweep` was checked when built (stages, slots, term biomarkers) and
    // the caller checked the group's slices (x, obs, e, new_e).
    unsafe {
        let ne = new_e.as_mut_ptr();
        for op in sweep.ops() {
            let terms = sweep
                .terms()
                .get_unchecked(op.terms.0 as usize..op.terms.1 as usize);
            match op.kind {
                SweepKind::Begin => {
                    let (tl, th) = sweep_terms(terms, x, obs);
                    (gl, gh) = (exp4(tl), exp4(th));
                }
                SweepKind::Direct => {
                    let (tl, th) = sweep_terms(terms, x, obs);
                    (rl, rh) = (exp4(tl), exp4(th));
                    gl = _mm256_mul_pd(gl, rl);
                    gh = _mm256_mul_pd(gh, rh);
                }
                SweepKind::Linked => {
                    (pl, ph) = (one, one);
                    for t in terms {
                        let (c, b) = (_mm256_set1_pd(t.a), t.b as usize);
                        let ol = _mm256_loadu_pd(obs.as_ptr().add(b * LANES));
                        let oh = _mm256_loadu_pd(obs.as_ptr().add(b * LANES + 4));
                        pl = _mm256_mul_pd(pl, _mm256_fmadd_pd(ol, c, one));
                        ph = _mm256_mul_pd(ph, _mm256_fmadd_pd(oh, c, one));
                    }
                    rl = _mm256_mul_pd(rl, pl);
                    rh = _mm256_mul_pd(rh, ph);
                    gl = _mm256_mul_pd(gl, rl);
                    gh = _mm256_mul_pd(gh, rh);
                }
                SweepKind::Repeat => {
                    rl = _mm256_mul_pd(rl, pl);
                    rh = _mm256_mul_pd(rh, ph);
                    gl = _mm256_mul_pd(gl, rl);
                    gh = _mm256_mul_pd(gh, rh);
                }
            }
            if op.slot != u32::MAX {
                let p = ne.add(op.slot as usize * LANES);
                let q = e.as_ptr().add(op.k as usize * LANES);
                let (vl, vh) = (
                    _mm256_mul_pd(_mm256_loadu_pd(q), gl),
                    _mm256_mul_pd(_mm256_loadu_pd(q.add(4)), gh),
                );
                _mm256_storeu_pd(p, vl);
                _mm256_storeu_pd(p.add(4), vh);
                // The new stage sums as the values are made, instead of reading
                // them back afterwards. (Whether a value fell below the fragile
                // floor is checked when a proposal is accepted, not here: most are
                // rejected.)
                (sl, sh) = (_mm256_add_pd(sl, vl), _mm256_add_pd(sh, vh));
            }
        }
        let (ul, uh) = sum_stages(e, sweep.unchanged());
        _mm256_storeu_pd(new_p.as_mut_ptr(), _mm256_add_pd(sl, ul));
        _mm256_storeu_pd(new_p.as_mut_ptr().add(4), _mm256_add_pd(sh, uh));
    }
}

/// Per-lane sums `(lo, hi)` of `e[k]` over the stages `k` in `stages` (two running
/// sums per half, so the additions do not wait on one another).
///
/// # Safety
/// `e` must hold every stage in `stages`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum_stages(e: &[f64], stages: &[usize]) -> (__m256d, __m256d) {
    let z = _mm256_setzero_pd();
    let (mut u0l, mut u0h, mut u1l, mut u1h) = (z, z, z, z);
    let ep = e.as_ptr();
    // SAFETY: the caller guarantees the sizes.
    unsafe {
        let mut pairs = stages.chunks_exact(2);
        for pair in pairs.by_ref() {
            let (a, b) = (ep.add(pair[0] * LANES), ep.add(pair[1] * LANES));
            u0l = _mm256_add_pd(u0l, _mm256_loadu_pd(a));
            u0h = _mm256_add_pd(u0h, _mm256_loadu_pd(a.add(4)));
            u1l = _mm256_add_pd(u1l, _mm256_loadu_pd(b));
            u1h = _mm256_add_pd(u1h, _mm256_loadu_pd(b.add(4)));
        }
        if let [k] = pairs.remainder() {
            let a = ep.add(k * LANES);
            u0l = _mm256_add_pd(u0l, _mm256_loadu_pd(a));
            u0h = _mm256_add_pd(u0h, _mm256_loadu_pd(a.add(4)));
        }
    }
    (_mm256_add_pd(u0l, u1l), _mm256_add_pd(u0h, u1h))
}

/// AVX2 version of `kernels::scatter_stages`.
///
/// # Safety
/// The CPU must support AVX2; `from` must hold `stages.len() * LANES` values and
/// every stage must lie in `to`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn scatter_stages(
    to: &mut [f64],
    from: &[f64],
    stages: &[usize],
    floor: f64,
) -> bool {
    let f = _mm256_set1_pd(floor);
    let mut low = _mm256_setzero_pd();
    // SAFETY: as the caller guarantees.
    unsafe {
        for (i, &k) in stages.iter().enumerate() {
            let (src, dst) = (from.as_ptr().add(i * LANES), to.as_mut_ptr().add(k * LANES));
            let (a, b) = (_mm256_loadu_pd(src), _mm256_loadu_pd(src.add(4)));
            _mm256_storeu_pd(dst, a);
            _mm256_storeu_pd(dst.add(4), b);
            // `!(v >= floor)`: below the floor, or NaN.
            low = _mm256_or_pd(
                low,
                _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_NGE_UQ>(a, f),
                    _mm256_cmp_pd::<_CMP_NGE_UQ>(b, f),
                ),
            );
        }
    }
    _mm256_movemask_pd(low) != 0
}

/// AVX2 version of `kernels::mixture_total` (the same operations in the same
/// order, lane `j` of a block holding its subjects `4 i + j`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mixture_total(
    f: &[f64],
    p: &[&[f64]],
    offsets: &[[f64; 8]],
    n: usize,
    blocks: &mut Vec<f64>,
) -> bool {
    use super::TOTAL_BLOCK;
    let padded = n.div_ceil(LANES) * LANES;
    assert!(
        offsets.len() == padded.div_ceil(TOTAL_BLOCK)
            && p.iter().all(|ps| ps.len() >= padded)
            && f.len() >= p.len()
    );
    let c = |v: f64| _mm256_set1_pd(v);
    let (low, high) = (c((-TOTAL_RANGE).exp()), c(TOTAL_RANGE.exp()));
    let mantissa = _mm256_set1_epi64x(0x000f_ffff_ffff_ffff);
    let one_bits = _mm256_set1_epi64x(0x3ff0_0000_0000_0000);
    let mut ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    // Lane indices of the current 4 subjects, as doubles (exact below 2^53).
    let mut idx = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
    let n_f = c(n as f64);
    let mut start = 0;
    while start < padded {
        let end = (start + TOTAL_BLOCK).min(padded);
        let mut prod = c(1.0);
        let mut expo = _mm256_setzero_si256();
        let mut i = start;
        while i < end {
            // SAFETY: i + 4 <= padded, and every slice holds `padded` values (asserted).
            unsafe {
                let mut s = _mm256_setzero_pd();
                for (fs, ps) in f.iter().zip(p) {
                    s = _mm256_fmadd_pd(c(*fs), _mm256_loadu_pd(ps.as_ptr().add(i)), s);
                }
                // Lanes past the last subject are padding: they count as 1 and pass
                // the check.
                let valid = _mm256_cmp_pd::<_CMP_LT_OQ>(idx, n_f);
                idx = _mm256_add_pd(idx, c(4.0));
                let inside = _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_GT_OQ>(s, low),
                    _mm256_cmp_pd::<_CMP_LT_OQ>(s, high),
                );
                // ok &= inside | !valid
                ok = _mm256_and_pd(ok, _mm256_or_pd(inside, _mm256_andnot_pd(valid, ok)));
                let s = _mm256_blendv_pd(c(1.0), s, _mm256_and_pd(valid, inside));
                let bits = _mm256_castpd_si256(s);
                expo = _mm256_add_epi64(expo, _mm256_srli_epi64::<52>(bits));
                prod = _mm256_mul_pd(
                    prod,
                    _mm256_castsi256_pd(_mm256_or_si256(
                        _mm256_and_si256(bits, mantissa),
                        one_bits,
                    )),
                );
            }
            i += 4;
        }
        let (mut e, mut lp) = ([0i64; 4], [0.0; 4]);
        // SAFETY: each array holds 4 values.
        unsafe {
            _mm256_storeu_si256(e.as_mut_ptr().cast(), expo);
            _mm256_storeu_pd(lp.as_mut_ptr(), ln4(prod));
        }
        blocks.push(super::block_total(
            e,
            lp,
            (end - start) / 4,
            &offsets[start / TOTAL_BLOCK],
        ));
        start = end;
    }
    _mm256_movemask_pd(ok) == 0b1111
}

/// AVX2 version of `kernels::stage_exp`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn stage_exp(l: &mut [f64], n_stages: usize, r: &mut [f64; LANES]) {
    assert!(l.len() >= n_stages * LANES && n_stages > 0);
    let p = l.as_mut_ptr();
    // SAFETY: every index is below n_stages * LANES (checked above).
    unsafe {
        let mut max = [_mm256_set1_pd(f64::NEG_INFINITY); 2];
        for k in 0..n_stages {
            for (h, m) in max.iter_mut().enumerate() {
                let v = _mm256_loadu_pd(p.add(k * LANES + 4 * h));
                // `v > max ? v : max`, as the generic code.
                *m = _mm256_blendv_pd(*m, v, _mm256_cmp_pd::<_CMP_GT_OQ>(v, *m));
            }
        }
        let floor = _mm256_set1_pd(-700.0);
        for k in 0..n_stages {
            for (h, m) in max.iter().enumerate() {
                let at = p.add(k * LANES + 4 * h);
                let d = _mm256_sub_pd(_mm256_loadu_pd(at), *m);
                let keep = _mm256_cmp_pd::<_CMP_GE_OQ>(d, floor);
                _mm256_storeu_pd(at, _mm256_and_pd(exp4(d), keep));
            }
        }
        _mm256_storeu_pd(r.as_mut_ptr(), max[0]);
        _mm256_storeu_pd(r.as_mut_ptr().add(4), max[1]);
    }
}

/// AVX2 version of `kernels::posterior_group` (same operations in the same order;
/// the exponential's polynomial is evaluated in Estrin's scheme, so results agree
/// to rounding).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn posterior_group(
    log_f: &[f64],
    blocks: &[&[f64]],
    refs: &[&[f64; LANES]],
    n_stages: usize,
    tmp: &mut [f64],
    acc: &mut [f64],
) {
    let size = super::check_posterior_shapes(log_f, blocks, refs, n_stages, tmp, acc);
    // SAFETY: every index is below n_stages * LANES in a block and below `size` in
    // `tmp` and `acc` (checked above); a reference holds LANES values.
    unsafe {
        let mut max = [_mm256_set1_pd(f64::NEG_INFINITY); 2];
        for (lf, r) in log_f.iter().zip(refs) {
            let lf = _mm256_set1_pd(*lf);
            for (h, m) in max.iter_mut().enumerate() {
                let v = _mm256_add_pd(lf, _mm256_loadu_pd(r.as_ptr().add(4 * h)));
                *m = _mm256_blendv_pd(*m, v, _mm256_cmp_pd::<_CMP_GT_OQ>(v, *m));
            }
        }
        let floor = _mm256_set1_pd(-700.0);
        let mut total = [_mm256_setzero_pd(); 2];
        for (s, ((lf, r), b)) in log_f.iter().zip(refs).zip(blocks).enumerate() {
            let lf = _mm256_set1_pd(*lf);
            let mut w = [_mm256_setzero_pd(); 2];
            for h in 0..2 {
                let v = _mm256_add_pd(lf, _mm256_loadu_pd(r.as_ptr().add(4 * h)));
                let d = _mm256_sub_pd(v, max[h]);
                // `!(d >= -700)` (NaN too) gives an exact 0.
                let keep = _mm256_cmp_pd::<_CMP_GE_OQ>(d, floor);
                w[h] = _mm256_and_pd(exp4(d), keep);
            }
            let o = tmp.as_mut_ptr().add(s * n_stages * LANES);
            for k in 0..n_stages {
                for h in 0..2 {
                    let at = k * LANES + 4 * h;
                    let t = _mm256_mul_pd(w[h], _mm256_loadu_pd(b.as_ptr().add(at)));
                    _mm256_storeu_pd(o.add(at), t);
                    total[h] = _mm256_add_pd(total[h], t);
                }
            }
        }
        let one = _mm256_set1_pd(1.0);
        let inv = [_mm256_div_pd(one, total[0]), _mm256_div_pd(one, total[1])];
        for i in 0..size / 4 {
            let t = _mm256_loadu_pd(tmp.as_ptr().add(4 * i));
            let a = acc.as_mut_ptr().add(4 * i);
            _mm256_storeu_pd(a, _mm256_fmadd_pd(t, inv[i % 2], _mm256_loadu_pd(a)));
        }
    }
}

/// AVX2 version of `kernels::mixture_direct`: per group, `r = sum_b x_b^2 / 2`
/// (at or above every stage value), per subtype the stage sums `S_s = sum_k
/// exp(l_s[k] - r)` (two running sums, even and odd stages, added at the end),
/// `p = sum_s f_s S_s` (multiply-adds in subtype order) and `r + ln p`; a group
/// where some lane's `p` is not in `(MIXTURE_FLOOR, inf)` takes the maximum-based
/// path (`subtype_lse` and `mixture`) instead.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the shapes are those
/// `kernels::mixture_direct` checks.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mixture_direct(
    sts: &[StageInput],
    groups: &[GroupInput],
    f: &[f64],
    log_f: &[f64],
    scratch: &mut [f64],
    out: &mut [f64],
) {
    let ns = sts.len();
    let mut lse = vec![0.0; ns * LANES];
    let floor = _mm256_set1_pd(super::MIXTURE_FLOOR);
    let inf = _mm256_set1_pd(f64::INFINITY);
    for (gi, g) in groups.iter().enumerate() {
        let nb = sts[0].n_biomarkers;
        // SAFETY: the caller checked x (nb * LANES values per group), out, and the
        // stage blocks (stage_block checks its own).
        unsafe {
            let (mut ql, mut qh) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for b in 0..nb {
                let xl = _mm256_loadu_pd(g.x.as_ptr().add(b * LANES));
                let xh = _mm256_loadu_pd(g.x.as_ptr().add(b * LANES + 4));
                ql = _mm256_fmadd_pd(xl, xl, ql);
                qh = _mm256_fmadd_pd(xh, xh, qh);
            }
            let half = _mm256_set1_pd(0.5);
            let (rl, rh) = (_mm256_mul_pd(ql, half), _mm256_mul_pd(qh, half));
            let (mut pl, mut ph) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for (st, fs) in sts.iter().zip(f) {
                stage_block(st, g, scratch);
                let sp = scratch.as_ptr();
                let z = _mm256_setzero_pd();
                let (mut el, mut eh, mut ol, mut oh) = (z, z, z, z);
                let e = |k: usize, h: usize, r: __m256d| {
                    exp4(_mm256_sub_pd(_mm256_loadu_pd(sp.add(k * LANES + 4 * h)), r))
                };
                // Two stages per step: four exponentials in flight.
                let mut k = 0;
                while k + 2 <= st.n_stages {
                    let (a, b, c, d) = (e(k, 0, rl), e(k, 1, rh), e(k + 1, 0, rl), e(k + 1, 1, rh));
                    (el, eh) = (_mm256_add_pd(el, a), _mm256_add_pd(eh, b));
                    (ol, oh) = (_mm256_add_pd(ol, c), _mm256_add_pd(oh, d));
                    k += 2;
                }
                if k < st.n_stages {
                    (el, eh) = (
                        _mm256_add_pd(el, e(k, 0, rl)),
                        _mm256_add_pd(eh, e(k, 1, rh)),
                    );
                }
                let fv = _mm256_set1_pd(*fs);
                pl = _mm256_fmadd_pd(fv, _mm256_add_pd(el, ol), pl);
                ph = _mm256_fmadd_pd(fv, _mm256_add_pd(eh, oh), ph);
            }
            let fine = _mm256_and_pd(
                _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_GT_OQ>(pl, floor),
                    _mm256_cmp_pd::<_CMP_LT_OQ>(pl, inf),
                ),
                _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_GT_OQ>(ph, floor),
                    _mm256_cmp_pd::<_CMP_LT_OQ>(ph, inf),
                ),
            );
            let o = out.as_mut_ptr().add(gi * LANES);
            if _mm256_movemask_pd(fine) == 0b1111 {
                _mm256_storeu_pd(o, _mm256_add_pd(rl, ln4(pl)));
                _mm256_storeu_pd(o.add(4), _mm256_add_pd(rh, ln4(ph)));
            } else {
                for (s, st) in sts.iter().enumerate() {
                    stage_block(st, g, scratch);
                    lse_block(scratch, st.n_stages, &mut lse[s * LANES..(s + 1) * LANES]);
                }
                let parts: Vec<&[f64]> = lse.chunks(LANES).collect();
                mixture(log_f, &parts, &mut out[gi * LANES..(gi + 1) * LANES]);
            }
        }
    }
}

/// `exp(x)` for 8 single-precision lanes, `x <= 0` (below -80 clamps to about
/// 1.8e-35): degree-5 Taylor polynomial on `|r| <= ln2/2`, truncation below
/// 3.5e-6 relative (58 units of f32 rounding; E-M screening counts 64 and needs
/// no more: its error bound is dominated by the stage sums).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn exp8f(x: __m256) -> __m256 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^15.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23: rounds to integer
    let c = |v: f32| _mm256_set1_ps(v);
    let x = _mm256_max_ps(x, c(-80.0));
    let t = _mm256_fmadd_ps(x, c(LOG2E), c(SHIFT));
    let n = _mm256_sub_ps(t, c(SHIFT));
    let r = _mm256_fnmadd_ps(n, c(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, c(LN2_LO), r);
    let mut p = c(1.0 / 120.0);
    for k in [24.0f32, 6.0, 2.0, 1.0, 1.0] {
        p = _mm256_fmadd_ps(p, r, c(1.0 / k));
    }
    // Times 2^n (n >= -116, so the result stays normal): add n to the exponent.
    let n_bits = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(c(SHIFT)));
    _mm256_castsi256_ps(_mm256_add_epi32(
        _mm256_castps_si256(p),
        _mm256_slli_epi32::<23>(n_bits),
    ))
}

/// `v[i] = ln(v[i]) + add[i]` in place; zeros give `-inf` (and subnormals the
/// standard library's value: those groups of four are done one by one).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn ln_plus(v: &mut [f64], add: &[f64]) {
    assert!(add.len() >= v.len());
    let mut chunks = v.chunks_exact_mut(4);
    let mut i = 0;
    for c in &mut chunks {
        if c.iter().all(|x| x.is_normal() && *x > 0.0) {
            // SAFETY: c holds 4 values and add at least i + 4 (checked above).
            unsafe {
                let r = _mm256_add_pd(
                    ln4(_mm256_loadu_pd(c.as_ptr())),
                    _mm256_loadu_pd(add.as_ptr().add(i)),
                );
                _mm256_storeu_pd(c.as_mut_ptr(), r);
            }
        } else {
            for (j, x) in c.iter_mut().enumerate() {
                *x = x.ln() + add[i + j];
            }
        }
        i += 4;
    }
    for (j, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = x.ln() + add[i + j];
    }
}

/// E-M screening of one candidate (`crate::screen`): for every subject, in lanes
/// of 8, `L[k] = -0.5 sum_b (x_b - obs_b mu[b][k])^2` in f32 (`x` is 0 where `obs`
/// is), its log-sum-exp over the first `n_stages` stages, then in f64 the subject's
/// `ln(exp(a) + exp(ln_f + lse + h))` (`a`: the other subtypes' part, `-inf` for
/// none; `h`: what the centred form leaves out); returns the sum over the first
/// `n_subjects` subjects (NaN if a term is not finite). `x`, `obs`: `[g][b][lane]`;
/// `mu`: `[b][k]` with rows of `stride` (a multiple of [`SCREEN_BLOCK`], at least
/// `n_stages`); `a`, `h`: per padded subject; `buf`: `stride * LANES` scratch.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn screen_candidate(
    x: &[f32],
    obs: &[f32],
    mu: &[f32],
    stride: usize,
    n_stages: usize,
    buf: &mut [f32],
    a: &[f64],
    h: &[f64],
    ln_f: f64,
    n_subjects: usize,
) -> f64 {
    assert!(stride.is_multiple_of(SCREEN_BLOCK) && n_stages > 0 && n_stages <= stride);
    let nb = mu.len() / stride;
    let ng = n_subjects.div_ceil(LANES);
    assert!(x.len() >= ng * nb * LANES && obs.len() >= ng * nb * LANES);
    assert!(buf.len() >= stride * LANES && a.len() >= ng * LANES && h.len() >= ng * LANES);
    let one = _mm256_set1_pd(1.0);
    let sign = _mm256_set1_pd(-0.0);
    let zero = _mm256_setzero_pd();
    // Per lane: the sum of the subjects' `base` terms, and the product of their
    // `arg` terms (each >= 1) kept in [1, 2) with its power of two counted apart,
    // so one logarithm at the end gives the sum of their logarithms.
    let mut base_sum = zero;
    let mut product = one;
    let mut twos = _mm256_setzero_si256();
    let mut bad = _mm256_setzero_pd();
    for g in 0..ng {
        // SAFETY: indices below ng * nb * LANES in x and obs, nb * stride in mu,
        // stride * LANES in buf and ng * LANES in a and h (checked above).
        unsafe {
            let xp = x.as_ptr().add(g * nb * LANES);
            let op = obs.as_ptr().add(g * nb * LANES);
            let bp = buf.as_mut_ptr();
            let mut k0 = 0;
            while k0 < stride {
                let mut q = [_mm256_setzero_ps(); SCREEN_BLOCK];
                let mut row = mu.as_ptr().add(k0);
                for b in 0..nb {
                    let xb = _mm256_loadu_ps(xp.add(b * LANES));
                    let ob = _mm256_loadu_ps(op.add(b * LANES));
                    // x - obs mu, one rounding: 0 where the value is missing.
                    macro_rules! stage {
                        ($($j:literal)*) => {$(
                            let d = _mm256_fnmadd_ps(ob, _mm256_broadcast_ss(&*row.add($j)), xb);
                            q[$j] = _mm256_fmadd_ps(d, d, q[$j]);
                        )*};
                    }
                    stage!(0 1 2 3 4 5 6 7);
                    row = row.add(stride);
                }
                let half = _mm256_set1_ps(-0.5);
                for (j, qj) in q.iter().enumerate() {
                    _mm256_storeu_ps(bp.add((k0 + j) * LANES), _mm256_mul_ps(*qj, half));
                }
                k0 += SCREEN_BLOCK;
            }
            let bp = buf.as_ptr();
            let mut max = _mm256_loadu_ps(bp);
            for k in 1..n_stages {
                max = _mm256_max_ps(max, _mm256_loadu_ps(bp.add(k * LANES)));
            }
            let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut k = 0;
            while k + 2 <= n_stages {
                let l0 = _mm256_loadu_ps(bp.add(k * LANES));
                let l1 = _mm256_loadu_ps(bp.add((k + 1) * LANES));
                s0 = _mm256_add_ps(s0, exp8f(_mm256_sub_ps(l0, max)));
                s1 = _mm256_add_ps(s1, exp8f(_mm256_sub_ps(l1, max)));
                k += 2;
            }
            if k < n_stages {
                let l0 = _mm256_loadu_ps(bp.add(k * LANES));
                s0 = _mm256_add_ps(s0, exp8f(_mm256_sub_ps(l0, max)));
            }
            let sum = _mm256_add_ps(s0, s1);
            let halves = [
                (_mm256_castps256_ps128(max), _mm256_castps256_ps128(sum)),
                (
                    _mm256_extractf128_ps::<1>(max),
                    _mm256_extractf128_ps::<1>(sum),
                ),
            ];
            let real = n_subjects - g * LANES;
            for (i, (m, s)) in halves.into_iter().enumerate() {
                // ln(e^a + e^c S) with c = ln_f + h + max, as `base + ln(arg)`:
                // with g = a - c, c + ln(S + e^g) when g <= 0, else
                // a + ln(1 + S e^-g). a = -inf gives c + ln S.
                let at = g * LANES + 4 * i;
                let s = _mm256_cvtps_pd(s);
                let c = _mm256_add_pd(
                    _mm256_add_pd(_mm256_cvtps_pd(m), _mm256_set1_pd(ln_f)),
                    _mm256_loadu_pd(h.as_ptr().add(at)),
                );
                let av = _mm256_loadu_pd(a.as_ptr().add(at));
                let gap = _mm256_sub_pd(av, c);
                let e = exp4(_mm256_or_pd(gap, sign)); // e^-|g|
                let above = _mm256_cmp_pd::<_CMP_GT_OQ>(gap, zero);
                let mut arg =
                    _mm256_blendv_pd(_mm256_add_pd(s, e), _mm256_fmadd_pd(s, e, one), above);
                let mut base = _mm256_blendv_pd(c, av, above);
                if real < LANES {
                    // Padding lanes add nothing: base 0, arg 1.
                    let lane: [f64; 4] = std::array::from_fn(|l| (4 * i + l) as f64);
                    let keep = _mm256_cmp_pd::<_CMP_LT_OQ>(
                        _mm256_loadu_pd(lane.as_ptr()),
                        _mm256_set1_pd(real as f64),
                    );
                    base = _mm256_blendv_pd(zero, base, keep);
                    arg = _mm256_blendv_pd(one, arg, keep);
                }
                // Not finite (never for valid inputs): the total is NaN.
                bad = _mm256_or_pd(
                    bad,
                    _mm256_cmp_pd::<_CMP_UNORD_Q>(base, _mm256_sub_pd(base, base)),
                );
                bad = _mm256_or_pd(
                    bad,
                    _mm256_cmp_pd::<_CMP_UNORD_Q>(arg, _mm256_sub_pd(arg, arg)),
                );
                base_sum = _mm256_add_pd(base_sum, base);
                product = _mm256_mul_pd(product, arg);
            }
            // Bring the product back to [1, 2), counting the powers of two.
            let bits = _mm256_castpd_si256(product);
            twos = _mm256_add_epi64(
                twos,
                _mm256_sub_epi64(_mm256_srli_epi64::<52>(bits), _mm256_set1_epi64x(1023)),
            );
            product = _mm256_castsi256_pd(_mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi64x(0x000f_ffff_ffff_ffff)),
                _mm256_set1_epi64x(0x3ff0_0000_0000_0000),
            ));
        }
    }
    if _mm256_movemask_pd(bad) != 0 {
        return f64::NAN;
    }
    let mut parts = [0.0; 4];
    let mut counts = [0i64; 4];
    // SAFETY: 4 lanes into arrays of 4.
    unsafe {
        _mm256_storeu_pd(parts.as_mut_ptr(), _mm256_add_pd(base_sum, ln4(product)));
        _mm256_storeu_si256(counts.as_mut_ptr().cast(), twos);
    }
    let count: i64 = counts.iter().sum();
    parts.iter().sum::<f64>() + count as f64 * std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes4(f: unsafe fn(__m256d) -> __m256d, x: [f64; 4]) -> [f64; 4] {
        let mut out = [0.0; 4];
        // SAFETY: only called after AVX2 and FMA were detected.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), f(_mm256_loadu_pd(x.as_ptr()))) };
        out
    }

    /// `exp4_clamped` agrees with `exp4` on `[-700, 700]` and saturates above, as
    /// the portable `exp_lanes`: no input wraps the exponent into a wrong finite
    /// value (what a stale reference once produced, in the regression of
    /// `incremental_state_equals_fresh_evaluation`).
    #[test]
    fn exp4_clamped_saturates_like_the_portable_exponential() {
        if !crate::kernels::Isa::Avx2.is_supported() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        for x in [
            [-800.0, -3.5, 0.0, 2.0],
            [650.0, 700.0, 701.0, 3600.0],
            [1e6, 709.9, 1.0, -1e6],
        ] {
            let got = lanes4(exp4_clamped, x);
            let want =
                crate::kernels::exp_lanes::<crate::kernels::Plain>(std::array::from_fn(|i| {
                    x[i % 4]
                }));
            for i in 0..4 {
                assert!(got[i].is_finite() && got[i] > 0.0, "{} -> {}", x[i], got[i]);
                assert!(
                    (got[i] - want[i]).abs() <= 1e-15 * want[i],
                    "{} -> {} vs {}",
                    x[i],
                    got[i],
                    want[i]
                );
            }
        }
    }

    /// `exp8f` within 64 units of f32 rounding of the exact exponential over its
    /// domain [-80, 0], as E-M screening's error bound counts (`crate::screen`).
    #[test]
    fn exp8f_is_accurate() {
        if !crate::kernels::Isa::Avx2.is_supported() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        let u = 1.0 / (1u64 << 24) as f64;
        let mut worst = 0.0f64;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let t = (state >> 40) as f32 / (1u32 << 24) as f32;
            // Every 8th batch near 0, where most of a screened sum's weight is.
            let scale = if i % 8 == 0 { 1.0 } else { 80.0 };
            let x: [f32; 8] = std::array::from_fn(|j| -scale * ((t + j as f32 * 0.117) % 1.0));
            let mut out = [0.0f32; 8];
            // SAFETY: AVX2 and FMA were detected above.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp8f(_mm256_loadu_ps(x.as_ptr()))) };
            for (got, x) in out.into_iter().zip(x) {
                let want = (x as f64).exp();
                worst = worst.max((got as f64 - want).abs() / want);
            }
        }
        assert!(
            worst < 64.0 * u,
            "exp8f worst relative error {worst:e} ({} u)",
            worst / u
        );
        eprintln!("exp8f worst relative error {:.2} u", worst / u);
    }

    /// `exp4` and `ln4` against the standard library over their whole ranges:
    /// every kernel's accuracy (and the golden tests' 1e-9) rests on these two.
    #[test]
    fn exp_and_ln_are_accurate_to_a_few_ulps() {
        if !crate::kernels::Isa::Avx2.is_supported() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        let (mut worst_exp, mut worst_ln) = (0.0f64, 0.0f64);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..100_000 {
            let x: [f64; 4] = std::array::from_fn(|_| -700.0 + 1400.0 * uniform());
            for (got, x) in lanes4(exp4, x).into_iter().zip(x) {
                worst_exp = worst_exp.max((got - x.exp()).abs() / x.exp());
            }
            // Positive normal numbers from 1e-300 to 1e300, and near 1.
            let y: [f64; 4] = std::array::from_fn(|i| match i {
                0 => 1.0 + (uniform() - 0.5) * 1e-3,
                _ => 10f64.powf(-300.0 + 600.0 * uniform()),
            });
            for (got, y) in lanes4(ln4, y).into_iter().zip(y) {
                let want = y.ln();
                worst_ln = worst_ln.max((got - want).abs() / want.abs().max(1.0));
            }
        }
        assert!(
            worst_exp < 4e-16,
            "exp4: worst relative error {worst_exp:e}"
        );
        assert!(worst_ln < 4e-16, "ln4: worst error {worst_ln:e}");
        eprintln!("exp4 {worst_exp:e}, ln4 {worst_ln:e}");
    }
}
