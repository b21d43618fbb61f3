//! `--backend gpu` and `--require-gpu` on `fit`, `evaluate`, `stage` and `cv`. In a
//! build without the `gpu` feature the GPU backend falls back to the CPU with one
//! line on stderr, or fails with one line under --require-gpu; with the feature the
//! GPU results agree with the CPU ones (or the run falls back when no adapter exists).

mod common;
use common::{
    ok, read_json, small, stage_args, stderr, stdout_json, sustain, tiny_with, user_error, TINY,
};
#[cfg(feature = "gpu")]
use common::{quick_fit, s};

use std::process::Output;

#[cfg(feature = "gpu")]
use serde_json::Value;

fn fit(out: &str, extra: &[&str]) -> Output {
    tiny_run("fit", out, extra)
}

/// `sub` (fit or cv) of the small example with the tiny settings, into `out`.
fn tiny_run(sub: &str, out: &str, extra: &[&str]) -> Output {
    sustain(&tiny_with(sub, &TINY, &[&["--out", out], extra].concat()))
}

/// `sustain stage` of the fit in `fit_dir` on `data`, written to `out`.
fn stage(fit_dir: &str, data: &str, out: &str, backend: &str, extra: &[&str]) -> Output {
    let mut args = stage_args(fit_dir, data, out);
    args.extend(["--backend", backend]);
    args.extend(extra);
    sustain(&args)
}

fn evaluate(backend: &str, extra: &[&str]) -> Output {
    let (data, model, seq) = (
        small("data.csv"),
        small("model.json"),
        small("sequences.json"),
    );
    let mut args = vec![
        "evaluate",
        "--data",
        &data,
        "--model",
        &model,
        "--sequences",
        &seq,
        "--id-column",
        "id",
        "--backend",
        backend,
    ];
    args.extend(extra);
    sustain(&args)
}

#[cfg(not(feature = "gpu"))]
const FALLBACK: &str = "this build has no GPU support (feature gpu); running on the CPU";

#[cfg(not(feature = "gpu"))]
#[test]
fn fit_without_gpu_feature_falls_back_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gpu").display().to_string();
    let run = fit(&out, &["--backend", "gpu"]);
    ok(&run);
    assert_eq!(stderr(&run), format!("{FALLBACK}\n"));
    // The fallback is the CPU fit, recorded as such.
    let results = read_json(dir.path().join("gpu/results.json"));
    assert_eq!(results["settings"]["backend"], "cpu");
    let cpu_out = dir.path().join("cpu").display().to_string();
    ok(&fit(&cpu_out, &["--backend", "cpu"]));
    let cpu = read_json(dir.path().join("cpu/results.json"));
    for key in [
        "ml_sequences",
        "ml_f",
        "ml_loglike",
        "em_sequences",
        "mean_f",
    ] {
        for k in 0..2 {
            assert_eq!(results["models"][k][key], cpu["models"][k][key], "{key}");
        }
    }

    let required = dir.path().join("required").display().to_string();
    user_error(
        &fit(&required, &["--backend", "gpu", "--require-gpu"]),
        &["GPU"],
    );
}

#[cfg(not(feature = "gpu"))]
#[test]
fn evaluate_stage_and_cv_without_gpu_feature() {
    let run = evaluate("gpu", &[]);
    let json = stdout_json(&run);
    assert_eq!(json["backend"], "cpu");
    assert_eq!(stderr(&run), format!("{FALLBACK}\n"));
    user_error(&evaluate("gpu", &["--require-gpu"]), &["GPU"]);

    let dir = tempfile::tempdir().unwrap();
    let fit_dir = dir.path().join("fit").display().to_string();
    ok(&fit(&fit_dir, &[]));
    let data = small("data.csv");
    let subjects = dir.path().join("s.csv").display().to_string();
    let stage = |extra: &[&str]| stage(&fit_dir, &data, &subjects, "gpu", extra);
    let run = stage(&[]);
    ok(&run);
    assert_eq!(stderr(&run), format!("{FALLBACK}\n"));
    user_error(&stage(&["--require-gpu"]), &["GPU"]);

    // cv fits every fold: the notice is still printed once.
    let cv = |out: &str, extra: &[&str]| {
        tiny_run(
            "cv",
            out,
            &[&["--folds", "2", "--backend", "gpu"], extra].concat(),
        )
    };
    let run = cv(&dir.path().join("cv").display().to_string(), &[]);
    ok(&run);
    assert_eq!(stderr(&run), format!("{FALLBACK}\n"));
    let cv2 = dir.path().join("cv2").display().to_string();
    user_error(&cv(&cv2, &["--require-gpu"]), &["GPU"]);
}

/// With the feature: the GPU's log-likelihoods agree with the CPU's (f32 on the
/// device), or, without an adapter, the run falls back in one line.
#[cfg(feature = "gpu")]
#[test]
fn evaluate_on_the_gpu_agrees_with_the_cpu() {
    let cpu = stdout_json(&evaluate("cpu", &[]));
    let run = evaluate("gpu", &[]);
    let gpu = stdout_json(&run);
    if gpu["backend"] == "cpu" {
        let err = stderr(&run);
        assert!(err.starts_with("no GPU adapter found ("), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        eprintln!("NOTICE: {err}");
        user_error(&evaluate("gpu", &["--require-gpu"]), &["GPU"]);
        return;
    }
    assert_eq!(gpu["backend"], "gpu");
    let (a, b) = (
        gpu["loglike"].as_f64().unwrap(),
        cpu["loglike"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-5 * b.abs(), "GPU {a} vs CPU {b}");
    let pa = gpu["per_subject"].as_array().unwrap();
    let pb = cpu["per_subject"].as_array().unwrap();
    assert_eq!(pa.len(), pb.len());
    for (x, y) in pa.iter().zip(pb) {
        let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            "GPU {x} vs CPU {y}"
        );
    }
}

/// With the feature: `fit --backend gpu` runs on the GPU (E-M gives the CPU's
/// optimum) or, without an adapter, falls back in one line.
#[cfg(feature = "gpu")]
#[test]
fn fit_on_the_gpu_or_one_line_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| -> Value { read_json(dir.path().join(name).join("results.json")) };
    let run = fit(
        &dir.path().join("gpu").display().to_string(),
        &["--backend", "gpu"],
    );
    ok(&run);
    let gpu = read("gpu");
    let err = stderr(&run);
    if err.is_empty() {
        assert_eq!(gpu["settings"]["backend"], "gpu");
        ok(&fit(&dir.path().join("cpu").display().to_string(), &[]));
        let cpu = read("cpu");
        for k in 0..2 {
            assert_eq!(
                gpu["models"][k]["em_sequences"],
                cpu["models"][k]["em_sequences"]
            );
        }
    } else {
        assert!(err.starts_with("no GPU adapter found ("), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(gpu["settings"]["backend"], "cpu");
    }
}

/// With the feature: `stage --backend gpu` stages on the GPU (f32 posteriors) and
/// writes the CPU's subtypes and stages, probabilities within 1e-5; without an adapter
/// it falls back in one line.
#[cfg(feature = "gpu")]
#[test]
fn stage_on_the_gpu_agrees_with_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let fit_dir = dir.path().join("fit").display().to_string();
    ok(&fit(&fit_dir, &[]));
    let data = small("data.csv");
    let stage = |backend: &str| {
        let out = dir.path().join(format!("{backend}.csv"));
        let run = stage(&fit_dir, &data, &out.display().to_string(), backend, &[]);
        ok(&run);
        let rows: Vec<Vec<String>> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        (rows, stderr(&run))
    };
    let (cpu, _) = stage("cpu");
    let (gpu, err) = stage("gpu");
    if !err.is_empty() {
        assert!(err.starts_with("no GPU adapter found ("), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        return;
    }
    assert_eq!(cpu.len(), gpu.len());
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!(c[0], g[0], "id");
        for col in [2, 4] {
            let (a, b): (f64, f64) = (c[col].parse().unwrap(), g[col].parse().unwrap());
            assert!(
                (a - b).abs() <= 1e-5,
                "subject {}: CPU {c:?}, GPU {g:?}",
                c[0]
            );
        }
        if (&c[1], &c[3]) != (&g[1], &g[3]) {
            eprintln!("subject {}: near tie, CPU {c:?}, GPU {g:?}", c[0]);
        }
    }
}

/// With the feature: `fit --backend gpu` of a mixture and of an ordinal model runs
/// on the GPU (f32 likelihoods) with the CPU's E-M and maximum-likelihood
/// sequences, or, without an adapter, falls back in one line. Samples may differ
/// where an accept/reject decision falls within f32 rounding of its threshold.
#[cfg(feature = "gpu")]
#[test]
fn prefix_model_fits_on_the_gpu_give_the_cpu_sequences() {
    // The ordinal model as probability tables (its model.json reads raw scores).
    for (family, file) in [
        ("golden_mixture", "model.json"),
        ("golden_ordinal", "model_probabilities.json"),
    ] {
        let Some(data) = sustain_testkit::shared_data(family, file, "GPU prefix fit test") else {
            return;
        };
        let model = data.join(file);
        let dir = tempfile::tempdir().unwrap();
        let fit = |name: &str, backend: &str| {
            let run = quick_fit(
                &["--model", s(&model)],
                "2",
                &dir.path().join(name),
                &["--backend", backend, "--seed", "5"],
            );
            ok(&run);
            let text = std::fs::read_to_string(dir.path().join(name).join("results.json"));
            let results: Value = serde_json::from_str(&text.unwrap()).unwrap();
            (results, stderr(&run))
        };
        let (gpu, err) = fit("gpu", "gpu");
        if !err.is_empty() {
            assert!(err.starts_with("no GPU adapter found ("), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert_eq!(gpu["settings"]["backend"], "cpu");
            eprintln!("NOTICE: {err}");
            return;
        }
        assert_eq!(gpu["settings"]["backend"], "gpu", "{family}");
        let (cpu, _) = fit("cpu", "cpu");
        for k in 0..2 {
            let (g, c) = (&gpu["models"][k], &cpu["models"][k]);
            assert_eq!(
                g["em_sequences"],
                c["em_sequences"],
                "{family}, k={}",
                k + 1
            );
            assert_eq!(
                g["ml_sequences"],
                c["ml_sequences"],
                "{family}, k={}",
                k + 1
            );
            let (a, b) = (
                g["ml_loglike"].as_f64().unwrap(),
                c["ml_loglike"].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "{family}: GPU {a} vs CPU {b}"
            );
        }
    }
}
