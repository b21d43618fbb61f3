//! Merging chains: subtype realignment, burn-in and thinning, the maximum-likelihood
//! sample, and convergence diagnostics with a verdict.

use crate::diagnostics;
use crate::trace::Trace;
use serde::{Deserialize, Serialize};

/// R-hat below which a quantity counts as converged.
pub const RHAT_THRESHOLD: f64 = 1.01;
/// Bulk ESS above which the log-likelihood counts as well sampled.
pub const ESS_THRESHOLD: f64 = 400.0;

/// One chain's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRun {
    /// Chain index in the run (fixes its random stream).
    pub index: usize,
    /// Its trace (in a results file whose samples are in a binary file beside it,
    /// absent: [`Trace::is_absent`] until read from that file).
    #[serde(default, skip_serializing_if = "Trace::is_absent")]
    pub trace: Trace,
    /// Accepted / proposed.
    pub acceptance: f64,
    /// Wall time of the chain in seconds.
    pub wall_s: f64,
}

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer};
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    }
}

/// Convergence diagnostics of merged chains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Rank-normalised split R-hat of the log-likelihood.
    #[serde(deserialize_with = "nan_as_null::f64")]
    pub rhat_loglike: f64,
    /// Bulk ESS of the log-likelihood.
    #[serde(deserialize_with = "nan_as_null::f64")]
    pub ess_loglike: f64,
    /// Tail ESS of the log-likelihood.
    #[serde(deserialize_with = "nan_as_null::f64")]
    pub ess_tail_loglike: f64,
    /// R-hat of each fraction (subtype order of the merged samples).
    #[serde(deserialize_with = "nan_as_null::vec")]
    pub rhat_f: Vec<f64>,
    /// Bulk ESS of each fraction.
    #[serde(deserialize_with = "nan_as_null::vec")]
    pub ess_f: Vec<f64>,
    /// Tail ESS of each fraction (absent from files written before it: empty).
    #[serde(default, deserialize_with = "nan_as_null::vec")]
    pub ess_tail_f: Vec<f64>,
    /// Worst R-hat over every subtype's event positions (NaN-free; constant positions skipped).
    #[serde(deserialize_with = "nan_as_null::f64")]
    pub rhat_positions_max: f64,
    /// Acceptance rate per chain.
    pub acceptance: Vec<f64>,
    /// Whether every check passed.
    pub converged: bool,
    /// What failed, in words (empty when converged).
    pub warnings: Vec<String>,
    /// The subtype permutation applied to each chain to match chain 0.
    pub relabelled: Vec<Vec<usize>>,
}

/// Samples of several chains after realignment, burn-in and thinning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedSamples {
    /// Per-chain runs (realigned to chain 0's subtype labels).
    pub chains: Vec<ChainRun>,
    /// Iterations dropped at the start of every chain.
    pub burn_in: usize,
    /// Keep every `thin`-th iteration.
    pub thin: usize,
    /// Where the traces are when a results file keeps them in a binary file beside
    /// it (`None`: the traces are in `chains`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<SamplesFile>,
}

/// A binary file holding the traces of a results file's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplesFile {
    /// File name, in the results file's folder.
    pub name: String,
    /// SHA-256 (hex) of the file's bytes: a file replaced since is refused.
    pub sha256: String,
}

impl MergedSamples {
    /// `(chain, state)` of every merged sample, chain by chain.
    pub fn sample_index(&self) -> Vec<(usize, usize)> {
        self.chains
            .iter()
            .enumerate()
            .flat_map(|(c, run)| {
                run.trace
                    .state_indices(self.burn_in, self.thin)
                    .into_iter()
                    .map(move |s| (c, s))
            })
            .collect()
    }
    /// Number of merged samples.
    pub fn len(&self) -> usize {
        self.chains
            .iter()
            .map(|c| c.trace.state_indices(self.burn_in, self.thin).len())
            .sum()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The maximum-likelihood state over all chains (all iterations, including
    /// burn-in): `(chain, state, loglike)`.
    pub fn max_likelihood(&self) -> (usize, usize, f64) {
        let mut best = (0, 0, f64::NEG_INFINITY);
        for (c, run) in self.chains.iter().enumerate() {
            for (s, &ll) in run.trace.loglike.iter().enumerate() {
                if ll > best.2 {
                    best = (c, s, ll);
                }
            }
        }
        best
    }
    /// Mean fraction of every subtype over merged samples.
    pub fn mean_fractions(&self) -> Vec<f64> {
        let ns = self.chains.first().map_or(0, |c| c.trace.n_subtypes);
        let mut sum = vec![0.0; ns];
        let idx = self.sample_index();
        for &(c, st) in &idx {
            for (s, v) in sum.iter_mut().enumerate() {
                *v += self.chains[c].trace.fraction(st, s);
            }
        }
        sum.iter().map(|v| v / idx.len().max(1) as f64).collect()
    }
    /// Positional variance: `pvd[s][e][k]` = fraction of samples with event `e` at
    /// position `k` in subtype `s`.
    pub fn position_frequencies(&self) -> Vec<Vec<Vec<f64>>> {
        Self::frequencies_of(&self.chains, self.burn_in, self.thin)
    }

    /// [`Self::position_frequencies`] of chain `c` alone (the figure of each
    /// chain's positional variance).
    pub fn chain_position_frequencies(&self, c: usize) -> Vec<Vec<Vec<f64>>> {
        Self::frequencies_of(&self.chains[c..=c], self.burn_in, self.thin)
    }

    fn frequencies_of(chains: &[ChainRun], burn_in: usize, thin: usize) -> Vec<Vec<Vec<f64>>> {
        let Some(first) = chains.first() else {
            return Vec::new();
        };
        let (ns, ne) = (first.trace.n_subtypes, first.trace.n_events);
        let mut counts = vec![vec![vec![0.0; ne]; ne]; ns];
        let idx: Vec<Vec<usize>> = chains
            .iter()
            .map(|c| c.trace.state_indices(burn_in, thin))
            .collect();
        // Counts are sums of ones, exact in any order: one event at a time.
        for (s, cs) in counts.iter_mut().enumerate() {
            for (e, row) in cs.iter_mut().enumerate() {
                for (run, states) in chains.iter().zip(&idx) {
                    let at = run.trace.event_positions(s, e);
                    for &st in states {
                        row[at[st] as usize] += 1.0;
                    }
                }
            }
        }
        let n = idx.iter().map(Vec::len).sum::<usize>().max(1) as f64;
        counts.iter_mut().flatten().flatten().for_each(|v| *v /= n);
        counts
    }
}

/// Mean position of every event per subtype over a trace's samples after `skip`.
fn mean_positions(trace: &Trace, skip: usize) -> Vec<Vec<f64>> {
    mean_positions_at(trace, &trace.state_indices(skip, 1))
}

/// Mean position of every event per subtype over the trace's states `idx`.
pub(crate) fn mean_positions_at(trace: &Trace, idx: &[usize]) -> Vec<Vec<f64>> {
    let n = idx.len().max(1) as f64;
    (0..trace.n_subtypes)
        .map(|s| {
            (0..trace.n_events)
                .map(|e| {
                    let at = trace.event_positions(s, e);
                    idx.iter().map(|&st| at[st] as f64).sum::<f64>() / n
                })
                .collect()
        })
        .collect()
}

/// Best permutation `perm` (new label `i` = old label `perm[i]`) matching `other`'s
/// subtypes to `reference`'s by total absolute difference of mean positions.
pub fn match_subtypes(reference: &[Vec<f64>], other: &[Vec<f64>]) -> Vec<usize> {
    let n = reference.len();
    let cost = |i: usize, j: usize| -> f64 {
        reference[i]
            .iter()
            .zip(&other[j])
            .map(|(a, b)| (a - b).abs())
            .sum()
    };
    let mut perm: Vec<usize> = (0..n).collect();
    let mut best = perm.clone();
    let mut best_cost = f64::INFINITY;
    // Every permutation: n <= 8 gives at most 40,320.
    crate::relabel::permutations(n, &mut perm, &mut |p: &[usize]| {
        let c: f64 = p.iter().enumerate().map(|(i, &j)| cost(i, j)).sum();
        if c < best_cost - 1e-12 {
            best_cost = c;
            best = p.to_vec();
        }
    });
    best
}

/// Merges chains: realigns every chain's subtype labels to chain 0's, drops
/// `burn_in` iterations per chain, keeps every `thin`-th, and computes diagnostics.
pub fn merge(chains: Vec<ChainRun>, burn_in: usize, thin: usize) -> (MergedSamples, Diagnostics) {
    let (merged, relabelled) = realign(chains, burn_in, thin);
    let samples = sample_states(&merged);
    let rhat_positions_max = positions_rhat_max(&merged, &samples);
    let diagnostics = diagnose(&merged, &samples, relabelled, rhat_positions_max);
    (merged, diagnostics)
}

/// Chains sorted by index and realigned to chain 0's labels, with the
/// permutation applied to each.
pub(crate) fn realign(
    mut chains: Vec<ChainRun>,
    burn_in: usize,
    thin: usize,
) -> (MergedSamples, Vec<Vec<usize>>) {
    chains.sort_by_key(|c| c.index);
    let mut relabelled = Vec::new();
    if let Some(first) = chains.first() {
        let reference = mean_positions(&first.trace, burn_in);
        for run in chains.iter_mut() {
            let perm = match_subtypes(&reference, &mean_positions(&run.trace, burn_in));
            if perm.iter().enumerate().any(|(i, &p)| i != p) {
                run.trace.permute_subtypes(&perm);
            }
            relabelled.push(perm);
        }
    }
    let merged = MergedSamples {
        chains,
        burn_in,
        thin: thin.max(1),
        file: None,
    };
    (merged, relabelled)
}

/// The state of every merged sample, chain by chain.
pub(crate) fn sample_states(merged: &MergedSamples) -> Vec<Vec<usize>> {
    merged
        .chains
        .iter()
        .map(|c| c.trace.state_indices(merged.burn_in, merged.thin))
        .collect()
}

/// One quantity's value at every merged sample, chain by chain (`samples`:
/// [`sample_states`]).
pub(crate) fn series_of(
    merged: &MergedSamples,
    samples: &[Vec<usize>],
    f: &dyn Fn(&Trace, usize) -> f64,
) -> Vec<Vec<f64>> {
    merged
        .chains
        .iter()
        .zip(samples)
        .map(|(c, idx)| idx.iter().map(|&s| f(&c.trace, s)).collect())
        .collect()
}

/// Worst R-hat over every subtype's event positions (constant positions skipped;
/// NaN when every one is).
pub(crate) fn positions_rhat_max(merged: &MergedSamples, samples: &[Vec<usize>]) -> f64 {
    let ns = merged.chains.first().map_or(0, |c| c.trace.n_subtypes);
    let ne = merged.chains.first().map_or(0, |c| c.trace.n_events);
    let state_runs = state_runs(samples);
    let mut worst: f64 = f64::NAN;
    for s in 0..ns {
        for e in 0..ne {
            let runs = quantity_runs(&state_runs, |c| {
                let at = merged.chains[c].trace.event_positions(s, e);
                move |st: usize| f64::from(at[st])
            });
            let v = diagnostics::rhat_of_runs(&runs);
            if v.is_finite() || v == f64::INFINITY {
                worst = if worst.is_nan() { v } else { worst.max(v) };
            }
        }
    }
    worst
}

/// Each chain's merged samples (`samples`: [`sample_states`]) as runs of one
/// state, `(state, repeats)`.
pub(crate) fn state_runs(samples: &[Vec<usize>]) -> Vec<Vec<(usize, u32)>> {
    samples
        .iter()
        .map(|idx| {
            let mut runs: Vec<(usize, u32)> = Vec::new();
            for &st in idx {
                match runs.last_mut() {
                    Some((last, r)) if *last == st => *r += 1,
                    _ => runs.push((st, 1)),
                }
            }
            runs
        })
        .collect()
}

/// A quantity at each chain's merged samples as runs of one value (`states[c]`:
/// chain `c`'s samples as runs of one state; `value(c)`: chain `c`'s value at
/// each state).
pub(crate) fn quantity_runs<F: Fn(usize) -> f64>(
    states: &[Vec<(usize, u32)>],
    value: impl Fn(usize) -> F,
) -> Vec<diagnostics::Runs> {
    (states.iter().enumerate())
        .map(|(c, runs)| {
            let at = value(c);
            let mut out: diagnostics::Runs = Vec::new();
            for &(st, r) in runs {
                let v = at(st);
                match out.last_mut() {
                    Some((last, n)) if last.to_bits() == v.to_bits() => *n += r,
                    _ => out.push((v, r)),
                }
            }
            out
        })
        .collect()
}

pub(crate) fn diagnose(
    merged: &MergedSamples,
    samples: &[Vec<usize>],
    relabelled: Vec<Vec<usize>>,
    rhat_positions_max: f64,
) -> Diagnostics {
    let ll = series_of(merged, samples, &|t, s| t.loglike[s]);
    let ll_refs: Vec<&[f64]> = ll.iter().map(Vec::as_slice).collect();
    let summary = diagnostics::summarize(&ll_refs);
    let ns = merged.chains.first().map_or(0, |c| c.trace.n_subtypes);
    let mut rhat_f = Vec::new();
    let mut ess_f = Vec::new();
    let mut ess_tail_f = Vec::new();
    for s in 0..ns {
        let fs = series_of(merged, samples, &|t, st| t.fraction(st, s));
        let r: Vec<&[f64]> = fs.iter().map(Vec::as_slice).collect();
        let sm = diagnostics::summarize(&r);
        rhat_f.push(sm.rhat);
        ess_f.push(sm.ess_bulk);
        ess_tail_f.push(sm.ess_tail);
    }
    let mut warnings = Vec::new();
    let bad = |v: f64| v.is_nan() || v >= RHAT_THRESHOLD;
    // Every sample with the same log-likelihood: R-hat and ESS are undefined (NaN),
    // and the reason is that nothing moved, which says more than "NaN".
    let frozen = ll
        .iter()
        .flatten()
        .all(|&v| ll.first().and_then(|c| c.first()) == Some(&v));
    if frozen && ll.iter().map(Vec::len).sum::<usize>() > 1 {
        warnings.push(
            "the chains never moved: every sample has the same log-likelihood (R-hat and ESS \
             are undefined); the step sizes may have been tuned to their floor, or the model \
             has a single possible sequence"
                .to_string(),
        );
    } else if bad(summary.rhat) {
        warnings.push(format!(
            "R-hat of the log-likelihood is {:.3} (needs < {RHAT_THRESHOLD})",
            summary.rhat
        ));
    }
    if !frozen && (summary.ess_bulk.is_nan() || summary.ess_bulk <= ESS_THRESHOLD) {
        warnings.push(format!(
            "bulk ESS of the log-likelihood is {:.0} (needs > {ESS_THRESHOLD}); run more iterations or chains",
            summary.ess_bulk
        ));
    }
    if ns > 1 {
        for (s, r) in rhat_f.iter().enumerate() {
            if bad(*r) {
                warnings.push(format!(
                    "R-hat of fraction f[{s}] is {r:.3} (needs < {RHAT_THRESHOLD})"
                ));
            }
        }
    }
    if rhat_positions_max.is_finite() && bad(rhat_positions_max)
        || rhat_positions_max == f64::INFINITY
    {
        warnings.push(format!(
            "worst R-hat over event positions is {rhat_positions_max:.3} (needs < {RHAT_THRESHOLD})"
        ));
    }
    Diagnostics {
        rhat_loglike: summary.rhat,
        ess_loglike: summary.ess_bulk,
        ess_tail_loglike: summary.ess_tail,
        rhat_f,
        ess_f,
        ess_tail_f,
        rhat_positions_max,
        acceptance: merged.chains.iter().map(|c| c.acceptance).collect(),
        converged: warnings.is_empty(),
        warnings,
        relabelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_chain, ProposalMode, Round, StepSizes};
    use rand::SeedableRng;
    use std::sync::Arc;
    use sustain_model::*;

    /// Merging reads positions the same whether a trace keeps them as moves (as
    /// chains record them) or every state in full (as older files and JSON hold
    /// them): the same samples, realignment, positional variance and diagnostics,
    /// to the bit.
    #[test]
    fn merged_quantities_do_not_depend_on_how_positions_are_kept() {
        let cohort = sustain_testkit::cohorts::uniform_cohort(80, 6, &[0.5, 0.5], 3);
        let lik = Arc::new(
            Likelihood::new(
                cohort.events.clone(),
                &cohort.data,
                MissingConvention::Marginalise,
            )
            .unwrap(),
        );
        let chains: Vec<ChainRun> = (0..3)
            .map(|i| {
                let mut rng = rand_pcg::Pcg64::seed_from_u64(10 + i);
                let start =
                    sustain_testkit::cohorts::random_mixture(&cohort.events, &[0.5, 0.5], &mut rng);
                let steps = StepSizes::initial(2, cohort.events.n_events());
                let round = Round::new(ProposalMode::Exact, &steps, 3000);
                let evaluator = IncrementalLikelihood::new(Arc::clone(&lik), &start);
                run_chain(
                    i as usize,
                    &cohort.events,
                    evaluator,
                    &start,
                    round,
                    &mut rng,
                )
            })
            .collect();
        // Every state in full: the layout of a trace read from JSON.
        let full: Vec<ChainRun> = chains
            .iter()
            .map(|c| serde_json::from_str(&serde_json::to_string(c).unwrap()).unwrap())
            .collect();
        let (a, da) = merge(chains, 500, 3);
        let (b, db) = merge(full, 500, 3);
        assert_eq!(a, b);
        let text = |v: &dyn erased::Json| v.json();
        assert_eq!(text(&da), text(&db));
        assert_eq!(
            text(&a.position_frequencies()),
            text(&b.position_frequencies())
        );
        assert_eq!(text(&a.mean_fractions()), text(&b.mean_fractions()));
        let labels = vec![vec![0, 1]; 3];
        assert_eq!(
            text(&crate::chain_summary::summarize_chains(&a, &labels)),
            text(&crate::chain_summary::summarize_chains(&b, &labels))
        );
        assert!(da.rhat_positions_max.is_finite(), "{da:?}");
    }

    /// JSON text of a value, to compare floats to the bit (NaN as null).
    mod erased {
        pub trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }

    /// A model with one possible sequence and one subtype: nothing can move, the
    /// diagnostics are undefined, and the verdict says why instead of "NaN".
    #[test]
    fn frozen_chains_are_reported_as_such() {
        let events = EventSet::new(&[vec![1.0]], &[5.0]).unwrap();
        let data = Dataset::from_rows(&[vec![0.3], vec![1.7], vec![2.5]]).unwrap();
        let lik = Arc::new(
            Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap(),
        );
        let start = Mixture::new(vec![Sequence::new(&events, &[0]).unwrap()], vec![1.0]).unwrap();
        let chains: Vec<ChainRun> = (0..2)
            .map(|i| {
                let mut rng = rand_pcg::Pcg64::seed_from_u64(i);
                let steps = StepSizes::initial(1, 1);
                let round = Round::new(ProposalMode::Exact, &steps, 200);
                let evaluator = IncrementalLikelihood::new(Arc::clone(&lik), &start);
                run_chain(i as usize, &events, evaluator, &start, round, &mut rng)
            })
            .collect();
        let (_, d) = merge(chains, 100, 1);
        assert!(!d.converged);
        assert!(d.rhat_loglike.is_nan());
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("never moved"), "{:?}", d.warnings);
    }
}
