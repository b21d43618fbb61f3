//! Vectorised numeric kernels with runtime CPU-feature dispatch.
//!
//! Release builds target baseline x86-64 so the binary runs anywhere; the hot
//! kernels are compiled three times (AVX-512, AVX2+FMA, baseline) and the best one
//! the CPU supports is chosen once at start-up ([`Isa::detect`], the one place that
//! asks the CPU; the screens follow the likelihood's choice).
//!
//! Files: this one holds the shared types, the choice of instruction set and the
//! entry points that dispatch on it; `portable.rs` the generic bodies; `avx2.rs` and
//! `avx512.rs` the hand-written intrinsics. Those three import only this file's
//! shared types (and the AVX-512 file the AVX2 kernel it finishes with), never the
//! entry points.
//! The bodies are plain loops over fixed-width lane arrays that LLVM vectorises
//! under each target's features; `exp` and `ln` are branch-free polynomials
//! (relative error below 1e-15) so they vectorise too.

#![allow(clippy::needless_range_loop, clippy::excessive_precision)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

pub use portable::{exp_lanes, exp_minus, ln_lanes, max_plus_ln, row};
use portable::{
    group_delta_body, group_factors_body, group_state_body, group_sweep_body, mixture_body,
    posterior_group_body, stage_exp_body, stage_values_body, subtype_lse_body,
};

/// Subjects per lane group. 8 f64 fill one AVX-512 register or two AVX2 registers.
pub const LANES: usize = 8;
/// Stages accumulated at once in registers.
const STAGE_TILE: usize = 8;

/// One group of `LANES` subjects.
pub type Lanes = [f64; LANES];

/// Multiply-add: fused where the CPU has FMA, plain otherwise (without the FMA
/// feature `f64::mul_add` is a slow software call).
pub trait MulAdd {
    /// `a * b + c`.
    fn fma(a: f64, b: f64, c: f64) -> f64;
}
/// Fused multiply-add (one rounding).
pub struct Fused;
/// Multiply then add (two roundings).
pub struct Plain;
impl MulAdd for Fused {
    #[inline(always)]
    fn fma(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}
impl MulAdd for Plain {
    #[inline(always)]
    fn fma(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

/// Which instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F and DQ (+ AVX2, FMA).
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Whatever the compile target allows (SSE2 on baseline x86-64).
    Baseline,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("SUSTAIN_NO_SIMD").is_some() {
                return Isa::Baseline;
            }
            // `SUSTAIN_NO_AVX512`: the AVX2 kernels on an AVX-512 CPU (same results;
            // for comparing the two).
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && std::env::var_os("SUSTAIN_NO_AVX512").is_none()
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Whether this CPU can run the kernels of `self` (whatever
    /// `SUSTAIN_NO_SIMD` or `SUSTAIN_NO_AVX512` say).
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            match self {
                Isa::Avx512 => {
                    avx2 && is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512dq")
                }
                Isa::Avx2 => avx2,
                Isa::Baseline => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Baseline
        }
    }
}

/// On an AVX2 or AVX-512 `isa`, calls that file's kernel `$f` and returns its value
/// from the calling entry point (or `$ret` after it); on any other, does nothing and
/// the caller goes on to the generic code. Every entry point with both an AVX2 and
/// an AVX-512 kernel chooses through it (`mixture_total` has only the AVX2 one).
macro_rules! simd_kernel {
    ($isa:expr, $f:ident($($arg:expr),* $(,)?)) => {
        #[cfg(target_arch = "x86_64")]
        if matches!($isa, Isa::Avx2 | Isa::Avx512) {
            return simd_kernel!(@call $isa, $f($($arg),*));
        }
    };
    ($isa:expr, $f:ident($($arg:expr),* $(,)?) => $ret:expr) => {
        #[cfg(target_arch = "x86_64")]
        if matches!($isa, Isa::Avx2 | Isa::Avx512) {
            simd_kernel!(@call $isa, $f($($arg),*));
            return $ret;
        }
    };
    (@call $isa:expr, $f:ident($($arg:expr),*)) => {
        // SAFETY: `Isa::detect` (or `Isa::is_supported`) found AVX2 and FMA, and
        // AVX-512 F and DQ for `Isa::Avx512`; the caller checked the sizes its
        // kernel reads and writes before this.
        if $isa == Isa::Avx512 {
            unsafe { avx512::$f($($arg),*) }
        } else {
            unsafe { avx2::$f($($arg),*) }
        }
    };
}

/// Inputs of the per-subtype stage kernel for one group of subjects.
pub(crate) struct GroupInput<'a> {
    /// `x[b][lane]` (missing and padding = 0), `n_biomarkers * LANES` values.
    pub x: &'a [f64],
    /// Biomarkers with a missing value in some lane of this group.
    pub miss_cols: &'a [u16],
    /// Per entry of `miss_cols`, `[lane]`: 1 where missing, else 0.
    pub miss_mask: &'a [f64],
}

/// Per-subtype quantities shared by all subject groups.
pub(crate) struct StageInput<'a> {
    /// `mu[b][k]`, biomarker-major.
    pub mu: &'a [f64],
    /// `0.5 * mu[b][k]^2`, biomarker-major.
    pub half_mu_sq: &'a [f64],
    /// `-0.5 * sum_b mu[b][k]^2` per stage.
    pub neg_half_sum_mu_sq: &'a [f64],
    pub n_biomarkers: usize,
    pub n_stages: usize,
    /// Row length of `mu` and `half_mu_sq`: `n_stages` rounded up to
    /// [`STAGE_STRIDE_MULTIPLE`], zero-padded, so stage tiles never run short.
    pub stride: usize,
}

/// Stage rows are padded to a multiple of this.
pub const STAGE_STRIDE_MULTIPLE: usize = 8;

/// Coefficients of `q` in `exp(r) = 1 + r + r^2 q(r)`, `|r| <= ln2/2`: a Chebyshev
/// fit of `(exp(r) - 1 - r) / r^2` of degree 9 (mpmath `chebyfit`, 40 digits; its
/// error, 1.6e-17 relative to `exp`, is below the double rounding of the result).
pub(crate) const EXP_Q: [f64; 10] = [
    0.500_000_000_000_000_1,
    0.166_666_666_666_666_69,
    0.041_666_666_666_624_164,
    0.008_333_333_333_330_065,
    0.001_388_888_891_719_671_9,
    0.000_198_412_698_630_405_45,
    2.480_152_132_236_869_2e-5,
    2.755_726_848_031_002_4e-6,
    2.762_007_587_998_336_7e-7,
    2.510_037_583_256_123_4e-8,
];

/// Compiles `$body` three times (AVX-512, AVX2+FMA, baseline) behind one entry
/// point that takes the detected [`Isa`].
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($p:ident: $t:ty),*) => $body:ident) => {
        multiversion!($(#[$meta])* $vis fn $name($($p: $t),*) -> () => $body);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($p:ident: $t:ty),*) -> $ret:ty => $body:ident) => {
        $(#[$meta])*
        $vis fn $name(isa: Isa, $($p: $t),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                unsafe fn avx512($($p: $t),*) -> $ret { $body::<Fused>($($p),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($p: $t),*) -> $ret { $body::<Fused>($($p),*) }
                match isa {
                    // SAFETY: `Isa::detect` found the features at run time.
                    Isa::Avx512 => unsafe { avx512($($p),*) },
                    Isa::Avx2 => unsafe { avx2($($p),*) },
                    Isa::Baseline => $body::<Plain>($($p),*),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = isa;
                $body::<Plain>($($p),*)
            }
        }
    };
}

multiversion!(
    /// Per-subject stage log-sum-exp of one subtype for every group (generic code).
    pub(crate) fn subtype_lse_generic(st: &StageInput, groups: &[GroupInput], scratch: &mut [f64], lse: &mut [f64]) => subtype_lse_body
);

/// Per-subject stage log-sum-exp of one subtype for every group.
pub(crate) fn subtype_lse(
    isa: Isa,
    st: &StageInput,
    groups: &[GroupInput],
    scratch: &mut [f64],
    lse: &mut [f64],
) {
    simd_kernel!(isa, subtype_lse(st, groups, scratch, lse));
    subtype_lse_generic(isa, st, groups, scratch, lse)
}
multiversion!(
    /// Stage part of the log-likelihood of one group (generic code).
    pub(crate) fn stage_values_generic(st: &StageInput, g: &GroupInput, out: &mut [f64]) => stage_values_body
);

/// Stage part of the log-likelihood of one group into `out[k][lane]`
/// (`stride x LANES` values; rows `>= n_stages` are scratch).
pub(crate) fn stage_values(isa: Isa, st: &StageInput, g: &GroupInput, out: &mut [f64]) {
    assert!(out.len() >= st.stride * LANES);
    simd_kernel!(isa, stage_values(st, g, out));
    stage_values_generic(isa, st, g, out)
}

multiversion!(
    /// [`stage_exp`] (generic code).
    pub(crate) fn stage_exp_generic(l: &mut [f64], n_stages: usize, r: &mut Lanes) => stage_exp_body
);

/// See `stage_exp_body`.
pub(crate) fn stage_exp(isa: Isa, l: &mut [f64], n_stages: usize, r: &mut Lanes) {
    simd_kernel!(isa, stage_exp(l, n_stages, r));
    stage_exp_generic(isa, l, n_stages, r)
}

/// Checks `posterior_group`'s inputs (one block and reference per fraction, `tmp`
/// and `acc` of the size of all blocks); returns that size.
#[inline(always)]
pub(crate) fn check_posterior_shapes(
    log_f: &[f64],
    blocks: &[&[f64]],
    refs: &[&Lanes],
    n_stages: usize,
    tmp: &[f64],
    acc: &[f64],
) -> usize {
    let size = log_f.len() * n_stages * LANES;
    assert!(blocks.len() == log_f.len() && refs.len() == log_f.len());
    assert!(tmp.len() >= size && acc.len() >= size);
    assert!(blocks.iter().all(|b| b.len() >= n_stages * LANES));
    size
}

multiversion!(
    /// Subtype-stage posteriors of one group under one mixture (generic code).
    pub(crate) fn posterior_group_generic(log_f: &[f64], blocks: &[&[f64]], refs: &[&Lanes], n_stages: usize, tmp: &mut [f64], acc: &mut [f64]) => posterior_group_body
);

/// Subtype-stage posteriors of one group under one mixture (see
/// `posterior_group_body`).
pub(crate) fn posterior_group(
    isa: Isa,
    log_f: &[f64],
    blocks: &[&[f64]],
    refs: &[&Lanes],
    n_stages: usize,
    tmp: &mut [f64],
    acc: &mut [f64],
) {
    simd_kernel!(
        isa,
        posterior_group(log_f, blocks, refs, n_stages, tmp, acc)
    );
    posterior_group_generic(isa, log_f, blocks, refs, n_stages, tmp, acc)
}

multiversion!(
    /// Per-subject mixture over subtypes (generic code).
    pub(crate) fn mixture_generic(log_f: &[f64], lse: &[&[f64]], out: &mut [f64]) => mixture_body
);

/// Below this a subject's mixture sum relative to `sum_obs x^2 / 2` falls back to
/// the maximum-based path (`exp` clamps at `exp(-700)`, so sums this small may have
/// lost precision).
pub(crate) const MIXTURE_FLOOR: f64 = 1e-280;

/// Per subject `log sum_s f_s sum_k exp(l_s[k])` for every group, straight from
/// the stage inputs of every subtype (`sts[s]`): each subtype's stage values are
/// exponentiated relative to the subject's `sum_obs x^2 / 2`, an upper bound of
/// every stage value, so no maximum pass, no per-subtype logarithm and no second
/// exponential per subtype are needed (groups where that reference is too far
/// above every stage take the maximum-based path). Writes `out` (padded subjects)
/// and returns true on CPUs with AVX2; false (nothing written) elsewhere, where
/// the caller takes `subtype_lse` and `mixture`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mixture_direct(
    isa: Isa,
    sts: &[StageInput],
    groups: &[GroupInput],
    f: &[f64],
    log_f: &[f64],
    scratch: &mut [f64],
    out: &mut [f64],
) -> bool {
    assert!(
        !sts.is_empty()
            && f.len() == sts.len()
            && log_f.len() == sts.len()
            && out.len() >= groups.len() * LANES
            && sts
                .iter()
                .all(|st| st.n_biomarkers == sts[0].n_biomarkers
                    && scratch.len() >= st.stride * LANES)
            && groups
                .iter()
                .all(|g| g.x.len() >= sts[0].n_biomarkers * LANES)
    );
    simd_kernel!(isa, mixture_direct(sts, groups, f, log_f, scratch, out) => true);
    let _ = (isa, sts, groups, f, log_f, scratch, out);
    false
}

/// Per-subject mixture over subtypes.
pub(crate) fn mixture(isa: Isa, log_f: &[f64], lse: &[&[f64]], out: &mut [f64]) {
    simd_kernel!(isa, mixture(log_f, lse, out));
    mixture_generic(isa, log_f, lse, out)
}

/// One stage's changes after a move: `(biomarker, d_mu, d_half_mu_sq)`.
pub(crate) struct StageDelta<'a> {
    pub stage: usize,
    pub deltas: &'a [(usize, f64, f64)],
}

/// How a [`SweepOp`] carries the product `G(k) = exp(sum_b T_b(k))` of every
/// changed biomarker's factor to its stage `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SweepKind {
    /// First stage of a run of changed stages: `G = exp(sum_terms x a - obs d)`
    /// (`a`, `d`: the biomarker's `dmu_k`, `dh_k`).
    Begin,
    /// `R = exp(sum_terms x a - obs d)` (`a`, `d`: the biomarker's change of
    /// `dmu`, `dh` from stage `k - 1` to `k`), then `G *= R`: where a knot breaks a
    /// curve, or a biomarker's change starts or ends.
    Direct,
    /// `rho = prod_terms (1 + obs c)` (`c` in the term's `a`), `R *= rho`, then
    /// `G *= R`: every changed biomarker's curves are linear around `k`, so the `x`
    /// part of each slope is unchanged and its `mu^2` part moved by a constant.
    Linked,
    /// `R *= rho` with the previous op's `rho`, then `G *= R` (no terms): the same
    /// biomarkers as the previous `Linked` or `Repeat` op, still inside the same
    /// linear pieces, so the same constants.
    Repeat,
}

/// One stage of a [`Sweep`]: terms `terms.0..terms.1` of the sweep, and the slot of
/// the stage's new `e` (`u32::MAX`: the stage is carried but unchanged).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepOp {
    pub kind: SweepKind,
    pub k: u32,
    pub slot: u32,
    pub terms: (u32, u32),
}

/// One biomarker's part of a [`SweepOp`]: `(b, a, d)` (for `Linked`, `a` is the
/// factor's `c` and `d` is unused).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepTerm {
    pub b: u32,
    pub a: f64,
    pub d: f64,
}

/// A sequence move of one subtype as one pass over its changed stages, all
/// changed biomarkers at once (one exponential per stage where some curve breaks,
/// instead of one per biomarker there), checked once so the per-group kernel only
/// checks the group's own slices.
pub(crate) struct Sweep<'a> {
    ops: &'a [SweepOp],
    terms: &'a [SweepTerm],
    stages: &'a [usize],
    /// The other stages, increasing.
    unchanged: &'a [usize],
    n_stages: usize,
    n_biomarkers: usize,
}

impl<'a> Sweep<'a> {
    /// Panics unless the ops' stages increase below `n_stages`, each run starts
    /// with `Begin` followed by `Direct`, the terms lie in range with biomarkers
    /// below `n_biomarkers`, the slots are exactly those of `stages`
    /// (increasing), in order, and `unchanged` holds the other stages: what the
    /// kernel's memory accesses rely on.
    pub(crate) fn new(
        ops: &'a [SweepOp],
        terms: &'a [SweepTerm],
        stages: &'a [usize],
        unchanged: &'a [usize],
        n_stages: usize,
        n_biomarkers: usize,
    ) -> Self {
        assert!(is_complement(stages.iter().copied(), unchanged, n_stages));
        assert!(ops.windows(2).all(|w| w[0].k < w[1].k));
        assert!(ops.last().is_none_or(|o| (o.k as usize) < n_stages));
        assert!(ops.first().is_none_or(|o| o.kind == SweepKind::Begin));
        assert!(ops.windows(2).all(|w| w[0].kind != SweepKind::Begin
            || !matches!(w[1].kind, SweepKind::Linked | SweepKind::Repeat)));
        // `Repeat` reuses the factor of the `Linked` op before it.
        assert!(ops.first().is_none_or(|o| o.kind != SweepKind::Repeat));
        assert!(ops.windows(2).all(|w| w[1].kind != SweepKind::Repeat
            || matches!(w[0].kind, SweepKind::Linked | SweepKind::Repeat)));
        assert!(ops.iter().all(|o| {
            o.terms.0 <= o.terms.1
                && (o.terms.1 as usize) <= terms.len()
                && terms[o.terms.0 as usize..o.terms.1 as usize]
                    .iter()
                    .all(|t| (t.b as usize) < n_biomarkers)
        }));
        assert!(stages.windows(2).all(|w| w[0] < w[1]));
        let mut stored = ops.iter().filter(|o| o.slot != u32::MAX);
        assert!(stages.iter().enumerate().all(|(i, &k)| stored
            .next()
            .is_some_and(|o| o.slot as usize == i && o.k as usize == k)));
        assert!(stored.next().is_none());
        Self {
            ops,
            terms,
            stages,
            unchanged,
            n_stages,
            n_biomarkers,
        }
    }
    pub(crate) fn ops(&self) -> &[SweepOp] {
        self.ops
    }
    pub(crate) fn terms(&self) -> &[SweepTerm] {
        self.terms
    }
    pub(crate) fn n_stages(&self) -> usize {
        self.n_stages
    }
    pub(crate) fn n_biomarkers(&self) -> usize {
        self.n_biomarkers
    }
    /// How many stages change.
    pub(crate) fn n_changed(&self) -> usize {
        self.stages.len()
    }
    pub(crate) fn unchanged(&self) -> &[usize] {
        self.unchanged
    }
}

multiversion!(
    /// Proposal of one group after a sequence move (see `group_sweep_body`).
    pub(crate) fn group_sweep_generic(sweep: &Sweep, x: &[f64], obs: &[f64], e: &[f64], new_e: &mut [f64], new_p: &mut Lanes) => group_sweep_body
);

/// Proposal of the groups `groups` after a sequence move, one pass over the
/// changed stages each (see `group_sweep_body`): one call for a run of groups,
/// each group's values at its offset in the whole arrays (`x`, `obs`: `[g][b][lane]`;
/// `e`: `[g][k][lane]`; `new_e`: `[g][i][lane]` for the `i`-th changed stage;
/// `new_p`: `[g][lane]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_sweeps(
    isa: Isa,
    sweep: &Sweep,
    x: &[f64],
    obs: &[f64],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut [f64],
    groups: std::ops::Range<usize>,
) {
    let (nb, ns, nc) = (sweep.n_biomarkers, sweep.n_stages, sweep.stages.len());
    let end = groups.end;
    assert!(
        x.len() >= end * nb * LANES
            && obs.len() >= end * nb * LANES
            && e.len() >= end * ns * LANES
            && new_e.len() >= end * nc * LANES
            && new_p.len() >= end * LANES
    );
    // `sweep` was checked when built, the arrays above for every group below `end`.
    simd_kernel!(isa, group_sweeps(sweep, x, obs, e, new_e, new_p, groups));
    for g in groups {
        let p: &mut Lanes = (&mut new_p[g * LANES..(g + 1) * LANES]).try_into().unwrap();
        group_sweep_generic(
            isa,
            sweep,
            &x[g * nb * LANES..(g + 1) * nb * LANES],
            &obs[g * nb * LANES..(g + 1) * nb * LANES],
            &e[g * ns * LANES..(g + 1) * ns * LANES],
            &mut new_e[g * nc * LANES..(g + 1) * nc * LANES],
            p,
        );
    }
}

/// Copies the `i`-th `LANES` values of `from` into stage `stages[i]` of `to` (one
/// group's block) and returns whether one of them is below `floor` or NaN. Vector
/// moves per stage, where slice indexing and length checks per stage cost about
/// three times as many instructions; the check rides on the copy (a compare and an
/// or per vector), so proposals that are rejected never pay for it.
pub(crate) fn scatter_stages(
    isa: Isa,
    to: &mut [f64],
    from: &[f64],
    stages: &[usize],
    floor: f64,
) -> bool {
    let n_to = to.len() / LANES;
    assert!(from.len() >= stages.len() * LANES && stages.iter().all(|&k| k < n_to));
    simd_kernel!(isa, scatter_stages(to, from, stages, floor));
    let _ = isa;
    let mut low = [false; LANES];
    for (i, &k) in stages.iter().enumerate() {
        // SAFETY: i < stages.len() and k < n_to, checked above.
        let (src, dst) = unsafe {
            (
                &*(from.as_ptr().add(i * LANES) as *const Lanes),
                &mut *(to.as_mut_ptr().add(k * LANES) as *mut Lanes),
            )
        };
        dst.copy_from_slice(src);
        for l in 0..LANES {
            // Below the floor, or NaN.
            low[l] |= src[l] < floor || src[l].is_nan();
        }
    }
    low.contains(&true)
}

multiversion!(
    /// Full per-group state of one subtype (see `group_state_body`).
    pub(crate) fn group_state_generic(st: &StageInput, g: &GroupInput, reference: &Lanes, l: &mut [f64], e: &mut [f64], p: &mut Lanes) => group_state_body
);

/// Full per-group state of one subtype: `l[k][lane]` (`stride x LANES`), `e =
/// exp(l - reference)` (`n_stages x LANES`) and `p = sum_k e`.
pub(crate) fn group_state(
    isa: Isa,
    st: &StageInput,
    g: &GroupInput,
    reference: &Lanes,
    l: &mut [f64],
    e: &mut [f64],
    p: &mut Lanes,
) {
    assert!(l.len() >= st.stride * LANES && e.len() >= st.n_stages * LANES);
    // The stage block checks its own sizes.
    simd_kernel!(isa, group_state(st, g, reference, l, e, p));
    group_state_generic(isa, st, g, reference, l, e, p)
}
multiversion!(
    /// Proposal of one group after a sequence move (see `group_delta_body`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn group_delta_generic(x: &[f64], obs: &[f64], changes: &[StageDelta], unchanged: &[usize], reference: &Lanes, l: &[f64], e: &[f64], new_l: &mut [f64], new_e: &mut [f64], new_p: &mut Lanes) => group_delta_body
);

/// Proposal of one group after a sequence move (see `group_delta_body`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_delta(
    isa: Isa,
    x: &[f64],
    obs: &[f64],
    set: &ChangeSet,
    reference: &Lanes,
    l: &[f64],
    e: &[f64],
    new_l: &mut [f64],
    new_e: &mut [f64],
    new_p: &mut Lanes,
) {
    set.check(x, obs, e, new_e);
    let (changes, unchanged) = (set.changes(), set.unchanged);
    simd_kernel!(
        isa,
        group_delta(x, obs, changes, unchanged, reference, l, e, new_l, new_e, new_p)
    );
    group_delta_generic(
        isa, x, obs, changes, unchanged, reference, l, e, new_l, new_e, new_p,
    )
}

multiversion!(
    /// See `group_factors_body`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn group_factors_generic(x: &[f64], obs: &[f64], changes: &[StageDelta], unchanged: &[usize], e: &[f64], new_e: &mut [f64], new_p: &mut Lanes) => group_factors_body
);

/// Whether `unchanged` (increasing) holds exactly the stages below `n_stages` that
/// `changed` (increasing) does not.
fn is_complement(
    changed: impl Iterator<Item = usize>,
    unchanged: &[usize],
    n_stages: usize,
) -> bool {
    let mut changed = changed.peekable();
    let mut rest = unchanged.iter().peekable();
    for k in 0..n_stages {
        match (changed.peek() == Some(&k), rest.peek() == Some(&&k)) {
            (true, false) => {
                changed.next();
            }
            (false, true) => {
                rest.next();
            }
            _ => return false,
        }
    }
    changed.next().is_none() && rest.next().is_none()
}

/// Per-stage changes of one subtype's move, checked once (stages increasing and
/// in range, biomarkers in range); the per-group kernels then only check the
/// group's own slices.
pub(crate) struct ChangeSet<'a> {
    changes: Vec<StageDelta<'a>>,
    /// The other stages, increasing.
    unchanged: &'a [usize],
    n_stages: usize,
    n_biomarkers: usize,
}

impl<'a> ChangeSet<'a> {
    /// Panics unless the stages increase below `n_stages`, `unchanged` holds
    /// exactly the other stages (increasing), and every biomarker is below
    /// `n_biomarkers`.
    pub(crate) fn new(
        changes: Vec<StageDelta<'a>>,
        unchanged: &'a [usize],
        n_stages: usize,
        n_biomarkers: usize,
    ) -> Self {
        assert!(
            changes.windows(2).all(|w| w[0].stage < w[1].stage)
                && changes
                    .iter()
                    .all(|c| { c.stage < n_stages && c.deltas.iter().all(|d| d.0 < n_biomarkers) })
        );
        assert!(is_complement(
            changes.iter().map(|c| c.stage),
            unchanged,
            n_stages
        ));
        Self {
            changes,
            unchanged,
            n_stages,
            n_biomarkers,
        }
    }
    pub(crate) fn changes(&self) -> &[StageDelta<'a>] {
        &self.changes
    }
    /// Checks one group's slices against this set.
    fn check(&self, x: &[f64], obs: &[f64], e: &[f64], new_e: &[f64]) {
        assert!(
            x.len() >= self.n_biomarkers * LANES
                && obs.len() >= self.n_biomarkers * LANES
                && e.len() == self.n_stages * LANES
                && new_e.len() >= self.changes.len() * LANES
        );
    }
}

/// Proposal of one group after a sequence move, one exponential per changed stage
/// (see `group_factors_body`).
pub(crate) fn group_factors(
    isa: Isa,
    set: &ChangeSet,
    x: &[f64],
    obs: &[f64],
    e: &[f64],
    new_e: &mut [f64],
    new_p: &mut Lanes,
) {
    set.check(x, obs, e, new_e);
    let changes = set.changes();
    // `set` was checked when built, the group's slices above.
    simd_kernel!(
        isa,
        group_factors(x, obs, changes, set.unchanged, e, new_e, new_p)
    );
    group_factors_generic(isa, x, obs, changes, set.unchanged, e, new_e, new_p)
}

/// Bound of `|ln(sum_s f_s p_s)|` (relative to the reference) inside which the
/// incremental state is trusted.
pub(crate) const TOTAL_RANGE: f64 = 300.0;

/// Subjects per partial sum of the incremental total (a multiple of [`LANES`]).
/// The total is the compensated sum of these block partials in order, so a chain
/// split into shards on block boundaries adds up to the same bits as one state.
pub const TOTAL_BLOCK: usize = 64;

/// Per block of [`TOTAL_BLOCK`] subjects, lane `j` holding the block's subjects
/// `4 i + j`: Neumaier's compensated sum of `offset` over the first `n` subjects
/// (the others add nothing), as `[sum; 4]` then `[compensation; 4]`. What
/// [`mixture_total`] adds to each block.
pub(crate) fn offset_blocks(offset: &[f64], n: usize) -> Vec<[f64; 8]> {
    let padded = n.div_ceil(LANES) * LANES;
    assert!(offset.len() >= padded);
    (0..padded)
        .step_by(TOTAL_BLOCK)
        .map(|start| {
            let end = (start + TOTAL_BLOCK).min(padded);
            let mut out = [0.0; 8];
            for i in (start..end).step_by(4) {
                for j in 0..4 {
                    let v = if i + j < n { offset[i + j] } else { 0.0 };
                    let (sum, comp) = (out[j], out[4 + j]);
                    let t = sum + v;
                    out[4 + j] = comp
                        + if sum.abs() >= v.abs() {
                            (sum - t) + v
                        } else {
                            (v - t) + sum
                        };
                    out[j] = t;
                }
            }
            out
        })
        .collect()
}

/// One block of [`mixture_total`] from its lanes' sums of biased binary exponents
/// (`count` values each), the logarithms of their mantissa products and the
/// block's offsets ([`offset_blocks`]): the compensated sum over lanes of
/// `e ln 2`, `ln(product)` and the offsets' sum and compensation.
pub(crate) fn block_total(
    expo: [i64; 4],
    ln_prod: [f64; 4],
    count: usize,
    offset: &[f64; 8],
) -> f64 {
    // `ln 2` split so that `e * LN2_HI` is exact for `|e| < 2^32`.
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    #[allow(clippy::excessive_precision)]
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let mut parts = [0.0; 16];
    for j in 0..4 {
        let e = (expo[j] - 1023 * count as i64) as f64;
        parts[4 * j] = e * LN2_HI;
        parts[4 * j + 1] = e.mul_add(LN2_LO, ln_prod[j]);
        parts[4 * j + 2] = offset[j];
        parts[4 * j + 3] = offset[4 + j];
    }
    crate::likelihood::neumaier_sum(&parts)
}

// The mantissa products of a block stay below 2^(TOTAL_BLOCK / 4) (see below).
const _: () = assert!(TOTAL_BLOCK.is_multiple_of(LANES) && TOTAL_BLOCK / 4 <= 512);

/// Per block of [`TOTAL_BLOCK`] of the first `n` subjects, the compensated sum of
/// `ln(sum_s f_s p_s[m]) + offset[m]` into `blocks`, and whether every sum lies in
/// `(exp(-TOTAL_RANGE), exp(TOTAL_RANGE))`, the range where the incremental state is
/// exact (see `incremental.rs`). `p` and `offset` hold padded subjects.
///
/// One logarithm per 4 lanes of a block, not one per subject: each lane keeps the
/// sum of its subjects' binary exponents (exact, in integers) and the product of
/// their mantissas (each in `[1, 2)`, so 16 of them stay below `2^16`; rounding
/// adds at most 15 units in the last place, 2e-15 in the logarithm, about what
/// the 16 logarithms and additions it replaces lost). The block's value is the
/// compensated sum over lanes of `e ln 2`, `ln(product)` and the offsets' sum
/// (`offsets`, from [`offset_blocks`]: offsets only change when a state is
/// rebuilt).
pub(crate) fn mixture_total(
    isa: Isa,
    f: &[f64],
    p: &[&[f64]],
    offsets: &[[f64; 8]],
    n: usize,
    blocks: &mut Vec<f64>,
) -> bool {
    blocks.clear();
    let padded = n.div_ceil(LANES) * LANES;
    assert!(
        offsets.len() == padded.div_ceil(TOTAL_BLOCK)
            && p.iter().all(|ps| ps.len() >= padded)
            && f.len() >= p.len()
    );
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        // SAFETY: `Isa::detect` found AVX2 and FMA (AVX-512 CPUs have both); sizes
        // checked above.
        return unsafe { avx2::mixture_total(f, p, offsets, n, blocks) };
    }
    let _ = isa;
    let (low, high) = ((-TOTAL_RANGE).exp(), TOTAL_RANGE.exp());
    const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
    const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
    let mut ok = true;
    let mut start = 0;
    while start < padded {
        let end = (start + TOTAL_BLOCK).min(padded);
        let mut prod = [1.0f64; 4];
        let mut expo = [0i64; 4];
        for i in (start..end).step_by(4) {
            for j in 0..4 {
                let m = i + j;
                let mut s = 0.0;
                for (fs, ps) in f.iter().zip(p) {
                    // Not `mul_add`: without FMA it is a library call.
                    s += fs * ps[m];
                }
                // Padding subjects count as 1 and pass the check.
                let valid = m < n;
                let inside = s > low && s < high;
                ok &= inside || !valid;
                let s = if valid && inside { s } else { 1.0 };
                let bits = s.to_bits();
                expo[j] += (bits >> 52) as i64;
                prod[j] *= f64::from_bits((bits & MANTISSA) | ONE_BITS);
            }
        }
        blocks.push(block_total(
            expo,
            prod.map(f64::ln),
            (end - start) / 4,
            &offsets[start / TOTAL_BLOCK],
        ));
        start = end;
    }
    ok
}

/// Stages per block of the screening kernels (their accumulators stay in registers).
pub(crate) const SCREEN_BLOCK: usize = 8;

/// `v[i] = ln(v[i]) + add[i]` (`avx2::ln_plus`).
pub(crate) fn ln_plus(v: &mut [f64], add: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a `Screen` exists only where `Isa::detect` found AVX2 and FMA.
    unsafe {
        avx2::ln_plus(v, add)
    };
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (v, add);
        unreachable!("a screen exists only on x86_64 with AVX2");
    }
}

/// One candidate's screened score (`avx2::screen_candidate`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn screen_candidate(
    avx512: bool,
    x: &[f32],
    obs: &[f32],
    mu: &[f32],
    stride: usize,
    n_stages: usize,
    buf: &mut [f32],
    others: &[f64],
    h: &[f64],
    ln_f: f64,
    n_subjects: usize,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a `Screen` exists only where `Isa::detect` found AVX2 and FMA, and
    // `avx512` only where it found AVX-512 (F and DQ); `buf` holds two blocks.
    unsafe {
        if avx512 {
            avx512::screen_candidate(
                x, obs, mu, stride, n_stages, buf, others, h, ln_f, n_subjects,
            )
        } else {
            avx2::screen_candidate(
                x, obs, mu, stride, n_stages, buf, others, h, ln_f, n_subjects,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (
            avx512, x, obs, mu, stride, n_stages, buf, others, h, ln_f, n_subjects,
        );
        unreachable!("a screen exists only on x86_64 with AVX2");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Per-subject `ln(sum_s f_s p_s) + offset`, summed block by block the plain
    /// way (one `ln` per subject), against `mixture_total`'s exponent-and-mantissa
    /// products, on every instruction set this CPU has; padding lanes hold NaN and
    /// must change nothing.
    #[test]
    fn mixture_total_matches_one_log_per_subject() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        for &(n, n_sub) in &[
            (1usize, 1usize),
            (7, 3),
            (8, 2),
            (63, 3),
            (64, 1),
            (65, 4),
            (1001, 3),
        ] {
            let padded = n.div_ceil(LANES) * LANES;
            let mut f: Vec<f64> = (0..n_sub).map(|_| rng.gen_range(0.05..1.0)).collect();
            let total: f64 = f.iter().sum();
            f.iter_mut().for_each(|v| *v /= total);
            let p: Vec<Vec<f64>> = (0..n_sub)
                .map(|_| {
                    (0..padded)
                        .map(|m| {
                            if m < n {
                                rng.gen_range(-250.0f64..250.0).exp()
                            } else {
                                f64::NAN
                            }
                        })
                        .collect()
                })
                .collect();
            let offset: Vec<f64> = (0..padded).map(|_| rng.gen_range(-60.0..0.0)).collect();
            let expected: Vec<f64> = (0..padded)
                .step_by(TOTAL_BLOCK)
                .map(|start| {
                    let values: Vec<f64> = (start..(start + TOTAL_BLOCK).min(n))
                        .map(|m| {
                            let s: f64 = f.iter().zip(&p).map(|(fs, ps)| fs * ps[m]).sum();
                            s.ln() + offset[m]
                        })
                        .collect();
                    crate::likelihood::neumaier_sum(&values)
                })
                .collect();
            let refs: Vec<&[f64]> = p.iter().map(|v| v.as_slice()).collect();
            let offsets = offset_blocks(&offset, n);
            for isa in [Isa::Baseline, Isa::detect()] {
                let mut blocks = Vec::new();
                assert!(mixture_total(isa, &f, &refs, &offsets, n, &mut blocks));
                assert_eq!(blocks.len(), expected.len());
                for (b, e) in blocks.iter().zip(&expected) {
                    // 64 subjects of |ln| up to 250: a few units in the last place
                    // of the block's terms.
                    assert!(
                        (b - e).abs() <= 1e-12 * (1.0 + e.abs()),
                        "{isa:?} n={n}: {b} vs {e}"
                    );
                }
            }
        }
    }

    /// A subject whose mixture sum leaves `(exp(-300), exp(300))` is reported; a
    /// padding lane never is.
    #[test]
    fn mixture_total_reports_sums_out_of_range() {
        let n: usize = 13;
        let padded = n.div_ceil(LANES) * LANES;
        let offsets = offset_blocks(&vec![0.0; padded], n);
        for (at, value) in [(0, 1e-140), (12, 1e140), (5, 0.0), (7, f64::NAN)] {
            let mut p = vec![1.0; padded];
            p[at] = value;
            for m in n..padded {
                p[m] = 0.0;
            }
            for isa in [Isa::Baseline, Isa::detect()] {
                let mut blocks = Vec::new();
                assert!(
                    !mixture_total(isa, &[1.0], &[&p], &offsets, n, &mut blocks),
                    "{isa:?} {value}"
                );
            }
        }
        let p = vec![1e-120; padded];
        for isa in [Isa::Baseline, Isa::detect()] {
            let mut blocks = Vec::new();
            assert!(mixture_total(isa, &[1.0], &[&p], &offsets, n, &mut blocks));
            assert!(
                (blocks[0] - 13.0 * 1e-120f64.ln()).abs() < 1e-10,
                "{}",
                blocks[0]
            );
        }
    }
}
