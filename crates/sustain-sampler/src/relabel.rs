//! Relabelling every sampled state to a pivot (pivotal reordering, Marin, Mengersen
//! and Robert 2005): subtypes are exchangeable, so a chain that mixes well may
//! cross from one labelling of a mode to another (for example when a small
//! subtype and a large one pass through similar sequences, or through a tempered
//! copy's swap). Each state is given the labels that match its sequences to the
//! pivot's by event positions. Label-free quantities (the log-likelihood, the set
//! of sequences with their fractions) are unchanged; per-subtype summaries then
//! describe one labelling instead of an average over several.

use crate::trace::Trace;
use sustain_core::Mixture;

/// The labels (label `i` = column `labels[i]`) of least total `cost[i][labels[i]]`:
/// every permutation up to 6 subtypes (the first of equal costs), greedily above
/// (closest pairs first).
pub(crate) fn least_cost_labels(cost: &[Vec<f64>]) -> Vec<usize> {
    let k = cost.len();
    if k <= 6 {
        let mut perm: Vec<usize> = (0..k).collect();
        let mut best = perm.clone();
        let mut best_cost = f64::INFINITY;
        permutations(k, &mut perm, &mut |p| {
            let c: f64 = p.iter().enumerate().map(|(i, &j)| cost[i][j]).sum();
            if c < best_cost - 1e-12 {
                best_cost = c;
                best = p.to_vec();
            }
        });
        return best;
    }
    let mut pairs: Vec<(f64, usize, usize)> = (0..k)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| (cost[i][j], i, j))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut labels = vec![usize::MAX; k];
    let mut taken = vec![false; k];
    for (_, i, j) in pairs {
        if labels[i] == usize::MAX && !taken[j] {
            labels[i] = j;
            taken[j] = true;
        }
    }
    labels
}

/// Calls `f` with every permutation of `perm[..k]` (Heap's algorithm).
pub(crate) fn permutations(k: usize, perm: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
    if k <= 1 {
        f(perm);
        return;
    }
    for i in 0..k {
        permutations(k - 1, perm, f);
        let j = if k.is_multiple_of(2) { i } else { 0 };
        perm.swap(j, k - 1);
    }
}

/// Gives every state of `trace` the labels that match it to `pivot` (least total
/// absolute difference of event positions); a state already matching it best
/// under its own labels (ties included) keeps them. Returns how many distinct
/// states were relabelled (the trace is rebuilt only when some were).
pub fn relabel_to_pivot(trace: &mut Trace, pivot: &Mixture) -> usize {
    let (k, n) = (trace.n_subtypes, trace.n_events);
    if k < 2 || pivot.n_subtypes() != k {
        return 0;
    }
    let pivot_pos: Vec<&[u16]> = pivot
        .sequences()
        .iter()
        .map(|s| s.positions_u16())
        .collect();
    let mut labels_of: Vec<Option<Vec<usize>>> = Vec::with_capacity(trace.n_states());
    let mut cost = vec![vec![0.0; k]; k];
    trace.for_each_state(|_, positions, _| {
        for (i, row) in cost.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c = (0..n)
                    .map(|e| (pivot_pos[i][e] as f64 - positions[j * n + e] as f64).abs())
                    .sum();
            }
        }
        let identity: f64 = (0..k).map(|i| cost[i][i]).sum();
        let labels = least_cost_labels(&cost);
        let best: f64 = labels.iter().enumerate().map(|(i, &j)| cost[i][j]).sum();
        labels_of.push((best < identity).then_some(labels));
    });
    let relabelled = labels_of.iter().filter(|l| l.is_some()).count();
    if relabelled == 0 {
        return 0;
    }
    let identity: Vec<usize> = (0..k).collect();
    let mut out = Trace::new(k, n);
    let mut orders = vec![0u16; k * n];
    let mut fractions = vec![0.0; k];
    trace.for_each_state(|st, _, own| {
        let labels = labels_of[st].as_ref().unwrap_or(&identity);
        for (i, &j) in labels.iter().enumerate() {
            orders[i * n..(i + 1) * n].copy_from_slice(&own[j * n..(j + 1) * n]);
            fractions[i] = trace.fraction(st, j);
        }
        let rows: Vec<&[u16]> = orders.chunks(n).collect();
        out.push_state(&rows, &fractions, trace.loglike[st], trace.runs[st]);
    });
    *trace = out;
    relabelled
}

#[cfg(test)]
mod tests {
    use super::*;
    use sustain_core::{EventOrder, Sequence};

    fn seq(order: &[usize]) -> Sequence {
        let events = EventOrder::one_per_biomarker(4).unwrap();
        Sequence::new(&events, order).unwrap()
    }

    #[test]
    fn states_under_swapped_labels_are_put_back_and_others_left() {
        let a = seq(&[0, 1, 2, 3]);
        let b = seq(&[3, 2, 1, 0]);
        let pivot = Mixture::new(vec![a.clone(), b.clone()], vec![0.7, 0.3]).unwrap();
        let mut trace = Trace::new(2, 4);
        trace.record(&pivot, -1.0, true);
        let swapped = Mixture::new(vec![b.clone(), a.clone()], vec![0.3, 0.7]).unwrap();
        trace.record(&swapped, -1.0, true);
        trace.record(&swapped, -1.0, false);
        assert_eq!(relabel_to_pivot(&mut trace, &pivot), 1);
        for st in 0..trace.n_states() {
            assert_eq!(trace.fraction(st, 0), 0.7);
            assert_eq!(trace.position(st, 0, 3), 3);
            assert_eq!(trace.position(st, 1, 3), 0);
        }
        assert_eq!(trace.runs, vec![1, 2]);
        assert_eq!(relabel_to_pivot(&mut trace, &pivot), 0);
    }

    #[test]
    fn least_cost_labels_by_brute_force_and_greedily() {
        let cost = vec![
            vec![5.0, 1.0, 9.0],
            vec![1.0, 5.0, 9.0],
            vec![9.0, 9.0, 0.0],
        ];
        assert_eq!(least_cost_labels(&cost), vec![1, 0, 2]);
        let k = 8;
        let cost: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| if j == (i + 3) % k { 0.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        let labels = least_cost_labels(&cost);
        assert!(labels.iter().enumerate().all(|(i, &j)| j == (i + 3) % k));
    }
}
