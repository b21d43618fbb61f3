//! # sustain-cpu
//!
//! The CPU backend: many SuStaIn chains on crossbeam scoped threads, a threaded
//! [`BatchEvaluator`], and a deterministic parallel map used for E-M start points.
//! Every unit of work has a fixed index and its own random stream, and results are
//! stored by index, so outputs are bit-identical whatever the thread count.

#![warn(missing_docs)]

pub mod sharded;
pub mod spare;

pub use sharded::ShardedIncremental;
pub use spare::{JobThreads, Lease, SpareThreads};

use crossbeam::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use sustain_core::SubtypeOf;
use sustain_core::{BatchEvaluator, EventOrder, Mixture, Result, Sequence, SustainModel};
use sustain_sampler::progress::ChainProgress;
pub use sustain_sampler::{default_threads, ChainSettings};
use sustain_sampler::{ChainRun, PausedChain, RoundEnd};

/// Applies `f` to every index in `0..n` on `threads` threads; results in index
/// order. Work is handed out dynamically, so uneven items balance.
pub fn parallel_map<R: Send, F: Fn(usize) -> R + Sync>(n: usize, threads: usize, f: F) -> Vec<R> {
    parallel_map_joining(n, JobThreads::fixed(threads), f)
}

/// Runs `jobs` on workers that share `threads` out among them: `min(threads, jobs)`
/// workers, worker `w` with `threads / workers` threads plus one of the remainder
/// for the first workers. Jobs are taken from the end of `jobs` (put the largest
/// last) and the first workers start with the last jobs, so the largest job gets
/// the most threads. `f(job, worker_threads)` runs on a worker; `done(result)` runs
/// on the calling thread as results arrive, in completion order, and returning
/// `false` stops the workers from taking further jobs (jobs already taken finish,
/// and `done` sees their results).
pub fn share_threads<J: Send, R: Send>(
    jobs: Vec<J>,
    threads: usize,
    f: impl Fn(J, usize) -> R + Sync,
    done: impl FnMut(R) -> bool,
) {
    share_threads_lending(jobs, threads, |job, t| f(job, t.own()), done);
}

/// [`share_threads`], where a worker that finds no job left gives its threads
/// to the jobs still running: `f(job, threads)` may borrow them for a while
/// with [`JobThreads::lease`] (a fit's subtype counts whose chains run longer
/// than the others' take the threads the others finished with).
pub fn share_threads_lending<J: Send, R: Send>(
    mut jobs: Vec<J>,
    threads: usize,
    f: impl Fn(J, JobThreads<'_>) -> R + Sync,
    mut done: impl FnMut(R) -> bool,
) {
    let threads = threads.max(1);
    let workers = threads.min(jobs.len());
    let firsts: Vec<Option<J>> = (0..workers).map(|_| jobs.pop()).collect();
    let jobs = Mutex::new(jobs);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let spare = SpareThreads::default();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for (w, first) in firsts.into_iter().enumerate() {
            let share = threads / workers + usize::from(w < threads % workers);
            let (tx, jobs, stop, f, spare) = (tx.clone(), &jobs, &stop, &f, &spare);
            let mut next = first;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let job = next
                        .take()
                        .or_else(|| jobs.lock().map(|mut j| j.pop()).unwrap_or(None));
                    let Some(job) = job else { break };
                    if tx.send(f(job, JobThreads::lending(share, spare))).is_err() {
                        break;
                    }
                }
                // No job left for this worker: its threads are free for the others.
                spare.give(share);
            });
        }
        drop(tx);
        for result in rx.iter() {
            if !done(result) {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
}

/// Runs chains `chains` (indices; each with stream `(seed, CHAIN, index)`) from
/// `start` with the model's incremental evaluator, on `settings.threads` threads.
pub fn run_chains<M: SustainModel>(
    model: &Arc<M>,
    start: &Mixture,
    settings: &ChainSettings,
    chains: std::ops::Range<usize>,
) -> Vec<ChainRun> {
    run_chains_observed(model, start, settings, chains, None)
}

/// As [`run_chains`], with chain `chains.start + i` reporting into `progress` slot `i`.
pub fn run_chains_observed<M: SustainModel>(
    model: &Arc<M>,
    start: &Mixture,
    settings: &ChainSettings,
    chains: std::ops::Range<usize>,
    progress: Option<&ChainProgress>,
) -> Vec<ChainRun> {
    let indices: Vec<usize> = chains.collect();
    let events: &EventOrder = model.order();
    let per_chain = settings.shards_per_chain::<M>(model.n_subjects(), indices.len());
    parallel_map(indices.len(), settings.threads, |i| {
        let evaluator = ShardedIncremental::new(Arc::clone(model), start, per_chain);
        settings.run_chain(
            indices[i],
            events,
            evaluator,
            start,
            progress.map(|p| (p, i)),
        )
    })
}

/// Continues every chain of `chains` (paused between rounds) by `n` iterations,
/// each from its own state and stream, so the samples are those of one longer
/// run whatever the thread count: on `threads` (`JobThreads::fixed(n)` for `n`
/// threads), spare threads of other jobs joining while chains still wait. Chain
/// `i` of the slice reports its total iterations into `progress` slot `i`.
/// Chains stop early at `deadline` or on cancellation; returns how each round
/// ended.
pub fn continue_chains<M: SustainModel>(
    model: &Arc<M>,
    settings: &ChainSettings,
    chains: &mut [PausedChain<ShardedIncremental<M>>],
    n: usize,
    progress: Option<&ChainProgress>,
    deadline: Option<std::time::Instant>,
    threads: JobThreads<'_>,
) -> Vec<RoundEnd> {
    let events: &EventOrder = model.order();
    let per_chain = settings.shards_per_chain::<M>(model.n_subjects(), chains.len());
    let slots: Vec<Mutex<&mut PausedChain<_>>> = chains.iter_mut().map(Mutex::new).collect();
    parallel_map_joining(slots.len(), threads, |i| {
        let mut chain = slots[i].lock().unwrap_or_else(|e| e.into_inner());
        settings.continue_chain(
            &mut chain,
            events,
            |state| ShardedIncremental::new(Arc::clone(model), state, per_chain),
            n,
            progress.map(|p| (p, i)),
            deadline,
        )
    })
}

/// [`parallel_map`] on a job's own threads and the spare ones free at the
/// start, joined by spare threads as they come free: a worker beyond those
/// waits for a spare thread and takes items only once it holds one (given back
/// when no item is left).
pub fn parallel_map_joining<R: Send, F: Fn(usize) -> R + Sync>(
    n: usize,
    threads: JobThreads<'_>,
    f: F,
) -> Vec<R> {
    let start = threads.lease(n);
    let own = start.threads().clamp(1, n.max(1));
    // Workers that wait for a spare thread, where one may come.
    let joining = if threads.lends() {
        n.saturating_sub(own)
    } else {
        0
    };
    if own == 1 && joining == 0 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let r = f(i);
        if let Ok(mut s) = slots.lock() {
            s[i] = Some(r);
        }
    };
    thread::scope(|scope| {
        for w in 0..own + joining {
            let (work, next) = (&work, &next);
            scope.spawn(move |_| {
                if w < own {
                    return work();
                }
                // A joining worker: holds one spare thread while it works.
                loop {
                    if next.load(Ordering::Relaxed) >= n {
                        return;
                    }
                    let lease = threads.lease(threads.own() + 1);
                    if lease.threads() > threads.own() {
                        work();
                        return;
                    }
                    drop(lease);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
        }
    })
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    drop(start);
    slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| unreachable!("every index is processed")))
        .collect()
}

/// [`BatchEvaluator`] that splits each batch over threads: mixtures (or E-M
/// candidates) between threads, or, for staging, subjects on
/// [`SustainModel::SHARD_BLOCK`] boundaries (a subject's sums are the same bits
/// whatever range it is computed in).
pub struct ThreadedEvaluator<M: SustainModel> {
    model: Arc<M>,
    threads: usize,
}

impl<M: SustainModel> Clone for ThreadedEvaluator<M> {
    fn clone(&self) -> Self {
        Self {
            model: Arc::clone(&self.model),
            threads: self.threads,
        }
    }
}

impl<M: SustainModel> ThreadedEvaluator<M> {
    /// Wraps a model.
    pub fn new(model: Arc<M>, threads: usize) -> Self {
        Self {
            model,
            threads: threads.max(1),
        }
    }
}

/// Splits `0..n` into at most `parts` contiguous chunks.
fn chunks(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let size = n.div_ceil(parts);
    (0..parts)
        .map(|p| (p * size).min(n)..((p + 1) * size).min(n))
        .filter(|r| !r.is_empty())
        .collect()
}

impl<M: SustainModel> BatchEvaluator for ThreadedEvaluator<M> {
    fn events(&self) -> &EventOrder {
        self.model.order()
    }
    fn n_subjects(&self) -> usize {
        self.model.n_subjects()
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>> {
        let model = &self.model;
        let parts = chunks(mixtures.len(), self.threads);
        let out = parallel_map(parts.len(), self.threads, |p| {
            mixtures[parts[p].clone()]
                .iter()
                .map(|m| model.loglike(m))
                .collect::<Vec<_>>()
        });
        Ok(out.into_iter().flatten().collect())
    }
    fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>> {
        let model = &self.model;
        Ok(parallel_map(mixtures.len(), self.threads, |i| {
            model.log_p_subjects(&mixtures[i])
        }))
    }
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<ndarray::Array3<f64>> {
        let model = &self.model;
        let k = sustain_core::evaluate::common_subtypes(mixtures)?;
        let (m, ns) = (model.n_subjects(), model.order().n_stages());
        if mixtures.is_empty() {
            return Ok(ndarray::Array3::zeros((m, ns, k)));
        }
        let block = M::SHARD_BLOCK.max(1);
        let groups = chunks(m.div_ceil(block), self.threads);
        let parts = parallel_map(groups.len(), self.threads, |p| {
            let subjects = groups[p].start * block..(groups[p].end * block).min(m);
            let mut out = vec![0.0; subjects.len() * ns * k];
            model.posterior_sums_into(mixtures, subjects, &mut out)?;
            Ok(out)
        });
        let mut all = Vec::with_capacity(m * ns * k);
        for part in parts {
            all.extend(part?);
        }
        Ok(ndarray::Array3::from_shape_vec((m, ns, k), all)
            .unwrap_or_else(|_| unreachable!("one row per subject")))
    }
    fn loglike_subtype_candidates(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<Vec<f64>> {
        let model = &self.model;
        let parts = chunks(candidates.len(), self.threads);
        let out = parallel_map(parts.len(), self.threads, |p| {
            M::batch_evaluator(model)
                .loglike_subtype_candidates(slot, &candidates[parts[p].clone()])
        });
        let mut all = Vec::with_capacity(candidates.len());
        for part in out {
            all.extend(part?);
        }
        Ok(all)
    }
    /// The model's own evaluator's choice (the z-score one walks the positions
    /// instead of scoring each candidate whole); one thread.
    fn best_event_position(
        &mut self,
        slot: SubtypeOf<'_>,
        event: usize,
        allowed: std::ops::RangeInclusive<usize>,
    ) -> Result<usize> {
        M::batch_evaluator(&self.model).best_event_position(slot, event, allowed)
    }
    /// Each choice is made by a fresh evaluator: no history.
    fn choices_are_pure(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {

    /// A thread that comes free while a map runs joins it (two items at once
    /// from then on, never more), and goes back when the map ends; the results
    /// are in index order.
    #[test]
    fn a_spare_thread_joins_a_running_map() {
        let spare = SpareThreads::default();
        let threads = JobThreads::lending(1, &spare);
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                spare.give(1);
            });
            let out = parallel_map_joining(8, threads, |i| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                i * i
            });
            assert_eq!(out, (0..8).map(|i| i * i).collect::<Vec<_>>());
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(threads.lease(4).threads(), 2, "the spare thread is back");
        assert!(parallel_map_joining(0, threads, |i| i).is_empty());
    }

    /// A job still running when the other worker runs out of jobs borrows its
    /// thread; every job's result arrives.
    #[test]
    fn a_finished_worker_lends_its_threads_to_a_running_job() {
        let mut seen = Vec::new();
        share_threads_lending(
            vec!["short", "long"],
            2,
            |job, threads| {
                if job == "short" {
                    return (job, threads.lease(4).threads());
                }
                let start = std::time::Instant::now();
                loop {
                    let lease = threads.lease(4);
                    if lease.threads() > 1 || start.elapsed().as_secs() > 20 {
                        return (job, lease.threads());
                    }
                    drop(lease);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            },
            |r| {
                seen.push(r);
                true
            },
        );
        seen.sort();
        assert_eq!(seen, [("long", 2), ("short", 1)]);
    }

    use super::{parallel_map_joining, share_threads, share_threads_lending};
    use crate::{JobThreads, SpareThreads};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Every job runs once; the first workers, with the most threads, start with the
    /// last (largest) jobs; the shares add up to the threads.
    #[test]
    fn share_threads_runs_every_job_once_largest_first() {
        for (n_jobs, threads) in [(5, 2), (3, 7), (1, 4), (4, 4), (0, 3)] {
            let mut seen = Vec::new();
            share_threads(
                (0..n_jobs).collect(),
                threads,
                |j: usize, share| (j, share),
                |r| {
                    seen.push(r);
                    true
                },
            );
            let mut jobs: Vec<usize> = seen.iter().map(|r| r.0).collect();
            jobs.sort_unstable();
            assert_eq!(jobs, (0..n_jobs).collect::<Vec<_>>());
            let workers = threads.min(n_jobs);
            if let Some(base) = threads.checked_div(workers) {
                let largest = seen.iter().find(|r| r.0 == n_jobs - 1).unwrap().1;
                assert_eq!(largest, base + usize::from(threads % workers > 0));
            }
            // The first `workers` jobs taken each report their worker's share.
            let mut firsts: Vec<usize> = seen
                .iter()
                .filter(|r| r.0 + workers >= n_jobs)
                .map(|r| r.1)
                .collect();
            firsts.sort_unstable();
            assert_eq!(
                firsts.iter().sum::<usize>(),
                if workers > 0 { threads } else { 0 }
            );
        }
    }

    /// `done` returning false stops the workers from taking more jobs (a job a
    /// worker took before it learned may still finish: jobs here take 10 ms, so all
    /// 100 would take a second).
    #[test]
    fn share_threads_stops_when_done_says_so() {
        let mut count = 0;
        share_threads(
            (0..100).collect(),
            1,
            |j: usize, _| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                j
            },
            |_| {
                count += 1;
                false
            },
        );
        assert!((1..50).contains(&count), "{count} jobs ran");
    }
}
