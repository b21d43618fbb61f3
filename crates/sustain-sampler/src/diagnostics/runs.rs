//! [`super::rhat`] of a quantity whose draws come in runs of one value (along a
//! chain every rejected proposal repeats the state, and with it the
//! log-likelihood, the fractions and every event's position), without writing
//! every draw out. Ranks come from the distinct values and how many draws hold
//! each; the means and variances still add every draw, one after another in the
//! same order, so the result has the same bits as [`super::rhat`] of the draws
//! written out. Those additions are cheap; the copies, splits and sorts of
//! millions of draws per quantity were most of a long run's diagnostics.

use super::{order_key, rhat_of_chains, z_of_counts};

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
    let pooled = Tally::of(split.iter().flatten().copied());
    let bulk = rhat_of_split(&split, half, &pooled.scores());
    let median = pooled.median();
    let fold = |v: f64| (v - median).abs();
    let folded = Tally::of((pooled.values.iter().zip(&pooled.counts)).map(|(&v, &c)| (fold(v), c)));
    let folded_z = folded.scores();
    let tail = rhat_of_split(
        &split,
        half,
        &Scores {
            tally: &pooled,
            score: pooled
                .values
                .iter()
                .map(|&v| folded_z.of(fold(v)))
                .collect(),
        },
    );
    // Python's `max(bulk, tail)`: `tail` only when it is strictly larger.
    if tail > bulk {
        tail
    } else {
        bulk
    }
}

/// Classic R-hat of split chains of `n` draws each, reading each draw as
/// `score[i]` of its distinct value `i` in `pooled` (the bulk and the folded
/// ranks).
fn rhat_of_split(split: &[Runs], n: usize, score: &Scores) -> f64 {
    let scored: Vec<Vec<(f64, u32)>> = split
        .iter()
        .map(|c| c.iter().map(|&(v, r)| (score.of(v), r)).collect())
        .collect();
    rhat_of_chains(
        scored.iter().map(|c| {
            c.iter()
                .flat_map(|&(z, r)| std::iter::repeat_n(z, r as usize))
        }),
        n,
    )
}

/// Distinct values in ascending order (`-0.0` and `0.0` one value, as the sort
/// groups them) and how many draws hold each.
struct Tally {
    values: Vec<f64>,
    counts: Vec<u64>,
}

/// A score per distinct value of a [`Tally`].
struct Scores<'a> {
    tally: &'a Tally,
    score: Vec<f64>,
}

impl Scores<'_> {
    fn of(&self, v: f64) -> f64 {
        self.score[self.tally.index(v)]
    }
}

impl Tally {
    fn of(runs: impl Iterator<Item = (f64, impl Into<u64>)>) -> Tally {
        let mut all: Vec<(f64, u64)> = runs.map(|(v, r)| (v, r.into())).collect();
        all.sort_unstable_by_key(|&(v, _)| order_key(v));
        let (mut values, mut counts): (Vec<f64>, Vec<u64>) = (Vec::new(), Vec::new());
        for (v, r) in all {
            match (values.last(), counts.last_mut()) {
                (Some(&last), Some(c)) if last == v => *c += r,
                _ => {
                    values.push(v);
                    counts.push(r);
                }
            }
        }
        Tally { values, counts }
    }

    /// Index of value `v` (one of the values).
    fn index(&self, v: f64) -> usize {
        self.values.partition_point(|&x| x < v)
    }

    /// Every value's normal score (ties share their average rank).
    fn scores(&self) -> Scores<'_> {
        Scores {
            tally: self,
            score: z_of_counts(&self.counts),
        }
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
