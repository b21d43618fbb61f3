//! End-to-end tests of `sustain fit`, `stage`, `plot`, `cv`, `cv-combine` and
//! `demo`, running the binary on the bundled small example with tiny settings.

mod common;
use common::{ok, read_json, small, sustain, tiny_with, user_error};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

/// The tiny settings of these tests: more iterations than the other CLI tests'.
const TINY: [[&str; 2]; 5] = [
    ["--subtypes", "2"],
    ["--startpoints", "2"],
    ["--iterations", "500"],
    ["--tuning-iterations", "200"],
    ["--chains", "2"],
];

fn fit_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    tiny_with("fit", &TINY, &[&["--out", out], extra].concat())
}

/// One fit shared by the tests (read-only): its folder and stdout.
fn fitted() -> &'static (tempfile::TempDir, PathBuf, String) {
    static FIT: OnceLock<(tempfile::TempDir, PathBuf, String)> = OnceLock::new();
    FIT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fit");
        let stdout = ok(&sustain(&fit_args(dir.to_str().unwrap(), &[])));
        (tmp, dir, stdout)
    })
}

fn png_pixels(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8()
}

/// The files a fit writes for each subtype count 1 to `k`.
fn per_model_files(k: usize) -> Vec<String> {
    (1..=k)
        .flat_map(|k| {
            ["subjects", "pvd", "pvd", "trace", "trace"]
                .iter()
                .zip(["csv", "svg", "png", "svg", "png"])
                .map(move |(stem, ext)| format!("{stem}_k{k}.{ext}"))
        })
        .collect()
}

#[test]
fn fit_writes_every_output() {
    let (_, dir, stdout) = fitted();
    for name in per_model_files(2) {
        assert!(dir.join(&name).is_file(), "{name} missing");
        assert!(stdout.contains(&name), "{name} not in the summary");
    }
    assert!(dir.join("checkpoints/checkpoint_k2.json").is_file());
    assert!(stdout.contains("ML log-likelihood"));
    assert!(stdout.contains("converged"));

    let results = read_json(dir.join("results.json"));
    for key in [
        "version",
        "biomarkers",
        "z_vals",
        "z_max",
        "events",
        "settings",
        "fingerprint",
        "models",
    ] {
        assert!(results.get(key).is_some(), "results.json lacks {key}");
    }
    assert_eq!(
        results["biomarkers"],
        serde_json::json!(["bm0", "bm1", "bm2", "bm3"])
    );
    let models = results["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for (i, m) in models.iter().enumerate() {
        assert_eq!(m["n_subtypes"], i + 1);
        for key in [
            "ml_sequences",
            "ml_f",
            "ml_loglike",
            "mean_f",
            "diagnostics",
            "pvd",
            "timing",
            "samples",
        ] {
            assert!(m.get(key).is_some(), "model {} lacks {key}", i + 1);
        }
        for key in [
            "rhat_loglike",
            "ess_loglike",
            "acceptance",
            "converged",
            "warnings",
        ] {
            assert!(
                m["diagnostics"].get(key).is_some(),
                "diagnostics lack {key}"
            );
        }
        assert_eq!(m["ml_sequences"].as_array().unwrap().len(), i + 1);
        assert_eq!(m["samples"]["chains"].as_array().unwrap().len(), 2);
    }

    let csv = std::fs::read_to_string(dir.join("subjects_k2.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,ml_subtype,prob_ml_subtype,ml_stage,prob_ml_stage"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 200);
    assert!(rows[0].starts_with("s001,"));
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 5);
        assert!(cells[1] == "0" || cells[1] == "1");
        let p: f64 = cells[2].parse().unwrap();
        assert!((0.0..=1.0 + 1e-12).contains(&p));
        assert!(cells[3].parse::<usize>().unwrap() <= 11);
    }

    // PNGs decode and hold the expected content: the PVD has cells of the z = 1
    // colour at full certainty (light red, 255 140 115), the traces coloured chain
    // lines.
    let pvd = png_pixels(&dir.join("pvd_k2.png"));
    let red = pvd
        .pixels()
        .filter(|p| p[0] > 240 && p[1].abs_diff(140) < 20 && p[2].abs_diff(115) < 20)
        .count();
    assert!(red > 500, "pvd_k2.png has {red} light red pixels");
    let trace = png_pixels(&dir.join("trace_k2.png"));
    let coloured = trace
        .pixels()
        .filter(|p| p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60)
        .count();
    assert!(
        coloured > 200,
        "trace_k2.png has {coloured} coloured pixels"
    );
    let svg = std::fs::read_to_string(dir.join("pvd_k2.svg")).unwrap();
    assert!(svg.contains("Subtype 1 (f = ") && svg.contains("Subtype 2 (f = "));
    let svg = std::fs::read_to_string(dir.join("trace_k2.svg")).unwrap();
    assert!(svg.contains("converged"));
}

#[test]
fn stage_on_the_training_data_reproduces_the_subjects() {
    let (tmp, dir, _) = fitted();
    // `stage --fit DIR --data data.csv EXTRA --out OUT`.
    let stage = |extra: &[&str], out: &Path| {
        let data = small("data.csv");
        let mut args = vec!["stage", "--fit", dir.to_str().unwrap(), "--data", &data];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        sustain(&args)
    };
    let out = tmp.path().join("staged.csv");
    ok(&stage(&["--id-column", "id"], &out));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(dir.join("subjects_k2.csv")).unwrap()
    );
    let out1 = tmp.path().join("staged1.csv");
    ok(&stage(&["--id-column", "id", "--subtypes", "1"], &out1));
    assert_eq!(
        std::fs::read(&out1).unwrap(),
        std::fs::read(dir.join("subjects_k1.csv")).unwrap()
    );
    let bad = stage(&["--subtypes", "7"], &out1);
    user_error(&bad, &["--subtypes 7"]);
}

#[test]
fn plot_redraws_identical_bytes() {
    let (_, dir, _) = fitted();
    let copy = tempfile::tempdir().unwrap();
    for name in ["results.json", "samples.npz"] {
        std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
    }
    ok(&sustain(&["plot", "--fit", copy.path().to_str().unwrap()]));
    for k in 1..=2 {
        for name in [
            format!("pvd_k{k}.svg"),
            format!("pvd_k{k}.png"),
            format!("trace_k{k}.svg"),
            format!("trace_k{k}.png"),
        ] {
            common::assert_same_file(dir, copy.path(), &name, &format!("{name} differs"));
        }
    }
}

/// The subjects CSVs and figures are written while other subtype counts' chains
/// still run (several threads) or after the fit (one thread): the same bytes, and
/// the same models in results.json.
#[test]
fn outputs_do_not_depend_on_the_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["1", "3"]
        .iter()
        .map(|threads| {
            let dir = tmp.path().join(format!("t{threads}"));
            let extra = ["--subtypes", "3", "--threads", threads];
            ok(&sustain(&fit_args(dir.to_str().unwrap(), &extra)));
            dir
        })
        .collect();
    for name in per_model_files(3) {
        common::assert_same_file(&dirs[0], &dirs[1], &name, &format!("{name} differs"));
    }
    assert_eq!(models_of(&dirs[0]), models_of(&dirs[1]));
    // The samples file too, byte for byte.
    assert!(
        std::fs::read(dirs[0].join("samples.npz")).unwrap()
            == std::fs::read(dirs[1].join("samples.npz")).unwrap(),
        "samples.npz differs"
    );
}

/// A new folder in a temporary one, holding only `results` as results.json.
fn folder_holding(results: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("fit");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("results.json"), results).unwrap();
    (tmp, folder)
}

#[test]
fn resume_and_existing_folders() {
    let (_, dir, _) = fitted();
    let (_tmp, out) = folder_holding(&std::fs::read(dir.join("results.json")).unwrap());
    user_error(
        &sustain(&fit_args(out.to_str().unwrap(), &[])),
        &["already holds a fit"],
    );
}

/// A folder `tmp/fit` holding only the checkpoints `<stem>_k1.json` and
/// `<stem>_k2.json` of the fit in `dir`.
fn with_checkpoints(tmp: &Path, dir: &Path, stem: &str) -> PathBuf {
    let out = tmp.join("fit");
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    for k in 1..=2 {
        let name = format!("checkpoints/{stem}_k{k}.json");
        std::fs::copy(dir.join(&name), out.join(&name)).unwrap();
        // A finished subtype count's samples, beside it.
        let samples = format!("checkpoints/{stem}_k{k}.npz");
        if dir.join(&samples).exists() {
            std::fs::copy(dir.join(&samples), out.join(&samples)).unwrap();
        }
    }
    out
}

#[test]
fn resume_reuses_the_checkpoints() {
    let (_, dir, _) = fitted();
    let tmp = tempfile::tempdir().unwrap();
    let out = with_checkpoints(tmp.path(), dir, "checkpoint");
    user_error(
        &sustain(&fit_args(out.to_str().unwrap(), &[])),
        &["--resume"],
    );
    ok(&sustain(&fit_args(out.to_str().unwrap(), &["--resume"])));
    assert_eq!(
        std::fs::read(out.join("results.json")).unwrap(),
        std::fs::read(dir.join("results.json")).unwrap()
    );
}

#[test]
fn resume_from_e_m_checkpoints_runs_only_the_chains() {
    let (_, dir, _) = fitted();
    let tmp = tempfile::tempdir().unwrap();
    // The E-M optima alone, as after a run stopped during the chains.
    let out = with_checkpoints(tmp.path(), dir, "checkpoint_em");
    let args: Vec<&str> = fit_args(out.to_str().unwrap(), &["--resume"])
        .into_iter()
        .filter(|a| *a != "--quiet")
        .collect();
    let run = sustain(&args);
    ok(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("E-M"), "E-M ran again:\n{stderr}");
    assert!(stderr.contains("MCMC"), "{stderr}");
    // The same models but for wall times.
    assert_eq!(models_of(dir), models_of(&out));
    for k in 1..=2 {
        assert!(out
            .join(format!("checkpoints/checkpoint_k{k}.json"))
            .is_file());
    }
}

fn cv_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = fit_args(out, extra);
    args[0] = "cv";
    args.extend(["--folds", "2"]);
    args
}

#[test]
fn cv_by_folds_equals_cv_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    let parts = tmp.path().join("parts");
    let (all_s, parts_s) = (all.to_str().unwrap(), parts.to_str().unwrap());
    let stdout = ok(&sustain(&cv_args(all_s, &[])));
    assert!(stdout.contains("CVIC"));
    for f in [
        "fold_0.json",
        "fold_1.json",
        "cv.json",
        "cvic.svg",
        "cvic.png",
    ] {
        assert!(all.join(f).is_file(), "{f} missing");
    }
    png_pixels(&all.join("cvic.png"));
    ok(&sustain(&cv_args(parts_s, &["--fold", "0"])));
    user_error(
        &sustain(&["cv-combine", "--out", parts_s]),
        &["missing fold(s) 1"],
    );
    ok(&sustain(&cv_args(parts_s, &["--fold", "1"])));
    ok(&sustain(&["cv-combine", "--out", parts_s]));
    let a = std::fs::read(all.join("cv.json")).unwrap();
    assert_eq!(a, std::fs::read(parts.join("cv.json")).unwrap());
    let cv: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(cv["cvic"].as_array().unwrap().len(), 2);
    assert_eq!(cv["loglike_matrix"].as_array().unwrap().len(), 2);
    // Rerunning reuses the fold files.
    let again = sustain(&cv_args(all_s, &[]));
    ok(&again);
    assert!(
        String::from_utf8_lossy(&again.stderr).is_empty(),
        "--quiet prints nothing"
    );
    assert_eq!(a, std::fs::read(all.join("cv.json")).unwrap());
    // Other settings: the fold files are refused.
    user_error(
        &sustain(&cv_args(all_s, &["--seed", "7"])),
        &["different data"],
    );
}

/// `sub` on `data` with thresholds 1, 2 and maximum 5 for every biomarker instead
/// of a model file: one subtype, the other tiny settings, then `extra`.
fn zvals_args<'a>(sub: &'a str, data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![sub, "--data", data, "--zvals", "1,2", "--zmax", "5"];
    args.extend(["--id-column", "id"]);
    args.extend(extra);
    args.extend(TINY[1..].iter().flatten());
    args.extend(["--subtypes", "1", "--quiet", "--out", out]);
    args
}

#[test]
fn cv_stratified_with_uniform_thresholds() {
    let tmp = tempfile::tempdir().unwrap();
    // The example's data with a label column (the true subtype).
    let data = std::fs::read_to_string(small("data.csv")).unwrap();
    let truth = std::fs::read_to_string(small("truth.csv")).unwrap();
    let joined: String = data
        .lines()
        .zip(truth.lines())
        .map(|(d, t)| format!("{d},{}\n", t.split(',').nth(1).unwrap()))
        .collect();
    let path = tmp.path().join("labelled.csv");
    std::fs::write(&path, joined).unwrap();
    let out = tmp.path().join("cv");
    let (data, out_s) = (path.to_str().unwrap(), out.to_str().unwrap());
    let extra = ["--stratify-by", "subtype", "--folds", "2"];
    let args = zvals_args("cv", data, out_s, &extra);
    ok(&sustain(&args));
    let fold = read_json(out.join("fold_0.json"));
    assert_eq!(fold["test"].as_array().unwrap().len(), 100);
    assert!(out.join("cv.json").is_file());
    // An absent stratification column is an error.
    let bad = args
        .iter()
        .map(|a| if *a == "subtype" { "nope" } else { a })
        .collect::<Vec<_>>();
    user_error(&sustain(&bad), &["nope"]);
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_str().unwrap();
    user_error(
        &sustain(&[
            "stage",
            "--fit",
            t,
            "--data",
            &small("data.csv"),
            "--out",
            "x.csv",
        ]),
        &["is not a fit folder (no results.json)"],
    );
    user_error(
        &sustain(&["plot", "--fit", t]),
        &["is not a fit folder (no results.json)"],
    );
    let cv = tmp.path().join("cv");
    user_error(
        &sustain(&cv_args(cv.to_str().unwrap(), &["--fold", "5"])),
        &["--fold 5"],
    );
    user_error(&sustain(&fit_args("/proc/x", &[])), &["/proc/x"]);
    user_error(&sustain(&cv_args("/proc/x", &[])), &["/proc/x"]);
    user_error(&sustain(&["cv-combine", "--out", t]), &["no fold_"]);
    user_error(
        &sustain(&fit_args(t, &["--iterations", "0"])),
        &["iterations"],
    );
    std::fs::write(tmp.path().join("results.json"), "{").unwrap();
    user_error(&sustain(&["plot", "--fit", t]), &["results.json"]);
}

#[test]
fn zvals_replace_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("z");
    let data = small("data.csv");
    ok(&sustain(&zvals_args(
        "fit",
        &data,
        out.to_str().unwrap(),
        &[],
    )));
    let results = read_json(out.join("results.json"));
    assert_eq!(
        results["z_vals"],
        serde_json::json!([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    );
    assert_eq!(results["events"].as_array().unwrap().len(), 8);
}

#[test]
fn demo_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let stdout = ok(&sustain(&[
        "demo",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("pvd_k2.png"));
    for f in [
        "results.json",
        "subjects_k2.csv",
        "pvd_k2.png",
        "trace_k2.svg",
        "input/data.csv",
        "input/model.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn help_documents_the_defaults() {
    let help = ok(&sustain(&["fit", "--help"]));
    for d in [
        "[default: 3]",
        "[default: 25]",
        // Issue 25: no fixed --iterations by default; chains run until they
        // converge within --max-seconds and --max-iterations.
        "[default: 300]",
        "[default: 2000000]",
        "[default: 4]",
        "[default: 42]",
        "[default: 10000]",
        "[default: blockwise",
        "[default: marginalise]",
        "[default: cpu]",
        "--resume",
        "--quiet",
        "--zvals",
        "--threads",
    ] {
        assert!(help.contains(d), "fit --help lacks {d}");
    }
    for cmd in ["stage", "cv", "cv-combine", "plot", "demo"] {
        ok(&sustain(&[cmd, "--help"]));
    }
    assert!(ok(&sustain(&["demo", "--help"])).contains("[default: sustain-demo]"));
}

/// The example's data with a `site` column: the user's test folds.
fn with_sites(dir: &Path, label: impl Fn(usize) -> String) -> String {
    let data = std::fs::read_to_string(small("data.csv")).unwrap();
    let text: String = data
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},site\n")
            } else {
                format!("{l},{}\n", label(i - 1))
            }
        })
        .collect();
    let path = dir.join("sites.csv");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn cv_with_user_given_folds() {
    let tmp = tempfile::tempdir().unwrap();
    // Labels 2, 10 and 3: numeric order makes folds 0, 1, 2 = sites 2, 3, 10.
    let site = |m: usize| ["2", "10", "3"][m % 3].to_string();
    let data = with_sites(tmp.path(), site);
    let run = |out: &str, extra: &[&str]| {
        let mut args = fit_args(out, extra);
        args[0] = "cv";
        args[2] = Box::leak(data.clone().into_boxed_str());
        args.extend(["--fold-column", "site"]);
        sustain(&args)
    };
    let all = tmp.path().join("all");
    let all_s = all.to_str().unwrap();
    let stdout = ok(&run(all_s, &[]));
    assert!(stdout.contains("CVIC"), "{stdout}");
    let fold = |dir: &Path, i: usize| read_json(dir.join(format!("fold_{i}.json")));
    for (i, label) in ["2", "3", "10"].iter().enumerate() {
        let want: Vec<usize> = (0..200).filter(|&m| site(m) == *label).collect();
        let got: Vec<usize> = serde_json::from_value(fold(&all, i)["test"].clone()).unwrap();
        assert_eq!(got, want, "fold {i} holds the subjects of site {label}");
    }
    assert!(!all.join("fold_3.json").exists());
    // One fold alone equals the same fold of the whole run.
    let one = tmp.path().join("one");
    ok(&run(one.to_str().unwrap(), &["--fold", "1"]));
    assert_eq!(fold(&one, 1), fold(&all, 1));
    // --folds must agree with the labels; --stratify-by cannot be combined.
    user_error(
        &run(all_s, &["--folds", "2"]),
        &["--folds 2 but --fold-column site names 3 folds"],
    );
    let bad = run(all_s, &["--stratify-by", "site"]);
    assert_eq!(bad.status.code(), Some(2));
    // A subject without a label, and a single label, are errors.
    let dir = tmp.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let data = with_sites(&dir, |m| if m == 7 { String::new() } else { site(m) });
    let mut args = fit_args(all_s, &[]);
    args[0] = "cv";
    args[2] = Box::leak(data.into_boxed_str());
    args.extend(["--fold-column", "site"]);
    user_error(
        &sustain(&args),
        &["sites.csv: column site: row 8 has no fold label"],
    );
    let data = with_sites(&dir, |_| "a".into());
    args[2] = Box::leak(data.into_boxed_str());
    user_error(
        &sustain(&args),
        &["column site: the fold labels name 1 fold(s); cross-validation needs at least 2"],
    );
}

/// The models of the fit in folder `d` (its results.json), without wall times.
fn models_of(d: &Path) -> Value {
    let mut r = common::results_with_samples(d);
    for m in r["models"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("timing");
        for c in m["samples"]["chains"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("wall_s");
        }
    }
    r["models"].take()
}

/// `stage` with the fit in `fit` gives the subjects table (k = 2) of the fit in
/// `fitted`, byte for byte.
fn assert_stages_as_fitted(fit: &Path, fitted: &Path) {
    let staged = fit.join("staged.csv");
    common::stage_small(fit, &staged);
    assert_eq!(
        std::fs::read(&staged).unwrap(),
        std::fs::read(fitted.join("subjects_k2.csv")).unwrap()
    );
}

/// A long run keeps its samples in samples.npz: results.json stays under 1 MB
/// while the same samples as JSON numbers (as results.json held them before) take
/// more, and `stage` reads them back to the subjects the fit wrote.
#[test]
fn results_json_stays_small_on_a_long_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("long");
    let o = dir.to_str().unwrap();
    ok(&sustain(&fit_args(
        o,
        &["--iterations", "40000", "--chains", "3"],
    )));
    let json = std::fs::metadata(dir.join("results.json")).unwrap().len();
    let inline = common::results_with_samples(&dir).to_string().len() as u64;
    assert!(json < 1_000_000, "results.json is {json} bytes");
    assert!(
        inline > 1_000_000,
        "inline samples take only {inline} bytes"
    );
    let npz = std::fs::metadata(dir.join("samples.npz")).unwrap().len();
    assert!(npz < inline, "samples.npz {npz} bytes, inline {inline}");
    assert_stages_as_fitted(&dir, &dir);
}

/// results.json written before samples.npz (the samples inline, no samples file):
/// `stage`, `plot` and `report` still read it, and give what the fit gave.
#[test]
fn results_with_inline_samples_still_stage_plot_and_report() {
    let (_, dir, _) = fitted();
    let inline = common::results_with_samples(dir);
    assert!(inline["models"][1]["samples"]["chains"][0]["trace"].is_object());
    let (_tmp, old) = folder_holding(inline.to_string().as_bytes());
    let o = old.to_str().unwrap();
    assert_stages_as_fitted(&old, dir);
    ok(&sustain(&["plot", "--fit", o]));
    for name in ["pvd_k2.svg", "trace_k2.svg", "trace_k1.png"] {
        common::assert_same_file(&old, dir, name, &format!("{name} differs"));
    }
    ok(&sustain(&["report", o]));
    assert!(old.join("report.html").is_file());
    assert!(!old.join("samples.npz").exists());
}
