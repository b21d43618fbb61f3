//! Minimum-of-many timings of one likelihood on W1 and W2 (robust to a busy
//! machine, unlike means): `cargo run --release --example likelihood_timing`.

use std::time::Instant;
use sustain_model::*;

/// `sustain_model::workloads::cohort` with `ns` subtypes of equal fractions.
fn workload(nb: usize, ns: usize, m: usize) -> (Likelihood, Mixture) {
    let w = workloads::cohort(m, nb, &vec![1.0 / ns as f64; ns], 1);
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
    for (name, nb, ns, m) in [
        ("W1 (M=1000, B=10, N=30, S=3)", 10, 3, 1000),
        ("W2 (M=2000, B=15, N=45, S=5)", 15, 5, 2000),
    ] {
        let (lik, mix) = workload(nb, ns, m);
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
