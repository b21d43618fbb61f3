//! One E-M pass (`sustain::em::em_pass`, spec section 4: fractions, every event of
//! every subtype moved to its best position, fractions again) with the one-thread
//! `SerialEvaluator` the CPU fit uses for each start point.
//!
//! Workloads (z-scores simulated with `sustain_model::simulate::simulate`, fixed seeds):
//! - W1: 1000 subjects, 10 biomarkers x z 1,2,3 (30 events, z_max 5), 3 subtypes with
//!   fractions 0.5/0.3/0.2, 10% missing (the cohort of `benches/likelihood.rs`);
//! - sim42-like: 500 subjects, the 5 biomarkers of `../shared/data/sim42/model.json`
//!   (z_vals [1,2], [1,2,3] x 4; z_max 5,5,4,5,5: 14 events), 3 subtypes with the
//!   sim42 true sequences and fractions 0.5/0.3/0.2, 9% missing (as in sim42's data).
//!
//! The pass starts from random sequences with equal fractions, with the same random
//! stream every iteration, so every measured pass does the same work.
//!
//! `cargo bench --bench em`

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use sustain::em::em_pass;
use sustain_model::simulate::simulate;
use sustain_model::{EventSet, Likelihood, MissingConvention, Mixture, Sequence, SerialEvaluator};
use sustain_testkit::{equal_fractions, random_mixture, spec};

/// The sim42 true sequences (`../shared/data/sim42/truth_sequences.json`).
const SIM42_TRUTH: [[usize; 14]; 3] = [
    [1, 6, 4, 3, 0, 2, 5, 10, 8, 12, 7, 11, 9, 13],
    [0, 1, 3, 5, 4, 6, 9, 2, 8, 10, 12, 13, 7, 11],
    [2, 0, 5, 1, 3, 8, 12, 7, 4, 6, 11, 9, 10, 13],
];

fn sim42_events() -> EventSet {
    let mut z_vals = vec![vec![1.0, 2.0, 0.0]];
    z_vals.extend((0..4).map(|_| vec![1.0, 2.0, 3.0]));
    EventSet::new(&z_vals, &[5.0, 5.0, 4.0, 5.0, 5.0]).unwrap()
}

/// A random start with equal fractions, drawn from stream `seed`.
fn random_start(events: &EventSet, k: usize, seed: u64) -> Mixture {
    random_mixture(events, &equal_fractions(k), &mut Pcg64::seed_from_u64(seed))
}

/// (likelihood, random start with equal fractions)
fn prepare(
    events: EventSet,
    truth: Mixture,
    n_subjects: usize,
    missing: f64,
    seed: u64,
) -> (Arc<Likelihood>, Mixture) {
    let sim = simulate(&events, &truth, &spec(n_subjects, 0.0, missing), seed).unwrap();
    let start = random_start(&events, truth.n_subtypes(), seed + 100);
    let lik = Likelihood::new(events, &sim.data, MissingConvention::Marginalise).unwrap();
    (Arc::new(lik), start)
}

/// W1 (`sustain_testkit::w1`) from a random start.
fn w1() -> (Arc<Likelihood>, Mixture) {
    let w = sustain_testkit::w1();
    let start = random_start(&w.events, 3, 102);
    let lik = Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap();
    (Arc::new(lik), start)
}

fn sim42_like() -> (Arc<Likelihood>, Mixture) {
    let events = sim42_events();
    let seqs = SIM42_TRUTH
        .iter()
        .map(|o| Sequence::new(&events, o).unwrap())
        .collect();
    let truth = Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap();
    prepare(events, truth, 500, 0.09, 42)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("em_pass");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, (lik, start)) in [
        ("W1_M1000_B10_N30_S3_miss10", w1()),
        ("sim42like_M500_B5_N14_S3_miss9", sim42_like()),
    ] {
        g.bench_function(format!("{name}/one_pass_serial"), |b| {
            b.iter(|| {
                let mut ev = SerialEvaluator::new(Arc::clone(&lik));
                let mut rng = Pcg64::seed_from_u64(5);
                black_box(em_pass(&*lik, &mut ev, black_box(&start), &mut rng).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
