//! Robustness findings of the command-line audit, each a one-line user error (exit
//! status 2) or a working rerun instead of what the audit saw:
//! - a corrupt results.json made `stage` panic and `plot` draw it (P2), and one of an
//!   unknown schema version was read as version 1 (E3);
//! - `--thin` leaving fewer than 4 samples per chain, and `--tuning-iterations 0`,
//!   were accepted and gave NaN diagnostics (N3, N4);
//! - clap's usage errors took 3-5 lines and `--subtypes -1` was "unexpected
//!   argument '-1'" (U1);
//! - `--require-gpu` without a GPU left an empty OUT/checkpoints/ (E4);
//! - `demo` refused to rerun in its own folder (E2);
//! - too few subjects to split said "backend error: cannot split 1 subtypes" (U2).

mod common;
use common::{ok, read_json, small, sustain, user_error};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// [`common::tiny_with`] the tiny settings.
fn tiny<'a>(sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    common::tiny_with(sub, &common::TINY, extra)
}

/// A 2-subtype fit shared by the tests (read-only): its results.json as JSON, in
/// the format written before samples.npz (the samples inline), which every reader
/// still reads.
fn fitted() -> &'static (tempfile::TempDir, Value) {
    static FIT: OnceLock<(tempfile::TempDir, Value)> = OnceLock::new();
    FIT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fit");
        ok(&sustain(&tiny("fit", &["--out", dir.to_str().unwrap()])));
        let inline = common::results_with_samples(&dir);
        (tmp, inline)
    })
}

/// A fit folder in `dir` holding `results` as its results.json.
fn fit_folder(dir: &Path, name: &str, results: &Value) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("results.json"), results.to_string()).unwrap();
    folder
}

/// `stage` and `plot` on `folder` both give one-line errors with the needles, and
/// `stage` writes no subjects file.
fn stage_and_plot_refuse(folder: &Path, needles: &[&str]) {
    let f = folder.to_str().unwrap();
    let out = folder.join("staged.csv");
    let data = small("data.csv");
    let staged = sustain(&[
        "stage",
        "--fit",
        f,
        "--data",
        &data,
        "--id-column",
        "id",
        "--out",
        out.to_str().unwrap(),
    ]);
    user_error(&staged, needles);
    assert!(!out.exists(), "stage wrote {}", out.display());
    user_error(&sustain(&["plot", "--fit", f]), needles);
}

#[test]
fn corrupt_results_are_refused_by_stage_and_plot() {
    let (_keep, results) = fitted();
    let tmp = tempfile::tempdir().unwrap();
    // The file as written stages and plots.
    let good = fit_folder(tmp.path(), "good", results);
    let data = small("data.csv");
    ok(&sustain(&[
        "stage",
        "--fit",
        good.to_str().unwrap(),
        "--data",
        &data,
        "--id-column",
        "id",
        "--out",
        good.join("s.csv").to_str().unwrap(),
    ]));
    ok(&sustain(&["plot", "--fit", good.to_str().unwrap()]));

    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &[&str]); 12] = [
        (
            "trace_position_out_of_range",
            |r| {
                r["models"][1]["samples"]["chains"][0]["trace"]["positions"]["values"][0] =
                    json!(200)
            },
            &["model of 2 subtype(s)", "chain 0", "position 200"],
        ),
        (
            "trace_position_twice",
            |r| {
                let v = &mut r["models"][0]["samples"]["chains"][1]["trace"]["positions"]["values"];
                v[1] = v[0].clone();
            },
            &["chain 1", "state 0", "permutation"],
        ),
        (
            "trace_too_short",
            |r| {
                let v = &mut r["models"][0]["samples"]["chains"][0]["trace"]["positions"]["values"];
                v.as_array_mut().unwrap().pop();
            },
            &["trace lengths disagree"],
        ),
        (
            "trace_of_other_subtype_count",
            |r| r["models"][1]["samples"]["chains"][0]["trace"]["n_subtypes"] = json!(3),
            &["trace has 3 subtype(s)"],
        ),
        (
            "trace_fraction_nan",
            |r| r["models"][1]["samples"]["chains"][0]["trace"]["fractions"][0] = Value::Null,
            &["state 0", "fractions"],
        ),
        (
            "ml_sequence_event_out_of_range",
            |r| r["models"][0]["ml_sequences"][0][0] = json!(99),
            &["ml_sequences[0]", "event index 99 out of range"],
        ),
        (
            "em_sequence_too_short",
            |r| {
                r["models"][1]["em_sequences"][1]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            &["em_sequences[1]", "has 10 events, the model has 11"],
        ),
        (
            "fraction_count",
            |r| r["models"][1]["ml_f"] = json!([1.0]),
            &["ml_f holds 1 fractions for 2 subtype(s)"],
        ),
        (
            "mean_f_nan",
            |r| r["models"][1]["mean_f"][0] = Value::Null,
            &["mean_f holds NaN"],
        ),
        (
            "pvd_shape",
            |r| {
                r["models"][0]["pvd"][0].as_array_mut().unwrap().pop();
            },
            &["pvd is not 1 x 11 x 11"],
        ),
        (
            "models_out_of_order",
            |r| r["models"][1]["n_subtypes"] = json!(3),
            &["models[1] has n_subtypes 3"],
        ),
        (
            "z_vals_of_other_model",
            |r| {
                r["z_vals"].as_array_mut().unwrap().pop();
            },
            &["4 biomarkers but 3 rows of z_vals"],
        ),
    ];
    for (name, edit, needles) in cases {
        let mut bad = results.clone();
        edit(&mut bad);
        let folder = fit_folder(tmp.path(), name, &bad);
        let mut all = vec!["results.json", "not a valid results file"];
        all.extend(needles);
        stage_and_plot_refuse(&folder, &all);
    }
}

#[test]
fn unknown_schema_versions_are_refused() {
    let (_keep, results) = fitted();
    let tmp = tempfile::tempdir().unwrap();
    let mut v99 = results.clone();
    v99["version"] = json!(99);
    let folder = fit_folder(tmp.path(), "v99", &v99);
    stage_and_plot_refuse(
        &folder,
        &[
            "results.json",
            "results schema version 99 is not supported",
            "reads version 1",
        ],
    );
    let mut none = results.clone();
    none.as_object_mut().unwrap().remove("version");
    let folder = fit_folder(tmp.path(), "none", &none);
    stage_and_plot_refuse(&folder, &["results.json", "no schema \"version\""]);

    // A chain shard of another version is refused by merge.
    let out = tmp.path().join("sharded");
    let o = out.to_str().unwrap();
    ok(&sustain(&tiny(
        "fit",
        &["--subtypes", "1", "--chain-shard", "0/1", "--out", o],
    )));
    let shard = out.join("shards").join("shard_0of1.json");
    let mut file = read_json(&shard);
    file["version"] = json!(99);
    std::fs::write(&shard, file.to_string()).unwrap();
    user_error(
        &sustain(&["merge", "--out", o]),
        &[
            "shard_0of1.json",
            "shard schema version 99 is not supported",
        ],
    );
    assert!(!out.join("results.json").exists());
}

#[test]
fn too_few_samples_per_chain_and_no_tuning_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    // 300 iterations: --thin 100 keeps 3 per chain, --thin 99 keeps 4.
    user_error(
        &sustain(&tiny("fit", &["--thin", "1000", "--out", o])),
        &[
            "--thin 1000 leaves 1 sample(s) per chain",
            "at least 4",
            "--thin 99 or less",
        ],
    );
    user_error(
        &sustain(&tiny("fit", &["--thin", "100", "--out", o])),
        &["--thin 100 leaves 3 sample(s) per chain"],
    );
    user_error(
        &sustain(&tiny("fit", &["--burn-in", "297", "--out", o])),
        &[
            "leaves 3 sample(s) per chain after --burn-in 297",
            "at least 4",
        ],
    );
    user_error(
        &sustain(&tiny(
            "cv",
            &["--iterations", "3", "--folds", "2", "--out", o],
        )),
        &["--iterations 3 leaves 3 sample(s) per chain", "at least 4"],
    );
    user_error(
        &sustain(&tiny("fit", &["--tuning-iterations", "0", "--out", o])),
        &["--tuning-iterations must be at least 1"],
    );
    user_error(
        &sustain(&tiny(
            "cv",
            &["--tuning-iterations", "0", "--folds", "2", "--out", o],
        )),
        &["--tuning-iterations must be at least 1"],
    );
    assert!(!out.exists(), "a refused run made {}", out.display());
    // 4 samples per chain are enough.
    ok(&sustain(&tiny(
        "fit",
        &["--subtypes", "1", "--thin", "99", "--out", o],
    )));
}

#[test]
fn usage_errors_are_one_line() {
    let data = small("data.csv");
    let model = small("model.json");
    let d = data.as_str();
    let m = model.as_str();
    // `fit` with thresholds and maxima instead of a model file.
    let zvals_fit = |zvals: &'static str, zmax: &'static str| {
        let mut args = vec!["fit", "--data", d, "--id-column", "id"];
        args.extend(["--zvals", zvals, "--zmax", zmax, "--out", "x"]);
        args
    };
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![],
            vec![
                "'sustain' needs a subcommand",
                "fit",
                "see 'sustain --help'",
            ],
        ),
        (vec!["bogus"], vec!["unrecognized subcommand 'bogus'"]),
        (
            vec!["evaluate"],
            // --data is optional: a mixture model names its own files.
            vec![
                "required arguments",
                "--model",
                "--sequences",
                "'sustain evaluate --help'",
            ],
        ),
        (
            vec![
                "fit",
                "--data",
                d,
                "--model",
                m,
                "--subtypes",
                "abc",
                "--out",
                "x",
            ],
            vec![
                "'abc'",
                "--subtypes",
                "whole number",
                "'sustain fit --help'",
            ],
        ),
        (
            vec!["fit", "--data", d, "--zvals", "1,2", "--out", "x"],
            vec!["required arguments", "--zmax"],
        ),
        (
            vec!["cv", "--data", d, "--model", m, "--out", "x"],
            vec!["--folds"],
        ),
        (
            vec![
                "fit",
                "--data",
                d,
                "--model",
                m,
                "--missing",
                "zero",
                "--out",
                "x",
            ],
            vec!["'zero'", "possible values: marginalise, reference"],
        ),
        (
            vec![
                "fit",
                "--data",
                d,
                "--model",
                m,
                "--subtype",
                "2",
                "--out",
                "x",
            ],
            vec!["'--subtype'", "tip"],
        ),
        (
            vec!["slurm"],
            vec!["'sustain slurm' needs a subcommand", "fit, cv"],
        ),
        // Negative numbers are values, checked like any other value.
        (
            vec![
                "fit",
                "--data",
                d,
                "--model",
                m,
                "--subtypes",
                "-1",
                "--out",
                "x",
            ],
            vec!["'-1'", "--subtypes", "whole number"],
        ),
        (
            vec![
                "stage",
                "--fit",
                "x",
                "--data",
                d,
                "--out",
                "y",
                "--threads",
                "-2",
            ],
            vec!["'-2'", "--threads"],
        ),
        (
            zvals_fit("-1,1", "5"),
            vec!["--zvals", "threshold -1", "negative"],
        ),
        (zvals_fit("1,2", "-5"), vec!["z_max", "-5", "positive"]),
    ];
    for (args, needles) in &cases {
        user_error(&sustain(args), needles);
    }
    assert!(!Path::new("x").exists());
    // Help and version still go to stdout with status 0.
    for args in [
        vec!["--help"],
        vec!["fit", "--help"],
        vec!["help", "cv"],
        vec!["--version"],
        vec!["stage", "-V"],
    ] {
        let out = sustain(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    assert!(ok(&sustain(&["fit", "--help"])).contains("Usage: sustain fit"));
}

#[cfg(not(feature = "gpu"))]
#[test]
fn a_required_gpu_fails_before_any_output_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    for (sub, extra) in [("fit", vec![]), ("cv", vec!["--folds", "2"])] {
        let mut args = vec!["--backend", "gpu", "--require-gpu", "--out", o];
        args.extend(extra);
        user_error(
            &sustain(&tiny(sub, &args)),
            &["the GPU backend is required but unavailable"],
        );
        assert!(!out.exists(), "{sub} made {}", out.display());
    }
}

#[test]
fn demo_reruns_in_its_own_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let o = out.to_str().unwrap();
    ok(&sustain(&["demo", "--quiet", "--out", o]));
    let first = std::fs::read(out.join("results.json")).unwrap();
    // The second run fits anew (same seed: the same results, timings aside).
    let stdout = ok(&sustain(&["demo", "--quiet", "--out", o]));
    assert!(stdout.contains("pvd_k2.png"), "{stdout}");
    let second = std::fs::read(out.join("results.json")).unwrap();
    let ml = |bytes: &[u8]| -> Value {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ml_sequences"].clone())
            .collect()
    };
    assert_eq!(ml(&first), ml(&second));
    assert!(ok(&sustain(&["demo", "--help"])).contains("fits it anew"));
    // A folder holding a fit that is not a demo is still refused.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("checkpoints")).unwrap();
    std::fs::write(other.join("checkpoints").join("checkpoint_k1.json"), "{}").unwrap();
    user_error(
        &sustain(&["demo", "--quiet", "--out", other.to_str().unwrap()]),
        &["already holds a fit that is not a demo"],
    );
}

#[test]
fn too_few_subjects_to_split_say_what_to_change() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(small("data.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // One subject and 2 subtypes.
    let one = tmp.path().join("one.csv");
    std::fs::write(&one, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let out = tmp.path().join("fit");
    let mut args = tiny("fit", &["--out", out.to_str().unwrap()]);
    args[2] = one.to_str().unwrap();
    user_error(
        &sustain(&args),
        &["cannot fit 2 subtypes", "only 1 subject", "--subtypes 1"],
    );
    // Cross-validation whose fold 0 leaves one subject for training.
    let folds = tmp.path().join("folds.csv");
    let mut csv = format!("{},fold\n", lines[0]);
    for (i, l) in lines[1..6].iter().enumerate() {
        csv.push_str(&format!("{l},{}\n", if i < 4 { "a" } else { "b" }));
    }
    std::fs::write(&folds, csv).unwrap();
    let out = tmp.path().join("cv");
    let mut args = tiny(
        "cv",
        &["--fold-column", "fold", "--out", out.to_str().unwrap()],
    );
    args[2] = folds.to_str().unwrap();
    user_error(
        &sustain(&args),
        &[
            "cannot fit 2 subtypes in fold 0",
            "only 1 subject",
            "--subtypes 1",
        ],
    );
}

/// A fit folder's samples.npz that is missing, cut short, replaced, or not a zip:
/// `stage`, `plot` and `report` each refuse it in one line naming the file.
#[test]
fn a_damaged_samples_file_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fit = tmp.path().join("fit");
    ok(&sustain(&tiny("fit", &["--out", fit.to_str().unwrap()])));
    let results = std::fs::read(fit.join("results.json")).unwrap();
    let npz = std::fs::read(fit.join("samples.npz")).unwrap();
    // The folder as written stages and plots (the samples read from the file).
    stage_and_plot_work(&fit);
    let mut flipped = npz.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    // (folder, its samples.npz if any, what the message says)
    type Case<'a> = (&'a str, Option<Vec<u8>>, &'a [&'a str]);
    let cases: [Case; 4] = [
        ("missing", None, &["cannot read the samples"]),
        (
            "truncated",
            Some(npz[..npz.len() / 2].to_vec()),
            &["SHA-256"],
        ),
        ("flipped", Some(flipped), &["SHA-256"]),
        ("not_a_zip", Some(b"x,y\n1,2\n".to_vec()), &["SHA-256"]),
    ];
    for (name, bytes, needles) in cases {
        let folder = tmp.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("results.json"), &results).unwrap();
        if let Some(b) = bytes {
            std::fs::write(folder.join("samples.npz"), b).unwrap();
        }
        let mut all = vec!["samples.npz"];
        all.extend(needles);
        stage_and_plot_refuse(&folder, &all);
        let report = sustain(&["report", folder.to_str().unwrap()]);
        user_error(&report, &all);
    }
}

/// `stage` and `plot` on `folder` succeed.
fn stage_and_plot_work(folder: &Path) {
    common::stage_small(folder, &folder.join("s.csv"));
    ok(&sustain(&["plot", "--fit", folder.to_str().unwrap()]));
}
