//! The event-based (mixture) and ordinal models (issue 24's workloads,
//! `sustain_model::prefix_workloads`, simulated from fixed seeds):
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
//! `benches/reference/prefix_side_by_side.sh` times the same operations next to
//! pySuStaIn's (`examples/prefix_timing.rs`, thread CPU time).
//!
//! `cargo bench --bench prefix`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_model::prefix_workloads::{mixture_workload, ordinal_workload, start};
use sustain_model::*;
use sustain_sampler::{run_chain, ProposalMode, Round, StepSizes};

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
            let round = Round::new(ProposalMode::Reference, &steps, iterations);
            run_chain(0, model.order(), chain, &mix, round, &mut rng)
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
