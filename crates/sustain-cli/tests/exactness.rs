//! End-to-end exactness: `sustain fit --subtypes 1 --proposal exact` on a problem
//! small enough to enumerate reproduces the exact position marginals (`pvd`).

mod common;

use common::read_json;
use std::process::Command;
use sustain_model::simulate::simulate;
use sustain_model::*;
use sustain_testkit::enumerate::{all_sequences, single_subtype_posterior};
use sustain_testkit::{read_rows, spec, to_csv};

#[test]
fn fit_pvd_matches_enumerated_position_marginals() {
    // 3 biomarkers: thresholds (1, 2), (1, 2), (1): 5 events, 30 valid sequences.
    let z_vals = vec![vec![1.0, 2.0], vec![1.0, 2.0], vec![1.0, 0.0]];
    let z_max = vec![3.0, 3.0, 3.0];
    let events = EventSet::new(&z_vals, &z_max).unwrap();
    let truth = Mixture::single(Sequence::new(&events, &[0, 2, 1, 3, 4]).unwrap());
    let sim = simulate(&events, &truth, &spec(15, 0.0, 0.1), 5).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let header: Vec<String> = (0..3).map(|b| format!("b{b}")).collect();
    std::fs::write(dir.path().join("data.csv"), to_csv(&header, &sim.data)).unwrap();
    std::fs::write(
        dir.path().join("model.json"),
        serde_json::json!({"biomarkers": ["b0", "b1", "b2"], "z_vals": z_vals, "z_max": z_max})
            .to_string(),
    )
    .unwrap();
    let out = dir.path().join("fit");
    let status = Command::new(env!("CARGO_BIN_EXE_sustain"))
        .args([
            "fit",
            "--data",
            "data.csv",
            "--model",
            "model.json",
            "--subtypes",
            "1",
            "--proposal",
            "exact",
        ])
        .args([
            "--startpoints",
            "2",
            "--iterations",
            "40000",
            "--chains",
            "4",
            "--tuning-iterations",
            "2000",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());

    // The data as the CLI read it (the shortest form round-trips exactly).
    let rows = read_rows(&dir.path().join("data.csv"));
    let lik = Likelihood::new(
        events.clone(),
        &Dataset::from_rows(&rows).unwrap(),
        MissingConvention::Marginalise,
    )
    .unwrap();
    let seqs = all_sequences(&events);
    assert_eq!(seqs.len(), 30);
    let n = events.n_events();
    let mut exact = vec![vec![0.0; n]; n];
    for (s, p) in seqs.iter().zip(single_subtype_posterior(&lik, &seqs)) {
        for e in 0..n {
            exact[e][s.position(e)] += p;
        }
    }

    let results = read_json(out.join("results.json"));
    let pvd: Vec<Vec<Vec<f64>>> =
        serde_json::from_value(results["models"][0]["pvd"].clone()).unwrap();
    let mut worst: f64 = 0.0;
    for e in 0..n {
        for k in 0..n {
            worst = worst.max((pvd[0][e][k] - exact[e][k]).abs());
        }
    }
    assert!(
        worst < 0.02,
        "largest difference between pvd and exact marginals: {worst}"
    );
}
