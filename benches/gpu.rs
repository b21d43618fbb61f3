//! GPU batch-likelihood benchmark against the CPU evaluators.
//!
//! Workload W1 (`sustain_testkit::w1`): 1000 subjects, 10 biomarkers with
//! thresholds 1, 2, 3 (30 events), z_max 5, 10% missing values, simulated from a
//! 3-subtype truth with fractions 0.5/0.3/0.2 (fixed seeds).
//!
//! - `gpu/W1/loglike_batch_1024`: one `loglike_batch` call with 1024 random 3-subtype
//!   mixtures (the lockstep-MCMC shape: one batch per iteration), on the GPU, on
//!   `SerialEvaluator`, and on `sustain_cpu::ThreadedEvaluator` (all cores).
//! - `gpu/W1/subtype_candidates_1024`: the E-M seam, 1024 candidate sequences for one
//!   subtype of a 3-subtype mixture.
//!
//! - `gpu/W1/staging_1024`: staging, the joint posteriors over subtypes and stages of
//!   every subject summed over 1024 samples (`posterior_sums`), GPU against
//!   `ThreadedEvaluator`.
//! - `gpu/W1/lockstep_1024x{LOCKSTEP_ITERS}`: MCMC, 1024 chains of `LOCKSTEP_ITERS`
//!   iterations from the 3-subtype truth: the lockstep driver
//!   (`sustain_sampler::lockstep`, one `loglike_batch` of 1024 proposals per
//!   iteration) on the GPU, against the CPU backend (`sustain_cpu::run_chains`,
//!   incremental likelihood, all cores) with the same chains and iterations.
//!   Throughput: chain-iterations per second.
//!
//! Criterion's throughput is candidate evaluations per second. Without a GPU adapter
//! only the CPU benchmarks run (a NOTICE says so).
//!
//! Run with `cargo bench --features gpu --bench gpu`.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use sustain_gpu::{GpuContext, GpuEvaluator};
use sustain_model::{
    BatchEvaluator, Dataset, EventSet, Likelihood, MissingConvention, Mixture, Sequence,
    SerialEvaluator, SubtypeOf,
};
use sustain_sampler::lockstep::{run_lockstep, LockstepSettings};
use sustain_sampler::ProposalMode;
use sustain_testkit::random_weighted_mixture;

const BATCH: usize = 1024;
/// Iterations per chain of the lockstep benchmark (small: llvmpipe is slow).
const LOCKSTEP_ITERS: usize = 2;

struct W1 {
    events: EventSet,
    data: Dataset,
    lik: Arc<Likelihood>,
    base: Mixture,
    mixtures: Vec<Mixture>,
    candidates: Vec<Sequence>,
}

fn w1() -> W1 {
    let sustain_model::simulate::Cohort {
        events,
        truth: base,
        data,
        mut rng,
    } = sustain_testkit::w1();
    let lik =
        Arc::new(Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap());
    let mixtures = (0..BATCH)
        .map(|_| random_weighted_mixture(&events, 3, &mut rng))
        .collect();
    let candidates = (0..BATCH)
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    W1 {
        events,
        data,
        lik,
        base,
        mixtures,
        candidates,
    }
}

fn bench(c: &mut Criterion) {
    let w = w1();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("gpu");
    // One call takes from tens of milliseconds (a GPU) to seconds (llvmpipe, or the
    // serial evaluator): flat sampling, few samples.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(BATCH as u64));

    let mut serial = SerialEvaluator::new(Arc::clone(&w.lik));
    let mut threaded = sustain_cpu::ThreadedEvaluator::new(Arc::clone(&w.lik), threads);
    let mut gpu = match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.description());
            let lik = &w.lik;
            let mut e = GpuEvaluator::with_capacity(Arc::new(ctx), lik, &w.data, BATCH, 3).unwrap();
            // Agreement check before timing.
            let want = serial.loglike_batch(&w.mixtures[..8]).unwrap();
            let got = e.loglike_batch(&w.mixtures[..8]).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-5 * b.abs(), "GPU {a} vs CPU {b}");
            }
            Some(e)
        }
        Err(e) => {
            eprintln!("NOTICE: {e}; only the CPU evaluators are timed");
            None
        }
    };
    assert_eq!(w.events.n_events(), 30);

    let id = "W1/loglike_batch_1024";
    if let Some(gpu) = gpu.as_mut() {
        g.bench_function(format!("{id}/gpu"), |b| {
            b.iter(|| black_box(gpu.loglike_batch(black_box(&w.mixtures)).unwrap()))
        });
        g.bench_function("W1/subtype_candidates_1024/gpu", |b| {
            b.iter(|| {
                black_box(
                    gpu.loglike_subtype_candidates(
                        SubtypeOf::new(&w.base, 1),
                        black_box(&w.candidates),
                    )
                    .unwrap(),
                )
            })
        });
    }
    g.bench_function(format!("{id}/serial"), |b| {
        b.iter(|| black_box(serial.loglike_batch(black_box(&w.mixtures)).unwrap()))
    });
    g.bench_function(format!("{id}/threaded_{threads}"), |b| {
        b.iter(|| black_box(threaded.loglike_batch(black_box(&w.mixtures)).unwrap()))
    });
    g.bench_function("W1/subtype_candidates_1024/serial", |b| {
        b.iter(|| {
            black_box(
                serial
                    .loglike_subtype_candidates(
                        SubtypeOf::new(&w.base, 1),
                        black_box(&w.candidates),
                    )
                    .unwrap(),
            )
        })
    });

    // Staging: posteriors of every subject over stages and subtypes, summed over 1024
    // samples (`sustain stage`, the subjects CSVs of `sustain fit`).
    let id = "W1/staging_1024";
    if let Some(gpu) = gpu.as_mut() {
        g.bench_function(format!("{id}/gpu"), |b| {
            b.iter(|| black_box(gpu.posterior_sums(black_box(&w.mixtures)).unwrap()))
        });
    }
    g.bench_function(format!("{id}/threaded_{threads}"), |b| {
        b.iter(|| black_box(threaded.posterior_sums(black_box(&w.mixtures)).unwrap()))
    });

    // MCMC: 1024 chains in lockstep vs the CPU backend's threads.
    let steps = sustain_sampler::StepSizes::initial(3, w.events.n_events());
    g.throughput(Throughput::Elements((BATCH * LOCKSTEP_ITERS) as u64));
    let id = format!("W1/lockstep_{BATCH}x{LOCKSTEP_ITERS}");
    if let Some(gpu) = gpu.as_mut() {
        let settings = LockstepSettings {
            mode: ProposalMode::Exact,
            steps: steps.clone(),
            n_iterations: LOCKSTEP_ITERS,
            seed: 1,
            threads,
        };
        g.bench_function(format!("{id}/gpu"), |b| {
            b.iter(|| black_box(run_lockstep(gpu, &w.base, &settings, 0..BATCH).unwrap()))
        });
    }
    let settings = sustain_cpu::ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations: LOCKSTEP_ITERS,
        seed: 1,
        threads,
        chain_threads: 1,
    };
    g.bench_function(format!("{id}/cpu_run_chains_{threads}"), |b| {
        b.iter(|| {
            black_box(sustain_cpu::run_chains(
                &w.lik,
                &w.base,
                &settings,
                0..BATCH,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
