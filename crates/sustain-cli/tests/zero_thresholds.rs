//! Models with a 0 before or between a biomarker's thresholds: the zeros decide
//! the events' numbering (as in the reference), so `results.json` must keep them
//! where they were. Before this was fixed, `fit` saved the thresholds with the
//! zeros moved to the end: staging then used another numbering than the fit (a
//! panic for 2 subtypes, silently different subjects' tables for 1).

mod common;
use common::{ok, read_json, small, stage_args, sustain, tiny_with, TINY};

use serde_json::Value;

#[test]
fn zeros_before_and_between_thresholds_survive_a_fit() {
    let dir = std::env::temp_dir().join(format!("sustain-zeros-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, z_vals) in [
        ("before", "[[0, 1, 2], [1, 2, 3], [1, 2, 3], [1, 2, 3]]"),
        ("between", "[[1, 0, 2], [1, 2, 3], [0, 1, 3], [1, 2, 3]]"),
    ] {
        let model = dir.join(format!("model_{name}.json"));
        std::fs::write(
            &model,
            format!(
                r#"{{"biomarkers": ["bm0", "bm1", "bm2", "bm3"], "z_vals": {z_vals}, "z_max": [4, 5, 5, 6]}}"#
            ),
        )
        .unwrap();
        for k in ["1", "2"] {
            let out = dir.join(format!("fit_{name}_{k}"));
            let (out_s, model_s) = (out.display().to_string(), model.display().to_string());
            // The tiny settings with `k` subtypes and the default number of chains.
            let settings = [&[["--subtypes", k]], &TINY[1..4]].concat();
            let mut args = tiny_with("fit", &settings, &["--out", &out_s]);
            args[4] = &model_s;
            ok(&sustain(&args));
            let results = read_json(out.join("results.json"));
            let want: Value = serde_json::from_str(z_vals).unwrap();
            let saved: Vec<Vec<f64>> = serde_json::from_value(results["z_vals"].clone()).unwrap();
            let want: Vec<Vec<f64>> = serde_json::from_value(want).unwrap();
            assert_eq!(saved, want, "{name}: z_vals must be saved as given");
            // Staging the training data from results.json reproduces the fit's table.
            let table = dir.join(format!("stage_{name}_{k}.csv"));
            let table_s = table.display().to_string();
            let data = small("data.csv");
            let mut args = stage_args(&out_s, &data, &table_s);
            args.extend(["--subtypes", k]);
            ok(&sustain(&args));
            assert_eq!(
                std::fs::read_to_string(&table).unwrap(),
                std::fs::read_to_string(out.join(format!("subjects_k{k}.csv"))).unwrap(),
                "{name}, {k} subtype(s)"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
