//! The criteria chains that run until they converge must meet: rank-normalised
//! R-hat below [`RHAT_THRESHOLD`] and bulk and tail ESS above [`ESS_THRESHOLD`] for
//! the log-likelihood and every fraction, and R-hat below the threshold for every
//! event position. Stricter than [`Diagnostics::converged`] (which leaves out tail
//! ESS and the fractions' ESS), which stays as it was so fixed-length results read
//! the same.

use crate::diagnostics;
use crate::merge::{
    diagnose, positions_rhat_max, quantity_runs, realign, sample_states, state_runs, ChainRun,
    Diagnostics, MergedSamples, ESS_THRESHOLD, RHAT_THRESHOLD,
};

/// Every quantity of `d` that does not yet meet the criteria, in words (empty:
/// converged). An undefined value (NaN: the quantity never changed, e.g. the only
/// fraction of one subtype) counts as met: running longer cannot change it.
pub fn unmet_criteria(d: &Diagnostics) -> Vec<String> {
    let mut unmet = Vec::new();
    let ess_bad = |v: f64| !v.is_nan() && v <= ESS_THRESHOLD;
    if rhat_bad(d.rhat_loglike) {
        unmet.push(format!("R-hat of the log-likelihood {:.3}", d.rhat_loglike));
    }
    if ess_bad(d.ess_loglike) {
        unmet.push(format!(
            "bulk ESS of the log-likelihood {:.0}",
            d.ess_loglike
        ));
    }
    if ess_bad(d.ess_tail_loglike) {
        unmet.push(format!(
            "tail ESS of the log-likelihood {:.0}",
            d.ess_tail_loglike
        ));
    }
    if d.rhat_f.len() > 1 {
        unmet.extend(unmet_fraction_rhats(&d.rhat_f));
        for (s, e) in d.ess_f.iter().enumerate() {
            if ess_bad(*e) {
                unmet.push(format!("bulk ESS of fraction f[{s}] {e:.0}"));
            }
        }
        for (s, e) in d.ess_tail_f.iter().enumerate() {
            if ess_bad(*e) {
                unmet.push(format!("tail ESS of fraction f[{s}] {e:.0}"));
            }
        }
    }
    unmet.extend(unmet_positions_rhat(d.rhat_positions_max));
    unmet
}

/// An R-hat that misses the threshold (NaN: undefined, met).
fn rhat_bad(v: f64) -> bool {
    !v.is_nan() && v >= RHAT_THRESHOLD
}

/// The fractions' R-hats that miss the threshold, in words.
fn unmet_fraction_rhats(rhat_f: &[f64]) -> impl Iterator<Item = String> + '_ {
    (rhat_f.iter().enumerate())
        .filter(|(_, r)| rhat_bad(**r))
        .map(|(s, r)| format!("R-hat of fraction f[{s}] {r:.3}"))
}

/// The worst event position's R-hat when it misses the threshold, in words.
fn unmet_positions_rhat(worst: f64) -> Option<String> {
    rhat_bad(worst).then(|| format!("worst R-hat of event positions {worst:.3}"))
}

/// [`crate::merge`] for a round of chains that run until they converge. The
/// R-hats come first (rank passes only); when one of them misses the threshold
/// the round cannot pass, and unless `wanted_anyway` (asked only then) says the
/// full diagnostics are needed all the same (a round a budget ends), the
/// effective sample sizes are not computed: they take FFTs over every draw of
/// the log-likelihood and every fraction, most of a long run's diagnostics.
/// Returns the R-hats that miss, in [`unmet_criteria`]'s words (what the round's
/// verdict is whether or not a budget ends there, so that a run stopped there
/// and continued records the same rounds as one never stopped), and exactly
/// what [`crate::merge`] gives where it was computed.
pub fn merge_for_round(
    chains: Vec<ChainRun>,
    burn_in: usize,
    thin: usize,
    wanted_anyway: impl FnOnce() -> bool,
) -> (MergedSamples, Vec<String>, Option<Diagnostics>) {
    let (merged, relabelled) = realign(chains, burn_in, thin);
    let samples = sample_states(&merged);
    let rhat_positions_max = positions_rhat_max(&merged, &samples);
    let states = state_runs(&samples);
    let rhat_of = |f: &dyn Fn(&crate::Trace, usize) -> f64| {
        let trace = |c: usize| &merged.chains[c].trace;
        diagnostics::rhat_of_runs(&quantity_runs(&states, |c| move |st| f(trace(c), st)))
    };
    let rhat_loglike = rhat_of(&|t, s| t.loglike[s]);
    let mut missing: Vec<String> = (rhat_bad(rhat_loglike))
        .then(|| format!("R-hat of the log-likelihood {rhat_loglike:.3}"))
        .into_iter()
        .collect();
    let n_subtypes = merged.chains.first().map_or(0, |c| c.trace.n_subtypes);
    if n_subtypes > 1 {
        let rhat_f: Vec<f64> = (0..n_subtypes)
            .map(|s| rhat_of(&|t, st| t.fraction(st, s)))
            .collect();
        missing.extend(unmet_fraction_rhats(&rhat_f));
    }
    missing.extend(unmet_positions_rhat(rhat_positions_max));
    if !missing.is_empty() && !wanted_anyway() {
        return (merged, missing, None);
    }
    let diagnostics = diagnose(&merged, &samples, relabelled, rhat_positions_max);
    (merged, missing, Some(diagnostics))
}

/// The smallest effective sample size over the log-likelihood and the fractions
/// (bulk and tail; fractions only with several subtypes), and which quantity it
/// is: the slowest-mixing quantity, whose ESS per second is a chain's headline
/// speed. NaN values (constant quantities) are skipped; `(NaN, "")` when all are.
pub fn slowest_ess(d: &Diagnostics) -> (f64, String) {
    let mut all = vec![
        (d.ess_loglike, "bulk ESS of the log-likelihood".to_string()),
        (
            d.ess_tail_loglike,
            "tail ESS of the log-likelihood".to_string(),
        ),
    ];
    if d.ess_f.len() > 1 {
        for (s, v) in d.ess_f.iter().enumerate() {
            all.push((*v, format!("bulk ESS of f[{s}]")));
        }
        for (s, v) in d.ess_tail_f.iter().enumerate() {
            all.push((*v, format!("tail ESS of f[{s}]")));
        }
    }
    all.into_iter()
        .filter(|(v, _)| !v.is_nan())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::NAN, String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> Diagnostics {
        Diagnostics {
            rhat_loglike: 1.001,
            ess_loglike: 1000.0,
            ess_tail_loglike: 900.0,
            rhat_f: vec![1.002, 1.003],
            ess_f: vec![800.0, 700.0],
            ess_tail_f: vec![600.0, 500.0],
            rhat_positions_max: 1.005,
            acceptance: vec![0.2, 0.2],
            converged: true,
            warnings: Vec::new(),
            relabelled: Vec::new(),
        }
    }

    #[test]
    fn the_slowest_quantity_is_named() {
        let mut d = passing();
        assert_eq!(slowest_ess(&d), (500.0, "tail ESS of f[1]".to_string()));
        d.ess_tail_loglike = 20.0;
        d.ess_f[0] = f64::NAN;
        assert_eq!(slowest_ess(&d).1, "tail ESS of the log-likelihood");
    }

    /// Each criterion alone keeps a run going; undefined values do not.
    #[test]
    fn every_criterion_counts_and_nan_passes() {
        assert!(unmet_criteria(&passing()).is_empty());
        type Change = Box<dyn Fn(&mut Diagnostics)>;
        let cases: Vec<(&str, Change)> = vec![
            ("R-hat of the log", Box::new(|d| d.rhat_loglike = 1.02)),
            ("bulk ESS of the log", Box::new(|d| d.ess_loglike = 399.0)),
            (
                "tail ESS of the log",
                Box::new(|d| d.ess_tail_loglike = 10.0),
            ),
            ("R-hat of fraction f[1]", Box::new(|d| d.rhat_f[1] = 1.2)),
            ("bulk ESS of fraction f[0]", Box::new(|d| d.ess_f[0] = 5.0)),
            (
                "tail ESS of fraction f[1]",
                Box::new(|d| d.ess_tail_f[1] = 400.0),
            ),
            (
                "event positions",
                Box::new(|d| d.rhat_positions_max = f64::INFINITY),
            ),
        ];
        for (what, change) in cases {
            let mut d = passing();
            change(&mut d);
            let unmet = unmet_criteria(&d);
            assert_eq!(unmet.len(), 1, "{unmet:?}");
            assert!(unmet[0].contains(what), "{unmet:?} lacks {what}");
        }
        let mut d = passing();
        d.rhat_loglike = f64::NAN;
        d.ess_tail_f = vec![f64::NAN, f64::NAN];
        assert!(unmet_criteria(&d).is_empty());
        // One subtype: its fraction is always 1 and is not judged.
        let mut d = passing();
        d.rhat_f = vec![f64::NAN];
        d.ess_f = vec![1.0];
        d.ess_tail_f = vec![1.0];
        assert!(unmet_criteria(&d).is_empty());
    }
}
