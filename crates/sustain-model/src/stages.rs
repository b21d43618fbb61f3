//! Expected z-score of each biomarker at each stage (spec section 2).

use crate::events::EventSet;
use crate::sequence::Sequence;

/// `mu[b][k]`: expected z of biomarker `b` at stage `k`, stored biomarker-major
/// (`values[b * n_stages + k]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StageValues {
    n_stages: usize,
    values: Vec<f64>,
}

impl StageValues {
    /// Computes the piecewise-linear curve through `(0, z_min)`, `(pos[e]+1, z_e)` for
    /// each of the biomarker's events, and `(N+1, z_max)`, and averages it at `k` and
    /// `k+1` for every stage `k = 0..=N`.
    pub fn new(events: &EventSet, sequence: &Sequence) -> Self {
        let mut s = Self {
            n_stages: 0,
            values: Vec::new(),
        };
        s.refill(events, sequence);
        s
    }

    /// No values yet (a buffer for [`Self::refill`]).
    pub fn empty() -> Self {
        Self {
            n_stages: 0,
            values: Vec::new(),
        }
    }

    /// Recomputes the values for `sequence` in place (no allocation once the
    /// buffer has the size; chains do this once per proposal).
    pub fn refill(&mut self, events: &EventSet, sequence: &Sequence) {
        let n_stages = events.n_stages();
        self.n_stages = n_stages;
        self.values.resize(events.n_biomarkers() * n_stages, 0.0);
        // Knots are few (levels + 2): one small buffer for every biomarker.
        let mut knots: Vec<(usize, f64)> = Vec::with_capacity(8);
        for b in 0..events.n_biomarkers() {
            self.fill_biomarker(events, sequence, b, &mut knots);
        }
    }

    /// As [`Self::refill`] where only the biomarkers with `moved[b]` can differ from
    /// `from` (the values of `from`'s sequence): those are recomputed, the others
    /// copied. A proposal moves a few events, so this is what chains call.
    ///
    /// # Panics
    /// If `from` has another shape or `moved` another length than the biomarkers.
    pub fn refill_moved(
        &mut self,
        from: &StageValues,
        events: &EventSet,
        sequence: &Sequence,
        moved: &[bool],
    ) {
        let n_stages = events.n_stages();
        assert!(from.n_stages == n_stages && from.values.len() == events.n_biomarkers() * n_stages);
        assert!(moved.len() == events.n_biomarkers());
        self.n_stages = n_stages;
        self.values.clear();
        self.values.extend_from_slice(&from.values);
        let mut knots: Vec<(usize, f64)> = Vec::with_capacity(8);
        for b in (0..events.n_biomarkers()).filter(|&b| moved[b]) {
            self.fill_biomarker(events, sequence, b, &mut knots);
        }
    }

    /// Recomputes biomarker `b`'s curve for `sequence` (`knots` is scratch).
    fn fill_biomarker(
        &mut self,
        events: &EventSet,
        sequence: &Sequence,
        b: usize,
        knots: &mut Vec<(usize, f64)>,
    ) {
        let n_stages = self.n_stages;
        biomarker_values(
            events,
            sequence,
            b,
            knots,
            &mut self.values[b * n_stages..(b + 1) * n_stages],
        );
    }

    /// Number of stages `N + 1`.
    pub fn n_stages(&self) -> usize {
        self.n_stages
    }
    /// `mu[b][k]`.
    pub fn get(&self, b: usize, k: usize) -> f64 {
        self.values[b * self.n_stages + k]
    }
    /// The stage values of biomarker `b` (length `N + 1`).
    pub fn biomarker(&self, b: usize) -> &[f64] {
        &self.values[b * self.n_stages..(b + 1) * self.n_stages]
    }
    /// All values, biomarker-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }
}

/// Biomarker `b`'s stage values for `sequence` into `out` (`N + 1` values; `knots`
/// is scratch).
pub(crate) fn biomarker_values(
    events: &EventSet,
    sequence: &Sequence,
    b: usize,
    knots: &mut Vec<(usize, f64)>,
    out: &mut [f64],
) {
    knots.clear();
    knots.push((0usize, events.z_min()));
    for &e in events.biomarker_events(b) {
        knots.push((sequence.position(e) + 1, events.event(e).z));
    }
    knots.push((out.len(), events.z_max(b)));
    fill_curve(knots, out);
}

/// Writes the mid-point averages of the piecewise-linear curve through `knots`
/// (increasing `t`, first at 0, last at `out.len()`) into `out[k]`, `k = 0..len`.
pub(crate) fn fill_curve(knots: &[(usize, f64)], out: &mut [f64]) {
    // curve(t) on t = 0..=len, then averaged pairs; the piece holding t only moves
    // forward, so one walk over the knots finds every t's piece.
    let mut piece = 0;
    let mut curve = |t: usize| {
        while piece + 1 < knots.len() && t > knots[piece + 1].0 {
            piece += 1;
        }
        piece_value(knots, piece, t)
    };
    let mut prev = curve(0);
    for (k, slot) in out.iter_mut().enumerate() {
        let next = curve(k + 1);
        *slot = 0.5 * (prev + next);
        prev = next;
    }
}

/// The curve at `t` on piece `i` (from knot `i` to knot `i + 1`, the first whose end
/// is at or after `t`); past the last knot, its value.
fn piece_value(knots: &[(usize, f64)], i: usize, t: usize) -> f64 {
    if i + 1 >= knots.len() {
        return knots[knots.len() - 1].1;
    }
    let ((t0, z0), (t1, z1)) = (knots[i], knots[i + 1]);
    if t1 == t0 {
        return z1;
    }
    z0 + (z1 - z0) * (t - t0) as f64 / (t1 - t0) as f64
}
