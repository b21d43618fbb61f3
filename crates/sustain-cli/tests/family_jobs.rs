//! The jobs a cluster runs, for the mixture and ordinal models: `sustain cv` (folds,
//! fold files, reuse, fold-by-fold and subtype-count-by-subtype-count runs and
//! `cv-combine`, folds from a data column or stratified by one) and chain shards
//! with `sustain merge`, as for a z-score model, through the model seam.

mod common;

use common::{
    ok, read_json, results_without_timing, s, stderr, sustain, user_error, with_column, write,
};
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
    let scores = example(family).join("scores.csv");
    let data = (family == "ordinal").then_some(scores.as_path());
    job_with_data(command, family, data, out, extra)
}

/// [`job`] with `data` as --data.
fn job_with_data(
    command: &str,
    family: &str,
    data: Option<&Path>,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let words: Vec<&str> = command.split(' ').collect();
    let model = example(family).join("model.json");
    let mut args = words.clone();
    args.extend(["--model", s(&model), "--id-column", "id"]);
    if let Some(data) = data {
        args.extend(["--data", s(data)]);
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

/// `sustain cv` of the bundled `family` example with `data` as --data.
fn cv_with_data(family: &str, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let extra = [&["--no-report"], extra].concat();
    job_with_data("cv", family, Some(data), out, &extra)
}

/// The CSV the bundled `family` example takes its subjects from (mixture: its
/// p_event table; ordinal: its raw scores) with a column `name` added, `label(m)`
/// for the m-th subject (0-based), written to `dir/labelled.csv` (`dir` made if
/// absent).
fn labelled(dir: &Path, family: &str, name: &str, label: impl Fn(usize) -> String) -> PathBuf {
    let source = if family == "ordinal" {
        "scores.csv"
    } else {
        "p_yes.csv"
    };
    let text = std::fs::read_to_string(example(family).join(source)).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    write(dir, "labelled.csv", &with_column(&text, name, label))
}

/// The test subjects of fold `i` in the cv folder `out`.
fn fold_test(out: &Path, i: usize) -> Vec<usize> {
    let text = std::fs::read_to_string(out.join(format!("fold_{i}.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(json["test"].clone()).unwrap()
}

/// Subjects of the bundled examples.
const N_SUBJECTS: usize = 300;

fn cv_json(out: &Path) -> serde_json::Value {
    read_json(out.join("cv.json"))
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
        // Each subtype count of each fold as a job of its own: the same numbers.
        let parts = tmp.path().join(format!("{family}-parts"));
        for i in ["0", "1", "2"] {
            for k in ["1", "2"] {
                ok(&cv(family, &parts, &["--fold", i, "--subtype-count", k]));
            }
        }
        assert!(!parts.join("fold_0.json").exists());
        ok(&sustain(&["cv-combine", "--no-report", "--out", s(&parts)]));
        assert_eq!(cv_json(&parts), json, "{family}");
    }
}

#[test]
fn mixture_and_ordinal_folds_come_from_a_data_column() {
    let tmp = tempfile::tempdir().unwrap();
    // Labels 2, 10 and 3: numeric order makes folds 0, 1, 2 = sites 2, 3, 10.
    let site = |m: usize| ["2", "10", "3"][m % 3].to_string();
    for family in ["mixture", "ordinal"] {
        let dir = tmp.path().join(family);
        let data = labelled(&dir, family, "site", site);
        let all = dir.join("all");
        ok(&cv_with_data(
            family,
            &data,
            &all,
            &["--fold-column", "site"],
        ));
        for (i, label) in ["2", "3", "10"].iter().enumerate() {
            let want: Vec<usize> = (0..N_SUBJECTS).filter(|&m| site(m) == *label).collect();
            assert_eq!(
                fold_test(&all, i),
                want,
                "{family}: fold {i} is site {label}"
            );
        }
        assert!(!all.join("fold_3.json").exists());
        assert_eq!(cv_json(&all)["cvic"].as_array().unwrap().len(), 2);
        // One fold alone equals the same fold of the whole run.
        let one = dir.join("one");
        ok(&cv_with_data(
            family,
            &data,
            &one,
            &["--fold-column", "site", "--fold", "1"],
        ));
        assert_eq!(
            std::fs::read(one.join("fold_1.json")).unwrap(),
            std::fs::read(all.join("fold_1.json")).unwrap(),
            "{family}"
        );
        // --folds must agree with the labels.
        user_error(
            &cv_with_data(
                family,
                &data,
                &dir.join("x"),
                &["--fold-column", "site", "--folds", "2"],
            ),
            &["--folds 2 but --fold-column site names 3 folds"],
        );
        assert!(!dir.join("x").exists());
    }
}

#[test]
fn mixture_and_ordinal_folds_stratified_by_a_data_column_keep_its_proportions() {
    let tmp = tempfile::tempdir().unwrap();
    // Three groups of 120, 90 and 90 subjects.
    let group = |m: usize| ["a", "a", "b", "c", "a", "b", "c", "a", "b", "c"][m % 10].to_string();
    for family in ["mixture", "ordinal"] {
        let dir = tmp.path().join(family);
        let data = labelled(&dir, family, "group", group);
        let out = dir.join("cv");
        ok(&cv_with_data(
            family,
            &data,
            &out,
            &["--folds", "3", "--stratify-by", "group"],
        ));
        let folds: Vec<Vec<usize>> = (0..3).map(|i| fold_test(&out, i)).collect();
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..N_SUBJECTS).collect::<Vec<_>>(),
            "{family}: a partition"
        );
        for g in ["a", "b", "c"] {
            let counts: Vec<usize> = folds
                .iter()
                .map(|f| f.iter().filter(|&&m| group(m) == g).count())
                .collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(
                hi - lo <= 1,
                "{family}: group {g} over the folds: {counts:?}"
            );
        }
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
fn bad_fold_and_label_columns_of_family_models_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    let site = |m: usize| (m % 3).to_string();
    let data = labelled(tmp.path(), "mixture", "site", site);
    // A mixture model reads no --data of its own: the column needs one.
    user_error(
        &cv("mixture", &out, &["--fold-column", "site"]),
        &["--fold-column site", "--data"],
    );
    user_error(
        &cv("mixture", &out, &["--stratify-by", "group"]),
        &["--stratify-by group", "--data"],
    );
    // A column that is not there, for either option.
    for flag in [&["--fold-column"][..], &["--folds", "3", "--stratify-by"]] {
        user_error(
            &cv_with_data("mixture", &data, &out, &[flag, &["nope"]].concat()),
            &["labelled.csv", "'nope'"],
        );
    }
    // A subject without a label.
    let dir = tmp.path().join("gap");
    let gap = labelled(&dir, "mixture", "site", |m| {
        if m == 7 {
            String::new()
        } else {
            site(m)
        }
    });
    user_error(
        &cv_with_data("mixture", &gap, &out, &["--fold-column", "site"]),
        &["labelled.csv: column site: row 8 has no fold label"],
    );
    // Other subjects than the model's, or fewer.
    let text = std::fs::read_to_string(&data).unwrap();
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, text.replacen("\n5,", "\n55,", 1)).unwrap();
    user_error(
        &cv_with_data("mixture", &other, &out, &["--fold-column", "site"]),
        &["other.csv", "row 5", "'55'"],
    );
    let short = tmp.path().join("short.csv");
    let lines: Vec<&str> = text.lines().take(11).collect();
    std::fs::write(&short, lines.join("\n")).unwrap();
    user_error(
        &cv_with_data(
            "mixture",
            &short,
            &out,
            &["--folds", "3", "--stratify-by", "site"],
        ),
        &["short.csv", "10 subjects", "300"],
    );
    // --subtype-count and --fold out of range.
    user_error(
        &cv("mixture", &out, &["--fold", "0", "--subtype-count", "3"]),
        &["--subtype-count 3 is out of range 1..=2"],
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
    // One task per subtype count of each fold: the same cv.json.
    let parts = tmp.path().join("cv2");
    ok(&job(
        "slurm cv",
        "ordinal",
        &parts,
        &[
            "--folds",
            "2",
            "--dry-run",
            "--no-report",
            "--per-subtype-count",
        ],
    ));
    for task in ["0", "1", "2", "3"] {
        bash(&parts.join("slurm/shards.sbatch"), Some(task));
    }
    bash(&parts.join("slurm/combine.sbatch"), None);
    assert!(parts.join("fold_1_k2.json").is_file());
    assert_eq!(cv_json(&parts), cv_json(&cv));
}
