//! The incremental chain state of a [`PrefixModel`]. A proposal that reorders the
//! events between positions `i` and `j` of a sequence changes only the stage
//! values `v_k`, `i < k <= j` (later stages sum the same events). The stages come
//! in chunks of [`CHUNK`]; per subtype the state keeps, for every subject, the
//! stage value at each chunk's start and the chunk's sum of `exp(v_k - R)`, with
//! one reference `R` per subject shared by all subtypes. A proposal recomputes the
//! chunks it touched, each as `exp(v_first - R)` times a Horner sum of the
//! chunk's event ratios `exp(delta)` (one exponential per chunk, not one per
//! stage), and then each subject's `R + ln sum_s f_s T_s` (`T_s` the subtype's
//! chunk total): one logarithm per subject, no per-subtype logarithm and no
//! exponential in the mixture.
//!
//! Range: a chunk whose start is far below `R`, whose ratios or Horner sum are
//! out of range, is summed stage by stage instead (`exp` clamps at `-700`: each
//! such term is off by at most `e^-700`, negligible against sums of at least
//! [`P_FLOOR`]); a subject whose chunk sums grow past [`CS_CEIL`] or whose mixture
//! sum falls below [`P_FLOOR`] is rebuilt around its largest stage, and if the
//! sum is still below (negligible fractions) its value comes from the log domain.
//! Stage values are prefix sums along the current sequence, each the sum of its
//! events by as many roundings as it has events, so nothing drifts along a chain.

use crate::kernels::{exp_lanes, exp_minus, ln_lanes, Fused, Isa, Lanes, MulAdd, Plain, LANES};
use crate::prefix::{log_fractions, PrefixModel};
use crate::prefix_lanes::{exact_group, PrefixLanes};
use std::sync::Arc;
use sustain_core::{neumaier_sum, Mixture, ShardState, StageModel, SustainModel};

/// Stages per chunk.
const CHUNK: usize = 8;
/// Largest Horner sum of a chunk taken as it is.
const HORNER_MAX: f64 = 1e280;
/// A chunk sum above this rebuilds its subject (also catches the exponential's
/// clamp at `e^700`).
const CS_CEIL: f64 = 1e290;
/// Smallest mixture sum `sum_s f_s T_s` taken as it is.
const P_FLOOR: f64 = 1e-200;
/// A chunk starting further than this below `R` is summed stage by stage (the
/// exponential clamps below `-700`).
const X_MIN: f64 = -700.0;

/// Each event's deltas and ratios `exp(delta)` for every group, event-major
/// (`[e][g][lane]`): a chunk reads the same events in every group, so the group
/// loop streams through memory where the group-major layout jumps. Apart, since
/// most chunks need only the ratios.
#[derive(Debug)]
pub(crate) struct ChainRows {
    delta: Vec<f64>,
    ratio: Vec<f64>,
    n_groups: usize,
}

impl ChainRows {
    pub(crate) fn new(lanes: &PrefixLanes) -> Self {
        let (n, ng) = (lanes.n_events, lanes.n_groups);
        let transpose = |v: &[f64]| {
            let mut out = vec![0.0; n * ng * LANES];
            for g in 0..ng {
                for e in 0..n {
                    let at = (e * ng + g) * LANES;
                    out[at..at + LANES].copy_from_slice(&v[(g * n + e) * LANES..][..LANES]);
                }
            }
            out
        };
        Self {
            delta: transpose(&lanes.delta),
            ratio: transpose(&lanes.ratio),
            n_groups: ng,
        }
    }

    /// Event `e`'s deltas for group `g`.
    #[inline(always)]
    fn delta(&self, e: u16, g: usize) -> Lanes {
        lanes_at(&self.delta, e as usize * self.n_groups + g)
    }

    /// Event `e`'s ratios for group `g`.
    #[inline(always)]
    fn ratio(&self, e: u16, g: usize) -> Lanes {
        lanes_at(&self.ratio, e as usize * self.n_groups + g)
    }
}

/// One subtype's state over every group of subjects.
#[derive(Clone)]
struct Subtype {
    order: Vec<u16>,
    /// `vc[(g * n_chunks + c) * LANES + l]`: the stage value at chunk `c`'s
    /// start (stage `CHUNK * c`).
    vc: Vec<f64>,
    /// `exp(vc - R)`, same layout (kept: a chunk whose start did not move
    /// needs no exponential).
    ec: Vec<f64>,
    /// Sums of `exp(v_k - R)` over each chunk's stages, same layout.
    cs: Vec<f64>,
}

/// Every subtype and the subjects' shared references.
#[derive(Clone)]
struct State {
    sub: Vec<Subtype>,
    /// Per subject (padded): `R`.
    reference: Vec<f64>,
}

/// Shapes shared by the kernels.
#[derive(Clone, Copy)]
struct Shape {
    n_chunks: usize,
    n_groups: usize,
}

impl Shape {
    fn of(lanes: &PrefixLanes) -> Self {
        Self {
            n_chunks: (lanes.n_events + 1).div_ceil(CHUNK),
            n_groups: lanes.n_groups,
        }
    }

    /// Row of chunk `c` of group `g` in `vc`, `ec` and `cs`: group-major, so
    /// that a group's chunks are contiguous (summed by the mixture step).
    #[inline(always)]
    fn at(self, g: usize, c: usize) -> usize {
        g * self.n_chunks + c
    }
}

impl State {
    fn new(lanes: &PrefixLanes, mixture: &Mixture) -> Self {
        let sh = Shape::of(lanes);
        let rows = sh.n_groups * sh.n_chunks * LANES;
        Self {
            sub: mixture
                .sequences()
                .iter()
                .map(|s| Subtype {
                    order: s.order_u16().to_vec(),
                    vc: vec![0.0; rows],
                    ec: vec![0.0; rows],
                    cs: vec![0.0; rows],
                })
                .collect(),
            reference: vec![0.0; sh.n_groups * LANES],
        }
    }

    /// Copies from `src` what `dirty` says differs.
    fn sync_from(&mut self, src: &State, dirty: &Dirty, sh: Shape) {
        for ((dst, from), range) in self.sub.iter_mut().zip(&src.sub).zip(&dirty.chunks) {
            if let Some(d) = *range {
                dst.order.copy_from_slice(&from.order);
                // Chunk starts start + 1..=c1 and sums c0..=c1 of every group.
                for g in 0..sh.n_groups {
                    for c in d.start + 1..=d.c1 {
                        let r = sh.at(g, c);
                        put(&mut dst.vc, r, &lanes_at(&from.vc, r));
                        put(&mut dst.ec, r, &lanes_at(&from.ec, r));
                    }
                    for c in d.c0..=d.c1 {
                        let r = sh.at(g, c);
                        put(&mut dst.cs, r, &lanes_at(&from.cs, r));
                    }
                }
            }
        }
        for &g in &dirty.rebuilt {
            put(&mut self.reference, g, &lanes_at(&src.reference, g));
            for (dst, from) in self.sub.iter_mut().zip(&src.sub) {
                for c in 0..sh.n_chunks {
                    let r = sh.at(g, c);
                    put(&mut dst.vc, r, &lanes_at(&from.vc, r));
                    put(&mut dst.ec, r, &lanes_at(&from.ec, r));
                    put(&mut dst.cs, r, &lanes_at(&from.cs, r));
                }
            }
        }
    }
}

/// What a proposal changed: per subtype its order and some chunks of every
/// group ([`Chunks`]), and every chunk of the groups in `rebuilt`.
struct Dirty {
    chunks: Vec<Option<Chunks>>,
    rebuilt: Vec<usize>,
}

/// The chunks that stages `lo..=hi` changing touch.
#[derive(Clone, Copy)]
struct Chunks {
    /// The chunk of stage `lo - 1` (unchanged start).
    start: usize,
    /// Chunks `c0..=c1` hold changed stages (their sums change; the starts of
    /// chunks after `start` too).
    c0: usize,
    c1: usize,
}

impl Chunks {
    fn of((lo, hi): (usize, usize)) -> Self {
        Self {
            start: (lo - 1) / CHUNK,
            c0: lo / CHUNK,
            c1: hi / CHUNK,
        }
    }
}

#[inline(always)]
fn lanes_at(v: &[f64], i: usize) -> Lanes {
    v[i * LANES..(i + 1) * LANES].try_into().unwrap()
}

#[inline(always)]
fn put(v: &mut [f64], i: usize, x: &Lanes) {
    v[i * LANES..(i + 1) * LANES].copy_from_slice(x);
}

/// The stage value at chunk `c + 1`'s start from chunk `c`'s, `v0`.
#[inline(always)]
fn walk(rows: &ChainRows, g: usize, order: &[u16], c: usize, v0: Lanes) -> Lanes {
    let mut v = v0;
    for &e in &order[c * CHUNK..((c + 1) * CHUNK).min(order.len())] {
        let d = rows.delta(e, g);
        for l in 0..LANES {
            v[l] += d[l];
        }
    }
    v
}

/// Chunk `c` of group `g`'s sum of `exp(v_k - r)` from its start value `v0`,
/// and `exp(v0 - r)` (`cached` when the start and `r` are unchanged: the same
/// bits as computing it again); `None` when out of range (rebuild the subject).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn chunk_sum<F: MulAdd>(
    lanes: &PrefixLanes,
    rows: &ChainRows,
    g: usize,
    order: &[u16],
    c: usize,
    v0: Lanes,
    cached: Option<Lanes>,
    r: &Lanes,
) -> Option<(Lanes, Lanes)> {
    let first = c * CHUNK;
    // Stages first..first + len, events first..first + len - 1 between them.
    let len = CHUNK.min(order.len() + 1 - first);
    let events = &order[first..first + len - 1];
    let mut x0 = [0.0; LANES];
    for l in 0..LANES {
        x0[l] = v0[l] - r[l];
    }
    let e0 = match cached {
        Some(e) => e,
        None => exp_lanes::<F>(x0),
    };
    let mut s = [0.0; LANES];
    let mut horner = !lanes.wild[g] && x0.iter().all(|&x| x >= X_MIN);
    if horner {
        let h = pair_horner::<F>(rows, g, events);
        horner = h.iter().all(|&x| x <= HORNER_MAX);
        for l in 0..LANES {
            s[l] = e0[l] * h[l];
        }
    }
    if !horner {
        // Stage by stage: exp(v_k - r), v_k walked again from v0.
        let mut v = v0;
        s = [0.0; LANES];
        for k in 0..len {
            if k > 0 {
                let d = rows.delta(events[k - 1], g);
                for l in 0..LANES {
                    v[l] += d[l];
                }
            }
            let (t, _) = exp_minus::<F>(&v, r);
            for l in 0..LANES {
                s[l] += t[l];
            }
        }
    }
    let mut ok = true;
    for &x in &s {
        // `!(x <= CEIL)` also refuses NaN.
        ok &= x <= CS_CEIL;
    }
    ok.then_some((s, e0))
}

/// `1 + q_0 (1 + q_1 (1 + ...))` over the ratios `q` of `events`, two at a time:
/// `(1 + q_0) + q_0 q_1 ((1 + q_2) + q_2 q_3 (...))`, half the dependent steps of
/// the plain recursion (the chunks are short: latency, not throughput, bounds
/// them).
#[inline(always)]
fn pair_horner<F: MulAdd>(rows: &ChainRows, g: usize, events: &[u16]) -> Lanes {
    let mut h = [1.0; LANES];
    let n = events.len();
    let mut p = n;
    if n % 2 == 1 {
        p -= 1;
        let q = rows.ratio(events[p], g);
        for l in 0..LANES {
            h[l] = 1.0 + q[l];
        }
    }
    while p >= 2 {
        p -= 2;
        let (a, b) = (rows.ratio(events[p], g), rows.ratio(events[p + 1], g));
        for l in 0..LANES {
            h[l] = F::fma(a[l] * b[l], h[l], 1.0 + a[l]);
        }
    }
    h
}

/// Sum of `n` rows `stride` apart from `first`, over four accumulators (short
/// dependency chains; the same order whatever called it).
#[inline(always)]
fn pairwise(v: &[f64], first: usize, n: usize, stride: usize) -> Lanes {
    let (mut a0, mut a1, mut a2, mut a3) = ([0.0; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let mut i = 0;
    while i + 4 <= n {
        let (r0, r1, r2, r3) = (
            lanes_at(v, first + i * stride),
            lanes_at(v, first + (i + 1) * stride),
            lanes_at(v, first + (i + 2) * stride),
            lanes_at(v, first + (i + 3) * stride),
        );
        for l in 0..LANES {
            a0[l] += r0[l];
            a1[l] += r1[l];
            a2[l] += r2[l];
            a3[l] += r3[l];
        }
        i += 4;
    }
    // The last rows (fewer than four), into the first accumulators in turn.
    for (j, acc) in [&mut a0, &mut a1, &mut a2].into_iter().enumerate() {
        if i + j < n {
            let r = lanes_at(v, first + (i + j) * stride);
            for l in 0..LANES {
                acc[l] += r[l];
            }
        }
    }
    let mut s = [0.0; LANES];
    for l in 0..LANES {
        s[l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
    }
    s
}

/// Chunks `lo / CHUNK..=hi / CHUNK` of group `g` after stages `lo..=hi` changed
/// (`st.order` already the new order); false when the subject must be rebuilt.
#[inline(always)]
fn update_group<F: MulAdd>(
    lanes: &PrefixLanes,
    rows: &ChainRows,
    st: &mut Subtype,
    r: &Lanes,
    g: usize,
    (lo, hi): (usize, usize),
    sh: Shape,
) -> bool {
    let Chunks { start, c0, c1 } = Chunks::of((lo, hi));
    // Stage lo - 1 is unchanged: walk from the start of its chunk, whose start
    // value and exponential are as stored.
    let mut v0 = lanes_at(&st.vc, sh.at(g, start));
    for c in start..=c1 {
        if c >= c0 {
            let cached = (c == start).then(|| lanes_at(&st.ec, sh.at(g, c)));
            let Some((s, e0)) = chunk_sum::<F>(lanes, rows, g, &st.order, c, v0, cached, r) else {
                return false;
            };
            put(&mut st.cs, sh.at(g, c), &s);
            if c > start {
                put(&mut st.ec, sh.at(g, c), &e0);
            }
        }
        if c < c1 {
            v0 = walk(rows, g, &st.order, c, v0);
            put(&mut st.vc, sh.at(g, c + 1), &v0);
        }
    }
    true
}

/// Group `g` of every subtype from scratch, `R` its largest stage value.
#[inline(always)]
fn rebuild_group<F: MulAdd>(
    lanes: &PrefixLanes,
    rows: &ChainRows,
    state: &mut State,
    g: usize,
    sh: Shape,
) {
    let mut max = [0.0f64; LANES];
    for st in &state.sub {
        let mut acc = [0.0; LANES];
        for &e in &st.order {
            let d = rows.delta(e, g);
            for l in 0..LANES {
                acc[l] += d[l];
                max[l] = max[l].max(acc[l]);
            }
        }
    }
    put(&mut state.reference, g, &max);
    for st in &mut state.sub {
        let mut v0 = [0.0; LANES];
        for c in 0..sh.n_chunks {
            put(&mut st.vc, sh.at(g, c), &v0);
            // Every stage is at most R: the sums are at most CHUNK.
            let (s, e0) = chunk_sum::<F>(lanes, rows, g, &st.order, c, v0, None, &max)
                .unwrap_or(([f64::NAN; LANES], [f64::NAN; LANES]));
            put(&mut st.cs, sh.at(g, c), &s);
            put(&mut st.ec, sh.at(g, c), &e0);
            v0 = walk(rows, g, &st.order, c, v0);
        }
    }
}

/// `p = sum_s f_s T_s` for group `g` (its value is `R + ln p`), or `None` below
/// [`P_FLOOR`].
#[inline(always)]
fn mix_group<F: MulAdd>(state: &State, f: &[f64], g: usize, sh: Shape) -> Option<Lanes> {
    let mut p = [0.0; LANES];
    for (st, &fs) in state.sub.iter().zip(f) {
        // T_s, the sum of the chunks (the same order whatever changed).
        let t = pairwise(&st.cs, sh.at(g, 0), sh.n_chunks, 1);
        for l in 0..LANES {
            p[l] = F::fma(fs, t[l], p[l]);
        }
    }
    p.iter().all(|&x| x >= P_FLOOR).then_some(p)
}

/// Brings every group up to date (from scratch when `ranges` is empty, else
/// the stages `lo..=hi` it names per subtype) and writes the block partials
/// into `partials`; groups rebuilt on the way are pushed onto `rebuilt`.
#[inline(always)]
fn evaluate_body<F: MulAdd>(
    mix: &MixInput,
    state: &mut State,
    ranges: &[Option<(usize, usize)>],
    rebuilt: &mut Vec<usize>,
    partials: &mut Vec<f64>,
) {
    let (lanes, rows) = (mix.lanes, mix.rows);
    let fresh = ranges.is_empty();
    let sh = Shape::of(lanes);
    let f = mix.f;
    if fresh {
        for g in 0..sh.n_groups {
            rebuild_group::<F>(lanes, rows, state, g, sh);
        }
    } else {
        // Subtype by subtype, so that the group loop streams through the same
        // events' rows.
        for (s, range) in ranges.iter().enumerate() {
            let Some(rg) = *range else { continue };
            for g in 0..sh.n_groups {
                let r = lanes_at(&state.reference, g);
                if !update_group::<F>(lanes, rows, &mut state.sub[s], &r, g, rg, sh) {
                    // Every subtype's stages now at most R: later ones pass.
                    rebuild_group::<F>(lanes, rows, state, g, sh);
                    rebuilt.push(g);
                }
            }
        }
    }
    let per_block = mix.block / LANES;
    // The mantissa products stay finite.
    assert!(per_block <= 512);
    partials.clear();
    let mut acc = BlockSum::new();
    for g in 0..sh.n_groups {
        let new = fresh || rebuilt.contains(&g);
        let mut p = mix_group::<F>(state, f, g, sh);
        if p.is_none() && !new {
            rebuild_group::<F>(lanes, rows, state, g, sh);
            rebuilt.push(g);
            p = mix_group::<F>(state, f, g, sh);
        }
        match p {
            Some(p) => acc.add_mix(&p, &lanes_at(&state.reference, g), mix.offsets, g),
            None => acc.add(&log_domain::<F>(lanes, state, mix, g), mix.offsets, g),
        }
        if (g + 1) % per_block == 0 || g + 1 == sh.n_groups {
            partials.push(acc.finish::<F>());
        }
    }
}

/// What an evaluation reads besides the state.
struct MixInput<'a> {
    lanes: &'a PrefixLanes,
    rows: &'a ChainRows,
    f: &'a [f64],
    log_f: &'a [f64],
    /// Per subject (unpadded).
    offsets: &'a [f64],
    /// Subjects per partial sum (a multiple of [`LANES`]).
    block: usize,
}

/// Group `g`'s values from scratch in the log domain (negligible fractions on
/// every subtype that reaches `R`).
#[inline(never)]
fn log_domain<F: MulAdd>(lanes: &PrefixLanes, state: &State, mix: &MixInput, g: usize) -> Lanes {
    let mut scratch = vec![0.0; (lanes.n_events + 1) * LANES];
    let mut lse = Vec::with_capacity(state.sub.len());
    for st in &state.sub {
        lse.push(exact_group::<F>(
            lanes.group_delta(g),
            &st.order,
            &mut scratch,
        ));
    }
    let parts: Vec<&[f64]> = lse.iter().map(|v| v.as_slice()).collect();
    let mut o = [0.0; LANES];
    crate::kernels::mixture(lanes.isa, mix.log_f, &parts, &mut o);
    o
}

/// One block's partial: a compensated sum over lanes (Knuth's two-sum, exact
/// error terms) of the subjects' `R + offset`, plus `ln` of the product of their
/// `p`, kept as a product of mantissas and a sum of exponents per lane so that a
/// block takes one logarithm per lane, not one per subject. The same value
/// whatever the thread count.
struct BlockSum {
    s: Lanes,
    c: Lanes,
    /// Product of the `p` mantissas (each in `[1, 2)`; at most 512 groups a block).
    prod: Lanes,
    /// Sum of the `p` exponents (integers, exact).
    expo: Lanes,
}

/// `ln 2` in two parts (fdlibm's): `n * LN2_HI` is exact for `|n| < 2^20`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

impl BlockSum {
    fn new() -> Self {
        Self {
            s: [0.0; LANES],
            c: [0.0; LANES],
            prod: [1.0; LANES],
            expo: [0.0; LANES],
        }
    }

    /// Number of real subjects in group `g` (the rest are padding).
    #[inline(always)]
    fn real(offsets: &[f64], g: usize) -> usize {
        offsets.len().saturating_sub(g * LANES).min(LANES)
    }

    /// Adds `x` lane-wise to the compensated sum.
    #[inline(always)]
    fn two_sum(&mut self, x: &Lanes) {
        for l in 0..LANES {
            let t = self.s[l] + x[l];
            let z = t - self.s[l];
            self.c[l] += (self.s[l] - (t - z)) + (x[l] - z);
            self.s[l] = t;
        }
    }

    /// Adds group `g`'s values plus their offsets (padding lanes: nothing).
    #[inline(always)]
    fn add(&mut self, v: &Lanes, offsets: &[f64], g: usize) {
        let first = g * LANES;
        let mut x = [0.0; LANES];
        if Self::real(offsets, g) == LANES {
            let o = &offsets[first..first + LANES];
            for l in 0..LANES {
                x[l] = v[l] + o[l];
            }
        } else {
            for (l, o) in offsets[first..].iter().enumerate() {
                x[l] = v[l] + o;
            }
        }
        self.two_sum(&x);
    }

    /// Adds group `g`'s `R + ln p` plus offsets: `R` to the sum, `p` to the
    /// product (padding lanes: nothing).
    #[inline(always)]
    fn add_mix(&mut self, p: &Lanes, r: &Lanes, offsets: &[f64], g: usize) {
        self.add(r, offsets, g);
        let real = Self::real(offsets, g);
        const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
        const ONE: u64 = 0x3ff0_0000_0000_0000;
        // 2^52 + e as a double's bits, minus 2^52: the exponent field, exactly.
        const MAGIC: u64 = 0x4330_0000_0000_0000;
        for l in 0..LANES {
            // p is normal and positive (at least P_FLOOR).
            let b = p[l].to_bits();
            let e = f64::from_bits((b >> 52) | MAGIC) - 4_503_599_627_370_496.0 - 1023.0;
            let m = f64::from_bits((b & MANTISSA) | ONE);
            let keep = l < real;
            self.prod[l] *= if keep { m } else { 1.0 };
            self.expo[l] += if keep { e } else { 0.0 };
        }
    }

    /// The block's sum; starts the next block.
    #[inline(always)]
    fn finish<F: MulAdd>(&mut self) -> f64 {
        let lm = ln_lanes::<F>(self.prod);
        let mut x = [0.0; LANES];
        for l in 0..LANES {
            x[l] = self.expo[l] * LN2_HI + (self.expo[l] * LN2_LO + lm[l]);
        }
        self.two_sum(&x);
        let c: f64 = self.c.iter().sum();
        let total = neumaier_sum(&self.s) + c;
        *self = Self::new();
        total
    }
}

multiversion!(
    /// See `evaluate_body`.
    fn evaluate(mix: &MixInput, state: &mut State, ranges: &[Option<(usize, usize)>], rebuilt: &mut Vec<usize>, partials: &mut Vec<f64>) => evaluate_body
);

/// [`evaluate`] of `state` for `mixture`: from scratch when `ranges` is empty,
/// else the chunks it names; the groups rebuilt on the way.
fn evaluate_state(
    model: &PrefixModel,
    rows: &ChainRows,
    block: usize,
    state: &mut State,
    mixture: &Mixture,
    ranges: &[Option<(usize, usize)>],
    partials: &mut Vec<f64>,
) -> Vec<usize> {
    let lanes = model.lanes();
    let log_f = log_fractions(mixture);
    let mix = MixInput {
        lanes,
        rows,
        f: mixture.fractions(),
        log_f: &log_f,
        offsets: model.subject_offsets(),
        block,
    };
    let mut rebuilt = Vec::new();
    evaluate(lanes.isa, &mix, state, ranges, &mut rebuilt, partials);
    rebuilt
}

/// The [`ShardState`] of a [`PrefixModel`] (see the module notes).
pub(crate) struct PrefixShard {
    model: Arc<PrefixModel>,
    rows: Arc<ChainRows>,
    block: usize,
    current: State,
    /// Equal to `current` except where `dirty` says (the pending proposal).
    next: State,
    dirty: Option<Dirty>,
    current_partials: Vec<f64>,
    partials: Vec<f64>,
}

impl PrefixShard {
    pub(crate) fn new(model: Arc<PrefixModel>, start: &Mixture) -> Self {
        // Partials come from whole groups of subjects.
        const { assert!(PrefixModel::SHARD_BLOCK % LANES == 0) };
        let lanes = model.lanes();
        let state = State::new(lanes, start);
        let mut s = Self {
            block: PrefixModel::SHARD_BLOCK,
            next: state.clone(),
            current: state,
            dirty: None,
            current_partials: Vec::new(),
            partials: Vec::new(),
            rows: model.chain_rows(),
            model,
        };
        s.reset_shard(start);
        s
    }

    /// Makes `next` equal to `current` again.
    fn sync_next(&mut self) {
        if let Some(d) = self.dirty.take() {
            let sh = Shape::of(self.model.lanes());
            self.next.sync_from(&self.current, &d, sh);
        }
    }
}

impl ShardState for PrefixShard {
    fn reset_shard(&mut self, mixture: &Mixture) -> bool {
        let lanes = self.model.lanes();
        self.current = State::new(lanes, mixture);
        let mut partials = Vec::new();
        evaluate_state(
            &self.model,
            &self.rows,
            self.block,
            &mut self.current,
            mixture,
            &[],
            &mut partials,
        );
        self.next = self.current.clone();
        self.dirty = None;
        self.partials.clone_from(&partials);
        self.current_partials = partials;
        true
    }

    fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        if mixture.n_subtypes() != self.current.sub.len() {
            return self.reset_shard(mixture);
        }
        // A proposal never accepted nor rejected is dropped.
        self.sync_next();
        let mut stages = Vec::with_capacity(self.next.sub.len());
        for (s, seq) in mixture.sequences().iter().enumerate() {
            let new = seq.order_u16();
            let old = &mut self.next.sub[s].order;
            let differs = new.iter().zip(old.iter()).position(|(a, b)| a != b);
            let (Some(i), true) = (differs, changed.get(s).copied().unwrap_or(true)) else {
                stages.push(None);
                continue;
            };
            let j = new
                .iter()
                .zip(old.iter())
                .rposition(|(a, b)| a != b)
                .unwrap_or(i);
            // Stages i+1..=j hold a changed set of events; stage j+1 and later the
            // same events as before. A lone differing position (not a permutation
            // of the same events) changes every later stage.
            let hi = if j > i { j } else { new.len() };
            old.copy_from_slice(new);
            stages.push(Some((i + 1, hi)));
        }
        let rebuilt = evaluate_state(
            &self.model,
            &self.rows,
            self.block,
            &mut self.next,
            mixture,
            &stages,
            &mut self.partials,
        );
        self.dirty = Some(Dirty {
            chunks: stages.iter().map(|r| r.map(Chunks::of)).collect(),
            rebuilt,
        });
        true
    }

    fn accept_shard(&mut self, _rebuild: bool) {
        if self.dirty.is_some() {
            std::mem::swap(&mut self.current, &mut self.next);
        }
        self.sync_next();
        self.current_partials.clone_from(&self.partials);
    }

    fn reject(&mut self) {
        self.sync_next();
        self.partials.clone_from(&self.current_partials);
    }

    fn partials(&self) -> &[f64] {
        &self.partials
    }
}
