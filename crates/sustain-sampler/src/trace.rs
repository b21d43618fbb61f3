//! Compact chain traces: event positions in the smallest integer type that fits,
//! stored once per distinct state with a run length (a rejected proposal repeats
//! the state and costs 4 bytes).

use serde::{Deserialize, Serialize};
use sustain_core::Mixture;

/// Positions of events, `u8` when there are at most 256 events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "lowercase")]
pub enum Positions {
    /// Fewer than 256 events.
    U8(Vec<u8>),
    /// Up to 65,536 events.
    U16(Vec<u16>),
}

impl Positions {
    fn for_events(n_events: usize) -> Self {
        if n_events <= 256 {
            Positions::U8(Vec::new())
        } else {
            Positions::U16(Vec::new())
        }
    }
    fn push(&mut self, p: &[u16]) {
        match self {
            Positions::U8(v) => v.extend(p.iter().map(|&x| x as u8)),
            Positions::U16(v) => v.extend_from_slice(p),
        }
    }
    /// Value at flat index `i`.
    pub fn get(&self, i: usize) -> usize {
        match self {
            Positions::U8(v) => v[i] as usize,
            Positions::U16(v) => v[i] as usize,
        }
    }
    fn bytes(&self) -> usize {
        match self {
            Positions::U8(v) => v.len(),
            Positions::U16(v) => 2 * v.len(),
        }
    }
}

/// The samples of one chain: for every distinct state, each subtype's event
/// positions (`[state][subtype][event]`), fractions (`[state][subtype]`), its
/// log-likelihood, and how many consecutive iterations it was held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Number of subtypes.
    pub n_subtypes: usize,
    /// Number of events.
    pub n_events: usize,
    /// Positions of distinct states.
    pub positions: Positions,
    /// Fractions of distinct states.
    pub fractions: Vec<f64>,
    /// Log-likelihood of distinct states.
    pub loglike: Vec<f64>,
    /// Iterations each distinct state was held.
    pub runs: Vec<u32>,
}

impl Default for Trace {
    /// The absent trace ([`Trace::is_absent`]).
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Trace {
    /// Whether this is no trace at all (no subtypes, no events, no states): a
    /// chain whose trace is kept in a binary file, not yet read.
    pub fn is_absent(&self) -> bool {
        self.n_subtypes == 0 && self.n_events == 0 && self.runs.is_empty()
    }
    /// An empty trace.
    pub fn new(n_subtypes: usize, n_events: usize) -> Self {
        Self {
            n_subtypes,
            n_events,
            positions: Positions::for_events(n_events),
            fractions: Vec::new(),
            loglike: Vec::new(),
            runs: Vec::new(),
        }
    }
    /// Records one iteration: a new state if `moved`, else the previous one again.
    pub fn record(&mut self, mixture: &Mixture, loglike: f64, moved: bool) {
        if !moved && !self.runs.is_empty() && *self.runs.last().unwrap_or(&0) < u32::MAX {
            if let Some(r) = self.runs.last_mut() {
                *r += 1;
            }
            return;
        }
        for s in mixture.sequences() {
            self.positions.push(s.positions_u16());
        }
        self.fractions.extend_from_slice(mixture.fractions());
        self.loglike.push(loglike);
        self.runs.push(1);
    }
    /// Number of iterations recorded.
    pub fn n_iterations(&self) -> usize {
        self.runs.iter().map(|&r| r as usize).sum()
    }
    /// Number of distinct states stored.
    pub fn n_states(&self) -> usize {
        self.runs.len()
    }
    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.positions.bytes()
            + 8 * self.fractions.len()
            + 8 * self.loglike.len()
            + 4 * self.runs.len()
    }
    /// State index of every iteration (in order), from `skip` on, every `thin`-th.
    pub fn state_indices(&self, skip: usize, thin: usize) -> Vec<usize> {
        let thin = thin.max(1);
        let mut out = Vec::new();
        let mut it = 0usize;
        let mut next = skip;
        for (state, &r) in self.runs.iter().enumerate() {
            let end = it + r as usize;
            while next < end {
                out.push(state);
                next += thin;
            }
            it = end;
        }
        out
    }
    /// Position of event `e` in subtype `s` at distinct state `state`.
    pub fn position(&self, state: usize, s: usize, e: usize) -> usize {
        self.positions
            .get((state * self.n_subtypes + s) * self.n_events + e)
    }
    /// Fraction of subtype `s` at distinct state `state`.
    pub fn fraction(&self, state: usize, s: usize) -> f64 {
        self.fractions[state * self.n_subtypes + s]
    }
    /// Log-likelihood series, one value per iteration from `skip`, every `thin`-th.
    pub fn loglike_series(&self, skip: usize, thin: usize) -> Vec<f64> {
        self.state_indices(skip, thin)
            .into_iter()
            .map(|i| self.loglike[i])
            .collect()
    }
    /// Relabels subtypes: new subtype `i` is old subtype `perm[i]`.
    pub fn permute_subtypes(&mut self, perm: &[usize]) {
        let (ns, ne) = (self.n_subtypes, self.n_events);
        let n = self.runs.len();
        let mut f = vec![0.0; self.fractions.len()];
        for st in 0..n {
            for (i, &p) in perm.iter().enumerate() {
                f[st * ns + i] = self.fractions[st * ns + p];
            }
        }
        self.fractions = f;
        let reorder = |v: &mut Vec<u8>| {
            let mut out = vec![0; v.len()];
            for st in 0..n {
                for (i, &p) in perm.iter().enumerate() {
                    out[(st * ns + i) * ne..(st * ns + i + 1) * ne]
                        .copy_from_slice(&v[(st * ns + p) * ne..(st * ns + p + 1) * ne]);
                }
            }
            *v = out;
        };
        match &mut self.positions {
            Positions::U8(v) => reorder(v),
            Positions::U16(v) => {
                let mut out = vec![0; v.len()];
                for st in 0..n {
                    for (i, &p) in perm.iter().enumerate() {
                        out[(st * ns + i) * ne..(st * ns + i + 1) * ne]
                            .copy_from_slice(&v[(st * ns + p) * ne..(st * ns + p + 1) * ne]);
                    }
                }
                *v = out;
            }
        }
    }
    /// Keeps the first `n_iterations` iterations (all of them when there are fewer):
    /// a chain stopped by a time budget is cut to the length its sibling chains
    /// reached, so every chain holds the same number of samples.
    pub fn truncate(&mut self, n_iterations: usize) {
        let mut it = 0usize;
        let mut keep = self.runs.len();
        for (state, r) in self.runs.iter_mut().enumerate() {
            if it + *r as usize >= n_iterations {
                *r = (n_iterations - it) as u32;
                keep = if *r == 0 { state } else { state + 1 };
                break;
            }
            it += *r as usize;
        }
        let per_state = self.n_subtypes * self.n_events;
        self.runs.truncate(keep);
        self.loglike.truncate(keep);
        self.fractions.truncate(keep * self.n_subtypes);
        match &mut self.positions {
            Positions::U8(v) => v.truncate(keep * per_state),
            Positions::U16(v) => v.truncate(keep * per_state),
        }
    }
    /// Appends another trace of the same shape (chain shards, continued runs).
    pub fn append(&mut self, other: &Trace) {
        match (&mut self.positions, &other.positions) {
            (Positions::U8(a), Positions::U8(b)) => a.extend_from_slice(b),
            (Positions::U16(a), Positions::U16(b)) => a.extend_from_slice(b),
            _ => unreachable!("traces of the same model use the same position type"),
        }
        self.fractions.extend_from_slice(&other.fractions);
        self.loglike.extend_from_slice(&other.loglike);
        self.runs.extend_from_slice(&other.runs);
    }
}
