//! The random steps the incremental-likelihood tests walk with.

use rand::Rng;
use sustain_model::{EventSet, IncrementalLikelihood, Mixture, Sequence};

/// Moves, in each subtype with probability `p_move`, one random event to a random
/// allowed position; returns which subtypes changed.
pub fn random_moves(
    mixture: &mut Mixture,
    events: &EventSet,
    p_move: f64,
    rng: &mut impl Rng,
) -> Vec<bool> {
    let mut changed = vec![false; mixture.n_subtypes()];
    for (s, changed) in changed.iter_mut().enumerate() {
        if rng.gen_bool(p_move) {
            let e = rng.gen_range(0..events.n_events());
            let allowed = mixture.sequences()[s].allowed_positions(events, e);
            let to = rng.gen_range(allowed);
            mixture.sequences_mut()[s]
                .move_event(events, e, to)
                .unwrap();
            *changed = true;
        }
    }
    changed
}

/// `k` random fractions, each drawn on [0.05, 1) and then normalised.
pub fn random_fractions(k: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut f: Vec<f64> = (0..k).map(|_| rng.gen_range(0.05..1.0)).collect();
    let sum: f64 = f.iter().sum();
    f.iter_mut().for_each(|v| *v /= sum);
    f
}

/// Accepts `prop` (it becomes `current`) or rejects it, with probability 1/2 each.
pub fn accept_or_reject(
    inc: &mut IncrementalLikelihood,
    current: &mut Mixture,
    prop: Mixture,
    rng: &mut impl Rng,
) {
    if rng.gen_bool(0.5) {
        inc.accept();
        *current = prop;
    } else {
        inc.reject();
    }
}

/// `k` random sequences, then `k` fractions each drawn on [0.1, 1) and normalised:
/// the random mixtures of the GPU benchmarks.
pub fn random_weighted_mixture(events: &EventSet, k: usize, rng: &mut impl Rng) -> Mixture {
    let seqs = (0..k).map(|_| Sequence::random(events, rng)).collect();
    let f: Vec<f64> = (0..k).map(|_| rng.gen_range(0.1..1.0)).collect();
    let sum: f64 = f.iter().sum();
    Mixture::new(seqs, f.iter().map(|v| v / sum).collect()).unwrap()
}
