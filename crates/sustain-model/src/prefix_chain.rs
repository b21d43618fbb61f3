//! The incremental chain state of a [`PrefixModel`]. A proposal that reorders the
//! events between positions `i` and `j` of a sequence changes only the stage
//! values `v_k`, `i < k <= j` (later stages sum the same events). Per subtype the
//! state keeps every subject's stage values, `exp(v_k - reference)` and their sums
//! over chunks of stages, so a proposal recomputes the changed rows, their chunks
//! and one logarithm per subject, then the mixture and the block partials.
//!
//! Stage values are always left-to-right prefix sums of the current sequence's
//! deltas, so nothing drifts along a chain; a subject whose terms would leave the
//! exponential's range against its reference (a new stage far above the old
//! maximum, or every term tiny) is rebuilt around its new maximum.

use crate::kernels::{exp_lanes, ln_lanes, Fused, Isa, Lanes, MulAdd, Plain, LANES};
use crate::prefix::{log_fractions, PrefixModel};
use crate::prefix_lanes::PrefixLanes;
use std::sync::Arc;
use sustain_core::{neumaier_sum, Mixture, ShardState, SustainModel};

/// Stages per chunk of summed terms.
const CHUNK: usize = 8;
/// A subject whose terms sum below this is rebuilt (precision).
const SUM_FLOOR: f64 = 1e-200;
/// A stage this far above the reference is rebuilt (`exp_lanes` clamps at 700).
const EXP_CEIL: f64 = 680.0;

/// One subtype's state over every group of subjects.
#[derive(Clone)]
struct Subtype {
    order: Vec<u16>,
    /// `v[(k * n_groups + g) * LANES + l]`: stage values (stage 0 is 0), stage-major
    /// so that one stage of every group is contiguous.
    v: Vec<f64>,
    /// `exp(v - reference)`, same layout.
    t: Vec<f64>,
    /// Sums of `t` over chunks of [`CHUNK`] stages, `[chunk][g][lane]`.
    cs: Vec<f64>,
    /// Per subject (padded): the reference of its terms.
    reference: Vec<f64>,
    /// Per subject (padded): `log sum_k exp(v_k)`.
    lse: Vec<f64>,
}

/// What a proposal changed in a subtype: stage rows `lo..=hi` of every group, and
/// every row of the groups in `rebuilt`.
struct Dirty {
    lo: usize,
    hi: usize,
    rebuilt: Vec<usize>,
}

/// Shapes shared by the kernels.
#[derive(Clone, Copy)]
struct Shape {
    n_stages: usize,
    n_chunks: usize,
    n_groups: usize,
}

impl Shape {
    fn of(lanes: &PrefixLanes) -> Self {
        let n_stages = lanes.n_events + 1;
        Self {
            n_stages,
            n_chunks: n_stages.div_ceil(CHUNK),
            n_groups: lanes.n_groups,
        }
    }

    /// Row of stage `k` of group `g` in `v` and `t`.
    #[inline(always)]
    fn row(self, g: usize, k: usize) -> usize {
        k * self.n_groups + g
    }

    /// Row of chunk `c` of group `g` in `cs`.
    #[inline(always)]
    fn chunk(self, g: usize, c: usize) -> usize {
        c * self.n_groups + g
    }
}

impl Subtype {
    fn new(lanes: &PrefixLanes, order: &[u16]) -> Self {
        let sh = Shape::of(lanes);
        let g = lanes.n_groups;
        let mut s = Self {
            order: order.to_vec(),
            v: vec![0.0; g * sh.n_stages * LANES],
            t: vec![0.0; g * sh.n_stages * LANES],
            cs: vec![0.0; g * sh.n_chunks * LANES],
            reference: vec![0.0; g * LANES],
            lse: vec![0.0; g * LANES],
        };
        rebuild_all(lanes.isa, lanes, &mut s);
        s
    }

    /// Copies from `src` what `dirty` says differs.
    fn sync_from(&mut self, src: &Subtype, dirty: &Dirty, sh: Shape) {
        self.order.copy_from_slice(&src.order);
        self.lse.copy_from_slice(&src.lse);
        self.reference.copy_from_slice(&src.reference);
        let (c0, c1) = (dirty.lo / CHUNK, dirty.hi / CHUNK);
        // Row by row: a few lanes per group, where a slice copy would call memmove.
        let rows = sh.row(0, dirty.lo) * LANES..sh.row(0, dirty.hi + 1) * LANES;
        self.v[rows.clone()].copy_from_slice(&src.v[rows.clone()]);
        self.t[rows.clone()].copy_from_slice(&src.t[rows]);
        let chunks = sh.chunk(0, c0) * LANES..sh.chunk(0, c1 + 1) * LANES;
        self.cs[chunks.clone()].copy_from_slice(&src.cs[chunks]);
        for &g in &dirty.rebuilt {
            for k in 0..sh.n_stages {
                let r = sh.row(g, k);
                put(&mut self.v, r, &lanes_at(&src.v, r));
                put(&mut self.t, r, &lanes_at(&src.t, r));
            }
            for c in 0..sh.n_chunks {
                let r = sh.chunk(g, c);
                put(&mut self.cs, r, &lanes_at(&src.cs, r));
            }
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

/// Group `g` from scratch: stage values, reference = their maximum, terms, chunk
/// sums and `lse`.
#[inline(always)]
fn rebuild_group<F: MulAdd>(lanes: &PrefixLanes, st: &mut Subtype, g: usize, sh: Shape) {
    let delta = lanes.group_delta(g);
    let mut acc = [0.0; LANES];
    let mut max = [0.0f64; LANES];
    put(&mut st.v, sh.row(g, 0), &acc);
    for (k, &e) in st.order.iter().enumerate() {
        let d = lanes_at(delta, e as usize);
        for l in 0..LANES {
            acc[l] += d[l];
            max[l] = max[l].max(acc[l]);
        }
        put(&mut st.v, sh.row(g, k + 1), &acc);
    }
    put(&mut st.reference, g, &max);
    for k in 0..sh.n_stages {
        let v = lanes_at(&st.v, sh.row(g, k));
        let mut d = [0.0; LANES];
        for l in 0..LANES {
            d[l] = v[l] - max[l];
        }
        put(&mut st.t, sh.row(g, k), &exp_lanes::<F>(d));
    }
    for c in 0..sh.n_chunks {
        chunk_sum(st, g, c, sh);
    }
    finish_lse::<F>(st, g, sh);
}

#[inline(always)]
fn chunk_sum(st: &mut Subtype, g: usize, c: usize, sh: Shape) {
    let rows = c * CHUNK..((c + 1) * CHUNK).min(sh.n_stages);
    put(
        &mut st.cs,
        sh.chunk(g, c),
        &pairwise(&st.t, sh.row(g, rows.start), rows.len(), sh.n_groups),
    );
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

/// The chunks' total; `lse = reference + ln(total)`. False (nothing written) when
/// the total is below [`SUM_FLOOR`] in some lane.
#[inline(always)]
fn finish_lse<F: MulAdd>(st: &mut Subtype, g: usize, sh: Shape) -> bool {
    let s = pairwise(&st.cs, sh.chunk(g, 0), sh.n_chunks, sh.n_groups);
    if s.iter().any(|&x| x.is_nan() || x < SUM_FLOOR) {
        return false;
    }
    let lg = ln_lanes::<F>(s);
    let r = lanes_at(&st.reference, g);
    let mut o = [0.0; LANES];
    for l in 0..LANES {
        o[l] = r[l] + lg[l];
    }
    put(&mut st.lse, g, &o);
    true
}

#[inline(always)]
fn rebuild_all_body<F: MulAdd>(lanes: &PrefixLanes, st: &mut Subtype) {
    let sh = Shape::of(lanes);
    for g in 0..lanes.n_groups {
        rebuild_group::<F>(lanes, st, g, sh);
    }
}

multiversion!(
    /// Every group of a subtype from scratch.
    fn rebuild_all(lanes: &PrefixLanes, st: &mut Subtype) => rebuild_all_body
);

/// Recomputes stage rows `lo..=hi` of every group for `st.order` (already the
/// new order); groups that must be rebuilt are, and are pushed onto `rebuilt`.
#[inline(always)]
fn update_body<F: MulAdd>(
    lanes: &PrefixLanes,
    st: &mut Subtype,
    lo: usize,
    hi: usize,
    rebuilt: &mut Vec<usize>,
) {
    let sh = Shape::of(lanes);
    for g in 0..lanes.n_groups {
        let delta = lanes.group_delta(g);
        let reference = lanes_at(&st.reference, g);
        let mut acc = lanes_at(&st.v, sh.row(g, lo - 1));
        let mut high = false;
        for k in lo..=hi {
            let d = lanes_at(delta, st.order[k - 1] as usize);
            let mut x = [0.0; LANES];
            for l in 0..LANES {
                acc[l] += d[l];
                x[l] = acc[l] - reference[l];
                high |= x[l] > EXP_CEIL;
            }
            put(&mut st.v, sh.row(g, k), &acc);
            put(&mut st.t, sh.row(g, k), &exp_lanes::<F>(x));
        }
        if !high {
            for c in lo / CHUNK..=hi / CHUNK {
                chunk_sum(st, g, c, sh);
            }
            if finish_lse::<F>(st, g, sh) {
                continue;
            }
        }
        rebuild_group::<F>(lanes, st, g, sh);
        rebuilt.push(g);
    }
}

multiversion!(
    /// See `update_body`.
    fn update(lanes: &PrefixLanes, st: &mut Subtype, lo: usize, hi: usize, rebuilt: &mut Vec<usize>) => update_body
);

/// The [`ShardState`] of a [`PrefixModel`] (see the module notes).
pub(crate) struct PrefixShard {
    model: Arc<PrefixModel>,
    block: usize,
    current: Vec<Subtype>,
    /// Equal to `current` except where `dirty` says (the pending proposal).
    next: Vec<Subtype>,
    dirty: Vec<Option<Dirty>>,
    log_f: Vec<f64>,
    proposed_log_f: Vec<f64>,
    current_partials: Vec<f64>,
    partials: Vec<f64>,
}

impl PrefixShard {
    pub(crate) fn new(model: Arc<PrefixModel>, start: &Mixture) -> Self {
        let mut s = Self {
            model,
            block: PrefixModel::SHARD_BLOCK,
            current: Vec::new(),
            next: Vec::new(),
            dirty: Vec::new(),
            log_f: Vec::new(),
            proposed_log_f: Vec::new(),
            current_partials: Vec::new(),
            partials: Vec::new(),
        };
        s.reset_shard(start);
        s
    }

    fn block_partials(&self, use_next: bool, log_f: &[f64]) -> Vec<f64> {
        let lse: Vec<&[f64]> = (0..self.current.len())
            .map(|s| {
                if use_next && self.dirty[s].is_some() {
                    self.next[s].lse.as_slice()
                } else {
                    self.current[s].lse.as_slice()
                }
            })
            .collect();
        let per = self.model.mix_subjects(log_f, &lse);
        per.chunks(self.block).map(neumaier_sum).collect()
    }

    /// Makes `next` equal to `current` again.
    fn sync_next(&mut self) {
        let sh = Shape::of(self.model.lanes());
        for s in 0..self.current.len() {
            if let Some(d) = self.dirty[s].take() {
                self.next[s].sync_from(&self.current[s], &d, sh);
            }
        }
    }
}

impl ShardState for PrefixShard {
    fn reset_shard(&mut self, mixture: &Mixture) -> bool {
        let lanes = self.model.lanes();
        self.current = mixture
            .sequences()
            .iter()
            .map(|s| Subtype::new(lanes, s.order_u16()))
            .collect();
        self.next = self.current.clone();
        self.dirty = self.current.iter().map(|_| None).collect();
        self.log_f = log_fractions(mixture);
        self.current_partials = self.block_partials(false, &self.log_f);
        self.partials.clone_from(&self.current_partials);
        true
    }

    fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        if mixture.n_subtypes() != self.current.len() {
            return self.reset_shard(mixture);
        }
        // A proposal never accepted nor rejected is dropped.
        self.sync_next();
        let lanes = self.model.lanes();
        for (s, seq) in mixture.sequences().iter().enumerate() {
            if !changed.get(s).copied().unwrap_or(true) {
                continue;
            }
            let new = seq.order_u16();
            let old = &self.current[s].order;
            let Some(i) = new.iter().zip(old).position(|(a, b)| a != b) else {
                continue;
            };
            let j = new.iter().zip(old).rposition(|(a, b)| a != b).unwrap_or(i);
            // Stages i+1..=j hold a changed set of events; stage j+1 and later the
            // same events as before. A lone differing position (not a permutation
            // of the same events) changes every later stage.
            let hi = if j > i { j } else { new.len() };
            let next = &mut self.next[s];
            next.order.copy_from_slice(new);
            let mut rebuilt = Vec::new();
            update(lanes.isa, lanes, next, i + 1, hi, &mut rebuilt);
            self.dirty[s] = Some(Dirty {
                lo: i + 1,
                hi,
                rebuilt,
            });
        }
        self.proposed_log_f = log_fractions(mixture);
        self.partials = self.block_partials(true, &self.proposed_log_f);
        true
    }

    fn accept_shard(&mut self, _rebuild: bool) {
        for s in 0..self.current.len() {
            if self.dirty[s].is_some() {
                std::mem::swap(&mut self.current[s], &mut self.next[s]);
            }
        }
        self.sync_next();
        std::mem::swap(&mut self.log_f, &mut self.proposed_log_f);
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
