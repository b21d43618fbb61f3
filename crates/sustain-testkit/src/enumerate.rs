//! Exact answers of problems small enough to enumerate, for the exactness tests.

use sustain_model::{EventSet, Likelihood, Mixture, Sequence};

/// Every valid sequence of `events` (an event after its biomarker's lower one), in
/// lexicographic order of the event orders.
pub fn all_sequences(events: &EventSet) -> Vec<Sequence> {
    fn rec(events: &EventSet, prefix: &mut Vec<usize>, out: &mut Vec<Sequence>) {
        let n = events.n_events();
        if prefix.len() == n {
            out.push(Sequence::new(events, prefix).unwrap());
            return;
        }
        for e in 0..n {
            let lower_placed = events
                .lower_neighbour(e)
                .is_none_or(|l| prefix.contains(&l));
            if !prefix.contains(&e) && lower_placed {
                prefix.push(e);
                rec(events, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    rec(events, &mut Vec::new(), &mut out);
    out
}

/// The exact one-subtype posterior over `sequences` under a flat prior: each
/// sequence's likelihood over their sum (computed relative to the largest).
pub fn single_subtype_posterior(lik: &Likelihood, sequences: &[Sequence]) -> Vec<f64> {
    let lls: Vec<f64> = sequences
        .iter()
        .map(|s| lik.loglike(&Mixture::single(s.clone())))
        .collect();
    let max = lls.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = lls.iter().map(|l| (l - max).exp()).sum();
    lls.iter().map(|l| (l - max).exp() / z).collect()
}
