//! Chains that run until they converge save their state after every round; a
//! run stopped by its budget (or killed) continues with `--resume` to the same
//! samples and results as a run never stopped, on any thread count.

mod common;
use common::{assert_same_file, ok, read_json, s, sustain, tiny_with, user_error};
use serde_json::Value;
use std::path::Path;

const SETTINGS: [[&str; 2]; 4] = [
    ["--subtypes", "2"],
    ["--startpoints", "2"],
    ["--tuning-iterations", "300"],
    ["--chains", "2"],
];

/// `sustain fit` of the small example into `out` with `extra`; fails unless it
/// succeeds.
fn fit(out: &Path, extra: &[&str]) {
    let mut args = tiny_with("fit", &SETTINGS, extra);
    args.extend(["--out", s(out)]);
    ok(&sustain(&args));
}

/// DIR/results.json without wall times (`timing`, `wall_s`, a round's `seconds`).
fn results(dir: &Path) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["timing", "wall_s", "seconds"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = read_json(dir.join("results.json"));
    strip(&mut v);
    v
}

/// Why each model's chains stopped, with their iterations per chain.
fn stops(dir: &Path) -> Vec<(String, u64)> {
    results(dir)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let c = &m["convergence"];
            let stopped = c["stopped"].as_str().unwrap().to_string();
            (stopped, c["iterations_per_chain"].as_u64().unwrap())
        })
        .collect()
}

/// Each model's rounds' seconds (a round rerun would take other seconds; one
/// continued from a checkpoint keeps the saved ones).
fn round_seconds(dir: &Path) -> Vec<Vec<f64>> {
    let v = read_json(dir.join("results.json"));
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let rounds = m["convergence"]["rounds"].as_array().unwrap();
            rounds
                .iter()
                .map(|r| r["seconds"].as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Asserts that the models of `after` that `before` stopped by its budget went
/// on from its saved rounds (kept their seconds) instead of running them again.
fn assert_continued(before: &[(String, u64)], seconds: &[Vec<f64>], after: &Path) {
    let now = round_seconds(after);
    for ((stop, _), (was, is)) in before.iter().zip(seconds.iter().zip(&now)) {
        if stop != "converged" {
            assert_eq!(&is[..was.len()], &was[..], "the saved rounds ran again");
        }
    }
}

fn assert_same_fit(a: &Path, b: &Path, what: &str) {
    assert_eq!(results(a), results(b), "{what}: results.json differs");
    // No figure of the stopped run is left that the longer one did not draw.
    let figures = |d: &Path| {
        let mut names = common::names_in(d);
        names.retain(|n| n.ends_with(".svg") || n.ends_with(".png"));
        names
    };
    assert_eq!(figures(a), figures(b), "{what}: other figures");
    assert_same_file(a, b, "samples.npz", &format!("{what}: samples.npz differs"));
    for k in 1..=2 {
        let name = format!("subjects_k{k}.csv");
        assert_same_file(a, b, &name, &format!("{what}: {name} differs"));
    }
}

#[test]
fn a_budget_stopped_run_continues_to_the_samples_of_a_longer_one() {
    budget_stop_continues(&[], 10_000);
}

/// The GPU's lockstep chains (with their default ladders) save their rounds
/// and continue from them as the CPU's do (on Mesa's lavapipe in CI; on the
/// CPU, with a one-line notice, where no adapter exists).
#[cfg(feature = "gpu")]
#[test]
fn a_budget_stopped_gpu_run_continues_to_the_samples_of_a_longer_one() {
    // Shorter (lavapipe's lockstep iterations are slow), yet at least the first
    // round (5,000), so that both budgets run the same rounds.
    budget_stop_continues(&["--backend", "gpu"], 5_000);
}

/// Fits stopped at `short` iterations per chain and resumed to twice that (on
/// one thread and two, either way) against a fit never stopped, all with
/// `backend`.
fn budget_stop_continues(backend: &[&str], short: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let (short_s, long_s) = (short.to_string(), (2 * short).to_string());
    let (short_s, long_s) = (short_s.as_str(), long_s.as_str());
    let with = |extra: &[&str]| -> Vec<String> {
        backend.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let fit = |out: &Path, extra: Vec<String>| {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        fit(out, &extra)
    };
    fit(
        &whole,
        with(&["--max-iterations", long_s, "--threads", "2"]),
    );
    for (stopped_on, resumed_on) in [("1", "2"), ("2", "1")] {
        let out = tmp.path().join(format!("resumed{stopped_on}"));
        fit(
            &out,
            with(&["--max-iterations", short_s, "--threads", stopped_on]),
        );
        // The short budget must stop a model before the long one would, or this
        // tests nothing.
        let stopped = stops(&out);
        assert!(
            stopped.contains(&("max_iterations".to_string(), short)),
            "{stopped:?}"
        );
        let seconds = round_seconds(&out);
        fit(
            &out,
            with(&[
                "--max-iterations",
                long_s,
                "--threads",
                resumed_on,
                "--resume",
            ]),
        );
        let what = format!("stopped on {stopped_on} thread(s), resumed on {resumed_on}");
        assert_same_fit(&out, &whole, &what);
        assert_continued(&stopped, &seconds, &out);
    }
}

#[test]
fn a_run_killed_after_a_round_continues_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let budget = ["--max-iterations", "10000"];
    fit(&whole, &budget);
    let out = tmp.path().join("killed");
    fit(&out, &budget);
    let (before, seconds) = (stops(&out), round_seconds(&out));
    // As if killed after its chains' last round was saved, before the model
    // was: the run goes on from the saved round.
    let cp = out.join("checkpoints");
    let mut rounds_left = 0;
    for k in 1..=2 {
        if cp.join(format!("checkpoint_rounds_k{k}.json")).exists() {
            rounds_left += 1;
            for ext in ["json", "npz"] {
                std::fs::remove_file(cp.join(format!("checkpoint_k{k}.{ext}"))).unwrap();
            }
        }
    }
    assert!(
        rounds_left > 0,
        "no model stopped by its budget kept its rounds"
    );
    for f in ["results.json", "samples.npz"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let mut extra = budget.to_vec();
    extra.push("--resume");
    fit(&out, &extra);
    assert_same_fit(&out, &whole, "killed after a round");
    assert_continued(&before, &seconds, &out);

    // A replaced samples file of the saved rounds is refused, by name.
    std::fs::remove_file(cp.join("checkpoint_k2.json")).unwrap();
    let npz = cp.join("checkpoint_rounds_k2.npz");
    let mut bytes = std::fs::read(&npz).unwrap();
    let last = bytes.len() - 30;
    bytes[last] ^= 1;
    std::fs::write(&npz, bytes).unwrap();
    let mut args = tiny_with("fit", &SETTINGS, &extra);
    args.extend(["--out", s(&out)]);
    user_error(&sustain(&args), &["checkpoint_rounds_k2"]);
}
