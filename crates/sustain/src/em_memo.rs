//! E-M's choices remembered across the start points of one data set.
//!
//! Where the evaluator says its choices are pure
//! (`BatchEvaluator::choices_are_pure`), the best position of an event is a
//! function of the data, the whole mixture (every sequence and fraction, to the
//! bit), the subtype and the event: the evaluator's screen only decides which
//! candidates are scored exactly, and those exact scores do not depend on what it
//! computed before. Start points of one data set often query the same states: the E-Ms from one
//! split all start from the same mixture and their last passes repeat a converged
//! state; passes that move nothing repeat it too. A remembered choice is the one the
//! evaluator would make, so using it changes no result, only the time.

use std::collections::HashMap;
use std::sync::Mutex;
use sustain_core::Mixture;

/// A mixture to the bit: fractions' bits, then the sequences' event orders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StateKey(Box<[u64]>);

impl StateKey {
    pub(crate) fn of(mixture: &Mixture) -> Self {
        let mut words: Vec<u64> = mixture.fractions().iter().map(|f| f.to_bits()).collect();
        for seq in mixture.sequences() {
            // Four events per word; the length is the same for every sequence.
            for quad in seq.order_u16().chunks(4) {
                let mut w = 0u64;
                for (i, &v) in quad.iter().enumerate() {
                    w |= u64::from(v) << (16 * i);
                }
                words.push(w);
            }
        }
        Self(words.into_boxed_slice())
    }

    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

/// No position known yet.
const UNKNOWN: u16 = u16::MAX;

/// Best positions by state, subtype and event, shared by the E-M jobs of one data
/// set; cleared when it would pass its memory budget.
#[derive(Debug)]
pub(crate) struct MoveMemo {
    inner: Mutex<Inner>,
    budget_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per state, `[subtype * n_events + event]`.
    best: HashMap<StateKey, Box<[u16]>>,
    bytes: usize,
}

/// Room for about 40,000 states of 3 subtypes x 114 events. A split fills one memo
/// per cluster, then (those dropped) one for the whole data.
const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

impl MoveMemo {
    pub(crate) fn new() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }

    pub(crate) fn with_budget(budget_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            budget_bytes,
        }
    }

    /// The best position of `event` of subtype `subtype` in the state `key` of a
    /// mixture of `n_subtypes` x `n_events`, when known.
    pub(crate) fn get(
        &self,
        key: &StateKey,
        n_events: usize,
        subtype: usize,
        event: usize,
    ) -> Option<usize> {
        // A poisoned lock only means another job panicked; its entries are whole.
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = *inner.best.get(key)?.get(subtype * n_events + event)?;
        (slot != UNKNOWN).then_some(usize::from(slot))
    }

    /// Remembers `best` for `event` of `subtype` in state `key`.
    pub(crate) fn put(
        &self,
        key: &StateKey,
        n_subtypes: usize,
        n_events: usize,
        subtype: usize,
        event: usize,
        best: usize,
    ) {
        let Ok(best) = u16::try_from(best) else {
            return;
        };
        if best == UNKNOWN {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.best.contains_key(key) {
            let cost = key.bytes() + 2 * n_subtypes * n_events + 64;
            if inner.bytes + cost > self.budget_bytes {
                inner.best.clear();
                inner.bytes = 0;
            }
            inner.bytes += cost;
            inner.best.insert(
                key.clone(),
                vec![UNKNOWN; n_subtypes * n_events].into_boxed_slice(),
            );
        }
        if let Some(slot) = inner
            .best
            .get_mut(key)
            .and_then(|slots| slots.get_mut(subtype * n_events + event))
        {
            *slot = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sustain_core::{EventOrder, Sequence};

    fn mixture(order: &[usize], f: f64) -> Mixture {
        let events = EventOrder::one_per_biomarker(order.len()).unwrap();
        let seq = Sequence::new(&events, order).unwrap();
        Mixture::new(vec![seq.clone(), seq], vec![f, 1.0 - f]).unwrap()
    }

    #[test]
    fn remembers_by_exact_state() {
        let memo = MoveMemo::new();
        let a = StateKey::of(&mixture(&[0, 1, 2, 3, 4], 0.25));
        memo.put(&a, 2, 5, 1, 3, 4);
        assert_eq!(memo.get(&a, 5, 1, 3), Some(4));
        assert_eq!(memo.get(&a, 5, 0, 3), None);
        // One bit of a fraction or one swapped pair is another state.
        let f = f64::from_bits(0.25f64.to_bits() + 1);
        assert_eq!(
            memo.get(&StateKey::of(&mixture(&[0, 1, 2, 3, 4], f)), 5, 1, 3),
            None
        );
        assert_eq!(
            memo.get(&StateKey::of(&mixture(&[1, 0, 2, 3, 4], 0.25)), 5, 1, 3),
            None
        );
    }

    #[test]
    fn clears_when_full_and_keeps_working() {
        let key_cost = StateKey::of(&mixture(&[0, 1, 2, 3, 4], 0.5)).bytes() + 2 * 10 + 64;
        let memo = MoveMemo::with_budget(2 * key_cost);
        let keys: Vec<StateKey> = (0..3)
            .map(|i| StateKey::of(&mixture(&[0, 1, 2, 3, 4], 0.1 * (i + 1) as f64)))
            .collect();
        memo.put(&keys[0], 2, 5, 0, 0, 1);
        memo.put(&keys[1], 2, 5, 0, 0, 2);
        assert_eq!(memo.get(&keys[0], 5, 0, 0), Some(1));
        memo.put(&keys[2], 2, 5, 0, 0, 3);
        assert_eq!(memo.get(&keys[0], 5, 0, 0), None);
        assert_eq!(memo.get(&keys[2], 5, 0, 0), Some(3));
    }
}
