//! The `exact` chains sample the posterior exactly: on problems small enough to
//! enumerate, merged sequence frequencies match the exact posterior.

use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::Arc;
use sustain_cpu::{continue_chains, run_chains, ChainSettings, JobThreads};
use sustain_model::*;
use sustain_sampler::{
    geometric_ladder, merge, ChainRun, MergedSamples, PausedChain, ProposalMode, StepSizes,
};
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

/// Frequencies of the merged samples' sequences; for several subtypes, of the
/// sorted (unordered) tuple of sequences.
fn sequence_frequencies(merged: &MergedSamples, n_subtypes: usize) -> HashMap<Vec<usize>, f64> {
    let mut freq: HashMap<Vec<usize>, f64> = HashMap::new();
    let idx = merged.sample_index();
    for &(c, st) in &idx {
        let t = &merged.chains[c].trace;
        let mut orders = vec![vec![0; t.n_events]; n_subtypes];
        for (s, order) in orders.iter_mut().enumerate() {
            for e in 0..t.n_events {
                order[t.position(st, s, e)] = e;
            }
        }
        orders.sort();
        *freq.entry(orders.concat()).or_default() += 1.0 / idx.len() as f64;
    }
    freq
}

/// The exact posterior of the single-subtype sequences of `lik`.
fn one_subtype_posterior(events: &EventSet, lik: &Likelihood) -> HashMap<Vec<usize>, f64> {
    let seqs = all_sequences(events);
    assert_eq!(seqs.len(), 6);
    seqs.iter()
        .zip(single_subtype_posterior(lik, &seqs))
        .map(|(s, p)| (s.order(), p))
        .collect()
}

/// Exact-proposal chains of `n_iterations` from `seed` on `threads` threads, one
/// thread per chain.
fn exact_chains(steps: StepSizes, n_iterations: usize, seed: u64, threads: usize) -> ChainSettings {
    ChainSettings {
        mode: ProposalMode::Exact,
        steps,
        n_iterations,
        seed,
        threads,
        chain_threads: 1,
    }
}

/// Runs chains `0..4` of `settings` from `start` in two rounds, each chain the cold
/// copy of a replica-exchange ladder of `rungs` powers down to `hottest`.
fn tempered_runs(
    lik: &Arc<Likelihood>,
    start: &Mixture,
    settings: &ChainSettings,
    rungs: usize,
    hottest: f64,
) -> Vec<ChainRun> {
    let betas = geometric_ladder(rungs, hottest);
    let mut paused: Vec<PausedChain<_>> = (0..4)
        .map(|i| {
            PausedChain::start(i, start, settings.seed, lik.events().n_events())
                .tempered(betas.clone(), settings.seed)
                .unwrap()
        })
        .collect();
    let half = settings.n_iterations / 2;
    for n in [half, settings.n_iterations - half] {
        continue_chains(
            lik,
            settings,
            &mut paused,
            n,
            None,
            None,
            JobThreads::fixed(settings.threads),
        );
    }
    let (_, rates) = paused[0].ladder().unwrap();
    assert!(
        rates.iter().all(|r| *r > 0.0),
        "the copies must swap: {rates:?}"
    );
    paused
        .iter()
        .map(|p| p.run_so_far(settings.n_iterations))
        .collect()
}

#[test]
fn exact_chains_match_enumerated_posterior_one_subtype() {
    let (events, lik) = small_problem(12, 3);
    let seqs = all_sequences(&events);
    let exact = one_subtype_posterior(&events, &lik);
    let settings = exact_chains(StepSizes::initial(1, events.n_events()), 60_000, 11, 2);
    let start = Mixture::single(seqs[0].clone());
    for mode in [ProposalMode::Exact, ProposalMode::Blockwise] {
        let settings = ChainSettings {
            mode,
            ..settings.clone()
        };
        let (merged, _) = merge(run_chains(&lik, &start, &settings, 0..4), 1000, 1);
        let freq = sequence_frequencies(&merged, 1);
        let d = tvd(&freq, &exact);
        assert!(
            d < 0.02,
            "{mode:?}: total variation {d}: {freq:?} vs {exact:?}"
        );
    }
    // Replica exchange keeps the posterior: the cold copies of tempered ladders.
    let (merged, _) = merge(tempered_runs(&lik, &start, &settings, 3, 0.2), 1000, 1);
    let freq = sequence_frequencies(&merged, 1);
    let d = tvd(&freq, &exact);
    assert!(
        d < 0.02,
        "tempered: total variation {d}: {freq:?} vs {exact:?}"
    );
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
    let settings = exact_chains(steps, 150_000, 7, 2);
    let start = Mixture::new(vec![seqs[0].clone(), seqs[1].clone()], vec![0.5, 0.5]).unwrap();
    for mode in [ProposalMode::Exact, ProposalMode::Blockwise] {
        let settings = ChainSettings {
            mode,
            ..settings.clone()
        };
        let (merged, _) = merge(run_chains(&lik, &start, &settings, 0..4), 2000, 1);
        let d = tvd(&sequence_frequencies(&merged, 2), &exact);
        assert!(d < 0.02, "{mode:?}: total variation {d}");
    }
    let (merged, _) = merge(tempered_runs(&lik, &start, &settings, 4, 0.1), 2000, 1);
    let d = tvd(&sequence_frequencies(&merged, 2), &exact);
    assert!(d < 0.02, "tempered: total variation {d}");
}

/// A ladder of one rung draws nothing more: the plain chain, sample for sample.
#[test]
fn a_ladder_of_one_rung_is_the_plain_chain() {
    let (events, lik) = small_problem(30, 9);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let start = sustain_testkit::random_mixture(&events, &[0.4, 0.6], &mut rng);
    let settings = exact_chains(StepSizes::initial(2, events.n_events()), 3000, 42, 2);
    let plain = run_chains(&lik, &start, &settings, 0..2);
    let mut paused: Vec<PausedChain<_>> = (0..2)
        .map(|i| {
            PausedChain::start(i, &start, settings.seed, events.n_events())
                .tempered(vec![1.0], settings.seed)
                .unwrap()
        })
        .collect();
    continue_chains(
        &lik,
        &settings,
        &mut paused,
        3000,
        None,
        None,
        JobThreads::fixed(settings.threads),
    );
    assert!(paused[0].ladder().is_none());
    for (p, w) in paused.iter().zip(&plain) {
        assert!(p.run_so_far(3000).trace == w.trace);
    }
}

#[test]
fn same_seed_same_samples_whatever_the_thread_count() {
    let (events, lik) = small_problem(30, 9);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let start = sustain_testkit::random_mixture(&events, &[0.4, 0.6], &mut rng);
    let mk = |threads| exact_chains(StepSizes::initial(2, events.n_events()), 3000, 42, threads);
    let one = merge(run_chains(&lik, &start, &mk(1), 0..4), 100, 1).0;
    let four = merge(run_chains(&lik, &start, &mk(4), 0..4), 100, 1).0;
    for (a, b) in one.chains.iter().zip(&four.chains) {
        assert_eq!(a.trace, b.trace);
    }
    // Shards of chains equal the same chains run together.
    let shard = run_chains(&lik, &start, &mk(2), 2..4);
    assert_eq!(shard[0].trace, four.chains[2].trace);
}
