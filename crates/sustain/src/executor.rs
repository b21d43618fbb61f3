//! Where the facade's CPU work runs. With the `cpu` feature (the default) it is
//! the threaded backend, sustain-cpu; without it, the same work one item after
//! another on the calling thread. Every unit of work has its own index and random
//! stream and every chain state gives the same bits however it is split, so both
//! give the same results.

#[cfg(feature = "cpu")]
pub(crate) use threaded::*;

#[cfg(not(feature = "cpu"))]
pub(crate) use serial::*;

#[cfg(feature = "cpu")]
mod threaded {
    use std::sync::Arc;
    use sustain_core::{BatchEvaluator, Mixture, SustainModel};
    pub(crate) use sustain_cpu::{
        continue_chains, parallel_map, run_chains, run_chains_observed, share_threads,
        ShardedIncremental as ChainState,
    };

    /// A chain's state at `start`, split over `shards` threads.
    pub(crate) fn chain_state<M: SustainModel>(
        model: &Arc<M>,
        start: &Mixture,
        shards: usize,
    ) -> ChainState<M> {
        ChainState::new(Arc::clone(model), start, shards)
    }

    /// A batch evaluator on `threads` threads.
    pub(crate) fn batch_evaluator<M: SustainModel>(
        model: &Arc<M>,
        threads: usize,
    ) -> Box<dyn BatchEvaluator + Send> {
        Box::new(sustain_cpu::ThreadedEvaluator::new(Arc::clone(model), threads))
    }
}

#[cfg(not(feature = "cpu"))]
mod serial {
    use std::sync::Arc;
    use std::time::Instant;
    use sustain_core::generic::ShardChain;
    use sustain_core::{BatchEvaluator, Mixture, SustainModel};
    use sustain_sampler::progress::ChainProgress;
    use sustain_sampler::{ChainRun, ChainSettings, PausedChain, RoundEnd};

    /// A chain's state: one shard over every subject.
    pub(crate) type ChainState<M> = ShardChain<M>;

    /// A chain's state at `start` (one shard, whatever `shards` asks).
    pub(crate) fn chain_state<M: SustainModel>(
        model: &Arc<M>,
        start: &Mixture,
        _shards: usize,
    ) -> ChainState<M> {
        ShardChain::new(Arc::clone(model), M::shard_state(Arc::clone(model), start))
    }

    /// The model's own single-thread evaluator.
    pub(crate) fn batch_evaluator<M: SustainModel>(
        model: &Arc<M>,
        _threads: usize,
    ) -> Box<dyn BatchEvaluator + Send> {
        M::batch_evaluator(model)
    }

    /// `f` of every index of `0..n`, in order.
    pub(crate) fn parallel_map<R, F: Fn(usize) -> R>(n: usize, _threads: usize, f: F) -> Vec<R> {
        (0..n).map(f).collect()
    }

    /// The jobs one after another, the last first, each with all `threads`;
    /// stops when `done` returns false.
    pub(crate) fn share_threads<J, R>(
        mut jobs: Vec<J>,
        threads: usize,
        f: impl Fn(J, usize) -> R,
        mut done: impl FnMut(R) -> bool,
    ) {
        while let Some(job) = jobs.pop() {
            if !done(f(job, threads.max(1))) {
                break;
            }
        }
    }

    /// The chains `chains` one after another.
    pub(crate) fn run_chains<M: SustainModel>(
        model: &Arc<M>,
        start: &Mixture,
        settings: &ChainSettings,
        chains: std::ops::Range<usize>,
    ) -> Vec<ChainRun> {
        run_chains_observed(model, start, settings, chains, None)
    }

    /// As [`run_chains`], chain `chains.start + i` reporting into `progress` slot `i`.
    pub(crate) fn run_chains_observed<M: SustainModel>(
        model: &Arc<M>,
        start: &Mixture,
        settings: &ChainSettings,
        chains: std::ops::Range<usize>,
        progress: Option<&ChainProgress>,
    ) -> Vec<ChainRun> {
        chains
            .enumerate()
            .map(|(i, index)| {
                let evaluator = chain_state(model, start, 1);
                settings.run_chain(index, model.order(), evaluator, start, progress.map(|p| (p, i)))
            })
            .collect()
    }

    /// Continues every chain by `n` iterations, one after another.
    pub(crate) fn continue_chains<M: SustainModel>(
        model: &Arc<M>,
        settings: &ChainSettings,
        chains: &mut [PausedChain<ChainState<M>>],
        n: usize,
        progress: Option<&ChainProgress>,
        deadline: Option<Instant>,
    ) -> Vec<RoundEnd> {
        chains
            .iter_mut()
            .enumerate()
            .map(|(i, chain)| {
                settings.continue_chain(
                    chain,
                    model.order(),
                    |state| chain_state(model, state, 1),
                    n,
                    progress.map(|p| (p, i)),
                    deadline,
                )
            })
            .collect()
    }
}
