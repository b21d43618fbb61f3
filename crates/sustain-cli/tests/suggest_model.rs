//! `sustain suggest-model`: on the bundled raw example after `sustain zscore`, it
//! proposes a model that `fit` accepts and prints its reasoning; bad input is one
//! line naming the file, row and column; it writes over nothing it did not write.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, quick_fit, raw_example, read_json, readme_zscore, s, sustain, user_error, write};

/// z-scores of the raw example, as the README makes them.
fn zscores(dir: &Path) -> PathBuf {
    let z = dir.join("z.csv");
    ok(&readme_zscore(&z));
    z
}

fn suggest<'a>(z: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "suggest-model",
        "--data",
        z,
        "--id-column",
        "id",
        "--out",
        out,
    ];
    args.extend(extra);
    args
}

#[test]
fn proposes_a_model_that_fit_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let z = zscores(tmp.path());
    let model = tmp.path().join("model.json");
    let raw = raw_example();
    let labels = [
        "--labels",
        s(&raw),
        "--controls-column",
        "Diagnosis",
        "--control-value",
        "0",
    ];
    let stdout = ok(&sustain(&suggest(s(&z), s(&model), &labels)));
    // The reasoning, per biomarker.
    assert!(
        stdout.contains("Rule: a threshold z = 1, 2, ..."),
        "{stdout}"
    );
    for b in ["Volume_0", "Volume_1", "Volume_2", "Volume_3"] {
        assert!(stdout.contains(&format!("{b}: ")), "{b}: {stdout}");
    }
    assert_eq!(stdout.matches("proposed z_vals [").count(), 4, "{stdout}");
    assert_eq!(
        stdout.matches("percentiles 5/25/50/75/90/95/99: ").count(),
        4
    );
    // 200 subjects, of whom the controls (Diagnosis 0) are counted apart.
    assert!(stdout.contains("controls"), "{stdout}");
    let m = read_json(&model);
    assert_eq!(m["written_by"], "sustain suggest-model");
    assert_eq!(m["biomarkers"].as_array().unwrap().len(), 4);
    // Volume_3's patients go much higher than the others' (the guide's example).
    let z_max: Vec<f64> = m["z_max"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(z_max[3] >= z_max[0] + 3.0, "{z_max:?}");
    for (row, max) in m["z_vals"].as_array().unwrap().iter().zip(&z_max) {
        let top = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!(top >= 1.0 && *max > top, "{row} {max}");
    }
    for ext in ["svg", "png"] {
        assert!(tmp.path().join(format!("model_zscores.{ext}")).is_file());
    }
    // `fit` takes it (quick settings).
    let fit = tmp.path().join("fit");
    let out = ok(&quick_fit(
        &["--data", s(&z), "--model", s(&model), "--id-column", "id"],
        "1",
        &fit,
        &["--no-report"],
    ));
    assert!(out.contains("1 subtype(s): ML log-likelihood"), "{out}");
    // Run again: its own files are replaced.
    ok(&sustain(&suggest(s(&z), s(&model), &labels)));
    // Without controls every row is a patient, and the rule says so.
    let all = ok(&sustain(&suggest(s(&z), s(&model), &[])));
    assert!(all.contains("every row counts as a patient"), "{all}");
}

#[test]
fn bad_input_is_one_line_naming_the_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.json");
    let bad = write(tmp.path(), "z.csv", "id,a,b\ns1,1.5,2\ns2,0.5,abc\n");
    user_error(
        &sustain(&suggest(s(&bad), s(&out), &[])),
        &["z.csv", "row 2", "column 'b'", "'abc' is not a number"],
    );
    assert!(!out.exists());
    let bad = write(tmp.path(), "inf.csv", "id,a\ns1,inf\n");
    user_error(
        &sustain(&suggest(s(&bad), s(&out), &[])),
        &["inf.csv", "row 1", "column 'a'", "infinite"],
    );
    let empty = write(tmp.path(), "empty.csv", "id,a,b\ns1,1,\ns2,2,\n");
    user_error(
        &sustain(&suggest(s(&empty), s(&out), &[])),
        &["empty.csv", "column 'b'", "no patient has a value"],
    );
    let z = write(tmp.path(), "ok.csv", "id,g,a\ns1,0,1.5\ns2,1,2\ns3,1,3\n");
    user_error(
        &sustain(&suggest(
            s(&z),
            s(&out),
            &["--controls-column", "grp", "--control-value", "0"],
        )),
        &["ok.csv", "no column 'grp'"],
    );
    user_error(
        &sustain(&suggest(s(&z), s(&out), &["--min-share", "0"])),
        &["--min-share"],
    );
    let labels = write(tmp.path(), "labels.csv", "id,g\ns1,0\n");
    user_error(
        &sustain(&suggest(
            s(&z),
            s(&out),
            &[
                "--labels",
                s(&labels),
                "--controls-column",
                "g",
                "--control-value",
                "0",
            ],
        )),
        &["ok.csv", "row 2", "column 'id'", "'s2' is not in --labels"],
    );
    assert!(!out.exists());
}

#[test]
fn writes_over_nothing_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let z = write(
        tmp.path(),
        "z.csv",
        "id,a,b\ns1,1.5,2\ns2,0.5,3\ns3,2.5,1\n",
    );
    let mine = write(tmp.path(), "model.json", "{\"biomarkers\": [\"a\"]}");
    user_error(
        &sustain(&suggest(s(&z), s(&mine), &[])),
        &[
            "model.json",
            "not written by `sustain suggest-model`",
            "--force",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "{\"biomarkers\": [\"a\"]}"
    );
    user_error(
        &sustain(&suggest(s(&z), s(&z), &[])),
        &["z.csv", "--data", "--force"],
    );
    // A figure of that name beside another model.json is not ours either.
    let other = tmp.path().join("other.json");
    write(tmp.path(), "other_zscores.svg", "<svg/>");
    user_error(
        &sustain(&suggest(s(&z), s(&other), &[])),
        &["other_zscores.svg", "--force"],
    );
    ok(&sustain(&suggest(s(&z), s(&mine), &["--force"])));
    let m = read_json(&mine);
    assert_eq!(m["biomarkers"], serde_json::json!(["a", "b"]));
}

/// `--scores`: raw ordinal scores give an ordinal model.json that `fit --model
/// ... --data scores.csv` accepts; a score that is not a whole number is named by
/// row and column.
#[test]
fn proposes_an_ordinal_model_from_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let scores =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/ordinal/scores.csv");
    let model = tmp.path().join("model.json");
    let stdout = ok(&sustain(&suggest(s(&scores), s(&model), &["--scores"])));
    assert!(stdout.contains("proposed"), "{stdout}");
    let json = read_json(&model);
    assert_eq!(json["model"], "ordinal");
    assert_eq!(json["p_correct"], 0.9);
    let score_vals = json["score_vals"].as_array().unwrap();
    assert_eq!(score_vals.len(), 5);
    assert!(score_vals.iter().all(|row| row[0] == 1.0));
    ok(&quick_fit(
        &[
            "--model",
            s(&model),
            "--data",
            s(&scores),
            "--id-column",
            "id",
        ],
        "1",
        &tmp.path().join("fit"),
        &["--no-report"],
    ));
    let bad = write(tmp.path(), "bad.csv", "id,a,b\n1,0,1\n2,1.5,2\n");
    let out = sustain(&suggest(
        s(&bad),
        s(&tmp.path().join("m2.json")),
        &["--scores"],
    ));
    user_error(&out, &["bad.csv", "row 2", "'a'", "not a score"]);
}
