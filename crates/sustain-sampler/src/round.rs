//! One stretch of a chain's iterations and how it is run: [`Round`] holds what a
//! chain needs for it (proposals, step sizes, length, where it reports, when it
//! stops early), shared by one-piece chains ([`crate::run_chain`]), chains
//! that run in rounds ([`crate::PausedChain::run`]) and chains continued in
//! lockstep ([`crate::lockstep::continue_lockstep`]).

use crate::chain::{ProposalMode, StepSizes};
use crate::progress::ChainProgress;
use std::time::Instant;

/// Iterations between progress reports, cancellation and deadline checks.
const BLOCK: usize = 1000;

/// How a chain runs `n` iterations.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// Proposal mode.
    pub mode: ProposalMode,
    /// Step sizes of the proposals.
    pub steps: &'a StepSizes,
    /// Iterations to run.
    pub n: usize,
    /// Counters and slot that receive the chain's total iterations every 1,000
    /// iterations (their cancellation stops the chain); chains run together in
    /// lockstep report into this slot and the ones after it.
    pub progress: Option<(&'a ChainProgress, usize)>,
    /// When to stop early (checked every 1,000 iterations).
    pub deadline: Option<Instant>,
}

impl<'a> Round<'a> {
    /// `n` iterations with `mode` and `steps`, unobserved and without a deadline.
    pub fn new(mode: ProposalMode, steps: &'a StepSizes, n: usize) -> Self {
        Self {
            mode,
            steps,
            n,
            progress: None,
            deadline: None,
        }
    }

    /// Runs the round in blocks of [`BLOCK`] for `chains` chains run together
    /// (`block(m)` runs `m` iterations of each and returns their total), reporting
    /// that total into the `chains` progress slots from the round's after each
    /// block and stopping early on cancellation, at the deadline, or at `block`'s
    /// first error.
    pub(crate) fn in_blocks<X>(
        &self,
        chains: usize,
        mut block: impl FnMut(usize) -> Result<usize, X>,
    ) -> Result<RoundEnd, X> {
        let mut done = 0;
        while done < self.n {
            let m = BLOCK.min(self.n - done);
            let total = block(m)?;
            done += m;
            if let Some((p, first)) = self.progress {
                for slot in first..first + chains {
                    p.set(slot, total as u64);
                }
                if p.cancelled() {
                    return Ok(RoundEnd::Cancelled);
                }
            }
            if done < self.n && self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(RoundEnd::Deadline);
            }
        }
        Ok(RoundEnd::Done)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// The block sizes a round of `n` runs in, and how it ended.
    fn blocks_of(round: &Round) -> (Vec<usize>, RoundEnd) {
        let mut sizes = Vec::new();
        let Ok(end) = round.in_blocks(1, |m| {
            sizes.push(m);
            Ok::<_, Infallible>(sizes.iter().sum())
        });
        (sizes, end)
    }

    /// 2,500 iterations reporting into `progress` from `slot` on.
    fn observed<'a>(steps: &'a StepSizes, progress: &'a ChainProgress, slot: usize) -> Round<'a> {
        Round {
            progress: Some((progress, slot)),
            ..Round::new(ProposalMode::Exact, steps, 2500)
        }
    }

    #[test]
    fn a_round_runs_in_blocks_and_reports_the_total() {
        let steps = StepSizes::initial(1, 3);
        let progress = ChainProgress::new(1, 2500);
        let round = observed(&steps, &progress, 0);
        assert_eq!(blocks_of(&round), (vec![1000, 1000, 500], RoundEnd::Done));
        assert_eq!(progress.done(0), 2500);
    }

    #[test]
    fn a_deadline_or_a_cancellation_stops_a_round_after_a_block() {
        let steps = StepSizes::initial(1, 3);
        let past = Round {
            deadline: Some(Instant::now()),
            ..Round::new(ProposalMode::Exact, &steps, 2500)
        };
        assert_eq!(blocks_of(&past), (vec![1000], RoundEnd::Deadline));
        // A deadline after the last block changes nothing.
        let short = Round { n: 700, ..past };
        assert_eq!(blocks_of(&short), (vec![700], RoundEnd::Done));
        let progress = ChainProgress::new(1, 2500);
        progress.cancel();
        let cancelled = observed(&steps, &progress, 0);
        assert_eq!(blocks_of(&cancelled), (vec![1000], RoundEnd::Cancelled));
    }

    #[test]
    fn chains_run_together_report_into_their_slots_and_stop_at_an_error() {
        let steps = StepSizes::initial(1, 3);
        let progress = ChainProgress::new(4, 2500);
        let round = observed(&steps, &progress, 1);
        let mut total = 0;
        let end = round.in_blocks(2, |m| {
            total += m;
            Ok::<_, ()>(total)
        });
        assert_eq!(end, Ok(RoundEnd::Done));
        let done: Vec<u64> = (0..4).map(|slot| progress.done(slot)).collect();
        assert_eq!(done, [0, 2500, 2500, 0]);
        let mut blocks = 0;
        let failed = round.in_blocks(2, |_| {
            blocks += 1;
            if blocks == 2 {
                Err("device lost")
            } else {
                Ok(1000)
            }
        });
        assert_eq!((failed, blocks), (Err("device lost"), 2));
    }
}
