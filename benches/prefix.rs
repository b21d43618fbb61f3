//! The event-based (mixture) and ordinal models (issue 24's workloads, data
//! simulated here with fixed seeds):
//! - mixture: 2000 subjects x 50 biomarkers, 3 subtypes; `p_event` and
//!   `p_no_event` from Gaussian densities (event N(2, 1), no event N(0, 1)) of
//!   values drawn from N(1, 1.5);
//! - ordinal: 1000 subjects x 10 biomarkers x scores 1, 2, 3 (30 events), 3
//!   subtypes; random scores read with `p_correct = 0.9`.
//!
//! Each: one log-likelihood (`SustainModel::loglike`), MCMC iterations
//! (`sustain_sampler::run_chain` over `SustainModel::chain_evaluator`, the
//! reference's moves, step sizes 1 and 0.01; throughput in iterations), and one
//! E-M pass (`sustain::em::em_pass` with `SustainModel::batch_evaluator`).
//! `benches/reference/prefix_side_by_side.sh` runs these next to pySuStaIn.
//!
//! `cargo bench --bench prefix`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_model::*;
use sustain_sampler::{run_chain, ProposalMode, StepSizes};

fn gaussian(x: f64, mu: f64) -> f64 {
    (-(x - mu) * (x - mu) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn mixture_workload() -> PrefixModel {
    let (m, b) = (2000, 50);
    let mut rng = Pcg64::seed_from_u64(24);
    let normal = Normal::new(1.0, 1.5).unwrap();
    let x = Array2::from_shape_fn((m, b), |_| normal.sample(&mut rng));
    let yes = x.mapv(|v| gaussian(v, 2.0));
    let no = x.mapv(|v| gaussian(v, 0.0));
    event_based(yes.view(), no.view()).unwrap()
}

fn ordinal_workload() -> PrefixModel {
    let (m, b) = (1000, 10);
    let mut rng = Pcg64::seed_from_u64(25);
    let score_vals = vec![vec![1.0, 2.0, 3.0]; b];
    let scores = Array2::from_shape_fn((m, b), |_| rng.gen_range(0..4) as f64);
    let (p_normal, p_score) = score_probabilities(&score_vals, scores.view(), 0.9).unwrap();
    let views: Vec<_> = p_score.iter().map(|a| a.view()).collect();
    ordinal(&score_vals, p_normal.view(), &views).unwrap()
}

fn start(model: &PrefixModel, seed: u64) -> Mixture {
    let mut rng = Pcg64::seed_from_u64(seed);
    let seqs = (0..3)
        .map(|_| Sequence::random(model.order(), &mut rng))
        .collect();
    Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap()
}

fn bench_model(c: &mut Criterion, name: &str, model: PrefixModel) {
    let model = Arc::new(model);
    let mix = start(&model, 7);
    let mut group = c.benchmark_group(format!("prefix/{name}"));
    group
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(3));
    group.bench_function("loglike", |b| b.iter(|| model.loglike(&mix)));

    // One proposal's evaluation in the chain state (each subtype's event moved by
    // one place, fractions kept), then dropped.
    let proposals: Vec<Mixture> = (0..64)
        .map(|i| {
            let mut p = mix.clone();
            for seq in p.sequences_mut() {
                let e = seq.event_at((i * 7) % (seq.len() - 1));
                let to = seq.position(e) + 1;
                seq.move_unchecked(e, to);
            }
            p
        })
        .collect();
    let mut state = PrefixModel::shard_state(Arc::clone(&model), &mix);
    let mut next = 0;
    group.bench_function("chain_propose", |b| {
        b.iter(|| {
            next = (next + 1) % proposals.len();
            state.propose_shard(&proposals[next], &[true; 3]);
            let total = neumaier_sum(state.partials());
            state.reject();
            total
        })
    });

    let iterations = 2000;
    let steps = StepSizes::initial(3, model.order().n_events());
    group.throughput(Throughput::Elements(iterations as u64));
    group.bench_function(format!("mcmc_iters{iterations}"), |b| {
        b.iter(|| {
            let mut rng = Pcg64::seed_from_u64(3);
            let chain = PrefixModel::chain_evaluator(&model, &mix);
            run_chain(
                0,
                model.order(),
                chain,
                &mix,
                ProposalMode::Reference,
                &steps,
                iterations,
                &mut rng,
            )
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("em_pass", |b| {
        b.iter(|| {
            let mut rng = Pcg64::seed_from_u64(5);
            let mut eval = PrefixModel::batch_evaluator(&model);
            sustain::em::em_pass(&*model, &mut *eval, &mix, &mut rng).unwrap()
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    bench_model(c, "mixture_M2000_B50_S3", mixture_workload());
    bench_model(c, "ordinal_M1000_B10_N30_S3", ordinal_workload());
}

criterion_group!(benches, bench);
criterion_main!(benches);
