//! Helpers shared by the CLI's end-to-end tests: running the binary, the bundled
//! small example, files in temporary folders, and the one rule for a user error.

// Each test file is its own crate and uses only some of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the `sustain` binary built for these tests.
pub fn sustain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sustain"))
        .args(args)
        .output()
        .expect("the sustain binary runs")
}

/// The bundled small example folder (`examples/data/small`).
pub fn small_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/small")
}

/// The bundled raw example (`examples/data/raw/raw.csv`).
pub fn raw_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/raw/raw.csv")
}

/// `sustain zscore` of the bundled raw example into `z`, as the README runs it.
pub fn readme_zscore(z: &Path) -> Output {
    sustain(&[
        "zscore",
        "--raw",
        s(&raw_example()),
        "--control-column",
        "Diagnosis",
        "--control-value",
        "0",
        "--covariates",
        "Age,Headsize",
        "--flip",
        "Volume_0,Volume_1,Volume_2,Volume_3",
        "--id-column",
        "id",
        "--out",
        s(z),
    ])
}

/// A file of the bundled small example, as a path string for the command line.
pub fn small(name: &str) -> String {
    small_dir().join(name).display().to_string()
}

/// Stderr, without the lines Mesa's Vulkan loader prints on headless machines while
/// wgpu probes adapters ("error: XDG_RUNTIME_DIR is invalid or not set ..."): they
/// come from the driver, not from `sustain`.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts success and parses stdout as JSON.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("stdout is JSON")
}

/// The one rule for a user error: exit status 2, nothing on stdout, exactly one line
/// `error: ...` on stderr containing every needle, and no panic or backtrace.
pub fn user_error(out: &Output, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err:?}");
    }
    err
}

/// The CSV `text` (a header line, then one line per subject) with a column `name`
/// added: `label(m)` for the m-th subject (0-based).
pub fn with_column(text: &str, name: &str, label: impl Fn(usize) -> String) -> String {
    text.lines()
        .enumerate()
        .map(|(i, line)| match i {
            0 => format!("{line},{name}\n"),
            _ => format!("{line},{}\n", label(i - 1)),
        })
        .collect()
}

/// The JSON file at `path`, parsed; fails the test, naming the file, if it cannot be
/// read or parsed.
pub fn read_json(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A string that lives as long as the test process, for command lines of `&str`.
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The tiny settings of the CLI tests' fits: (flag, value).
pub const TINY: [[&str; 2]; 5] = [
    ["--subtypes", "2"],
    ["--startpoints", "2"],
    ["--iterations", "300"],
    ["--tuning-iterations", "100"],
    ["--chains", "2"],
];

/// `sub --data D --model M --id-column id` on the small example, then `settings`
/// (those that `extra` gives are left out), `--quiet` and `extra`.
pub fn tiny_with<'a>(sub: &'a str, settings: &[[&'a str; 2]], extra: &[&'a str]) -> Vec<&'a str> {
    let (data, model) = (leak(small("data.csv")), leak(small("model.json")));
    let mut args = vec![sub, "--data", data, "--model", model, "--id-column", "id"];
    for pair in settings {
        if !extra.contains(&pair[0]) {
            args.extend(pair);
        }
    }
    args.push("--quiet");
    args.extend(extra);
    args
}

/// [`tiny_with`] the [`TINY`] settings, as owned strings.
pub fn tiny(sub: &str, extra: &[&str]) -> Vec<String> {
    let args = tiny_with(sub, &TINY, extra);
    args.iter().map(|s| s.to_string()).collect()
}

/// `sustain stage --fit FIT --data DATA --id-column id --out OUT`.
pub fn stage_args<'a>(fit: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["stage", "--fit", fit, "--data", data];
    args.extend(["--id-column", "id", "--out", out]);
    args
}

/// Stages the small data set (`small("data.csv")`) with the fit in `fit` into
/// `out`; fails the test unless `stage` succeeds.
pub fn stage_small(fit: &Path, out: &Path) {
    let data = small("data.csv");
    ok(&sustain(&stage_args(
        fit.to_str().unwrap(),
        &data,
        out.to_str().unwrap(),
    )));
}

/// Fails the test, with `what` (not the bytes), unless file `name` is the same,
/// byte for byte, in folders `a` and `b`.
pub fn assert_same_file(a: &Path, b: &Path, name: &str, what: &str) {
    let same = std::fs::read(a.join(name)).unwrap() == std::fs::read(b.join(name)).unwrap();
    assert!(same, "{what}");
}

/// Runs `sustain ARGS` from owned strings.
pub fn run(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sustain(&refs)
}

/// The names of the files in `dir` (not recursive), sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every file under `dir` with its bytes (recursive), to compare a folder before
/// and after a command.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `sustain fit` with quick settings (2 start points, 2 chains of 200 iterations
/// after 50 of tuning, quiet) on the model and data of `inputs`, `subtypes`
/// subtypes, into `out`, then `extra`.
#[allow(dead_code)]
pub fn quick_fit(inputs: &[&str], subtypes: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["fit"];
    args.extend_from_slice(inputs);
    args.extend([
        "--subtypes",
        subtypes,
        "--startpoints",
        "2",
        "--iterations",
        "200",
        "--tuning-iterations",
        "50",
        "--chains",
        "2",
        "--quiet",
        "--out",
        s(out),
    ]);
    args.extend_from_slice(extra);
    sustain(&args)
}

/// DIR/results.json without its wall times (`timing`, `wall_s`), which differ
/// between runs of the same fit.
pub fn results_without_timing(dir: &Path) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("timing");
                map.remove("wall_s");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let mut v = serde_json::from_str(&text).expect("results.json is JSON");
    strip(&mut v);
    v
}

/// `DIR/results.json` with every model's samples inline, as files written before
/// samples.npz held them: the traces read from the samples file it names (so tests
/// compare and edit samples in one form, and old-format files are easy to make).
pub fn results_with_samples(dir: &Path) -> Value {
    let mut v = read_json(dir.join("results.json"));
    for m in v["models"].as_array_mut().unwrap() {
        let k = m["n_subtypes"].as_u64().unwrap() as usize;
        let mut samples: sustain::sampler::MergedSamples =
            serde_json::from_value(m["samples"].clone()).unwrap();
        sustain::samples_file::load_one(&mut samples, k, dir).unwrap();
        m["samples"] = serde_json::to_value(&samples).unwrap();
    }
    v
}

/// Asserts that `sustain evaluate`'s output `out` gives the log-likelihood `want`,
/// and that its per-subject values sum to it, both to 1e-9 relative (`what` names
/// the case).
pub fn assert_loglike(out: &Value, want: f64, what: &str) {
    let got = out["loglike"].as_f64().expect("loglike");
    assert!(
        ((got - want) / want).abs() < 1e-9,
        "{what}: {got} vs {want}"
    );
    let per: f64 = out["per_subject"]
        .as_array()
        .expect("per_subject")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .sum();
    assert!(
        ((per - want) / want).abs() < 1e-9,
        "{what}: per-subject sum {per}"
    );
}
