//! Chains that run in rounds: a chain paused between rounds keeps its state, its
//! random stream, its trace and its acceptance counts, so the next round continues
//! it exactly where it stopped. A chain run in rounds of any lengths holds the same
//! samples as one run of their total length ([`crate::run_chain`] with the same
//! stream), so a run stopped early holds a prefix of a longer run's samples.

use crate::chain::{Chain, ProposalMode, StepSizes, SustainChain};
use crate::evaluator::ChainEvaluator;
use crate::merge::ChainRun;
use crate::progress::ChainProgress;
use crate::rng;
use crate::tempering::{self, Exchange, Rung};
use crate::trace::Trace;
use rand_pcg::Pcg64;
use std::time::Instant;
use sustain_core::{EventOrder, Mixture};

/// Iterations between progress reports, cancellation and deadline checks (the
/// same as [`crate::run_chain_observed`]).
const BLOCK: usize = 1000;

/// Runs `n` iterations in blocks of [`BLOCK`] (`block(m)` runs `m` and returns the
/// chain's total iterations), reporting that total into `progress` slot `.1` after
/// each block and stopping early on cancellation or at `deadline`.
fn in_blocks(
    n: usize,
    progress: Option<(&ChainProgress, usize)>,
    deadline: Option<Instant>,
    mut block: impl FnMut(usize) -> usize,
) -> RoundEnd {
    let mut done = 0;
    while done < n {
        let m = BLOCK.min(n - done);
        let total = block(m);
        done += m;
        if let Some((p, slot)) = progress {
            p.set(slot, total as u64);
            if p.cancelled() {
                return RoundEnd::Cancelled;
            }
        }
        if done < n && deadline.is_some_and(|d| Instant::now() >= d) {
            return RoundEnd::Deadline;
        }
    }
    RoundEnd::Done
}

/// A chain between rounds, with its evaluator `E` (none before the first round).
#[derive(Debug)]
pub struct PausedChain<E> {
    /// Chain index in the run (fixes its random stream).
    pub index: usize,
    state: Mixture,
    loglike: f64,
    evaluator: Option<E>,
    rng: Pcg64,
    trace: Trace,
    accepted: u64,
    proposed: u64,
    wall_s: f64,
    /// Replica exchange: the hot copies (ranks 1..) and the ladder; none for a
    /// plain chain.
    hot: Vec<Rung<E>>,
    exchange: Option<Exchange>,
}

/// Why a round ended before its iterations were done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundEnd {
    /// Every iteration of the round ran.
    Done,
    /// The deadline passed (checked every 1,000 iterations).
    Deadline,
    /// The progress counters were cancelled.
    Cancelled,
}

impl<E: ChainEvaluator> PausedChain<E> {
    /// Chain `index` of a run seeded `seed` at `start`, before its first iteration:
    /// the stream `(seed, CHAIN, index)` of [`crate::run_chain`]'s callers.
    pub fn start(index: usize, start: &Mixture, seed: u64, n_events: usize) -> Self {
        Self {
            index,
            state: start.clone(),
            loglike: f64::NAN,
            evaluator: None,
            rng: rng::stream(seed, rng::purpose::CHAIN, index as u64),
            trace: Trace::new(start.n_subtypes(), n_events),
            accepted: 0,
            proposed: 0,
            wall_s: 0.0,
            hot: Vec::new(),
            exchange: None,
        }
    }

    /// The chain as the cold copy of a replica-exchange ladder of powers `betas`
    /// (from [`tempering::geometric_ladder`]; checked by
    /// [`tempering::check_ladder`]), every hot copy starting at the chain's
    /// start. A ladder of one rung is the plain chain, sample for sample.
    pub fn tempered(mut self, betas: Vec<f64>, seed: u64) -> Result<Self, String> {
        tempering::check_ladder(&betas)?;
        if betas.len() > 1 {
            self.hot = (1..betas.len())
                .map(|_| Rung {
                    state: self.state.clone(),
                    loglike: f64::NAN,
                    evaluator: None,
                })
                .collect();
            self.exchange = Some(Exchange::new(betas, seed, self.index));
        }
        Ok(self)
    }

    /// The ladder's powers, coldest first, and the swap rate of each neighbouring
    /// pair over the last round; `None` for a plain chain.
    pub fn ladder(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.exchange
            .as_ref()
            .map(|x| (x.betas().to_vec(), x.swap_rates()))
    }

    /// The state the next round starts from.
    pub fn state(&self) -> &Mixture {
        &self.state
    }

    /// Iterations run so far.
    pub fn n_iterations(&self) -> usize {
        self.trace.n_iterations()
    }

    /// Runs `n` more iterations, reporting the chain's total iterations into
    /// `progress` slot `.1` and stopping early at `deadline` or on cancellation
    /// (then fewer ran). The first round builds the evaluator with `make` (at the
    /// start state); later rounds keep the one the chain had.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        events: &EventOrder,
        mut make: impl FnMut(&Mixture) -> E,
        mode: ProposalMode,
        steps: &StepSizes,
        n: usize,
        progress: Option<(&ChainProgress, usize)>,
        deadline: Option<Instant>,
    ) -> RoundEnd {
        let t0 = Instant::now();
        if let Some(exchange) = self.exchange.take() {
            let end = self.run_ladder(exchange, events, make, mode, steps, n, progress, deadline);
            self.wall_s += t0.elapsed().as_secs_f64();
            return end;
        }
        let state = self.state.clone();
        let mut chain = match self.evaluator.take() {
            Some(evaluator) => {
                SustainChain::resume(events, evaluator, state, self.loglike, mode, steps.clone())
            }
            None => SustainChain::new(events, make(&state), state, mode, steps.clone()),
        };
        let (rng, trace) = (&mut self.rng, &mut self.trace);
        let end = in_blocks(n, progress, deadline, |m| {
            chain.run(m, rng, trace);
            trace.n_iterations()
        });
        let (acc, prop) = chain.acceptance();
        self.accepted += acc;
        self.proposed += prop;
        let (evaluator, state, loglike) = chain.into_parts();
        (self.evaluator, self.state, self.loglike) = (Some(evaluator), state, loglike);
        self.wall_s += t0.elapsed().as_secs_f64();
        end
    }

    /// [`Self::run`] for a replica-exchange ladder: the cold copy's state and
    /// stream are the chain's, the hot copies are `self.hot`; the ladder is
    /// respaced after the round from its swap rates.
    #[allow(clippy::too_many_arguments)]
    fn run_ladder(
        &mut self,
        mut exchange: Exchange,
        events: &EventOrder,
        make: impl FnMut(&Mixture) -> E,
        mode: ProposalMode,
        steps: &StepSizes,
        n: usize,
        progress: Option<(&ChainProgress, usize)>,
        deadline: Option<Instant>,
    ) -> RoundEnd {
        let cold = Rung {
            state: self.state.clone(),
            loglike: self.loglike,
            evaluator: self.evaluator.take(),
        };
        let rungs: Vec<Rung<E>> = std::iter::once(cold).chain(self.hot.drain(..)).collect();
        let mut copies = tempering::copies(events, rungs, exchange.betas(), make, mode, steps);
        let mut at: Vec<usize> = (0..copies.len()).collect();
        let (rng, trace) = (&mut self.rng, &mut self.trace);
        let (mut accepted, mut proposed) = (0, 0);
        let end = in_blocks(n, progress, deadline, |m| {
            accepted += exchange.run(&mut copies, &mut at, m, rng, trace);
            proposed += m as u64;
            trace.n_iterations()
        });
        self.accepted += accepted;
        self.proposed += proposed;
        // Back into rank order: copy `at[r]` holds rank `r`'s power and state.
        let mut by_copy: Vec<Option<Rung<E>>> = copies
            .into_iter()
            .map(|c| {
                let (evaluator, state, loglike) = c.into_parts();
                Some(Rung {
                    state,
                    loglike,
                    evaluator: Some(evaluator),
                })
            })
            .collect();
        let mut ranked = at.iter().map(|&c| by_copy[c].take());
        let cold = ranked.next().flatten();
        self.hot = ranked.flatten().collect();
        if let Some(cold) = cold {
            (self.state, self.loglike, self.evaluator) = (cold.state, cold.loglike, cold.evaluator);
        }
        exchange.adapt();
        self.exchange = Some(exchange);
        end
    }

    /// The chain so far as a [`ChainRun`], cut to its first `n_iterations`
    /// iterations (the acceptance rate is the whole chain's).
    pub fn run_so_far(&self, n_iterations: usize) -> ChainRun {
        let mut trace = self.trace.clone();
        trace.truncate(n_iterations);
        ChainRun {
            index: self.index,
            trace,
            acceptance: self.accepted as f64 / self.proposed.max(1) as f64,
            wall_s: self.wall_s,
        }
    }
}
