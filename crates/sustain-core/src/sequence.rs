//! Validated event sequences.

use crate::error::{ModelError, Result};
use crate::order::EventOrder;
use rand::Rng;
use std::ops::RangeInclusive;

/// A sequence: a permutation of the events `0..N` in which every biomarker's events
/// appear in increasing threshold order. Holds the order and its inverse (positions).
///
/// Only valid sequences can be constructed, so every likelihood call evaluates a
/// valid model.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sequence {
    order: Vec<u16>,
    positions: Vec<u16>,
}

clone_reusing_buffers!(Sequence { order, positions });

impl Sequence {
    /// Validates `order` (event indices, first to last) against `events`.
    ///
    /// ```
    /// use sustain_core::{EventOrder, Sequence};
    /// let ev = EventOrder::new(&[0, 1, 0], 2).unwrap();
    /// // events: 0 = (b0, z1), 1 = (b1, z1), 2 = (b0, z2)
    /// assert!(Sequence::new(&ev, &[1, 0, 2]).is_ok());
    /// assert!(Sequence::new(&ev, &[2, 0, 1]).is_err()); // z2 before z1
    /// ```
    pub fn new(events: &EventOrder, order: &[usize]) -> Result<Self> {
        let n = events.n_events();
        if order.len() != n {
            return Err(ModelError::InvalidSequence(format!(
                "has {} events, the model has {}",
                order.len(),
                n
            )));
        }
        let mut positions = vec![u16::MAX; n];
        for (p, &e) in order.iter().enumerate() {
            if e >= n {
                return Err(ModelError::InvalidSequence(format!(
                    "event index {e} out of range 0..{n}"
                )));
            }
            if positions[e] != u16::MAX {
                return Err(ModelError::InvalidSequence(format!(
                    "event {e} appears twice"
                )));
            }
            positions[e] = p as u16;
        }
        for b in 0..events.n_biomarkers() {
            for w in events.biomarker_events(b).windows(2) {
                if positions[w[0]] > positions[w[1]] {
                    return Err(ModelError::InvalidSequence(format!(
                        "event {} (biomarker {b}, {}) comes before event {} ({})",
                        w[1],
                        events.label(w[1]),
                        w[0],
                        events.label(w[0])
                    )));
                }
            }
        }
        Ok(Self {
            order: order.iter().map(|&e| e as u16).collect(),
            positions,
        })
    }

    /// A random valid sequence, drawn as the reference does: repeatedly choose
    /// uniformly among the events allowed next (each biomarker's lowest unplaced one).
    pub fn random<R: Rng + ?Sized>(events: &EventOrder, rng: &mut R) -> Self {
        let n = events.n_events();
        let mut next_level = vec![0usize; events.n_biomarkers()];
        let mut order = Vec::with_capacity(n);
        let mut candidates = Vec::with_capacity(events.n_biomarkers());
        while order.len() < n {
            candidates.clear();
            for (b, &level) in next_level.iter().enumerate() {
                if let Some(&e) = events.biomarker_events(b).get(level) {
                    candidates.push(e);
                }
            }
            let e = candidates[rng.gen_range(0..candidates.len())];
            next_level[events.biomarker_of(e)] += 1;
            order.push(e);
        }
        Self::from_valid_order(order)
    }

    fn from_valid_order(order: Vec<usize>) -> Self {
        let mut positions = vec![0u16; order.len()];
        for (p, &e) in order.iter().enumerate() {
            positions[e] = p as u16;
        }
        Self {
            order: order.into_iter().map(|e| e as u16).collect(),
            positions,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Always false: a model has at least one event.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// Event indices, first to last.
    pub fn order(&self) -> Vec<usize> {
        self.order.iter().map(|&e| e as usize).collect()
    }
    /// Event indices as stored (compact).
    pub fn order_u16(&self) -> &[u16] {
        &self.order
    }
    /// Position of every event (inverse of the order), compact.
    pub fn positions_u16(&self) -> &[u16] {
        &self.positions
    }
    /// The event at position `p`.
    pub fn event_at(&self, p: usize) -> usize {
        self.order[p] as usize
    }
    /// The 0-based position of event `e`.
    pub fn position(&self, e: usize) -> usize {
        self.positions[e] as usize
    }

    /// Positions event `e` may move to: strictly after its lower same-biomarker
    /// neighbour and strictly before its upper one (positions of the current sequence;
    /// the range always contains the current position).
    pub fn allowed_positions(&self, events: &EventOrder, e: usize) -> RangeInclusive<usize> {
        let low = events
            .lower_neighbour(e)
            .map_or(0, |l| self.position(l) + 1);
        let high = events
            .upper_neighbour(e)
            .map_or(self.len() - 1, |u| self.position(u) - 1);
        low..=high
    }

    /// Moves event `e` to position `to` (the events in between shift by one).
    /// Fails, leaving the sequence unchanged, if `to` is not an allowed position.
    pub fn move_event(&mut self, events: &EventOrder, e: usize, to: usize) -> Result<()> {
        let allowed = self.allowed_positions(events, e);
        if !allowed.contains(&to) {
            return Err(ModelError::MoveNotAllowed {
                event: e,
                position: to,
                low: *allowed.start(),
                high: *allowed.end(),
            });
        }
        self.move_unchecked(e, to);
        Ok(())
    }

    /// Moves event `e` to `to` without checking the biomarker order. Callers must
    /// have taken `to` from [`Sequence::allowed_positions`].
    pub fn move_unchecked(&mut self, e: usize, to: usize) {
        let from = self.position(e);
        if from < to {
            self.order.copy_within(from + 1..=to, from);
        } else if to < from {
            self.order.copy_within(to..from, to + 1);
        }
        self.order[to] = e as u16;
        let (lo, hi) = if from < to { (from, to) } else { (to, from) };
        for p in lo..=hi {
            self.positions[self.order[p] as usize] = p as u16;
        }
    }
}
