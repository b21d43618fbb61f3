//! Metropolis chains over SuStaIn models (spec section 5).

use crate::evaluator::ChainEvaluator;
use crate::trace::Trace;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use sustain_core::{EventOrder, Mixture, Screened};

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
    /// One block a step (random-scan Metropolis within Gibbs): one subtype's sequence
    /// or the fractions, chosen uniformly. The sequence move never proposes the
    /// event's own position (distance `d >= 1` weighted `exp(-(d - 1)^2 / 2 sigma^2)`,
    /// so even a pinned event's step reaches its neighbours), with its Hastings
    /// correction; the fraction move is `Exact`'s. Samples the posterior exactly; a
    /// move of one subtype is not spoiled by another's rejected one.
    Blockwise,
}

impl std::str::FromStr for ProposalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(Self::Exact),
            "reference" => Ok(Self::Reference),
            "blockwise" => Ok(Self::Blockwise),
            o => Err(format!(
                "unknown proposal mode '{o}' (expected exact, reference or blockwise)"
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

/// A drawn proposal waiting for its log-likelihood ([`SustainChain::begin_step`]): what
/// the accept/reject decision needs besides the proposal itself.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    log_hastings: f64,
    u: f64,
}

/// The Metropolis decision for a proposal at log-likelihood `ll` from a state at
/// `current`: accept when `beta (ll - current) + log q-ratio >= 0`, else with
/// probability `exp` of it (the uniform drawn in advance). Nondecreasing in `ll`.
/// `beta` is the chain's temperature (1 but in the hot copies of replica exchange;
/// `1.0 * x` is `x` to the bit, so untempered chains decide as before).
fn metropolis(current: f64, pending: Pending, ll: f64, beta: f64) -> bool {
    let log_ratio = beta * (ll - current) + pending.log_hastings;
    log_ratio >= 0.0 || pending.u < log_ratio.exp()
}

/// The SuStaIn Metropolis chain over `(S, f)`, generic over how proposals are
/// evaluated.
pub struct SustainChain<'a, E: ChainEvaluator> {
    events: &'a EventOrder,
    evaluator: E,
    current: Mixture,
    loglike: f64,
    mode: ProposalMode,
    steps: StepSizes,
    /// The power of the likelihood this chain samples (replica exchange's hot
    /// copies); 1 for the posterior.
    beta: f64,
    accepted: u64,
    proposed: u64,
    /// Scratch: the sequence move's Gaussian weights by distance.
    weights: Vec<f64>,
    /// Scratch: proposed fractions.
    fractions: Vec<f64>,
    /// Scratch for [`Chain::step`]: the proposal (its buffers reused every step) and
    /// which subtypes' sequences it changed.
    proposal: Option<Mixture>,
    changed: Vec<bool>,
}

/// `table[d] = exp(-d^2 / (2 sigma^2))` for `d < len`, by the recurrence
/// `t[d+1] = t[d] r[d]`, `r[d] = exp(-(2d+1) / (2 sigma^2)) = r[d-1] exp(-1/sigma^2)`:
/// two exponentials instead of one per position. It runs outward from `d = 0`, so a
/// value underflows only where it is negligible. The forward and reverse normalisers
/// of a move read the same table, so the Hastings ratio is exact for the proposal as
/// drawn.
fn gaussian_table(table: &mut Vec<f64>, sigma: f64, len: usize) {
    let a = 0.5 / (sigma * sigma);
    let q = (-2.0 * a).exp();
    let mut r = (-a).exp();
    let mut t = 1.0;
    table.clear();
    for _ in 0..len {
        table.push(t);
        t *= r;
        r *= q;
    }
}

impl<'a, E: ChainEvaluator> SustainChain<'a, E> {
    /// A chain at `start`.
    pub fn new(
        events: &'a EventOrder,
        mut evaluator: E,
        start: Mixture,
        mode: ProposalMode,
        steps: StepSizes,
    ) -> Self {
        let loglike = evaluator.reset(&start);
        Self::resume(events, evaluator, start, loglike, mode, steps)
    }

    /// A chain at `current` whose `evaluator` already holds `current` with
    /// log-likelihood `loglike`, as [`Self::into_parts`] left them: continues a
    /// chain exactly (an incremental evaluator's state depends on its history, so
    /// a fresh [`Self::new`] at the same state may differ in the last bits).
    pub fn resume(
        events: &'a EventOrder,
        evaluator: E,
        current: Mixture,
        loglike: f64,
        mode: ProposalMode,
        steps: StepSizes,
    ) -> Self {
        Self {
            events,
            evaluator,
            current,
            loglike,
            mode,
            steps,
            beta: 1.0,
            accepted: 0,
            proposed: 0,
            weights: Vec::new(),
            fractions: Vec::new(),
            proposal: None,
            changed: Vec::new(),
        }
    }

    /// The evaluator, the current state and its log-likelihood, for
    /// [`Self::resume`].
    pub fn into_parts(self) -> (E, Mixture, f64) {
        (self.evaluator, self.current, self.loglike)
    }

    /// Draws a new position for the event at a uniformly chosen position of subtype
    /// `s`; returns the log Hastings ratio of this move.
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
        let (lo, hi) = (*allowed.start(), *allowed.end());
        let blockwise = self.mode == ProposalMode::Blockwise;
        if blockwise && lo == hi {
            // Nowhere to go: the step proposes the current state.
            return 0.0;
        }
        gaussian_table(&mut self.weights, self.steps.sigma_seq[s][e], hi - lo + 1);
        if blockwise {
            // Weight of distance d is the table's at d - 1; none at d = 0.
            self.weights.insert(0, 0.0);
        }
        let w = &self.weights;
        let total: f64 = (lo..=hi).map(|p| w[p.abs_diff(from)]).sum();
        let mut u = rng.gen::<f64>() * total;
        let mut to = hi;
        for p in lo..=hi {
            let wp = w[p.abs_diff(from)];
            if u < wp {
                to = p;
                break;
            }
            u -= wp;
        }
        if blockwise && to == from {
            // The loop never picks `from` (weight 0); rounding can leave `to` at `hi`,
            // which is `from` for an event in the last allowed place.
            to = hi - 1;
        }
        proposal.sequences_mut()[s].move_unchecked(e, to);
        match self.mode {
            ProposalMode::Reference => 0.0,
            ProposalMode::Exact | ProposalMode::Blockwise => {
                // The allowed set is the same after the move (neighbours keep their
                // positions), so q(S|S') / q(S'|S) = Z(from) / Z(to).
                let z_to: f64 = (lo..=hi).map(|p| w[p.abs_diff(to)]).sum();
                (total / z_to).ln()
            }
        }
    }

    /// Proposes new fractions; returns false if the proposal is outside the simplex
    /// (then the iteration is a rejection and the proposal keeps the current
    /// fractions).
    fn propose_fractions<R: Rng + ?Sized>(&mut self, proposal: &mut Mixture, rng: &mut R) -> bool {
        let ns = proposal.n_subtypes();
        let g = &mut self.fractions;
        g.clear();
        g.extend_from_slice(proposal.fractions());
        match self.mode {
            ProposalMode::Reference => {
                let z: f64 = StandardNormal.sample(rng);
                for (v, sg) in g.iter_mut().zip(&self.steps.sigma_f) {
                    *v = (*v + sg * z).abs();
                }
                let sum: f64 = g.iter().sum();
                if sum.is_nan() || sum <= 0.0 {
                    return false;
                }
            }
            ProposalMode::Exact | ProposalMode::Blockwise => {
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
                g[i] += delta;
                g[j] -= delta;
                if g[i] < 0.0 || g[j] < 0.0 {
                    return false;
                }
            }
        }
        // Renormalise away rounding so validation never fails on drift.
        let sum: f64 = g.iter().sum();
        for v in g.iter_mut() {
            *v /= sum;
        }
        proposal.copy_fractions_from(g).is_ok()
    }

    /// The first half of [`Chain::step`]: counts the iteration and draws the proposal
    /// into `proposal` (overwritten; its buffers are reused) and the acceptance
    /// uniform from `rng` (the same draws, in the same order, as a whole step).
    /// Returns `None` when the proposal lies outside the simplex: the iteration is
    /// then a rejection and is finished (`proposal` is still a valid model: the moved
    /// sequences with the current fractions). Otherwise the caller evaluates
    /// `proposal` and calls [`Self::finish_step`] with its log-likelihood; `step` is
    /// exactly `begin_step`, the chain's own evaluator, `finish_step`.
    pub fn begin_step<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        proposal: &mut Mixture,
    ) -> Option<Pending> {
        self.proposed += 1;
        proposal.clone_from(&self.current);
        let mut log_hastings = 0.0;
        let ns = self.current.n_subtypes();
        let inside = if self.mode == ProposalMode::Blockwise {
            // Blocks: the subtypes' sequences, then the fractions (when they can move).
            let blocks = if ns > 1 { ns + 1 } else { ns };
            let b = rng.gen_range(0..blocks);
            if b < ns {
                log_hastings = self.propose_sequence(b, proposal, rng);
                true
            } else {
                self.propose_fractions(proposal, rng)
            }
        } else {
            for s in 0..ns {
                log_hastings += self.propose_sequence(s, proposal, rng);
            }
            self.propose_fractions(proposal, rng)
        };
        // Draw the uniform before any early exit so every iteration consumes the
        // same amount of the stream whatever happens.
        let u: f64 = rng.gen();
        inside.then_some(Pending { log_hastings, u })
    }

    /// The Metropolis decision for `pending` at log-likelihood `ll`: on acceptance
    /// `install` puts the proposal into the state; the evaluator is told either way.
    fn settle(&mut self, pending: Pending, ll: f64, install: impl FnOnce(&mut Mixture)) -> bool {
        if metropolis(self.loglike, pending, ll, self.beta) {
            self.evaluator.accept();
            install(&mut self.current);
            self.loglike = ll;
            self.accepted += 1;
            true
        } else {
            self.evaluator.reject();
            false
        }
    }

    /// The second half of [`Chain::step`]: accepts or rejects `proposal` (as drawn by
    /// [`Self::begin_step`]) given its log-likelihood `ll` (consumes no randomness);
    /// tells the chain's evaluator (accept / reject) and returns whether the proposal
    /// was accepted. An accepted proposal is copied into the chain's state.
    pub fn finish_step(&mut self, pending: Pending, proposal: &Mixture, ll: f64) -> bool {
        self.settle(pending, ll, |state| state.clone_from(proposal))
    }

    /// Samples the likelihood to the power `beta` (0 < beta <= 1) from now on: a hot
    /// copy of replica exchange. Chains start at 1, the posterior.
    pub fn set_beta(&mut self, beta: f64) {
        self.beta = beta;
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
        let mut proposal = self.proposal.take().unwrap_or_else(|| self.current.clone());
        let moved = match self.begin_step(rng, &mut proposal) {
            None => false,
            Some(pending) => {
                self.changed.clear();
                self.changed.extend(
                    proposal
                        .sequences()
                        .iter()
                        .zip(self.current.sequences())
                        .map(|(p, c)| p != c),
                );
                // The evaluator may prove a rejection without the exact value (the
                // same decision `settle` takes).
                let (current, beta) = (self.loglike, self.beta);
                let accepts = |ll: f64| metropolis(current, pending, ll, beta);
                let screened = Screened {
                    mixture: &proposal,
                    changed: &self.changed,
                    accepts: &accepts,
                };
                match self.evaluator.propose_unless_rejected(screened) {
                    None => false,
                    // An accepted proposal becomes the state; the old state the
                    // next scratch.
                    Some(ll) => {
                        self.settle(pending, ll, |state| std::mem::swap(state, &mut proposal))
                    }
                }
            }
        };
        self.proposal = Some(proposal);
        moved
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
