//! MCMC throughput (chains of the CPU backend, `sustain_cpu::run_chains`, exact
//! proposals, step sizes 1 for sequences and 0.02 for fractions, from the true mixture):
//! - W1 (1000 subjects, 10 biomarkers x z 1,2,3 = 30 events, 3 subtypes with
//!   fractions 0.5/0.3/0.2, 10% missing): one chain, and chain scaling for 1, 2, 4, 8
//!   chains on 2 threads;
//! - W2 (2000 subjects, 15 biomarkers x z 1,2,3 = 45 events, 5 subtypes with
//!   fractions 0.3/0.25/0.2/0.15/0.1, 10% missing; the cohort of
//!   `benches/likelihood.rs`): one chain.
//! - both: one chain split over 2 threads by subjects (`chain_threads: 2`,
//!   `sustain_cpu::ShardedIncremental`; the same results as on one thread).
//! - W1: one chain with tuned step sizes, as a fit runs it (`chains1_tuned_...`).
//! - W1: what a fit does with a finished chain of 10,000 samples besides the chain
//!   itself: `sustain_sampler::merge` (subtype matching, and the convergence
//!   diagnostics: R-hat and ESS of the log-likelihood and fractions, R-hat of the
//!   90 event positions), `merge/...`.
//!
//! Throughput is in chain-iterations (elements) per second.
//!
//! `cargo bench --bench mcmc`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::simulate::Cohort;
use sustain_model::*;
use sustain_sampler::{tune_steps, ProposalMode, StepSizes};

/// A workload's likelihood and true mixture (`sustain_testkit::workloads`).
fn prepared(w: Cohort) -> (Arc<Likelihood>, Mixture) {
    let lik = Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap();
    (Arc::new(lik), w.truth)
}

fn w1() -> (Arc<Likelihood>, Mixture) {
    prepared(sustain_testkit::w1())
}

fn w2() -> (Arc<Likelihood>, Mixture) {
    prepared(sustain_testkit::w2())
}

/// Exact proposals with seed 3 on one thread per chain, step sizes 1 for sequences
/// and 0.02 for the fractions of `k` subtypes.
fn exact_settings(
    lik: &Likelihood,
    k: usize,
    n_iterations: usize,
    threads: usize,
) -> ChainSettings {
    let mut steps = StepSizes::initial(k, lik.events().n_events());
    steps.sigma_f = vec![0.02; k];
    ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations,
        seed: 3,
        threads,
        chain_threads: 1,
    }
}

/// Times one chain of `settings` from `start`, as `name`.
fn bench_one_chain<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    name: String,
    (lik, start): (&Arc<Likelihood>, &Mixture),
    settings: &ChainSettings,
) {
    group.bench_function(name, |b| b.iter(|| run_chains(lik, start, settings, 0..1)));
}

/// Times one chain of `settings` split over 2 threads by subjects.
fn bench_split_chain<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    problem: (&Arc<Likelihood>, &Mixture),
    settings: &ChainSettings,
) {
    let split = ChainSettings {
        threads: 2,
        chain_threads: 2,
        ..settings.clone()
    };
    let name = format!("chains1_split2_iters{}", settings.n_iterations);
    bench_one_chain(group, name, problem, &split);
}

fn bench_w2(c: &mut Criterion) {
    let (lik, start) = w2();
    let iterations = 1000;
    let settings = exact_settings(&lik, 5, iterations, 1);
    let mut group = c.benchmark_group("mcmc/W2_M2000_B15_N45_S5_miss10");
    group
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(4));
    group.throughput(Throughput::Elements(iterations as u64));
    let name = format!("chains1_iters{iterations}");
    bench_one_chain(&mut group, name, (&lik, &start), &settings);
    bench_split_chain(&mut group, (&lik, &start), &settings);
    group.finish();
}

fn bench(c: &mut Criterion) {
    let (lik, start) = w1();
    let iterations = 2000;
    let mut group = c.benchmark_group("mcmc/W1_M1000_B10_N30_S3_miss10");
    group
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(4));
    let settings = exact_settings(&lik, 3, iterations, 2);
    for n_chains in [1usize, 2, 4, 8] {
        group.throughput(Throughput::Elements((iterations * n_chains) as u64));
        group.bench_function(format!("chains{n_chains}_iters{iterations}"), |b| {
            b.iter(|| run_chains(&lik, &start, &settings, 0..n_chains))
        });
    }
    group.throughput(Throughput::Elements(iterations as u64));
    bench_split_chain(&mut group, (&lik, &start), &settings);
    // The chain a fit runs (and the reference's, whose MCMC also follows its
    // tuning): step sizes tuned first (3 x 2000 iterations, outside the timing).
    // Its iterations cost less than the untuned chain's above: callgrind counted
    // 392,000 instructions per iteration against 477,000 (docs/performance.md).
    let tuned = ChainSettings {
        steps: tune_steps(
            lik.events(),
            || IncrementalLikelihood::new(Arc::clone(&lik), &start),
            &start,
            ProposalMode::Exact,
            3,
            2000,
            5,
        ),
        threads: 1,
        ..settings.clone()
    };
    let name = format!("chains1_tuned_iters{iterations}");
    bench_one_chain(&mut group, name, (&lik, &start), &tuned);
    group.finish();
}

fn bench_merge(c: &mut Criterion) {
    let (lik, start) = w1();
    let settings = exact_settings(&lik, 3, 10_000, 1);
    let runs = run_chains(&lik, &start, &settings, 0..1);
    let mut group = c.benchmark_group("merge/W1_M1000_B10_N30_S3_miss10");
    group
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(4));
    group.bench_function("chains1_samples10000_diagnostics", |b| {
        b.iter(|| sustain_sampler::merge(runs.clone(), 0, 1))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_w2, bench_merge);
criterion_main!(benches);
