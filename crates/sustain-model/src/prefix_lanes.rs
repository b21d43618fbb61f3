//! The subject-blocked layout of a [`crate::PrefixModel`] and its vectorised
//! kernels. Subjects come in groups of [`LANES`]; each group's event deltas are
//! stored event-major (`[group][event][lane]`), so walking a sequence reads one
//! contiguous row of lanes per event.
//!
//! A subject's `log sum_k exp(v_k)`, with `v_k` the prefix sums of its deltas along
//! the sequence and `v_0 = 0`, is `ln h_0` for the Horner recursion
//! `h_N = 1, h_j = 1 + r[S_j] h_{j+1}` with `r = exp(delta)`: one multiply-add per
//! event and no exponential. Every `h_j >= 1`, so nothing underflows; a group with
//! a delta beyond [`TAME`] or an `h_0` near overflow takes the exact log-domain path
//! (prefix sums, running maximum, exponentials). Both agree with the generic
//! evaluation to about `2 N` units in the last place of each subject's value.

use crate::kernels::{
    exp_minus, ln_lanes, max_plus_ln, row, Fused, Isa, Lanes, MulAdd, Plain, LANES,
};

/// Deltas within `+-TAME` keep `exp(delta)` a normal number (and products of it
/// with `h <= HORNER_MAX` finite).
const TAME: f64 = 600.0;
/// Largest `h_0` the product path accepts.
const HORNER_MAX: f64 = 1e280;

/// A model's deltas in groups of [`LANES`] subjects (padding lanes: delta 0).
#[derive(Debug, Clone)]
pub(crate) struct PrefixLanes {
    pub(crate) n_events: usize,
    pub(crate) n_groups: usize,
    /// `delta[(g * n_events + e) * LANES + l]`.
    pub(crate) delta: Vec<f64>,
    /// `exp(delta)`, same layout.
    pub(crate) ratio: Vec<f64>,
    /// Groups with some delta beyond [`TAME`]: always the log-domain path.
    pub(crate) wild: Vec<bool>,
    pub(crate) isa: Isa,
}

impl PrefixLanes {
    /// From subject-major deltas `delta[m * n_events + e]`.
    pub(crate) fn new(delta: &[f64], n_subjects: usize, n_events: usize) -> Self {
        let n_groups = n_subjects.div_ceil(LANES);
        let mut d = vec![0.0; n_groups * n_events * LANES];
        for m in 0..n_subjects {
            let (g, l) = (m / LANES, m % LANES);
            for e in 0..n_events {
                d[(g * n_events + e) * LANES + l] = delta[m * n_events + e];
            }
        }
        let wild = (0..n_groups)
            .map(|g| {
                d[g * n_events * LANES..(g + 1) * n_events * LANES]
                    .iter()
                    .any(|v| v.abs() > TAME)
            })
            .collect();
        Self {
            n_events,
            n_groups,
            ratio: d.iter().map(|v| v.exp()).collect(),
            delta: d,
            wild,
            isa: Isa::detect(),
        }
    }

    /// Rows of group `g` (`n_events * LANES` values).
    #[inline(always)]
    pub(crate) fn group_delta(&self, g: usize) -> &[f64] {
        &self.delta[g * self.n_events * LANES..(g + 1) * self.n_events * LANES]
    }

    /// `log sum_k exp(v_k)` per subject of every group for the sequence `order`,
    /// into `out` (`n_groups * LANES`, padding lanes included).
    pub(crate) fn subtype_lse(&self, order: &[u16], out: &mut [f64]) {
        self.subtypes_lse(&[order], out)
    }

    /// [`Self::subtype_lse`] of several sequences at once, into consecutive
    /// padded rows of `out`: each block of groups is read once for all of them.
    pub(crate) fn subtypes_lse(&self, orders: &[&[u16]], out: &mut [f64]) {
        assert!(out.len() >= orders.len() * self.n_groups * LANES);
        for order in orders {
            assert!(order.len() == self.n_events);
            assert!(order.iter().all(|&e| (e as usize) < self.n_events));
        }
        subtypes_lse_dispatch(self.isa, self, orders, out)
    }
}

impl PrefixLanes {
    /// Each subject's `ln sum_s f_s sum_k exp(v^s_k)` (its mixture log-likelihood
    /// less the offset) for the sequences `orders` with fractions `f` (`log_f`
    /// their logarithms), into `out` (`n_groups * LANES`). Every subtype's Horner
    /// total is relative to the same `v_0 = 0`, so the mixture is a weighted sum
    /// and one logarithm per subject: no per-subtype logarithm, no exponential.
    pub(crate) fn mixture_ln(&self, orders: &[&[u16]], f: &[f64], log_f: &[f64], out: &mut [f64]) {
        assert!(out.len() >= self.n_groups * LANES);
        assert!(f.len() >= orders.len() && log_f.len() >= orders.len());
        for order in orders {
            assert!(order.len() == self.n_events);
            assert!(order.iter().all(|&e| (e as usize) < self.n_events));
        }
        mixture_ln_dispatch(self.isa, self, orders, f, log_f, out)
    }
}

multiversion!(
    /// [`PrefixLanes::mixture_ln`] (generic code).
    fn mixture_ln_dispatch(lanes: &PrefixLanes, orders: &[&[u16]], f: &[f64], log_f: &[f64], out: &mut [f64]) => mixture_ln_body
);

/// Ratios (f64 values) beyond which the mixture's Horner pass prefetches (half
/// of a 512 KiB level-2 cache).
const PREFETCH_OVER: usize = 32 << 10;

/// Asks for the cache line holding `row[0]` (a hint: never faults, changes no
/// value).
#[inline(always)]
fn prefetch(row: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally; the pointer is valid.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Smallest weighted sum taken by the linear path (sums of fractions that add up
/// to one times Horner totals of at least one are never below it).
const MIX_FLOOR: f64 = 1e-300;

#[inline(always)]
fn mixture_ln_body<F: MulAdd>(
    lanes: &PrefixLanes,
    orders: &[&[u16]],
    f: &[f64],
    log_f: &[f64],
    out: &mut [f64],
) {
    let stride = lanes.n_events * LANES;
    let n_s = orders.len();
    // h[s * BLOCK + b]: subtype s's Horner total of group g + b.
    let mut h = vec![[1.0; LANES]; n_s * BLOCK];
    let mut scratch = vec![0.0; (lanes.n_events + 1) * LANES];
    let mut g = 0;
    while g < lanes.n_groups {
        let nb = (lanes.n_groups - g).min(BLOCK);
        let ratio = &lanes.ratio[g * stride..(g + nb) * stride];
        for (s, order) in orders.iter().enumerate() {
            let hs = &mut h[s * BLOCK..(s + 1) * BLOCK];
            if nb == BLOCK {
                // The first subtype's pass fetches the next block's rows, where
                // the rows outgrow the core's cache (below, prefetches only cost).
                let ahead = match s {
                    0 if lanes.ratio.len() > PREFETCH_OVER => {
                        lanes.ratio.get((g + BLOCK) * stride..).unwrap_or(&[])
                    }
                    _ => &[],
                };
                hs.copy_from_slice(&horner4::<F>(ratio, stride, order, ahead));
            } else {
                for (b, hb) in hs[..nb].iter_mut().enumerate() {
                    *hb = horner1::<F>(&ratio[b * stride..(b + 1) * stride], order);
                }
            }
        }
        for b in 0..nb {
            let gg = g + b;
            let o: &mut Lanes = (&mut out[gg * LANES..(gg + 1) * LANES]).try_into().unwrap();
            let tame = |s: usize| h[s * BLOCK + b].iter().all(|&v| v <= HORNER_MAX);
            if !lanes.wild[gg] && (0..n_s).all(tame) {
                let mut p = [0.0; LANES];
                for s in 0..n_s {
                    let hs = &h[s * BLOCK + b];
                    for l in 0..LANES {
                        p[l] = F::fma(f[s], hs[l], p[l]);
                    }
                }
                if p.iter().all(|&v| v >= MIX_FLOOR) {
                    *o = ln_lanes::<F>(p);
                    continue;
                }
            }
            // Out of the product path's range: each subtype's log-sum-exp, then
            // the log-domain mixture.
            let lse: Vec<Lanes> = (0..n_s)
                .map(|s| {
                    let hs = h[s * BLOCK + b];
                    if !lanes.wild[gg] && hs.iter().all(|&v| v <= HORNER_MAX) {
                        ln_lanes::<F>(hs)
                    } else {
                        exact_group::<F>(lanes.group_delta(gg), orders[s], &mut scratch)
                    }
                })
                .collect();
            let parts: Vec<&[f64]> = lse.iter().map(|v| v.as_slice()).collect();
            crate::kernels::mixture(lanes.isa, log_f, &parts, o);
        }
        g += BLOCK;
    }
}

multiversion!(
    /// [`PrefixLanes::subtypes_lse`] (generic code).
    fn subtypes_lse_dispatch(lanes: &PrefixLanes, orders: &[&[u16]], out: &mut [f64]) => subtypes_lse_body
);

#[inline(always)]
fn subtypes_lse_body<F: MulAdd>(lanes: &PrefixLanes, orders: &[&[u16]], out: &mut [f64]) {
    let n = lanes.n_events;
    let padded = lanes.n_groups * LANES;
    let mut scratch = vec![0.0; (n + 1) * LANES];
    let mut g = 0;
    // Four groups at a time: eight independent multiply-add chains on AVX2, enough
    // to hide the latency of each; every sequence while the block is in cache.
    while g < lanes.n_groups {
        let full = g + BLOCK <= lanes.n_groups;
        for (s, order) in orders.iter().enumerate() {
            let o = &mut out[s * padded..(s + 1) * padded];
            if full {
                horner_block::<F, BLOCK>(lanes, g, order, &mut scratch, o);
            } else {
                for h in g..lanes.n_groups {
                    horner_block::<F, 1>(lanes, h, order, &mut scratch, o);
                }
            }
        }
        g += BLOCK;
    }
}

/// Groups interleaved by the Horner kernel.
const BLOCK: usize = 4;

#[inline(always)]
fn horner_block<F: MulAdd, const B: usize>(
    lanes: &PrefixLanes,
    g: usize,
    order: &[u16],
    scratch: &mut [f64],
    out: &mut [f64],
) {
    let stride = lanes.n_events * LANES;
    let ratio = &lanes.ratio[g * stride..(g + B) * stride];
    let h = if B == 4 {
        horner4::<F>(ratio, stride, order, &[])
    } else {
        let mut h = [[1.0; LANES]; 4];
        h[0] = horner1::<F>(ratio, order);
        h
    };
    for b in 0..B {
        finish_group::<F>(lanes, g + b, order, h[b], scratch, out);
    }
}

/// One group's Horner recursion.
#[inline(always)]
fn horner1<F: MulAdd>(ratio: &[f64], order: &[u16]) -> Lanes {
    let mut h = [1.0; LANES];
    for &e in order.iter().rev() {
        let r = row(ratio, e as usize);
        for l in 0..LANES {
            h[l] = F::fma(r[l], h[l], 1.0);
        }
    }
    h
}

/// Four groups' Horner recursions, interleaved (independent chains); written out
/// so that the lanes stay in vector registers.
#[inline(always)]
fn horner4<F: MulAdd>(ratio: &[f64], stride: usize, order: &[u16], ahead: &[f64]) -> [Lanes; 4] {
    let (r0, rest) = ratio.split_at(stride);
    let (r1, rest) = rest.split_at(stride);
    let (r2, r3) = rest.split_at(stride);
    let (mut h0, mut h1, mut h2, mut h3) = ([1.0; LANES], [1.0; LANES], [1.0; LANES], [1.0; LANES]);
    for &e in order.iter().rev() {
        // The same rows of the next four groups (`ahead`, when given), which the
        // next call reads in this order: no hardware prefetcher follows it.
        if ahead.len() >= 4 * stride {
            for b in 0..4 {
                prefetch(&ahead[b * stride + e as usize * LANES..]);
            }
        }
        let (a, b, c, d) = (
            row(r0, e as usize),
            row(r1, e as usize),
            row(r2, e as usize),
            row(r3, e as usize),
        );
        for l in 0..LANES {
            h0[l] = F::fma(a[l], h0[l], 1.0);
            h1[l] = F::fma(b[l], h1[l], 1.0);
            h2[l] = F::fma(c[l], h2[l], 1.0);
            h3[l] = F::fma(d[l], h3[l], 1.0);
        }
    }
    [h0, h1, h2, h3]
}

/// `ln h` where the product path is safe, else the log-domain path.
#[inline(always)]
fn finish_group<F: MulAdd>(
    lanes: &PrefixLanes,
    g: usize,
    order: &[u16],
    h: Lanes,
    scratch: &mut [f64],
    out: &mut [f64],
) {
    let o: &mut Lanes = (&mut out[g * LANES..(g + 1) * LANES]).try_into().unwrap();
    if !lanes.wild[g] && h.iter().all(|&v| v <= HORNER_MAX) {
        *o = ln_lanes::<F>(h);
    } else {
        *o = exact_group::<F>(lanes.group_delta(g), order, scratch);
    }
}

/// The log-domain path for one group: stage values, their maximum, and
/// `max + ln sum_k exp(v_k - max)`.
#[inline(always)]
pub(crate) fn exact_group<F: MulAdd>(delta: &[f64], order: &[u16], scratch: &mut [f64]) -> Lanes {
    let mut acc = [0.0; LANES];
    let mut max = [0.0f64; LANES];
    scratch[..LANES].copy_from_slice(&acc);
    for (k, &e) in order.iter().enumerate() {
        let d = row(delta, e as usize);
        for l in 0..LANES {
            acc[l] += d[l];
            max[l] = max[l].max(acc[l]);
        }
        scratch[(k + 1) * LANES..(k + 2) * LANES].copy_from_slice(&acc);
    }
    let mut sum = [0.0; LANES];
    for k in 0..=order.len() {
        let (t, _) = exp_minus::<F>(row(scratch, k), &max);
        for l in 0..LANES {
            sum[l] += t[l];
        }
    }
    max_plus_ln::<F>(&max, sum)
}
