//! One chain during a round: its copies as running chains (one for a plain
//! chain, the ladder's copies for replica exchange), its random stream and its
//! samples. The CPU steps it a whole iteration at a time ([`Running::step`]); the
//! lockstep driver in two halves around a batch evaluation ([`Running::begin`],
//! [`Running::finish`]). Both draw from the same streams in the same order and end
//! every iteration alike (the ladder's swap, then the cold copy recorded), so a
//! chain's samples do not depend on which of them ran it.

use crate::chain::{Chain, Pending, SustainChain};
use crate::evaluator::ChainEvaluator;
use crate::round::Round;
use crate::tempering::Exchange;
use crate::trace::Trace;
use rand_pcg::Pcg64;
use sustain_core::{EventOrder, Mixture};

/// A chain during a round (see the module's words).
pub(crate) struct Running<'a, E: ChainEvaluator> {
    /// The copies; copy `at[r]` is at rank `r` (rank 0 samples the posterior).
    copies: Vec<SustainChain<'a, E>>,
    at: Vec<usize>,
    /// The ladder (hot streams, swaps); none for a plain chain.
    exchange: Option<Exchange>,
    /// The chain's own stream, which rank 0 steps on.
    rng: Pcg64,
    trace: Trace,
    /// The cold rank's accepted moves (swaps not counted) and iterations.
    accepted: u64,
    proposed: u64,
}

/// What a round leaves of a [`Running`] chain.
pub(crate) struct Ran {
    /// The copies' states in rank order (the cold one first).
    pub ranked: Vec<Mixture>,
    pub exchange: Option<Exchange>,
    pub rng: Pcg64,
    pub trace: Trace,
    pub accepted: u64,
    pub proposed: u64,
}

impl<'a, E: ChainEvaluator> Running<'a, E> {
    /// The chain at the states `rungs` (rank order; one without a ladder) over
    /// `events`, with `round`'s proposals and step sizes, each copy with an
    /// evaluator `make` builds at its state, in rank order.
    pub(crate) fn new(
        events: &'a EventOrder,
        round: &Round<'_>,
        rungs: Vec<Mixture>,
        exchange: Option<Exchange>,
        rng: Pcg64,
        trace: Trace,
        mut make: impl FnMut(&Mixture) -> E,
    ) -> Self {
        let betas = exchange.as_ref().map_or(&[1.0][..], |x| x.betas());
        let copies: Vec<SustainChain<'a, E>> = rungs
            .into_iter()
            .zip(betas)
            .map(|(state, &beta)| {
                let evaluator = make(&state);
                let steps = round.steps.clone();
                let mut chain = SustainChain::new(events, evaluator, state, round.mode, steps);
                chain.set_beta(beta);
                chain
            })
            .collect();
        Self {
            at: (0..copies.len()).collect(),
            copies,
            exchange,
            rng,
            trace,
            accepted: 0,
            proposed: 0,
        }
    }

    /// How many copies (lockstep lanes) the chain has.
    pub(crate) fn lanes(&self) -> usize {
        self.copies.len()
    }

    /// The copies' current states, in copy order (a lockstep lane per copy).
    pub(crate) fn start_states(&self) -> impl Iterator<Item = Mixture> + '_ {
        self.copies.iter().map(|c| c.state().clone())
    }

    /// Iterations in the chain's samples so far.
    pub(crate) fn n_iterations(&self) -> usize {
        self.trace.n_iterations()
    }

    /// One whole iteration with the copies' own evaluators: the cold rank steps
    /// on the chain's stream, every hot rank on its own.
    pub(crate) fn step(&mut self) {
        let cold_moved = self.copies[self.at[0]].step(&mut self.rng);
        if let Some(x) = &mut self.exchange {
            for r in 1..self.at.len() {
                self.copies[self.at[r]].step(x.hot_stream(r));
            }
        }
        self.end_iteration(cold_moved);
    }

    /// The first half of an iteration in lockstep: copy `c` draws its proposal
    /// into `slots[c]` (each rank on its stream, as [`Self::step`]).
    pub(crate) fn begin(&mut self, slots: &mut [Mixture], pending: &mut [Option<Pending>]) {
        for (r, &c) in self.at.iter().enumerate() {
            let rng = match &mut self.exchange {
                Some(x) if r > 0 => x.hot_stream(r),
                _ => &mut self.rng,
            };
            pending[c] = self.copies[c].begin_step(rng, &mut slots[c]);
        }
    }

    /// The second half: every copy decides its proposal from its score
    /// (`scores[c]` for `slots[c]`), then the iteration ends as in [`Self::step`].
    pub(crate) fn finish(
        &mut self,
        slots: &[Mixture],
        pending: &[Option<Pending>],
        scores: &[f64],
    ) {
        let mut cold_moved = false;
        for (c, copy) in self.copies.iter_mut().enumerate() {
            let moved = pending[c].is_some_and(|p| copy.finish_step(p, &slots[c], scores[c]));
            if c == self.at[0] {
                cold_moved = moved;
            }
        }
        self.end_iteration(cold_moved);
    }

    /// Counts the iteration, lets the ladder swap, records the cold rank.
    fn end_iteration(&mut self, cold_moved: bool) {
        self.proposed += 1;
        self.accepted += u64::from(cold_moved);
        match &mut self.exchange {
            Some(x) => {
                x.swap_and_record(&mut self.copies, &mut self.at, cold_moved, &mut self.trace)
            }
            None => {
                let cold = &self.copies[0];
                self.trace.record(cold.state(), cold.loglike(), cold_moved);
            }
        }
    }

    /// The round's end: the states back in rank order, the streams and samples.
    pub(crate) fn into_ran(self) -> Ran {
        let mut by_copy: Vec<Option<Mixture>> = self
            .copies
            .into_iter()
            .map(|c| Some(c.into_parts().1))
            .collect();
        Ran {
            ranked: self.at.iter().filter_map(|&c| by_copy[c].take()).collect(),
            exchange: self.exchange,
            rng: self.rng,
            trace: self.trace,
            accepted: self.accepted,
            proposed: self.proposed,
        }
    }
}
