//! End-to-end tests of `sustain zscore`, running the binary: a small table whose
//! answer is known by hand, the pySuStaIn tutorial's `SimulatedData.csv`
//! (`../shared/data/raw`, skipped with a notice when absent), and bad inputs.

mod common;
use common::{readme_zscore, s, stdout_json, sustain, user_error, write};

use std::path::Path;
use std::process::Output;

/// `sustain zscore --raw RAW --control-column C --control-value V --out OUT`, then
/// `extra`.
fn zscore(raw: &Path, [column, value]: [&str; 2], out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "zscore",
        "--raw",
        s(raw),
        "--control-column",
        column,
        "--control-value",
        value,
        "--out",
        s(out),
    ];
    args.extend(extra);
    sustain(&args)
}

/// The output CSV: header and rows of cells.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn num(cell: &str) -> f64 {
    if cell.is_empty() {
        f64::NAN
    } else {
        cell.parse().unwrap()
    }
}

/// Controls c1..c4 at x = 0..3 with y = 2 + 3x + e, e = (1, -1, -1, 1): e is
/// orthogonal to 1 and x, so the control fit is y = 2 + 3x, the residuals are e (mean
/// 0, sd sqrt(4/3)) and the controls' z are +-sqrt(3)/2. Patient p1 (x = 10, y = 34)
/// has residual 2, z = sqrt(3). Patient p2 (x = 1) has `up` missing and `down` on the
/// control line (z = 0). `down` is `-up`, so with `--flip down` it equals `up`.
const HAND: &str = "\
id,group,x,up,down,label
c1,ctrl,0,3,-3,a
c2,ctrl,1,4,-4,b
c3,ctrl,2,7,-7,c
c4,ctrl,3,12,-12,d
p1,case,10,34,-34,e
p2,case,1,NA,-5,f
";

#[test]
fn hand_computed_table() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = write(tmp.path(), "raw.csv", HAND);
    let out_path = tmp.path().join("z.csv");
    let out = zscore(
        &raw,
        ["group", "ctrl"],
        &out_path,
        &["--covariates", "x", "--flip", "down", "--id-column", "id"],
    );
    let report = stdout_json(&out);
    // The text column `label` is skipped by default, with a note.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: skipping columns without numbers: label"),
        "{stderr}"
    );

    let (header, rows) = read_csv(&out_path);
    assert_eq!(header, ["id", "up", "down"]);
    let h = 3f64.sqrt() / 2.0;
    let expect_up = [h, -h, -h, h, 3f64.sqrt(), f64::NAN];
    let expect_down = [h, -h, -h, h, 3f64.sqrt(), 0.0];
    for (m, row) in rows.iter().enumerate() {
        assert_eq!(row[0], ["c1", "c2", "c3", "c4", "p1", "p2"][m]);
        for (cell, expect) in [(&row[1], expect_up[m]), (&row[2], expect_down[m])] {
            let got = num(cell);
            if expect.is_nan() {
                assert!(cell.is_empty(), "row {m}: {cell:?}");
            } else {
                assert!((got - expect).abs() < 1e-12, "row {m}: {got} vs {expect}");
            }
        }
    }

    assert_eq!(report["n_subjects"], 6);
    assert_eq!(report["n_controls"], 4);
    let up = &report["biomarkers"][0];
    assert_eq!(up["name"], "up");
    assert_eq!(up["flipped"], false);
    let coef: Vec<f64> = serde_json::from_value(up["coefficients"].clone()).unwrap();
    assert!(
        (coef[0] - 2.0).abs() < 1e-12 && (coef[1] - 3.0).abs() < 1e-12,
        "{coef:?}"
    );
    let sd = up["residual_sd"].as_f64().unwrap();
    assert!((sd - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(report["biomarkers"][1]["flipped"], true);
}

#[test]
fn numeric_control_value_and_no_covariates() {
    // Controls 1, 2, 3 (mean 2, sd 1), a patient at 5: z = -1, 0, 1, 3. "0.0" in the
    // file matches --control-value 0. No id column: the output has only biomarkers.
    let tmp = tempfile::tempdir().unwrap();
    let raw = write(tmp.path(), "raw.csv", "dx,v\n0.0,1\n0,2\n0,3\n1,5\n");
    let out_path = tmp.path().join("z.csv");
    let out = zscore(&raw, ["dx", "0"], &out_path, &[]);
    stdout_json(&out);
    let (header, rows) = read_csv(&out_path);
    assert_eq!(header, ["v"]);
    let z: Vec<f64> = rows.iter().map(|r| num(&r[0])).collect();
    for (a, b) in z.iter().zip([-1.0, 0.0, 1.0, 3.0]) {
        assert!((a - b).abs() < 1e-12, "{z:?}");
    }
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let raw = write(dir, "raw.csv", HAND);
    let out = dir.join("z.csv");
    let run = |raw: &Path, extra: &[&str]| {
        zscore(
            raw,
            ["group", "ctrl"],
            &out,
            &[&["--id-column", "id"], extra].concat(),
        )
    };
    user_error(
        &zscore(&raw, ["group", "control"], &out, &[]),
        &[
            "raw.csv",
            "no row has 'group' = 'control'",
            "'case', 'ctrl'",
        ],
    );
    // Bad files: name, contents, flags, and what the one line says.
    let bad_files: [(&str, &str, &[&str], &[&str]); 4] = [
        // 4 controls, 3 covariates: 5 needed.
        (
            "more.csv",
            "id,group,x,w,u,up\nc1,ctrl,0,1,5,3\nc2,ctrl,1,0,6,4\nc3,ctrl,2,1,2,7\nc4,ctrl,3,0,1,12\n",
            &["--covariates", "x,w,u"],
            &["biomarker 'up'", "4 controls", "at least 5"],
        ),
        (
            "flat.csv",
            "id,group,up\nc1,ctrl,3\nc2,ctrl,3\nc3,ctrl,3\np1,case,9\n",
            &[],
            &["flat.csv", "biomarker 'up'", "zero standard deviation"],
        ),
        (
            "badcov.csv",
            "id,group,x,up\nc1,ctrl,0,3\nc2,ctrl,one,4\n",
            &["--covariates", "x"],
            &["badcov.csv", "row 2", "column 'x'", "'one' is not a number"],
        ),
        (
            "badval.csv",
            "id,group,up\nc1,ctrl,0\nc2,ctrl,inf\nc3,ctrl,1\n",
            &[],
            &["badval.csv", "row 2", "column 'up'", "infinite value"],
        ),
    ];
    for (name, text, extra, needles) in bad_files {
        user_error(&run(&write(dir, name, text), extra), needles);
    }
    user_error(
        &run(&raw, &["--covariates", "Age"]),
        &["raw.csv", "no column 'Age'"],
    );
    user_error(
        &run(&raw, &["--biomarkers", "up,nope"]),
        &["no column 'nope'"],
    );
    user_error(
        &run(&raw, &["--flip", "label"]),
        &["--flip", "'label'", "not one of the biomarkers"],
    );
    user_error(
        &run(&raw, &["--biomarkers", "up,x", "--covariates", "x"]),
        &["--biomarkers", "'x'", "covariate"],
    );
    user_error(
        &zscore(&raw, ["group", "ctrl"], &dir.join("no/such/dir/z.csv"), &[]),
        &["cannot write", "z.csv"],
    );
    user_error(
        &run(&dir.join("absent.csv"), &[]),
        &["cannot read", "absent.csv"],
    );
    assert!(!out.exists(), "no output after a failed run");
}

#[test]
fn tutorial_simulated_data() {
    let Some(dir) =
        sustain_testkit::shared_data("raw", "SimulatedData.csv", "zscore tutorial test")
    else {
        return;
    };
    let raw = dir.join("SimulatedData.csv");
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("z.csv");
    // The tutorial's z-scoring, the controls being the subjects of `diagnosis`.
    let tutorial = |diagnosis: &str| {
        let extra = ["--covariates", "Age,Headsize", "--id-column", "RID"];
        zscore(&raw, ["Diagnosis", diagnosis], &out_path, &extra)
    };
    // Diagnosis 0 marks the 33 controls (the tutorial fits on `data.Diagnosis == 0`;
    // the 467 subjects with Diagnosis 1 are patients with higher raw values).
    let out = tutorial("0");
    let report = stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("note:"),
        "no flip hints expected: {stderr}"
    );
    assert_eq!(report["n_subjects"], 500);
    assert_eq!(report["n_controls"], 33);

    let (header, rows) = read_csv(&out_path);
    let names = [
        "Biomarker1",
        "Biomarker2",
        "Biomarker3",
        "Biomarker4",
        "Biomarker5",
    ];
    assert_eq!(header[0], "RID");
    assert_eq!(&header[1..], names);
    assert_eq!(rows.len(), 500);

    // Independent check: OLS by the normal equations (3 x 3, Cramer's rule) on the raw
    // file, then z = residual / sd(control residuals, ddof 1).
    let mut reader = csv::Reader::from_path(&raw).unwrap();
    let raw_rows: Vec<Vec<f64>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(|c| c.parse().unwrap()).collect())
        .collect();
    let controls: Vec<&Vec<f64>> = raw_rows.iter().filter(|r| r[1] == 0.0).collect();
    for (b, name) in names.iter().enumerate() {
        let col = 4 + b;
        let mut xtx = [[0.0f64; 3]; 3];
        let mut xty = [0.0f64; 3];
        for r in &controls {
            let x = [1.0, r[2], r[3]];
            for i in 0..3 {
                xty[i] += x[i] * r[col];
                for j in 0..3 {
                    xtx[i][j] += x[i] * x[j];
                }
            }
        }
        let det = |m: &[[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let d = det(&xtx);
        let beta: Vec<f64> = (0..3)
            .map(|k| {
                let mut m = xtx;
                for i in 0..3 {
                    m[i][k] = xty[i];
                }
                det(&m) / d
            })
            .collect();
        let resid = |r: &Vec<f64>| r[col] - beta[0] - beta[1] * r[2] - beta[2] * r[3];
        let ctrl_res: Vec<f64> = controls.iter().map(|r| resid(r)).collect();
        let mean = ctrl_res.iter().sum::<f64>() / ctrl_res.len() as f64;
        let sd = (ctrl_res.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / (ctrl_res.len() - 1) as f64)
            .sqrt();
        let (mut ctrl_z, mut patient_z) = (Vec::new(), Vec::new());
        for (raw_row, out_row) in raw_rows.iter().zip(&rows) {
            assert_eq!(out_row[0], format!("{}", raw_row[0] as i64));
            let z = num(&out_row[b + 1]);
            let expect = (resid(raw_row) - mean) / sd;
            assert!((z - expect).abs() < 1e-8, "{name}: {z} vs {expect}");
            if raw_row[1] == 0.0 {
                ctrl_z.push(z);
            } else {
                patient_z.push(z);
            }
        }
        let n = ctrl_z.len() as f64;
        let cm = ctrl_z.iter().sum::<f64>() / n;
        let csd = (ctrl_z.iter().map(|v| (v - cm).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            cm.abs() < 1e-9 && (csd - 1.0).abs() < 1e-9,
            "{name}: {cm} {csd}"
        );
        // Higher = more abnormal already: patients are above the controls, no flip.
        let pm = patient_z.iter().sum::<f64>() / patient_z.len() as f64;
        assert!(pm > 1.0, "{name}: patients' mean z {pm}");
    }

    // Taking Diagnosis 1 as the control group instead puts the real controls below
    // the "controls", and every biomarker gets a --flip hint.
    let out = tutorial("1");
    stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in names {
        assert!(stderr.contains(&format!("pass --flip {name}")), "{stderr}");
    }
}

/// The README's worked example: raw volumes -> `zscore` -> `fit`, with the
/// bundled `examples/data/raw/raw.csv`; the fit recovers the simulated truth's
/// two subtypes better than chance.
#[test]
fn zscore_then_fit_on_the_bundled_raw_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::tempdir().unwrap();
    let z = tmp.path().join("z.csv");
    let out = readme_zscore(&z);
    stdout_json(&out);
    let fit = tmp.path().join("fit");
    let out = sustain(&[
        "fit",
        "--data",
        s(&z),
        "--zvals",
        "1,2,3",
        "--zmax",
        "5",
        "--id-column",
        "id",
        "--subtypes",
        "2",
        "--startpoints",
        "3",
        "--iterations",
        "2000",
        "--chains",
        "2",
        "--tuning-iterations",
        "500",
        "--quiet",
        "--out",
        s(&fit),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "results.json",
        "subjects_k2.csv",
        "pvd_k2.png",
        "trace_k2.png",
    ] {
        assert!(fit.join(f).exists(), "{f} missing");
    }
    // Subtype recovery against the truth the raw data were made from.
    let truth = read_csv(&root.join("examples/data/small/truth.csv")).1;
    let ours = read_csv(&fit.join("subjects_k2.csv")).1;
    let diseased: Vec<usize> = (0..truth.len()).filter(|&i| truth[i][2] != "0").collect();
    let agree = diseased
        .iter()
        .filter(|&&i| truth[i][1] == ours[i][1])
        .count() as f64
        / diseased.len() as f64;
    let best = agree.max(1.0 - agree);
    assert!(best > 0.7, "subtype agreement with the truth {best}");
}
