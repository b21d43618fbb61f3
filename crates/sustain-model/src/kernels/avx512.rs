//! AVX-512 kernels for the hottest loops: a lane group of 8 subjects is one
//! 512-bit vector, where the AVX2 kernels split it into two halves.
//!
//! Every function here performs, lane by lane, the same floating-point
//! operations in the same order as its AVX2 twin in `avx2.rs` (the same
//! polynomials, the same association of sums), so the two give the same bits:
//! a run's results do not depend on whether the machine has AVX-512. Tests below
//! check that bit for bit on random inputs.

#![allow(clippy::needless_range_loop)]

use super::{GroupInput, StageInput, Sweep, SweepKind, SweepTerm, LANES};
use std::arch::x86_64::*;

const _: () = assert!(LANES == 8);

/// `exp(x)` for 8 lanes, `x <= 0` (below -700 clamps to about 1e-304): the
/// operations of `avx2::exp4`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn exp8(x: __m512d) -> __m512d {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    #[allow(clippy::excessive_precision)]
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let c = |v: f64| _mm512_set1_pd(v);
    let xc = _mm512_max_pd(x, c(-700.0));
    let t = _mm512_fmadd_pd(xc, c(LOG2E), c(SHIFT));
    let n = _mm512_sub_pd(t, c(SHIFT));
    let r = _mm512_fnmadd_pd(n, c(LN2_HI), xc);
    let r = _mm512_fnmadd_pd(n, c(LN2_LO), r);
    let q = super::EXP_Q;
    let r2 = _mm512_mul_pd(r, r);
    let r4 = _mm512_mul_pd(r2, r2);
    let p0 = _mm512_fmadd_pd(r, c(q[1]), c(q[0]));
    let p1 = _mm512_fmadd_pd(r, c(q[3]), c(q[2]));
    let p2 = _mm512_fmadd_pd(r, c(q[5]), c(q[4]));
    let p3 = _mm512_fmadd_pd(r, c(q[7]), c(q[6]));
    let p4 = _mm512_fmadd_pd(r, c(q[9]), c(q[8]));
    let s0 = _mm512_fmadd_pd(p1, r2, p0);
    let s1 = _mm512_fmadd_pd(p3, r2, p2);
    let u = _mm512_fmadd_pd(p4, r4, s1);
    let qr = _mm512_fmadd_pd(u, r4, s0);
    let p = _mm512_fmadd_pd(qr, r2, _mm512_add_pd(r, c(1.0)));
    // Times 2^n in one instruction (`exp4` adds n to the exponent field in three):
    // the same bits, as p 2^n is a normal number (p in [0.7, 1.5], n >= -1010).
    _mm512_scalef_pd(p, n)
}

/// [`exp8`] of `x` clamped to at most 700 (see `avx2::exp4_clamped`).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn exp8_clamped(x: __m512d) -> __m512d {
    exp8(_mm512_min_pd(x, _mm512_set1_pd(700.0)))
}

/// `ln(x)` for 8 positive, finite, normal lanes: the operations of
/// `avx2::ln4`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) fn ln8(x: __m512d) -> __m512d {
    let c = |v: f64| _mm512_set1_pd(v);
    let bits = _mm512_castpd_si512(x);
    let e_bits = _mm512_srli_epi64::<52>(bits);
    let magic = _mm512_set1_epi64(0x4330_0000_0000_0000);
    let e_raw = _mm512_sub_pd(
        _mm512_castsi512_pd(_mm512_or_si512(e_bits, magic)),
        c(4_503_599_627_370_496.0),
    );
    let mant_bits = _mm512_or_si512(
        _mm512_and_si512(bits, _mm512_set1_epi64(0x000f_ffff_ffff_ffff)),
        _mm512_set1_epi64(0x3ff0_0000_0000_0000),
    );
    let m = _mm512_castsi512_pd(mant_bits);
    let big = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(m, c(std::f64::consts::SQRT_2));
    let m = _mm512_mask_blend_pd(big, m, _mm512_mul_pd(m, c(0.5)));
    let e = _mm512_add_pd(
        _mm512_sub_pd(e_raw, c(1023.0)),
        _mm512_maskz_mov_pd(big, c(1.0)),
    );
    let s = _mm512_div_pd(_mm512_sub_pd(m, c(1.0)), _mm512_add_pd(m, c(1.0)));
    let s2 = _mm512_mul_pd(s, s);
    let s4 = _mm512_mul_pd(s2, s2);
    let s8 = _mm512_mul_pd(s4, s4);
    let s16 = _mm512_mul_pd(s8, s8);
    let q0 = _mm512_fmadd_pd(s2, c(1.0 / 3.0), c(1.0));
    let q1 = _mm512_fmadd_pd(s2, c(1.0 / 7.0), c(1.0 / 5.0));
    let q2 = _mm512_fmadd_pd(s2, c(1.0 / 11.0), c(1.0 / 9.0));
    let q3 = _mm512_fmadd_pd(s2, c(1.0 / 15.0), c(1.0 / 13.0));
    let q4 = _mm512_fmadd_pd(s2, c(1.0 / 19.0), c(1.0 / 17.0));
    let r0 = _mm512_fmadd_pd(q1, s4, q0);
    let r1 = _mm512_fmadd_pd(q3, s4, q2);
    let r2 = _mm512_fmadd_pd(c(1.0 / 21.0), s4, q4);
    let p = _mm512_fmadd_pd(r2, s16, _mm512_fmadd_pd(r1, s8, r0));
    _mm512_fmadd_pd(
        e,
        c(std::f64::consts::LN_2),
        _mm512_mul_pd(c(2.0), _mm512_mul_pd(s, p)),
    )
}

/// Stage part of the log-likelihood of one group into `out[k][lane]` (see
/// `avx2::stage_block`; per stage the same sums in the same order).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
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
            && stride.is_multiple_of(8)
    );
    // Eight or more independent accumulators keep both FMA units busy (latency 4).
    let mut k0 = 0;
    while k0 + 16 <= stride {
        // SAFETY: k0 + 16 <= stride and the sizes were checked above.
        unsafe { stage_tile::<16>(st, g, k0, out) };
        k0 += 16;
    }
    while k0 + 8 <= stride {
        // SAFETY: k0 + 8 <= stride and the sizes were checked above.
        unsafe { stage_tile::<8>(st, g, k0, out) };
        k0 += 8;
    }
}

/// `T` stages from `k0` of [`stage_block`].
///
/// # Safety
/// `k0 + T <= st.stride`, and the slices hold what `stage_block` asserts.
#[inline(always)]
unsafe fn stage_tile<const T: usize>(st: &StageInput, g: &GroupInput, k0: usize, out: &mut [f64]) {
    let stride = st.stride;
    let x = g.x.as_ptr();
    let o = out.as_mut_ptr();
    // SAFETY: b < nb, k0 + T <= stride; the caller checked every slice's size.
    unsafe {
        let mut acc = [_mm512_setzero_pd(); T];
        for b in 0..st.n_biomarkers {
            let xv = _mm512_loadu_pd(x.add(b * LANES));
            let row = st.mu.as_ptr().add(b * stride + k0);
            for t in 0..T {
                acc[t] = _mm512_fmadd_pd(xv, _mm512_set1_pd(*row.add(t)), acc[t]);
            }
        }
        for (i, &b) in g.miss_cols.iter().enumerate() {
            let mv = _mm512_loadu_pd(g.miss_mask.as_ptr().add(i * LANES));
            let row = st.half_mu_sq.as_ptr().add(b as usize * stride + k0);
            for t in 0..T {
                acc[t] = _mm512_fmadd_pd(mv, _mm512_set1_pd(*row.add(t)), acc[t]);
            }
        }
        for t in 0..T {
            let c = _mm512_set1_pd(*st.neg_half_sum_mu_sq.as_ptr().add(k0 + t));
            _mm512_storeu_pd(o.add((k0 + t) * LANES), _mm512_add_pd(acc[t], c));
        }
    }
}

/// Per-lane maximum of the first `n_stages` rows of `p` (finite values; the
/// same as `avx2::max_stages`): four running maxima, so the comparisons
/// do not wait on one another.
///
/// # Safety
/// `p` must point at `n_stages * LANES` readable values, `n_stages > 0`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn max_stages(p: *const f64, n_stages: usize) -> __m512d {
    // SAFETY: as the caller guarantees.
    unsafe {
        let first = _mm512_loadu_pd(p);
        let mut m = [first; 4];
        let mut k = 1;
        while k + 4 <= n_stages {
            for j in 0..4 {
                m[j] = _mm512_max_pd(m[j], _mm512_loadu_pd(p.add((k + j) * LANES)));
            }
            k += 4;
        }
        while k < n_stages {
            m[0] = _mm512_max_pd(m[0], _mm512_loadu_pd(p.add(k * LANES)));
            k += 1;
        }
        _mm512_max_pd(_mm512_max_pd(m[0], m[1]), _mm512_max_pd(m[2], m[3]))
    }
}

/// Per-lane `log sum_k exp(v[k][lane])` over the first `n_stages` rows (see
/// `avx2::lse_block`: even and odd stages summed apart, then added).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn lse_block(v: &[f64], n_stages: usize, out: &mut [f64]) {
    assert!(v.len() >= n_stages * LANES && out.len() >= LANES && n_stages > 0);
    let p = v.as_ptr();
    // SAFETY: every index is below n_stages * LANES, checked above.
    unsafe {
        let max = max_stages(p, n_stages);
        // Four stages per step: four independent exponentials in flight, two
        // sums (even, odd stages) as the AVX2 kernel keeps.
        let (mut even, mut odd) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut k = 0;
        while k + 4 <= n_stages {
            let e0 = exp8(_mm512_sub_pd(_mm512_loadu_pd(p.add(k * LANES)), max));
            let e1 = exp8(_mm512_sub_pd(_mm512_loadu_pd(p.add((k + 1) * LANES)), max));
            let e2 = exp8(_mm512_sub_pd(_mm512_loadu_pd(p.add((k + 2) * LANES)), max));
            let e3 = exp8(_mm512_sub_pd(_mm512_loadu_pd(p.add((k + 3) * LANES)), max));
            even = _mm512_add_pd(_mm512_add_pd(even, e0), e2);
            odd = _mm512_add_pd(_mm512_add_pd(odd, e1), e3);
            k += 4;
        }
        while k < n_stages {
            let e = exp8(_mm512_sub_pd(_mm512_loadu_pd(p.add(k * LANES)), max));
            if k % 2 == 0 {
                even = _mm512_add_pd(even, e);
            } else {
                odd = _mm512_add_pd(odd, e);
            }
            k += 1;
        }
        let sum = _mm512_add_pd(even, odd);
        _mm512_storeu_pd(out.as_mut_ptr(), _mm512_add_pd(max, ln8(sum)));
    }
}

/// AVX-512 version of `kernels::subtype_lse`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
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

/// AVX-512 version of `kernels::stage_values`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn stage_values(st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    stage_block(st, g, out)
}

/// AVX-512 version of `kernels::group_state`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA; `l` holds `stride x LANES` and
/// `e` `n_stages x LANES` values.
#[target_feature(enable = "avx512f,avx2,fma")]
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
        let r = _mm512_loadu_pd(reference.as_ptr());
        let mut s = _mm512_setzero_pd();
        for k in 0..st.n_stages {
            let v = exp8_clamped(_mm512_sub_pd(_mm512_loadu_pd(l.as_ptr().add(k * LANES)), r));
            _mm512_storeu_pd(e.as_mut_ptr().add(k * LANES), v);
            s = _mm512_add_pd(s, v);
        }
        _mm512_storeu_pd(p.as_mut_ptr(), s);
    }
}

/// AVX-512 version of `kernels::mixture`, 8 subjects per step (a last 4 as
/// `avx2::mixture` does them).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn mixture(log_f: &[f64], lse: &[&[f64]], out: &mut [f64]) {
    let n = out.len() / 8;
    for part in lse {
        assert!(part.len() >= n * 8);
    }
    assert!(log_f.len() >= lse.len());
    for i in 0..n {
        // SAFETY: every part holds at least n * 8 values (checked above).
        unsafe {
            let mut max = _mm512_set1_pd(f64::NEG_INFINITY);
            for (s, part) in lse.iter().enumerate() {
                let v = _mm512_add_pd(
                    _mm512_loadu_pd(part.as_ptr().add(8 * i)),
                    _mm512_set1_pd(log_f[s]),
                );
                max = _mm512_max_pd(max, v);
            }
            let mut sum = _mm512_setzero_pd();
            for (s, part) in lse.iter().enumerate() {
                let v = _mm512_add_pd(
                    _mm512_loadu_pd(part.as_ptr().add(8 * i)),
                    _mm512_set1_pd(log_f[s]),
                );
                let d = _mm512_max_pd(_mm512_sub_pd(v, max), _mm512_set1_pd(-745.0));
                sum = _mm512_add_pd(sum, exp8(d));
            }
            _mm512_storeu_pd(out.as_mut_ptr().add(8 * i), _mm512_add_pd(max, ln8(sum)));
        }
    }
    if out.len() % 8 >= 4 {
        let rest: Vec<&[f64]> = lse.iter().map(|part| &part[8 * n..]).collect();
        // SAFETY: the CPU has AVX2 and FMA (AVX-512 CPUs do).
        unsafe { super::avx2::mixture(log_f, &rest, &mut out[8 * n..]) };
    }
}

/// Adds `sum_b (x_b dmu - obs_b dh)` over `(b, dmu, dh)` terms to `a` (see
/// `avx2::add_deltas`: the `obs dh` parts in their own sum, added last).
///
/// # Safety
/// Every `(b + 1) * LANES` must be within `x` and `obs`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn add_deltas(
    deltas: impl IntoIterator<Item = (usize, f64, f64)>,
    x: &[f64],
    obs: &[f64],
    mut a: __m512d,
) -> __m512d {
    let mut bsum = _mm512_setzero_pd();
    for (b, dmu, dhsq) in deltas {
        // SAFETY: the caller checked that biomarker b's lanes are in x and obs.
        unsafe {
            bsum = _mm512_fnmadd_pd(
                _mm512_loadu_pd(obs.as_ptr().add(b * LANES)),
                _mm512_set1_pd(dhsq),
                bsum,
            );
            a = _mm512_fmadd_pd(
                _mm512_loadu_pd(x.as_ptr().add(b * LANES)),
                _mm512_set1_pd(dmu),
                a,
            );
        }
    }
    _mm512_add_pd(a, bsum)
}

/// `x a - obs d` summed over `terms`.
///
/// # Safety
/// Every `(b + 1) * LANES` must be within `x` and `obs`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn sweep_terms(terms: &[SweepTerm], x: &[f64], obs: &[f64]) -> __m512d {
    // SAFETY: as the caller guarantees.
    unsafe {
        add_deltas(
            terms.iter().map(|t| (t.b as usize, t.a, t.d)),
            x,
            obs,
            _mm512_setzero_pd(),
        )
    }
}

/// Per-lane sum of `e[k]` over the stages `k` in `stages`: two running sums
/// (even and odd positions in `stages`), then added, as
/// `avx2::sum_stages`.
///
/// # Safety
/// `e` must hold every stage in `stages`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn sum_stages(e: &[f64], stages: &[usize]) -> __m512d {
    let (mut u0, mut u1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let ep = e.as_ptr();
    // SAFETY: the caller guarantees the sizes.
    unsafe {
        let mut pairs = stages.chunks_exact(2);
        for pair in pairs.by_ref() {
            u0 = _mm512_add_pd(u0, _mm512_loadu_pd(ep.add(pair[0] * LANES)));
            u1 = _mm512_add_pd(u1, _mm512_loadu_pd(ep.add(pair[1] * LANES)));
        }
        if let [k] = pairs.remainder() {
            u0 = _mm512_add_pd(u0, _mm512_loadu_pd(ep.add(k * LANES)));
        }
    }
    _mm512_add_pd(u0, u1)
}

/// AVX-512 version of `kernels::group_sweeps`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA, and the sizes must be those
/// `kernels::group_sweeps` asserts.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::int_plus_one)] // `g + N <= end` reads the same for every N of the macro.
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
    // Two groups per pass over the ops: a group's factors form a chain of
    // dependent multiplications, and one 512-bit vector per group leaves too
    // little independent work between them (the AVX2 kernel has two halves).
    let mut g = groups.start;
    macro_rules! run {
        ($n:literal) => {
            while g + $n <= groups.end {
                // SAFETY: the caller checked the arrays for every group in `groups`.
                unsafe {
                    group_sweep_n::<$n>(
                        sweep,
                        std::array::from_fn(|j| {
                            x.get_unchecked((g + j) * nb * LANES..(g + j + 1) * nb * LANES)
                        }),
                        std::array::from_fn(|j| {
                            obs.get_unchecked((g + j) * nb * LANES..(g + j + 1) * nb * LANES)
                        }),
                        e.get_unchecked(g * ns * LANES..(g + $n) * ns * LANES),
                        new_e.get_unchecked_mut(g * nc * LANES..(g + $n) * nc * LANES),
                        new_p.as_mut_ptr().add(g * LANES),
                    )
                }
                g += $n;
            }
        };
    }
    run!(2);
    run!(1);
}

/// One pass over a sweep's ops for `N` consecutive groups (the operations of
/// `avx2::group_sweep` per group); `e`, `new_e` and `new_p` hold the
/// groups' blocks, one after the other.
///
/// # Safety
/// As [`group_sweeps`], for these groups' slices; `new_p` points at `N * LANES`
/// writable values.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn group_sweep_n<const N: usize>(
    sweep: &Sweep,
    x: [&[f64]; N],
    obs: [&[f64]; N],
    e: &[f64],
    new_e: &mut [f64],
    new_p: *mut f64,
) {
    let one = _mm512_set1_pd(1.0);
    let (mut g, mut r, mut rho) = ([one; N], [one; N], [one; N]);
    let mut s = [_mm512_setzero_pd(); N];
    let ns = sweep.n_stages();
    let nc = sweep.n_changed();
    // SAFETY: as in `group_sweep`, for each group's block (offsets `j * ns` in
    // `e`, `j * nc` in `new_e`).
    unsafe {
        let ne = new_e.as_mut_ptr();
        let ep = e.as_ptr();
        for op in sweep.ops() {
            let terms = sweep
                .terms()
                .get_unchecked(op.terms.0 as usize..op.terms.1 as usize);
            match op.kind {
                SweepKind::Begin => {
                    for j in 0..N {
                        g[j] = exp8(sweep_terms(terms, x[j], obs[j]));
                    }
                }
                SweepKind::Direct => {
                    for j in 0..N {
                        r[j] = exp8(sweep_terms(terms, x[j], obs[j]));
                        g[j] = _mm512_mul_pd(g[j], r[j]);
                    }
                }
                SweepKind::Linked => {
                    rho = [one; N];
                    for t in terms {
                        let c = _mm512_set1_pd(t.a);
                        for j in 0..N {
                            let o = _mm512_loadu_pd(obs[j].as_ptr().add(t.b as usize * LANES));
                            rho[j] = _mm512_mul_pd(rho[j], _mm512_fmadd_pd(o, c, one));
                        }
                    }
                    for j in 0..N {
                        r[j] = _mm512_mul_pd(r[j], rho[j]);
                        g[j] = _mm512_mul_pd(g[j], r[j]);
                    }
                }
                SweepKind::Repeat => {
                    for j in 0..N {
                        r[j] = _mm512_mul_pd(r[j], rho[j]);
                        g[j] = _mm512_mul_pd(g[j], r[j]);
                    }
                }
            }
            if op.slot != u32::MAX {
                for j in 0..N {
                    let v = _mm512_mul_pd(
                        _mm512_loadu_pd(ep.add((j * ns + op.k as usize) * LANES)),
                        g[j],
                    );
                    _mm512_storeu_pd(ne.add((j * nc + op.slot as usize) * LANES), v);
                    s[j] = _mm512_add_pd(s[j], v);
                }
            }
        }
        for j in 0..N {
            let u = sum_stages(&e[j * ns * LANES..(j + 1) * ns * LANES], sweep.unchanged());
            _mm512_storeu_pd(new_p.add(j * LANES), _mm512_add_pd(s[j], u));
        }
    }
}

/// AVX-512 version of `kernels::scatter_stages`.
///
/// # Safety
/// The CPU must support AVX-512F; `from` must hold `stages.len() * LANES` values
/// and every stage must lie in `to`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn scatter_stages(
    to: &mut [f64],
    from: &[f64],
    stages: &[usize],
    floor: f64,
) -> bool {
    let f = _mm512_set1_pd(floor);
    let mut low: __mmask8 = 0;
    // SAFETY: as the caller guarantees.
    unsafe {
        for (i, &k) in stages.iter().enumerate() {
            let a = _mm512_loadu_pd(from.as_ptr().add(i * LANES));
            _mm512_storeu_pd(to.as_mut_ptr().add(k * LANES), a);
            // `!(v >= floor)`: below the floor, or NaN.
            low |= _mm512_cmp_pd_mask::<_CMP_NGE_UQ>(a, f);
        }
    }
    low != 0
}

/// Per-lane new stage sum of a proposal: `new_e[0..n_new]` plus `e` of the
/// unchanged stages (see `avx2::stage_sum`: even and odd new stages
/// summed apart, added, then the unchanged sum).
///
/// # Safety
/// `new_e` must hold `n_new * LANES` values and `e` every stage in `unchanged`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn stage_sum(e: &[f64], new_e: &[f64], n_new: usize, unchanged: &[usize], new_p: *mut f64) {
    let (mut n0, mut n1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    // SAFETY: the caller guarantees the sizes.
    unsafe {
        let np = new_e.as_ptr();
        let mut i = 0;
        while i + 2 <= n_new {
            n0 = _mm512_add_pd(n0, _mm512_loadu_pd(np.add(i * LANES)));
            n1 = _mm512_add_pd(n1, _mm512_loadu_pd(np.add((i + 1) * LANES)));
            i += 2;
        }
        if i < n_new {
            n0 = _mm512_add_pd(n0, _mm512_loadu_pd(np.add(i * LANES)));
        }
        let u = sum_stages(e, unchanged);
        _mm512_storeu_pd(new_p, _mm512_add_pd(_mm512_add_pd(n0, n1), u));
    }
}

/// AVX-512 version of `kernels::group_delta` (the operations of
/// `avx2::group_delta`).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
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
    // SAFETY: indices are bounded by the asserts above and below.
    unsafe {
        let r = _mm512_loadu_pd(reference.as_ptr());
        for (i, ch) in changes.iter().enumerate() {
            let k = ch.stage;
            assert!(k < n_stages);
            for &(b, ..) in ch.deltas {
                assert!((b + 1) * LANES <= x.len() && (b + 1) * LANES <= obs.len());
            }
            let a = add_deltas(
                ch.deltas.iter().copied(),
                x,
                obs,
                _mm512_loadu_pd(l.as_ptr().add(k * LANES)),
            );
            _mm512_storeu_pd(new_l.as_mut_ptr().add(i * LANES), a);
            _mm512_storeu_pd(
                new_e.as_mut_ptr().add(i * LANES),
                exp8_clamped(_mm512_sub_pd(a, r)),
            );
        }
        stage_sum(e, new_e, changes.len(), unchanged, new_p.as_mut_ptr());
    }
}

/// AVX-512 version of `kernels::group_factors` (the operations of
/// `avx2::group_factors`).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA, and the sizes must be those
/// `kernels::group_factors` asserts.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn group_factors(
    x: &[f64],
    obs: &[f64],
    changes: &[super::StageDelta],
    unchanged: &[usize],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut [f64; LANES],
) {
    let mut s = _mm512_setzero_pd();
    // SAFETY: the caller checked every stage, biomarker and size used below.
    unsafe {
        for (i, ch) in changes.iter().enumerate() {
            let a = add_deltas(ch.deltas.iter().copied(), x, obs, _mm512_setzero_pd());
            let v = _mm512_mul_pd(_mm512_loadu_pd(e.as_ptr().add(ch.stage * LANES)), exp8(a));
            _mm512_storeu_pd(new_e.as_mut_ptr().add(i * LANES), v);
            s = _mm512_add_pd(s, v);
        }
        let u = sum_stages(e, unchanged);
        _mm512_storeu_pd(new_p.as_mut_ptr(), _mm512_add_pd(s, u));
    }
}

/// AVX-512 version of `kernels::stage_exp` (the operations of
/// `avx2::stage_exp`).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn stage_exp(l: &mut [f64], n_stages: usize, r: &mut [f64; LANES]) {
    assert!(l.len() >= n_stages * LANES && n_stages > 0);
    let p = l.as_mut_ptr();
    // SAFETY: every index is below n_stages * LANES (checked above).
    unsafe {
        let mut max = _mm512_set1_pd(f64::NEG_INFINITY);
        for k in 0..n_stages {
            let v = _mm512_loadu_pd(p.add(k * LANES));
            // `v > max ? v : max`, as the generic code.
            max = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, max), max, v);
        }
        let floor = _mm512_set1_pd(-700.0);
        for k in 0..n_stages {
            let at = p.add(k * LANES);
            let d = _mm512_sub_pd(_mm512_loadu_pd(at), max);
            let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(d, floor);
            _mm512_storeu_pd(at, _mm512_maskz_mov_pd(keep, exp8(d)));
        }
        _mm512_storeu_pd(r.as_mut_ptr(), max);
    }
}

/// AVX-512 version of `kernels::posterior_group` (the operations of
/// `avx2::posterior_group`).
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
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
        let mut max = _mm512_set1_pd(f64::NEG_INFINITY);
        for (lf, r) in log_f.iter().zip(refs) {
            let v = _mm512_add_pd(_mm512_set1_pd(*lf), _mm512_loadu_pd(r.as_ptr()));
            max = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, max), max, v);
        }
        let floor = _mm512_set1_pd(-700.0);
        let mut total = _mm512_setzero_pd();
        for (s, ((lf, r), b)) in log_f.iter().zip(refs).zip(blocks).enumerate() {
            let v = _mm512_add_pd(_mm512_set1_pd(*lf), _mm512_loadu_pd(r.as_ptr()));
            let d = _mm512_sub_pd(v, max);
            // `!(d >= -700)` (NaN too) gives an exact 0.
            let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(d, floor);
            let w = _mm512_maskz_mov_pd(keep, exp8(d));
            let o = tmp.as_mut_ptr().add(s * n_stages * LANES);
            for k in 0..n_stages {
                let t = _mm512_mul_pd(w, _mm512_loadu_pd(b.as_ptr().add(k * LANES)));
                _mm512_storeu_pd(o.add(k * LANES), t);
                total = _mm512_add_pd(total, t);
            }
        }
        let inv = _mm512_div_pd(_mm512_set1_pd(1.0), total);
        for i in 0..size / LANES {
            let t = _mm512_loadu_pd(tmp.as_ptr().add(LANES * i));
            let a = acc.as_mut_ptr().add(LANES * i);
            _mm512_storeu_pd(a, _mm512_fmadd_pd(t, inv, _mm512_loadu_pd(a)));
        }
    }
}

/// `exp(x)` for 16 single-precision lanes, `x <= 0`: the operations of
/// `avx2::exp8f` (the same error bound, which E-M screening counts on).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn exp16f(x: __m512) -> __m512 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFT: f32 = 12_582_912.0;
    let c = |v: f32| _mm512_set1_ps(v);
    let x = _mm512_max_ps(x, c(-80.0));
    let t = _mm512_fmadd_ps(x, c(LOG2E), c(SHIFT));
    let n = _mm512_sub_ps(t, c(SHIFT));
    let r = _mm512_fnmadd_ps(n, c(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, c(LN2_LO), r);
    let mut p = c(1.0 / 120.0);
    for k in [24.0f32, 6.0, 2.0, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, c(1.0 / k));
    }
    // p 2^n with n >= -116: a normal number, so scaling equals the exponent add.
    _mm512_scalef_ps(p, n)
}

/// Two consecutive groups' 8 lanes of biomarker `b` (`[g][b][lane]` layout) as one
/// 16-lane vector, the second group's lanes 0 when `second` is false.
///
/// # Safety
/// `p` points at group `g`'s block; with `second`, group `g + 1`'s block follows at
/// `group_len` values.
#[inline(always)]
unsafe fn pair_lanes(p: *const f32, group_len: usize, b: usize, second: bool) -> __m512 {
    // SAFETY: as the caller guarantees.
    unsafe {
        let lo = _mm256_loadu_ps(p.add(b * LANES));
        let hi = if second {
            _mm256_loadu_ps(p.add(group_len + b * LANES))
        } else {
            _mm256_setzero_ps()
        };
        _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lo), hi)
    }
}

/// AVX-512 version of `avx2::screen_candidate`: two groups of 8 subjects
/// per 16-lane vector in single precision (per lane the same operations, so the
/// same error bound), the per-subject f64 part 8 lanes at a time. The final sum
/// over subjects is associated differently from the AVX2 kernel's (rounding of
/// order 1e-16 relative, far inside the screen's bound; the screened choice is
/// the exact ranking's either way).
///
/// # Safety
/// The CPU must support AVX-512F/DQ, AVX2 and FMA; `buf` holds `2 * stride *
/// LANES` values.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
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
    use super::SCREEN_BLOCK;
    assert!(stride.is_multiple_of(SCREEN_BLOCK) && n_stages > 0 && n_stages <= stride);
    let nb = mu.len() / stride;
    let ng = n_subjects.div_ceil(LANES);
    assert!(x.len() >= ng * nb * LANES && obs.len() >= ng * nb * LANES);
    assert!(buf.len() >= 2 * stride * LANES && a.len() >= ng * LANES && h.len() >= ng * LANES);
    let one = _mm512_set1_pd(1.0);
    let zero = _mm512_setzero_pd();
    let sign = _mm512_set1_pd(-0.0);
    let mut base_sum = zero;
    let mut product = one;
    let mut twos = _mm512_setzero_si512();
    let mut bad: __mmask8 = 0;
    let group_len = nb * LANES;
    let lane_index = _mm512_setr_pd(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
    let mut g = 0;
    while g < ng {
        let second = g + 1 < ng;
        // SAFETY: indices below ng * nb * LANES in x and obs (the second group only
        // when it exists), nb * stride in mu, 2 * stride * LANES in buf and ng * LANES
        // in a and h (checked above).
        unsafe {
            let xp = x.as_ptr().add(g * group_len);
            let op = obs.as_ptr().add(g * group_len);
            let bp = buf.as_mut_ptr();
            let mut k0 = 0;
            while k0 < stride {
                let mut q = [_mm512_setzero_ps(); SCREEN_BLOCK];
                let mut row = mu.as_ptr().add(k0);
                for b in 0..nb {
                    let xb = pair_lanes(xp, group_len, b, second);
                    let ob = pair_lanes(op, group_len, b, second);
                    for j in 0..SCREEN_BLOCK {
                        let d = _mm512_fnmadd_ps(ob, _mm512_set1_ps(*row.add(j)), xb);
                        q[j] = _mm512_fmadd_ps(d, d, q[j]);
                    }
                    row = row.add(stride);
                }
                let half = _mm512_set1_ps(-0.5);
                for (j, qj) in q.iter().enumerate() {
                    _mm512_storeu_ps(bp.add((k0 + j) * 2 * LANES), _mm512_mul_ps(*qj, half));
                }
                k0 += SCREEN_BLOCK;
            }
            let bp = buf.as_ptr();
            let mut max = _mm512_loadu_ps(bp);
            for k in 1..n_stages {
                max = _mm512_max_ps(max, _mm512_loadu_ps(bp.add(k * 2 * LANES)));
            }
            let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut k = 0;
            while k + 2 <= n_stages {
                let l0 = _mm512_loadu_ps(bp.add(k * 2 * LANES));
                let l1 = _mm512_loadu_ps(bp.add((k + 1) * 2 * LANES));
                s0 = _mm512_add_ps(s0, exp16f(_mm512_sub_ps(l0, max)));
                s1 = _mm512_add_ps(s1, exp16f(_mm512_sub_ps(l1, max)));
                k += 2;
            }
            if k < n_stages {
                let l0 = _mm512_loadu_ps(bp.add(k * 2 * LANES));
                s0 = _mm512_add_ps(s0, exp16f(_mm512_sub_ps(l0, max)));
            }
            let sum = _mm512_add_ps(s0, s1);
            let halves = [
                (_mm512_castps512_ps256(max), _mm512_castps512_ps256(sum)),
                (
                    _mm512_extractf32x8_ps::<1>(max),
                    _mm512_extractf32x8_ps::<1>(sum),
                ),
            ];
            for (i, (m, s)) in halves.into_iter().enumerate() {
                let gi = g + i;
                if gi >= ng {
                    break;
                }
                // As the AVX2 kernel: ln(e^a + e^c S) = base + ln(arg).
                let at = gi * LANES;
                let s = _mm512_cvtps_pd(s);
                let c = _mm512_add_pd(
                    _mm512_add_pd(_mm512_cvtps_pd(m), _mm512_set1_pd(ln_f)),
                    _mm512_loadu_pd(h.as_ptr().add(at)),
                );
                let av = _mm512_loadu_pd(a.as_ptr().add(at));
                let gap = _mm512_sub_pd(av, c);
                let e = exp8(_mm512_or_pd(gap, sign)); // e^-|g|
                let above = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(gap, zero);
                let mut arg =
                    _mm512_mask_blend_pd(above, _mm512_add_pd(s, e), _mm512_fmadd_pd(s, e, one));
                let mut base = _mm512_mask_blend_pd(above, c, av);
                let real = n_subjects - gi * LANES;
                if real < LANES {
                    // Padding lanes add nothing: base 0, arg 1.
                    let keep =
                        _mm512_cmp_pd_mask::<_CMP_LT_OQ>(lane_index, _mm512_set1_pd(real as f64));
                    base = _mm512_maskz_mov_pd(keep, base);
                    arg = _mm512_mask_blend_pd(keep, one, arg);
                }
                // Not finite (never for valid inputs): the total is NaN.
                bad |= _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(base, _mm512_sub_pd(base, base));
                bad |= _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(arg, _mm512_sub_pd(arg, arg));
                base_sum = _mm512_add_pd(base_sum, base);
                product = _mm512_mul_pd(product, arg);
                // Back to [1, 2), counting the powers of two (products of 2 args,
                // each below 2^1024 / ..., are renormalised every group).
                let bits = _mm512_castpd_si512(product);
                twos = _mm512_add_epi64(
                    twos,
                    _mm512_sub_epi64(_mm512_srli_epi64::<52>(bits), _mm512_set1_epi64(1023)),
                );
                product = _mm512_castsi512_pd(_mm512_or_si512(
                    _mm512_and_si512(bits, _mm512_set1_epi64(0x000f_ffff_ffff_ffff)),
                    _mm512_set1_epi64(0x3ff0_0000_0000_0000),
                ));
            }
        }
        g += 2;
    }
    if bad != 0 {
        return f64::NAN;
    }
    let mut parts = [0.0; 8];
    let mut counts = [0i64; 8];
    // SAFETY: 8 lanes into arrays of 8.
    unsafe {
        _mm512_storeu_pd(parts.as_mut_ptr(), _mm512_add_pd(base_sum, ln8(product)));
        _mm512_storeu_si512(counts.as_mut_ptr().cast(), twos);
    }
    let count: i64 = counts.iter().sum();
    parts.iter().sum::<f64>() + count as f64 * std::f64::consts::LN_2
}

/// `sum_k exp(l[k] - r)` over the first `n_stages` rows of `l` (a group's stage
/// values from [`stage_block`]): two running sums, even and odd stages, added at
/// the end (four stages per step, so four exponentials are in flight). Per lane
/// the operations of the AVX2 `mixture_direct`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn stage_sum_from(l: &[f64], n_stages: usize, r: __m512d) -> __m512d {
    assert!(l.len() >= n_stages * LANES);
    let p = l.as_ptr();
    let e = |k: usize| {
        // SAFETY: k < n_stages, checked above.
        exp8(_mm512_sub_pd(
            unsafe { _mm512_loadu_pd(p.add(k * LANES)) },
            r,
        ))
    };
    let (mut even, mut odd) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut k = 0;
    while k + 4 <= n_stages {
        let (e0, e1, e2, e3) = (e(k), e(k + 1), e(k + 2), e(k + 3));
        even = _mm512_add_pd(_mm512_add_pd(even, e0), e2);
        odd = _mm512_add_pd(_mm512_add_pd(odd, e1), e3);
        k += 4;
    }
    while k < n_stages {
        if k % 2 == 0 {
            even = _mm512_add_pd(even, e(k));
        } else {
            odd = _mm512_add_pd(odd, e(k));
        }
        k += 1;
    }
    _mm512_add_pd(even, odd)
}

/// AVX-512 version of `kernels::mixture_direct` (the operations of
/// `avx2::mixture_direct`, lane by lane).
///
/// # Safety
/// The CPU must support AVX-512F/DQ, AVX2 and FMA; the shapes are those
/// `kernels::mixture_direct` checks.
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
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
    for (gi, g) in groups.iter().enumerate() {
        let nb = sts[0].n_biomarkers;
        // SAFETY: the caller checked x (nb * LANES values per group) and out.
        unsafe {
            let mut q = _mm512_setzero_pd();
            for b in 0..nb {
                let xv = _mm512_loadu_pd(g.x.as_ptr().add(b * LANES));
                q = _mm512_fmadd_pd(xv, xv, q);
            }
            // Every stage value is at most sum_obs x^2 / 2 (it is that minus
            // sum_obs (x - mu)^2 / 2).
            let r = _mm512_mul_pd(q, _mm512_set1_pd(0.5));
            let mut p = _mm512_setzero_pd();
            for (st, fs) in sts.iter().zip(f) {
                stage_block(st, g, scratch);
                let sum = stage_sum_from(scratch, st.n_stages, r);
                p = _mm512_fmadd_pd(_mm512_set1_pd(*fs), sum, p);
            }
            let fine = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(p, _mm512_set1_pd(super::MIXTURE_FLOOR))
                & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(p, _mm512_set1_pd(f64::INFINITY));
            let o = out.as_mut_ptr().add(gi * LANES);
            if fine == 0xff {
                _mm512_storeu_pd(o, _mm512_add_pd(r, ln8(p)));
            } else {
                // Some subject's stages all lie far below the reference (outlying
                // values): the maximum-based path, exact at any range.
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
