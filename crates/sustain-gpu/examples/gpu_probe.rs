//! Prints the GPU adapter and times `loglike_batch` on the W1 workload for a few batch
//! sizes against `SerialEvaluator`.
//!
//! `cargo run --release -p sustain-gpu --example gpu_probe [batch sizes...]`

use std::sync::Arc;
use std::time::Instant;
use sustain_gpu::{GpuContext, GpuEvaluator};
use sustain_model::*;
use sustain_testkit::random_weighted_mixture;

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
    let sustain_model::simulate::Cohort {
        events,
        truth: _,
        data,
        mut rng,
    } = sustain_testkit::w1();
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
        let reps = 5;
        let mut got = Vec::new();
        let mut tg = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            got = gpu.loglike_batch(&mixtures).unwrap();
            tg = tg.min(t.elapsed().as_secs_f64());
        }
        let mut want = Vec::new();
        let mut ts = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            want = serial.loglike_batch(&mixtures).unwrap();
            ts = ts.min(t.elapsed().as_secs_f64());
        }
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0, f64::max);
        println!(
            "batch {n:5}: gpu {:9.3} ms ({:9.0} evals/s), serial {:9.3} ms ({:9.0} evals/s), max rel err {worst:.1e}",
            tg * 1e3,
            n as f64 / tg,
            ts * 1e3,
            n as f64 / ts
        );
    }
}
