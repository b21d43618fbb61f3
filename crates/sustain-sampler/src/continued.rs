//! Chains that run in rounds: a chain paused between rounds keeps its state, its
//! random stream, its trace and its acceptance counts, so the next round continues
//! it where it stopped. Each round builds its evaluators afresh from the chain's
//! state, as a chain restored from a [`ChainSnapshot`] must (an incremental
//! evaluator's last bits depend on its history, which a snapshot does not keep):
//! so a chain run in rounds holds the same samples whether or not it was saved and
//! restored between them, on any thread count, and a run stopped early holds a
//! prefix of a longer run's samples with the same rounds. Against one run of the
//! total length ([`crate::run_chain`] with the same stream) the states are the
//! same but for a decision within rounding, the log-likelihoods within rounding.

use crate::evaluator::ChainEvaluator;
use crate::merge::ChainRun;
use crate::rng;
use crate::round::{Round, RoundEnd};
use crate::running::Running;
use crate::tempering::{self, Exchange};
use crate::trace::Trace;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::time::Instant;
use sustain_core::{EventOrder, Mixture, Sequence};

/// A chain between rounds, whose rounds evaluate proposals with an `E`.
#[derive(Debug)]
pub struct PausedChain<E> {
    /// Chain index in the run (fixes its random stream).
    pub index: usize,
    state: Mixture,
    rng: Pcg64,
    trace: Trace,
    accepted: u64,
    proposed: u64,
    wall_s: f64,
    /// Replica exchange: the hot copies' states (ranks 1..) and the ladder; none
    /// for a plain chain.
    hot: Vec<Mixture>,
    exchange: Option<Exchange>,
    evaluator: PhantomData<fn() -> E>,
}

/// A mixture as files keep it: each subtype's events first to last, and the
/// fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedMixture {
    sequences: Vec<Vec<usize>>,
    fractions: Vec<f64>,
}

impl SavedMixture {
    fn of(m: &Mixture) -> Self {
        Self {
            sequences: m.sequences().iter().map(Sequence::order).collect(),
            fractions: m.fractions().to_vec(),
        }
    }
    fn mixture(&self, events: &EventOrder) -> Result<Mixture, String> {
        let sequences = self
            .sequences
            .iter()
            .map(|o| Sequence::new(events, o).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Mixture::new(sequences, self.fractions.clone()).map_err(|e| e.to_string())
    }
}

/// Everything of a [`PausedChain`] but its trace, for a checkpoint between
/// rounds: [`PausedChain::restore`] with the trace continues the chain exactly
/// as if it had never stopped (its random streams, hot copies, ladder and its
/// adaptation included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSnapshot {
    /// Chain index in the run.
    pub index: usize,
    state: SavedMixture,
    rng: Pcg64,
    accepted: u64,
    proposed: u64,
    wall_s: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hot: Vec<SavedMixture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exchange: Option<Exchange>,
}

impl<E: ChainEvaluator> PausedChain<E> {
    /// Chain `index` of a run seeded `seed` at `start`, before its first iteration:
    /// the stream `(seed, CHAIN, index)` of [`crate::run_chain`]'s callers.
    pub fn start(index: usize, start: &Mixture, seed: u64, n_events: usize) -> Self {
        Self {
            index,
            state: start.clone(),
            rng: rng::stream(seed, rng::purpose::CHAIN, index as u64),
            trace: Trace::new(start.n_subtypes(), n_events),
            accepted: 0,
            proposed: 0,
            wall_s: 0.0,
            hot: Vec::new(),
            exchange: None,
            evaluator: PhantomData,
        }
    }

    /// The chain as the cold copy of a replica-exchange ladder of powers `betas`
    /// (from [`tempering::geometric_ladder`]; checked by
    /// [`tempering::check_ladder`]), every hot copy starting at the chain's
    /// start. A ladder of one rung is the plain chain, sample for sample.
    pub fn tempered(mut self, betas: Vec<f64>, seed: u64) -> Result<Self, String> {
        tempering::check_ladder(&betas)?;
        if betas.len() > 1 {
            self.hot = vec![self.state.clone(); betas.len() - 1];
            self.exchange = Some(Exchange::new(betas, seed, self.index));
        }
        Ok(self)
    }

    /// The chain without its trace, for a checkpoint; see [`Self::restore`].
    pub fn snapshot(&self) -> ChainSnapshot {
        ChainSnapshot {
            index: self.index,
            state: SavedMixture::of(&self.state),
            rng: self.rng.clone(),
            accepted: self.accepted,
            proposed: self.proposed,
            wall_s: self.wall_s,
            hot: self.hot.iter().map(SavedMixture::of).collect(),
            exchange: self.exchange.clone(),
        }
    }

    /// The chain `snapshot` was taken of, with its `trace` (of as many iterations
    /// as it had then), over `events`; the message says what does not fit.
    pub fn restore(
        snapshot: &ChainSnapshot,
        trace: Trace,
        events: &EventOrder,
    ) -> Result<Self, String> {
        let state = snapshot.state.mixture(events)?;
        let hot = snapshot
            .hot
            .iter()
            .map(|m| m.mixture(events))
            .collect::<Result<Vec<_>, _>>()?;
        let k = state.n_subtypes();
        if trace.n_subtypes != k || trace.n_events != events.n_events() {
            return Err(format!(
                "chain {}: its samples have {} subtype(s) of {} events, its state {k} of {}",
                snapshot.index,
                trace.n_subtypes,
                trace.n_events,
                events.n_events()
            ));
        }
        let rungs = snapshot.exchange.as_ref().map_or(1, |x| x.betas().len());
        if hot.len() + 1 != rungs || hot.iter().any(|m| m.n_subtypes() != k) {
            return Err(format!(
                "chain {}: {} tempered copies for a ladder of {rungs}",
                snapshot.index,
                hot.len()
            ));
        }
        if let Some(x) = &snapshot.exchange {
            x.check()?;
        }
        Ok(Self {
            index: snapshot.index,
            state,
            rng: snapshot.rng.clone(),
            trace,
            accepted: snapshot.accepted,
            proposed: snapshot.proposed,
            wall_s: snapshot.wall_s,
            hot,
            exchange: snapshot.exchange.clone(),
            evaluator: PhantomData,
        })
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

    /// The samples so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Runs `round.n` more iterations, reporting the chain's total iterations into
    /// the round's progress slot and stopping early at its deadline or on
    /// cancellation (then fewer ran). Every copy's evaluator is built with `make`
    /// at the copy's state (see the module's words on why every round does); a
    /// ladder is respaced after the round from its swap rates.
    pub fn run(
        &mut self,
        events: &EventOrder,
        make: impl FnMut(&Mixture) -> E,
        round: Round<'_>,
    ) -> RoundEnd {
        let t0 = Instant::now();
        let mut running = self.open(events, &round, make);
        let Ok(end) = round.in_blocks(1, |m| {
            for _ in 0..m {
                running.step();
            }
            Ok::<_, Infallible>(running.n_iterations())
        });
        self.close(running, t0.elapsed().as_secs_f64());
        end
    }

    /// The copies' states in rank order (the chain's state first), as a round
    /// starts them.
    pub(crate) fn rungs(&self) -> impl Iterator<Item = &Mixture> {
        std::iter::once(&self.state).chain(&self.hot)
    }

    /// Takes the chain apart for a round: its copies running with evaluators
    /// `make` builds at their states (in rank order); [`Self::close`] puts it
    /// back together.
    pub(crate) fn open<'a, F: ChainEvaluator>(
        &mut self,
        events: &'a EventOrder,
        round: &Round<'_>,
        make: impl FnMut(&Mixture) -> F,
    ) -> Running<'a, F> {
        let rungs: Vec<Mixture> = std::iter::once(self.state.clone())
            .chain(self.hot.drain(..))
            .collect();
        let empty = Trace::new(self.trace.n_subtypes, self.trace.n_events);
        Running::new(
            events,
            round,
            rungs,
            self.exchange.take(),
            self.rng.clone(),
            std::mem::replace(&mut self.trace, empty),
            make,
        )
    }

    /// The chain after a round that `running` ran in `wall_s` seconds; a ladder
    /// is respaced from the round's swap rates.
    pub(crate) fn close<F: ChainEvaluator>(&mut self, running: Running<'_, F>, wall_s: f64) {
        let ran = running.into_ran();
        let mut ranked = ran.ranked.into_iter();
        if let Some(cold) = ranked.next() {
            self.state = cold;
        }
        self.hot = ranked.collect();
        self.exchange = ran.exchange.map(|mut x| {
            x.adapt();
            x
        });
        self.rng = ran.rng;
        self.trace = ran.trace;
        self.accepted += ran.accepted;
        self.proposed += ran.proposed;
        self.wall_s += wall_s;
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
