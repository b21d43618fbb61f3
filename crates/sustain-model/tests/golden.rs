//! Golden tests against values computed with the reference implementation
//! (`../shared/data/golden`). Skipped, with a notice, when `../shared` is absent.

use std::path::{Path, PathBuf};
use sustain_model::*;
use sustain_testkit::{read_rows, shared_data};

fn shared_golden() -> Option<PathBuf> {
    shared_data("golden", "golden_likelihood.json", "golden tests")
}

fn read_csv(path: &Path) -> Dataset {
    Dataset::from_rows(&read_rows(path)).unwrap()
}

struct Case {
    data: String,
    mixture: Mixture,
    loglike: f64,
    per_subject: Vec<f64>,
    perm0: Vec<Vec<f64>>,
}

/// The golden file: its events, both data sets and the cases computed on them.
struct Golden {
    events: EventSet,
    complete: Dataset,
    missing: Dataset,
    cases: Vec<Case>,
}

impl Golden {
    /// The data set `case` was computed on: the complete or the missing one.
    fn data_of(&self, case: &Case) -> &Dataset {
        if case.data == "complete" {
            &self.complete
        } else {
            &self.missing
        }
    }

    /// The likelihood of `case`'s data set under `convention`.
    fn likelihood(&self, case: &Case, convention: MissingConvention) -> Likelihood {
        Likelihood::new(self.events.clone(), self.data_of(case), convention).unwrap()
    }
}

fn load() -> Option<Golden> {
    let dir = shared_golden()?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden_likelihood.json")).unwrap())
            .unwrap();
    let z_vals: Vec<Vec<f64>> = serde_json::from_value(json["z_vals"].clone()).unwrap();
    let z_max: Vec<f64> = serde_json::from_value(json["z_max"].clone()).unwrap();
    let events = EventSet::new(&z_vals, &z_max).unwrap();
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let seqs: Vec<Vec<usize>> = serde_json::from_value(c["sequences"].clone()).unwrap();
            let f: Vec<f64> = serde_json::from_value(c["f"].clone()).unwrap();
            let seqs = seqs
                .iter()
                .map(|s| Sequence::new(&events, s).unwrap())
                .collect();
            Case {
                data: c["data"].as_str().unwrap().to_string(),
                mixture: Mixture::new(seqs, f).unwrap(),
                loglike: c["loglike"].as_f64().unwrap(),
                per_subject: serde_json::from_value(c["log_total_prob_subj"].clone()).unwrap(),
                perm0: serde_json::from_value(c["log_p_perm_k_subtype0"].clone()).unwrap(),
            }
        })
        .collect();
    Some(Golden {
        events,
        complete: read_csv(&dir.join("data_complete.csv")),
        missing: read_csv(&dir.join("data_missing.csv")),
        cases,
    })
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn golden_likelihoods_reference_convention() {
    let Some(golden) = load() else {
        return;
    };
    for case in &golden.cases {
        let lik = golden.likelihood(case, MissingConvention::Reference);
        let ll = lik.loglike(&case.mixture);
        assert!(
            rel(ll, case.loglike) < 1e-9,
            "{} {} subtypes: {ll} vs {}",
            case.data,
            case.mixture.n_subtypes(),
            case.loglike
        );
        for (m, (a, b)) in lik
            .log_p_subjects(&case.mixture)
            .iter()
            .zip(&case.per_subject)
            .enumerate()
        {
            assert!(rel(*a, *b) < 1e-9, "subject {m}: {a} vs {b}");
        }
        let perm = lik.log_p_perm_k(&case.mixture.sequences()[0]);
        for (m, row) in case.perm0.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                assert!(
                    rel(perm[[m, k]], *v) < 1e-9,
                    "p_perm_k[{m}][{k}]: {} vs {v}",
                    perm[[m, k]]
                );
            }
        }
    }
}

#[test]
fn golden_complete_data_is_convention_free_and_missing_shifts_by_a_constant() {
    let Some(golden) = load() else {
        return;
    };
    for case in &golden.cases {
        let data = golden.data_of(case);
        let marg = golden.likelihood(case, MissingConvention::Marginalise);
        let refc = golden.likelihood(case, MissingConvention::Reference);
        let (a, b) = (marg.loglike(&case.mixture), refc.loglike(&case.mixture));
        if case.data == "complete" {
            assert!(rel(a, case.loglike) < 1e-9);
        } else {
            // The difference is exactly the reference's per-missing-value constant.
            let mut shift = 0.0;
            for m in 0..data.n_subjects() {
                for bm in 0..data.n_biomarkers() {
                    if data.is_missing(m, bm) {
                        let t = (1.0 / golden.events.z_max(bm)).ln();
                        shift += -0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * t * t;
                    }
                }
            }
            assert!(
                (b - a - shift).abs() < 1e-9 * b.abs(),
                "shift {} vs {shift}",
                b - a
            );
        }
        // Posteriors over stages (and subtypes) are identical under both conventions.
        let (pa, pb) = (
            marg.posteriors(&case.mixture),
            refc.posteriors(&case.mixture),
        );
        for (x, y) in pa.stage.iter().zip(pb.stage.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
        for (x, y) in pa.subtype.iter().zip(pb.subtype.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}

#[test]
fn golden_stage_posterior_matches_reference_p_perm_k() {
    // For one subtype the stage posterior is p_perm_k normalised per subject.
    let Some(golden) = load() else {
        return;
    };
    for case in golden.cases.iter().filter(|c| c.mixture.n_subtypes() == 1) {
        let lik = golden.likelihood(case, MissingConvention::Marginalise);
        let post = lik.posteriors(&case.mixture);
        for (m, row) in case.perm0.iter().enumerate() {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = row.iter().map(|v| (v - max).exp()).sum();
            for (k, v) in row.iter().enumerate() {
                let expect = (v - max).exp() / total;
                assert!((post.stage[[m, k]] - expect).abs() < 1e-12);
            }
        }
    }
}
