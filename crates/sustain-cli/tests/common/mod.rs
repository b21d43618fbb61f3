//! Helpers shared by the command-line tests that include this module (`mod common;`):
//! running the binary, the bundled small example, and the checks of a success and
//! of a one-line user error.

#![allow(dead_code)] // each test file uses a part of them

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `sustain ARGS`.
pub fn sustain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sustain"))
        .args(args)
        .output()
        .expect("the sustain binary runs")
}

/// A file of the bundled small example (examples/data/small).
pub fn small(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data/small")
        .join(name)
        .display()
        .to_string()
}

/// `path` as a `&str`.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Writes `text` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Asserts success; returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit status 2, nothing on stdout, and exactly one line `error: ...` on stderr
/// containing every needle; returns the line.
pub fn user_error(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    err
}

/// `sub --data D --model M --id-column id --quiet` on the small example with tiny
/// settings (those that `extra` gives are left out), then `extra`.
pub fn tiny(sub: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        sub,
        "--data",
        &small("data.csv"),
        "--model",
        &small("model.json"),
        "--id-column",
        "id",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for pair in [
        ["--subtypes", "2"],
        ["--startpoints", "2"],
        ["--iterations", "300"],
        ["--tuning-iterations", "100"],
        ["--chains", "2"],
    ] {
        if !extra.contains(&pair[0]) {
            args.extend(pair.iter().map(|s| s.to_string()));
        }
    }
    args.push("--quiet".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
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
