//! The blockwise proposal moves one block a step: one subtype's sequence (the
//! chosen event always to another place when it has one) or the fractions, never
//! both; the exact proposal with step sizes at their floor barely moves at all.
//! (That both sample the posterior is checked against enumerated posteriors in
//! sustain-cpu's exactness tests.)

use rand::SeedableRng;
use std::sync::Arc;
use sustain_model::{IncrementalLikelihood, Likelihood, MissingConvention, Mixture};
use sustain_sampler::{ProposalMode, StepSizes, SustainChain};
use sustain_testkit::uniform_cohort;

/// Per step of a chain in `mode` with every sequence step size at its floor: how
/// many subtypes' sequences the proposal changed and whether it changed the
/// fractions.
fn proposal_blocks(mode: ProposalMode, steps: usize) -> Vec<(usize, bool)> {
    let w = uniform_cohort(300, 4, &[0.5, 0.3, 0.2], 3);
    let lik = Arc::new(
        Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap(),
    );
    let mut step_sizes = StepSizes::initial(3, w.events.n_events());
    for s in &mut step_sizes.sigma_seq {
        s.fill(sustain_sampler::tuning::MIN_SIGMA_SEQ);
    }
    step_sizes.sigma_f = vec![0.02; 3];
    let inc = IncrementalLikelihood::new(Arc::clone(&lik), &w.truth);
    let mut chain = SustainChain::new(&w.events, inc, w.truth.clone(), mode, step_sizes);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let mut proposal: Mixture = w.truth.clone();
    let mut blocks = Vec::new();
    for _ in 0..steps {
        let current = sustain_sampler::Chain::state(&chain).clone();
        let pending = chain.begin_step(&mut rng, &mut proposal);
        let seqs = (0..3)
            .filter(|&s| proposal.sequences()[s] != current.sequences()[s])
            .count();
        let fractions = proposal.fractions() != current.fractions();
        blocks.push((seqs, fractions));
        if let Some(p) = pending {
            chain.finish_step(p, &proposal, lik.loglike(&proposal));
        }
    }
    blocks
}

#[test]
fn blockwise_moves_one_block_and_never_stands_still_by_choice() {
    let steps = 3000;
    let blocks = proposal_blocks(ProposalMode::Blockwise, steps);
    assert!(
        blocks.iter().all(|&(s, f)| s + usize::from(f) <= 1),
        "a proposal changed more than one block"
    );
    let seq_moves = blocks.iter().filter(|&&(s, _)| s == 1).count();
    let f_moves = blocks.iter().filter(|&&(_, f)| f).count();
    // A sequence block is chosen 3 times in 4; on this model most events have
    // room to move, and a chosen event always moves when it has.
    assert!(
        seq_moves > steps / 2,
        "{seq_moves} of {steps} proposals moved an event"
    );
    assert!(
        f_moves > steps / 8,
        "{f_moves} of {steps} moved the fractions"
    );
    // The exact proposal at the same step sizes: every block at once, and the
    // sequences almost never (an event's own place has all the weight).
    let exact = proposal_blocks(ProposalMode::Exact, steps);
    let exact_seq_moves = exact.iter().filter(|&&(s, _)| s > 0).count();
    assert!(
        exact_seq_moves < steps / 100,
        "{exact_seq_moves} exact proposals moved an event"
    );
}
