//! Lockstep chains: N SuStaIn chains advanced together, every iteration's proposals
//! scored in one [`BatchEvaluator::loglike_batch_parts`] call (one GPU dispatch).
//!
//! The CPU side (drawing proposals, deciding, recording traces) is split over
//! [`LockstepSettings::threads`] threads, each with a contiguous block of chains and
//! one reused proposal slot per chain; the evaluator reads the blocks' slots in
//! place. On a GPU this is what keeps the device busy: with one thread, drawing 1024
//! W1 proposals took 3.5 of each 3.9 ms iteration on an H100.
//!
//! Each chain keeps its own random stream on the CPU, `rng::stream(seed, CHAIN,
//! index)` as in the CPU backend (`sustain_cpu::run_chains`), and draws from it in
//! the same order as [`crate::Chain::step`]: the proposal and the acceptance uniform
//! first ([`SustainChain::begin_step`]), then, once the batch is scored, the
//! accept/reject decision ([`SustainChain::finish_step`]) which draws nothing. So a
//! chain's trace depends only on its stream and on the log-likelihoods the
//! evaluator returns, never on how the backend schedules the batch or on the other
//! chains. With an exact evaluator the traces are those of the CPU path, except
//! where an accept/reject decision falls within rounding of the threshold (the CPU
//! path scores proposals incrementally, this one in full; both in f64 they differ by
//! about 1e-13 relative).
//!
//! Chains run in rounds ([`PausedChain`], [`continue_lockstep`]) continue from
//! where the last round stopped, as on the CPU; a replica-exchange ladder's
//! copies are more lanes of the same batch, each rank on its own stream, the
//! swaps drawn from the ladder's stream after every iteration and the ladder
//! respaced after every round, by the same code as the CPU's
//! (`running.rs`): so a tempered chain's samples too are the CPU's but
//! where a decision (a move or a swap) falls within the evaluators' rounding.
//!
//! ```
//! use std::sync::Arc;
//! use sustain_model::*;
//! use sustain_sampler::{lockstep, ProposalMode, StepSizes};
//! let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
//! let data = Dataset::from_rows(&[vec![0.5, 1.5, 2.5], vec![2.0, 0.1, 1.0]]).unwrap();
//! let lik = Arc::new(Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap());
//! let mut rng = <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(1);
//! let start = Mixture::single(Sequence::random(&events, &mut rng));
//! let settings = lockstep::LockstepSettings {
//!     mode: ProposalMode::Exact,
//!     steps: StepSizes::initial(1, events.n_events()),
//!     n_iterations: 100,
//!     seed: 7,
//!     threads: 1,
//! };
//! let mut evaluator = SerialEvaluator::new(lik);
//! let runs = lockstep::run_lockstep(&mut evaluator, &start, &settings, 0..4).unwrap();
//! assert_eq!(runs.len(), 4);
//! assert_eq!(runs[2].index, 2);
//! assert_eq!(runs[2].trace.n_iterations(), 100);
//! ```

use crate::chain::{Pending, ProposalMode, StepSizes};
use crate::continued::PausedChain;
use crate::evaluator::ChainEvaluator;
use crate::merge::ChainRun;
use crate::round::{Round, RoundEnd};
use crate::running::Running;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use sustain_core::{BatchEvaluator, EventOrder, Mixture, ModelError, Result};

/// Fewest copies (lanes) a drawing thread is given: below this, handing work
/// between threads every iteration costs more than it saves.
const MIN_LANES_PER_THREAD: usize = 32;

/// How long a thread waiting at the lockstep barrier spins before it sleeps: longer
/// than one evaluator call on a GPU, so that the threads wake within a microsecond
/// instead of the tens of microseconds a sleeping thread takes (`std::sync::Barrier`
/// always sleeps).
const SPIN: Duration = Duration::from_millis(2);

/// A barrier for `n` threads that spins for [`SPIN`], then sleeps.
struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        Self {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // Last to arrive: reset the count before opening the next generation
            // (no thread can arrive again before it opens).
            self.arrived.store(0, Ordering::Relaxed);
            {
                let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                self.generation
                    .store(generation.wrapping_add(1), Ordering::Release);
            }
            self.wake.notify_all();
            return;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.generation.load(Ordering::Acquire) != generation {
                    return;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN {
                break;
            }
        }
        // The generation is opened under the lock, so this cannot miss the wake-up.
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.generation.load(Ordering::Acquire) == generation {
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Settings of a lockstep run (as `sustain_cpu::ChainSettings`: the batch evaluator
/// scores the proposals, CPU threads draw them and decide).
#[derive(Debug, Clone)]
pub struct LockstepSettings {
    /// Proposal mode.
    pub mode: ProposalMode,
    /// Step sizes, shared by all chains.
    pub steps: StepSizes,
    /// Iterations per chain.
    pub n_iterations: usize,
    /// Run seed; chain `i` uses stream `rng::stream(seed, CHAIN, i)`.
    pub seed: u64,
    /// Most CPU threads that draw proposals and make the accept/reject decisions,
    /// each for a contiguous block of chains with at least 32 copies in all (the
    /// calling thread is one of them and also calls the evaluator). Results do not
    /// depend on it.
    pub threads: usize,
}

/// The chain-side evaluator of a lockstep copy: it only knows the log-likelihood
/// of the state it starts the round at; proposals are scored by the driver's
/// batch evaluator.
struct Scored(f64);

impl ChainEvaluator for Scored {
    fn reset(&mut self, _mixture: &Mixture) -> f64 {
        self.0
    }
    fn propose(&mut self, _mixture: &Mixture, _changed: &[bool]) -> f64 {
        // Never called: the driver uses begin_step / finish_step.
        f64::NAN
    }
    fn accept(&mut self) {}
    fn reject(&mut self) {}
}

/// One drawing thread's contiguous block of chains, and one proposal slot per
/// copy (lane), which the evaluator reads in place: chain `i`'s copies use the
/// slots from `starts[i]` on. A slot whose proposal left the simplex (`pending`
/// is `None`) still holds a valid model; it is scored with the others and its
/// score ignored, so the batch never needs compacting.
struct Block<'a> {
    chains: Vec<Running<'a, Scored>>,
    starts: Vec<usize>,
    slots: Vec<Mixture>,
    pending: Vec<Option<Pending>>,
    scores: Vec<f64>,
}

impl<'a> Block<'a> {
    fn new(chains: Vec<Running<'a, Scored>>) -> Self {
        let mut starts = Vec::with_capacity(chains.len());
        let mut slots = Vec::new();
        for chain in &chains {
            starts.push(slots.len());
            // Placeholders: every step overwrites its slot with the proposal.
            slots.extend(chain.start_states());
        }
        Block {
            pending: vec![None; slots.len()],
            scores: Vec::with_capacity(slots.len()),
            chains,
            starts,
            slots,
        }
    }

    /// The lanes of chain `i`.
    fn lanes(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i]..self.starts[i] + self.chains[i].lanes()
    }

    /// Draws every copy's proposal into its slot.
    fn begin(&mut self) {
        for i in 0..self.chains.len() {
            let lanes = self.lanes(i);
            self.chains[i].begin(&mut self.slots[lanes.clone()], &mut self.pending[lanes]);
        }
    }

    /// Decides every copy's proposal from `scores` and ends the iteration.
    fn finish(&mut self) {
        for i in 0..self.chains.len() {
            let lanes = self.lanes(i);
            self.chains[i].finish(
                &self.slots[lanes.clone()],
                &self.pending[lanes.clone()],
                &self.scores[lanes],
            );
        }
    }
}

fn lock<'g, 'a>(block: &'g Mutex<Block<'a>>) -> MutexGuard<'g, Block<'a>> {
    // A poisoned block means a drawing thread panicked; the scope re-raises it.
    block.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Scores every block's slots in one evaluator call and hands each block its scores.
fn score_all<B: BatchEvaluator + ?Sized>(evaluator: &mut B, blocks: &[Mutex<Block>]) -> Result<()> {
    let mut guards: Vec<_> = blocks.iter().map(lock).collect();
    let parts: Vec<&[Mixture]> = guards.iter().map(|g| g.slots.as_slice()).collect();
    let want: usize = parts.iter().map(|p| p.len()).sum();
    let scores = evaluator.loglike_batch_parts(&parts)?;
    if scores.len() != want {
        return Err(ModelError::Backend(format!(
            "the evaluator returned {} log-likelihoods for {want} proposals",
            scores.len()
        )));
    }
    let mut rest = scores.as_slice();
    for g in &mut guards {
        let (mine, tail) = rest.split_at(g.slots.len());
        g.scores.clear();
        g.scores.extend_from_slice(mine);
        rest = tail;
    }
    Ok(())
}

/// Runs `n` lockstep iterations of every block: each thread draws its block, the
/// calling thread scores all blocks in one evaluator call, each thread decides
/// its block (two barriers per iteration with several blocks).
fn iterate<B: BatchEvaluator + ?Sized>(
    evaluator: &mut B,
    blocks: &[Mutex<Block>],
    n: usize,
) -> Result<()> {
    if blocks.len() <= 1 {
        for _ in 0..n {
            for b in blocks {
                lock(b).begin();
            }
            score_all(evaluator, blocks)?;
            for b in blocks {
                lock(b).finish();
            }
        }
        return Ok(());
    }
    let barrier = SpinBarrier::new(blocks.len());
    let stop = AtomicBool::new(false);
    let (barrier, stop) = (&barrier, &stop);
    std::thread::scope(|scope| {
        for block in &blocks[1..] {
            scope.spawn(move || {
                for _ in 0..n {
                    lock(block).begin();
                    barrier.wait();
                    barrier.wait();
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    lock(block).finish();
                }
            });
        }
        for _ in 0..n {
            lock(&blocks[0]).begin();
            barrier.wait();
            let scored = score_all(evaluator, blocks);
            if scored.is_err() {
                stop.store(true, Ordering::Release);
            }
            barrier.wait();
            scored?;
            lock(&blocks[0]).finish();
        }
        Ok(())
    })
}

/// Continues every chain of `chains` (paused between rounds; plain chains or
/// replica-exchange ladders) by `round.n` iterations in lockstep: per iteration
/// one `loglike_batch_parts` call with the proposal of every copy of every
/// chain, drawn on at most `threads` threads (as [`LockstepSettings::threads`]).
/// Uses the round's proposal mode and step sizes; each chain carries its own
/// random streams, and its copies start from their states scored in one batch
/// (as a CPU round builds its evaluators afresh). Chain `chains[i]` reports its
/// total iterations into the round's progress slot plus `i` every 1,000
/// iterations; the round stops early on cancellation or at its deadline
/// (checked as often), all chains at the same iteration. A ladder is respaced after the
/// round, as on the CPU ([`PausedChain::run`]), so the chains hold the samples a
/// CPU round gives but where a decision falls within the evaluators' rounding.
///
/// Errors are the evaluator's (e.g. a device error); the chains then hold the
/// iterations run before it.
pub fn continue_lockstep<B: BatchEvaluator + ?Sized, E: ChainEvaluator>(
    evaluator: &mut B,
    chains: &mut [PausedChain<E>],
    round: Round<'_>,
    threads: usize,
) -> Result<RoundEnd> {
    if chains.is_empty() || round.n == 0 {
        return Ok(RoundEnd::Done);
    }
    let t0 = Instant::now();
    let events: EventOrder = evaluator.events().clone();
    let starts: Vec<Mixture> = chains.iter().flat_map(|c| c.rungs().cloned()).collect();
    let mut start_scores = evaluator.loglike_batch(&starts)?.into_iter();
    let mut running: Vec<Running<Scored>> = chains
        .iter_mut()
        .map(|c| {
            c.open(&events, &round, |_| {
                Scored(start_scores.next().unwrap_or(f64::NAN))
            })
        })
        .collect();
    // Never more threads than cores: a waiting thread spins.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let n_threads = threads
        .min(cores)
        .min(starts.len() / MIN_LANES_PER_THREAD)
        .max(1);
    let per_block = running.len().div_ceil(n_threads).max(1);
    let mut blocks = Vec::with_capacity(n_threads);
    while !running.is_empty() {
        let rest = running.split_off(per_block.min(running.len()));
        blocks.push(Mutex::new(Block::new(std::mem::replace(
            &mut running,
            rest,
        ))));
    }
    let end = round.in_blocks(chains.len(), |m| {
        iterate(evaluator, &blocks, m)?;
        Ok(lock(&blocks[0])
            .chains
            .first()
            .map_or(0, Running::n_iterations))
    });
    let wall_s = t0.elapsed().as_secs_f64();
    let ran = blocks.into_iter().flat_map(|block| {
        block
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .chains
    });
    for (chain, running) in chains.iter_mut().zip(ran) {
        chain.close(running, wall_s);
    }
    end
}

/// Runs chains `chains` (indices; chain `i` with stream `(seed, CHAIN, i)`) of
/// `settings.n_iterations` from `start` in lockstep: per iteration one
/// `loglike_batch_parts` call with every chain's proposal. Returns one [`ChainRun`]
/// per chain in index order; each run's `wall_s` is the wall time of the whole
/// lockstep run (the chains advance together).
///
/// Errors are the evaluator's (e.g. a device error).
pub fn run_lockstep<B: BatchEvaluator + ?Sized>(
    evaluator: &mut B,
    start: &Mixture,
    settings: &LockstepSettings,
    chains: std::ops::Range<usize>,
) -> Result<Vec<ChainRun>> {
    let n_events = evaluator.events().n_events();
    let mut paused: Vec<PausedChain<Scored>> = chains
        .map(|i| PausedChain::start(i, start, settings.seed, n_events))
        .collect();
    let n = settings.n_iterations;
    let round = Round::new(settings.mode, &settings.steps, n);
    continue_lockstep(evaluator, &mut paused, round, settings.threads)?;
    Ok(paused.iter().map(|c| c.run_so_far(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;
    use crate::{rng, run_chain, Round};
    use rand::SeedableRng;
    use std::sync::Arc;
    use sustain_model::simulate::{simulate, SimulationSpec};
    use sustain_model::{
        EventSet, IncrementalLikelihood, Likelihood, MissingConvention, SerialEvaluator,
    };

    /// Exact proposals with the initial step sizes of 2 subtypes.
    fn exact(lik: &Likelihood, n_iterations: usize, seed: u64, threads: usize) -> LockstepSettings {
        LockstepSettings {
            mode: ProposalMode::Exact,
            steps: StepSizes::initial(2, lik.events().n_events()),
            n_iterations,
            seed,
            threads,
        }
    }

    /// A small 2-subtype problem with missing values.
    fn problem() -> (Arc<Likelihood>, Mixture) {
        let events = EventSet::uniform(4, &[1.0, 2.0], 4.0).unwrap();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let truth = sustain_testkit::random_mixture(&events, &[0.6, 0.4], &mut rng);
        let spec = SimulationSpec {
            n_subjects: 60,
            control_fraction: 0.1,
            missing_fraction: 0.1,
        };
        let data = simulate(&events, &truth, &spec, 5).unwrap().data;
        let lik = Arc::new(
            Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap(),
        );
        let start = sustain_testkit::random_mixture(&events, &[0.5, 0.5], &mut rng);
        (lik, start)
    }

    /// The serial evaluator with `loglike_batch` replaced by `score` (which may call
    /// the serial one): tests' stand-ins for a backend that schedules or fails.
    struct Scoring<F>(SerialEvaluator, F);

    impl<F> BatchEvaluator for Scoring<F>
    where
        F: FnMut(&mut SerialEvaluator, &[Mixture]) -> Result<Vec<f64>>,
    {
        fn events(&self) -> &sustain_core::EventOrder {
            self.0.events()
        }
        fn n_subjects(&self) -> usize {
            self.0.n_subjects()
        }
        fn loglike_batch(&mut self, m: &[Mixture]) -> Result<Vec<f64>> {
            (self.1)(&mut self.0, m)
        }
        fn log_p_subjects_batch(&mut self, m: &[Mixture]) -> Result<Vec<Vec<f64>>> {
            self.0.log_p_subjects_batch(m)
        }
        fn posterior_sums(&mut self, m: &[Mixture]) -> Result<ndarray::Array3<f64>> {
            self.0.posterior_sums(m)
        }
    }

    /// The CPU path of `sustain_cpu::run_chains`: chain `i` with stream `(seed, CHAIN,
    /// i)` and the incremental evaluator.
    fn cpu_runs(
        lik: &Arc<Likelihood>,
        start: &Mixture,
        s: &LockstepSettings,
        chains: std::ops::Range<usize>,
    ) -> Vec<ChainRun> {
        chains
            .map(|i| {
                let mut rng = rng::stream(s.seed, rng::purpose::CHAIN, i as u64);
                let evaluator = IncrementalLikelihood::new(Arc::clone(lik), start);
                let round = Round::new(s.mode, &s.steps, s.n_iterations);
                run_chain(i, lik.events(), evaluator, start, round, &mut rng)
            })
            .collect()
    }

    /// Lockstep with the exact serial evaluator reproduces the CPU incremental path
    /// state by state. The two differ only in how a proposal's log-likelihood is
    /// computed (in full vs incrementally, both f64: ~1e-13 relative apart); on this
    /// problem no accept/reject decision falls within that distance of its threshold
    /// (a uniform would have to land within ~1e-13 of `exp(log ratio)`), so
    /// positions, fractions and accept flags are equal and log-likelihoods agree to
    /// rounding.
    #[test]
    fn serial_lockstep_equals_cpu_chains() {
        let (lik, start) = problem();
        let n_events = lik.events().n_events();
        for mode in [
            ProposalMode::Exact,
            ProposalMode::Reference,
            ProposalMode::Blockwise,
        ] {
            let mut steps = StepSizes::initial(2, n_events);
            steps.sigma_f = vec![0.1, 0.2];
            let s = LockstepSettings {
                mode,
                steps,
                n_iterations: 400,
                seed: 11,
                threads: 1,
            };
            let mut ev = SerialEvaluator::new(Arc::clone(&lik));
            let lock = run_lockstep(&mut ev, &start, &s, 2..7).unwrap();
            let cpu = cpu_runs(&lik, &start, &s, 2..7);
            assert_eq!(lock.len(), 5);
            for (a, b) in lock.iter().zip(&cpu) {
                assert_eq!(a.index, b.index);
                assert_eq!(a.acceptance, b.acceptance);
                let (ta, tb) = (&a.trace, &b.trace);
                assert_eq!(ta.n_iterations(), tb.n_iterations());
                assert_eq!(ta.n_states(), tb.n_states());
                assert!(ta.n_states() > 10, "too few moves to test anything");
                for st in 0..ta.n_states() {
                    for sub in 0..2 {
                        for e in 0..n_events {
                            assert_eq!(ta.position(st, sub, e), tb.position(st, sub, e));
                        }
                        assert_eq!(ta.fraction(st, sub), tb.fraction(st, sub));
                    }
                }
                for (x, y) in ta.loglike_series(0, 1).iter().zip(tb.loglike_series(0, 1)) {
                    assert!((x - y).abs() <= 1e-9 * y.abs(), "{x} vs {y}");
                }
            }
        }
    }

    /// A chain's trace does not depend on which other chains run with it, nor on how
    /// the evaluator orders its work (here: a batch evaluator scoring in reverse).
    #[test]
    fn independent_of_companions_and_scheduling() {
        let (lik, start) = problem();
        let s = exact(&lik, 200, 5, 1);
        let all = run_lockstep(
            &mut SerialEvaluator::new(Arc::clone(&lik)),
            &start,
            &s,
            0..6,
        )
        .unwrap();
        let one = run_lockstep(
            &mut Scoring(
                SerialEvaluator::new(Arc::clone(&lik)),
                |ev: &mut SerialEvaluator, m: &[Mixture]| {
                    let rev: Vec<Mixture> = m.iter().rev().cloned().collect();
                    let mut out = ev.loglike_batch(&rev)?;
                    out.reverse();
                    Ok(out)
                },
            ),
            &start,
            &s,
            4..5,
        )
        .unwrap();
        assert_eq!(one[0].index, 4);
        assert_eq!(
            one[0].trace.loglike_series(0, 1),
            all[4].trace.loglike_series(0, 1)
        );
        assert_eq!(one[0].acceptance, all[4].acceptance);
    }

    /// Drawing threads change nothing: 100 chains (blocks of at least 32) on 1, 2 and
    /// 3 threads give the same traces, bit for bit.
    #[test]
    fn independent_of_drawing_threads() {
        let (lik, start) = problem();
        let run = |threads| {
            let s = exact(&lik, 60, 9, threads);
            run_lockstep(
                &mut SerialEvaluator::new(Arc::clone(&lik)),
                &start,
                &s,
                3..103,
            )
            .unwrap()
        };
        let one = run(1);
        for threads in [2, 3] {
            let many = run(threads);
            assert_eq!(many.len(), 100);
            for (a, b) in one.iter().zip(&many) {
                assert_eq!(a.index, b.index);
                assert_eq!(a.acceptance, b.acceptance);
                assert_eq!(a.trace.n_states(), b.trace.n_states());
                assert_eq!(a.trace.loglike_series(0, 1), b.trace.loglike_series(0, 1));
            }
        }
    }

    /// Paused chains `0..n` of a run seeded `seed` at `start`, each a ladder of
    /// `rungs` copies.
    fn ladders(
        lik: &Likelihood,
        start: &Mixture,
        seed: u64,
        n: usize,
        rungs: usize,
    ) -> Vec<PausedChain<IncrementalLikelihood>> {
        let betas = crate::geometric_ladder(rungs, 0.1);
        (0..n)
            .map(|i| {
                PausedChain::start(i, start, seed, lik.events().n_events())
                    .tempered(betas.clone(), seed)
                    .unwrap()
            })
            .collect()
    }

    /// Whether two traces hold the same states and accept flags, with
    /// log-likelihoods equal to rounding.
    fn assert_same_states(a: &Trace, b: &Trace, what: &str) {
        assert_eq!(a.runs, b.runs, "{what}: run lengths");
        assert_eq!(a.fractions, b.fractions, "{what}: fractions");
        let positions = |t: &Trace| {
            let mut p = Vec::new();
            t.for_each_state(|_, pos, _| p.push(pos.to_vec()));
            p
        };
        assert!(positions(a) == positions(b), "{what}: positions");
        for (x, y) in a.loglike.iter().zip(&b.loglike) {
            assert!((x - y).abs() <= 1e-9 * y.abs(), "{what}: {x} vs {y}");
        }
    }

    /// Replica-exchange ladders in lockstep (every copy a lane) are the CPU's
    /// ladders state by state over rounds: the same streams for every rank and
    /// the swaps, the same swaps, the same respaced ladder after each round; a
    /// round continued from a snapshot (a checkpoint) is the same as one that
    /// never stopped. As for plain chains, the evaluators differ only in
    /// rounding (full vs incremental f64), which no decision here falls within.
    #[test]
    fn tempered_lockstep_rounds_equal_cpu_rounds() {
        let (lik, start) = problem();
        let events = lik.events().clone();
        for mode in [ProposalMode::Exact, ProposalMode::Blockwise] {
            let mut steps = StepSizes::initial(2, events.n_events());
            steps.sigma_f = vec![0.1, 0.2];
            let stretch = Round::new(mode, &steps, 300);
            let mut cpu = ladders(&lik, &start, 4, 3, 3);
            let mut lock = ladders(&lik, &start, 4, 3, 3);
            let mut swaps = 0.0;
            for round in 0..3 {
                for chain in &mut cpu {
                    let make = |m: &Mixture| IncrementalLikelihood::new(Arc::clone(&lik), m);
                    chain.run(&events, make, stretch);
                }
                let mut ev = SerialEvaluator::new(Arc::clone(&lik));
                let end = continue_lockstep(&mut ev, &mut lock, stretch, 1);
                assert_eq!(end.unwrap(), RoundEnd::Done);
                for (a, b) in lock.iter().zip(&cpu) {
                    let what = format!("{mode:?}, round {round}, chain {}", a.index);
                    assert_eq!(a.n_iterations(), 300 * (round + 1), "{what}");
                    assert_same_states(a.trace(), b.trace(), &what);
                    assert_eq!(a.run_so_far(0).acceptance, b.run_so_far(0).acceptance);
                    assert_eq!(a.ladder(), b.ladder(), "{what}: ladder");
                    swaps += a.ladder().unwrap().1.iter().sum::<f64>();
                }
                // The lockstep chains go on from their checkpoints.
                lock = lock
                    .iter()
                    .map(|c| PausedChain::restore(&c.snapshot(), c.trace().clone(), &events))
                    .collect::<std::result::Result<_, _>>()
                    .unwrap();
            }
            assert!(swaps > 1.0, "too few swaps to test anything");
        }
    }

    /// Ladders in lockstep do not depend on the drawing threads: 24 chains of 3
    /// copies (blocks of at least 32 copies) on 1 and 3 threads, bit for bit.
    #[test]
    fn tempered_lockstep_independent_of_drawing_threads() {
        let (lik, start) = problem();
        let run = |threads| {
            let steps = StepSizes::initial(2, lik.events().n_events());
            let round = Round::new(ProposalMode::Blockwise, &steps, 80);
            let mut chains = ladders(&lik, &start, 8, 24, 3);
            let mut ev = SerialEvaluator::new(Arc::clone(&lik));
            continue_lockstep(&mut ev, &mut chains, round, threads).unwrap();
            chains
        };
        let one = run(1);
        let three = run(3);
        for (a, b) in one.iter().zip(&three) {
            assert!(a.trace() == b.trace(), "chain {}", a.index);
            assert_eq!(a.ladder(), b.ladder());
        }
    }

    /// An evaluator error mid-run ends the run with that error, also with several
    /// drawing threads (they stop at the barrier instead of waiting for ever).
    #[test]
    fn evaluator_errors_end_the_run() {
        let (lik, start) = problem();
        for threads in [1, 2] {
            let s = exact(&lik, 50, 1, threads);
            let mut left = 6;
            let mut ev = Scoring(
                SerialEvaluator::new(Arc::clone(&lik)),
                |ev: &mut SerialEvaluator, m: &[Mixture]| {
                    if left == 0 {
                        return Err(ModelError::Backend("device lost".into()));
                    }
                    left -= 1;
                    ev.loglike_batch(m)
                },
            );
            let err = run_lockstep(&mut ev, &start, &s, 0..80).unwrap_err();
            assert!(err.to_string().contains("device lost"), "{err}");
        }
    }
}
