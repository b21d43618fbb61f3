//! A fit is determined by its seed, whatever the thread count: E-M start points and
//! splits run on threads (all clusters' start points in one pool), the chains of one
//! subtype count overlap E-M of the next when there is more than one thread, and
//! chains run on threads; none of it may change a number. Nor may the facade's
//! `cpu` feature: without it (`cargo test -p sustain --no-default-features --test
//! determinism`) the same work runs on the calling thread.

use sustain::prelude::*;
use sustain_testkit::{self as testkit, spec};

fn cohort(n_subjects: usize) -> (EventSet, Dataset, Vec<String>) {
    let events = EventSet::new(
        &[
            vec![1.0, 2.0],
            vec![1.0, 2.0],
            vec![1.5],
            vec![1.0, 2.0, 3.0],
        ],
        &[4.0, 3.5, 3.0, 5.0],
    )
    .unwrap();
    let w = testkit::cohort(events, &[0.5, 0.3, 0.2], 7, &spec(n_subjects, 0.1, 0.1), 8);
    let names = (0..4).map(|b| format!("b{b}")).collect();
    (w.events, w.data, names)
}

fn run(threads: usize) -> FitResult {
    run_with(threads, 160, 3, 2)
}

fn run_with(threads: usize, n_subjects: usize, max_subtypes: usize, n_chains: usize) -> FitResult {
    let (events, data, names) = cohort(n_subjects);
    let config = FitConfig {
        n_startpoints: 4,
        max_subtypes,
        n_iterations: 400,
        n_chains,
        tuning_passes: 1,
        tuning_iterations: 200,
        seed: 11,
        threads,
        ..FitConfig::default()
    };
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &data,
    };
    Fit::zscore(&input, config).run().unwrap()
}

#[test]
fn fit_is_the_same_on_one_two_and_three_threads() {
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        same(&one, &other, threads);
    }
}

/// 16 biomarkers: E-M walks the positions, and its start points share their
/// choices (`em_memo`); which start point reaches a state first must not matter.
#[test]
fn fit_with_shared_em_choices_is_the_same_on_one_and_three_threads() {
    let w = testkit::walk_cohort(16, &[1.0, 2.0], 2, 150, 5, 1.0);
    let names: Vec<String> = (0..16).map(|b| format!("b{b}")).collect();
    let run = |threads: usize| {
        let config = FitConfig {
            n_startpoints: 6,
            max_subtypes: 2,
            n_iterations: 100,
            n_chains: 1,
            tuning_passes: 1,
            tuning_iterations: 100,
            seed: 3,
            threads,
            ..FitConfig::default()
        };
        let input = FitInput {
            events: &w.events,
            biomarkers: &names,
            data: &w.data,
        };
        Fit::zscore(&input, config).run().unwrap()
    };
    let one = run(1);
    same(&one, &run(3), 3);
}

/// One chain over 600 subjects (10 blocks): with one subtype count and 2 threads
/// its tuning and chain are split over both threads by subjects; with two subtype
/// counts on 4 threads each count's chain gets 2 threads (where the machine has 2
/// cores or more).
#[test]
fn fit_with_a_split_chain_is_the_same_as_on_one_thread() {
    assert_eq!(
        sustain_cpu::sharded::useful_shards(600, 2, sustain_model::TOTAL_BLOCK),
        2
    );
    let one = run_with(1, 600, 1, 1);
    let two = run_with(2, 600, 1, 1);
    same(&one, &two, 2);
    let one = run_with(1, 600, 2, 1);
    let four = run_with(4, 600, 2, 1);
    same(&one, &four, 4);
}

/// A batch engine (here over the serial evaluator, as the GPU's is in a `gpu` build)
/// runs E-M jobs concurrently, each with an evaluator of its own from a pool, and its
/// chains in lockstep with drawing threads: the same result on 1, 2 and 3 threads.
#[test]
fn batch_engine_fit_is_the_same_on_one_two_and_three_threads() {
    use std::sync::Arc;
    use sustain::backend::{BoxedEvaluator, Engine};
    use sustain_model::SerialEvaluator;
    let engine = Engine::batch("serial batch", |model: &dyn std::any::Any| {
        let lik = model.downcast_ref::<Arc<Likelihood>>()?;
        Some(Ok(
            Box::new(SerialEvaluator::new(Arc::clone(lik))) as BoxedEvaluator
        ))
    });
    let (events, data, names) = cohort(160);
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &data,
    };
    let run = |threads| {
        let config = FitConfig {
            n_startpoints: 4,
            max_subtypes: 3,
            n_iterations: 200,
            n_chains: 2,
            tuning_passes: 1,
            tuning_iterations: 200,
            seed: 11,
            threads,
            ..FitConfig::default()
        };
        Fit::zscore(&input, config).engine(&engine).run().unwrap()
    };
    let one = run(1);
    for threads in [2, 3] {
        same(&one, &run(threads), threads);
    }
}

/// `Fit::on_model` hands over every model once, as the result holds it,
/// whatever the schedule (one count after another, or all chains at once).
#[test]
fn observed_models_are_the_results_models() {
    let (events, data, names) = cohort(160);
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &data,
    };
    for threads in [1, 2, 3] {
        let config = FitConfig {
            n_startpoints: 4,
            max_subtypes: 3,
            n_iterations: 200,
            n_chains: 1,
            tuning_passes: 1,
            tuning_iterations: 100,
            seed: 11,
            threads,
            ..FitConfig::default()
        };
        let seen = std::cell::RefCell::new(Vec::new());
        let on_model = |m: &SubtypeModel| seen.borrow_mut().push(m.clone());
        let result = Fit::zscore(&input, config)
            .engine(&sustain::backend::Engine::Cpu)
            .on_model(&on_model)
            .run()
            .unwrap();
        let mut seen = seen.into_inner();
        seen.sort_by_key(|m| m.n_subtypes);
        // As JSON: the models hold NaN (R-hat of one subtype's fraction).
        let json = |m: &[SubtypeModel]| serde_json::to_string(m).unwrap();
        assert_eq!(json(&seen), json(&result.models), "{threads} threads");
    }
}

/// Each build (with and without the `cpu` feature) leaves the JSON of one fit and
/// its stages in the target's tmp folder; when the other build's is there, the two
/// must be equal to the letter (the same bits).
#[test]
fn fit_and_stages_are_the_same_with_and_without_the_cpu_feature() {
    let result = run(2);
    let (events, data, _) = cohort(160);
    let lik =
        std::sync::Arc::new(Likelihood::new(events, &data, FitConfig::default().missing).unwrap());
    let ids: Vec<String> = (0..data.n_subjects()).map(|m| m.to_string()).collect();
    let stages = stage_subjects(&lik, &result.models[2], &ids, 50, 2);
    // As JSON (the models hold NaN: R-hat of one subtype's fraction), without the
    // wall times, the one thing a run may change.
    let mut json = serde_json::to_value((&result.models, &stages)).unwrap();
    drop_wall_times(&mut json);
    let json = json.to_string();

    let (this, other) = if cfg!(feature = "cpu") {
        ("threaded", "serial")
    } else {
        ("serial", "threaded")
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = |build: &str| dir.join(format!("determinism_{build}.json"));
    let tmp = dir.join(format!(
        ".determinism_{this}.json.tmp{}",
        std::process::id()
    ));
    std::fs::write(&tmp, &json).unwrap();
    std::fs::rename(&tmp, path(this)).unwrap();
    match std::fs::read_to_string(path(other)) {
        Ok(theirs) => assert!(json == theirs, "the {this} and {other} builds differ"),
        Err(_) => eprintln!(
            "note: no fit of the {other} build in {} to compare with",
            dir.display()
        ),
    }
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

fn same(one: &FitResult, other: &FitResult, threads: usize) {
    assert_eq!(one.models.len(), other.models.len());
    for (a, b) in one.models.iter().zip(&other.models) {
        let k = a.n_subtypes;
        assert_eq!(
            a.em_sequences, b.em_sequences,
            "E-M, k={k}, {threads} threads"
        );
        assert_eq!(a.em_loglike.to_bits(), b.em_loglike.to_bits(), "k={k}");
        assert_eq!(
            a.ml_sequences, b.ml_sequences,
            "ML, k={k}, {threads} threads"
        );
        assert_eq!(a.ml_loglike.to_bits(), b.ml_loglike.to_bits(), "k={k}");
        assert_eq!(a.mean_f, b.mean_f, "k={k}");
        assert_eq!(a.pvd, b.pvd, "k={k}");
        assert_eq!(a.steps, b.steps, "k={k}");
    }
}
