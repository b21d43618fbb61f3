//! Screening of chain proposals in single precision: most Metropolis proposals are
//! rejected, and a rejection only needs to know that the proposal's
//! log-likelihood is below the chain's threshold, not its value.
//!
//! The screen keeps a single-precision copy of the incremental state (`e`, the
//! stage sums `p`; values below [`FLUSH`] flushed to 0) and evaluates a proposal
//! with the same sweep as the double-precision kernels (`kernels::Sweep`: the
//! factor `G` carried from stage to stage, one exponential where a curve breaks),
//! 16 subjects per vector, into an upper bound `hi` of the log-likelihood that
//! the double-precision path would compute. When the chain's decision at `hi` is
//! a rejection, the proposal is certainly rejected and the double-precision work
//! is skipped; otherwise the proposal is evaluated exactly as before. So a chain's
//! samples are the same to the bit with or without the screen.
//!
//! The bound, per subject and relative, to first order in `u = 2^-24`
//! (`subtype_bound` follows the sweep's operations):
//! - `e` rounded to f32: `u`; a flushed value (below [`FLUSH`]) times the largest
//!   factor is covered by an absolute slack `2 N FLUSH max(1, G)` added to each
//!   stage sum (`N` stages; `G <= exp(MAX_BOUND)` on the plain path), and a
//!   product flushed to zero by the kernel (it runs with flush-to-zero, as
//!   subnormal arithmetic is slow) by `2 N TINY`;
//! - a factor's exponent `t = sum x a - obs d` over `n` terms, inputs rounded to
//!   f32 and `2n` roundings: within `(2n + 3) u (xmax sum|a| + sum|d|)`; the
//!   exponential adds [`EXP_ERR`];
//! - `1 + obs c` of a linked step: `u (1 + |c| / (1 + c))`; each multiplication `u`;
//! - `G` at a stage carries the errors of every factor multiplied into it, `R`
//!   those of its own; the stage sum of positive terms adds `N u`; the mixture
//!   over `S` subtypes `(S + 1) u`; the logarithm's mantissa products `u`.
//!
//! Every factor stays within `exp(±2 B)`, `B = xmax sum_ramps max|dmu| + max|dh|`,
//! so on pairs of groups with `B` up to [`MAX_BOUND`] every factor is a normal
//! f32 with full relative precision; other pairs take a checked sweep that
//! verifies this lane by lane. Non-finite or out-of-range results decline the
//! screen (the proposal is then evaluated exactly). The total bound is checked by
//! `tests::screen_bounds_the_exact_loglike` against exact evaluations, extreme
//! values included.

use crate::kernels::{Isa, SweepKind, SweepOp, SweepTerm, LANES};
use crate::likelihood::Likelihood;

/// Subjects per screening vector: two lane groups.
pub(crate) const PAIR: usize = 2 * LANES;
/// Unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Values of the double-precision state below this are 0 in the screen's copy
/// (kept values are normal f32 numbers).
const FLUSH: f32 = 1e-30;
/// Largest f32 value the kernel may flush to 0 (it runs with flush-to-zero and
/// denormals-are-zero: subnormal arithmetic is slow on many CPUs).
const TINY: f32 = f32::MIN_POSITIVE;
/// Largest `B` (bound of `|log G|`) a screened proposal may have.
const MAX_BOUND: f64 = 40.0;
/// Bound on the relative error of [`exp_f32`] (measured below 3 u over
/// `[-87, 87]` by `tests::exp_f32_is_accurate`, which fails above half of this).
const EXP_ERR: f64 = 8.0 * U;
/// Largest first-order relative error per subject the screen accepts to work
/// with (far below it, the first-order terms dominate).
const MAX_REL: f64 = 1e-3;

/// One term of a screened sweep op, in single precision.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Term32 {
    b: u32,
    a: f32,
    d: f32,
}

/// A subtype's part of a proposal, as the double-precision path describes it.
pub(crate) struct SubtypeMove<'a> {
    pub ops: &'a [SweepOp],
    pub terms: &'a [SweepTerm],
    pub unchanged: &'a [usize],
    /// Sums over the ramps of `max |dmu|` and `max |dh|`.
    pub bound_a: f64,
    pub bound_d: f64,
}

/// Single-precision copy of an incremental state (see the module notes).
#[derive(Debug, Clone)]
pub(crate) struct ChainScreen {
    avx512: bool,
    n_biomarkers: usize,
    n_stages: usize,
    n_subjects: usize,
    pairs: usize,
    /// `[pair][b][16]` (scaled values; 0 where missing or padding).
    x: Vec<f32>,
    obs: Vec<f32>,
    /// Per subtype `[pair][k][16]` and `[pair][16]`.
    e: Vec<Vec<f32>>,
    p: Vec<Vec<f32>>,
    /// `sum_g (real lanes of g) xmax_g` and `max_g xmax_g`.
    x_weight: f64,
    xmax: f64,
    pair_xmax: Vec<f64>,
    /// Scratch: the fractions in single precision.
    f32s: Vec<f32>,
    /// Scratch: per subtype, single-precision terms, unchanged stages and the
    /// bounded stage sums `[pair][16]`.
    terms: Vec<Vec<Term32>>,
    unchanged: Vec<Vec<u32>>,
    sums: Vec<Vec<f32>>,
    /// Whether screening pays (see [`Self::record`]).
    window: u32,
    window_rejected: u32,
    window_seconds: f64,
    window_timed: u32,
    tick: u32,
    /// Running mean of an exact evaluation's time.
    exact_seconds: f64,
    pause: u32,
    /// Windows in a row that did not pay (up to 4: pauses of up to 16 PAUSE).
    backoff: u32,
    /// The copy is not current (see [`Self::is_stale`]).
    stale: bool,
    /// Screen every proposal, paying or not ([`crate::incremental::Screening`]).
    pub(crate) always: bool,
}

/// Screened proposals per judging window of [`ChainScreen::record`], and
/// proposals evaluated exactly after a window that found the screen not paying.
const WINDOW: u32 = 128;
const PAUSE: u32 = 2048;

impl ChainScreen {
    /// The screen of `lik` for `n_subtypes` subtypes; `None` where the CPU has no
    /// AVX2 (the chain then evaluates every proposal exactly), or where
    /// `SUSTAIN_CHAIN_SCREEN=off` is set (for comparisons;
    /// `SUSTAIN_CHAIN_SCREEN=always` screens every proposal, paying or not).
    pub(crate) fn new(lik: &Likelihood, n_subtypes: usize) -> Option<Self> {
        if !cfg!(target_arch = "x86_64")
            || !matches!(lik.isa(), Isa::Avx2 | Isa::Avx512)
            || env_mode() == Some(false)
        {
            return None;
        }
        let (nb, ns) = (lik.events().n_biomarkers(), lik.events().n_stages());
        let ng = lik.n_groups();
        let pairs = ng.div_ceil(2);
        let (x64, obs64) = lik.all_group_arrays();
        let mut x = vec![0.0f32; pairs * nb * PAIR];
        let mut obs = vec![0.0f32; pairs * nb * PAIR];
        for g in 0..ng {
            for b in 0..nb {
                for lane in 0..LANES {
                    let at = pair_index(g, b, lane, nb);
                    x[at] = x64[(g * nb + b) * LANES + lane] as f32;
                    obs[at] = obs64[(g * nb + b) * LANES + lane] as f32;
                }
            }
        }
        let n = lik.n_subjects();
        let xm = lik.group_xmax();
        let x_weight = (0..ng)
            .map(|g| LANES.min(n - g * LANES) as f64 * xm[g])
            .sum();
        let xmax = xm.iter().fold(0.0f64, |m, &v| m.max(v));
        let pair_xmax = (0..pairs)
            .map(|q| xm[2 * q].max(xm.get(2 * q + 1).copied().unwrap_or(0.0)))
            .collect();
        Some(Self {
            avx512: lik.isa() == Isa::Avx512,
            n_biomarkers: nb,
            n_stages: ns,
            n_subjects: n,
            pairs,
            x,
            obs,
            e: vec![vec![0.0; pairs * ns * PAIR]; n_subtypes],
            p: vec![vec![0.0; pairs * PAIR]; n_subtypes],
            x_weight,
            xmax,
            pair_xmax,
            f32s: Vec::new(),
            terms: vec![Vec::new(); n_subtypes],
            unchanged: vec![Vec::new(); n_subtypes],
            sums: vec![vec![0.0; pairs * PAIR]; n_subtypes],
            window: 0,
            window_rejected: 0,
            window_seconds: 0.0,
            window_timed: 0,
            tick: 0,
            exact_seconds: 0.0,
            pause: 0,
            backoff: 0,
            stale: true,
            always: env_mode() == Some(true),
        })
    }

    /// Number of subtypes of the state it copies.
    pub(crate) fn n_subtypes(&self) -> usize {
        self.e.len()
    }

    /// Whether the copy fell behind the state (not kept while the screen
    /// pauses): it must be loaded again before the next screened proposal.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale
    }

    /// Copies subtype `s`'s whole state (`e`: `[g][k][lane]`, `p`: `[g][lane]`).
    pub(crate) fn load(&mut self, s: usize, e: &[f64], p: &[f64]) {
        if s + 1 == self.e.len() {
            self.stale = false;
        }
        let ng = p.len() / LANES;
        for g in 0..ng {
            self.load_group(s, e, g);
        }
        self.load_sums(s, p);
    }

    /// Copies stages `stages` of group `g` of subtype `s` from `e_group`, that
    /// group's block of stage values (after an accepted proposal, while the
    /// block is in cache; [`Self::finish_update`] follows).
    pub(crate) fn update_rows(&mut self, s: usize, g: usize, e_group: &[f64], stages: &[usize]) {
        let ns = self.n_stages;
        assert!(e_group.len() >= ns * LANES && stages.iter().all(|&k| k < ns));
        let (pair, half) = (g / 2, (g % 2) * LANES);
        let dst = &mut self.e[s];
        assert!(dst.len() >= (pair + 1) * ns * PAIR);
        // SAFETY: rows of `e_group` and of the pair's block in range (asserted above).
        unsafe {
            flush_rows(
                e_group.as_ptr(),
                dst.as_mut_ptr().add(pair * ns * PAIR + half),
                stages,
            )
        };
    }

    /// Whether this copy holds, to the bit, what a fresh load of the state
    /// `e`, `p` (one entry per subtype) would (tests).
    #[cfg(test)]
    pub(crate) fn equals_fresh_load(&self, e: &[Vec<f64>], p: &[Vec<f64>]) -> bool {
        let mut fresh = self.clone();
        for (s, (e, p)) in e.iter().zip(p).enumerate() {
            fresh.load(s, e, p);
        }
        let bits = |v: &[Vec<f32>]| -> Vec<Vec<u32>> {
            v.iter()
                .map(|row| row.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        bits(&self.e) == bits(&fresh.e) && bits(&self.p) == bits(&fresh.p)
    }

    /// Ends the update of subtype `s` after an accepted proposal: copies the
    /// whole blocks of `groups` (rebuilt ones) and every stage sum.
    pub(crate) fn finish_update(&mut self, s: usize, e: &[f64], p: &[f64], groups: &[usize]) {
        for &g in groups {
            self.load_group(s, e, g);
        }
        self.load_sums(s, p);
    }

    fn load_group(&mut self, s: usize, e: &[f64], g: usize) {
        let ns = self.n_stages;
        let (pair, half) = (g / 2, (g % 2) * LANES);
        let from = &e[g * ns * LANES..(g + 1) * ns * LANES];
        let to = &mut self.e[s][pair * ns * PAIR..(pair + 1) * ns * PAIR];
        for k in 0..ns {
            for lane in 0..LANES {
                to[k * PAIR + half + lane] = flushed(from[k * LANES + lane]);
            }
        }
    }

    fn load_sums(&mut self, s: usize, p: &[f64]) {
        let ng = p.len() / LANES;
        let dst = &mut self.p[s];
        assert!(dst.len() >= ng.div_ceil(2) * PAIR);
        // Each group's 8 sums are one row of 8: the pair layout's half.
        let rows = [0];
        for g in 0..ng {
            let (pair, half) = (g / 2, (g % 2) * LANES);
            // SAFETY: in range (asserted above).
            unsafe {
                flush_rows(
                    p.as_ptr().add(g * LANES),
                    dst.as_mut_ptr().add(pair * PAIR + half),
                    &rows,
                )
            };
        }
    }

    /// Whether to screen the next proposal. The screen pays where its time per
    /// proposal is below the exact evaluation's time times the share of
    /// proposals it rejects (a chain that accepts most proposals, or data where
    /// the single-precision sweep is not much cheaper, gains nothing): after each
    /// window of [`WINDOW`] screened proposals that judged it not paying, the next
    /// [`PAUSE`] proposals (doubling for each such window in a row, up to 16
    /// times) are evaluated exactly, then it tries again. Timing only chooses the
    /// path; the chain's samples are the same either way.
    pub(crate) fn wanted(&mut self) -> bool {
        if self.always {
            return true;
        }
        if self.pause > 0 {
            self.pause -= 1;
            return false;
        }
        true
    }

    /// Whether to time this call (one in four).
    pub(crate) fn sample(&mut self) -> bool {
        self.tick = self.tick.wrapping_add(1);
        self.tick.is_multiple_of(4)
    }

    /// Counts a screened proposal (`rejected`: the screen proved its rejection)
    /// and the time the screen took, where it was timed.
    pub(crate) fn record(&mut self, rejected: bool, seconds: Option<f64>) {
        self.window += 1;
        self.window_rejected += u32::from(rejected);
        if let Some(t) = seconds {
            self.window_seconds += t;
            self.window_timed += 1;
        }
        if self.window == WINDOW {
            let screen = self.window_seconds / f64::from(self.window_timed.max(1));
            let share = f64::from(self.window_rejected) / f64::from(WINDOW);
            // (No exact evaluation timed yet: keep screening.)
            if self.exact_seconds > 0.0 && screen >= share * self.exact_seconds {
                // Each window in a row that does not pay doubles the pause (a
                // chain that accepts most proposals stops trying early); the copy
                // is not kept meanwhile.
                self.pause = PAUSE << self.backoff;
                self.backoff = (self.backoff + 1).min(4);
                self.stale = true;
            } else {
                self.backoff = 0;
            }

            self.window = 0;
            self.window_rejected = 0;
            self.window_seconds = 0.0;
            self.window_timed = 0;
        }
    }

    /// The time of an exact evaluation (a running mean).
    pub(crate) fn record_exact(&mut self, seconds: f64) {
        self.exact_seconds = if self.exact_seconds == 0.0 {
            seconds
        } else {
            0.95 * self.exact_seconds + 0.05 * seconds
        };
    }

    /// An upper bound of the log-likelihood of the proposal `moves` (one per
    /// subtype, `None` where the subtype's sequence is unchanged) with
    /// `fractions`, the state's offsets summing to `offset_sum`; `None` where the
    /// screen cannot bound it (the caller evaluates it exactly).
    pub(crate) fn upper_bound(
        &mut self,
        moves: &[Option<SubtypeMove>],
        fractions: &[f64],
        offset_sum: f64,
    ) -> Option<f64> {
        let n_sub = moves.len();
        // Per-subject relative error bound: `c + d xmax_g`.
        let (mut c, mut d) = (0.0f64, 0.0f64);
        for (s, mv) in moves.iter().enumerate() {
            let Some(mv) = mv else {
                c = c.max(U);
                continue;
            };
            let (cs, ds) = self.prepare_subtype(s, mv)?;
            c = c.max(cs);
            d = d.max(ds);
        }
        c += (n_sub as f64 + 2.0) * U;
        if c + d * self.xmax > MAX_REL {
            return None;
        }
        // A fraction that is subnormal in f32 would count as 0.
        if fractions.iter().any(|&f| f > 0.0 && f < 1e-30) {
            return None;
        }
        self.f32s.clear();
        self.f32s.extend(fractions.iter().map(|&f| f as f32));
        // Absolute slack per stage sum: every flushed value times the largest
        // factor (at most exp(MAX_BOUND) on the plain path; the checked path
        // multiplies `unit` by its largest factor), and one flushed product or
        // sum per term.
        let ns = self.n_stages as f32;
        let slack = Slack {
            unit: 2.0 * ns * FLUSH,
            fixed: 2.0 * ns * TINY,
            plain: 2.0 * ns * (FLUSH * (MAX_BOUND as f32).exp() + TINY),
        };
        let f32s = std::mem::take(&mut self.f32s);
        let ln_sum = self.kernel(moves, &f32s, slack);
        self.f32s = f32s;
        let ln_sum = ln_sum?;
        let beta = 1.01 * (c * self.n_subjects as f64 + d * self.x_weight);
        let margin = 1e-9 * (self.n_subjects as f64 + offset_sum.abs() + ln_sum.abs());
        let hi = ln_sum + offset_sum + beta + margin;
        hi.is_finite().then_some(hi)
    }

    /// Fills subtype `s`'s single-precision terms and unchanged stages for `mv`,
    /// and returns the relative error bound `(c, d)` of its stage sums (`c + d
    /// xmax`), or `None` where a linked step leaves the range the screen covers.
    fn prepare_subtype(&mut self, s: usize, mv: &SubtypeMove) -> Option<(f64, f64)> {
        let terms = &mut self.terms[s];
        terms.clear();
        terms.extend(mv.terms.iter().map(|t| Term32 {
            b: t.b,
            a: t.a as f32,
            d: t.d as f32,
        }));
        let unchanged = &mut self.unchanged[s];
        unchanged.clear();
        unchanged.extend(mv.unchanged.iter().map(|&k| k as u32));
        subtype_bound(mv.ops, mv.terms, self.n_stages)
    }

    /// `sum` over real subjects of `ln(sum_s f_s (p_s + slack max(1, G_s)))`
    /// (single-precision stage sums), or `None` where a value is not a normal
    /// finite number.
    fn kernel(&mut self, moves: &[Option<SubtypeMove>], f: &[f32], slack: Slack) -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        {
            let mut subtypes: Vec<KernelSubtype> = Vec::with_capacity(moves.len());
            let mut sums = std::mem::take(&mut self.sums);
            for (s, mv) in moves.iter().enumerate() {
                subtypes.push(KernelSubtype {
                    ops: mv.as_ref().map(|m| m.ops),
                    bound_a: mv.as_ref().map_or(0.0, |m| m.bound_a),
                    bound_d: mv.as_ref().map_or(0.0, |m| m.bound_d),
                    terms: &self.terms[s],
                    unchanged: &self.unchanged[s],
                    e: &self.e[s],
                    p: &self.p[s],
                });
            }
            let args = KernelArgs {
                pairs: self.pairs,
                pair_xmax: &self.pair_xmax,
                n_biomarkers: self.n_biomarkers,
                n_stages: self.n_stages,
                n_subjects: self.n_subjects,
                x: &self.x,
                obs: &self.obs,
                f,
                slack,
            };
            assert!(
                self.x.len() >= self.pairs * self.n_biomarkers * PAIR
                    && self.obs.len() >= self.x.len()
                    && f.len() == subtypes.len()
                    && sums.len() >= subtypes.len()
            );
            for (sub, sum) in subtypes.iter().zip(&sums) {
                assert!(
                    sub.e.len() >= self.pairs * self.n_stages * PAIR
                        && sub.p.len() >= self.pairs * PAIR
                        && sum.len() >= self.pairs * PAIR
                        && sub.unchanged.iter().all(|&k| (k as usize) < self.n_stages)
                        && sub.terms.iter().all(|t| (t.b as usize) < self.n_biomarkers)
                        && self.pair_xmax.len() == self.pairs
                );
                if let Some(ops) = sub.ops {
                    assert!(ops.iter().all(|o| (o.k as usize) < self.n_stages
                        && o.terms.0 <= o.terms.1
                        && (o.terms.1 as usize) <= sub.terms.len()));
                }
            }
            // SAFETY: a screen exists only where `Isa::detect` found AVX2 and FMA
            // (and `avx512` only with AVX-512F/DQ); every index the kernels use was
            // checked above. The kernel runs with flush-to-zero and
            // denormals-are-zero (its bound counts TINY per flushed value); the
            // caller's control word is restored after it.
            let out = unsafe {
                let saved = mxcsr();
                set_mxcsr(saved | MXCSR_FTZ_DAZ);
                let out = if self.avx512 {
                    kernel_avx512(&args, &subtypes, &mut sums)
                } else {
                    kernel_avx2(&args, &subtypes, &mut sums)
                };
                set_mxcsr(saved);
                out
            };
            drop(subtypes);
            self.sums = sums;
            out
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (moves, f, slack.plain);
            None
        }
    }
}

/// `SUSTAIN_CHAIN_SCREEN` (read once): `off` gives `Some(false)`, `always`
/// `Some(true)`, anything else (or unset) `None` (adaptive).
fn env_mode() -> Option<bool> {
    static MODE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("SUSTAIN_CHAIN_SCREEN").as_deref() {
        Ok("off") => Some(false),
        Ok("always") => Some(true),
        _ => None,
    })
}

/// Index of group `g`'s lane `lane` of biomarker `b` in a `[pair][b][16]` array.
fn pair_index(g: usize, b: usize, lane: usize, nb: usize) -> usize {
    ((g / 2) * nb + b) * PAIR + (g % 2) * LANES + lane
}

/// `v` in single precision, 0 below [`FLUSH`]; NaN stays NaN (so that the
/// kernel's range check declines) and values beyond the f32 range become
/// infinite (likewise).
fn flushed(v: f64) -> f32 {
    if v >= FLUSH as f64 || v.is_nan() {
        v as f32
    } else {
        0.0
    }
}

/// Rows `rows` of a group's `[k][8]` f64 block into the `[k][16]` rows of a pair
/// block (one half), [`flushed`].
///
/// # Safety
/// Every row of `rows` is in range of both blocks, and the CPU has AVX2 (a screen
/// exists only where [`Isa::detect`] chose AVX2 or AVX-512, see [`ChainScreen::new`]).
#[inline]
unsafe fn flush_rows(src: *const f64, dst: *mut f32, rows: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX2 as the caller guarantees; rows likewise.
    unsafe {
        flush_rows_avx2(src, dst, rows)
    };
    #[cfg(not(target_arch = "x86_64"))]
    for &k in rows {
        for lane in 0..LANES {
            // SAFETY: as the caller guarantees.
            unsafe { *dst.add(k * PAIR + lane) = flushed(*src.add(k * LANES + lane)) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn flush_rows_avx2(src: *const f64, dst: *mut f32, rows: &[usize]) {
    let thr = _mm256_set1_pd(FLUSH as f64);
    for &k in rows {
        for h in 0..2 {
            // SAFETY: as the caller guarantees.
            unsafe {
                let v = _mm256_loadu_pd(src.add(k * LANES + 4 * h));
                // Keep values >= FLUSH and NaN; the others become +0.
                let keep = _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_GE_OQ>(v, thr),
                    _mm256_cmp_pd::<_CMP_UNORD_Q>(v, v),
                );
                _mm_storeu_ps(
                    dst.add(k * PAIR + 4 * h),
                    _mm256_cvtpd_ps(_mm256_and_pd(v, keep)),
                );
            }
        }
    }
}

/// The relative error bound `(c, d)` (`c + d xmax`) of the screened stage sums of
/// a subtype moved by `ops` (see the module notes), or `None` where a linked
/// step's factors leave `exp(±40)` (then the screen declines).
fn subtype_bound(ops: &[SweepOp], terms: &[SweepTerm], n_stages: usize) -> Option<(f64, f64)> {
    // Errors as (constant, per unit of xmax).
    let (mut gc, mut gd) = (0.0f64, 0.0f64);
    let (mut rc, mut rd) = (0.0f64, 0.0f64);
    let mut rho_err = 0.0f64;
    let (mut max_c, mut max_d) = (0.0f64, 0.0f64);
    let exp_err = |t: &[SweepTerm]| {
        let n = t.len() as f64;
        let sa: f64 = t.iter().map(|t| t.a.abs()).sum();
        let sd: f64 = t.iter().map(|t| t.d.abs()).sum();
        let k = 1.01 * (2.0 * n + 3.0) * U;
        (EXP_ERR + k * sd, k * sa)
    };
    for op in ops {
        let t = &terms[op.terms.0 as usize..op.terms.1 as usize];
        match op.kind {
            SweepKind::Begin => {
                (gc, gd) = exp_err(t);
            }
            SweepKind::Direct => {
                (rc, rd) = exp_err(t);
                gc += rc + U;
                gd += rd;
            }
            SweepKind::Linked | SweepKind::Repeat => {
                if op.kind == SweepKind::Linked {
                    rho_err = 0.0;
                    // The product of `max(1 + c, 1 / (1 + c))` bounds every partial
                    // product of the factors.
                    let mut spread = 1.0f64;
                    for term in t {
                        let one_c = 1.0 + term.a;
                        // Factors far from 1 (never on ordinary data) are not screened.
                        if !(one_c > 1e-17 && one_c < 1e17) {
                            return None;
                        }
                        spread *= one_c.max(1.0 / one_c);
                        rho_err += U * (2.0 + term.a.abs() / one_c);
                    }
                    if spread > 5e34 {
                        return None;
                    }
                }
                rc += rho_err + U;
                gc += rc + U;
                gd += rd;
            }
        }
        if op.slot != u32::MAX {
            max_c = max_c.max(gc);
            max_d = max_d.max(gd);
        }
    }
    // e rounded, the product, and the sum of positive terms.
    Some((max_c + (n_stages as f64 + 3.0) * U, max_d))
}

/// One subtype's inputs to the kernel: `ops` `None` for an unchanged subtype.
#[cfg(target_arch = "x86_64")]
struct KernelSubtype<'a> {
    ops: Option<&'a [SweepOp]>,
    bound_a: f64,
    bound_d: f64,
    terms: &'a [Term32],
    unchanged: &'a [u32],
    e: &'a [f32],
    p: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
struct KernelArgs<'a> {
    pairs: usize,
    /// Per pair, the larger `xmax` of its two groups.
    pair_xmax: &'a [f64],
    n_biomarkers: usize,
    n_stages: usize,
    n_subjects: usize,
    x: &'a [f32],
    obs: &'a [f32],
    f: &'a [f32],
    slack: Slack,
}

/// The absolute slacks added to each screened stage sum (see
/// [`ChainScreen::upper_bound`]): `plain` on the plain path, `fixed + unit
/// max(1, G)` on the checked path.
#[derive(Debug, Clone, Copy)]
struct Slack {
    unit: f32,
    fixed: f32,
    plain: f32,
}

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
#[cfg(target_arch = "x86_64")]
const MXCSR_FTZ_DAZ: u32 = 0x8040;

/// The SSE control and status word.
#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stores the 32-bit control word into `v`.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
    }
    v
}

/// Sets the SSE control and status word.
///
/// # Safety
/// `v` must be a valid control word (one read by [`mxcsr`], flags added).
#[cfg(target_arch = "x86_64")]
unsafe fn set_mxcsr(v: u32) {
    // SAFETY: as the caller guarantees.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// 16 single-precision lanes: one AVX-512 register or two AVX2 registers. The
/// kernel body is written once over it; every operation is the same per lane on
/// both (so the same error bound holds).
#[cfg(target_arch = "x86_64")]
trait V16: Copy {
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    /// `self * b + c`.
    unsafe fn fmadd(self, b: Self, c: Self) -> Self;
    /// `c - self * b`.
    unsafe fn fnmadd(self, b: Self, c: Self) -> Self;
    unsafe fn max(self, b: Self) -> Self;
    unsafe fn min(self, b: Self) -> Self;
    unsafe fn abs(self) -> Self;
    /// `2^n self` for integer-valued `n` where the result is a normal number.
    unsafe fn scale(self, n: Self) -> Self;
    /// Whether every lane lies in `[lo, hi]` (false for NaN).
    unsafe fn all_within(self, lo: f32, hi: f32) -> bool;
    /// The biased binary exponent (as a float) and the mantissa in `[1, 2)` of
    /// positive normal lanes.
    unsafe fn split(self) -> (Self, Self);
}

/// The [`V16`] methods that are one intrinsic per register, lane by lane, on each
/// register of the type (`[0]` for `Zmm`, `[0, 1]` for the halves of `Ymm2`).
#[cfg(target_arch = "x86_64")]
macro_rules! lanewise {
    ($regs:tt: $($name:ident($($arg:ident),*) => $op:ident;)*) => {$(
        #[inline(always)]
        unsafe fn $name(self, $($arg: Self),*) -> Self {
            unsafe { lanewise!(@each $regs $op self ($($arg),*)) }
        }
    )*};
    (@each [$($r:tt),+] $op:ident $s:tt $args:tt) => {
        Self($(lanewise!(@one $op $s $r $args)),+)
    };
    (@one $op:ident $s:tt $r:tt ($($arg:ident),*)) => {
        $op($s.$r, $($arg.$r),*)
    };
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Zmm(__m512);

#[cfg(target_arch = "x86_64")]
impl V16 for Zmm {
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Zmm(_mm512_set1_ps(v)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Zmm(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    lanewise!([0]:
        add(b) => _mm512_add_ps;
        mul(b) => _mm512_mul_ps;
        fmadd(b, c) => _mm512_fmadd_ps;
        fnmadd(b, c) => _mm512_fnmadd_ps;
        max(b) => _mm512_max_ps;
        min(b) => _mm512_min_ps;
    );
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        unsafe { Zmm(_mm512_abs_ps(self.0)) }
    }
    #[inline(always)]
    unsafe fn scale(self, n: Self) -> Self {
        unsafe { Zmm(_mm512_scalef_ps(self.0, n.0)) }
    }
    #[inline(always)]
    unsafe fn all_within(self, lo: f32, hi: f32) -> bool {
        unsafe {
            let a = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, _mm512_set1_ps(lo));
            let b = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, _mm512_set1_ps(hi));
            a & b == 0xffff
        }
    }
    #[inline(always)]
    unsafe fn split(self) -> (Self, Self) {
        unsafe {
            let bits = _mm512_castps_si512(self.0);
            let e = _mm512_cvtepi32_ps(_mm512_srli_epi32::<23>(bits));
            let m = _mm512_or_si512(
                _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                _mm512_set1_epi32(0x3f80_0000),
            );
            (Zmm(e), Zmm(_mm512_castsi512_ps(m)))
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Ymm2(__m256, __m256);

#[cfg(target_arch = "x86_64")]
impl V16 for Ymm2 {
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Ymm2(_mm256_set1_ps(v), _mm256_set1_ps(v)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Ymm2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe {
            _mm256_storeu_ps(p, self.0);
            _mm256_storeu_ps(p.add(8), self.1);
        }
    }
    lanewise!([0, 1]:
        add(b) => _mm256_add_ps;
        mul(b) => _mm256_mul_ps;
        fmadd(b, c) => _mm256_fmadd_ps;
        fnmadd(b, c) => _mm256_fnmadd_ps;
        max(b) => _mm256_max_ps;
        min(b) => _mm256_min_ps;
    );
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        unsafe {
            let m = _mm256_set1_ps(-0.0);
            Ymm2(_mm256_andnot_ps(m, self.0), _mm256_andnot_ps(m, self.1))
        }
    }
    #[inline(always)]
    unsafe fn scale(self, n: Self) -> Self {
        // Add n to the exponent field: the same value as `vscalefps` for normal
        // results.
        #[inline(always)]
        unsafe fn f(v: __m256, n: __m256) -> __m256 {
            unsafe {
                let ni = _mm256_cvtps_epi32(n);
                _mm256_castsi256_ps(_mm256_add_epi32(
                    _mm256_castps_si256(v),
                    _mm256_slli_epi32::<23>(ni),
                ))
            }
        }
        unsafe { Ymm2(f(self.0, n.0), f(self.1, n.1)) }
    }
    #[inline(always)]
    unsafe fn all_within(self, lo: f32, hi: f32) -> bool {
        #[inline(always)]
        unsafe fn ok(v: __m256, l: __m256, h: __m256) -> __m256 {
            unsafe {
                _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GE_OQ>(v, l),
                    _mm256_cmp_ps::<_CMP_LE_OQ>(v, h),
                )
            }
        }
        unsafe {
            let (l, h) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
            _mm256_movemask_ps(_mm256_and_ps(ok(self.0, l, h), ok(self.1, l, h))) == 0xff
        }
    }
    #[inline(always)]
    unsafe fn split(self) -> (Self, Self) {
        #[inline(always)]
        unsafe fn f(v: __m256) -> (__m256, __m256) {
            unsafe {
                let bits = _mm256_castps_si256(v);
                let e = _mm256_cvtepi32_ps(_mm256_srli_epi32::<23>(bits));
                let m = _mm256_or_si256(
                    _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                    _mm256_set1_epi32(0x3f80_0000),
                );
                (e, _mm256_castsi256_ps(m))
            }
        }
        unsafe {
            let ((e0, m0), (e1, m1)) = (f(self.0), f(self.1));
            (Ymm2(e0, e1), Ymm2(m0, m1))
        }
    }
}

/// `exp(x)` for `|x| <= 87` in single precision: `2^n exp(r)`, `|r| <= ln2 / 2`,
/// the degree-7 Taylor polynomial (truncation below 0.1 u) in Estrin's scheme.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn exp_f32<V: V16>(x: V) -> V {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^15.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23: rounds to an integer
    unsafe {
        let c = V::splat;
        let t = x.fmadd(c(LOG2E), c(SHIFT));
        let n = t.add(c(-SHIFT));
        let r = n.fnmadd(c(LN2_HI), x);
        let r = n.fnmadd(c(LN2_LO), r);
        let r2 = r.mul(r);
        let r4 = r2.mul(r2);
        let p01 = r.add(c(1.0));
        let p23 = r.fmadd(c(1.0 / 6.0), c(0.5));
        let p45 = r.fmadd(c(1.0 / 120.0), c(1.0 / 24.0));
        let p67 = r.fmadd(c(1.0 / 5040.0), c(1.0 / 720.0));
        let lo = p23.fmadd(r2, p01);
        let hi = p67.fmadd(r2, p45);
        hi.fmadd(r4, lo).scale(n)
    }
}

/// `sum_terms x a - obs d` per lane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn linear<V: V16>(t: &[Term32], x: *const f32, obs: *const f32) -> V {
    let mut acc = unsafe { V::splat(0.0) };
    for term in t {
        let b = term.b as usize * PAIR;
        unsafe {
            acc = V::load(obs.add(b)).fnmadd(V::splat(term.d), acc);
            acc = V::load(x.add(b)).fmadd(V::splat(term.a), acc);
        }
    }
    acc
}

/// Stage sums of one subtype's proposal for `N` consecutive pairs of groups
/// (see `kernels::group_sweep_body`, here in single precision; `N` pairs per
/// pass so their chains of dependent multiplications overlap): per pair the sum
/// over the changed stages of `e G` and over the unchanged ones of `e`, plus the
/// flush slack ([`Slack`]), into `out`. `CHECKED` (pairs whose bound `B`
/// exceeds [`MAX_BOUND`]): also checks that every exponent, `G` and `R` stayed
/// where single precision represents them to full relative precision, and
/// returns false where one did not.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn sweep_pairs<V: V16, const N: usize, const CHECKED: bool>(
    ops: &[SweepOp],
    terms: &[Term32],
    unchanged: &[u32],
    e: [*const f32; N],
    x: [*const f32; N],
    obs: [*const f32; N],
    slack: Slack,
    out: [*mut f32; N],
) -> bool {
    unsafe {
        let one = V::splat(1.0);
        let zero = V::splat(0.0);
        let (mut g, mut r, mut rho) = ([one; N], [one; N], [one; N]);
        let mut gmax = [one; N];
        let (mut s0, mut s1) = ([zero; N], [zero; N]);
        // CHECKED only: the largest |exponent|, the range of G and of R.
        let (mut tmax, mut lo, mut hi) = ([zero; N], [one; N], [one; N]);
        for op in ops {
            let t = terms.get_unchecked(op.terms.0 as usize..op.terms.1 as usize);
            match op.kind {
                SweepKind::Begin => {
                    for i in 0..N {
                        let a = linear::<V>(t, x[i], obs[i]);
                        if CHECKED {
                            tmax[i] = tmax[i].max(a.abs());
                        }
                        g[i] = exp_f32(a);
                    }
                }
                SweepKind::Direct => {
                    for i in 0..N {
                        let a = linear::<V>(t, x[i], obs[i]);
                        if CHECKED {
                            tmax[i] = tmax[i].max(a.abs());
                        }
                        r[i] = exp_f32(a);
                        g[i] = g[i].mul(r[i]);
                    }
                }
                SweepKind::Linked | SweepKind::Repeat => {
                    if op.kind == SweepKind::Linked {
                        rho = [one; N];
                        for term in t {
                            let c = V::splat(term.a);
                            for i in 0..N {
                                let o = V::load(obs[i].add(term.b as usize * PAIR));
                                rho[i] = rho[i].mul(o.fmadd(c, one));
                            }
                        }
                    }
                    for i in 0..N {
                        r[i] = r[i].mul(rho[i]);
                        g[i] = g[i].mul(r[i]);
                    }
                }
            }
            if CHECKED {
                for i in 0..N {
                    lo[i] = lo[i].min(g[i]).min(r[i]);
                    hi[i] = hi[i].max(g[i]).max(r[i]);
                }
            }
            if op.slot != u32::MAX {
                for i in 0..N {
                    let v = V::load(e[i].add(op.k as usize * PAIR)).mul(g[i]);
                    s0[i] = s0[i].add(v);
                    if CHECKED {
                        gmax[i] = gmax[i].max(g[i]);
                    }
                }
                std::mem::swap(&mut s0, &mut s1);
            }
        }
        for &k in unchanged {
            for i in 0..N {
                s0[i] = s0[i].add(V::load(e[i].add(k as usize * PAIR)));
            }
            std::mem::swap(&mut s0, &mut s1);
        }
        let mut fine = true;
        for i in 0..N {
            let sum = s0[i].add(s1[i]);
            if CHECKED {
                gmax[i]
                    .fmadd(V::splat(slack.unit), sum)
                    .add(V::splat(slack.fixed))
                    .store(out[i]);
            } else {
                sum.add(V::splat(slack.plain)).store(out[i]);
            }
            if CHECKED {
                fine &= tmax[i].all_within(0.0, 87.0)
                    && lo[i].all_within(1e-36, f32::MAX)
                    && hi[i].all_within(0.0, 1e36);
            }
        }
        fine
    }
}

/// The screen's kernel (see [`ChainScreen::kernel`]): each changed subtype's
/// stage sums for every pair into `sums`, then per subject the mixture and the
/// sum of its logarithm, as `ln` of products of mantissas (16 per lane and
/// block) plus exponents (as `kernels::mixture_total`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_body<V: V16, const N: usize>(
    a: &KernelArgs,
    subtypes: &[KernelSubtype],
    sums: &mut [Vec<f32>],
) -> Option<f64> {
    let (nb, ns) = (a.n_biomarkers, a.n_stages);
    unsafe {
        for (sub, out) in subtypes.iter().zip(sums.iter_mut()) {
            let Some(ops) = sub.ops else { continue };
            // Pairs whose bound `B` exceeds MAX_BOUND take the checked sweep.
            let plain = |q: usize| a.pair_xmax[q] * sub.bound_a + sub.bound_d <= MAX_BOUND;
            let out_ptr = out.as_mut_ptr();
            let at = |q: usize| {
                (
                    sub.e.as_ptr().add(q * ns * PAIR),
                    a.x.as_ptr().add(q * nb * PAIR),
                    a.obs.as_ptr().add(q * nb * PAIR),
                    out_ptr.add(q * PAIR),
                )
            };
            let mut pair = 0;
            while pair < a.pairs {
                if N > 1 && pair + 1 < a.pairs && plain(pair) && plain(pair + 1) {
                    let (p0, p1) = (at(pair), at(pair + 1));
                    let ptrs = |i: usize| if i == 0 { p0 } else { p1 };
                    sweep_pairs::<V, N, false>(
                        ops,
                        sub.terms,
                        sub.unchanged,
                        std::array::from_fn(|i| ptrs(i).0),
                        std::array::from_fn(|i| ptrs(i).1),
                        std::array::from_fn(|i| ptrs(i).2),
                        a.slack,
                        std::array::from_fn(|i| ptrs(i).3),
                    );
                    pair += 2;
                    continue;
                }
                let (e, x, obs, o) = at(pair);
                let fine = if plain(pair) {
                    sweep_pairs::<V, 1, false>(
                        ops,
                        sub.terms,
                        sub.unchanged,
                        [e],
                        [x],
                        [obs],
                        a.slack,
                        [o],
                    )
                } else {
                    sweep_pairs::<V, 1, true>(
                        ops,
                        sub.terms,
                        sub.unchanged,
                        [e],
                        [x],
                        [obs],
                        a.slack,
                        [o],
                    )
                };
                if !fine {
                    return None;
                }
                pair += 1;
            }
        }
        // Mantissa products of up to 64 values in [1, 2) stay below 2^64.
        const BLOCK: usize = 64;
        let mut total = 0.0f64;
        let mut pair = 0;
        while pair < a.pairs {
            let end = (pair + BLOCK).min(a.pairs);
            let (mut expo, mut prod) = (V::splat(0.0), V::splat(1.0));
            for q in pair..end {
                let mut mix = V::splat(0.0);
                for (s, sub) in subtypes.iter().enumerate() {
                    let p = match sub.ops {
                        Some(_) => V::load(sums[s].as_ptr().add(q * PAIR)),
                        None => V::load(sub.p.as_ptr().add(q * PAIR)).add(V::splat(a.slack.plain)),
                    };
                    mix = V::splat(*a.f.get_unchecked(s)).fmadd(p, mix);
                }
                let real = a.n_subjects - q * PAIR;
                if real < PAIR {
                    // Padding lanes count as 1.
                    let mut lanes = [0.0f32; PAIR];
                    mix.store(lanes.as_mut_ptr());
                    for v in &mut lanes[real..] {
                        *v = 1.0;
                    }
                    mix = V::load(lanes.as_ptr());
                }
                if !mix.all_within(f32::MIN_POSITIVE, f32::MAX) {
                    return None;
                }
                let (e, m) = mix.split();
                expo = expo.add(e);
                prod = prod.mul(m);
            }
            let (mut e_lanes, mut p_lanes) = ([0.0f32; PAIR], [0.0f32; PAIR]);
            expo.store(e_lanes.as_mut_ptr());
            prod.store(p_lanes.as_mut_ptr());
            let count = (end - pair) as f64;
            for (e, p) in e_lanes.iter().zip(&p_lanes) {
                total += (*e as f64 - 127.0 * count) * std::f64::consts::LN_2 + (*p as f64).ln();
            }
            pair = end;
        }
        Some(total)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn kernel_avx512(
    a: &KernelArgs,
    subtypes: &[KernelSubtype],
    sums: &mut [Vec<f32>],
) -> Option<f64> {
    unsafe { kernel_body::<Zmm, 2>(a, subtypes, sums) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(
    a: &KernelArgs,
    subtypes: &[KernelSubtype],
    sums: &mut [Vec<f32>],
) -> Option<f64> {
    unsafe { kernel_body::<Ymm2, 1>(a, subtypes, sums) }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// `exp_f32` within half of [`EXP_ERR`] of the exact exponential over
    /// `[-87, 87]`, on both vector types this CPU supports.
    #[test]
    fn exp_f32_is_accurate() {
        if !Isa::Avx2.is_supported() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn worst_avx2(x: &[f32]) -> f64 {
            unsafe { worst::<Ymm2>(x) }
        }
        #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
        unsafe fn worst_avx512(x: &[f32]) -> f64 {
            unsafe { worst::<Zmm>(x) }
        }
        #[inline(always)]
        unsafe fn worst<V: V16>(x: &[f32]) -> f64 {
            let mut worst = 0.0f64;
            for chunk in x.chunks_exact(PAIR) {
                let mut out = [0.0f32; PAIR];
                unsafe { exp_f32(V::load(chunk.as_ptr())).store(out.as_mut_ptr()) };
                for (got, &x) in out.iter().zip(chunk) {
                    let want = (x as f64).exp();
                    worst = worst.max((*got as f64 - want).abs() / want);
                }
            }
            worst
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let xs: Vec<f32> = (0..400_000)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let t = (state >> 40) as f32 / (1u32 << 24) as f32;
                let scale = if i % 8 == 0 { 1.0 } else { 87.0 };
                scale * (2.0 * t - 1.0)
            })
            .chain([-87.0, 87.0, 0.0, -0.0, 1e-30, -1e-30])
            .chain(std::iter::repeat_n(0.5, 10))
            .collect();
        // SAFETY: AVX2 and FMA were detected above.
        let w = unsafe { worst_avx2(&xs) };
        eprintln!("exp_f32 (AVX2) worst relative error {:.2} u", w / U);
        assert!(
            w < 0.5 * EXP_ERR,
            "exp_f32 (AVX2) worst relative error {w:e}"
        );
        if Isa::Avx512.is_supported() {
            // SAFETY: detected just above.
            let w5 = unsafe { worst_avx512(&xs) };
            assert!(
                w5 < 0.5 * EXP_ERR,
                "exp_f32 (AVX-512) worst relative error {w5:e}"
            );
        }
    }
}
