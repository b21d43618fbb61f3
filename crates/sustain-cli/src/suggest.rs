//! The rule of `sustain suggest-model`: from one biomarker's patient z-scores, the
//! thresholds (`z_vals`) and `z_max` of a z-score model, with the reasons.
//!
//! - A threshold z = 1, 2, 3, ... is kept while at least `min_share` of the
//!   patients reach it (an event few patients reach cannot be placed in the
//!   sequence), up to `max_thresholds` of them.
//! - `z_max` is the `percentile`-th percentile of the patients' z-scores (the
//!   pySuStaIn tutorial: "around the 95th percentile of your data"), rounded to a
//!   whole number as the tutorial does for interpretability, and at least one
//!   above the top threshold (the model needs a last segment).

use crate::quantiles::quantile;

/// The settings of the rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Least share of patients (0 to 1) at or above a threshold for it to be kept.
    pub min_share: f64,
    /// Most thresholds per biomarker.
    pub max_thresholds: usize,
    /// The percentile (0 to 100) that `z_max` follows.
    pub percentile: f64,
}

/// Percentiles reported for each biomarker.
pub const REPORTED_PERCENTILES: [f64; 7] = [5.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0];

/// What the rule proposes for one biomarker, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The observed patient values (sorted).
    pub n_patients: usize,
    /// `REPORTED_PERCENTILES` of the patients' z-scores.
    pub percentiles: Vec<f64>,
    /// Share of patients at or above z = 1, 2, ... (up to `max_thresholds`).
    pub reach: Vec<f64>,
    /// The thresholds kept.
    pub z_vals: Vec<f64>,
    /// The proposed z_max.
    pub z_max: f64,
    /// The percentile z_max follows, unrounded.
    pub high_percentile: f64,
    /// Doubts about this biomarker, in words.
    pub warnings: Vec<String>,
}

/// Applies `rule` to the observed z-scores `patients` (NaN-free, not empty).
pub fn propose(patients: &[f64], rule: &Rule) -> Proposal {
    let mut v = patients.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let share_at_least = |t: f64| v.iter().filter(|&&x| x >= t).count() as f64 / n.max(1) as f64;
    let reach: Vec<f64> = (1..=rule.max_thresholds)
        .map(|t| share_at_least(t as f64))
        .collect();
    let mut z_vals: Vec<f64> = reach
        .iter()
        .enumerate()
        .take_while(|(_, s)| **s >= rule.min_share)
        .map(|(i, _)| (i + 1) as f64)
        .collect();
    let mut warnings = Vec::new();
    if z_vals.is_empty() {
        warnings.push(format!(
            "only {:.0}% of the patients reach z = 1 (the rule asks {:.0}%): its event can hardly be placed; consider leaving this biomarker out",
            100.0 * reach.first().copied().unwrap_or(0.0),
            100.0 * rule.min_share
        ));
        z_vals.push(1.0);
    }
    let median = quantile(&v, 0.5);
    if median < 0.0 {
        warnings.push(format!(
            "the patients' median z-score is {median:.2}, below the controls' 0: is larger really more abnormal for this biomarker (see `sustain zscore --flip`)?"
        ));
    }
    let high = quantile(&v, rule.percentile / 100.0);
    let top = z_vals.last().copied().unwrap_or(0.0);
    let z_max = high.round().max(top + 1.0);
    if high.round() < top + 1.0 {
        warnings.push(format!(
            "z_max is {z_max}, one above the top threshold, not the {}th percentile {high:.2}: the model needs a last segment",
            rule.percentile
        ));
    }
    Proposal {
        n_patients: n,
        percentiles: REPORTED_PERCENTILES
            .iter()
            .map(|p| quantile(&v, p / 100.0))
            .collect(),
        reach,
        z_vals,
        z_max,
        high_percentile: high,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        min_share: 0.1,
        max_thresholds: 3,
        percentile: 95.0,
    };

    /// 100 values 0.05, 0.10, ..., 5.00.
    fn ramp() -> Vec<f64> {
        (1..=100).map(|i| i as f64 * 0.05).collect()
    }

    #[test]
    fn thresholds_that_enough_patients_reach_and_z_max_at_the_percentile() {
        let p = propose(&ramp(), &RULE);
        assert_eq!(p.z_vals, vec![1.0, 2.0, 3.0]);
        // 81 of 100 values are >= 1, 41 >= 3.
        assert!((p.reach[0] - 0.81).abs() < 1e-12, "{:?}", p.reach);
        assert!((p.reach[2] - 0.41).abs() < 1e-12, "{:?}", p.reach);
        // 95th percentile 4.7525 rounds to 5.
        assert_eq!(p.z_max, 5.0);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn rare_levels_are_left_out() {
        // 5% of patients reach 2: one threshold only, z_max one above it at least.
        let mut v: Vec<f64> = (0..95).map(|i| 0.5 + i as f64 * 0.01).collect();
        v.extend([2.5; 5]);
        let p = propose(&v, &RULE);
        assert_eq!(p.z_vals, vec![1.0]);
        assert_eq!(p.z_max, 2.0);
        assert!(
            p.warnings.iter().any(|w| w.contains("last segment")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_biomarker_that_patients_do_not_reach_is_flagged() {
        let v: Vec<f64> = (0..50).map(|i| -1.0 + i as f64 * 0.02).collect();
        let p = propose(&v, &RULE);
        assert_eq!(p.z_vals, vec![1.0]);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("leaving this biomarker out")));
        assert!(p.warnings.iter().any(|w| w.contains("--flip")));
    }
}
