//! Values the likelihood cannot hold are rejected with the file, row and column
//! (before: a value beyond about 1.4e154 made `evaluate` print a null log-likelihood
//! and `fit` a NaN one, with exit status 0), and so is a non-positive `z_max`.

mod common;
use common::{sustain, user_error};

#[test]
fn huge_values_and_bad_z_max_are_user_errors() {
    let dir = std::env::temp_dir().join(format!("sustain-extreme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).display().to_string();
    std::fs::write(p("data.csv"), "id,a,b\ns1,0.5,1.0\ns2,1e155,2.0\ns3,0.1,\n").unwrap();
    std::fs::write(
        p("model.json"),
        r#"{"biomarkers": ["a", "b"], "z_vals": [[1, 2], [1, 2]], "z_max": [5, 5]}"#,
    )
    .unwrap();
    std::fs::write(
        p("zmax0.json"),
        r#"{"biomarkers": ["a", "b"], "z_vals": [[1, 2], [1, 2]], "z_max": [5, 0]}"#,
    )
    .unwrap();
    std::fs::write(
        p("seq.json"),
        r#"{"sequences": [[0, 1, 2, 3]], "f": [1.0]}"#,
    )
    .unwrap();
    // `sub --data data.csv --model MODEL --id-column id`, then `extra`.
    let run = |sub: &str, model: &str, extra: &[&str]| {
        let (data, model) = (p("data.csv"), p(model));
        let mut args = vec![sub, "--data", &data, "--model", &model, "--id-column", "id"];
        args.extend(extra);
        sustain(&args)
    };
    let seq = p("seq.json");
    let out = run("evaluate", "model.json", &["--sequences", &seq]);
    user_error(&out, &["data.csv", "row 2", "'a'", "too large"]);
    let out = run(
        "fit",
        "model.json",
        &["--subtypes", "1", "--out", &p("fit")],
    );
    user_error(&out, &["data.csv", "row 2", "'a'", "too large"]);
    std::fs::write(p("data.csv"), "id,a,b\ns1,0.5,1.0\ns2,1.5,2.0\ns3,0.1,\n").unwrap();
    let out = run(
        "evaluate",
        "zmax0.json",
        &["--sequences", &seq, "--missing", "reference"],
    );
    user_error(&out, &["zmax0.json", "z_max", "positive"]);
    // More subtypes than subjects (3 here): refused, where it used to fit repeated
    // subtypes with exit status 0.
    let out = run(
        "fit",
        "model.json",
        &["--subtypes", "4", "--out", &p("fit4")],
    );
    user_error(&out, &["cannot fit 4 subtypes", "only 3 subject"]);
    assert!(
        !dir.join("fit4").exists(),
        "no output folder for a refused fit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
