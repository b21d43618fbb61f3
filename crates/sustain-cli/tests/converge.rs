//! `sustain fit` without --iterations runs its chains until they converge: the
//! rounds, iterations per chain and why they stopped are in results.json and the
//! same whatever the thread count; the budget options are checked. With
//! --iterations and --tempering, chains of a fixed length with ladders.

mod common;
use common::{assert_same_file, ok, read_json, s, sustain, tiny_with, user_error};
use serde_json::Value;

const SETTINGS: [[&str; 2]; 4] = [
    ["--subtypes", "2"],
    ["--startpoints", "2"],
    ["--tuning-iterations", "300"],
    ["--chains", "2"],
];

/// results.json's convergence records of a fit run with `extra`, seconds left out.
fn convergence(out: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let mut args = tiny_with("fit", &SETTINGS, extra);
    args.extend(["--out", s(out)]);
    let stdout = ok(&sustain(&args));
    assert!(stdout.contains("chains ran until"), "{stdout}");
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["settings"]["until_converged"]["max_iterations"].is_u64());
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut c = m["convergence"].clone();
            for r in c["rounds"].as_array_mut().unwrap() {
                r.as_object_mut().unwrap().remove("seconds");
            }
            assert_eq!(m["chains"].as_array().unwrap().len(), 2);
            c
        })
        .collect()
}

#[test]
fn rounds_are_recorded_and_do_not_depend_on_the_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let budget = ["--max-iterations", "40000"];
    let one = convergence(
        &tmp.path().join("one"),
        &[budget[0], budget[1], "--threads", "1"],
    );
    let two = convergence(
        &tmp.path().join("two"),
        &[budget[0], budget[1], "--threads", "2"],
    );
    assert_eq!(one, two);
    // The samples too, to the byte: blockwise moves, two tempered copies and the
    // relabelling (this mode's defaults) decide the same on any thread count.
    assert_same_file(
        &tmp.path().join("one"),
        &tmp.path().join("two"),
        "samples.npz",
        "samples.npz differs between 1 and 2 threads",
    );
    let settings = read_json(tmp.path().join("one/results.json"));
    assert_eq!(settings["settings"]["proposal"], "blockwise");
    for c in &one {
        let betas = c["tempering"]["betas"].as_array().unwrap();
        assert_eq!(betas.len(), 2, "{c}");
    }
    for c in &one {
        let stopped = c["stopped"].as_str().unwrap();
        assert!(["converged", "max_iterations"].contains(&stopped), "{c}");
        let rounds = c["rounds"].as_array().unwrap();
        assert_eq!(rounds[0]["iterations_per_chain"], 5000);
        assert_eq!(
            rounds.last().unwrap()["iterations_per_chain"],
            c["iterations_per_chain"]
        );
    }
}

#[test]
fn budgets_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (extra, needle) in [
        (vec!["--max-seconds", "0"], "--max-seconds"),
        (vec!["--max-iterations", "10"], "--max-iterations"),
        (
            vec!["--iterations", "500", "--max-seconds", "5"],
            "--max-seconds",
        ),
    ] {
        let mut args = tiny_with("fit", &SETTINGS, &extra);
        args.extend(["--out", s(&out)]);
        user_error(&sustain(&args), &[needle]);
    }
}

/// results.json of `out`, parsed.
fn results_json(out: &std::path::Path) -> Value {
    read_json(out.join("results.json"))
}

#[test]
fn fixed_length_chains_take_a_ladder() {
    let tmp = tempfile::tempdir().unwrap();
    let fit = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = tiny_with("fit", &SETTINGS, extra);
        args.extend(["--out", s(&out)]);
        ok(&sustain(&args));
        out
    };
    let n = ["--iterations", "3000"];
    let ladder = |threads: &str| {
        let name = format!("ladder{threads}");
        fit(
            &name,
            &[n[0], n[1], "--tempering", "2", "--threads", threads],
        )
    };
    let (one, two) = (ladder("1"), ladder("2"));
    assert_same_file(&one, &two, "samples.npz", "a ladder differs by threads");
    let v = results_json(&one);
    assert_eq!(
        v["settings"]["proposal"], "exact",
        "--iterations keeps exact moves"
    );
    for m in v["models"].as_array().unwrap() {
        let c = &m["convergence"];
        assert_eq!(c["iterations_per_chain"], 3000, "{c}");
        assert_eq!(c["rounds"].as_array().unwrap().len(), 1, "{c}");
        assert_eq!(c["tempering"]["betas"].as_array().unwrap().len(), 2, "{c}");
        // A fixed length is no budget that stopped the chains.
        let why = m["nonconvergence"].to_string();
        assert!(!why.contains("--max-iterations"), "{why}");
    }
    // Without a ladder (or with one rung) the plain fixed-length chains.
    let plain = fit("plain", &n);
    let one_rung = fit("one_rung", &[n[0], n[1], "--tempering", "1"]);
    assert_same_file(
        &plain,
        &one_rung,
        "samples.npz",
        "--tempering 1 changed the chains",
    );
    let v = results_json(&plain);
    assert!(v["models"][0].get("convergence").is_none());
    let differ = std::fs::read(plain.join("samples.npz")).unwrap()
        != std::fs::read(one.join("samples.npz")).unwrap();
    assert!(differ, "the ladder changed nothing");
    let blockwise = fit(
        "blockwise",
        &[n[0], n[1], "--tempering", "2", "--proposal", "blockwise"],
    );
    assert_eq!(
        results_json(&blockwise)["settings"]["proposal"],
        "blockwise"
    );
}
