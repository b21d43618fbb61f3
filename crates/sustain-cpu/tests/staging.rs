//! `ThreadedEvaluator::posterior_sums` (staging): the same sums on any thread count,
//! equal to the serial evaluator's within rounding, and each subject's posteriors sum
//! to the number of samples.

use rand::SeedableRng;
use std::sync::Arc;
use sustain_cpu::ThreadedEvaluator;
use sustain_model::simulate::simulate;
use sustain_model::*;
use sustain_testkit::{equal_fractions, random_mixture, spec};

fn problem(k: usize, n_mixtures: usize, seed: u64) -> (Arc<Likelihood>, Vec<Mixture>) {
    let events = EventSet::new(
        &[vec![1.0, 2.0], vec![1.5], vec![1.0, 2.0, 3.0]],
        &[3.5, 3.0, 5.0],
    )
    .unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let fractions = equal_fractions(k);
    let truth = random_mixture(&events, &fractions, &mut rng);
    let data = simulate(&events, &truth, &spec(90, 0.1, 0.15), seed + 1)
        .unwrap()
        .data;
    let lik =
        Arc::new(Likelihood::new(events.clone(), &data, MissingConvention::Reference).unwrap());
    let mixtures = (0..n_mixtures)
        .map(|_| random_mixture(&events, &fractions, &mut rng))
        .collect();
    (lik, mixtures)
}

#[test]
fn posterior_sums_do_not_depend_on_threads() {
    for (k, n) in [(1, 1), (2, 17), (3, 40), (5, 9)] {
        let (lik, mixtures) = problem(k, n, 30 + k as u64);
        let serial = SerialEvaluator::new(Arc::clone(&lik))
            .posterior_sums(&mixtures)
            .unwrap();
        let one = ThreadedEvaluator::new(Arc::clone(&lik), 1)
            .posterior_sums(&mixtures)
            .unwrap();
        assert_eq!(one.dim(), (90, lik.events().n_stages(), k));
        for threads in [2, 3, 8] {
            let many = ThreadedEvaluator::new(Arc::clone(&lik), threads)
                .posterior_sums(&mixtures)
                .unwrap();
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "k={k}: {threads} threads differ from one"
            );
        }
        for (a, b) in one.iter().zip(&serial) {
            assert!(
                (a - b).abs() <= 1e-12 * n as f64,
                "k={k}: {a} vs serial {b}"
            );
        }
        for m in 0..90 {
            let total: f64 = one.slice(ndarray::s![m, .., ..]).sum();
            assert!(
                (total - n as f64).abs() < 1e-9 * n as f64,
                "subject {m}: {total}"
            );
        }
    }
}

#[test]
fn posterior_sums_reject_mixed_subtype_counts() {
    let (lik, mut mixtures) = problem(2, 3, 50);
    mixtures.push(problem(3, 1, 51).1.remove(0));
    let e = ThreadedEvaluator::new(lik, 2)
        .posterior_sums(&mixtures)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mixes models of 2 and 3 subtypes"), "{e}");
}
