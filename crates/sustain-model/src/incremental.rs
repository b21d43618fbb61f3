//! Incremental likelihood for Metropolis chains: propose, then accept or reject.
//!
//! Moving one event changes the stage values of only the biomarkers whose knots
//! shift, and only at the stages between their neighbouring knots; a fraction move
//! changes no stage likelihood at all. This state keeps, per subtype, the
//! stage-dependent log-likelihood `l[k][m]`, `e[k][m] = exp(l - ref[m])` and
//! `p[m] = sum_k e[k][m]`, and a proposal recomputes only the changed stages
//! (re-summing `p` in full, so no subtract-and-add drift). Every
//! [`REFRESH_EVERY`] accepted proposals the state is rebuilt from scratch, which
//! bounds rounding drift of the additive updates.

#![allow(clippy::needless_range_loop)]

use crate::kernels::{self, Lanes, StageDelta, LANES};
use crate::likelihood::{Likelihood, Scratch};
use crate::mixture::Mixture;
use crate::stages::StageValues;
use std::sync::Arc;

/// Accepted proposals between full rebuilds.
pub const REFRESH_EVERY: u64 = 1000;

#[derive(Debug, Clone, Default)]
struct SubtypeProposal {
    active: bool,
    mu: Option<StageValues>,
    /// `(stage, start, end)` into `deltas`.
    stages: Vec<(usize, usize, usize)>,
    deltas: Vec<(usize, f64, f64)>,
    /// `[g][i][lane]` for the i-th changed stage.
    new_l: Vec<f64>,
    new_e: Vec<f64>,
    /// `[g * LANES + lane]`.
    new_p: Vec<f64>,
}

/// Current state of one chain's likelihood with an optional pending proposal.
#[derive(Debug, Clone)]
pub struct IncrementalLikelihood {
    lik: Arc<Likelihood>,
    current: Mixture,
    mu: Vec<StageValues>,
    /// Per subtype `[g][k][lane]`.
    l: Vec<Vec<f64>>,
    e: Vec<Vec<f64>>,
    /// Per subtype `[g * LANES + lane]`.
    p: Vec<Vec<f64>>,
    reference: Vec<f64>,
    loglike: f64,
    proposal: Vec<SubtypeProposal>,
    proposed: Option<(Mixture, f64, bool)>,
    /// Per padded subject: `ref + const` (what `total` adds to each `ln`).
    offset: Vec<f64>,
    scratch: Scratch,
    accepted_since_refresh: u64,
}

impl IncrementalLikelihood {
    /// Builds the state of `mixture` from scratch.
    pub fn new(lik: Arc<Likelihood>, mixture: &Mixture) -> Self {
        let mut s = Self {
            lik,
            current: mixture.clone(),
            mu: Vec::new(),
            l: Vec::new(),
            e: Vec::new(),
            p: Vec::new(),
            reference: Vec::new(),
            loglike: 0.0,
            proposal: Vec::new(),
            proposed: None,
            offset: Vec::new(),
            scratch: Scratch::default(),
            accepted_since_refresh: 0,
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
        self.offset = max_lse.clone();
        for (o, c) in self.offset.iter_mut().zip(lik.subject_constants()) {
            *o += c;
        }
        self.reference = max_lse;
        self.l = vec![vec![0.0; ng * ns * LANES]; n_sub];
        self.e = vec![vec![0.0; ng * ns * LANES]; n_sub];
        self.p = vec![vec![0.0; mp]; n_sub];
        let groups = lik.groups();
        for s in 0..n_sub {
            lik.fill_stage_input(&self.mu[s], &mut self.scratch);
            let st = lik.stage_input(&self.scratch);
            for (g, gi) in groups.iter().enumerate() {
                let r: &Lanes = self.reference[g * LANES..(g + 1) * LANES]
                    .try_into()
                    .unwrap();
                let block = g * ns * LANES..(g + 1) * ns * LANES;
                let mut p = [0.0; LANES];
                kernels::group_state(
                    lik.isa(),
                    &st,
                    gi,
                    r,
                    &mut self.l[s][block.clone()],
                    &mut self.e[s][block],
                    &mut p,
                );
                self.p[s][g * LANES..(g + 1) * LANES].copy_from_slice(&p);
            }
        }
        self.proposal = vec![SubtypeProposal::default(); n_sub];
        self.proposed = None;
        self.accepted_since_refresh = 0;
        let p_all = std::mem::take(&mut self.p);
        let p_refs: Vec<&[f64]> = p_all.iter().map(Vec::as_slice).collect();
        let (ll, ok) = self.total(mixture.fractions(), &p_refs);
        drop(p_refs);
        self.p = p_all;
        self.loglike = if ok { ll } else { lik.loglike(mixture) };
        self.loglike
    }

    /// Sum over subjects of `ref + ln(sum_s f_s p_s) + const`; false if a subject's
    /// sum left the safe range (then the caller falls back to the exact path).
    fn total(&mut self, fractions: &[f64], p: &[&[f64]]) -> (f64, bool) {
        let lik = &self.lik;
        kernels::mixture_total(lik.isa(), fractions, p, &self.offset, lik.n_subjects())
    }

    /// Evaluates `mixture`, whose sequences differ from the current ones only where
    /// `changed[s]` is true (fractions may differ freely). Returns its
    /// log-likelihood; the state is unchanged until [`Self::accept`].
    pub fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        let lik = Arc::clone(&self.lik);
        let events = lik.events();
        let ns = events.n_stages();
        let nb = events.n_biomarkers();
        let ng = lik.n_groups();
        let inv_sigma = 1.0 / events.sigma();
        for (s, prop) in self.proposal.iter_mut().enumerate() {
            prop.active = false;
            if !changed[s] {
                continue;
            }
            let mu = StageValues::new(events, &mixture.sequences()[s]);
            prop.stages.clear();
            prop.deltas.clear();
            for k in 0..ns {
                let start = prop.deltas.len();
                for b in 0..nb {
                    let (old, new) = (self.mu[s].get(b, k) * inv_sigma, mu.get(b, k) * inv_sigma);
                    if old != new {
                        prop.deltas
                            .push((b, new - old, 0.5 * (new * new - old * old)));
                    }
                }
                if prop.deltas.len() > start {
                    prop.stages.push((k, start, prop.deltas.len()));
                }
            }
            prop.mu = Some(mu);
            if prop.stages.is_empty() {
                continue;
            }
            prop.active = true;
            let nc = prop.stages.len();
            prop.new_l.resize(ng * nc * LANES, 0.0);
            prop.new_e.resize(ng * nc * LANES, 0.0);
            prop.new_p.resize(ng * LANES, 0.0);
            let changes: Vec<StageDelta> = prop
                .stages
                .iter()
                .map(|&(stage, a, b)| StageDelta {
                    stage,
                    deltas: &prop.deltas[a..b],
                })
                .collect();
            for g in 0..ng {
                let (x, obs) = lik.group_arrays(g);
                let r: &Lanes = self.reference[g * LANES..(g + 1) * LANES]
                    .try_into()
                    .unwrap();
                let block = g * ns * LANES..(g + 1) * ns * LANES;
                let nblock = g * nc * LANES..(g + 1) * nc * LANES;
                let mut p = [0.0; LANES];
                kernels::group_delta(
                    lik.isa(),
                    x,
                    obs,
                    &changes,
                    r,
                    &self.l[s][block.clone()],
                    &self.e[s][block],
                    &mut prop.new_l[nblock.clone()],
                    &mut prop.new_e[nblock],
                    &mut p,
                );
                prop.new_p[g * LANES..(g + 1) * LANES].copy_from_slice(&p);
            }
        }
        let p_all = std::mem::take(&mut self.p);
        let proposal = std::mem::take(&mut self.proposal);
        let p_refs: Vec<&[f64]> = (0..p_all.len())
            .map(|s| {
                if proposal[s].active {
                    proposal[s].new_p.as_slice()
                } else {
                    p_all[s].as_slice()
                }
            })
            .collect();
        let (mut ll, ok) = self.total(mixture.fractions(), &p_refs);
        drop(p_refs);
        self.p = p_all;
        self.proposal = proposal;
        if !ok {
            ll = lik.loglike(mixture);
        }
        self.proposed = Some((mixture.clone(), ll, !ok));
        ll
    }

    /// Makes the pending proposal current.
    pub fn accept(&mut self) {
        let Some((mixture, ll, needs_reset)) = self.proposed.take() else {
            return;
        };
        self.accepted_since_refresh += 1;
        if needs_reset || self.accepted_since_refresh >= REFRESH_EVERY {
            self.reset(&mixture);
            return;
        }
        let ns = self.lik.events().n_stages();
        let ng = self.lik.n_groups();
        for (s, prop) in self.proposal.iter_mut().enumerate() {
            if let Some(mu) = prop.mu.take() {
                self.mu[s] = mu;
            }
            if !prop.active {
                continue;
            }
            let nc = prop.stages.len();
            for g in 0..ng {
                for (i, &(k, _, _)) in prop.stages.iter().enumerate() {
                    let dst = (g * ns + k) * LANES..(g * ns + k + 1) * LANES;
                    let src = (g * nc + i) * LANES..(g * nc + i + 1) * LANES;
                    self.l[s][dst.clone()].copy_from_slice(&prop.new_l[src.clone()]);
                    self.e[s][dst].copy_from_slice(&prop.new_e[src]);
                }
            }
            std::mem::swap(&mut self.p[s], &mut prop.new_p);
            prop.active = false;
        }
        self.current = mixture;
        self.loglike = ll;
    }

    /// Drops the pending proposal.
    pub fn reject(&mut self) {
        self.proposed = None;
        for prop in &mut self.proposal {
            prop.active = false;
            prop.mu = None;
        }
    }
}
