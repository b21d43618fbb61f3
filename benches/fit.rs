//! The whole fit (`sustain::Fit`: E-M with hierarchical splits, tuning, MCMC,
//! merging, staging) of a sim42-like cohort with reduced settings.
//!
//! Workload sim42-like: 500 subjects, the 5 biomarkers of
//! `../shared/data/sim42/model.json` (z_vals [1,2], [1,2,3] x 4; z_max 5,5,4,5,5: 14
//! events), 3 true subtypes with the sim42 true sequences and fractions 0.5/0.3/0.2,
//! 9% missing, simulated with `sustain_model::simulate::simulate` (seed 42), so the
//! bench does not need `../shared`.
//!
//! Settings (reduced from the reference's 10 start points, 1e4 iterations, 3 x 1e4
//! tuning): subtypes 1..=3, 5 start points, 1 chain of 2000 iterations after 2 x 2000
//! tuning iterations, threads = available cores (the CLI default). The reference's
//! settings are timed by `cargo test --release -p sustain --test sim42 -- --nocapture`.
//!
//! `cargo bench --bench fit`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;
use sustain::prelude::*;

/// The sim42 true sequences (`../shared/data/sim42/truth_sequences.json`).
const SIM42_TRUTH: [[usize; 14]; 3] = [
    [1, 6, 4, 3, 0, 2, 5, 10, 8, 12, 7, 11, 9, 13],
    [0, 1, 3, 5, 4, 6, 9, 2, 8, 10, 12, 13, 7, 11],
    [2, 0, 5, 1, 3, 8, 12, 7, 4, 6, 11, 9, 10, 13],
];

fn bench(c: &mut Criterion) {
    let mut z_vals = vec![vec![1.0, 2.0, 0.0]];
    z_vals.extend((0..4).map(|_| vec![1.0, 2.0, 3.0]));
    let events = EventSet::new(&z_vals, &[5.0, 5.0, 4.0, 5.0, 5.0]).unwrap();
    let seqs = SIM42_TRUTH
        .iter()
        .map(|o| Sequence::new(&events, o).unwrap())
        .collect();
    let truth = Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap();
    let sim = simulate(&events, &truth, &sustain_testkit::spec(500, 0.0, 0.09), 42).unwrap();
    let names: Vec<String> = (0..5).map(|b| format!("bm{b}")).collect();
    let config = FitConfig {
        n_startpoints: 5,
        max_subtypes: 3,
        n_iterations: 2000,
        n_chains: 1,
        tuning_passes: 2,
        tuning_iterations: 2000,
        ..FitConfig::default()
    };
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &sim.data,
    };
    let mut g = c.benchmark_group("fit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    g.bench_function(
        "sim42like_M500_B5_N14_K1to3_start5_chain1_iter2000_tune2x2000",
        |b| b.iter(|| black_box(Fit::zscore(&input, config.clone()).run().unwrap())),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
