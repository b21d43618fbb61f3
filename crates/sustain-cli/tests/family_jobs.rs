//! The jobs a cluster runs, for the mixture and ordinal models: `sustain cv` (folds,
//! fold files, reuse, fold-by-fold runs and `cv-combine`) and chain shards with
//! `sustain merge`, as for a z-score model, through the model seam.

mod common;

use common::{ok, results_without_timing, s, stderr, sustain, user_error};
use std::path::{Path, PathBuf};

fn example(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/data/{family}"))
}

/// `sustain cv` of the bundled `family` example into `out`, with `extra` arguments.
fn cv(family: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    job(
        "cv",
        family,
        out,
        &[&["--folds", "3", "--no-report"], extra].concat(),
    )
}

/// `sustain COMMAND` (fit or cv) of the bundled `family` example into `out`, with
/// short settings and `extra` arguments.
fn job(command: &str, family: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let words: Vec<&str> = command.split(' ').collect();
    let dir = example(family);
    let model = dir.join("model.json");
    let scores = dir.join("scores.csv");
    let mut args = words.clone();
    args.extend(["--model", s(&model), "--id-column", "id"]);
    if family == "ordinal" {
        args.extend(["--data", s(&scores)]);
    }
    args.extend([
        "--subtypes",
        "2",
        "--iterations",
        "1500",
        "--tuning-iterations",
        "500",
        "--startpoints",
        "2",
        "--chains",
        "4",
        "--out",
        s(out),
    ]);
    args.extend(extra);
    sustain(&args)
}

fn cv_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("cv.json")).unwrap()).unwrap()
}

#[test]
fn mixture_and_ordinal_models_cross_validate_fold_by_fold_as_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["mixture", "ordinal"] {
        let whole = tmp.path().join(format!("{family}-whole"));
        ok(&cv(family, &whole, &[]));
        let json = cv_json(&whole);
        let cvic = json["cvic"].as_array().unwrap();
        assert_eq!(cvic.len(), 2, "{family}: {json}");
        assert!(cvic.iter().all(|v| v.as_f64().unwrap().is_finite()));
        assert_eq!(json["loglike_matrix"].as_array().unwrap().len(), 3);
        // A rerun reuses every fold file and writes the same cv.json.
        let again = cv(family, &whole, &[]);
        ok(&again);
        assert!(stderr(&again).contains("reusing"), "{}", stderr(&again));
        assert_eq!(cv_json(&whole), json);
        // Folds run as separate jobs, then combined: the same numbers.
        let split = tmp.path().join(format!("{family}-split"));
        for i in ["0", "1", "2"] {
            ok(&cv(family, &split, &["--fold", i]));
        }
        ok(&sustain(&["cv-combine", "--no-report", "--out", s(&split)]));
        assert_eq!(cv_json(&split), json, "{family}");
    }
}

#[test]
fn mixture_and_ordinal_chain_shards_merge_to_the_single_fit() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["mixture", "ordinal"] {
        let single = tmp.path().join(format!("{family}-single"));
        let sharded = tmp.path().join(format!("{family}-sharded"));
        ok(&job("fit", family, &single, &["--no-report"]));
        for i in ["0/2", "1/2"] {
            ok(&job(
                "fit",
                family,
                &sharded,
                &["--chain-shard", i, "--no-report"],
            ));
        }
        ok(&sustain(&["merge", "--no-report", "--out", s(&sharded)]));
        assert_eq!(
            results_without_timing(&single),
            results_without_timing(&sharded),
            "{family}"
        );
        for k in ["1", "2"] {
            let name = format!("subjects_k{k}.csv");
            assert_eq!(
                std::fs::read(single.join(&name)).unwrap(),
                std::fs::read(sharded.join(&name)).unwrap(),
                "{family}: {name}"
            );
        }
    }
}

#[test]
fn what_family_models_cannot_do_yet_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    user_error(
        &cv("mixture", &out, &["--stratify-by", "group"]),
        &["--stratify-by", "mixture"],
    );
    user_error(
        &cv("mixture", &out, &["--fold", "0", "--subtype-count", "1"]),
        &["--subtype-count"],
    );
    user_error(&cv("mixture", &out, &["--fold", "5"]), &["--fold 5"]);
    assert!(!out.exists(), "nothing is written for a refused run");
}

/// Runs a batch script of `slurm --dry-run` with plain bash, as array task `task`.
fn bash(script: &Path, task: Option<&str>) {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script);
    if let Some(t) = task {
        cmd.env("SLURM_ARRAY_TASK_ID", t);
    }
    ok(&cmd.output().expect("bash runs"));
}

#[test]
fn slurm_scripts_of_an_ordinal_fit_and_cross_validation_run() {
    let tmp = tempfile::tempdir().unwrap();
    let fit = tmp.path().join("fit");
    ok(&job(
        "slurm fit",
        "ordinal",
        &fit,
        &["--shards", "2", "--dry-run"],
    ));
    let scripts = fit.join("slurm");
    for task in ["0", "1"] {
        bash(&scripts.join("shards.sbatch"), Some(task));
    }
    bash(&scripts.join("combine.sbatch"), None);
    let single = tmp.path().join("single");
    ok(&job("fit", "ordinal", &single, &[]));
    assert_eq!(
        results_without_timing(&single),
        results_without_timing(&fit)
    );
    let cv = tmp.path().join("cv");
    ok(&job(
        "slurm cv",
        "ordinal",
        &cv,
        &["--folds", "2", "--dry-run", "--no-report"],
    ));
    for task in ["0", "1"] {
        bash(&cv.join("slurm/shards.sbatch"), Some(task));
    }
    bash(&cv.join("slurm/combine.sbatch"), None);
    assert!(cv.join("cv.json").is_file());
    user_error(
        &job(
            "slurm cv",
            "ordinal",
            &tmp.path().join("cv2"),
            &["--folds", "2", "--dry-run", "--per-subtype-count"],
        ),
        &["--per-subtype-count"],
    );
}
