//! `sustain simulate`: the files it writes, that `fit` and `evaluate` read them, its
//! determinism, and its refusals.

mod common;

use common::*;

fn simulate_into(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    simulate_seeded(dir, "7", extra)
}

fn simulate_seeded(dir: &std::path::Path, seed: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "simulate",
        "--subjects",
        "60",
        "--biomarkers",
        "3",
        "--zvals",
        "1,2",
        "--zmax",
        "4",
        "--subtypes",
        "2",
        "--fractions",
        "0.7,0.3",
        "--missing-fraction",
        "0.2",
        "--seed",
        seed,
        "--out",
        s(dir),
    ];
    args.extend(extra);
    sustain(&args)
}

#[test]
fn writes_data_model_and_truth_that_fit_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    ok(&simulate_into(&dir, &[]));
    let csv = std::fs::read_to_string(dir.join("data.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,bm0,bm1,bm2");
    assert_eq!(lines.len(), 61);
    assert!(lines[1].starts_with("s01,"), "{}", lines[1]);
    // 20% missing: some empty cells, and every subject keeps a value.
    let empty = lines[1..]
        .iter()
        .map(|l| l.split(',').skip(1).filter(|c| c.is_empty()).count())
        .collect::<Vec<_>>();
    assert!(empty.iter().sum::<usize>() > 0);
    assert!(empty.iter().all(|&n| n < 3));

    let truth = read_json(dir.join("truth.json"));
    let seqs = truth["sequences"].as_array().unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs.iter().all(|s| s.as_array().unwrap().len() == 6));
    assert_eq!(truth["f"], serde_json::json!([0.7, 0.3]));
    assert_eq!(truth["subtypes"].as_array().unwrap().len(), 60);
    let stages = truth["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 60);
    assert!(stages.iter().all(|k| k.as_u64().unwrap() <= 6));
    assert_eq!(truth["ids"][0], "s01");

    let (data, model, truth_path) = (
        leak(dir.join("data.csv").display().to_string()),
        leak(dir.join("model.json").display().to_string()),
        leak(dir.join("truth.json").display().to_string()),
    );
    // The truth is a sequences file `evaluate` reads.
    let ev = stdout_json(&sustain(&[
        "evaluate",
        "--data",
        data,
        "--model",
        model,
        "--sequences",
        truth_path,
        "--id-column",
        "id",
    ]));
    assert!(ev.to_string().contains("loglike"), "{ev}");
    // `fit --model` accepts the output.
    let fit_out = tmp.path().join("fit");
    ok(&quick_fit(
        &["--data", data, "--model", model, "--id-column", "id"],
        "2",
        &fit_out,
        &[],
    ));
    assert!(fit_out.join("results.json").exists());
}

#[test]
fn same_seed_same_files_other_seed_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    ok(&simulate_into(&a, &[]));
    ok(&simulate_into(&b, &[]));
    for name in ["data.csv", "model.json", "truth.json"] {
        common::assert_same_file(&a, &b, name, name);
    }
    ok(&simulate_seeded(&c, "8", &[]));
    let read = |d: &std::path::Path| std::fs::read(d.join("data.csv")).unwrap();
    assert_ne!(read(&a), read(&c));
}

#[test]
fn refuses_existing_files_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "model.json", "mine");
    user_error(&simulate_into(&dir, &[]), &["model.json", "--force"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("model.json")).unwrap(),
        "mine"
    );
    assert!(!dir.join("data.csv").exists(), "nothing written");
    ok(&simulate_into(&dir, &["--force"]));
    assert!(std::fs::read_to_string(dir.join("model.json"))
        .unwrap()
        .contains("z_vals"));
    // No temporary files left behind.
    assert_eq!(names_in(&dir), vec!["data.csv", "model.json", "truth.json"]);
}

#[test]
fn bad_options_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = s(&out);
    for (args, needle) in [
        (vec!["--zvals", "2,1"], "--zvals"),
        (vec!["--zvals", "1,2", "--zmax", "2"], "--zmax"),
        (vec!["--subjects", "0"], "--subjects"),
        (vec!["--biomarkers", "0"], "--biomarkers"),
        (vec!["--missing-fraction", "1.5"], "--missing-fraction"),
        (
            vec!["--subtypes", "2", "--fractions", "0.5,0.6"],
            "--fractions",
        ),
        (
            vec!["--subtypes", "3", "--fractions", "0.5,0.5"],
            "--fractions",
        ),
        (vec!["--subtypes", "0"], "--subtypes"),
        (vec!["--subjects", "abc"], "--subjects"),
    ] {
        let mut full = vec!["simulate", "--out", o];
        full.extend(args);
        user_error(&sustain(&full), &[needle]);
        assert!(!out.exists(), "nothing written for {full:?}");
    }
}
