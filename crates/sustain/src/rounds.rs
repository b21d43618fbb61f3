//! Chains that run until they converge: rounds that grow by half, each round's
//! samples appended to the previous ones (every chain continues from its last
//! state with its own random stream), until every reported quantity meets the
//! criteria ([`sustain_sampler::verdict::unmet_criteria`]) or a budget ends. The
//! stopping round depends only on the samples, never on the thread count; a run
//! stopped by its time budget holds a prefix of a longer run's samples, and a run
//! stopped by a budget (or killed) continues with `--resume` from its last saved
//! round ([`crate::round_checkpoint`]) to the samples of a run never stopped.

use crate::backend::{ChainRound, Engine};
use crate::checkpoint::Checkpoints;
use crate::config::{FitConfig, UntilConverged};
use crate::executor::{ChainState, JobThreads};
use crate::fit::Progress;
use crate::round_checkpoint::SavedChains;
use crate::{ConfigError, Error};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sustain_core::{Mixture, SustainModel};
use sustain_sampler::progress::ChainProgress;
use sustain_sampler::relabel::relabel_to_pivot;
use sustain_sampler::verdict::{merge_for_round, unmet_criteria};
use sustain_sampler::ChainSettings;
use sustain_sampler::{
    geometric_ladder, ChainRun, Diagnostics, MergedSamples, PausedChain, RoundEnd,
};

/// Why chains that run until they converge stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every quantity met the criteria.
    Converged,
    /// The most iterations per chain ran.
    MaxIterations,
    /// The time budget ended.
    MaxSeconds,
}

/// One round: the chains' length after it and what had not converged yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// Iterations per chain after this round (all rounds so far).
    pub iterations_per_chain: usize,
    /// Seconds since the chains' tuning started, at the end of this round.
    pub seconds: f64,
    /// The quantities that did not meet the criteria after it (empty: converged).
    pub unmet: Vec<String>,
}

/// How a run until convergence went: results.json's `"convergence"` of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Iterations per chain kept (the last round's).
    pub iterations_per_chain: usize,
    /// Why it stopped.
    pub stopped: Stop,
    /// Replica exchange, when on: the first chain's ladder of powers after the
    /// last round and each neighbouring pair's swap rate in it, averaged over chains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tempering: Option<Tempering>,
}

/// The replica-exchange ladder at the end of a run (results.json's
/// `"convergence"."tempering"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tempering {
    /// Powers of the likelihood, coldest (1) first: chain 0's ladder.
    pub betas: Vec<f64>,
    /// Swaps accepted per swap tried between ranks `r` and `r + 1` in the last
    /// round, averaged over the chains.
    pub swap_rates: Vec<f64>,
}

/// The ladder report of `chains` (none for plain chains).
fn tempering_report<E: sustain_sampler::ChainEvaluator>(
    chains: &[PausedChain<E>],
) -> Option<Tempering> {
    let ladders: Vec<(Vec<f64>, Vec<f64>)> = chains.iter().filter_map(|c| c.ladder()).collect();
    let (betas, _) = ladders.first()?;
    let pairs = betas.len() - 1;
    let swap_rates = (0..pairs)
        .map(|p| ladders.iter().map(|(_, r)| r[p]).sum::<f64>() / ladders.len() as f64)
        .collect();
    Some(Tempering {
        betas: betas.clone(),
        swap_rates,
    })
}

/// Fewest samples per chain, after burn-in and thinning, the criteria are judged
/// on (a chain cut short by the time budget may hold fewer: then it has not
/// converged).
const MIN_SAMPLES: usize = 100;

/// Each round after the first adds at least `1 / GROWTH` of the iterations so
/// far: a run that just misses the criteria at `N` iterations per chain is
/// judged again at about `1.5 N`, not `2 N` as when rounds doubled. Finer rounds
/// cost more judging, which is cheap next to the chains (a failing R-hat spares
/// the effective sample sizes: [`sustain_sampler::verdict::merge_for_round`]).
const GROWTH: usize = 2;

/// Iterations per chain after each round: the first round's, then growing by
/// `1 / GROWTH` of the total each round in whole first rounds, capped at the budget.
fn next_total(done: usize, first: usize, max: usize) -> usize {
    let first = first.max(1);
    let step = if done == 0 {
        first
    } else {
        done.div_ceil(GROWTH).div_ceil(first) * first
    };
    done.saturating_add(step).min(max)
}

/// Whether `rounds` are the rounds a run whose first round is `first` iterations
/// per chain and whose budget is `max` would run (a prefix of them): only then
/// may a run with that budget continue them (a round cut by another budget
/// ends elsewhere).
pub(crate) fn on_schedule(rounds: &[Round], first: usize, max: usize) -> bool {
    let mut done = 0;
    rounds.iter().all(|r| {
        done = next_total(done, first, max);
        r.iterations_per_chain == done
    })
}

/// Where a run saves its chains after each round: the checkpoint folder and the
/// fingerprint that a run continuing them must have.
#[derive(Clone, Copy)]
pub(crate) struct RoundSaver<'a> {
    pub checkpoints: &'a Checkpoints,
    pub resume_fingerprint: &'a str,
}

/// Runs the chains `range` of subtype count `k` from `start` (or from `saved`,
/// chains paused after a saved round) in rounds until they converge or `until`'s
/// budget ends (time counted from `t0`); returns the last round's merged samples
/// and diagnostics. Every chain continues from where it stopped, on the CPU or
/// in a batch engine's lockstep ([`Engine::continue_chains`]), on `threads` and
/// threads other jobs leave spare (joining as they come free), and with `saver`
/// the chains are saved after every whole round that a larger budget would run
/// too.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_until_converged<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    start: &Mixture,
    settings: &ChainSettings,
    range: std::ops::Range<usize>,
    config: &FitConfig,
    until: &UntilConverged,
    k: usize,
    threads: JobThreads<'_>,
    counters: &ChainProgress,
    progress: &dyn Fn(Progress),
    t0: Instant,
    saved: Option<SavedChains<ChainState<M>>>,
    saver: Option<RoundSaver<'_>>,
) -> Result<((MergedSamples, Diagnostics), Convergence), Error> {
    let deadline = until
        .max_seconds
        .map(|s| t0 + Duration::from_secs_f64(s.min(1e9)));
    let n_events = lik.order().n_events();
    let ladder = geometric_ladder(until.tempering_rungs, until.tempering_hottest);
    // A continued run first judges the saved round again (the same samples, the
    // same verdict), then goes on as the run that saved it would have.
    let resumed = saved.is_some();
    let (mut paused, mut rounds) = match saved {
        Some(saved) => (saved.chains, saved.rounds),
        None => {
            let paused = range
                .clone()
                .map(|i| {
                    PausedChain::start(i, start, settings.seed, n_events)
                        .tempered(ladder.clone(), settings.seed)
                        .map_err(|why| Error::from(ConfigError::Settings(why)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (paused, Vec::new())
        }
    };
    let mut done = rounds.last().map_or(0, |r| r.iterations_per_chain);
    let mut judge_saved = resumed;
    loop {
        let before = done;
        let total = if judge_saved {
            done
        } else {
            next_total(done, config.n_iterations, until.max_iterations)
        };
        counters.set_target(total as u64);
        let mut out_of_time = false;
        if !judge_saved {
            let n = total - done;
            // Threads other subtype counts finished with join as they come free
            // (the samples are the same on any number of threads).
            let round = ChainRound {
                n,
                counters,
                deadline,
                threads,
            };
            let ends = engine.continue_chains(lik, &mut paused, settings, round)?;
            if ends.contains(&RoundEnd::Cancelled) || counters.cancelled() {
                return Err(Error::Cancelled);
            }
            out_of_time = ends.contains(&RoundEnd::Deadline);
        }
        // Chains stopped by the deadline are cut to the shortest, so every
        // chain holds the same iterations.
        let len = paused.iter().map(|p| p.n_iterations()).min().unwrap_or(0);
        let runs: Vec<ChainRun> = paused.iter().map(|p| p.run_so_far(len)).collect();
        done = runs.first().map_or(0, |r| r.trace.n_iterations());
        // States under another labelling of the start's subtypes (a chain that
        // crossed between labellings) are put back, so the fractions and positions
        // are judged per subtype, not averaged over labellings.
        let mut runs = runs;
        for run in &mut runs {
            relabel_to_pivot(&mut run.trace, start);
        }
        // Whether a budget ends the run after this round (then it needs every
        // diagnostic, whatever its verdict); asked once the R-hats are known.
        let budget_now = || {
            if out_of_time || deadline.is_some_and(|d| Instant::now() >= d) {
                Some(Stop::MaxSeconds)
            } else if done >= until.max_iterations {
                Some(Stop::MaxIterations)
            } else {
                None
            }
        };
        let mut budget_asked = None;
        let (merged, rhats_missed, judged) =
            merge_for_round(runs, config.burn_in, config.thin, || {
                budget_asked.insert(budget_now()).is_some()
            });
        let budget = budget_asked.unwrap_or_else(budget_now);
        // Where an R-hat misses, the round's verdict names the R-hats only, even
        // when a budget ending here had every diagnostic computed: the same round
        // of a longer run would not compute the rest.
        let mut unmet = match &judged {
            Some(diagnostics) if rhats_missed.is_empty() => unmet_criteria(diagnostics),
            _ => rhats_missed,
        };
        let kept = done
            .saturating_sub(config.burn_in)
            .div_ceil(config.thin.max(1));
        if kept < MIN_SAMPLES {
            unmet.push(format!("only {kept} samples per chain"));
        }
        if !judge_saved {
            progress(Progress::RoundDone {
                n_subtypes: k,
                round: rounds.len() + 1,
                iterations_per_chain: done,
                unmet: unmet.clone(),
            });
            rounds.push(Round {
                iterations_per_chain: done,
                seconds: t0.elapsed().as_secs_f64(),
                unmet: unmet.clone(),
            });
            // Only a whole round that a larger budget would run too can be
            // continued from.
            let whole = !out_of_time && done == next_total(before, config.n_iterations, usize::MAX);
            if let (Some(saver), true) = (&saver, whole) {
                saver.checkpoints.save_rounds(
                    k,
                    saver.resume_fingerprint,
                    &settings.steps,
                    &rounds,
                    &paused,
                )?;
            }
        }
        judge_saved = false;
        let stopped = if unmet.is_empty() {
            Some(Stop::Converged)
        } else {
            budget
        };
        // A stopping round was judged in full (every R-hat passed, or a budget
        // asked for it).
        if let (Some(stopped), Some(diagnostics)) = (stopped, judged) {
            return Ok((
                (merged, diagnostics),
                Convergence {
                    rounds,
                    iterations_per_chain: done,
                    stopped,
                    tempering: tempering_report(&paused),
                },
            ));
        }
    }
}

/// What a budget stop left unconverged, in words (none when converged).
pub fn budget_line(c: &Convergence) -> Option<String> {
    let budget = match c.stopped {
        Stop::Converged => return None,
        Stop::MaxIterations => "the most iterations per chain",
        Stop::MaxSeconds => "the time budget",
    };
    let unmet = c
        .rounds
        .last()
        .map(|r| r.unmet.join(", "))
        .unwrap_or_default();
    Some(format!(
        "the chains stopped at {budget} after {} iterations per chain, not converged ({unmet}); \
         raise the budget (--max-seconds, --max-iterations) or read the lines below",
        c.iterations_per_chain
    ))
}

#[cfg(test)]
mod tests {
    use super::next_total;

    #[test]
    fn rounds_grow_by_half_in_whole_first_rounds_up_to_the_budget() {
        let mut done = 0;
        let mut totals = Vec::new();
        while done < 200_000 {
            done = next_total(done, 5_000, 200_000);
            totals.push(done);
        }
        assert_eq!(
            totals,
            [5_000, 10_000, 15_000, 25_000, 40_000, 60_000, 90_000, 135_000, 200_000]
        );
        assert_eq!(next_total(0, 5_000, 3_000), 3_000);
        assert_eq!(next_total(7, 1, usize::MAX), 11);
    }
}
