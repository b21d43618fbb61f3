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
pub fn user_error(out: &Output, needles: &[&str]) {
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
