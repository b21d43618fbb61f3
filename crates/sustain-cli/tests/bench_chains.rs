//! End-to-end test of `sustain bench-chains`, running the binary with tiny settings.

mod common;
use common::{sustain, user_error};

use serde_json::Value;

#[test]
fn json_has_four_rows_and_unit_speedup_for_one_chain() {
    let out = sustain(&[
        "bench-chains",
        "--json",
        "--iterations",
        "200",
        "--tuning-iterations",
        "200",
        "--threads",
        "2",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(v["cores"].as_u64().unwrap() >= 1);
    assert!(!v["cpu"].as_str().unwrap().is_empty());
    assert!(v["workload"].as_str().unwrap().starts_with("W1"));
    let rows = v["chains"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let ns: Vec<u64> = rows.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 4, 8]);
    assert_eq!(rows[0]["speedup"].as_f64().unwrap(), 1.0);
    assert_eq!(rows[0]["efficiency"].as_f64().unwrap(), 1.0);
    for r in rows {
        assert!(r["wall_s"].as_f64().unwrap() > 0.0);
        assert!(r["iterations_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["speedup"].as_f64().unwrap() > 0.0);
        assert!(r["efficiency"].as_f64().unwrap() > 0.0);
        // ESS can be undefined (null) on so short a run; when present it is positive.
        assert!(r["ess_per_s"].is_null() || r["ess_per_s"].as_f64().unwrap() >= 0.0);
        // The slowest quantity's ESS per second is at most the log-likelihood's.
        if let (Some(min), Some(ll)) = (r["min_ess_per_s"].as_f64(), r["ess_per_s"].as_f64()) {
            assert!(min >= 0.0 && min <= ll, "{r}");
            assert!(r["slowest"].as_str().unwrap().contains("ESS"), "{r}");
        }
    }
    // One chain split over the threads: the same samples as on one thread.
    let split = &v["split_chain"];
    assert!(split["threads"].as_u64().unwrap() >= 1);
    assert!(split["iterations_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(split["identical_to_one_thread"], Value::Bool(true));
}

#[test]
fn table_names_the_machine_and_bad_settings_are_refused() {
    let out = sustain(&[
        "bench-chains",
        "--iterations",
        "50",
        "--tuning-iterations",
        "50",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cores"), "{text}");
    assert!(text.contains("efficiency"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('8'))
            .count(),
        1
    );

    user_error(&sustain(&["bench-chains", "--threads", "0"]), &["threads"]);
}
