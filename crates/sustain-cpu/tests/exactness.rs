//! The `exact` chains sample the posterior exactly: on problems small enough to
//! enumerate, merged sequence frequencies match the exact posterior.

use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::Arc;
use sustain_cpu::{run_chains, ChainSettings};
use sustain_model::*;
use sustain_sampler::{merge, ProposalMode, StepSizes};
use sustain_testkit::enumerate::{all_sequences, single_subtype_posterior};
use sustain_testkit::{cohort, spec};

fn small_problem(n_subjects: usize, seed: u64) -> (EventSet, Arc<Likelihood>) {
    let events = EventSet::uniform(2, &[1.0, 2.0], 3.0).unwrap();
    let w = cohort(events, &[1.0], seed, &spec(n_subjects, 0.0, 0.1), seed);
    let lik = Arc::new(
        Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap(),
    );
    (w.events, lik)
}

fn tvd(a: &HashMap<Vec<usize>, f64>, b: &HashMap<Vec<usize>, f64>) -> f64 {
    let keys: std::collections::HashSet<_> = a.keys().chain(b.keys()).collect();
    0.5 * keys
        .iter()
        .map(|k| (a.get(*k).unwrap_or(&0.0) - b.get(*k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
}

#[test]
fn exact_chains_match_enumerated_posterior_one_subtype() {
    let (events, lik) = small_problem(12, 3);
    let seqs = all_sequences(&events);
    assert_eq!(seqs.len(), 6);
    let exact: HashMap<Vec<usize>, f64> = seqs
        .iter()
        .zip(single_subtype_posterior(&lik, &seqs))
        .map(|(s, p)| (s.order(), p))
        .collect();
    let settings = ChainSettings {
        mode: ProposalMode::Exact,
        steps: StepSizes::initial(1, events.n_events()),
        n_iterations: 60_000,
        seed: 11,
        threads: 2,
        chain_threads: 1,
    };
    let start = Mixture::single(seqs[0].clone());
    let (merged, _) = merge(run_chains(&lik, &start, &settings, 0..4), 1000, 1);
    let mut freq: HashMap<Vec<usize>, f64> = HashMap::new();
    let idx = merged.sample_index();
    for &(c, st) in &idx {
        let t = &merged.chains[c].trace;
        let mut order = vec![0; t.n_events];
        for e in 0..t.n_events {
            order[t.position(st, 0, e)] = e;
        }
        *freq.entry(order).or_default() += 1.0 / idx.len() as f64;
    }
    let d = tvd(&freq, &exact);
    assert!(d < 0.02, "total variation {d}: {freq:?} vs {exact:?}");
}

#[test]
fn exact_chains_match_grid_posterior_two_subtypes() {
    let (events, lik) = small_problem(8, 5);
    let seqs = all_sequences(&events);
    // Exact posterior of the unordered pair of sequences, fractions integrated on a grid
    // (flat prior on the simplex).
    let grid = 400;
    let mut exact: HashMap<Vec<usize>, f64> = HashMap::new();
    let mut max = f64::NEG_INFINITY;
    let mut terms = Vec::new();
    for a in &seqs {
        for b in &seqs {
            let mut vals = Vec::new();
            for g in 0..grid {
                let f1 = (g as f64 + 0.5) / grid as f64;
                let m = Mixture::new(vec![a.clone(), b.clone()], vec![f1, 1.0 - f1]).unwrap();
                let ll = lik.loglike(&m);
                max = max.max(ll);
                vals.push(ll);
            }
            terms.push((a.order(), b.order(), vals));
        }
    }
    let mut total = 0.0;
    for (a, b, vals) in &terms {
        let w: f64 = vals.iter().map(|l| (l - max).exp()).sum::<f64>() / grid as f64;
        let key = if a <= b {
            [a.clone(), b.clone()].concat()
        } else {
            [b.clone(), a.clone()].concat()
        };
        *exact.entry(key).or_default() += w;
        total += w;
    }
    exact.values_mut().for_each(|v| *v /= total);
    let mut steps = StepSizes::initial(2, events.n_events());
    steps.sigma_f = vec![0.3, 0.3];
    let settings = ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations: 150_000,
        seed: 7,
        threads: 2,
        chain_threads: 1,
    };
    let start = Mixture::new(vec![seqs[0].clone(), seqs[1].clone()], vec![0.5, 0.5]).unwrap();
    let (merged, _) = merge(run_chains(&lik, &start, &settings, 0..4), 2000, 1);
    let mut freq: HashMap<Vec<usize>, f64> = HashMap::new();
    let idx = merged.sample_index();
    for &(c, st) in &idx {
        let t = &merged.chains[c].trace;
        let mut orders = vec![vec![0; t.n_events]; 2];
        for (s, order) in orders.iter_mut().enumerate() {
            for e in 0..t.n_events {
                order[t.position(st, s, e)] = e;
            }
        }
        orders.sort();
        *freq.entry(orders.concat()).or_default() += 1.0 / idx.len() as f64;
    }
    let d = tvd(&freq, &exact);
    assert!(d < 0.02, "total variation {d}");
}

#[test]
fn same_seed_same_samples_whatever_the_thread_count() {
    let (events, lik) = small_problem(30, 9);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let start = sustain_testkit::random_mixture(&events, &[0.4, 0.6], &mut rng);
    let mk = |threads| ChainSettings {
        mode: ProposalMode::Exact,
        steps: StepSizes::initial(2, events.n_events()),
        n_iterations: 3000,
        seed: 42,
        threads,
        chain_threads: 1,
    };
    let one = merge(run_chains(&lik, &start, &mk(1), 0..4), 100, 1).0;
    let four = merge(run_chains(&lik, &start, &mk(4), 0..4), 100, 1).0;
    for (a, b) in one.chains.iter().zip(&four.chains) {
        assert_eq!(a.trace, b.trace);
    }
    // Shards of chains equal the same chains run together.
    let shard = run_chains(&lik, &start, &mk(2), 2..4);
    assert_eq!(shard[0].trace, four.chains[2].trace);
}
