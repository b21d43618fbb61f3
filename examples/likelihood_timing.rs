//! Minimum-of-many timings of one likelihood on W1 and W2 (robust to a busy
//! machine, unlike means): `cargo run --release --example likelihood_timing`. The
//! cohorts are `sustain_testkit::w1` and `w2`, those of the benches (before issue 23
//! this example drew them with equal fractions).

use std::time::Instant;
use sustain_model::simulate::Cohort;
use sustain_model::*;

/// A benchmark cohort's likelihood and true mixture.
fn workload(w: Cohort) -> (Likelihood, Mixture) {
    (
        Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap(),
        w.truth,
    )
}

fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    for (name, cohort) in [
        (
            "W1 (M=1000, B=10, N=30, S=3)",
            sustain_testkit::w1 as fn() -> Cohort,
        ),
        ("W2 (M=2000, B=15, N=45, S=5)", sustain_testkit::w2),
    ] {
        let (lik, mix) = workload(cohort());
        let mut scratch = Scratch::default();
        let mut out = vec![0.0; lik.padded_subjects()];
        let t_sub = min_time(2000, || {
            lik.subtype_lse_into(&mix.sequences()[0], &mut scratch, &mut out)
        });
        let t_all = min_time(1000, || {
            std::hint::black_box(lik.loglike(&mix));
        });
        println!(
            "{name}: one subtype {:.1} us, full log-likelihood {:.1} us (kernels: {:?})",
            t_sub * 1e6,
            t_all * 1e6,
            lik.isa()
        );
    }
}
