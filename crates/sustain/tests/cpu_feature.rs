//! The facade's `cpu` feature chooses where its CPU work runs: the threaded
//! backend (sustain-cpu) with it, the calling thread without it
//! (`cargo test -p sustain --no-default-features --test cpu_feature`). Either
//! build fits and stages, and its results do not depend on the thread count. Each
//! build leaves the JSON of its results in the target's tmp folder, and when the
//! other build's is there the two must be equal to the letter (same bits).

use std::sync::Arc;
use sustain::prelude::*;
use sustain_testkit::{self as testkit, spec};

/// The models and the stages of a small 2-subtype fit on `threads` threads, as JSON.
fn fit_and_stage(threads: usize) -> String {
    let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
    let w = testkit::cohort(events, &[0.6, 0.4], 5, &spec(120, 0.1, 0.0), 9);
    let names: Vec<String> = (0..3).map(|b| format!("b{b}")).collect();
    let config = FitConfig {
        n_startpoints: 3,
        max_subtypes: 2,
        n_iterations: 300,
        n_chains: 2,
        tuning_passes: 1,
        tuning_iterations: 100,
        seed: 5,
        threads,
        ..FitConfig::default()
    };
    let input = FitInput {
        events: &w.events,
        biomarkers: &names,
        data: &w.data,
    };
    let result = fit(&input, &config, None, &|_| {}).unwrap();
    let lik = Arc::new(Likelihood::new(w.events.clone(), &w.data, config.missing).unwrap());
    let ids: Vec<String> = (0..w.data.n_subjects()).map(|m| m.to_string()).collect();
    let stages = stage_subjects(&lik, &result.models[1], &ids, 50, threads);
    assert_eq!(stages.len(), ids.len());
    // As JSON (the models hold NaN: R-hat of one subtype's fraction), without the
    // wall times, the one thing a run may change.
    let mut json = serde_json::to_value((&result.models, &stages)).unwrap();
    drop_wall_times(&mut json);
    json.to_string()
}

fn drop_wall_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("timing");
            map.remove("wall_s");
            map.values_mut().for_each(drop_wall_times);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_wall_times),
        _ => {}
    }
}

#[test]
fn fits_and_stages_the_same_on_one_and_three_threads_in_this_build() {
    let one = fit_and_stage(1);
    assert_eq!(one, fit_and_stage(3));

    let this = if cfg!(feature = "cpu") { "threaded" } else { "serial" };
    let other = if cfg!(feature = "cpu") { "serial" } else { "threaded" };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = |build: &str| dir.join(format!("cpu_feature_{build}.json"));
    let tmp = dir.join(format!(".cpu_feature_{this}.json.tmp{}", std::process::id()));
    std::fs::write(&tmp, &one).unwrap();
    std::fs::rename(&tmp, path(this)).unwrap();
    match std::fs::read_to_string(path(other)) {
        Ok(theirs) => assert_eq!(one, theirs, "the {this} and {other} builds differ"),
        Err(_) => eprintln!(
            "note: no result of the {other} build in {} to compare with",
            dir.display()
        ),
    }
}
