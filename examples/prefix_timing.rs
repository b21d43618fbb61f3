//! Times the event-based and ordinal models on issue 24's workloads
//! (`sustain_model::prefix_workloads`) as `benches/reference/prefix_reference.py`
//! times pySuStaIn: one log-likelihood, one MCMC iteration (the reference's
//! moves) and one E-M pass, each the best of a few runs in thread CPU time (so
//! that other load on the machine does not count). One JSON object per line.
//!
//! `cargo run --release --example prefix_timing [-- --quick]`

use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_model::prefix_workloads::{mixture_workload, ordinal_workload, start};
use sustain_model::*;
use sustain_sampler::{run_chain, ProposalMode, Round, StepSizes};

/// This thread's CPU time in seconds (Linux `schedstat`); wall time elsewhere.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns * 1e-9)
        .unwrap_or_else(|| {
            use std::sync::OnceLock;
            static T0: OnceLock<std::time::Instant> = OnceLock::new();
            T0.get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        })
}

/// Best of `repeats` runs of `f`, each at least `inner` calls and at least
/// 50 ms (the thread clock advances in scheduler ticks: shorter runs can read
/// zero), per call.
fn best_of(repeats: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    let t = std::time::Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-9);
    let inner = inner.max((0.05 / one).ceil() as usize);
    (0..repeats)
        .map(|_| {
            let t0 = cpu_seconds();
            for _ in 0..inner {
                f();
            }
            (cpu_seconds() - t0) / inner as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn time_model(name: &str, model: PrefixModel, quick: bool) {
    let model = Arc::new(model);
    let mix = start(&model, 7);
    let reps = if quick { 3 } else { 10 };
    let loglike = best_of(reps, 200, || {
        std::hint::black_box(model.loglike(&mix));
    });
    let iters = if quick { 2000 } else { 10000 };
    let steps = StepSizes::initial(3, model.order().n_events());
    let mcmc = best_of(reps.min(5), 1, || {
        let mut rng = Pcg64::seed_from_u64(3);
        let chain = PrefixModel::chain_evaluator(&model, &mix);
        let round = Round::new(ProposalMode::Reference, &steps, iters);
        std::hint::black_box(run_chain(0, model.order(), chain, &mix, round, &mut rng));
    }) / iters as f64;
    let em = best_of(reps.min(5), 1, || {
        let mut rng = Pcg64::seed_from_u64(5);
        let mut eval = PrefixModel::batch_evaluator(&model);
        std::hint::black_box(sustain::em::em_pass(&*model, &mut *eval, &mix, &mut rng).ok());
    });
    println!(
        "{{\"model\": \"{name}\", \"loglike_s\": {loglike:e}, \"mcmc_iter_s\": {mcmc:e}, \"em_pass_s\": {em:e}}}"
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    time_model("mixture_M2000_B50_S3", mixture_workload(), quick);
    time_model("ordinal_M1000_B10_N30_S3", ordinal_workload(), quick);
}
