//! Metropolis chains over SuStaIn models (spec section 5).

use crate::evaluator::ChainEvaluator;
use crate::trace::Trace;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use sustain_model::{EventSet, Mixture};

/// A Markov chain that advances one step at a time with a caller-owned random stream.
pub trait Chain {
    /// The state type.
    type State;
    /// One iteration; returns whether the proposal was accepted.
    fn step<R: Rng + ?Sized>(&mut self, rng: &mut R) -> bool;
    /// The current state.
    fn state(&self) -> &Self::State;
    /// The current log-likelihood.
    fn loglike(&self) -> f64;
    /// Accepted and total proposals so far.
    fn acceptance(&self) -> (u64, u64);
}

/// Which proposal the SuStaIn chain uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalMode {
    /// Sequence move with its Hastings correction (the ratio of the forward and
    /// reverse proposal normalisers) and a symmetric fraction move (a normal amount
    /// of mass between two random subtypes; negative results rejected). Samples the
    /// posterior exactly. The default.
    #[default]
    Exact,
    /// The reference's moves exactly: the same sequence move without correction, and
    /// `f' = |f + sigma_f z| / sum |f + sigma_f z|` with one scalar `z`.
    Reference,
}

impl std::str::FromStr for ProposalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(Self::Exact),
            "reference" => Ok(Self::Reference),
            o => Err(format!(
                "unknown proposal mode '{o}' (expected exact or reference)"
            )),
        }
    }
}

/// Step sizes: `sigma_seq[s][e]` for the sequence move, `sigma_f[s]` for fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSizes {
    /// Per subtype and event.
    pub sigma_seq: Vec<Vec<f64>>,
    /// Per subtype.
    pub sigma_f: Vec<f64>,
}

impl StepSizes {
    /// The reference's starting values: `sigma_seq = 1`, `sigma_f = 0.01`.
    pub fn initial(n_subtypes: usize, n_events: usize) -> Self {
        Self {
            sigma_seq: vec![vec![1.0; n_events]; n_subtypes],
            sigma_f: vec![0.01; n_subtypes],
        }
    }
}

/// A drawn proposal waiting for its log-likelihood ([`SustainChain::begin_step`]).
#[derive(Debug, Clone)]
pub struct Pending {
    /// The proposed model.
    pub mixture: Mixture,
    /// Per subtype, whether its sequence differs from the current one.
    pub changed: Vec<bool>,
    log_hastings: f64,
    u: f64,
}

/// The SuStaIn Metropolis chain over `(S, f)`, generic over how proposals are
/// evaluated.
pub struct SustainChain<'a, E: ChainEvaluator> {
    events: &'a EventSet,
    evaluator: E,
    current: Mixture,
    loglike: f64,
    mode: ProposalMode,
    steps: StepSizes,
    accepted: u64,
    proposed: u64,
    weights: Vec<f64>,
}

impl<'a, E: ChainEvaluator> SustainChain<'a, E> {
    /// A chain at `start`.
    pub fn new(
        events: &'a EventSet,
        mut evaluator: E,
        start: Mixture,
        mode: ProposalMode,
        steps: StepSizes,
    ) -> Self {
        let loglike = evaluator.reset(&start);
        Self {
            events,
            evaluator,
            current: start,
            loglike,
            mode,
            steps,
            accepted: 0,
            proposed: 0,
            weights: Vec::new(),
        }
    }

    /// Draws a new position for the event at a uniformly chosen position of subtype
    /// `s`; returns (event, to, log Hastings ratio of this move).
    fn propose_sequence<R: Rng + ?Sized>(
        &mut self,
        s: usize,
        proposal: &mut Mixture,
        rng: &mut R,
    ) -> f64 {
        let n = self.events.n_events();
        let seq = &proposal.sequences()[s];
        let from = rng.gen_range(0..n);
        let e = seq.event_at(from);
        let allowed = seq.allowed_positions(self.events, e);
        let sigma = self.steps.sigma_seq[s][e];
        let weight = |to: usize| {
            let d = (to as f64 - from as f64) / sigma;
            (-0.5 * d * d).exp()
        };
        self.weights.clear();
        self.weights.extend(allowed.clone().map(weight));
        let total: f64 = self.weights.iter().sum();
        let mut u = rng.gen::<f64>() * total;
        let mut to = *allowed.end();
        for (i, w) in self.weights.iter().enumerate() {
            if u < *w {
                to = allowed.start() + i;
                break;
            }
            u -= w;
        }
        proposal.sequences_mut()[s].move_unchecked(e, to);
        match self.mode {
            ProposalMode::Reference => 0.0,
            ProposalMode::Exact => {
                // The allowed set is the same after the move (neighbours keep their
                // positions), so q(S|S') / q(S'|S) = Z(from) / Z(to).
                let z_to: f64 = allowed
                    .map(|p| {
                        let d = (p as f64 - to as f64) / sigma;
                        (-0.5 * d * d).exp()
                    })
                    .sum();
                total.ln() - z_to.ln()
            }
        }
    }

    /// Proposes new fractions; returns false if the proposal is outside the simplex
    /// (then the iteration is a rejection).
    fn propose_fractions<R: Rng + ?Sized>(&self, proposal: &mut Mixture, rng: &mut R) -> bool {
        let ns = proposal.n_subtypes();
        let f = proposal.fractions().to_vec();
        let new = match self.mode {
            ProposalMode::Reference => {
                let z: f64 = StandardNormal.sample(rng);
                let raw: Vec<f64> = f
                    .iter()
                    .zip(&self.steps.sigma_f)
                    .map(|(v, sg)| (v + sg * z).abs())
                    .collect();
                let sum: f64 = raw.iter().sum();
                if sum.is_nan() || sum <= 0.0 {
                    return false;
                }
                raw.into_iter().map(|v| v / sum).collect()
            }
            ProposalMode::Exact => {
                if ns < 2 {
                    return true;
                }
                let i = rng.gen_range(0..ns);
                let mut j = rng.gen_range(0..ns - 1);
                if j >= i {
                    j += 1;
                }
                let sigma = 0.5 * (self.steps.sigma_f[i] + self.steps.sigma_f[j]);
                let z: f64 = StandardNormal.sample(rng);
                let delta = sigma * z;
                let mut g = f;
                g[i] += delta;
                g[j] -= delta;
                if g[i] < 0.0 || g[j] < 0.0 {
                    return false;
                }
                g
            }
        };
        // Renormalise away rounding so validation never fails on drift.
        let sum: f64 = new.iter().sum();
        proposal
            .set_fractions(new.iter().map(|v| v / sum).collect())
            .is_ok()
    }

    /// The first half of [`Chain::step`]: counts the iteration and draws the proposal
    /// and the acceptance uniform from `rng` (the same draws, in the same order, as a
    /// whole step). Returns `None` when the proposal lies outside the simplex: the
    /// iteration is then a rejection and is finished. Otherwise the caller evaluates
    /// [`Pending::mixture`] and calls [`Self::finish_step`] with its log-likelihood;
    /// `step` is exactly `begin_step`, the chain's own evaluator, `finish_step`.
    pub fn begin_step<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Pending> {
        self.proposed += 1;
        let ns = self.current.n_subtypes();
        let mut proposal = self.current.clone();
        let mut log_hastings = 0.0;
        for s in 0..ns {
            log_hastings += self.propose_sequence(s, &mut proposal, rng);
        }
        let inside = self.propose_fractions(&mut proposal, rng);
        // Draw the uniform before any early exit so every iteration consumes the
        // same amount of the stream whatever happens.
        let u: f64 = rng.gen();
        if !inside {
            return None;
        }
        let changed: Vec<bool> = (0..ns)
            .map(|s| proposal.sequences()[s] != self.current.sequences()[s])
            .collect();
        Some(Pending {
            mixture: proposal,
            changed,
            log_hastings,
            u,
        })
    }

    /// The second half of [`Chain::step`]: accepts or rejects `pending` given its
    /// log-likelihood `ll` (consumes no randomness); tells the chain's evaluator
    /// (accept / reject) and returns whether the proposal was accepted.
    pub fn finish_step(&mut self, pending: Pending, ll: f64) -> bool {
        let log_ratio = ll - self.loglike + pending.log_hastings;
        if log_ratio >= 0.0 || pending.u < log_ratio.exp() {
            self.evaluator.accept();
            self.current = pending.mixture;
            self.loglike = ll;
            self.accepted += 1;
            true
        } else {
            self.evaluator.reject();
            false
        }
    }

    /// Replaces the step sizes (after tuning).
    pub fn set_steps(&mut self, steps: StepSizes) {
        self.steps = steps;
    }

    /// Runs `n` iterations, recording each into `trace`.
    pub fn run<R: Rng + ?Sized>(&mut self, n: usize, rng: &mut R, trace: &mut Trace) {
        for _ in 0..n {
            let moved = self.step(rng);
            trace.record(&self.current, self.loglike, moved);
        }
    }
}

impl<E: ChainEvaluator> Chain for SustainChain<'_, E> {
    type State = Mixture;

    fn step<R: Rng + ?Sized>(&mut self, rng: &mut R) -> bool {
        let Some(pending) = self.begin_step(rng) else {
            return false;
        };
        let ll = self.evaluator.propose(&pending.mixture, &pending.changed);
        self.finish_step(pending, ll)
    }
    fn state(&self) -> &Mixture {
        &self.current
    }
    fn loglike(&self) -> f64 {
        self.loglike
    }
    fn acceptance(&self) -> (u64, u64) {
        (self.accepted, self.proposed)
    }
}
