//! One stretch of a chain's iterations and how it is run: [`Round`] holds what a
//! chain needs for it (proposals, step sizes, length, where it reports, when it
//! stops early), shared by one-piece chains ([`crate::run_chain`]) and chains
//! that run in rounds ([`crate::PausedChain::run`]).

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
    /// iterations (their cancellation stops the chain).
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

    /// Runs the round in blocks of [`BLOCK`] (`block(m)` runs `m` iterations and
    /// returns the chain's total), reporting that total into the progress slot
    /// after each block and stopping early on cancellation or at the deadline.
    pub(crate) fn in_blocks(&self, mut block: impl FnMut(usize) -> usize) -> RoundEnd {
        let mut done = 0;
        while done < self.n {
            let m = BLOCK.min(self.n - done);
            let total = block(m);
            done += m;
            if let Some((p, slot)) = self.progress {
                p.set(slot, total as u64);
                if p.cancelled() {
                    return RoundEnd::Cancelled;
                }
            }
            if done < self.n && self.deadline.is_some_and(|d| Instant::now() >= d) {
                return RoundEnd::Deadline;
            }
        }
        RoundEnd::Done
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

    /// The block sizes a round of `n` runs in, and how it ended.
    fn blocks_of(round: &Round) -> (Vec<usize>, RoundEnd) {
        let mut sizes = Vec::new();
        let end = round.in_blocks(|m| {
            sizes.push(m);
            sizes.iter().sum()
        });
        (sizes, end)
    }

    #[test]
    fn a_round_runs_in_blocks_and_reports_the_total() {
        let steps = StepSizes::initial(1, 3);
        let progress = ChainProgress::new(1, 2500);
        let round = Round {
            progress: Some((&progress, 0)),
            ..Round::new(ProposalMode::Exact, &steps, 2500)
        };
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
        let cancelled = Round {
            progress: Some((&progress, 0)),
            ..Round::new(ProposalMode::Exact, &steps, 2500)
        };
        assert_eq!(blocks_of(&cancelled), (vec![1000], RoundEnd::Cancelled));
    }
}
