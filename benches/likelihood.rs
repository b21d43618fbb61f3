//! Likelihood benchmarks of `sustain-model` on simulated cohorts.
//!
//! Workloads (`sustain_testkit::workloads`: z-scores simulated from fixed seeds,
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
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use sustain_model::kernels::Isa;
use sustain_model::simulate::Cohort;
use sustain_model::SubtypeOf;
use sustain_model::{
    BatchEvaluator, Likelihood, MissingConvention, Mixture, Scratch, Sequence, SerialEvaluator,
};

struct Workload {
    name: String,
    n_subjects: usize,
    lik: Likelihood,
    mixture: Mixture,
    candidates: Vec<Sequence>,
}

/// A cohort of `sustain_testkit::workloads` with 10 candidate sequences drawn after
/// its true sequences.
fn workload(mut w: Cohort) -> Workload {
    let candidates = (0..10)
        .map(|_| Sequence::random(&w.events, &mut w.rng))
        .collect();
    let n_subjects = w.data.n_subjects();
    let name = format!(
        "M{n_subjects}_B{}_N{}_S{}_miss10",
        w.events.n_biomarkers(),
        w.events.n_events(),
        w.truth.n_subtypes()
    );
    let lik = Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap();
    Workload {
        name,
        n_subjects,
        lik,
        mixture: w.truth,
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
                eval.loglike_subtype_candidates(
                    SubtypeOf::new(black_box(&w.mixture), 0),
                    &w.candidates,
                )
                .unwrap(),
            )
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let w1 = workload(sustain_testkit::w1());
    bench_workload(c, "W1", &w1);
    let w2 = workload(sustain_testkit::w2());
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
