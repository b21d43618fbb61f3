//! [`super::rhat`] of a quantity whose draws come in runs of one value (along a
//! chain every rejected proposal repeats the state, and with it the
//! log-likelihood, the fractions and every event's position), without writing
//! every draw out. Ranks come from the distinct values and how many draws hold
//! each; the means and variances still add every draw, one after another in the
//! same order, so the result has the same bits as [`super::rhat`] of the draws
//! written out. Those additions are cheap; the copies, splits and sorts of
//! millions of draws per quantity were most of a long run's diagnostics.

use super::{order_key, z_of_counts};

/// One chain's draws as runs `(value, repeats)`, in order.
pub type Runs = Vec<(f64, u32)>;

/// Rank-normalised split R-hat of draws given as runs: exactly [`super::rhat`]
/// of the same draws written out (the same edge cases: NaN for no chains, fewer
/// than 4 draws per chain, a NaN draw or a constant quantity, infinity for
/// constant chains that differ; chains cut to the shortest).
pub fn rhat_of_runs(chains: &[Runs]) -> f64 {
    let Some(n_draws) = chains.iter().map(draws_in).min() else {
        return f64::NAN;
    };
    if n_draws < 4 {
        return f64::NAN;
    }
    let chains: Vec<Runs> = chains.iter().map(|c| cut(c, 0, n_draws)).collect();
    let first = chains[0][0].0;
    let values = || chains.iter().flatten().map(|&(v, _)| v);
    if values().any(f64::is_nan) || values().all(|v| v == first) {
        return f64::NAN;
    }
    if values().any(f64::is_infinite) {
        // Distances to an infinite median are NaN, which ranks apart: rare
        // enough to write the draws out.
        let drawn: Vec<Vec<f64>> = chains.iter().map(written_out).collect();
        return super::rhat(&drawn.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
    // Split chains in ArviZ's order: every first half, then every last half (the
    // middle draw of an odd length dropped).
    let half = n_draws / 2;
    let split: Vec<Runs> = (chains.iter().map(|c| cut(c, 0, half)))
        .chain(chains.iter().map(|c| cut(c, n_draws - half, n_draws)))
        .collect();
    // Every run's distinct value, from one sort of the runs' keys.
    let (pooled, ids) = Tally::with_ids(split.iter().flatten().copied());
    let bulk_z = pooled.scores();
    let bulk = rhat_of_split(&split, half, &ids, &bulk_z);
    let median = pooled.median();
    let fold = |v: f64| (v - median).abs();
    let (folded, folded_ids) =
        Tally::with_ids((pooled.values.iter().zip(&pooled.counts)).map(|(&v, &c)| (fold(v), c)));
    let folded_z = folded.scores();
    let tail_z: Vec<f64> = folded_ids.iter().map(|&i| folded_z[i as usize]).collect();
    let tail = rhat_of_split(&split, half, &ids, &tail_z);
    // Python's `max(bulk, tail)`: `tail` only when it is strictly larger.
    if tail > bulk {
        tail
    } else {
        bulk
    }
}

/// Classic R-hat of split chains of `n` draws each, reading each draw of run
/// `i` (the runs of `split`, chain after chain) as `score[ids[i]]` (the bulk
/// and the folded ranks). Adds every draw one after another, as the mean and
/// variance of the draws written out do (the same bits): the sum of a run's
/// draws starts from `-0.0` as `f64`'s `Sum` does, and a run's squared
/// distance from the mean is one value added `repeats` times.
fn rhat_of_split(split: &[Runs], n: usize, ids: &[u32], score: &[f64]) -> f64 {
    let n_chains = split.len();
    let nf = n as f64;
    let mut means = Vec::with_capacity(n_chains);
    let mut within = 0.0;
    let mut at = 0;
    for chain in split {
        let ids = &ids[at..at + chain.len()];
        at += chain.len();
        let mut sum = -0.0;
        for (&(_, r), &i) in chain.iter().zip(ids) {
            let z = score[i as usize];
            for _ in 0..r {
                sum += z;
            }
        }
        let mean = sum / nf;
        let mut ss = -0.0;
        for (&(_, r), &i) in chain.iter().zip(ids) {
            let d = score[i as usize] - mean;
            let d2 = d * d;
            for _ in 0..r {
                ss += d2;
            }
        }
        means.push(mean);
        within += ss / (nf - 1.0);
    }
    super::rhat_from_means(&means, within, n)
}

/// Distinct values in ascending order (`-0.0` and `0.0` one value, as the sort
/// groups them) and how many draws hold each.
struct Tally {
    values: Vec<f64>,
    counts: Vec<u64>,
}

impl Tally {
    /// The distinct values of `runs` and, for each run in order, the index of
    /// its value: one radix sort of the values' order keys, equal values (`-0.0`
    /// and `0.0` too) grouped as a sort groups them.
    fn with_ids(runs: impl Iterator<Item = (f64, impl Into<u64>)>) -> (Tally, Vec<u32>) {
        let all: Vec<(f64, u64)> = runs.map(|(v, r)| (v, r.into())).collect();
        let keys: Vec<u64> = all.iter().map(|&(v, _)| order_key(v)).collect();
        let order = super::radix_order(&keys);
        let (mut values, mut counts): (Vec<f64>, Vec<u64>) = (Vec::new(), Vec::new());
        let mut ids = vec![0u32; all.len()];
        for i in order {
            let (v, r) = all[i as usize];
            match (values.last(), counts.last_mut()) {
                (Some(&last), Some(c)) if last == v => *c += r,
                _ => {
                    values.push(v);
                    counts.push(r);
                }
            }
            ids[i as usize] = (values.len() - 1) as u32;
        }
        (Tally { values, counts }, ids)
    }

    /// Every value's normal score (ties share their average rank).
    fn scores(&self) -> Vec<f64> {
        z_of_counts(&self.counts)
    }

    /// [`super::median_of_sorted`] of the draws.
    fn median(&self) -> f64 {
        let s: u64 = self.counts.iter().sum();
        // The value at 0-based sorted place `k`.
        let at = |k: u64| {
            let mut below = 0;
            for (&v, &c) in self.values.iter().zip(&self.counts) {
                below += c;
                if below > k {
                    return v;
                }
            }
            f64::NAN
        };
        if s % 2 == 1 {
            at(s / 2)
        } else {
            (at(s / 2 - 1) + at(s / 2)) / 2.0
        }
    }
}

/// A chain's draws, one by one.
fn written_out(chain: &Runs) -> Vec<f64> {
    chain
        .iter()
        .flat_map(|&(v, r)| std::iter::repeat_n(v, r as usize))
        .collect()
}

/// Number of draws of a chain.
fn draws_in(chain: &Runs) -> usize {
    chain.iter().map(|&(_, r)| r as usize).sum()
}

/// The runs of draws `from..to` of a chain.
fn cut(chain: &Runs, from: usize, to: usize) -> Runs {
    let mut out = Vec::new();
    let mut start = 0;
    for &(v, r) in chain {
        let end = start + r as usize;
        let (lo, hi) = (start.max(from), end.min(to));
        if lo < hi {
            out.push((v, (hi - lo) as u32));
        }
        if end >= to {
            break;
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::rhat;
    use proptest::prelude::*;

    /// The same bits as `rhat` of the draws written out (NaN as NaN).
    fn assert_same_as_written_out(chains: &[Runs]) {
        let drawn: Vec<Vec<f64>> = chains.iter().map(written_out).collect();
        let refs: Vec<&[f64]> = drawn.iter().map(Vec::as_slice).collect();
        let (want, got) = (rhat(&refs), rhat_of_runs(chains));
        assert!(
            want.to_bits() == got.to_bits() || want.is_nan() && got.is_nan(),
            "rhat {want:?} of the draws, {got:?} of the runs: {chains:?}"
        );
    }

    /// Chains of runs: a few whole values (positions) or any values (a
    /// log-likelihood), runs long or short, lengths that differ.
    fn chains_of_runs() -> impl Strategy<Value = Vec<Runs>> {
        (1u32..40, 1u32..200, any::<bool>()).prop_flat_map(|(top, longest, whole)| {
            let value = (0..top).prop_map(move |v| {
                if whole {
                    f64::from(v)
                } else {
                    -4000.0 + f64::from(v) * 0.37 / f64::from(top)
                }
            });
            prop::collection::vec(prop::collection::vec((value, 0..longest), 0..60), 1..6)
        })
    }

    proptest! {
        #[test]
        fn rhat_of_runs_has_the_bits_of_rhat_of_the_draws(chains in chains_of_runs()) {
            assert_same_as_written_out(&chains);
        }
    }

    #[test]
    fn rhat_of_runs_edge_cases_match() {
        // Constant; constant chains that differ; a constant split of an odd
        // length whose dropped middle draw differs; too few draws; one chain;
        // signed zeros; NaN; infinities; none.
        let inf = f64::INFINITY;
        for chains in [
            vec![vec![(3.0, 10)], vec![(3.0, 7)]],
            vec![vec![(3.0, 10)], vec![(5.0, 10)]],
            vec![vec![(3.0, 2), (4.0, 1), (3.0, 2)], vec![(3.0, 5)]],
            vec![vec![(1.0, 2), (2.0, 1)], vec![(2.0, 9)]],
            vec![vec![(0.0, 5), (9.0, 1), (4.0, 30), (0.0, 2)]],
            vec![
                vec![(-0.0, 5), (1.0, 4), (0.0, 3)],
                vec![(0.0, 6), (-1.0, 6)],
            ],
            vec![vec![(1.0, 5), (f64::NAN, 1)], vec![(2.0, 6)]],
            vec![vec![(inf, 9), (1.0, 2)], vec![(inf, 6), (-inf, 5)]],
            vec![],
        ] {
            assert_same_as_written_out(&chains);
        }
        assert_eq!(
            rhat_of_runs(&[vec![(3.0, 10)], vec![(5.0, 10)]]),
            f64::INFINITY
        );
    }
}
