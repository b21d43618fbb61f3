//! Golden tests of the mixed-type model against the reference (pySuStaIn
//! `MixedTypeSustain`): `tests/data/mixed_golden/cases.json`, made by the
//! `make_golden.py` beside it. Ordinal probabilities come from the raw scores with
//! `MixedModel::from_scores` (the script checks they are the reference's).

use ndarray::Array2;
use serde_json::Value;
use sustain_model::*;

fn matrix(v: &Value) -> Option<Array2<f64>> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    let (n, b) = (rows.len(), rows.first()?.len());
    Some(Array2::from_shape_vec((n, b), rows.into_iter().flatten().collect()).unwrap())
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// The cohort's model, as the reference builds it from the same inputs.
fn model(c: &Value) -> MixedModel {
    let (z_vals, score_vals) = (rows(&c["z_vals"]), rows(&c["score_vals"]));
    let z_max: Vec<f64> = serde_json::from_value(c["z_max"].clone()).unwrap();
    let z = matrix(&c["zscores"]);
    let scores = matrix(&c["scores"]);
    let p_correct = vec![c["p_correct"].as_f64().unwrap(); score_vals.len()];
    let (yes, no) = (matrix(&c["p_event"]), matrix(&c["p_no_event"]));
    MixedModel::from_scores(
        z.as_ref().map(|z| ZscorePart {
            data: z.view(),
            z_vals: &z_vals,
            z_max: &z_max,
        }),
        scores.as_ref().map(|s| OrdinalScores {
            score_vals: &score_vals,
            scores: s.view(),
            p_correct: &p_correct,
        }),
        yes.as_ref().zip(no.as_ref()).map(|(y, n)| EventPart {
            p_event: y.view(),
            p_no_event: n.view(),
        }),
    )
    .unwrap()
}

#[test]
fn mixed_loglikes_match_the_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mixed_golden/cases.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cohorts = json["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 4);
    for c in cohorts {
        let name = c["name"].as_str().unwrap();
        let model = model(c);
        let order = model.order().clone();
        assert_eq!(
            order.n_events() as u64,
            c["n_events"].as_u64().unwrap(),
            "{name}"
        );
        for (i, e) in c["evaluations"].as_array().unwrap().iter().enumerate() {
            let sequences: Vec<Sequence> = rows(&e["sequences"])
                .iter()
                .map(|s| {
                    let o: Vec<usize> = s.iter().map(|&v| v as usize).collect();
                    Sequence::new(&order, &o).unwrap()
                })
                .collect();
            let f: Vec<f64> = serde_json::from_value(e["f"].clone()).unwrap();
            let mixture = Mixture::new(sequences, f).unwrap();
            let want = e["loglike"].as_f64().unwrap();
            let got = SustainModel::loglike(&model, &mixture);
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "{name} evaluation {i}: {got} vs the reference's {want}"
            );
            let Some(first5) = e.get("log_stage_likelihood_first5") else {
                continue;
            };
            let ns = order.n_stages();
            let mut stages = vec![0.0; model.n_subjects() * ns];
            model.stage_loglikes(&mixture.sequences()[0], &mut stages);
            for (m, row) in rows(first5).iter().enumerate() {
                for (k, w) in row.iter().enumerate() {
                    let got = stages[m * ns + k] + model.subject_offsets()[m];
                    assert!(
                        (got - w).abs() < 1e-9 * w.abs().max(1.0),
                        "{name} subject {m} stage {k}: {got} vs {w}"
                    );
                }
            }
        }
    }
}
