//! Where the facade's CPU work runs. With the `cpu` feature (the default) it is
//! the threaded backend, sustain-cpu; without it, the same work one item after
//! another on the calling thread. Every unit of work has its own index and random
//! stream and a chain's state gives the same bits however it is split, so both
//! give the same results.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;
use sustain_core::{BatchEvaluator, Mixture, SustainModel};
use sustain_sampler::progress::ChainProgress;
use sustain_sampler::{ChainRun, ChainSettings, PausedChain, RoundEnd};

/// A chain's state, split over threads.
#[cfg(feature = "cpu")]
pub(crate) type ChainState<M> = sustain_cpu::ShardedIncremental<M>;
/// A chain's state: one shard over every subject.
#[cfg(not(feature = "cpu"))]
pub(crate) type ChainState<M> = sustain_core::generic::ShardChain<M>;

/// A chain's state at `start`, split into (up to) `shards` shards where threads
/// are built in.
pub(crate) fn chain_state<M: SustainModel>(
    model: &Arc<M>,
    start: &Mixture,
    shards: usize,
) -> ChainState<M> {
    #[cfg(feature = "cpu")]
    let state = ChainState::new(Arc::clone(model), start, shards);
    #[cfg(not(feature = "cpu"))]
    let state = {
        let _ = shards;
        ChainState::new(Arc::clone(model), M::shard_state(Arc::clone(model), start))
    };
    state
}

/// A batch evaluator for staging: on `threads` threads, or the model's own
/// single-thread one.
pub(crate) fn batch_evaluator<M: SustainModel>(
    model: &Arc<M>,
    threads: usize,
) -> Box<dyn BatchEvaluator + Send> {
    #[cfg(feature = "cpu")]
    let evaluator = Box::new(sustain_cpu::ThreadedEvaluator::new(
        Arc::clone(model),
        threads,
    ));
    #[cfg(not(feature = "cpu"))]
    let evaluator = {
        let _ = threads;
        M::batch_evaluator(model)
    };
    evaluator
}

/// `f` of every index of `0..n`, in index order.
pub(crate) fn parallel_map<R: Send, F: Fn(usize) -> R + Sync>(
    n: usize,
    threads: usize,
    f: F,
) -> Vec<R> {
    #[cfg(feature = "cpu")]
    let out = sustain_cpu::parallel_map(n, threads, f);
    #[cfg(not(feature = "cpu"))]
    let out = {
        let _ = threads;
        (0..n).map(f).collect()
    };
    out
}

/// The threads a job of [`share_threads_lending`] may use: its own, and threads
/// finished jobs leave, joining its rounds of chains as they come free.
#[cfg(feature = "cpu")]
pub(crate) use sustain_cpu::JobThreads;

/// Without threads: one job at a time on the calling thread, nothing to borrow.
#[cfg(not(feature = "cpu"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobThreads<'a>(usize, std::marker::PhantomData<&'a ()>);

#[cfg(not(feature = "cpu"))]
impl JobThreads<'_> {
    /// `n` threads and nothing to borrow.
    pub(crate) fn fixed(n: usize) -> Self {
        Self(n.max(1), std::marker::PhantomData)
    }
    /// The job's own threads.
    pub(crate) fn own(&self) -> usize {
        self.0
    }
}

/// Runs `jobs`, the last first, sharing `threads` among them (one after another,
/// each with every thread, without threads); workers that run out of jobs lend
/// their threads to the jobs still running. See `sustain_cpu::share_threads_lending`.
pub(crate) fn share_threads_lending<J: Send, R: Send>(
    jobs: Vec<J>,
    threads: usize,
    f: impl Fn(J, JobThreads<'_>) -> R + Sync,
    done: impl FnMut(R) -> bool,
) {
    #[cfg(feature = "cpu")]
    sustain_cpu::share_threads_lending(jobs, threads, f, done);
    #[cfg(not(feature = "cpu"))]
    {
        let mut done = done;
        for job in jobs.into_iter().rev() {
            if !done(f(job, JobThreads::fixed(threads))) {
                break;
            }
        }
    }
}

/// The chains of one run: `settings` over `model`.
pub(crate) struct Chains<'a, M: SustainModel> {
    pub model: &'a Arc<M>,
    pub settings: &'a ChainSettings,
}

impl<M: SustainModel> Chains<'_, M> {
    /// Runs the chains `indices` from `start`, chain `indices.start + i` reporting
    /// into `progress` slot `i`.
    pub(crate) fn run(
        &self,
        start: &Mixture,
        indices: Range<usize>,
        progress: Option<&ChainProgress>,
    ) -> Vec<ChainRun> {
        #[cfg(feature = "cpu")]
        let runs =
            sustain_cpu::run_chains_observed(self.model, start, self.settings, indices, progress);
        #[cfg(not(feature = "cpu"))]
        let runs = indices
            .enumerate()
            .map(|(i, index)| {
                let state = chain_state(self.model, start, 1);
                let slot = progress.map(|p| (p, i));
                self.settings
                    .run_chain(index, self.model.order(), state, start, slot)
            })
            .collect();
        runs
    }

    /// Continues every chain of `paused` by `n` iterations (until `deadline`) on
    /// `threads`, spare threads joining as they come free; chain `i` reports
    /// into `progress` slot `i`.
    pub(crate) fn resume(
        &self,
        paused: &mut [PausedChain<ChainState<M>>],
        n: usize,
        progress: Option<&ChainProgress>,
        deadline: Option<Instant>,
        threads: JobThreads<'_>,
    ) -> Vec<RoundEnd> {
        #[cfg(feature = "cpu")]
        let ends = sustain_cpu::continue_chains(
            self.model,
            self.settings,
            paused,
            n,
            progress,
            deadline,
            threads,
        );
        #[cfg(not(feature = "cpu"))]
        let _ = threads;
        #[cfg(not(feature = "cpu"))]
        let ends = paused
            .iter_mut()
            .enumerate()
            .map(|(i, chain)| {
                let make = |state: &Mixture| chain_state(self.model, state, 1);
                let slot = progress.map(|p| (p, i));
                self.settings
                    .continue_chain(chain, self.model.order(), make, n, slot, deadline)
            })
            .collect();
        ends
    }
}
