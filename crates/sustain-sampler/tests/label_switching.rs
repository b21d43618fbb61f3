//! Chains that found the same subtypes under other labels (subtypes swapped as a
//! whole) are realigned when merged: the diagnostics, summaries and verdict are
//! those of chains with the same labels, and nothing is reported as a
//! disagreement. Chains that really sit in different modes are reported.

use std::sync::Arc;
use sustain_model::simulate::simulate;
use sustain_model::*;
use sustain_sampler::chain_summary::{disagreements, event_numbers, explain, summarize_chains};
use sustain_sampler::verdict::unmet_criteria;
use sustain_sampler::{merge, rng, run_chain, ChainRun, ProposalMode, Round, StepSizes};
use sustain_testkit::spec;

/// Two well separated subtypes: 4 biomarkers, one threshold each, opposite orders.
fn model() -> (Arc<Likelihood>, Mixture) {
    let events = EventSet::uniform(4, &[1.5], 4.0).unwrap();
    let truth = Mixture::new(
        vec![
            Sequence::new(&events, &[0, 1, 2, 3]).unwrap(),
            Sequence::new(&events, &[3, 2, 1, 0]).unwrap(),
        ],
        vec![0.6, 0.4],
    )
    .unwrap();
    let sim = simulate(&events, &truth, &spec(300, 0.1, 0.0), 9).unwrap();
    let lik = Arc::new(Likelihood::new(events, &sim.data, MissingConvention::Marginalise).unwrap());
    (lik, truth)
}

fn chains(lik: &Arc<Likelihood>, start: &Mixture, n: usize) -> Vec<ChainRun> {
    let mut steps = StepSizes::initial(2, lik.events().n_events());
    steps.sigma_f = vec![0.05, 0.05];
    four_chains(lik, |_| start, &steps, n, 3)
}

/// Four exact chains of `n` iterations, chain `i` from `start(i)` with stream
/// `(seed, CHAIN, i)`.
fn four_chains<'a>(
    lik: &Arc<Likelihood>,
    start: impl Fn(usize) -> &'a Mixture,
    steps: &StepSizes,
    n: usize,
    seed: u64,
) -> Vec<ChainRun> {
    (0..4)
        .map(|i| {
            let mut r = rng::stream(seed, rng::purpose::CHAIN, i as u64);
            let eval = IncrementalLikelihood::new(Arc::clone(lik), start(i));
            let round = Round::new(ProposalMode::Exact, steps, n);
            run_chain(i, lik.events(), eval, start(i), round, &mut r)
        })
        .collect()
}

#[test]
fn swapped_labels_are_realigned_not_reported() {
    let (lik, truth) = model();
    let runs = chains(&lik, &truth, 20_000);
    let (plain, d_plain) = merge(runs.clone(), 2_000, 1);
    assert!(d_plain.converged, "{:?}", d_plain.warnings);
    assert!(
        unmet_criteria(&d_plain).is_empty(),
        "{:?}",
        unmet_criteria(&d_plain)
    );
    // Chains 1 and 3 found the same subtypes under swapped labels.
    let mut swapped = runs;
    for c in [1, 3] {
        swapped[c].trace.permute_subtypes(&[1, 0]);
    }
    let (merged, d) = merge(swapped, 2_000, 1);
    assert_eq!(
        d.relabelled,
        vec![vec![0, 1], vec![1, 0], vec![0, 1], vec![1, 0]]
    );
    assert!(merged
        .chains
        .iter()
        .zip(&plain.chains)
        .all(|(a, b)| a.trace == b.trace));
    assert!(d.converged, "{:?}", d.warnings);
    assert_eq!(d.rhat_f, d_plain.rhat_f);
    assert_eq!(d.rhat_positions_max, d_plain.rhat_positions_max);
    assert!(unmet_criteria(&d).is_empty());
    let summaries = summarize_chains(&merged, &d.relabelled);
    assert_eq!(summaries[1].subtypes, vec![1, 0]);
    assert!(disagreements(&merged, &summaries).is_empty());
    assert!(explain(&summaries, &[], &d.rhat_f, &|e| event_numbers(e)).is_empty());
}

#[test]
fn chains_in_different_modes_are_named() {
    let (lik, truth) = model();
    // Chains 2 and 4 (indices 1 and 3) start with subtype 0's events 1-2 swapped
    // and run too briefly, with tiny steps, to leave that mode.
    let other = Mixture::new(
        vec![
            Sequence::new(lik.events(), &[1, 0, 2, 3]).unwrap(),
            Sequence::new(lik.events(), &[3, 2, 1, 0]).unwrap(),
        ],
        vec![0.6, 0.4],
    )
    .unwrap();
    let mut steps = StepSizes::initial(2, lik.events().n_events());
    steps.sigma_seq = vec![vec![0.01; 4]; 2];
    steps.sigma_f = vec![0.02, 0.02];
    let start = |i: usize| if i % 2 == 1 { &other } else { &truth };
    let runs = four_chains(&lik, start, &steps, 2_000, 4);
    let (merged, d) = merge(runs, 0, 1);
    assert!(!d.converged);
    let summaries = summarize_chains(&merged, &d.relabelled);
    let found = disagreements(&merged, &summaries);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].subtype, 0);
    assert_eq!(found[0].chains.len(), 2);
    assert_eq!(found[0].events, vec![0, 1]);
    let lines = explain(&summaries, &found, &d.rhat_f, &|e| event_numbers(e));
    assert!(
        lines[0].starts_with("chains ")
            && lines[0].contains("subtype 1's events 1-2 in another order than chains "),
        "{lines:?}"
    );
    assert!(lines[0].contains("may not support 2 subtypes"), "{lines:?}");
}
