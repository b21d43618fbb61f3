//! Prints the GPU adapter and times `loglike_batch` on the W1 workload for a few batch
//! sizes against `SerialEvaluator`.
//!
//! `cargo run --release -p sustain-gpu --example gpu_probe [batch sizes...]`

use std::sync::Arc;
use std::time::Instant;
use sustain_gpu::{GpuContext, GpuEvaluator};
use sustain_model::*;
use sustain_testkit::{max_relative_difference, random_weighted_mixture};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 64, 1024]
    } else {
        sizes
    };
    let ctx = match GpuContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            println!("no GPU: {e}");
            return;
        }
    };
    println!("adapter: {}", ctx.description());
    let w1 = sustain_testkit::w1();
    let (events, data, mut rng) = (w1.events, w1.data, w1.rng);
    let lik =
        Arc::new(Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap());
    let mut gpu = GpuEvaluator::from_likelihood(Arc::clone(&ctx), &lik, &data).unwrap();
    let mut serial = SerialEvaluator::new(Arc::clone(&lik));
    for &n in &sizes {
        let mixtures: Vec<Mixture> = (0..n)
            .map(|_| random_weighted_mixture(&events, 3, &mut rng))
            .collect();
        let _ = gpu.loglike_batch(&mixtures).unwrap();
        // Fastest of a few runs (the machine may be shared).
        let (got, tg) = fastest_of(5, || gpu.loglike_batch(&mixtures).unwrap());
        let (want, ts) = fastest_of(5, || serial.loglike_batch(&mixtures).unwrap());
        let worst = max_relative_difference(&got, &want);
        println!(
            "batch {n:5}: gpu {:9.3} ms ({:9.0} evals/s), serial {:9.3} ms ({:9.0} evals/s), max rel err {worst:.1e}",
            tg * 1e3,
            n as f64 / tg,
            ts * 1e3,
            n as f64 / ts
        );
    }
}

/// The result of `f` and its fastest time in seconds over `reps` runs.
fn fastest_of<T>(reps: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..reps {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (out.expect("at least one run"), best)
}
