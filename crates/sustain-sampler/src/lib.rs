//! # sustain-sampler
//!
//! Metropolis chains over SuStaIn models (spec section 5), generic over how a
//! proposal's likelihood is evaluated ([`ChainEvaluator`]): step-size tuning,
//! compact traces, merging of many chains with subtype realignment, and
//! rank-normalised R-hat / ESS diagnostics with a convergence verdict.
//! Threads live in the backends; this crate runs one chain at a time.

#![warn(missing_docs)]

pub mod chain;
pub mod chain_summary;
pub mod continued;
pub mod diagnostics;
pub mod evaluator;
pub mod lockstep;
pub mod merge;
pub mod progress;
pub mod relabel;
pub mod rng;
pub mod round;
mod running;
pub mod settings;
pub mod tempering;
pub mod trace;
pub mod tuning;
pub mod verdict;

pub use chain::{Chain, Pending, ProposalMode, StepSizes, SustainChain};
pub use continued::{ChainSnapshot, PausedChain};
pub use evaluator::{ChainEvaluator, FullEvaluator};
pub use merge::{merge, ChainRun, Diagnostics, MergedSamples, SamplesFile};
pub use round::{Round, RoundEnd};
pub use settings::{default_threads, ChainSettings};
pub use tempering::{check_ladder, geometric_ladder};
pub use trace::{StoredTrace, Trace};
pub use tuning::step_sizes_from_trace;

use rand::Rng;
use sustain_core::{EventOrder, Mixture};

/// Runs one chain from `start` for `round` (on stream `rng`) and returns its trace,
/// acceptance and wall time; fewer iterations when the round stopped early.
pub fn run_chain<E: ChainEvaluator, R: Rng + ?Sized>(
    index: usize,
    events: &EventOrder,
    evaluator: E,
    start: &Mixture,
    round: Round<'_>,
    rng: &mut R,
) -> ChainRun {
    let t0 = std::time::Instant::now();
    let steps = round.steps.clone();
    let mut chain = SustainChain::new(events, evaluator, start.clone(), round.mode, steps);
    let mut trace = Trace::new(start.n_subtypes(), events.n_events());
    let Ok(_) = round.in_blocks(1, |m| {
        chain.run(m, rng, &mut trace);
        Ok::<_, std::convert::Infallible>(trace.n_iterations())
    });
    let (acc, prop) = chain.acceptance();
    ChainRun {
        index,
        trace,
        acceptance: acc as f64 / prop.max(1) as f64,
        wall_s: t0.elapsed().as_secs_f64(),
    }
}

/// The reference's tuning: `passes` runs of `iterations` from `start`, each setting
/// the step sizes from the previous run's sample standard deviations.
#[allow(clippy::too_many_arguments)]
pub fn tune_steps<E: ChainEvaluator>(
    events: &EventOrder,
    mut make_evaluator: impl FnMut() -> E,
    start: &Mixture,
    mode: ProposalMode,
    passes: usize,
    iterations: usize,
    seed: u64,
) -> StepSizes {
    let mut steps = StepSizes::initial(start.n_subtypes(), events.n_events());
    for pass in 0..passes {
        let mut rng = rng::stream(seed, rng::purpose::TUNING, pass as u64);
        let round = Round::new(mode, &steps, iterations);
        let run = run_chain(0, events, make_evaluator(), start, round, &mut rng);
        steps = step_sizes_from_trace(&run.trace);
    }
    steps
}
