//! `sustain cv` of the mixture and ordinal models: the folds, fold files, reuse,
//! fold-by-fold runs and `cv-combine` of a z-score model, through the model seam.

mod common;

use common::{ok, s, stderr, sustain, user_error};
use std::path::{Path, PathBuf};

fn example(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/data/{family}"))
}

/// `sustain cv` of the bundled `family` example into `out`, with `extra` arguments.
fn cv(family: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let dir = example(family);
    let model = dir.join("model.json");
    let scores = dir.join("scores.csv");
    let mut args = vec!["cv", "--model", s(&model), "--id-column", "id"];
    if family == "ordinal" {
        args.extend(["--data", s(&scores)]);
    }
    args.extend([
        "--folds",
        "3",
        "--subtypes",
        "2",
        "--iterations",
        "1500",
        "--tuning-iterations",
        "500",
        "--startpoints",
        "2",
        "--chains",
        "2",
        "--no-report",
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
