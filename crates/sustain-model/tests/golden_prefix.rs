//! Golden tests of the event-based (mixture) and ordinal models against the
//! reference implementation (`../shared/data/golden_mixture`, `golden_ordinal`;
//! spec section 10). Skipped, with a notice, when `../shared` is absent.

use ndarray::Array2;
use serde_json::Value;
use std::path::PathBuf;
use sustain_model::*;

/// `../shared/data/<name>`, or `None` with a notice that its golden tests are skipped.
fn shared(name: &str) -> Option<PathBuf> {
    sustain_testkit::shared_data(name, "cases.json", "its golden tests")
}

/// A CSV with an id column first: the other columns as subjects x biomarkers.
fn table(path: PathBuf) -> Array2<f64> {
    let mut rdr = csv::Reader::from_path(&path).unwrap();
    let rows: Vec<Vec<f64>> = rdr
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .skip(1)
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    Array2::from_shape_vec(
        (rows.len(), rows[0].len()),
        rows.into_iter().flatten().collect(),
    )
    .unwrap()
}

fn cases(dir: &std::path::Path, order: &EventOrder) -> (Vec<(Mixture, f64)>, Value) {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let out = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let seqs = c["sequences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let o: Vec<usize> = serde_json::from_value(s.clone()).unwrap();
                    Sequence::new(order, &o).unwrap()
                })
                .collect();
            let f: Vec<f64> = serde_json::from_value(c["f"].clone()).unwrap();
            (
                Mixture::new(seqs, f).unwrap(),
                c["loglike"].as_f64().unwrap(),
            )
        })
        .collect();
    (out, json)
}

fn check(model: &PrefixModel, dir: &std::path::Path) {
    let (cases, json) = cases(dir, model.order());
    assert_eq!(
        json["n_events"].as_u64().unwrap() as usize,
        model.order().n_events()
    );
    for (i, (mixture, want)) in cases.iter().enumerate() {
        let got = SustainModel::loglike(model, mixture);
        assert!(
            ((got - want) / want).abs() < 1e-9,
            "case {i}: {got} vs the reference's {want}"
        );
    }
    // log p(x_m | k) of case 0's first subtype, first 5 subjects.
    let ns = model.order().n_stages();
    let mut stages = vec![0.0; model.n_subjects() * ns];
    model.stage_loglikes(&cases[0].0.sequences()[0], &mut stages);
    let want: Vec<Vec<f64>> =
        serde_json::from_value(json["log_stage_likelihood_case0_first5"].clone()).unwrap();
    for (m, row) in want.iter().enumerate() {
        for (k, w) in row.iter().enumerate() {
            let got = stages[m * ns + k] + model.subject_offsets()[m];
            assert!(
                (got - w).abs() < 1e-9 * w.abs().max(1.0),
                "subject {m} stage {k}: {got} vs {w}"
            );
        }
    }
}

#[test]
fn mixture_loglikes_match_the_reference() {
    let Some(dir) = shared("golden_mixture") else {
        return;
    };
    let model = event_based(
        table(dir.join("p_yes.csv")).view(),
        table(dir.join("p_no.csv")).view(),
    )
    .unwrap();
    check(&model, &dir);
}

fn score_vals(dir: &std::path::Path) -> Vec<Vec<f64>> {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    serde_json::from_value(json["score_vals"].clone()).unwrap()
}

#[test]
fn ordinal_loglikes_match_the_reference_from_probabilities_and_from_scores() {
    let Some(dir) = shared("golden_ordinal") else {
        return;
    };
    let sv = score_vals(&dir);
    let p_normal = table(dir.join("p_normal.csv"));
    let p_score: Vec<Array2<f64>> = (1..=3)
        .map(|z| table(dir.join(format!("p_score{z}.csv"))))
        .collect();
    let views: Vec<_> = p_score.iter().map(|t| t.view()).collect();
    let model = ordinal(&sv, p_normal.view(), &views).unwrap();
    check(&model, &dir);
    // The same probabilities from the raw scores and p_correct.
    let (nl, per_level) =
        score_probabilities(&sv, table(dir.join("scores.csv")).view(), 0.9).unwrap();
    for (a, b) in nl.iter().zip(p_normal.iter()) {
        assert!((a - b).abs() < 1e-15);
    }
    let views: Vec<_> = per_level.iter().map(|t| t.view()).collect();
    check(&ordinal(&sv, nl.view(), &views).unwrap(), &dir);
}

#[test]
fn bad_probabilities_name_their_row_and_column() {
    let yes = Array2::from_shape_vec((2, 2), vec![0.5, 0.5, -0.1, 0.5]).unwrap();
    let no = Array2::from_elem((2, 2), 0.5);
    let e = event_based(yes.view(), no.view()).unwrap_err().to_string();
    assert!(e.contains("row 1, column 0"), "{e}");
    let zero = Array2::from_elem((2, 2), 0.0);
    let e = event_based(zero.view(), zero.view())
        .unwrap_err()
        .to_string();
    assert!(e.contains("both 0"), "{e}");
    let nan_one = Array2::from_shape_vec((2, 2), vec![0.5, f64::NAN, 0.5, 0.5]).unwrap();
    assert!(event_based(nan_one.view(), no.view()).is_err());
    // Missing in both: the same factor at every stage.
    let m = event_based(nan_one.view(), nan_one.view()).unwrap();
    let order = m.order().clone();
    let s = Sequence::new(&order, &[0, 1]).unwrap();
    let mut st = vec![0.0; 2 * 3];
    m.stage_loglikes(&s, &mut st);
    assert_eq!(st[1], st[2]);
    // Ordinal: a score outside 0..=3.
    let sv = vec![vec![1.0, 2.0, 3.0]; 2];
    let scores = Array2::from_shape_vec((1, 2), vec![1.0, 4.0]).unwrap();
    let e = score_probabilities(&sv, scores.view(), 0.9)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 0, column 1"), "{e}");
}
