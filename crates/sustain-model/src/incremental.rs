//! Incremental likelihood for Metropolis chains: propose, then accept or reject.
//!
//! The state keeps, per subtype, `e[k][m] = exp(l[k][m] - ref[m])` (the stage
//! likelihood relative to a per-subject reference) and `p[m] = sum_k e[k][m]`.
//!
//! Moving one event changes the curves of a few biomarkers (the moved event's and
//! those whose events it passed) on the stages around their knots. For such a
//! biomarker the change of the stage log-likelihood, `T(k) = x dmu_k - obs dh_k`,
//! is piecewise quadratic in the stage `k` (both curves are piecewise linear), and
//! so is their sum over the changed biomarkers. So `G(k) = exp(sum_b T_b(k))`
//! follows `G_{k+1} = G_k R_k`, `R_{k+1} = R_k C_k` with `C_k` a product of
//! per-piece constants: a proposal sweeps once over the changed stages, multiplying
//! each changed `e` by `G`, with one exponential per stage where some curve breaks
//! instead of one per changed stage (the kernels' `group_sweep`). A fraction move
//! changes no stage likelihood at all.
//!
//! Exactness guards:
//! - multiplying keeps full relative precision as long as no `e` has been clamped
//!   (the exponential clamps below `exp(-700)`) or underflowed. A group that comes
//!   to hold an `e` below `1e-300` (many biomarkers, or extreme values) is rebuilt
//!   and from then on updated on the exact additive path: it keeps
//!   `l[k][m]` and recomputes `e = exp(l - ref)` at each changed stage (one
//!   exponential per changed stage, as before this scheme), until the next full
//!   rebuild;
//! - a group whose factors could leave about `exp(±250)` in one move (large `|x|`
//!   or a large move) is rebuilt from scratch instead;
//! - a subject whose mixture sum leaves `(exp(-300), exp(300))` makes the proposal
//!   fall back to the exact path. Rebuilt and additive groups exponentiate
//!   `l - ref` against a reference fixed at the last full rebuild, which moves may
//!   have left far behind: their exponential saturates at `exp(700)` (finite), so
//!   such a stage fails this check instead of wrapping into a wrong value;
//! - whether a new value fell below `1e-300` is checked when a proposal is
//!   accepted, as its values are copied into the state (most proposals are
//!   rejected and never need it);
//! - every [`REFRESH_EVERY`] accepted proposals the whole state is rebuilt, which
//!   bounds the rounding drift of the multiplicative updates (about 1e-13 relative
//!   per update).

#![allow(clippy::needless_range_loop)]

use crate::chain_screen::{ChainScreen, SubtypeMove};
use crate::kernels::{
    self, ChangeSet, Lanes, StageDelta, Sweep, SweepKind, SweepOp, SweepTerm, LANES,
};
use crate::likelihood::{Likelihood, Scratch};
use crate::mixture::Mixture;
use crate::stages::StageValues;
use std::sync::Arc;
use sustain_core::Screened;

/// Accepted proposals between full rebuilds.
pub const REFRESH_EVERY: u64 = 500;

/// Largest bound of `|log factor|` a group may take in one proposal before it is
/// rebuilt from scratch instead.
const MAX_STEP_BOUND: f64 = 250.0;
/// Below this an `e` may have lost precision (clamped or near underflow).
const FRAGILE: f64 = 1e-300;

/// Makes `v` at least `n` long (never shorter, so no refill per proposal).
fn grow(v: &mut Vec<f64>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Whether the smallest value of a group is below [`FRAGILE`] (NaN counts too).
fn is_fragile(min: f64) -> bool {
    !matches!(
        min.partial_cmp(&FRAGILE),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

/// One step of a changed biomarker's factor `exp(T(k))`, from stage `j` to `j + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Where a knot breaks a curve: the step is recomputed (`x a - obs d`).
    Direct,
    /// Stages `j - 1 ..= j + 1` in one linear piece of both curves: the `x` part of
    /// the step is unchanged and its `mu^2` part moved by a constant, so the
    /// factor is the previous step's times `1 + obs c_m1` (`c_m1 = expm1(-(d_j -
    /// d_{j-1}))`).
    Linked { c_m1: f64 },
}

/// One changed biomarker of a proposal (a "ramp"): its first changed stage `k0`,
/// its steps (`steps` range into the proposal's steps) and its values.
#[derive(Debug, Clone, Copy)]
struct RampMeta {
    b: usize,
    k0: usize,
    steps: (usize, usize),
    /// Start of the ramp's `dmu`, `dh` in `ramp_dmu`, `ramp_dh` (one per stage
    /// `k0 ..= k0 + steps`).
    vals: usize,
}

impl RampMeta {
    /// The last stage the ramp changes.
    fn last(&self) -> usize {
        self.k0 + (self.steps.1 - self.steps.0)
    }
    fn covers(&self, k: usize) -> bool {
        self.k0 <= k && k <= self.last()
    }
}

#[derive(Debug, Clone, Default)]
struct SubtypeProposal {
    active: bool,
    mu: Option<StageValues>,
    /// A stage-value buffer to refill (the replaced one after an accept).
    spare: Option<StageValues>,
    /// Changed stages, increasing, and `slot[k]` = index in `stages` or `u32::MAX`.
    stages: Vec<usize>,
    /// The other stages, increasing.
    unchanged: Vec<usize>,
    slot: Vec<u32>,
    ramps: Vec<RampMeta>,
    steps: Vec<Step>,
    /// Sums over the ramps of `max_k |dmu|` and `max_k |dh|`: a group's factors are
    /// within `exp(±(xmax A + D))`.
    bound_a: f64,
    bound_d: f64,
    /// `[g][i][lane]` for the i-th changed stage.
    new_e: Vec<f64>,
    /// `[g * LANES + lane]`.
    new_p: Vec<f64>,
    /// Per rebuilt group: whether its new values include one below [`FRAGILE`]
    /// (fragile groups stay fragile; the others are checked by `accept` as it
    /// copies them).
    fragile: Vec<bool>,
    /// `(stage, start, end)` into `deltas`: per changed stage, the changed
    /// biomarkers `(b, dmu, dh)` (for fragile groups' additive path).
    stage_deltas: Vec<(usize, usize, usize)>,
    deltas: Vec<(usize, f64, f64)>,
    /// `[g][i][lane]`: new `l` at the changed stages (fragile groups only).
    new_l: Vec<f64>,
    /// Per ramp stage, the ramp's `dmu` and `dh` (scaled by 1/sigma).
    ramp_dmu: Vec<f64>,
    ramp_dh: Vec<f64>,
    /// The move as one pass over the changed stages (`kernels::Sweep`).
    ops: Vec<SweepOp>,
    terms: Vec<SweepTerm>,
    /// Use one exponential per changed stage (`group_factors`) instead of the sweep.
    per_stage: bool,
    /// Per biomarker: whether one of its events moved (its curve may change).
    moved: Vec<bool>,
    /// Scratch of `describe_move`: per stage `dmu`, `dh`; region starts.
    dmu: Vec<f64>,
    dh: Vec<f64>,
    starts: Vec<usize>,
    /// Groups rebuilt from scratch, with their whole `e` and `l` blocks
    /// (`[j][k][lane]`).
    rebuilt: Vec<usize>,
    rebuilt_e: Vec<f64>,
    rebuilt_l: Vec<f64>,
}

/// Turns the ramps of a move into one pass over the stages they cover
/// (`kernels::Sweep`): a run of covered stages begins with `G = exp(T)` of every
/// ramp there; a step is `Linked` when every ramp across it is inside a linear piece
/// of both curves (a ramp's `Step::Linked`), else `Direct` with every ramp's change
/// of `dmu`, `dh` across it (a ramp that starts or ends there counts `0` outside).
fn build_sweep(prop: &mut SubtypeProposal) {
    prop.ops.clear();
    prop.terms.clear();
    let (Some(kmin), Some(kmax)) = (
        prop.ramps.iter().map(|r| r.k0).min(),
        prop.ramps.iter().map(RampMeta::last).max(),
    ) else {
        return;
    };
    let (dmu, dh) = (&prop.ramp_dmu, &prop.ramp_dh);
    let value = |r: &RampMeta, k: usize| {
        if r.covers(k) {
            (dmu[r.vals + k - r.k0], dh[r.vals + k - r.k0])
        } else {
            (0.0, 0.0)
        }
    };
    let mut in_run = false;
    // The terms of the last `Linked` op (the factor a `Repeat` reuses).
    let mut factor = (0, 0);
    for k in kmin..=kmax {
        if !prop.ramps.iter().any(|r| r.covers(k)) {
            in_run = false;
            continue;
        }
        let start = prop.terms.len();
        let kind = if !in_run {
            for r in prop.ramps.iter().filter(|r| r.covers(k)) {
                let (a, d) = value(r, k);
                prop.terms.push(SweepTerm {
                    b: r.b as u32,
                    a,
                    d,
                });
            }
            SweepKind::Begin
        } else {
            let across = |r: &&RampMeta| r.covers(k) || r.covers(k - 1);
            // `R` carries the previous step's ramps: one that ended there must leave.
            let before = |r: &&RampMeta| r.covers(k - 1) || (k >= 2 && r.covers(k - 2));
            let linked = |r: &RampMeta| match r.covers(k - 1) && r.covers(k) {
                true => match prop.steps[r.steps.0 + (k - 1 - r.k0)] {
                    Step::Linked { c_m1 } => Some(c_m1),
                    Step::Direct => None,
                },
                false => None,
            };
            if prop
                .ramps
                .iter()
                .filter(across)
                .all(|r| linked(r).is_some())
                && prop
                    .ramps
                    .iter()
                    .filter(before)
                    .all(|r| linked(r).is_some())
            {
                for r in prop.ramps.iter().filter(across) {
                    let c = linked(r).unwrap_or_else(|| unreachable!("checked above"));
                    prop.terms.push(SweepTerm {
                        b: r.b as u32,
                        a: c,
                        d: 0.0,
                    });
                }
                // The same ramps with the same constants as the previous op's factor
                // (inside one linear piece the constants agree up to rounding):
                // reuse it instead of recomputing it.
                let new = &prop.terms[start..];
                match prop.ops.last() {
                    Some(prev)
                        if matches!(prev.kind, SweepKind::Linked | SweepKind::Repeat)
                            && same_factor(&prop.terms[factor.0..factor.1], new) =>
                    {
                        prop.terms.truncate(start);
                        SweepKind::Repeat
                    }
                    _ => {
                        factor = (start, prop.terms.len());
                        SweepKind::Linked
                    }
                }
            } else {
                for r in prop.ramps.iter().filter(across) {
                    let ((a1, d1), (a0, d0)) = (value(r, k), value(r, k - 1));
                    prop.terms.push(SweepTerm {
                        b: r.b as u32,
                        a: a1 - a0,
                        d: d1 - d0,
                    });
                }
                SweepKind::Direct
            }
        };
        in_run = true;
        prop.ops.push(SweepOp {
            kind,
            k: k as u32,
            slot: prop.slot[k],
            terms: (start as u32, prop.terms.len() as u32),
        });
    }
}

/// Whether two `Linked` ops' terms give the same factor `prod (1 + obs c)`: the
/// same biomarkers with constants `c` (each above -1) equal up to the rounding of
/// the stage values they come from (~1e-15; a difference of 1e-13 changes a
/// factor by less than 1e-13 relative).
fn same_factor(a: &[SweepTerm], b: &[SweepTerm]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(s, t)| s.b == t.b && (s.a - t.a).abs() <= 1e-13 * s.a.abs().max(1.0))
}

/// How a chain's proposals use the single-precision screen
/// ([`IncrementalLikelihood::propose_unless_rejected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screening {
    /// Every proposal is evaluated exactly.
    Off,
    /// Screened while the screen saves time (measured as the chain runs).
    Adaptive,
    /// Every proposal is screened first (for tests and comparisons).
    Always,
}

/// Current state of one chain's likelihood with an optional pending proposal.
#[derive(Debug, Clone)]
pub struct IncrementalLikelihood {
    lik: Arc<Likelihood>,
    current: Mixture,
    mu: Vec<StageValues>,
    /// Per subtype `[g][k][lane]`.
    e: Vec<Vec<f64>>,
    /// Per subtype `[g * LANES + lane]`.
    p: Vec<Vec<f64>>,
    /// Per subtype and group: holds an `e` below [`FRAGILE`], so it is updated on
    /// the exact additive path with `l`.
    fragile: Vec<Vec<bool>>,
    /// Per subtype `[g][k][lane]`: the stage log-likelihood minus nothing (as the
    /// stage kernel gives it), kept current for fragile groups only (allocated
    /// when a first group turns fragile).
    l: Vec<Vec<f64>>,
    reference: Vec<f64>,
    loglike: f64,
    proposal: Vec<SubtypeProposal>,
    /// The pending proposal's log-likelihood and whether accepting it rebuilds
    /// the state; its mixture is `proposed_mixture`.
    proposed: Option<(f64, bool)>,
    /// Reused for every proposal (no allocation per proposal).
    proposed_mixture: Mixture,
    /// Per block of subjects, the compensated sums of `ref + const` over its
    /// subjects (what `total` adds to the `ln`s; `kernels::offset_blocks`).
    offsets: Vec<[f64; 8]>,
    /// The last total's partial sums, one per [`crate::TOTAL_BLOCK`] subjects.
    blocks: Vec<f64>,
    scratch: Scratch,
    l_scratch: Vec<f64>,
    accepted_since_refresh: u64,
    /// Single-precision copy of the state that proves most rejections without
    /// the double-precision work (`crate::chain_screen`); `None` without AVX2.
    screen: Option<ChainScreen>,
    /// Whether the screen was made (or found impossible, or turned off) yet.
    screen_tried: bool,
    /// Proposals the screen rejected.
    screen_rejected: u64,
    /// [`Screening::Always`].
    screen_always: bool,
    /// Sum over subjects of `ref + const` (what the total adds to the `ln`s).
    offset_sum: f64,
    /// The proposal buffers describe the pending proposal (by
    /// [`Self::propose_unless_rejected`]); its kernels are still to run.
    described: bool,
}

impl IncrementalLikelihood {
    /// Builds the state of `mixture` from scratch.
    pub fn new(lik: Arc<Likelihood>, mixture: &Mixture) -> Self {
        let mut s = Self {
            lik,
            current: mixture.clone(),
            mu: Vec::new(),
            e: Vec::new(),
            p: Vec::new(),
            fragile: Vec::new(),
            l: Vec::new(),
            reference: Vec::new(),
            loglike: 0.0,
            proposal: Vec::new(),
            proposed: None,
            proposed_mixture: mixture.clone(),
            blocks: Vec::new(),
            offsets: Vec::new(),
            scratch: Scratch::default(),
            l_scratch: Vec::new(),
            accepted_since_refresh: 0,
            screen: None,
            screen_tried: false,
            screen_rejected: 0,
            screen_always: false,
            offset_sum: 0.0,
            described: false,
        };
        s.reset(mixture);
        s
    }

    /// The prepared data.
    pub fn likelihood(&self) -> &Arc<Likelihood> {
        &self.lik
    }
    /// The current mixture.
    pub fn current(&self) -> &Mixture {
        &self.current
    }
    /// The current total log-likelihood.
    pub fn loglike(&self) -> f64 {
        self.loglike
    }

    /// Rebuilds the whole state for `mixture`; returns its log-likelihood.
    pub fn reset(&mut self, mixture: &Mixture) -> f64 {
        let ok = self.reset_shard(mixture);
        self.loglike = self.combined(ok, mixture);
        self.loglike
    }

    /// The log-likelihood from the block partials, or from scratch where a subject
    /// left the incremental state's range (`ok` false).
    fn combined(&self, ok: bool, mixture: &Mixture) -> f64 {
        if ok {
            crate::likelihood::neumaier_sum(&self.blocks)
        } else {
            self.lik.loglike(mixture)
        }
    }

    /// The partial sums of the last [`Self::reset_shard`] or
    /// [`Self::propose_shard`], one per [`crate::TOTAL_BLOCK`] subjects: the total
    /// log-likelihood is their compensated sum in order
    /// ([`crate::likelihood::neumaier_sum`]), over the blocks of every shard.
    pub fn partials(&self) -> &[f64] {
        &self.blocks
    }

    /// As [`Self::reset`] for one shard of a split chain ([`Likelihood::shard`]):
    /// rebuilds the state and leaves the block partials in [`Self::partials`];
    /// returns whether every subject stayed in the incremental range (if not, the
    /// caller takes the log-likelihood from scratch).
    pub fn reset_shard(&mut self, mixture: &Mixture) -> bool {
        let lik = Arc::clone(&self.lik);
        let ns = lik.events().n_stages();
        let ng = lik.n_groups();
        let mp = ng * LANES;
        let n_sub = mixture.n_subtypes();
        self.current = mixture.clone();
        self.mu = mixture
            .sequences()
            .iter()
            .map(|s| StageValues::new(lik.events(), s))
            .collect();
        // Reference offset per subject: the max over subtypes and stages of l, so
        // that e <= 1 and the best term is exactly 1.
        let mut lse = vec![0.0; mp];
        let mut max_lse = vec![f64::NEG_INFINITY; mp];
        for s in 0..n_sub {
            lik.subtype_lse_from_stage_values(&self.mu[s], &mut self.scratch, &mut lse);
            for (mx, v) in max_lse.iter_mut().zip(&lse) {
                *mx = mx.max(*v);
            }
        }
        let mut offset = max_lse.clone();
        for (o, c) in offset.iter_mut().zip(lik.subject_constants()) {
            *o += c;
        }
        self.offsets = kernels::offset_blocks(&offset, lik.n_subjects());
        self.offset_sum = crate::likelihood::neumaier_sum(&offset[..lik.n_subjects()]);
        self.reference = max_lse;
        self.e = vec![vec![0.0; ng * ns * LANES]; n_sub];
        self.p = vec![vec![0.0; mp]; n_sub];
        self.fragile = vec![vec![false; ng]; n_sub];
        self.l = vec![Vec::new(); n_sub];
        for s in 0..n_sub {
            let mu = self.mu[s].clone();
            self.prepare(&mu);
            for g in 0..ng {
                let mut p = [0.0; LANES];
                let block = g * ns * LANES..(g + 1) * ns * LANES;
                let mut e = std::mem::take(&mut self.e[s]);
                let fragile = self.rebuild_group(g, &mut e[block.clone()], &mut p);
                self.e[s] = e;
                self.p[s][g * LANES..(g + 1) * LANES].copy_from_slice(&p);
                if fragile {
                    self.keep_l(s, g);
                }
            }
        }
        self.proposal = vec![SubtypeProposal::default(); n_sub];
        self.proposed = None;
        self.described = false;
        self.accepted_since_refresh = 0;
        // The screen's copy is made on the first screened proposal (E-M's states
        // never screen) and then kept current.
        if self
            .screen
            .as_ref()
            .is_some_and(|sc| sc.n_subtypes() != n_sub)
        {
            self.screen = None;
            self.screen_tried = false;
        }
        if let Some(screen) = self.screen.as_mut().filter(|sc| !sc.is_stale()) {
            for s in 0..n_sub {
                screen.load(s, &self.e[s], &self.p[s]);
            }
        }
        let p_refs: Vec<&[f64]> = self.p.iter().map(Vec::as_slice).collect();
        let mut blocks = std::mem::take(&mut self.blocks);
        let ok = self.total(mixture.fractions(), &p_refs, &mut blocks);
        drop(p_refs);
        self.blocks = blocks;
        ok
    }

    /// Prepares the stage kernel's inputs for stage values `mu` (used by
    /// [`Self::rebuild_group`]).
    fn prepare(&mut self, mu: &StageValues) {
        self.lik.fill_stage_input(mu, &mut self.scratch);
    }

    /// `e` (one group's `[k][lane]` block) and its stage sum, from scratch, for the
    /// stage values last given to [`Self::prepare`]; returns whether a value is below
    /// [`FRAGILE`]. Padding lanes get `e = 1` (they never change and are left out of
    /// every total).
    fn rebuild_group(&mut self, g: usize, e: &mut [f64], p: &mut Lanes) -> bool {
        let lik = &self.lik;
        let ns = lik.events().n_stages();
        let st = lik.stage_input(&self.scratch);
        self.l_scratch.resize(st.stride * LANES, 0.0);
        let r: &Lanes = self.reference[g * LANES..(g + 1) * LANES]
            .try_into()
            .unwrap();
        kernels::group_state(
            lik.isa(),
            &st,
            &lik.group(g),
            r,
            &mut self.l_scratch,
            &mut e[..ns * LANES],
            p,
        );
        let real = LANES.min(lik.n_subjects() - g * LANES);
        let mut min = f64::INFINITY;
        for k in 0..ns {
            for lane in 0..LANES {
                if lane < real {
                    min = min.min(e[k * LANES + lane]);
                } else {
                    e[k * LANES + lane] = 1.0;
                }
            }
        }
        for lane in real..LANES {
            p[lane] = ns as f64;
        }
        is_fragile(min)
    }

    /// Marks group `g` of subtype `s` fragile and stores its `l` from the last
    /// [`Self::rebuild_group`] (in `l_scratch`).
    fn keep_l(&mut self, s: usize, g: usize) {
        let ns = self.lik.events().n_stages();
        if self.l[s].is_empty() {
            self.l[s] = vec![0.0; self.lik.n_groups() * ns * LANES];
        }
        self.l[s][g * ns * LANES..(g + 1) * ns * LANES]
            .copy_from_slice(&self.l_scratch[..ns * LANES]);
        self.fragile[s][g] = true;
    }

    /// Block partial sums (into `blocks`, one per [`crate::TOTAL_BLOCK`] subjects)
    /// of `ref + ln(sum_s f_s p_s) + const`; false if a subject's sum left the safe
    /// range (then the caller falls back to the exact path).
    fn total(&self, fractions: &[f64], p: &[&[f64]], blocks: &mut Vec<f64>) -> bool {
        let lik = &self.lik;
        kernels::mixture_total(
            lik.isa(),
            fractions,
            p,
            &self.offsets,
            lik.n_subjects(),
            blocks,
        )
    }

    /// Evaluates `mixture`, whose sequences differ from the current ones only where
    /// `changed[s]` is true (fractions may differ freely). Returns its
    /// log-likelihood; the state is unchanged until [`Self::accept`].
    pub fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        let ok = self.propose_state(mixture, changed);
        let ll = self.combined(ok, mixture);
        self.proposed_mixture.clone_from(mixture);
        self.proposed = Some((ll, !ok));
        ll
    }

    /// As [`Self::propose`] for one shard of a split chain: leaves the block
    /// partials in [`Self::partials`] and returns whether every subject stayed in
    /// the incremental range. Resolve it with [`Self::accept_shard`] or
    /// [`Self::reject`].
    pub fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        let ok = self.propose_state(mixture, changed);
        self.proposed_mixture.clone_from(mixture);
        self.proposed = Some((f64::NAN, !ok));
        ok
    }

    /// Accepts the pending [`Self::propose_shard`]; `rebuild` (some shard of the
    /// chain left the incremental range) rebuilds the state, as [`Self::accept`]
    /// does after such a proposal.
    pub fn accept_shard(&mut self, rebuild: bool) {
        if let Some(p) = self.proposed.as_mut() {
            p.1 |= rebuild;
        }
        self.accept();
    }

    /// As [`Self::propose`], unless the single-precision screen proves that the
    /// chain rejects the proposal: `proposal.accepts(ll)` is the chain's decision
    /// at log-likelihood `ll` (nondecreasing in `ll`). Then the proposal is
    /// dropped (as by [`Self::reject`]) and `None` returned, else its
    /// log-likelihood, to the bit that of [`Self::propose`].
    pub fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
        if self.screen_rejects(proposal) {
            return None;
        }
        Some(self.propose(proposal.mixture, proposal.changed))
    }

    /// [`Self::propose_unless_rejected`] for one shard that is the whole chain
    /// (a [`crate::likelihood::Likelihood`] over every subject): `None` when the
    /// screen proved the rejection, else as [`Self::propose_shard`].
    pub fn propose_shard_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<bool> {
        if self.screen_rejects(proposal) {
            return None;
        }
        Some(self.propose_shard(proposal.mixture, proposal.changed))
    }

    /// Describes the proposal and screens it; true (the proposal dropped) when
    /// the chain certainly rejects it. Otherwise the description is kept for the
    /// exact evaluation that follows.
    fn screen_rejects(&mut self, proposal: Screened<'_>) -> bool {
        let Screened {
            mixture,
            changed,
            accepts,
        } = proposal;
        self.ensure_screen();
        let Some(screen) = self.screen.as_mut() else {
            return false;
        };
        if !screen.wanted() {
            return false;
        }
        if screen.is_stale() {
            for (s, (e, p)) in self.e.iter().zip(&self.p).enumerate() {
                screen.load(s, e, p);
            }
        }
        self.describe(mixture, changed);
        self.described = true;
        // The bound is timed on every 4th proposal (reading the clock is not free).
        let t0 = self
            .screen
            .as_mut()
            .is_some_and(ChainScreen::sample)
            .then(std::time::Instant::now);
        let hi = self.described_bound(mixture.fractions());
        let rejected = hi.is_some_and(|hi| !accepts(hi));
        if let Some(screen) = self.screen.as_mut() {
            screen.record(rejected, t0.map(|t| t.elapsed().as_secs_f64()));
        }
        if rejected {
            self.screen_rejected += 1;
            self.reject();
        }
        rejected
    }

    /// The screen's upper bound of the proposal's log-likelihood (`None` where it
    /// declines or no screen exists); the proposal stays described for
    /// [`Self::propose`].
    #[cfg(test)]
    pub(crate) fn screen_bound(&mut self, mixture: &Mixture, changed: &[bool]) -> Option<f64> {
        self.ensure_screen();
        self.describe(mixture, changed);
        self.described = true;
        self.described_bound(mixture.fractions())
    }

    /// The screen's upper bound of the described proposal's log-likelihood with
    /// `fractions` (`None` where it declines or no screen exists).
    fn described_bound(&mut self, fractions: &[f64]) -> Option<f64> {
        let Self {
            screen,
            proposal,
            offset_sum,
            ..
        } = self;
        let moves: Vec<Option<SubtypeMove>> = proposal
            .iter()
            .map(|p| {
                p.active.then_some(SubtypeMove {
                    ops: &p.ops,
                    terms: &p.terms,
                    unchanged: &p.unchanged,
                    bound_a: p.bound_a,
                    bound_d: p.bound_d,
                })
            })
            .collect();
        screen.as_mut()?.upper_bound(&moves, fractions, *offset_sum)
    }

    /// How [`Self::propose_unless_rejected`] uses the single-precision screen
    /// (default [`Screening::Adaptive`] where the CPU has AVX2); results are the
    /// same in every mode, only the time differs.
    pub fn set_screening(&mut self, mode: Screening) {
        self.screen = None;
        self.screen_tried = mode == Screening::Off;
        self.screen_always = mode == Screening::Always;
    }

    /// How many proposals the screen has rejected without evaluating them.
    pub fn screen_rejections(&self) -> u64 {
        self.screen_rejected
    }

    /// Makes the screen's copy of the state on first use (E-M's states, which
    /// never screen, never pay for it).
    fn ensure_screen(&mut self) {
        if self.screen_tried {
            return;
        }
        self.screen_tried = true;
        self.screen = ChainScreen::new(&self.lik, self.e.len());
        if let Some(screen) = self.screen.as_mut() {
            screen.always |= self.screen_always;
            for (s, (e, p)) in self.e.iter().zip(&self.p).enumerate() {
                screen.load(s, e, p);
            }
        }
    }

    /// The kernels' part of a proposal: fills the proposal buffers and the block
    /// partials; returns whether every subject stayed in range.
    fn propose_state(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        if !std::mem::take(&mut self.described) {
            self.describe(mixture, changed);
        }
        // The screen weighs its time against the exact evaluation's (timed on
        // every 4th evaluation while the screen runs).
        let timed = self
            .screen
            .as_mut()
            .is_some_and(|sc| !sc.is_stale() && sc.sample())
            .then(std::time::Instant::now);
        let ok = self.compute(mixture);
        if let (Some(t0), Some(screen)) = (timed, self.screen.as_mut()) {
            screen.record_exact(t0.elapsed().as_secs_f64());
        }
        ok
    }

    /// Fills the proposal buffers' description of the moves (`describe_move`):
    /// subtype `s` is active when `changed[s]` and some stage value changes.
    fn describe(&mut self, mixture: &Mixture, changed: &[bool]) {
        let lik = Arc::clone(&self.lik);
        let mut proposals = std::mem::take(&mut self.proposal);
        for (s, prop) in proposals.iter_mut().enumerate() {
            prop.active = false;
            if let Some(mu) = prop.mu.take() {
                prop.spare = Some(mu);
            }
            if !changed[s] {
                continue;
            }
            // Only the biomarkers of events whose position changed have new curves.
            let (old_seq, new_seq) = (&self.current.sequences()[s], &mixture.sequences()[s]);
            prop.moved.clear();
            prop.moved.resize(lik.events().n_biomarkers(), false);
            for (e, ev) in lik.events().events().iter().enumerate() {
                if old_seq.position(e) != new_seq.position(e) {
                    prop.moved[ev.biomarker] = true;
                }
            }
            let mut mu = prop.spare.take().unwrap_or_else(|| self.mu[s].clone());
            mu.refill_moved(&self.mu[s], lik.events(), new_seq, &prop.moved);
            self.describe_move(s, new_seq, &mu, prop);
            prop.active = !prop.stages.is_empty();
            prop.mu = Some(mu);
        }
        self.proposal = proposals;
    }

    /// Runs the kernels of the described proposal (new `e`, `p` of its active
    /// subtypes) and the block partials of its total; returns whether every
    /// subject stayed in range.
    fn compute(&mut self, mixture: &Mixture) -> bool {
        let lik = Arc::clone(&self.lik);
        let ns = lik.events().n_stages();
        let ng = lik.n_groups();
        let mut proposals = std::mem::take(&mut self.proposal);
        for (s, prop) in proposals.iter_mut().enumerate() {
            if !prop.active {
                continue;
            }
            let mu = prop
                .mu
                .take()
                .unwrap_or_else(|| unreachable!("an active proposal has stage values"));
            let nc = prop.stages.len();
            // Buffers only grow: the kernels write every value they later read.
            grow(&mut prop.new_e, ng * nc * LANES);
            prop.new_p.resize(ng * LANES, 0.0);
            prop.rebuilt.clear();
            prop.rebuilt_e.clear();
            prop.rebuilt_l.clear();
            prop.fragile.clear();
            prop.fragile.resize(ng, false);
            let sweep = Sweep::new(
                &prop.ops,
                &prop.terms,
                &prop.stages,
                &prop.unchanged,
                ns,
                lik.events().n_biomarkers(),
            );
            // Per-stage changes, listed only for the per-stage path and fragile
            // groups (`describe_move`).
            let changes = (prop.stage_deltas.len() == prop.stages.len()).then(|| {
                ChangeSet::new(
                    prop.stage_deltas
                        .iter()
                        .map(|&(stage, a, b)| StageDelta {
                            stage,
                            deltas: &prop.deltas[a..b],
                        })
                        .collect(),
                    &prop.unchanged,
                    ns,
                    lik.events().n_biomarkers(),
                )
            });
            let listed = || {
                changes.as_ref().unwrap_or_else(|| {
                    unreachable!("listed for fragile groups and per-stage moves")
                })
            };
            let xmax = lik.group_xmax();
            let mut prepared = false;
            // The common case, a group that is not fragile and whose factors stay
            // in bounds, takes the sweep; consecutive such groups go to the
            // kernel in one call.
            macro_rules! plain {
                ($g:expr) => {
                    !prop.per_stage
                        && !self.fragile[s][$g]
                        && xmax[$g] * prop.bound_a + prop.bound_d <= MAX_STEP_BOUND
                };
            }
            let mut g = 0;
            while g < ng {
                if plain!(g) {
                    let start = g;
                    while g < ng && plain!(g) {
                        g += 1;
                    }
                    let (x, obs) = lik.all_group_arrays();
                    kernels::group_sweeps(
                        lik.isa(),
                        &sweep,
                        x,
                        obs,
                        &self.e[s],
                        &mut prop.new_e,
                        &mut prop.new_p,
                        start..g,
                    );
                    continue;
                }
                let bound = xmax[g] * prop.bound_a + prop.bound_d;
                let block = g * ns * LANES..(g + 1) * ns * LANES;
                let nblock = g * nc * LANES..(g + 1) * nc * LANES;
                let mut p = [0.0; LANES];
                if self.fragile[s][g] {
                    // The exact additive path (see the module notes).
                    grow(&mut prop.new_l, ng * nc * LANES);
                    let (x, obs) = lik.group_arrays(g);
                    let r: &Lanes = self.reference[g * LANES..(g + 1) * LANES]
                        .try_into()
                        .unwrap();
                    kernels::group_delta(
                        lik.isa(),
                        x,
                        obs,
                        listed(),
                        r,
                        &self.l[s][block.clone()],
                        &self.e[s][block],
                        &mut prop.new_l[nblock.clone()],
                        &mut prop.new_e[nblock],
                        &mut p,
                    );
                } else if bound <= MAX_STEP_BOUND {
                    // (Not fragile and in bounds: the per-stage path, as the sweep
                    // came first above.) Whether a new value fell below FRAGILE is
                    // checked when the proposal is accepted (`accept`).
                    let (x, obs) = lik.group_arrays(g);
                    let (e, new_e) = (&self.e[s][block], &mut prop.new_e[nblock]);
                    kernels::group_factors(lik.isa(), listed(), x, obs, e, new_e, &mut p)
                } else {
                    // Rebuild this group from scratch (see the module notes).
                    let at = prop.rebuilt_e.len();
                    prop.rebuilt_e.resize(at + ns * LANES, 0.0);
                    let mut fresh = std::mem::take(&mut prop.rebuilt_e);
                    if !prepared {
                        self.prepare(&mu);
                        prepared = true;
                    }
                    prop.fragile[g] = self.rebuild_group(g, &mut fresh[at..], &mut p);
                    for (i, &k) in prop.stages.iter().enumerate() {
                        prop.new_e[(g * nc + i) * LANES..(g * nc + i + 1) * LANES]
                            .copy_from_slice(&fresh[at + k * LANES..at + (k + 1) * LANES]);
                    }
                    prop.rebuilt_e = fresh;
                    prop.rebuilt_l
                        .extend_from_slice(&self.l_scratch[..ns * LANES]);
                    prop.rebuilt.push(g);
                }
                prop.new_p[g * LANES..(g + 1) * LANES].copy_from_slice(&p);
                g += 1;
            }
            drop(changes);
            prop.mu = Some(mu);
        }
        let p_refs: Vec<&[f64]> = (0..self.p.len())
            .map(|s| {
                if proposals[s].active {
                    proposals[s].new_p.as_slice()
                } else {
                    self.p[s].as_slice()
                }
            })
            .collect();
        let mut blocks = std::mem::take(&mut self.blocks);
        let ok = self.total(mixture.fractions(), &p_refs, &mut blocks);
        drop(p_refs);
        self.blocks = blocks;
        self.proposal = proposals;
        ok
    }

    /// Fills `prop` with the changed stages and one ramp per changed biomarker of
    /// subtype `s` moving to `sequence` (stage values `mu`).
    fn describe_move(
        &self,
        s: usize,
        sequence: &crate::sequence::Sequence,
        mu: &StageValues,
        prop: &mut SubtypeProposal,
    ) {
        let events = self.lik.events();
        let ns = events.n_stages();
        let inv_sigma = 1.0 / events.sigma();
        let old_seq = &self.current.sequences()[s];
        prop.stages.clear();
        prop.slot.clear();
        prop.slot.resize(ns, u32::MAX);
        prop.ramps.clear();
        prop.steps.clear();
        prop.ramp_dmu.clear();
        prop.ramp_dh.clear();
        prop.bound_a = 0.0;
        prop.bound_d = 0.0;
        // Reused buffers (no allocation per proposal); `slot` marks changed stages
        // with 0 first and numbers them at the end.
        prop.dmu.resize(ns, 0.0);
        prop.dh.resize(ns, 0.0);
        let (dmu, dh, starts) = (&mut prop.dmu, &mut prop.dh, &mut prop.starts);
        for b in (0..events.n_biomarkers()).filter(|&b| prop.moved[b]) {
            let (old, new) = (self.mu[s].biomarker(b), mu.biomarker(b));
            let Some(k_first) = (0..ns).find(|&k| old[k] != new[k]) else {
                continue;
            };
            let k_last = (0..ns).rev().find(|&k| old[k] != new[k]).unwrap_or(k_first);
            let (mut max_a, mut max_d) = (0.0f64, 0.0f64);
            for k in k_first..=k_last {
                let (o, n) = (old[k] * inv_sigma, new[k] * inv_sigma);
                dmu[k] = n - o;
                dh[k] = 0.5 * (n * n - o * o);
                if old[k] != new[k] {
                    prop.slot[k] = 0;
                }
                max_a = max_a.max(dmu[k].abs());
                max_d = max_d.max(dh[k].abs());
            }
            prop.bound_a += max_a;
            prop.bound_d += max_d;
            // Pieces where both curves are linear start at stage 0 and at
            // `position + 1` of each of the biomarker's events, old and new.
            starts.clear();
            starts.push(0);
            for &e in events.biomarker_events(b) {
                starts.push(old_seq.position(e) + 1);
                starts.push(sequence.position(e) + 1);
            }
            let is_start = |k: usize| starts.contains(&k);
            let first_step = prop.steps.len();
            let mut d_prev = 0.0;
            for j in k_first..k_last {
                let d = dh[j + 1] - dh[j];
                // Stages j-1, j, j+1 in one piece of both curves: the slope's x part
                // is unchanged and its mu^2 part moved by a constant.
                if j > k_first && !is_start(j) && !is_start(j + 1) {
                    prop.steps.push(Step::Linked {
                        c_m1: (-(d - d_prev)).exp_m1(),
                    });
                } else {
                    prop.steps.push(Step::Direct);
                }
                d_prev = d;
            }
            prop.ramps.push(RampMeta {
                b,
                k0: k_first,
                steps: (first_step, prop.steps.len()),
                vals: prop.ramp_dmu.len(),
            });
            prop.ramp_dmu.extend_from_slice(&dmu[k_first..=k_last]);
            prop.ramp_dh.extend_from_slice(&dh[k_first..=k_last]);
        }
        prop.unchanged.clear();
        for k in 0..ns {
            if prop.slot[k] == 0 {
                prop.slot[k] = prop.stages.len() as u32;
                prop.stages.push(k);
            } else {
                prop.unchanged.push(k);
            }
        }
        build_sweep(prop);
        // Per changed stage, the biomarkers whose value moved there (the additive
        // path of fragile groups, so only when this subtype has one).
        prop.stage_deltas.clear();
        prop.deltas.clear();
        // The sweep costs one exponential (~24 vector operations) per `Begin` and
        // `Direct` stage, ~2 per term and ~6 per stage it carries; the per-stage
        // factors one exponential and ~6 more per changed stage: take the cheaper.
        let exps = prop
            .ops
            .iter()
            .filter(|o| matches!(o.kind, SweepKind::Begin | SweepKind::Direct))
            .count();
        let sweep_cost = 24 * exps + 2 * prop.terms.len() + 6 * prop.ops.len();
        let stage_cost = 30 * prop.stages.len();
        prop.per_stage = sweep_cost >= stage_cost;
        if !prop.per_stage && !self.fragile[s].contains(&true) {
            return;
        }
        for &k in &prop.stages {
            let start = prop.deltas.len();
            for r in &prop.ramps {
                if k >= r.k0 && k <= r.k0 + (r.steps.1 - r.steps.0) {
                    let (old, new) = (self.mu[s].get(r.b, k), mu.get(r.b, k));
                    if old != new {
                        let (o, n) = (old * inv_sigma, new * inv_sigma);
                        prop.deltas.push((r.b, n - o, 0.5 * (n * n - o * o)));
                    }
                }
            }
            prop.stage_deltas.push((k, start, prop.deltas.len()));
        }
    }

    /// Per padded subject, `sum_{s != t} f_s sum_k exp(l_s[k] - ref)` of the current
    /// state into `sums` and `ref` into `reference`, `l` being the stage part of the
    /// log-likelihood (as the stage kernel gives it): `ln(sums) + ref` is the part
    /// of each subject's mixture that a new sequence for subtype `t` leaves
    /// unchanged (`sums` is 0 for one subtype). Padding lanes are meaningless.
    pub(crate) fn others_mix(&self, t: usize, sums: &mut Vec<f64>, reference: &mut Vec<f64>) {
        let f = self.current.fractions();
        sums.clear();
        sums.resize(self.reference.len(), 0.0);
        for (s, p) in self.p.iter().enumerate() {
            if s != t {
                for (o, v) in sums.iter_mut().zip(p) {
                    *o += f[s] * v;
                }
            }
        }
        reference.clone_from(&self.reference);
    }

    /// Makes the pending proposal current.
    pub fn accept(&mut self) {
        let Some((ll, needs_reset)) = self.proposed.take() else {
            return;
        };
        self.accepted_since_refresh += 1;
        if needs_reset || self.accepted_since_refresh >= REFRESH_EVERY {
            let mixture = self.proposed_mixture.clone();
            // A shard (NaN: no total of its own) only rebuilds its state.
            if ll.is_nan() {
                self.reset_shard(&mixture);
            } else {
                self.reset(&mixture);
            }
            return;
        }
        let ns = self.lik.events().n_stages();
        let ng = self.lik.n_groups();
        let mut proposals = std::mem::take(&mut self.proposal);
        for (s, prop) in proposals.iter_mut().enumerate() {
            if let Some(mu) = prop.mu.take() {
                prop.spare = Some(std::mem::replace(&mut self.mu[s], mu));
            }
            if !prop.active {
                continue;
            }
            let nc = prop.stages.len();
            let mut rebuilt = prop.rebuilt.iter().enumerate().peekable();
            let mut turned_fragile = Vec::new();
            // The screen's copy takes each group's new rows while they are in cache.
            let mut screen = self.screen.as_mut().filter(|sc| !sc.is_stale());
            for g in 0..ng {
                let block = g * ns * LANES..(g + 1) * ns * LANES;
                if let Some(&(j, _)) = rebuilt.peek().filter(|(_, &rg)| rg == g) {
                    rebuilt.next();
                    let from = j * ns * LANES..(j + 1) * ns * LANES;
                    self.e[s][block.clone()].copy_from_slice(&prop.rebuilt_e[from.clone()]);
                    self.fragile[s][g] = prop.fragile[g];
                    if prop.fragile[g] {
                        if self.l[s].is_empty() {
                            self.l[s] = vec![0.0; ng * ns * LANES];
                        }
                        self.l[s][block].copy_from_slice(&prop.rebuilt_l[from]);
                    }
                    continue;
                }
                let was_fragile = self.fragile[s][g];
                let nblock = g * nc * LANES..(g + 1) * nc * LANES;
                let low = kernels::scatter_stages(
                    self.lik.isa(),
                    &mut self.e[s][block.clone()],
                    &prop.new_e[nblock.clone()],
                    &prop.stages,
                    FRAGILE,
                );
                if let Some(screen) = screen.as_mut() {
                    screen.update_rows(s, g, &self.e[s][block.clone()], &prop.stages);
                }
                if was_fragile {
                    kernels::scatter_stages(
                        self.lik.isa(),
                        &mut self.l[s][block],
                        &prop.new_l[nblock],
                        &prop.stages,
                        f64::NEG_INFINITY,
                    );
                } else if low {
                    turned_fragile.push(g);
                }
            }
            std::mem::swap(&mut self.p[s], &mut prop.new_p);
            prop.active = false;
            // A group whose multiplied values fell below FRAGILE: rebuild it exactly
            // for the accepted stage values and keep its l from now on.
            if !turned_fragile.is_empty() {
                let mu = self.mu[s].clone();
                self.prepare(&mu);
                for &g in &turned_fragile {
                    let block = g * ns * LANES..(g + 1) * ns * LANES;
                    let mut e = std::mem::take(&mut self.e[s]);
                    let mut p = [0.0; LANES];
                    self.rebuild_group(g, &mut e[block], &mut p);
                    self.e[s] = e;
                    self.p[s][g * LANES..(g + 1) * LANES].copy_from_slice(&p);
                    self.keep_l(s, g);
                }
            }
            if let Some(screen) = self.screen.as_mut().filter(|sc| !sc.is_stale()) {
                // Rebuilt groups and those that turned fragile: whole blocks.
                turned_fragile.extend_from_slice(&prop.rebuilt);
                screen.finish_update(s, &self.e[s], &self.p[s], &turned_fragile);
            }
        }
        self.proposal = proposals;
        std::mem::swap(&mut self.current, &mut self.proposed_mixture);
        self.loglike = ll;
    }

    /// Drops the pending proposal.
    pub fn reject(&mut self) {
        self.proposed = None;
        self.described = false;
        for prop in &mut self.proposal {
            prop.active = false;
            if let Some(mu) = prop.mu.take() {
                prop.spare = Some(mu);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{test_cohort, Cohort};
    use crate::MissingConvention;
    use rand::Rng;

    /// Moves that produce `Repeat` ops (a reused linear-piece factor) give the
    /// fresh log-likelihood to 1e-12, on the CPU's kernels and the portable ones.
    #[test]
    fn repeated_factors_match_fresh_evaluation() {
        let mut w = test_cohort(200, 10, &[0.6, 0.4], 7);
        for baseline in [false, true] {
            let lik =
                Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap();
            let lik = Arc::new(if baseline {
                lik.with_baseline_kernels()
            } else {
                lik
            });
            let mut inc = IncrementalLikelihood::new(Arc::clone(&lik), &w.truth);
            let (mut repeats, mut checked) = (0, 0);
            for _ in 0..400 {
                let mut prop = w.truth.clone();
                let e = w.rng.gen_range(0..w.events.n_events());
                let to = w
                    .rng
                    .gen_range(prop.sequences()[0].allowed_positions(&w.events, e));
                prop.sequences_mut()[0]
                    .move_event(&w.events, e, to)
                    .unwrap();
                let ll = inc.propose(&prop, &[true, false]);
                let p = &inc.proposal[0];
                if !p.active || p.per_stage {
                    inc.reject();
                    continue;
                }
                let n = p.ops.iter().filter(|o| o.kind == SweepKind::Repeat).count();
                repeats += n;
                checked += usize::from(n > 0);
                let exact = lik.loglike(&prop);
                assert!((ll - exact).abs() <= 1e-12 * exact.abs(), "{ll} vs {exact}");
                inc.reject();
            }
            assert!(
                checked > 50 && repeats > 200,
                "{checked} moves, {repeats} repeats"
            );
        }
    }

    /// The screen's bound is above the exact log-likelihood of every proposal
    /// (moves of every subtype and fractions, accepted now and then so the
    /// state moves) and within a small distance of it, on ordinary data and on
    /// data with outlying values.
    #[test]
    fn screen_bounds_the_exact_loglike() {
        for (outliers, seed) in [(false, 3u64), (true, 4)] {
            let mut w = test_cohort(300, 8, &[0.5, 0.3, 0.2], seed);
            if outliers {
                let mut v = w.data.values().to_owned();
                for (i, x) in v.iter_mut().enumerate() {
                    if i % 37 == 0 && x.is_finite() {
                        *x *= 6.0;
                    }
                }
                w.data = crate::Dataset::new(v).unwrap();
            }
            let base =
                Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap();
            // Both kernels of the screen, where this CPU has them.
            for isa in [kernels::Isa::Avx512, kernels::Isa::Avx2] {
                let Some(lik) = base.clone().with_kernels(isa) else {
                    eprintln!("skipped on {isa:?}: not supported by this CPU");
                    continue;
                };
                check_screen_bound(Arc::new(lik), &mut w, outliers);
            }
        }
    }

    /// [`screen_bounds_the_exact_loglike`] on one likelihood.
    fn check_screen_bound(lik: Arc<Likelihood>, w: &mut Cohort, outliers: bool) {
        {
            let mut inc = IncrementalLikelihood::new(Arc::clone(&lik), &w.truth);
            if ChainScreen::new(&lik, 3).is_none() {
                eprintln!("skipped: no chain screen on this CPU");
                return;
            }
            let mut current = w.truth.clone();
            let (mut bounded, mut worst) = (0, 0.0f64);
            let mut widths = Vec::new();
            for it in 0..1500 {
                let mut prop = current.clone();
                let mut changed = vec![false; 3];
                for (s, c) in changed.iter_mut().enumerate() {
                    if w.rng.gen_bool(0.7) {
                        let e = w.rng.gen_range(0..w.events.n_events());
                        let to = w
                            .rng
                            .gen_range(prop.sequences()[s].allowed_positions(&w.events, e));
                        prop.sequences_mut()[s]
                            .move_event(&w.events, e, to)
                            .unwrap();
                        *c = prop.sequences()[s] != current.sequences()[s];
                    }
                }
                let mut f = prop.fractions().to_vec();
                let d = 0.02 * (w.rng.gen::<f64>() - 0.5);
                f[0] = (f[0] + d).max(0.01);
                let t: f64 = f.iter().sum();
                f.iter_mut().for_each(|v| *v /= t);
                prop.set_fractions(f).unwrap();
                let hi = inc.screen_bound(&prop, &changed);
                let ll = inc.propose(&prop, &changed);
                if let Some(hi) = hi {
                    bounded += 1;
                    assert!(hi >= ll, "proposal {it}: bound {hi} below {ll}");
                    worst = worst.max(hi - ll);
                    widths.push(hi - ll);
                }
                if it % 5 == 0 {
                    inc.accept();
                    current = prop;
                } else {
                    inc.reject();
                }
                // The copy that accepted proposals update in place is the one a
                // fresh load of the state gives.
                if it % 50 == 0 {
                    let screen = inc.screen.as_ref().expect("a screen on this CPU");
                    assert!(
                        screen.is_stale() || screen.equals_fresh_load(&inc.e, &inc.p),
                        "proposal {it}: the copy differs from a fresh load"
                    );
                }
            }
            widths.sort_by(f64::total_cmp);
            let median = widths[widths.len() / 2];
            eprintln!(
                "outliers {outliers}: {bounded} of 1500 bounded, median width {median:.3e}, \
                 widest {worst:.3e}"
            );
            assert!(bounded > 1000, "{bounded} bounded");
            assert!(
                median < 0.05,
                "bound {median} above the exact value (median)"
            );
        }
    }
}
