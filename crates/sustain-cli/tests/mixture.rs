//! `sustain mixture`: the fitted mixtures and likelihoods against the reference
//! (kde_ebm's `fit_all_gmm_models` and `fit_all_kde_models`, goldens in tests/data/mixture_golden made by its
//! make_golden.py), the model it writes read by `sustain evaluate`, and its bad
//! inputs and overwrite rules.
//!
//! GMM tolerance: kde_ebm maximises with SLSQP, which stops when the objective (a
//! negative log-likelihood of ~100 over ~130 values) changes by less than 1e-6;
//! with its curvature (~n / sd^2 ~ 2000 per unit of a mean) that leaves the
//! parameters uncertain by ~sqrt(2e-6 / 2000) ~ 3e-5. We require each parameter
//! within PARAM_TOL = 2e-4 of the reference's, our objective no worse than the
//! reference's + 1e-6 (its own stopping tolerance), and each log-likelihood within
//! what those parameter differences can move it (first order, with a margin).

mod common;

use std::collections::HashMap;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use common::{ok, read_json, s, stdout_json, sustain, user_error, write};

const PARAM_TOL: f64 = 2e-4;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mixture_golden")
        .join(name)
}

/// A CSV as (header, rows of text).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Numbers of a CSV without its first column (NaN for empty cells).
fn numbers(path: &Path) -> Vec<Vec<f64>> {
    sustain_testkit::read_rows_from(path, 1)
}

#[derive(Debug, Clone, Copy)]
struct Params {
    control_mean: f64,
    control_sd: f64,
    patient_mean: f64,
    patient_sd: f64,
    control_fraction: f64,
    neg_log_likelihood: f64,
}

const KEYS: [&str; 6] = [
    "control_mean",
    "control_sd",
    "patient_mean",
    "patient_sd",
    "control_fraction",
    "neg_log_likelihood",
];

fn params(v: [f64; 6]) -> Params {
    Params {
        control_mean: v[0],
        control_sd: v[1],
        patient_mean: v[2],
        patient_sd: v[3],
        control_fraction: v[4],
        neg_log_likelihood: v[5],
    }
}

/// The reference's fitted parameters, by biomarker, in file order.
fn reference_params(case: &str) -> Vec<(String, Params)> {
    let (_, rows) = read_csv(&golden(&format!("{case}_params.csv")));
    rows.iter()
        .map(|r| {
            let v: Vec<f64> = r[1..].iter().map(|c| c.parse().unwrap()).collect();
            (r[0].clone(), params(v.try_into().unwrap()))
        })
        .collect()
}

/// Our fitted parameters from DIR/mixtures.json.
fn our_params(dir: &Path) -> Vec<(String, Params)> {
    let json = read_json(dir.join("mixtures.json"));
    json["biomarkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let v: Vec<f64> = KEYS.iter().map(|k| b[*k].as_f64().unwrap()).collect();
            (
                b["name"].as_str().unwrap().to_string(),
                params(v.try_into().unwrap()),
            )
        })
        .collect()
}

fn ln_normal(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    -0.5 * z * z - sd.ln() - 0.5 * (2.0 * PI).ln()
}

/// ln L_no, ln L_yes of `x` (each component's density times its weight).
fn ln_likelihoods(p: &Params, x: f64) -> (f64, f64) {
    (
        p.control_fraction.ln() + ln_normal(x, p.control_mean, p.control_sd),
        (1.0 - p.control_fraction).ln() + ln_normal(x, p.patient_mean, p.patient_sd),
    )
}

/// How far ln L of `x` can move when every parameter moves by up to PARAM_TOL
/// (first order).
fn ln_tolerance(p: &Params, x: f64) -> (f64, f64) {
    let one = |mean: f64, sd: f64, weight: f64| {
        let z = (x - mean) / sd;
        (z.abs() / sd + (z * z - 1.0).abs() / sd + 1.0 / weight) * PARAM_TOL
    };
    (
        one(p.control_mean, p.control_sd, p.control_fraction),
        one(p.patient_mean, p.patient_sd, 1.0 - p.control_fraction),
    )
}

fn run_mixture(raw: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = mixture_args(s(raw), s(out));
    args.extend_from_slice(extra);
    ok(&sustain(&args))
}

/// Runs one golden case and checks parameters, objective and likelihoods.
fn check_case(case: &str, raw: &str, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mix");
    run_mixture(&golden(raw), &out, extra);

    let reference = reference_params(case);
    let ours = our_params(&out);
    assert_eq!(
        ours.iter().map(|p| &p.0).collect::<Vec<_>>(),
        reference.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in ours.iter().zip(&reference) {
        let pairs = [
            (a.control_mean, b.control_mean),
            (a.control_sd, b.control_sd),
            (a.patient_mean, b.patient_mean),
            (a.patient_sd, b.patient_sd),
            (a.control_fraction, b.control_fraction),
        ];
        for (k, (x, y)) in pairs.iter().enumerate() {
            assert!(
                (x - y).abs() <= PARAM_TOL,
                "{case} {name} {}: {x} vs reference {y}",
                KEYS[k]
            );
        }
        assert!(
            a.neg_log_likelihood <= b.neg_log_likelihood + 1e-6,
            "{case} {name}: objective {} worse than the reference's {}",
            a.neg_log_likelihood,
            b.neg_log_likelihood
        );
    }

    let values = numbers(&golden(raw));
    let (ref_yes, ref_no) = (
        numbers(&golden(&format!("{case}_L_yes.csv"))),
        numbers(&golden(&format!("{case}_L_no.csv"))),
    );
    let (yes, no) = (
        numbers(&out.join("p_event.csv")),
        numbers(&out.join("p_no_event.csv")),
    );
    // The id column matches the input's, row by row.
    let ids: Vec<String> = read_csv(&out.join("p_event.csv"))
        .1
        .iter()
        .map(|r| r[0].clone())
        .collect();
    let raw_ids: Vec<String> = read_csv(&golden(raw))
        .1
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, raw_ids);
    assert_eq!(yes.len(), values.len());
    for m in 0..values.len() {
        for (b, (_, p)) in reference.iter().enumerate() {
            // values[m][0] is the diagnosis column.
            let x = values[m][b + 1];
            if x.is_nan() {
                assert!(yes[m][b].is_nan() && no[m][b].is_nan(), "row {m} col {b}");
                assert!(ref_yes[m][b].is_nan() && ref_no[m][b].is_nan());
                continue;
            }
            // The reference's files are its parameters' weighted densities...
            let (want_no, want_yes) = ln_likelihoods(p, x);
            assert!((ref_no[m][b].ln() - want_no).abs() < 1e-9);
            assert!((ref_yes[m][b].ln() - want_yes).abs() < 1e-9);
            // ... ours are ours, and the two agree within the parameters' tolerance.
            let (own_no, own_yes) = ln_likelihoods(&ours[b].1, x);
            assert!((no[m][b].ln() - own_no).abs() < 1e-9);
            assert!((yes[m][b].ln() - own_yes).abs() < 1e-9);
            let (tol_no, tol_yes) = ln_tolerance(p, x);
            assert!(
                (own_no - want_no).abs() <= tol_no,
                "{case} row {} {}: ln p_no_event {own_no} vs reference {want_no}",
                m + 1,
                reference[b].0
            );
            assert!(
                (own_yes - want_yes).abs() <= tol_yes,
                "{case} row {} {}: ln p_event {own_yes} vs reference {want_yes}",
                m + 1,
                reference[b].0
            );
        }
    }
}

/// The golden cases of both methods: (the case's name after the method's, raw
/// data, extra arguments): plain, fixed controls, missing values, and
/// overlapping, mirrored and two-sided groups.
const CASES: [(&str, &str, &[&str]); 4] = [
    ("", "raw_diagnosis.csv", &[]),
    ("_fixed", "raw_diagnosis.csv", &["--fix-controls"]),
    ("_missing", "raw_missing.csv", &[]),
    ("_overlap", "raw_overlap.csv", &[]),
];

#[test]
fn gmm_matches_kde_ebm_on_every_case() {
    for (case, raw, extra) in CASES {
        check_case(&format!("gmm{case}"), raw, extra);
    }
}

/// A KDE golden case: kde_ebm's KDE mixtures involve no optimiser, only sums and
/// the same relabelling decisions, so the label counts, rounds and control
/// fraction must be equal and the likelihoods equal up to summation order (1e-9).
fn check_kde_case(case: &str, raw: &str, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mix");
    let mut args = vec!["--method", "kde"];
    args.extend_from_slice(extra);
    run_mixture(&golden(raw), &out, &args);
    let json = read_json(out.join("mixtures.json"));
    assert_eq!(json["method"], "kde");
    let (_, rows) = read_csv(&golden(&format!("{case}_params.csv")));
    for (b, row) in json["biomarkers"].as_array().unwrap().iter().zip(&rows) {
        assert_eq!(b["name"], row[0].as_str());
        let w: f64 = row[1].parse().unwrap();
        assert!(
            (b["control_fraction"].as_f64().unwrap() - w).abs() < 1e-12,
            "{case} {}",
            row[0]
        );
        for (key, col) in [
            ("iterations", 2),
            ("n_control_labels", 3),
            ("n_patient_labels", 4),
        ] {
            assert_eq!(
                b[key].as_u64().unwrap(),
                row[col].parse::<u64>().unwrap(),
                "{case} {} {key}",
                row[0]
            );
        }
    }
    for (ours, theirs) in [("p_event.csv", "L_yes"), ("p_no_event.csv", "L_no")] {
        let (a, b) = (
            numbers(&out.join(ours)),
            numbers(&golden(&format!("{case}_{theirs}.csv"))),
        );
        assert_eq!(a.len(), b.len());
        for (m, (ra, rb)) in a.iter().zip(&b).enumerate() {
            for (x, y) in ra.iter().zip(rb) {
                if y.is_nan() {
                    assert!(x.is_nan(), "{case} {ours} row {}", m + 1);
                } else {
                    assert!(
                        (x - y).abs() <= 1e-9 * y.abs(),
                        "{case} {ours} row {}: {x} vs reference {y}",
                        m + 1
                    );
                }
            }
        }
    }
}

#[test]
fn kde_matches_kde_ebm_on_every_case() {
    for (case, raw, extra) in CASES {
        check_kde_case(&format!("kde{case}"), raw, extra);
    }
    check_kde_case("kde_overlap_fixed", "raw_overlap.csv", &["--fix-controls"]);
}

/// evaluate's total log-likelihood of `sequences` under DIR/model.json.
fn evaluate(model: &Path, sequences: &Path) -> f64 {
    let out = stdout_json(&sustain(&[
        "evaluate",
        "--model",
        s(model),
        "--sequences",
        s(sequences),
        "--id-column",
        "id",
    ]));
    out["loglike"].as_f64().unwrap()
}

#[test]
fn evaluate_reads_the_model_it_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mix");
    run_mixture(&golden("raw_missing.csv"), &out, &[]);
    let model = read_json(out.join("model.json"));
    assert_eq!(model["model"], "mixture");
    assert_eq!(model["p_event"], "p_event.csv");
    assert_eq!(model["p_no_event"], "p_no_event.csv");
    for stem in ["mixtures.svg", "mixtures.png"] {
        assert!(std::fs::metadata(out.join(stem)).unwrap().len() > 1000);
    }

    // The same model from the reference's likelihoods.
    let reference = tmp.path().join("reference.json");
    std::fs::write(
        &reference,
        serde_json::json!({
            "model": "mixture", "biomarkers": model["biomarkers"],
            "p_event": s(&golden("gmm_missing_L_yes.csv")),
            "p_no_event": s(&golden("gmm_missing_L_no.csv")),
        })
        .to_string(),
    )
    .unwrap();
    for (i, (sequences, f)) in [
        (vec![vec![0, 1, 2, 3, 4, 5, 6, 7]], vec![1.0]),
        (
            vec![vec![5, 7, 3, 0, 6, 1, 4, 2], vec![2, 4, 6, 0, 1, 3, 5, 7]],
            vec![0.6, 0.4],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = write(
            tmp.path(),
            &format!("s{i}.json"),
            &serde_json::json!({"sequences": sequences, "f": f}).to_string(),
        );
        let (ours, theirs) = (
            evaluate(&out.join("model.json"), &seq),
            evaluate(&reference, &seq),
        );
        assert!(ours.is_finite());
        // Likelihoods agree per value within ~1e-3 (see check_case), so totals over
        // 300 subjects within ~1e-3 relative.
        assert!(
            ((ours - theirs) / theirs).abs() < 1e-3,
            "case {i}: {ours} vs reference {theirs}"
        );
    }
}

fn raw_text() -> String {
    "id,diagnosis,a,b\n1,0,0.1,0.2\n2,0,-0.1,0.0\n3,0,0.05,0.1\n4,1,1.5,1.2\n5,1,1.8,1.4\n6,1,1.2,0.9\n7,2,0.9,\n"
        .to_string()
}

fn mixture_args<'a>(raw: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "mixture",
        "--raw",
        raw,
        "--diagnosis-column",
        "diagnosis",
        "--control-value",
        "0",
        "--patient-value",
        "1",
        "--id-column",
        "id",
        "--out",
        out,
    ]
}

#[test]
fn small_input_writes_every_output_and_keeps_missing_values_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = write(tmp.path(), "raw.csv", &raw_text());
    let out = tmp.path().join("out");
    ok(&sustain(&mixture_args(s(&raw), s(&out))));
    let (header, rows) = read_csv(&out.join("p_event.csv"));
    assert_eq!(header, ["id", "a", "b"]);
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[6][2], "");
    assert_eq!(read_csv(&out.join("p_no_event.csv")).1[6][2], "");
    assert!(!out.join(".sustain.lock").exists());
    // Run again over its own outputs: allowed.
    ok(&sustain(&mixture_args(s(&raw), s(&out))));
    // Without --id-column the rows are numbered.
    let out2 = tmp.path().join("out2");
    let mut args = mixture_args(s(&raw), s(&out2));
    args.retain(|a| *a != "--id-column" && *a != "id");
    // ... the column "id" is then a biomarker, clashing with the row numbers ...
    user_error(&sustain(&args), &["raw.csv", "named 'id'", "--id-column"]);
    // ... unless the biomarkers are named.
    args.extend(["--biomarkers", "a,b"]);
    ok(&sustain(&args));
    let rows = read_csv(&out2.join("p_event.csv")).1;
    assert_eq!(rows[0][0], "1");
    assert_eq!(rows[6][0], "7");
}

/// Files in `dir` (none when it does not exist).
fn listing(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bad_inputs_are_one_line_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "no diagnosis column",
            raw_text().replace("diagnosis", "dx"),
            vec!["raw.csv", "no column 'diagnosis'"],
        ),
        (
            "a non-numeric cell",
            raw_text().replace("1.8,1.4", "1.8,high"),
            vec!["raw.csv", "row 5", "column 'b'", "'high' is not a number"],
        ),
        (
            "one patient with a value",
            raw_text()
                .replace("4,1,1.5,1.2", "4,1,,1.2")
                .replace("5,1,1.8,1.4", "5,1,,1.4"),
            vec![
                "raw.csv",
                "column 'a'",
                "1 patients with a value",
                "at least 2",
            ],
        ),
        (
            "no controls",
            raw_text().replace(",0,", ",3,"),
            vec!["raw.csv", "column 'diagnosis'", "no controls"],
        ),
        (
            "constant controls",
            raw_text()
                .replace("0.05,0.1", "0.05,0.0")
                .replace("1,0,0.1,0.2", "1,0,0.1,0.0"),
            vec!["raw.csv", "column 'b'", "all equal"],
        ),
        (
            "a row with every biomarker missing",
            raw_text().replace("7,2,0.9,", "7,2,,"),
            vec!["raw.csv", "row 7", "every biomarker is missing"],
        ),
    ];
    for (what, text, needles) in cases {
        let raw = write(tmp.path(), "raw.csv", &text);
        let line = user_error(&sustain(&mixture_args(s(&raw), s(&out))), &needles);
        assert!(listing(&out).is_empty(), "{what}: {line}");
    }
}

#[test]
fn foreign_files_and_the_input_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The input inside the output folder under an output's name.
    let raw = write(&out, "p_event.csv", &raw_text());
    user_error(&sustain(&mixture_args(s(&raw), s(&out))), &["--raw reads"]);
    assert_eq!(std::fs::read_to_string(&raw).unwrap(), raw_text());

    // Someone else's model.json.
    let raw = write(tmp.path(), "raw.csv", &raw_text());
    let out2 = tmp.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    let theirs = write(&out2, "model.json", "{\"model\": \"mixture\"}");
    user_error(
        &sustain(&mixture_args(s(&raw), s(&out2))),
        &["model.json", "not written by `sustain mixture`", "--force"],
    );
    assert_eq!(listing(&out2).len(), 1);
    assert_eq!(
        std::fs::read_to_string(&theirs).unwrap(),
        "{\"model\": \"mixture\"}"
    );
    // --force replaces it.
    let mut args = mixture_args(s(&raw), s(&out2));
    args.push("--force");
    ok(&sustain(&args));
    assert!(std::fs::read_to_string(&theirs)
        .unwrap()
        .contains("sustain mixture"));

    // A held lock.
    let out3 = tmp.path().join("out3");
    std::fs::create_dir(&out3).unwrap();
    write(&out3, ".sustain.lock", "pid 1\nhost elsewhere-host\n");
    user_error(
        &sustain(&mixture_args(s(&raw), s(&out3))),
        &["in use by process 1"],
    );
}
