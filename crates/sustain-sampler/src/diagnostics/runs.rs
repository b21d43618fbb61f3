//! [`super::rhat`] of a whole-number quantity whose draws come in runs of one
//! value (an event's position along a chain: every rejected proposal repeats
//! the state), without writing every draw out. Ranks come from how many draws
//! hold each value; the means and variances still add every draw, one after
//! another in the same order, so the result has the same bits as
//! [`super::rhat`] of the draws written out. Those additions are cheap; the
//! copies, splits and rank passes over millions of draws per quantity were
//! most of a long run's diagnostics.

use super::{rhat_of_chains, z_of_counts};

/// One chain's draws as runs `(value, repeats)`, in order.
pub type Runs = Vec<(u32, u32)>;

/// Rank-normalised split R-hat of whole-number draws given as runs: exactly
/// [`super::rhat`] of the same draws written out (the same edge cases: NaN
/// for no chains, fewer than 4 draws per chain or a constant quantity,
/// infinity for constant chains that differ; chains cut to the shortest).
pub fn rhat_of_runs(chains: &[Runs]) -> f64 {
    let Some(n_draws) = chains.iter().map(|c| draws_in(c)).min() else {
        return f64::NAN;
    };
    if n_draws < 4 {
        return f64::NAN;
    }
    let chains: Vec<Runs> = chains.iter().map(|c| cut(c, 0, n_draws)).collect();
    let first = chains[0][0].0;
    if chains.iter().flatten().all(|&(v, _)| v == first) {
        return f64::NAN;
    }
    // Split chains in ArviZ's order: every first half, then every last half (the
    // middle draw of an odd length dropped).
    let half = n_draws / 2;
    let split: Vec<Runs> = (chains.iter().map(|c| cut(c, 0, half)))
        .chain(chains.iter().map(|c| cut(c, n_draws - half, n_draws)))
        .collect();
    let top = split.iter().flatten().map(|&(v, _)| v).max().unwrap_or(0) as usize;
    let mut counts = vec![0u64; top + 1];
    for &(v, r) in split.iter().flatten() {
        counts[v as usize] += u64::from(r);
    }
    let z = z_of_counts(&counts);
    let bulk = rhat_of_split(&split, half, &z);
    // Folding around the median: twice each distance is a whole number.
    let twice_median = 2.0 * median_of_counts(&counts);
    let twice_distance = |v: usize| (2.0 * v as f64 - twice_median).abs() as usize;
    let mut folded_counts = vec![0u64; 2 * top + 2];
    for (v, &c) in counts.iter().enumerate() {
        folded_counts[twice_distance(v)] += c;
    }
    let folded_z = z_of_counts(&folded_counts);
    let z_of_value: Vec<f64> = (0..=top).map(|v| folded_z[twice_distance(v)]).collect();
    let tail = rhat_of_split(&split, half, &z_of_value);
    // Python's `max(bulk, tail)`: `tail` only when it is strictly larger.
    if tail > bulk {
        tail
    } else {
        bulk
    }
}

/// Classic R-hat of split chains of `n` draws each, value `v` read as `score[v]`.
fn rhat_of_split(split: &[Runs], n: usize, score: &[f64]) -> f64 {
    rhat_of_chains(
        split.iter().map(|c| {
            c.iter()
                .flat_map(|&(v, r)| std::iter::repeat_n(score[v as usize], r as usize))
        }),
        n,
    )
}

/// [`super::median_of_sorted`] of the values `v` that `counts[v]` draws hold.
fn median_of_counts(counts: &[u64]) -> f64 {
    let s: u64 = counts.iter().sum();
    // The value at 0-based sorted place `k`.
    let at = |k: u64| {
        let mut below = 0;
        for (v, &c) in counts.iter().enumerate() {
            below += c;
            if below > k {
                return v as f64;
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

    fn written_out(chain: &Runs) -> Vec<f64> {
        chain
            .iter()
            .flat_map(|&(v, r)| std::iter::repeat_n(f64::from(v), r as usize))
            .collect()
    }

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

    /// Chains of runs: a few values, runs long or short, lengths that differ.
    fn chains_of_runs() -> impl Strategy<Value = Vec<Runs>> {
        (1usize..40, 1u32..200).prop_flat_map(|(top, longest)| {
            prop::collection::vec(
                prop::collection::vec((0..top as u32, 0..longest), 0..60),
                1..6,
            )
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
        // length whose dropped middle draw differs; too few draws; one chain.
        for chains in [
            vec![vec![(3, 10)], vec![(3, 7)]],
            vec![vec![(3, 10)], vec![(5, 10)]],
            vec![vec![(3, 2), (4, 1), (3, 2)], vec![(3, 5)]],
            vec![vec![(1, 2), (2, 1)], vec![(2, 9)]],
            vec![vec![(0, 5), (9, 1), (4, 30), (0, 2)]],
            vec![],
        ] {
            assert_same_as_written_out(&chains);
        }
        assert_eq!(rhat_of_runs(&[vec![(3, 10)], vec![(5, 10)]]), f64::INFINITY);
    }
}
