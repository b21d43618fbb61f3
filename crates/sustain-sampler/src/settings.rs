//! Settings of a multi-chain run and how one chain of it runs: shared by the
//! threaded CPU backend (sustain-cpu) and the facade's one-thread path, so both
//! run each chain the same way (the same stream, evaluator and progress slot).

use crate::continued::PausedChain;
use crate::progress::ChainProgress;
use crate::round::{Round, RoundEnd};
use crate::{rng, run_chain, ChainEvaluator, ChainRun, ProposalMode, StepSizes};
use std::time::Instant;
use sustain_core::{EventOrder, Mixture, SustainModel};

/// Number of threads to use when the user gives none: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Fewest [`SustainModel::SHARD_BLOCK`]s of subjects worth a thread of their own: below that the
/// hand-over and the per-proposal bookkeeping each shard repeats outweigh the
/// split work.
pub const MIN_BLOCKS_PER_SHARD: usize = 4;

/// How many of `threads` threads one chain over `n` subjects should use: at most
/// one per [`MIN_BLOCKS_PER_SHARD`] blocks, at least 1.
pub fn useful_shards(n: usize, threads: usize, block: usize) -> usize {
    threads
        .min(n.div_ceil(block.max(1)) / MIN_BLOCKS_PER_SHARD)
        .max(1)
}

/// Settings of a multi-chain run.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// Proposal mode.
    pub mode: ProposalMode,
    /// Tuned step sizes, shared by all chains.
    pub steps: StepSizes,
    /// Iterations per chain.
    pub n_iterations: usize,
    /// Run seed; chain `i` uses stream `i` of it.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// Most threads one chain may use: with fewer chains than `threads`, each
    /// chain's subjects are split over `min(chain_threads, threads / chains)`
    /// threads (sustain-cpu's `ShardedIncremental`); the results are the same
    /// bits. 1 keeps every chain on one thread (for example while other work runs
    /// beside it).
    pub chain_threads: usize,
}

impl ChainSettings {
    /// Threads each of `n_chains` chains may use: never more than the machine's
    /// cores (a split chain hands work between its threads every proposal, which
    /// only pays when each has a core of its own).
    pub fn threads_per_chain(&self, n_chains: usize) -> usize {
        let cores = default_threads();
        (self.threads.min(cores) / n_chains.max(1)).clamp(1, self.chain_threads.max(1))
    }

    /// Shards (threads) each of `n_chains` chains over `n_subjects` subjects is
    /// split into: [`Self::threads_per_chain`], fewer where shards would be small
    /// ([`useful_shards`]).
    pub fn shards_per_chain<M: SustainModel>(&self, n_subjects: usize, n_chains: usize) -> usize {
        useful_shards(n_subjects, self.threads_per_chain(n_chains), M::SHARD_BLOCK)
    }

    /// Runs chain `index` of the run (stream `(seed, CHAIN, index)`) from `start`
    /// with `evaluator`, reporting into `progress`.
    pub fn run_chain<E: ChainEvaluator>(
        &self,
        index: usize,
        events: &EventOrder,
        evaluator: E,
        start: &Mixture,
        progress: Option<(&ChainProgress, usize)>,
    ) -> ChainRun {
        let mut rng = rng::stream(self.seed, rng::purpose::CHAIN, index as u64);
        let round = Round {
            progress,
            ..self.round(self.n_iterations)
        };
        run_chain(index, events, evaluator, start, round, &mut rng)
    }

    /// Continues `chain` (paused between rounds) by `n` iterations, with the
    /// evaluator `make` builds from its state; see [`PausedChain::run`].
    pub fn continue_chain<E: ChainEvaluator>(
        &self,
        chain: &mut PausedChain<E>,
        events: &EventOrder,
        make: impl FnMut(&Mixture) -> E,
        n: usize,
        progress: Option<(&ChainProgress, usize)>,
        deadline: Option<Instant>,
    ) -> RoundEnd {
        let round = Round {
            progress,
            deadline,
            ..self.round(n)
        };
        chain.run(events, make, round)
    }

    /// `n` iterations of this run's proposals, unobserved and without a deadline.
    fn round(&self, n: usize) -> Round<'_> {
        Round::new(self.mode, &self.steps, n)
    }
}
