//! Replica exchange (parallel tempering): a chain is a ladder of copies, copy `r`
//! sampling the likelihood to the power `beta_r` (`1 = beta_0 > beta_1 > ...`).
//! After every iteration two neighbouring copies may swap states, accepted with
//! probability `min(1, exp((beta_i - beta_j) (ll_j - ll_i)))`, which keeps every
//! copy's tempered posterior; hot copies cross between modes and hand their states
//! down. Only the copy at `beta = 1` is recorded.

use crate::chain::{Chain, SustainChain};
use crate::evaluator::ChainEvaluator;
use crate::rng;
use crate::trace::Trace;
use rand::Rng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use sustain_core::Mixture;

/// Swap rates (per neighbouring pair, over a round) outside which the ladder is
/// respaced between rounds: too few swaps and the copies are too far apart to
/// exchange, too many and the ladder reaches less far than it could.
const SWAP_RATE_LOW: f64 = 0.2;
const SWAP_RATE_HIGH: f64 = 0.6;
/// The hottest `beta` the ladder may adapt to.
const BETA_FLOOR: f64 = 1e-3;

/// The geometric ladder of `rungs` powers from 1 down to `hottest`
/// (`beta_r = hottest^(r / (rungs - 1))`); `[1]` for one rung.
pub fn geometric_ladder(rungs: usize, hottest: f64) -> Vec<f64> {
    let rungs = rungs.max(1);
    if rungs == 1 {
        return vec![1.0];
    }
    let hottest = hottest.clamp(BETA_FLOOR, 1.0);
    (0..rungs)
        .map(|r| {
            if r == 0 {
                1.0
            } else {
                hottest.powf(r as f64 / (rungs - 1) as f64)
            }
        })
        .collect()
}

/// Whether `betas` is a ladder: starts at 1, strictly decreasing, positive.
pub fn check_ladder(betas: &[f64]) -> Result<(), String> {
    if betas.first() != Some(&1.0) {
        return Err("a tempering ladder starts at beta = 1".into());
    }
    if betas.iter().any(|b| !(b.is_finite() && *b > 0.0)) || betas.windows(2).any(|w| w[1] >= w[0])
    {
        return Err(format!(
            "tempering powers must decrease strictly from 1 and stay above 0: {betas:?}"
        ));
    }
    Ok(())
}

/// The ladder of one chain: the powers, the hot copies' random streams, the swap
/// stream and the swap counts of the current round (saved whole in a
/// checkpoint between rounds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Exchange {
    betas: Vec<f64>,
    /// Stream of copy `r` (rank `r + 1`); rank 0 uses the chain's own stream, so
    /// a ladder of one rung is the untempered chain.
    streams: Vec<Pcg64>,
    swaps: Pcg64,
    tried: Vec<u64>,
    accepted: Vec<u64>,
    /// Swap rates of the last finished round.
    last_rates: Vec<f64>,
    /// How the cold copy's subtypes are recorded: recorded label `i` is the
    /// copy's label `labels[i]`. A swap hands the cold rank a state whose
    /// subtypes may be labelled in another order (the posterior is symmetric in
    /// the labels); it is recorded relabelled to match the state it replaces, so
    /// that a chain's labels stay put (merging realigns whole chains only).
    labels: Vec<usize>,
}

impl Exchange {
    /// The ladder `betas` of chain `index` of a run seeded `seed`.
    pub(crate) fn new(betas: Vec<f64>, seed: u64, index: usize) -> Self {
        let hot = betas.len() - 1;
        let base = index as u64 * 1024;
        Self {
            streams: (0..hot)
                .map(|r| rng::stream(seed, rng::purpose::TEMPERED, base + r as u64 + 1))
                .collect(),
            swaps: rng::stream(seed, rng::purpose::TEMPERED, base),
            tried: vec![0; hot],
            accepted: vec![0; hot],
            last_rates: vec![f64::NAN; hot],
            labels: Vec::new(),
            betas,
        }
    }

    /// Refuses a saved ladder whose parts do not fit together.
    pub(crate) fn check(&self) -> Result<(), String> {
        check_ladder(&self.betas)?;
        let hot = self.betas.len() - 1;
        let lens = [
            self.streams.len(),
            self.tried.len(),
            self.accepted.len(),
            self.last_rates.len(),
        ];
        if lens.iter().any(|&l| l != hot) {
            return Err(format!(
                "a ladder of {} powers with parts of {lens:?}",
                hot + 1
            ));
        }
        Ok(())
    }

    /// The powers, coldest first.
    pub(crate) fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Swaps accepted / tried per neighbouring pair in the last finished round
    /// (NaN before the first).
    pub(crate) fn swap_rates(&self) -> Vec<f64> {
        self.last_rates.clone()
    }

    /// Swaps accepted / tried per neighbouring pair so far this round.
    fn current_rates(&self) -> Vec<f64> {
        self.tried
            .iter()
            .zip(&self.accepted)
            .map(|(&t, &a)| a as f64 / t.max(1) as f64)
            .collect()
    }

    /// The random stream of the copy at rank `rank >= 1` (rank 0 steps on the
    /// chain's own stream).
    pub(crate) fn hot_stream(&mut self, rank: usize) -> &mut Pcg64 {
        &mut self.streams[rank - 1]
    }

    /// The end of one iteration of the ladder, once every copy has stepped (rank
    /// `r` on its own stream): one random neighbouring pair may swap states, and
    /// the copy at `beta = 1` is recorded into `trace` (`cold_moved`: whether the
    /// cold rank's own step moved it). `at[r]` is the index in `copies` of the
    /// copy at rank `r`. The CPU's chains and the lockstep driver both end their
    /// iterations here, so they swap and record alike.
    pub(crate) fn swap_and_record<E: ChainEvaluator>(
        &mut self,
        copies: &mut [SustainChain<'_, E>],
        at: &mut [usize],
        cold_moved: bool,
        trace: &mut Trace,
    ) {
        let p = self.swaps.gen_range(0..self.betas.len() - 1);
        let u: f64 = self.swaps.gen();
        let (a, b) = (at[p], at[p + 1]);
        let log_a =
            (self.betas[p] - self.betas[p + 1]) * (copies[b].loglike() - copies[a].loglike());
        self.tried[p] += 1;
        let mut arrived = false;
        if log_a >= 0.0 || u < log_a.exp() {
            self.accepted[p] += 1;
            copies[a].set_beta(self.betas[p + 1]);
            copies[b].set_beta(self.betas[p]);
            at.swap(p, p + 1);
            arrived = p == 0;
        }
        let cold = &copies[at[0]];
        if self.labels.len() != cold.state().n_subtypes() {
            self.labels = (0..cold.state().n_subtypes()).collect();
        }
        if arrived {
            // Against the last recorded state (the one the arrival replaces).
            self.labels = matching_labels(trace, cold.state());
        }
        self.record(trace, cold.state(), cold.loglike(), cold_moved || arrived);
    }

    /// Records `state` under the recorded labels.
    fn record(&self, trace: &mut Trace, state: &Mixture, loglike: f64, moved: bool) {
        if !moved || self.labels.iter().enumerate().all(|(i, &l)| i == l) {
            trace.record(state, loglike, moved);
        } else {
            trace.record_relabelled(state, &self.labels, loglike, true);
        }
    }

    /// Respaces the ladder from the last round's swap rates (a pair that rarely
    /// swaps moves closer, one that nearly always does moves apart; `beta_0 = 1`
    /// stays) and clears the counts. Deterministic given the counts.
    pub(crate) fn adapt(&mut self) {
        let rates = self.current_rates();
        self.last_rates.clone_from(&rates);
        let mut gaps: Vec<f64> = self.betas.windows(2).map(|w| w[1] / w[0]).collect();
        for (g, (&rate, &tried)) in gaps.iter_mut().zip(rates.iter().zip(&self.tried)) {
            if tried < 100 {
                continue;
            }
            if rate < SWAP_RATE_LOW {
                *g = g.sqrt();
            } else if rate > SWAP_RATE_HIGH {
                *g = (*g * *g).max(0.01);
            }
        }
        let mut beta = 1.0;
        for (r, g) in gaps.iter().enumerate() {
            beta = (beta * g).max(BETA_FLOOR);
            self.betas[r + 1] = beta;
        }
        // Keep the powers strictly decreasing at the floor.
        for r in 1..self.betas.len() {
            if self.betas[r] >= self.betas[r - 1] {
                self.betas[r] = self.betas[r - 1] * 0.5;
            }
        }
        self.tried.iter_mut().for_each(|t| *t = 0);
        self.accepted.iter_mut().for_each(|a| *a = 0);
    }
}

/// The labels (recorded label `i` = `state`'s label `labels[i]`) that match
/// `state`'s subtypes to the last state recorded in `trace` by event positions
/// ([`crate::relabel::least_cost_labels`]). Identity for an empty trace.
fn matching_labels(trace: &Trace, state: &Mixture) -> Vec<usize> {
    let k = state.n_subtypes();
    if trace.n_states() == 0 {
        return (0..k).collect();
    }
    let n = trace.n_events;
    let mut recorded = vec![0u16; n];
    // cost[i][j]: recorded subtype i against the state's subtype j.
    let cost: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            trace.last_positions(i, &mut recorded);
            (0..k)
                .map(|j| {
                    let pos = state.sequences()[j].positions_u16();
                    (0..n)
                        .map(|e| (recorded[e] as f64 - pos[e] as f64).abs())
                        .sum()
                })
                .collect()
        })
        .collect();
    crate::relabel::least_cost_labels(&cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sustain_core::EventOrder;

    #[test]
    fn geometric_ladders_start_at_one_and_decrease() {
        assert_eq!(geometric_ladder(1, 0.1), vec![1.0]);
        let l = geometric_ladder(3, 0.25);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], 1.0);
        assert!((l[1] - 0.5).abs() < 1e-12 && (l[2] - 0.25).abs() < 1e-12);
        assert!(check_ladder(&l).is_ok());
        assert!(check_ladder(&[0.9, 0.5]).is_err());
        assert!(check_ladder(&[1.0, 1.0]).is_err());
        assert!(check_ladder(&[1.0, 0.5, 0.0]).is_err());
    }

    #[test]
    fn an_arriving_state_is_matched_to_the_recorded_labels() {
        use sustain_core::Sequence;
        let order = EventOrder::new(&[0, 1, 2, 3], 4).unwrap();
        let seq = |o: &[usize]| Sequence::new(&order, o).unwrap();
        let (a, b, c) = (seq(&[0, 1, 2, 3]), seq(&[3, 2, 1, 0]), seq(&[1, 3, 0, 2]));
        let mut trace = Trace::new(3, 4);
        let recorded = Mixture::new(vec![a.clone(), b.clone(), c.clone()], vec![0.5, 0.3, 0.2]);
        trace.record(&recorded.unwrap(), -1.0, true);
        let arriving = Mixture::new(vec![c, a, b], vec![0.2, 0.5, 0.3]).unwrap();
        // Recorded label 0 (a) is the arrival's 1, 1 (b) its 2, 2 (c) its 0.
        assert_eq!(matching_labels(&trace, &arriving), vec![1, 2, 0]);
        let mut x = Exchange::new(vec![1.0, 0.5], 1, 0);
        x.labels = matching_labels(&trace, &arriving);
        x.record(&mut trace, &arriving, -1.0, true);
        assert_eq!(trace.n_states(), 2);
        for s in 0..3 {
            assert_eq!(trace.fraction(1, s), trace.fraction(0, s));
            for e in 0..4 {
                assert_eq!(trace.position(1, s, e), trace.position(0, s, e));
            }
        }
    }

    #[test]
    fn adaptation_moves_rare_swaps_closer_and_keeps_the_cold_rung() {
        let mut x = Exchange::new(vec![1.0, 0.5, 0.25], 1, 0);
        x.tried = vec![1000, 1000];
        x.accepted = vec![10, 900];
        x.adapt();
        assert_eq!(x.betas[0], 1.0);
        assert!(x.betas[1] > 0.5, "{:?}", x.betas);
        assert!(check_ladder(&x.betas).is_ok());
        assert_eq!(x.tried, vec![0, 0]);
    }
}
