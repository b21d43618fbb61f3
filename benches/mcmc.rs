//! MCMC throughput: W1 (1000 subjects, 10 biomarkers x z 1,2,3 = 30 events,
//! 3 subtypes, 10% missing) one chain, and chain scaling for 1, 2, 4, 8 chains.
//!
//! `cargo bench --bench mcmc`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use std::sync::Arc;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::*;
use sustain_sampler::{ProposalMode, StepSizes};

fn w1() -> (Arc<Likelihood>, Mixture) {
    let events = EventSet::uniform(10, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let seqs: Vec<Sequence> = (0..3)
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let truth = Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap();
    let spec = SimulationSpec {
        n_subjects: 1000,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    let sim = simulate(&events, &truth, &spec, 2).unwrap();
    let lik = Arc::new(Likelihood::new(events, &sim.data, MissingConvention::Marginalise).unwrap());
    (lik, truth)
}

fn bench(c: &mut Criterion) {
    let (lik, start) = w1();
    let iterations = 2000;
    let mut steps = StepSizes::initial(3, lik.events().n_events());
    steps.sigma_f = vec![0.02; 3];
    let mut group = c.benchmark_group("mcmc/W1_M1000_B10_N30_S3_miss10");
    group
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(4));
    for n_chains in [1usize, 2, 4, 8] {
        group.throughput(Throughput::Elements((iterations * n_chains) as u64));
        group.bench_function(format!("chains{n_chains}_iters{iterations}"), |b| {
            let settings = ChainSettings {
                mode: ProposalMode::Exact,
                steps: steps.clone(),
                n_iterations: iterations,
                seed: 3,
                threads: 2,
            };
            b.iter(|| run_chains(&lik, &start, &settings, 0..n_chains))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
