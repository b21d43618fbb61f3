//! GPU figures of the report (docs/performance.md, "GPU"), in one short run:
//! `cargo run --release --features gpu --example gpu_timing`.
//!
//! Workload W1 (1000 subjects, 10 biomarkers x 3 thresholds, 3 subtypes, 10% missing).
//! It prints, one line each:
//! - the adapter, and the GPU's agreement with the CPU's f64 likelihood on 256 random
//!   3-subtype mixtures (largest relative difference);
//! - one `loglike_batch` call for batches of 1 to 16384 mixtures (median of repeated
//!   calls), as evaluations per second;
//! - the E-M seam (1024 candidate sequences of one subtype) and staging (posteriors
//!   summed over 1024 samples);
//! - MCMC in lockstep (`sustain_sampler::lockstep`, one GPU call per iteration for all
//!   chains) for 64, 1024 and 4096 chains, with 1, 4, 8 and every core drawing the
//!   proposals, and the CPU backend (`sustain_cpu::run_chains`,
//!   incremental likelihood) on the same 1024 chains, on 2 threads and on every core.
//!   Both in steady state: the time of 2n iterations minus the time of n, so that
//!   setting up the chains is left out. The lockstep line also says which share of
//!   the time was spent waiting for the GPU's results.
//!
//! Environment: `GPU_TIMING_ITERS` (n above, default 100); `GPU_TIMING_CPU=0` skips
//! the CPU runs and `GPU_TIMING_GPU=0` the GPU's; `GPU_TIMING_MAX_BATCH` (default
//! 16384) leaves out larger batches and chain counts (a software adapter takes
//! seconds per 1024 mixtures).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;
use sustain_gpu::{GpuContext, GpuEvaluator};
use sustain_model::{
    BatchEvaluator, EventSet, Likelihood, MissingConvention, Mixture, Result, Sequence,
    SerialEvaluator, SubtypeOf,
};
use sustain_sampler::lockstep::{run_lockstep, LockstepSettings};
use sustain_sampler::{ProposalMode, StepSizes};

/// A batch evaluator that adds up the time spent in `loglike_batch`.
struct Timed<'a> {
    inner: &'a mut GpuEvaluator,
    seconds: f64,
}

impl BatchEvaluator for Timed<'_> {
    fn events(&self) -> &sustain_model::EventOrder {
        self.inner.events()
    }
    fn n_subjects(&self) -> usize {
        self.inner.n_subjects()
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>> {
        let t = Instant::now();
        let r = self.inner.loglike_batch(mixtures);
        self.seconds += t.elapsed().as_secs_f64();
        r
    }
    fn loglike_batch_parts(&mut self, parts: &[&[Mixture]]) -> Result<Vec<f64>> {
        let t = Instant::now();
        let r = self.inner.loglike_batch_parts(parts);
        self.seconds += t.elapsed().as_secs_f64();
        r
    }
    fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>> {
        self.inner.log_p_subjects_batch(mixtures)
    }
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<ndarray::Array3<f64>> {
        self.inner.posterior_sums(mixtures)
    }
}

fn random_mixtures(events: &EventSet, n: usize, rng: &mut impl rand::Rng) -> Vec<Mixture> {
    (0..n)
        .map(|_| {
            let seqs = (0..3).map(|_| Sequence::random(events, rng)).collect();
            let f: Vec<f64> = (0..3).map(|_| rng.gen_range(0.1..1.0)).collect();
            let sum: f64 = f.iter().sum();
            Mixture::new(seqs, f.iter().map(|v| v / sum).collect()).expect("valid mixture")
        })
        .collect()
}

/// Median seconds of `reps` calls of `f` after one warm-up call.
fn median_s(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The workload and what every figure shares.
struct Setup {
    events: EventSet,
    truth: Mixture,
    data: sustain_model::Dataset,
    lik: Arc<Likelihood>,
    steps: StepSizes,
    /// Iterations n of the steady-state difference.
    n: usize,
    max_batch: usize,
    cores: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Res<()> {
    let w = sustain_testkit::w1();
    let (events, truth) = (w.events, w.truth);
    let mut rng = w.rng;
    let lik = Arc::new(Likelihood::new(
        events.clone(),
        &w.data,
        MissingConvention::Marginalise,
    )?);
    let steps: StepSizes = common::tuned_steps(&lik, &truth, 5);
    let setup = Setup {
        events,
        truth,
        data: w.data,
        lik,
        steps,
        n: env_usize("GPU_TIMING_ITERS", 100),
        max_batch: env_usize("GPU_TIMING_MAX_BATCH", 16384),
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
    };
    if env_usize("GPU_TIMING_GPU", 1) != 0 {
        gpu_figures(&setup, &mut rng)?;
    }
    if env_usize("GPU_TIMING_CPU", 1) != 0 {
        cpu_figures(&setup);
    }
    Ok(())
}

fn gpu_figures(w: &Setup, rng: &mut impl rand::Rng) -> Res<()> {
    let (events, truth, lik, n, max_batch) = (&w.events, &w.truth, &w.lik, w.n, w.max_batch);
    let ctx = Arc::new(GpuContext::new()?);
    println!(
        "adapter: {} (software: {})",
        ctx.description(),
        ctx.is_software()
    );
    let mut gpu = GpuEvaluator::with_capacity(Arc::clone(&ctx), lik, &w.data, 16384, 3)?;

    // Agreement with the CPU's f64 path.
    let check = random_mixtures(events, 256, rng);
    let want = SerialEvaluator::new(Arc::clone(lik)).loglike_batch(&check)?;
    let got = gpu.loglike_batch(&check)?;
    let worst = sustain_testkit::max_relative_difference(&got, &want);
    println!(
        "W1 agreement: largest relative difference GPU vs CPU f64 over 256 mixtures {worst:.2e}"
    );

    // One call, by batch size.
    let pool = random_mixtures(events, 16384, rng);
    for b in [1usize, 64, 1024, 4096, 16384]
        .into_iter()
        .filter(|&b| b <= max_batch)
    {
        let reps = if b <= 1024 { 50 } else { 10 }.min(5 + 100_000 / max_batch);
        let s = median_s(reps, || {
            gpu.loglike_batch(&pool[..b]).expect("GPU batch");
        });
        println!(
            "W1 loglike_batch {b:>5}: {:.3} ms per call, {:.0} evaluations/s",
            s * 1e3,
            b as f64 / s
        );
    }
    let candidates: Vec<Sequence> = (0..1024).map(|_| Sequence::random(events, rng)).collect();
    let s = median_s(20, || {
        gpu.loglike_subtype_candidates(SubtypeOf::new(truth, 1), &candidates)
            .expect("GPU candidates");
    });
    println!("W1 E-M seam, 1024 candidates: {:.3} ms per call", s * 1e3);
    let s = median_s(5, || {
        gpu.posterior_sums(&pool[..1024]).expect("GPU staging");
    });
    println!("W1 staging, 1024 samples: {:.3} ms", s * 1e3);

    // MCMC: steady-state chain-iterations per second.
    let cores = w.cores;
    for chains in [64usize, 1024, 4096]
        .into_iter()
        .filter(|&c| c <= max_batch)
    {
        let mut counts = vec![1, 4, 8, cores];
        counts.retain(|&t| t <= cores);
        counts.dedup();
        for threads in counts {
            let mut time =
                |iters: usize| -> std::result::Result<(f64, f64, f64), Box<dyn std::error::Error>> {
                    let settings = LockstepSettings {
                        mode: ProposalMode::Exact,
                        steps: w.steps.clone(),
                        n_iterations: iters,
                        seed: 1,
                        threads,
                    };
                    let mut timed = Timed {
                        inner: &mut gpu,
                        seconds: 0.0,
                    };
                    let t = Instant::now();
                    let runs = run_lockstep(&mut timed, truth, &settings, 0..chains)?;
                    let acc = runs.iter().map(|r| r.acceptance).sum::<f64>() / chains as f64;
                    Ok((t.elapsed().as_secs_f64(), timed.seconds, acc))
                };
            let (t1, g1, _) = time(n)?;
            let (t2, g2, acc) = time(2 * n)?;
            let (dt, dg) = (t2 - t1, g2 - g1);
            println!(
                "W1 lockstep GPU, {chains} chains, {threads} drawing thread(s): {:.0} chain-iterations/s ({:.3} ms per iteration, {:.0}% of it in the GPU call; acceptance {acc:.2})",
                (chains * n) as f64 / dt,
                dt / n as f64 * 1e3,
                100.0 * dg / dt
            );
        }
    }
    Ok(())
}

/// The CPU backend on the lockstep's batch: 1024 chains, each on one thread.
fn cpu_figures(w: &Setup) {
    let mut counts = vec![2];
    if w.cores > 2 {
        counts.push(w.cores);
    }
    let chains = 1024;
    let m = (w.n / 4).max(5);
    for threads in counts {
        let time = |iters: usize| {
            let settings = sustain_cpu::ChainSettings {
                mode: ProposalMode::Exact,
                steps: w.steps.clone(),
                n_iterations: iters,
                seed: 1,
                threads,
                chain_threads: 1,
            };
            let t = Instant::now();
            sustain_cpu::run_chains(&w.lik, &w.truth, &settings, 0..chains);
            t.elapsed().as_secs_f64()
        };
        let dt = time(2 * m) - time(m);
        println!(
            "W1 CPU backend, {chains} chains on {threads} threads: {:.0} chain-iterations/s",
            (chains * m) as f64 / dt
        );
    }
}
