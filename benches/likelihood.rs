//! Likelihood benchmarks of `sustain-model` on simulated cohorts.
//!
//! Workloads (z-scores simulated with `sustain_model::simulate::simulate`, fixed seeds,
//! thresholds 1, 2, 3 per biomarker, z_max 5, 10% missing values, random sequences):
//! - W1: 1000 subjects, 10 biomarkers (30 events), 3 subtypes, fractions 0.5/0.3/0.2.
//! - W2: 2000 subjects, 15 biomarkers (45 events), 5 subtypes, fractions 0.3/0.25/0.2/0.15/0.1.
//!
//! Per workload: total `loglike` (detected SIMD kernels and baseline kernels), one
//! subtype's `subtype_lse_into` with a reused `Scratch` (both kernels), and
//! `loglike_subtype_candidates` of `SerialEvaluator` with 10 candidates.
//!
//! Run with `cargo bench --bench likelihood`.

use criterion::{criterion_group, Criterion, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use sustain_model::kernels::Isa;
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::{
    BatchEvaluator, EventSet, Likelihood, MissingConvention, Mixture, Scratch, Sequence,
    SerialEvaluator,
};

struct Workload {
    name: String,
    n_subjects: usize,
    lik: Likelihood,
    mixture: Mixture,
    candidates: Vec<Sequence>,
}

fn workload(n_subjects: usize, n_biomarkers: usize, fractions: &[f64], seed: u64) -> Workload {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let mut rng = Pcg64::seed_from_u64(seed);
    let sequences = (0..fractions.len())
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let mixture = Mixture::new(sequences, fractions.to_vec()).unwrap();
    let spec = SimulationSpec {
        n_subjects,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    let sim = simulate(&events, &mixture, &spec, seed + 1).unwrap();
    let candidates = (0..10)
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let name = format!(
        "M{n_subjects}_B{n_biomarkers}_N{}_S{}_miss10",
        events.n_events(),
        fractions.len()
    );
    let lik = Likelihood::new(events, &sim.data, MissingConvention::Marginalise).unwrap();
    Workload {
        name,
        n_subjects,
        lik,
        mixture,
        candidates,
    }
}

fn bench_workload(c: &mut Criterion, tag: &str, w: &Workload) {
    let id = format!("{tag}_{}", w.name);
    let baseline = w.lik.clone().with_baseline_kernels();
    let n_stages = w.lik.events().n_stages() as u64;
    let subject_stages = w.n_subjects as u64 * n_stages;
    let n_sub = w.mixture.n_subtypes() as u64;
    let mut g = c.benchmark_group("likelihood");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);

    // Throughput: subject x stage evaluations (per subtype).
    g.throughput(Throughput::Elements(subject_stages * n_sub));
    g.bench_function(format!("{id}/loglike"), |b| {
        b.iter(|| black_box(w.lik.loglike(black_box(&w.mixture))))
    });
    g.bench_function(format!("{id}/loglike_baseline"), |b| {
        b.iter(|| black_box(baseline.loglike(black_box(&w.mixture))))
    });

    let seq = &w.mixture.sequences()[0];
    let mut scratch = Scratch::default();
    let mut out = vec![0.0; w.lik.padded_subjects()];
    g.throughput(Throughput::Elements(subject_stages));
    g.bench_function(format!("{id}/subtype_lse_into"), |b| {
        b.iter(|| {
            w.lik
                .subtype_lse_into(black_box(seq), &mut scratch, &mut out);
            black_box(&out);
        })
    });
    g.bench_function(format!("{id}/subtype_lse_into_baseline"), |b| {
        b.iter(|| {
            baseline.subtype_lse_into(black_box(seq), &mut scratch, &mut out);
            black_box(&out);
        })
    });

    let mut eval = SerialEvaluator::new(Arc::new(w.lik.clone()));
    g.throughput(Throughput::Elements(
        subject_stages * w.candidates.len() as u64,
    ));
    g.bench_function(format!("{id}/candidates10"), |b| {
        b.iter(|| {
            black_box(
                eval.loglike_subtype_candidates(black_box(&w.mixture), 0, &w.candidates)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let w1 = workload(1000, 10, &[0.5, 0.3, 0.2], 1);
    bench_workload(c, "W1", &w1);
    let w2 = workload(2000, 15, &[0.3, 0.25, 0.2, 0.15, 0.1], 2);
    bench_workload(c, "W2", &w2);
}

criterion_group!(likelihood, benches);

fn main() {
    eprintln!(
        "sustain_model::kernels::Isa::detect() = {:?}",
        Isa::detect()
    );
    likelihood();
    Criterion::default().configure_from_args().final_summary();
}
