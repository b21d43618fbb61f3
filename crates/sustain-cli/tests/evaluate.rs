//! End-to-end tests of `sustain evaluate`, running the binary: the golden cases of
//! the reference implementation (`../shared/data/golden`, skipped with a notice when
//! absent), the bundled small example, and every kind of bad input (exit status 2,
//! one line on stderr, no panic).

mod common;
use common::{read_json, s, small_dir, stdout_json, sustain, user_error, write};

use std::path::{Path, PathBuf};
use std::process::Output;

fn golden_dir() -> Option<PathBuf> {
    sustain_testkit::shared_data("golden", "golden_likelihood.json", "golden evaluate tests")
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn golden_cases_match_the_reference_loglike() {
    let Some(dir) = golden_dir() else { return };
    let golden = read_json(dir.join("golden_likelihood.json"));
    let tmp = tempfile::tempdir().unwrap();
    // The golden file is itself a valid model file: it has "biomarkers", "z_vals",
    // "z_max", and its other keys are ignored.
    let model = dir.join("golden_likelihood.json");
    let cases = golden["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for (i, case) in cases.iter().enumerate() {
        let seq = serde_json::json!({"sequences": case["sequences"], "f": case["f"]});
        let seq_path = write(tmp.path(), &format!("s{i}.json"), &seq.to_string());
        let data = dir.join(format!("data_{}.csv", case["data"].as_str().unwrap()));
        let out = evaluate_with(&data, &model, &seq_path, &["--missing", "reference"]);
        let json = stdout_json(&out);
        let expect = case["loglike"].as_f64().unwrap();
        let got = json["loglike"].as_f64().unwrap();
        assert!(rel(got, expect) < 1e-9, "case {i}: {got} vs {expect}");
        let per: Vec<f64> = serde_json::from_value(json["per_subject"].clone()).unwrap();
        let per_ref: Vec<f64> =
            serde_json::from_value(case["log_total_prob_subj"].clone()).unwrap();
        assert_eq!(per.len(), per_ref.len());
        for (m, (a, b)) in per.iter().zip(&per_ref).enumerate() {
            assert!(rel(*a, *b) < 1e-9, "case {i}, subject {m}: {a} vs {b}");
        }
        assert_eq!(json["missing"], "reference");

        // Complete data: both conventions agree. Missing data: marginalise is higher
        // (the reference's per-missing-value constants are negative here).
        let out = evaluate(&data, &model, &seq_path);
        let marg = stdout_json(&out)["loglike"].as_f64().unwrap();
        if case["data"] == "complete" {
            assert!(rel(marg, expect) < 1e-9, "case {i}: {marg} vs {expect}");
        } else {
            assert!(marg > expect, "case {i}: {marg} vs {expect}");
        }
    }
}

#[test]
fn small_example_evaluates() {
    let dir = small_dir();
    let (data, model) = (dir.join("data.csv"), dir.join("model.json"));
    let args = |missing: &'static str| {
        let extra = [
            "--id-column",
            "id",
            "--missing",
            missing,
            "--backend",
            "cpu",
        ];
        evaluate_with(&data, &model, &dir.join("sequences.json"), &extra)
    };
    let json = stdout_json(&args("marginalise"));
    let ll = json["loglike"].as_f64().unwrap();
    let per: Vec<f64> = serde_json::from_value(json["per_subject"].clone()).unwrap();
    let ids: Vec<String> = serde_json::from_value(json["ids"].clone()).unwrap();
    assert_eq!(per.len(), 200);
    assert_eq!(ids.len(), 200);
    assert_eq!(ids[0], "s001");
    assert!(ll.is_finite() && ll < 0.0);
    assert!(per.iter().all(|v| v.is_finite() && *v < 0.0));
    assert!(rel(per.iter().sum::<f64>(), ll) < 1e-12);
    assert_eq!(json["missing"], "marginalise");
    assert_eq!(json["backend"], "cpu");

    // The reference convention adds a negative constant per missing value: z_max is
    // at least 4, so -0.5 ln(2 pi) - 0.5 ln(1/z_max)^2 < 0.
    let refc = stdout_json(&args("reference"))["loglike"].as_f64().unwrap();
    assert!(refc < ll, "{refc} vs {ll}");

    // The true sequences explain the data better than a scrambled pair.
    let tmp = tempfile::tempdir().unwrap();
    let other = write(
        tmp.path(),
        "other.json",
        r#"{"sequences": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 2, 1, 0, 7, 6, 5, 4, 10, 9, 8]], "f": [0.5, 0.5]}"#,
    );
    let out = evaluate(&data, &model, &other);
    let worse = stdout_json(&out)["loglike"].as_f64().unwrap();
    assert!(worse < ll, "{worse} vs {ll}");
}

/// A valid model, data and sequences in `dir`, to be broken one at a time.
/// Events: 0 = (a, 1), 1 = (b, 1), 2 = (a, 2).
fn valid_inputs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let model = write(
        dir,
        "model.json",
        r#"{"biomarkers": ["a", "b"], "z_vals": [[1, 2], [1, 0]], "z_max": [5, 4]}"#,
    );
    let data = write(dir, "data.csv", "id,a,b\ns1,0.5,1.0\ns2,2.5,\ns3,NA,3\n");
    let seq = write(dir, "sequences.json", r#"{"sequences": [[1, 0, 2]]}"#);
    (model, data, seq)
}

fn evaluate(data: &Path, model: &Path, seq: &Path) -> Output {
    evaluate_with(data, model, seq, &[])
}

/// `sustain evaluate` of the three files, then `extra`.
fn evaluate_with(data: &Path, model: &Path, seq: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["evaluate", "--data", s(data), "--model", s(model)];
    args.extend(["--sequences", s(seq)]);
    args.extend(extra);
    sustain(&args)
}

#[test]
fn valid_inputs_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data, seq) = valid_inputs(tmp.path());
    let json = stdout_json(&evaluate(&data, &model, &seq));
    assert_eq!(json["per_subject"].as_array().unwrap().len(), 3);
    assert_eq!(json["ids"][2], "3");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (model, data, seq) = valid_inputs(dir);

    // Missing files.
    user_error(
        &evaluate(&dir.join("absent.csv"), &model, &seq),
        &["cannot read", "absent.csv"],
    );
    user_error(
        &evaluate(&data, &dir.join("absent.json"), &seq),
        &["cannot read", "absent.json"],
    );
    user_error(
        &evaluate(&data, &model, &dir.join("absent_seq.json")),
        &["cannot read", "absent_seq.json"],
    );

    // Data problems: each file and the words its one-line error must contain.
    for (name, text, needles) in [
        (
            "nonnum.csv",
            "id,a,b\ns1,0.5,1.0\ns2,abc,1\n",
            &["nonnum.csv", "row 2", "column 'a'", "'abc' is not a number"][..],
        ),
        (
            "inf.csv",
            "id,a,b\ns1,0.5,1.0\ns2,1,2\ns3,1,-inf\n",
            &["inf.csv", "row 3", "column 'b'", "infinite value"][..],
        ),
        (
            "absent_col.csv",
            "id,a,c\ns1,0.5,1.0\n",
            &["absent_col.csv", "biomarker 'b'", "not a column"][..],
        ),
        ("empty.csv", "id,a,b\n", &["empty.csv", "no data rows"][..]),
        (
            "allmissing.csv",
            "id,a,b\ns1,0.5,1.0\ns2,,NA\n",
            &["allmissing.csv", "row 2", "every biomarker is missing"][..],
        ),
        (
            "ragged.csv",
            "id,a,b\ns1,0.5,1.0\ns2,1\n",
            &["ragged.csv", "row 2", "fields"][..],
        ),
    ] {
        let bad = write(dir, name, text);
        user_error(&evaluate(&bad, &model, &seq), needles);
    }
    let out = evaluate_with(&data, &model, &seq, &["--id-column", "RID"]);
    user_error(&out, &["data.csv", "no column 'RID'"]);

    // Model problems.
    let bad = write(
        dir,
        "thresholds.json",
        r#"{"biomarkers": ["a", "b", "bm2"], "z_vals": [[1], [1], [1, 3, 2]], "z_max": [5, 5, 5]}"#,
    );
    user_error(
        &evaluate(&data, &bad, &seq),
        &[
            "thresholds.json",
            "thresholds of biomarker 2 ('bm2') are not strictly increasing: [1, 3, 2]",
        ],
    );
    let bad = write(dir, "notjson.json", "{\"biomarkers\": [\n");
    user_error(
        &evaluate(&data, &bad, &seq),
        &["notjson.json", "invalid JSON"],
    );

    // Sequence problems: the file `name` holding `text` is refused.
    let bad_sequences = |name: &str, text: &str, needles: &[&str]| {
        let bad = write(dir, name, text);
        user_error(&evaluate(&data, &model, &bad), needles);
    };
    let order = ["order.json", "sequence 2", "invalid sequence"];
    bad_sequences(
        "order.json",
        r#"{"sequences": [[1, 0, 2], [2, 1, 0]], "f": [0.5, 0.5]}"#,
        &[&order[..], &["event 2", "comes before"]].concat(),
    );
    bad_sequences(
        "fractions.json",
        r#"{"sequences": [[1, 0, 2], [0, 1, 2]], "f": [0.5, 0.6]}"#,
        &["fractions.json", "invalid fractions", "sum to"],
    );

    // Usage errors keep clap's status 2 (one line, see tests/robustness.rs).
    let out = evaluate_with(&data, &model, &seq, &["--missing", "zero"]);
    assert_eq!(out.status.code(), Some(2));
    let out = evaluate_with(&data, &model, &seq, &["--backend", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_every_option_and_default() {
    let out = sustain(&["evaluate", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--data",
        "--model",
        "--sequences",
        "--missing",
        "--id-column",
        "--backend",
        "[default: marginalise]",
        "[default: cpu]",
        "reference",
    ] {
        assert!(help.contains(word), "{word} not in help:\n{help}");
    }
}

/// Regenerates `examples/data/small/` (see its README). Ignored: run with
/// `cargo test -p sustain-cli --test evaluate -- --ignored regenerate_small_example`.
#[test]
#[ignore]
fn regenerate_small_dir() {
    use sustain_model::simulate::simulate;
    use sustain_model::{EventSet, Mixture, Sequence};

    let names = ["bm0", "bm1", "bm2", "bm3"];
    let z_vals = vec![
        vec![1.0, 2.0, 0.0],
        vec![1.0, 2.0, 3.0],
        vec![1.0, 2.0, 3.0],
        vec![1.0, 2.0, 3.0],
    ];
    let z_max = [4.0, 5.0, 5.0, 6.0];
    let events = EventSet::new(&z_vals, &z_max).unwrap();
    // Events (z-score-major): 0..=3 = bm0..bm3 at z 1; 4..=7 = bm0..bm3 at z 2;
    // 8..=10 = bm1..bm3 at z 3.
    let orders: [Vec<usize>; 2] = [
        vec![0, 1, 4, 5, 2, 8, 3, 6, 7, 9, 10],
        vec![3, 2, 7, 10, 6, 1, 9, 0, 5, 4, 8],
    ];
    let fractions = vec![0.6, 0.4];
    let sequences = orders
        .iter()
        .map(|o| Sequence::new(&events, o).unwrap())
        .collect();
    let truth = Mixture::new(sequences, fractions.clone()).unwrap();
    let spec = sustain_testkit::spec(200, 0.1, 0.1);
    let sim = simulate(&events, &truth, &spec, 20_240_601).unwrap();

    let dir = small_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Written by hand (not with `json!`) to keep the keys in reading order.
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows: Vec<String> = z_vals
        .iter()
        .map(|r| format!("    [{}]", list(r)))
        .collect();
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let model = format!(
        "{{\n  \"biomarkers\": [{}],\n  \"z_vals\": [\n{}\n  ],\n  \"z_max\": [{}]\n}}\n",
        quoted.join(", "),
        rows.join(",\n"),
        list(&z_max)
    );
    std::fs::write(dir.join("model.json"), model).unwrap();
    let seq_rows: Vec<String> = orders.iter().map(|o| format!("    {o:?}")).collect();
    let seqs = format!(
        "{{\n  \"sequences\": [\n{}\n  ],\n  \"f\": [{}]\n}}\n",
        seq_rows.join(",\n"),
        list(&fractions)
    );
    std::fs::write(dir.join("sequences.json"), seqs).unwrap();

    let mut data = format!("id,{}\n", names.join(","));
    let mut truth_csv = String::from("id,subtype,stage\n");
    let values = sim.data.values();
    for m in 0..sim.data.n_subjects() {
        let id = format!("s{:03}", m + 1);
        let cells: Vec<String> = (0..names.len())
            .map(|b| {
                let v = values[[m, b]];
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v:.4}")
                }
            })
            .collect();
        data.push_str(&format!("{id},{}\n", cells.join(",")));
        truth_csv.push_str(&format!("{id},{},{}\n", sim.subtypes[m], sim.stages[m]));
    }
    std::fs::write(dir.join("data.csv"), data).unwrap();
    std::fs::write(dir.join("truth.csv"), truth_csv).unwrap();
}
