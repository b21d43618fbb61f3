//! `sustain evaluate` on the mixture and ordinal model families: the reference's
//! log-likelihoods from model.json in each format (`../shared/data/golden_mixture`,
//! `golden_ordinal`; skipped with a notice when absent), and bad inputs refused in
//! one line naming file, row and column.

mod common;

use common::{assert_loglike, ok, read_json, s, stdout_json, sustain, user_error, write};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `../shared/data/<name>`, or `None` with a notice that its golden tests are skipped.
fn shared(name: &str) -> Option<PathBuf> {
    sustain_testkit::shared_data(name, "cases.json", "its golden tests")
}

/// `sustain evaluate --model MODEL --sequences SEQ --id-column id EXTRA`.
fn evaluate(model: &Path, seq: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["evaluate", "--model", s(model), "--sequences", s(seq)];
    args.extend(["--id-column", "id"]);
    args.extend_from_slice(extra);
    sustain(&args)
}

/// Every case of `dir/cases.json` through `sustain evaluate --model MODEL extra`.
fn check_cases(dir: &Path, model: &Path, extra: &[&str]) {
    let cases = read_json(dir.join("cases.json"));
    let tmp = tempfile::tempdir().unwrap();
    for (i, case) in cases["cases"].as_array().unwrap().iter().enumerate() {
        let seq = write(
            tmp.path(),
            &format!("case{i}.json"),
            &serde_json::json!({"sequences": case["sequences"], "f": case["f"]}).to_string(),
        );
        let out = stdout_json(&evaluate(model, &seq, extra));
        assert_loglike(
            &out,
            case["loglike"].as_f64().unwrap(),
            &format!("case {i}"),
        );
    }
}

#[test]
fn mixture_model_json_gives_the_reference_loglikes() {
    let Some(dir) = shared("golden_mixture") else {
        return;
    };
    check_cases(&dir, &dir.join("model.json"), &[]);
}

#[test]
fn ordinal_model_json_gives_the_reference_loglikes_both_ways() {
    let Some(dir) = shared("golden_ordinal") else {
        return;
    };
    let scores = dir.join("scores.csv");
    check_cases(&dir, &dir.join("model.json"), &["--data", s(&scores)]);
    check_cases(&dir, &dir.join("model_probabilities.json"), &[]);
}

/// A small mixture model in `dir`: two subjects, two biomarkers.
fn mixture(dir: &Path, yes: &str, no: &str) -> PathBuf {
    write(dir, "yes.csv", yes);
    write(dir, "no.csv", no);
    write(
        dir,
        "model.json",
        r#"{"model": "mixture", "biomarkers": ["a", "b"], "p_event": "yes.csv", "p_no_event": "no.csv"}"#,
    )
}

#[test]
fn bad_mixture_and_family_inputs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let seq = write(d, "seq.json", r#"{"sequences": [[1, 0]]}"#);
    let good = "id,a,b\n1,0.5,0.2\n2,0.1,0.3\n";
    let run = |model: &Path| evaluate(model, &seq, &[]);
    // A negative likelihood: file, 1-based row and column.
    let m = mixture(d, "id,a,b\n1,0.5,0.2\n2,-0.1,0.3\n", good);
    user_error(
        &run(&m),
        &["yes.csv", "row 2", "column 'a'", "not negative"],
    );
    // Zero in both.
    let m = mixture(
        d,
        "id,a,b\n1,0,0.2\n2,0.1,0.3\n",
        "id,a,b\n1,0,0.2\n2,0.1,0.3\n",
    );
    user_error(&run(&m), &["yes.csv", "row 1", "column 'a'", "both 0"]);
    // Mismatched ids.
    let m = mixture(d, good, "id,a,b\n1,0.5,0.2\n3,0.1,0.3\n");
    user_error(&run(&m), &["no.csv", "row 2", "id '3'"]);
    // Unknown family.
    let bad = write(
        d,
        "bad.json",
        r#"{"model": "gaussian", "biomarkers": ["a"]}"#,
    );
    user_error(
        &run(&bad),
        &["bad.json", "unknown model family \"gaussian\""],
    );
    // A good one runs.
    let m = mixture(d, good, good);
    let out = stdout_json(&run(&m));
    // p_event = p_no_event: every stage equally likely, so log p(x) = sum log p.
    let want = (0.5f64 * 0.2).ln() + (0.1f64 * 0.3).ln();
    assert!((out["loglike"].as_f64().unwrap() - want).abs() < 1e-12);
    // Ordinal: a score outside 0..=3 in --data.
    write(d, "scores.csv", "id,a,b\n1,0,1\n2,4,0\n");
    let o = write(
        d,
        "ord.json",
        r#"{"model": "ordinal", "biomarkers": ["a", "b"], "score_vals": [[1, 2, 3], [1, 2, 3]], "p_correct": 0.9}"#,
    );
    let seq6 = write(d, "seq6.json", r#"{"sequences": [[0, 1, 2, 3, 4, 5]]}"#);
    let out = sustain(&[
        "evaluate",
        "--model",
        s(&o),
        "--sequences",
        s(&seq6),
        "--id-column",
        "id",
        "--data",
        s(&d.join("scores.csv")),
    ]);
    user_error(&out, &["scores.csv", "row 2", "column 'a'", "whole number"]);
}

/// [`fit`] into the folder "fit" of a new temporary folder: (the temporary
/// folder, the output folder, results.json).
fn fit_in_temp(model: &Path, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit");
    let r = fit(model, extra, &out);
    (tmp, out, r)
}

/// `sustain fit --model M extra --out DIR` with small settings; results.json.
fn fit(model: &Path, extra: &[&str], out: &Path) -> Value {
    let mut args = vec![
        "fit",
        "--model",
        s(model),
        "--id-column",
        "id",
        "--startpoints",
        "10",
        "--iterations",
        "2000",
        "--tuning-iterations",
        "500",
        "--chains",
        "2",
        "--seed",
        "3",
        "--quiet",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&sustain(&args));
    common::results_with_samples(out)
}

fn truth(dir: &Path) -> Vec<Vec<usize>> {
    let t = read_json(dir.join("truth_sequences.json"));
    serde_json::from_value(t["sequences"].clone()).unwrap()
}

#[test]
fn mixture_fit_recovers_the_simulated_sequences_and_writes_every_output() {
    let Some(dir) = shared("golden_mixture") else {
        return;
    };
    let (tmp, out, r) = fit_in_temp(&dir.join("model.json"), &["--subtypes", "3"]);
    assert_eq!(r["model"]["family"], "mixture");
    let ml: Vec<Vec<usize>> =
        serde_json::from_value(r["models"][2]["ml_sequences"].clone()).unwrap();
    for t in truth(&dir) {
        assert!(ml.contains(&t), "{t:?} not among {ml:?}");
    }
    for k in 1..=3 {
        for f in [
            format!("subjects_k{k}.csv"),
            format!("pvd_k{k}.png"),
            format!("trace_k{k}.svg"),
        ] {
            assert!(out.join(&f).is_file(), "{f}");
        }
    }
    // `stage` needs the new subjects' model.json, and staging the fit's own
    // subjects gives the fit's subjects table.
    let staged = sustain(&[
        "stage",
        "--fit",
        s(&out),
        "--data",
        s(&dir.join("p_yes.csv")),
        "--out",
        s(&tmp.path().join("x.csv")),
    ]);
    user_error(&staged, &["mixture", "--model"]);
    let restaged = tmp.path().join("restaged.csv");
    ok(&sustain(&[
        "stage",
        "--fit",
        s(&out),
        "--model",
        s(&dir.join("model.json")),
        "--id-column",
        "id",
        "--out",
        s(&restaged),
    ]));
    assert_eq!(
        std::fs::read_to_string(&restaged).unwrap(),
        std::fs::read_to_string(out.join("subjects_k3.csv")).unwrap()
    );
    // A model.json of other events is refused in one line naming it.
    let ordinal_model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data/ordinal/model.json");
    let wrong = sustain(&[
        "stage",
        "--fit",
        s(&out),
        "--model",
        s(&ordinal_model),
        "--data",
        s(&ordinal_model.with_file_name("scores.csv")),
        "--id-column",
        "id",
        "--out",
        s(&tmp.path().join("y.csv")),
    ]);
    user_error(&wrong, &["model.json", "is not the model of the fit"]);
    // The same seed gives the same models.
    let again = fit(
        &dir.join("model.json"),
        &["--subtypes", "3"],
        &tmp.path().join("again"),
    );
    for k in 0..3 {
        assert_eq!(
            r["models"][k]["ml_sequences"],
            again["models"][k]["ml_sequences"]
        );
        // The samples (not their wall times).
        for c in 0..2 {
            let trace = |v: &Value| v["models"][k]["samples"]["chains"][c]["trace"].clone();
            assert_eq!(trace(&r), trace(&again));
        }
    }
}

#[test]
fn ordinal_fit_runs_from_raw_scores_and_recovers_the_simulated_sequences() {
    let Some(dir) = shared("golden_ordinal") else {
        return;
    };
    let scores = dir.join("scores.csv");
    let extra = ["--subtypes", "3", "--data", s(&scores)];
    let (_tmp, out, r) = fit_in_temp(&dir.join("model.json"), &extra);
    assert_eq!(r["model"]["family"], "ordinal");
    assert_eq!(r["events"].as_array().unwrap().len(), 15);
    assert!(out.join("pvd_k3.png").is_file());
    // Each simulated sequence is close to one fitted: Kendall distance below a tenth
    // of the pairs (p_correct 0.9 blurs the scores).
    let ml: Vec<Vec<usize>> =
        serde_json::from_value(r["models"][2]["ml_sequences"].clone()).unwrap();
    let truth = truth(&dir);
    let pos = |s: &[usize]| {
        let mut p = vec![0; s.len()];
        for (i, &e) in s.iter().enumerate() {
            p[e] = i;
        }
        p
    };
    let discordant = |a: &[usize], b: &[usize]| {
        let (pa, pb) = (pos(a), pos(b));
        let n = a.len();
        (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .filter(|&(i, j)| (pa[i] < pa[j]) != (pb[i] < pb[j]))
            .count()
    };
    let pairs = 15 * 14 / 2;
    for t in &truth {
        let best = ml.iter().map(|m| discordant(t, m)).min().unwrap();
        assert!(best * 10 < pairs, "{best} of {pairs} pairs discordant");
    }
}

/// `sustain demo --model mixture|ordinal` fits the bundled examples (no
/// `../shared` needed) and writes every output.
#[test]
fn mixture_and_ordinal_demos_run_on_the_bundled_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for (family, input) in [
        ("mixture", "input/p_yes.csv"),
        ("ordinal", "input/scores.csv"),
    ] {
        let out = tmp.path().join(family);
        let demo = ["demo", "--quiet", "--model", family, "--out", s(&out)];
        let stdout = ok(&sustain(&demo));
        assert!(stdout.contains("pvd_k3.png"), "{stdout}");
        for f in [
            input,
            "input/model.json",
            "results.json",
            "subjects_k3.csv",
            "pvd_k3.png",
            "trace_k3.svg",
        ] {
            assert!(out.join(f).is_file(), "{family}: {f} missing");
        }
        let r = read_json(out.join("results.json"));
        assert_eq!(r["model"]["family"], family);
        // `plot` redraws the figures of this family byte for byte.
        let drawn: Vec<(String, Vec<u8>)> = ["pvd_k2.svg", "pvd_k3.png", "trace_k1.svg"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
            .collect();
        for (f, _) in &drawn {
            std::fs::remove_file(out.join(f)).unwrap();
        }
        ok(&sustain(&["plot", "--fit", s(&out)]));
        for (f, bytes) in &drawn {
            assert!(
                std::fs::read(out.join(f)).unwrap() == *bytes,
                "{family}: {f} differs"
            );
        }
        // Rerunning in the folder of an earlier demo fits it anew.
        ok(&sustain(&demo));
    }
}
