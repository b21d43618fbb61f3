//! The mixed-type family (`"model": "mixed"`): `sustain evaluate` gives the
//! reference's log-likelihoods (the cohorts of
//! `crates/sustain-model/tests/data/mixed_golden`, written out as model.json,
//! data and likelihood CSVs); `fit`, `stage`, `plot` and `report` work on it; bad inputs are
//! refused in one line naming file, row and column.

mod common;

use common::{
    assert_loglike, ok, quick_fit, read_json, results_without_timing, s, stderr, stdout_json,
    sustain, user_error, with_column, write,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn cohorts() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sustain-model/tests/data/mixed_golden/cases.json"
    );
    let json = read_json(path);
    json["cohorts"].as_array().unwrap().clone()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// A CSV: id column `s1, s2, ...`, then `names` with the values of `columns`
/// (blocks of subjects x columns, side by side).
fn csv(names: &[String], columns: &[Vec<Vec<f64>>]) -> String {
    let n = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut text = format!("id,{}\n", names.join(","));
    for m in 0..n {
        let cells: Vec<String> = columns
            .iter()
            .flat_map(|block| block[m].iter().map(|v| v.to_string()))
            .collect();
        text.push_str(&format!("s{},{}\n", m + 1, cells.join(",")));
    }
    text
}

/// Writes the cohort's model.json (every biomarker named by type and index), data
/// and likelihood CSVs into `dir`; returns (model.json, data.csv).
fn write_cohort(dir: &Path, c: &Value) -> (PathBuf, PathBuf) {
    let (z_vals, score_vals) = (rows(&c["z_vals"]), rows(&c["score_vals"]));
    let z_max: Vec<f64> = serde_json::from_value(c["z_max"].clone()).unwrap();
    let n_event = c["n_event"].as_u64().unwrap() as usize;
    let mut biomarkers = Vec::new();
    let mut names = Vec::new();
    for (b, (v, m)) in z_vals.iter().zip(&z_max).enumerate() {
        names.push(format!("z{b}"));
        biomarkers
            .push(json!({"name": format!("z{b}"), "type": "zscore", "z_vals": v, "z_max": m}));
    }
    for (b, v) in score_vals.iter().enumerate() {
        names.push(format!("o{b}"));
        biomarkers.push(json!({"name": format!("o{b}"), "type": "ordinal", "score_vals": v}));
    }
    for b in 0..n_event {
        names.push(format!("e{b}"));
        biomarkers.push(json!({"name": format!("e{b}"), "type": "event"}));
    }
    let mut model =
        json!({"model": "mixed", "biomarkers": biomarkers, "p_correct": c["p_correct"]});
    let n_data = z_vals.len() + score_vals.len();
    let data = write(
        dir,
        "data.csv",
        &csv(
            &names[..n_data],
            &[rows(&c["zscores"]), rows(&c["scores"])]
                .into_iter()
                .filter(|b| !b.is_empty())
                .collect::<Vec<_>>(),
        ),
    );
    if n_event > 0 {
        for (key, file) in [("p_event", "p_event.csv"), ("p_no_event", "p_no_event.csv")] {
            write(dir, file, &csv(&names[n_data..], &[rows(&c[key])]));
            model[key] = json!(file);
        }
    }
    (write(dir, "model.json", &model.to_string()), data)
}

/// The first golden cohort written into `dir` with its first evaluation's
/// sequences: (cohort, model.json, data.csv, sequences.json).
fn first_cohort(dir: &Path) -> (Value, PathBuf, PathBuf, PathBuf) {
    let c = cohorts().swap_remove(0);
    let (model, data) = write_cohort(dir, &c);
    let e = &c["evaluations"][0];
    let seq = write(
        dir,
        "seq.json",
        &json!({"sequences": e["sequences"], "f": e["f"]}).to_string(),
    );
    (c, model, data, seq)
}

/// `sustain evaluate` of `model` on `data` with `extra` arguments.
fn evaluate_with(model: &Path, data: &Path, seq: &Path, extra: &[&str]) -> std::process::Output {
    let args = [
        "evaluate",
        "--model",
        s(model),
        "--data",
        s(data),
        "--sequences",
        s(seq),
        "--id-column",
        "id",
    ];
    sustain(&[&args[..], extra].concat())
}

fn evaluate(model: &Path, data: &Path, seq: &Path) -> std::process::Output {
    evaluate_with(model, data, seq, &[])
}

#[test]
fn evaluate_gives_the_reference_loglikes() {
    for c in cohorts() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, data) = write_cohort(tmp.path(), &c);
        for (i, e) in c["evaluations"].as_array().unwrap().iter().enumerate() {
            let seq = write(
                tmp.path(),
                &format!("seq{i}.json"),
                &json!({"sequences": e["sequences"], "f": e["f"]}).to_string(),
            );
            let out = stdout_json(&evaluate(&model, &data, &seq));
            let name = c["name"].as_str().unwrap();
            assert_loglike(&out, e["loglike"].as_f64().unwrap(), &format!("{name} {i}"));
        }
    }
}

/// The GPU backend falls back to the CPU with one line: the GPU does not evaluate
/// mixed-type models (or, without the `gpu` feature or an adapter, there is none);
/// under --require-gpu that is an error.
#[test]
fn gpu_backend_falls_back_to_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, model, data, seq) = first_cohort(tmp.path());
    let out = evaluate_with(&model, &data, &seq, &["--backend", "gpu"]);
    let text = ok(&out);
    let err = stderr(&out);
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    if cfg!(feature = "gpu") {
        assert!(
            line == "the GPU backend does not evaluate mixed models; running on the CPU"
                || line.starts_with("no GPU adapter found ("),
            "{err}"
        );
    } else {
        assert_eq!(
            line,
            "this build has no GPU support (feature gpu); running on the CPU"
        );
    }
    let required = evaluate_with(&model, &data, &seq, &["--backend", "gpu", "--require-gpu"]);
    user_error(&required, &["GPU"]);
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["backend"], "cpu");
    // Missing z-scores are marginalised whatever --missing says, and the output says so.
    let out = evaluate_with(&model, &data, &seq, &["--missing", "reference"]);
    let got = stdout_json(&out);
    assert_eq!(got["missing"], "marginalise");
}

/// fit writes results, subjects and figures; stage with the same files stages the
/// subjects as the fit did; plot redraws the same figures.
#[test]
fn fit_stage_and_plot() {
    let c = &cohorts()[0];
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = write_cohort(tmp.path(), c);
    let out = tmp.path().join("fit");
    let inputs = [
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--id-column",
        "id",
    ];
    ok(&quick_fit(&inputs, "2", &out, &[]));
    let results = read_json(out.join("results.json"));
    assert_eq!(results["model"]["family"], "mixed");
    assert_eq!(results["model"]["n_event"], 3);
    assert_eq!(results["events"].as_array().unwrap().len(), 18);
    assert_eq!(results["biomarkers"][3], "o0");
    for f in [
        "subjects_k1.csv",
        "subjects_k2.csv",
        "pvd_k2.svg",
        "pvd_k2.png",
        "trace_k2.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let svg = std::fs::read_to_string(out.join("pvd_k2.svg")).unwrap();
    assert!(svg.contains("z = 1; score = 1; event"), "legend of level 1");
    let staged = tmp.path().join("staged.csv");
    ok(&sustain(
        &[
            &["stage", "--fit", s(&out)],
            &inputs[..],
            &["--out", s(&staged)],
        ]
        .concat(),
    ));
    assert_eq!(
        std::fs::read_to_string(&staged).unwrap(),
        std::fs::read_to_string(out.join("subjects_k2.csv")).unwrap()
    );
    // The report names the family and each biomarker's kind of values.
    let html = tmp.path().join("report.html");
    ok(&sustain(&["report", s(&out), "--out", s(&html)]));
    let text = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "mixed-type model",
        "z = 1, z = 2, z = 3",
        "score = 1, score = 2, score = 3",
    ] {
        assert!(text.contains(needle), "{needle} not in the report");
    }
    let before = std::fs::read(out.join("pvd_k2.svg")).unwrap();
    ok(&sustain(&["plot", "--fit", s(&out)]));
    assert_eq!(std::fs::read(out.join("pvd_k2.svg")).unwrap(), before);
    // Another model's files do not stage under this fit.
    let other = tempfile::tempdir().unwrap();
    let (model2, data2) = write_cohort(other.path(), &cohorts()[1]);
    user_error(
        &sustain(&[
            "stage",
            "--fit",
            s(&out),
            "--model",
            s(&model2),
            "--data",
            s(&data2),
            "--id-column",
            "id",
            "--out",
            s(&other.path().join("x.csv")),
        ]),
        &["is not the model of the fit"],
    );
}

/// One-line errors naming file, row and column; nothing is written.
#[test]
fn bad_inputs_name_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, model, data, seq) = first_cohort(tmp.path());
    let text = std::fs::read_to_string(&data).unwrap();
    let edit = |line: usize, col: usize, value: &str| {
        let mut lines: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        lines[line][col] = value.to_string();
        lines
            .iter()
            .map(|l| l.join(","))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    // A score outside the biomarker's scores (row 2 of data, column o1).
    let bad = write(tmp.path(), "bad_scores.csv", &edit(2, 5, "4"));
    let err = user_error(
        &evaluate(&model, &bad, &seq),
        &["bad_scores.csv", "row 2", "'o1'"],
    );
    assert!(err.contains("score"), "{err}");
    // A negative event likelihood.
    let p = tmp.path().join("p_event.csv");
    let yes = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = yes.lines().map(String::from).collect();
    lines[3] = format!("s3,-0.5,{}", lines[3].splitn(3, ',').nth(2).unwrap());
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    user_error(
        &evaluate(&model, &data, &seq),
        &["p_event.csv", "row 3", "'e0'"],
    );
    std::fs::write(&p, yes).unwrap();
    // Biomarkers out of the reference's order, an unknown type.
    let json_text = std::fs::read_to_string(&model).unwrap();
    let mut m: Value = serde_json::from_str(&json_text).unwrap();
    m["biomarkers"].as_array_mut().unwrap().swap(0, 3);
    let swapped = write(tmp.path(), "swapped.json", &m.to_string());
    user_error(
        &evaluate(&swapped, &data, &seq),
        &[
            "swapped.json",
            "'z1' (zscore) comes after 'o0' (ordinal)",
            "z-score biomarkers first",
        ],
    );
    m["biomarkers"][0]["type"] = json!("ranked");
    let unknown = write(tmp.path(), "unknown.json", &m.to_string());
    user_error(
        &evaluate(&unknown, &data, &seq),
        &["unknown.json", "ranked"],
    );
    // A fit on bad data writes nothing.
    let out = tmp.path().join("fit");
    let inputs = ["--model", s(&model), "--data", s(&bad), "--id-column", "id"];
    user_error(
        &quick_fit(&inputs, "1", &out, &[]),
        &["bad_scores.csv", "row 2"],
    );
    assert!(!out.join("results.json").exists());
}

/// The settings of the mixed-type cv and fit tests: `model` on `data`, 2 subtypes,
/// short chains.
fn job_settings<'a>(model: &'a Path, data: &'a Path) -> Vec<&'a str> {
    vec![
        "--model",
        s(model),
        "--data",
        s(data),
        "--id-column",
        "id",
        "--subtypes",
        "2",
        "--iterations",
        "1000",
        "--tuning-iterations",
        "300",
        "--startpoints",
        "2",
        "--chains",
        "2",
        "--no-report",
    ]
}

/// The cv.json of the cv folder `out`.
fn cv_json(out: &Path) -> Value {
    read_json(out.join("cv.json"))
}

#[test]
fn cross_validation_and_chain_shards() {
    let c = &cohorts()[0];
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = write_cohort(tmp.path(), c);
    let settings = job_settings(&model, &data);
    let cv = tmp.path().join("cv");
    ok(&sustain(
        &[&["cv", "--folds", "2", "--out", s(&cv)], &settings[..]].concat(),
    ));
    let json = cv_json(&cv);
    assert_eq!(json["cvic"].as_array().unwrap().len(), 2);
    let single = tmp.path().join("single");
    let sharded = tmp.path().join("sharded");
    ok(&sustain(
        &[&["fit", "--out", s(&single)], &settings[..]].concat(),
    ));
    for i in ["0/2", "1/2"] {
        ok(&sustain(
            &[
                &["fit", "--chain-shard", i, "--out", s(&sharded)],
                &settings[..],
            ]
            .concat(),
        ));
    }
    ok(&sustain(&["merge", "--no-report", "--out", s(&sharded)]));
    assert_eq!(
        results_without_timing(&single),
        results_without_timing(&sharded)
    );
}

/// Folds from a column of the data CSV (beside the z-scores and scores), stratified
/// by one, and each subtype count of a fold as a job of its own.
#[test]
fn cross_validation_folds_from_a_data_column_and_by_subtype_count() {
    let c = &cohorts()[0];
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = write_cohort(tmp.path(), c);
    // Fold labels "b" and "a" (text order: folds 0 = a, 1 = b), one per subject.
    let site = |m: usize| if m % 4 == 1 { "a" } else { "b" };
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, with_column(&text, "site", |m| site(m).into())).unwrap();
    let n = text.lines().count() - 1;
    let settings = job_settings(&model, &data);
    let run = |out: &Path, extra: &[&str]| {
        sustain(&[&["cv", "--out", s(out)], extra, &settings[..]].concat())
    };
    let whole = tmp.path().join("whole");
    ok(&run(&whole, &["--fold-column", "site"]));
    for (i, label) in ["a", "b"].iter().enumerate() {
        let fold = read_json(whole.join(format!("fold_{i}.json")));
        let want: Vec<usize> = (0..n).filter(|&m| site(m) == *label).collect();
        let got: Vec<usize> = serde_json::from_value(fold["test"].clone()).unwrap();
        assert_eq!(got, want, "fold {i} holds the subjects labelled {label}");
    }
    let parts = tmp.path().join("parts");
    for i in ["0", "1"] {
        for k in ["1", "2"] {
            ok(&run(
                &parts,
                &["--fold-column", "site", "--fold", i, "--subtype-count", k],
            ));
        }
    }
    ok(&sustain(&["cv-combine", "--no-report", "--out", s(&parts)]));
    assert_eq!(cv_json(&parts), cv_json(&whole));
    // Stratified: each label's subjects spread evenly over the folds.
    let strat = tmp.path().join("strat");
    ok(&run(&strat, &["--folds", "2", "--stratify-by", "site"]));
    for i in 0..2 {
        let fold = read_json(strat.join(format!("fold_{i}.json")));
        let test: Vec<usize> = serde_json::from_value(fold["test"].clone()).unwrap();
        let a = test.iter().filter(|&&m| site(m) == "a").count();
        assert_eq!(a, 5, "fold {i}: half of the 10 subjects labelled a");
    }
    user_error(
        &run(&tmp.path().join("bad"), &["--fold-column", "nope"]),
        &["data.csv", "'nope'"],
    );
}
