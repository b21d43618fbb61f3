//! Compact chain traces. Each distinct state is stored once with a run length (a
//! rejected proposal repeats the state and costs 4 bytes), and its event positions
//! as a move from the state before: every iteration moves one event of each
//! subtype (the events in between shift by one place), so a state's positions are
//! the previous state's with one (from, to) pair of positions per subtype, 2 bytes
//! a subtype instead of one byte per event. Every [`KEY_EVERY`]-th state (and any
//! state that is not one move per subtype away from the one before, such as a
//! relabelled or swapped state) keeps all its positions, so that any state is at
//! most `KEY_EVERY - 1` moves from a full copy. 4 chains of 1e6 iterations of 3
//! subtypes of 114 events hold about 40 MB of positions instead of 700 MB.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sustain_core::Mixture;

/// States between full copies of the positions (at most).
pub const KEY_EVERY: usize = 32;

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
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Positions::U8(v) => v.len(),
            Positions::U16(v) => v.len(),
        }
    }
    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn bytes(&self) -> usize {
        match self {
            Positions::U8(v) => v.len(),
            Positions::U16(v) => 2 * v.len(),
        }
    }
    /// Values `from..from + out.len()` into `out`.
    fn read(&self, from: usize, out: &mut [u16]) {
        let len = out.len();
        match self {
            Positions::U8(v) => out
                .iter_mut()
                .zip(&v[from..from + len])
                .for_each(|(o, &x)| *o = u16::from(x)),
            Positions::U16(v) => out.copy_from_slice(&v[from..from + len]),
        }
    }
    fn truncate(&mut self, n: usize) {
        match self {
            Positions::U8(v) => v.truncate(n),
            Positions::U16(v) => v.truncate(n),
        }
    }
    fn extend(&mut self, other: &Positions) {
        match (self, other) {
            (Positions::U8(a), Positions::U8(b)) => a.extend_from_slice(b),
            (Positions::U16(a), Positions::U16(b)) => a.extend_from_slice(b),
            (a, b) => {
                let mut buf = vec![0; b.len()];
                b.read(0, &mut buf);
                a.push(&buf);
            }
        }
    }
    /// Relabels subtypes in every group of `perm.len()` blocks of `block` values.
    fn permute_groups(&mut self, block: usize, perm: &[usize]) {
        match self {
            Positions::U8(v) => permute_groups(v, block, perm),
            Positions::U16(v) => permute_groups(v, block, perm),
        }
    }
}

/// In every group of `perm.len()` blocks of `block` values, new block `i` is old
/// block `perm[i]` (in place, one group's worth of scratch).
fn permute_groups<T: Copy>(v: &mut [T], block: usize, perm: &[usize]) {
    let group = block * perm.len();
    if group == 0 {
        return;
    }
    let mut scratch = Vec::with_capacity(group);
    for g in v.chunks_exact_mut(group) {
        scratch.clear();
        scratch.extend_from_slice(g);
        for (i, &p) in perm.iter().enumerate() {
            g[i * block..(i + 1) * block].copy_from_slice(&scratch[p * block..(p + 1) * block]);
        }
    }
}

/// The move that turns the order `old` into `new`: the event at position `from`
/// moved to `to`, the events in between shifted by one (`(0, 0)`: no change), or
/// `None` when `new` is not one such move away.
fn single_move(old: &[u16], new: &[u16]) -> Option<(u16, u16)> {
    let Some(lo) = (0..new.len()).find(|&p| old[p] != new[p]) else {
        return Some((0, 0));
    };
    let hi = (lo..new.len()).rfind(|&p| old[p] != new[p])?;
    if new[hi] == old[lo] && new[lo..hi] == old[lo + 1..=hi] {
        Some((lo as u16, hi as u16))
    } else if new[lo] == old[hi] && new[lo + 1..=hi] == old[lo..hi] {
        Some((hi as u16, lo as u16))
    } else {
        None
    }
}

/// Position `p` after the event at `from` moved to `to`.
fn shifted(p: usize, from: usize, to: usize) -> usize {
    if p == from {
        to
    } else if from < to && from < p && p <= to {
        p - 1
    } else if to < from && to <= p && p < from {
        p + 1
    } else {
        p
    }
}

/// Moves the event at position `from` to `to` in one subtype's positions and order.
fn apply_move(positions: &mut [u16], order: &mut [u16], from: usize, to: usize) {
    if from == to {
        return;
    }
    let e = order[from];
    if from < to {
        order.copy_within(from + 1..=to, from);
    } else {
        order.copy_within(to..from, to + 1);
    }
    order[to] = e;
    for p in from.min(to)..=from.max(to) {
        positions[order[p] as usize] = p as u16;
    }
}

/// The samples of one chain: for every distinct state, each subtype's event
/// positions (`[state][subtype][event]`, see [`Trace::position`]), fractions
/// (`[state][subtype]`), its log-likelihood, and how many consecutive iterations it
/// was held.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Number of subtypes.
    pub n_subtypes: usize,
    /// Number of events.
    pub n_events: usize,
    /// All positions of the key states (`[key][subtype][event]`).
    keys: Positions,
    /// The state each key holds, increasing; the first state is always a key.
    key_states: Vec<usize>,
    /// Per state and subtype, `(from, to)`: the move from the state before
    /// (`[state][subtype][2]`; not read at key states).
    moves: Positions,
    /// Each subtype's order at the last state, to find the next state's moves;
    /// empty when unknown (then the next state is a key).
    last_order: Vec<u16>,
    /// Fractions of distinct states.
    pub fractions: Vec<f64>,
    /// Log-likelihood of distinct states.
    pub loglike: Vec<f64>,
    /// Iterations each distinct state was held.
    pub runs: Vec<u32>,
}

/// A trace's parts as it holds them (keys, moves), for checkpoints that keep a
/// trace without expanding every state: [`Trace::stored`] and [`Trace::from_stored`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    /// Number of subtypes.
    pub n_subtypes: usize,
    /// Number of events.
    pub n_events: usize,
    /// All positions of the key states (`[key][subtype][event]`).
    pub keys: Vec<u16>,
    /// The state each key holds, increasing from 0.
    pub key_states: Vec<usize>,
    /// Per state and subtype, the `(from, to)` move from the state before.
    pub moves: Vec<u16>,
    /// Each subtype's order at the last state (empty: unknown).
    pub last_order: Vec<u16>,
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
            keys: Positions::for_events(n_events),
            key_states: Vec::new(),
            moves: Positions::for_events(n_events),
            last_order: Vec::new(),
            fractions: Vec::new(),
            loglike: Vec::new(),
            runs: Vec::new(),
        }
    }
    /// The trace's parts as it holds them: `(keys, key_states, moves,
    /// last_order)` besides the public per-state values (see [`StoredTrace`]).
    pub fn stored(&self) -> (&Positions, &[usize], &Positions, &[u16]) {
        (&self.keys, &self.key_states, &self.moves, &self.last_order)
    }
    /// The trace whose parts are `s`; refuses parts that do not fit together
    /// (lengths, increasing keys from state 0, positions and moves outside the
    /// events), so that no read of it can panic.
    pub fn from_stored(s: StoredTrace) -> Result<Self, String> {
        let (k, n) = (s.n_subtypes, s.n_events);
        let states = s.runs.len();
        let keys_ok = s.key_states.first().is_none_or(|&f| f == 0)
            && s.key_states.windows(2).all(|w| w[0] < w[1])
            && s.key_states.last().is_none_or(|&l| l < states)
            && (states == 0) == s.key_states.is_empty();
        let lengths_ok = s.fractions.len() == states * k
            && s.loglike.len() == states
            && s.moves.len() == 2 * states * k
            && s.keys.len() == s.key_states.len() * k * n
            && (s.last_order.is_empty() || s.last_order.len() == k * n);
        let values = s.keys.iter().chain(&s.moves).chain(&s.last_order);
        if !(keys_ok && lengths_ok) || values.into_iter().any(|&v| usize::from(v) >= n) {
            return Err(format!(
                "a stored trace of {states} states, {k} subtype(s) and {n} events does not fit \
                 together"
            ));
        }
        let mut keys = Positions::for_events(n);
        keys.push(&s.keys);
        let mut moves = Positions::for_events(n);
        moves.push(&s.moves);
        Ok(Self {
            n_subtypes: k,
            n_events: n,
            keys,
            key_states: s.key_states,
            moves,
            last_order: s.last_order,
            fractions: s.fractions,
            loglike: s.loglike,
            runs: s.runs,
        })
    }
    /// Records one iteration: a new state if `moved`, else the previous one again.
    pub fn record(&mut self, mixture: &Mixture, loglike: f64, moved: bool) {
        if self.repeat(moved) {
            return;
        }
        let sequences = mixture.sequences();
        self.push_orders(|s| sequences[s].order_u16());
        self.fractions.extend_from_slice(mixture.fractions());
        self.loglike.push(loglike);
        self.runs.push(1);
    }
    /// As [`Self::record`], with `state`'s subtypes recorded under other labels:
    /// recorded subtype `i` is `state`'s subtype `labels[i]` (a permutation).
    pub fn record_relabelled(
        &mut self,
        state: &Mixture,
        labels: &[usize],
        loglike: f64,
        moved: bool,
    ) {
        if self.repeat(moved) {
            return;
        }
        let sequences = state.sequences();
        self.push_orders(|s| sequences[labels[s]].order_u16());
        let fractions = state.fractions();
        self.fractions.extend(labels.iter().map(|&l| fractions[l]));
        self.loglike.push(loglike);
        self.runs.push(1);
    }
    /// Counts one more iteration of the last state when nothing moved (and its run
    /// has room); false when a new state must be stored.
    fn repeat(&mut self, moved: bool) -> bool {
        match self.runs.last_mut() {
            Some(r) if !moved && *r < u32::MAX => {
                *r += 1;
                true
            }
            _ => false,
        }
    }
    /// Appends a distinct state held `run` iterations: each subtype's event order
    /// (`orders[s]`, a permutation of the events, first to last), its fractions and
    /// log-likelihood.
    pub fn push_state(&mut self, orders: &[&[u16]], fractions: &[f64], loglike: f64, run: u32) {
        self.push_orders(|s| orders[s]);
        self.fractions.extend_from_slice(fractions);
        self.loglike.push(loglike);
        self.runs.push(run);
    }
    /// Stores the positions of a new state given as each subtype's order
    /// (`order_of(s)`): as moves from the state before when it is one move per
    /// subtype away and the last key is recent, else as a key. Allocates only for
    /// a key: it runs once per accepted proposal.
    fn push_orders<'a>(&mut self, order_of: impl Fn(usize) -> &'a [u16]) {
        let (ns, ne) = (self.n_subtypes, self.n_events);
        let state = self.runs.len();
        let since_key = self.key_states.last().map_or(usize::MAX, |&k| state - k);
        let mark = self.moves.len();
        let mut as_moves = self.last_order.len() == ns * ne && since_key < KEY_EVERY;
        if as_moves {
            for s in 0..ns {
                match single_move(&self.last_order[s * ne..(s + 1) * ne], order_of(s)) {
                    Some((from, to)) => self.moves.push(&[from, to]),
                    None => {
                        as_moves = false;
                        break;
                    }
                }
            }
        }
        if !as_moves {
            self.moves.truncate(mark);
            for _ in 0..ns {
                self.moves.push(&[0, 0]);
            }
            self.key_states.push(state);
            let mut positions = vec![0u16; ne];
            for s in 0..ns {
                for (p, &e) in order_of(s).iter().enumerate() {
                    positions[e as usize] = p as u16;
                }
                self.keys.push(&positions);
            }
        }
        self.last_order.clear();
        for s in 0..ns {
            self.last_order.extend_from_slice(order_of(s));
        }
    }
    /// Every event's position in subtype `s` at the last state recorded
    /// (`out[e]`, `out.len()` events): from the last state's order where the
    /// trace keeps it, else replayed from the keys. Nothing when the trace is empty.
    pub fn last_positions(&self, s: usize, out: &mut [u16]) {
        let (ns, ne) = (self.n_subtypes, self.n_events);
        let Some(last) = self.n_states().checked_sub(1) else {
            return;
        };
        if self.last_order.len() == ns * ne {
            for (p, &e) in self.last_order[s * ne..(s + 1) * ne].iter().enumerate() {
                out[e as usize] = p as u16;
            }
        } else {
            for (e, o) in out.iter_mut().enumerate() {
                *o = self.position(last, s, e) as u16;
            }
        }
    }
    /// Number of iterations recorded.
    pub fn n_iterations(&self) -> usize {
        self.runs.iter().map(|&r| r as usize).sum()
    }
    /// Number of distinct states stored.
    pub fn n_states(&self) -> usize {
        self.runs.len()
    }
    /// Number of position values the trace holds (`n_states * n_subtypes *
    /// n_events` unless read from an inconsistent file).
    pub fn n_positions(&self) -> usize {
        let per_state = self.n_subtypes * self.n_events;
        self.keys.len() + (self.n_states().saturating_sub(self.key_states.len())) * per_state
    }
    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.keys.bytes()
            + self.moves.bytes()
            + 8 * self.key_states.len()
            + 2 * self.last_order.len()
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
    /// The key at or before `state`.
    fn key_of(&self, state: usize) -> usize {
        self.key_states
            .partition_point(|&k| k <= state)
            .saturating_sub(1)
    }
    /// The move of subtype `s` into state `state`.
    fn move_at(&self, state: usize, s: usize) -> (usize, usize) {
        let i = (state * self.n_subtypes + s) * 2;
        (self.moves.get(i), self.moves.get(i + 1))
    }
    /// Position of event `e` in subtype `s` at distinct state `state`.
    pub fn position(&self, state: usize, s: usize, e: usize) -> usize {
        let key = self.key_of(state);
        let mut p = self
            .keys
            .get((key * self.n_subtypes + s) * self.n_events + e);
        for t in self.key_states[key] + 1..=state {
            let (from, to) = self.move_at(t, s);
            p = shifted(p, from, to);
        }
        p
    }
    /// Position of event `e` in subtype `s` at every distinct state, in order:
    /// one pass over the trace, for what reads one event of every state.
    pub fn event_positions(&self, s: usize, e: usize) -> Vec<u16> {
        let mut out = Vec::with_capacity(self.n_states());
        let mut next_key = 0;
        let mut p = 0;
        for state in 0..self.n_states() {
            if self.key_states.get(next_key) == Some(&state) {
                p = self
                    .keys
                    .get((next_key * self.n_subtypes + s) * self.n_events + e);
                next_key += 1;
            } else {
                let (from, to) = self.move_at(state, s);
                p = shifted(p, from, to);
            }
            out.push(p as u16);
        }
        out
    }
    /// Calls `f(state, positions, orders)` for every distinct state in order, with
    /// every subtype's positions (`[subtype][event]`) and orders (`[subtype][place]`,
    /// the event at each place): one pass over the trace.
    pub fn for_each_state(&self, mut f: impl FnMut(usize, &[u16], &[u16])) {
        let (ns, ne) = (self.n_subtypes, self.n_events);
        let mut positions = vec![0u16; ns * ne];
        let mut order = vec![0u16; ns * ne];
        let mut next_key = 0;
        for state in 0..self.n_states() {
            if self.key_states.get(next_key) == Some(&state) {
                self.keys.read(next_key * ns * ne, &mut positions);
                for s in 0..ns {
                    for e in 0..ne {
                        // Positions read from a file may be no permutation (its
                        // reader refuses them); they must not panic here.
                        let p = positions[s * ne + e] as usize;
                        if p < ne {
                            order[s * ne + p] = e as u16;
                        }
                    }
                }
                next_key += 1;
            } else {
                for s in 0..ns {
                    let (from, to) = self.move_at(state, s);
                    let block = s * ne..(s + 1) * ne;
                    apply_move(&mut positions[block.clone()], &mut order[block], from, to);
                }
            }
            f(state, &positions, &order);
        }
    }
    /// Every state's positions, `[state][subtype][event]`, as files keep them.
    fn flat_positions(&self) -> Positions {
        if self.key_states.len() == self.n_states() {
            return self.keys.clone();
        }
        let mut out = Positions::for_events(self.n_events);
        self.for_each_state(|_, p, _| out.push(p));
        out
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
    /// Relabels subtypes: new subtype `i` is old subtype `perm[i]` (in place).
    pub fn permute_subtypes(&mut self, perm: &[usize]) {
        permute_groups(&mut self.fractions, 1, perm);
        self.keys.permute_groups(self.n_events, perm);
        self.moves.permute_groups(2, perm);
        permute_groups(&mut self.last_order, self.n_events, perm);
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
        let (ns, ne) = (self.n_subtypes, self.n_events);
        if keep < self.runs.len() {
            // The last state kept is not the one the next record moves from.
            self.last_order.clear();
        }
        let n_keys = self.key_states.partition_point(|&k| k < keep);
        self.runs.truncate(keep);
        self.loglike.truncate(keep);
        self.fractions.truncate(keep * ns);
        self.moves.truncate(keep * ns * 2);
        self.key_states.truncate(n_keys);
        self.keys.truncate(n_keys * ns * ne);
    }
    /// Appends another trace of the same shape (chain shards, continued runs).
    pub fn append(&mut self, other: &Trace) {
        if other.runs.is_empty() {
            return;
        }
        let offset = self.n_states();
        self.keys.extend(&other.keys);
        self.key_states
            .extend(other.key_states.iter().map(|&k| k + offset));
        self.moves.extend(&other.moves);
        self.last_order.clone_from(&other.last_order);
        self.fractions.extend_from_slice(&other.fractions);
        self.loglike.extend_from_slice(&other.loglike);
        self.runs.extend_from_slice(&other.runs);
    }
}

/// Two traces are equal when they hold the same states, however their positions
/// are stored.
impl PartialEq for Trace {
    fn eq(&self, other: &Self) -> bool {
        self.n_subtypes == other.n_subtypes
            && self.n_events == other.n_events
            && self.fractions == other.fractions
            && self.loglike == other.loglike
            && self.runs == other.runs
            && self.n_positions() == other.n_positions()
            && self.flat_positions() == other.flat_positions()
    }
}

/// A trace as files keep it: every state's positions in full.
#[derive(Serialize)]
struct FlatRef<'a> {
    n_subtypes: usize,
    n_events: usize,
    positions: Positions,
    fractions: &'a [f64],
    loglike: &'a [f64],
    runs: &'a [u32],
}

/// [`FlatRef`], read.
#[derive(Deserialize)]
struct Flat {
    n_subtypes: usize,
    n_events: usize,
    positions: Positions,
    fractions: Vec<f64>,
    loglike: Vec<f64>,
    runs: Vec<u32>,
}

impl Serialize for Trace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FlatRef {
            n_subtypes: self.n_subtypes,
            n_events: self.n_events,
            positions: self.flat_positions(),
            fractions: &self.fractions,
            loglike: &self.loglike,
            runs: &self.runs,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Trace {
    /// Every state a key, as read: the values are not checked here (a reader of
    /// the file checks them), so lengths may disagree and positions may be no
    /// permutation without a panic.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = Flat::deserialize(deserializer)?;
        let states = f.runs.len();
        let mut moves = Positions::for_events(f.n_events);
        moves.push(&vec![0; 2 * f.n_subtypes * states]);
        Ok(Trace {
            n_subtypes: f.n_subtypes,
            n_events: f.n_events,
            keys: f.positions,
            key_states: (0..states).collect(),
            moves,
            last_order: Vec::new(),
            fractions: f.fractions,
            loglike: f.loglike,
            runs: f.runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use sustain_core::{EventOrder, Sequence};

    /// Every state's positions in full, as traces were kept before moves: the
    /// reference the compact trace must match.
    #[derive(Default)]
    struct Plain {
        positions: Vec<Vec<u16>>,
        runs: Vec<u32>,
    }

    /// A chain-like walk of `n_states` records over `n` events and `k` subtypes:
    /// mostly one move per subtype (some of them none), sometimes a relabelled or
    /// redrawn state (not one move away), sometimes a rejection.
    fn walk(k: usize, n: usize, n_records: usize, seed: u64) -> (Trace, Plain) {
        let order = EventOrder::new(&(0..n).collect::<Vec<_>>(), n).unwrap();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut seqs: Vec<Sequence> = (0..k).map(|_| Sequence::random(&order, &mut rng)).collect();
        let mut trace = Trace::new(k, n);
        let mut plain = Plain::default();
        for i in 0..n_records {
            let moved = i == 0 || rng.gen_bool(0.7);
            if moved {
                match rng.gen_range(0..20) {
                    0 => seqs.rotate_left(1),
                    1 => seqs[0] = Sequence::random(&order, &mut rng),
                    _ => {
                        for s in seqs.iter_mut() {
                            let e = rng.gen_range(0..n);
                            let to = (s.position(e) as i64 + rng.gen_range(-3i64..=3))
                                .clamp(0, n as i64 - 1)
                                as usize;
                            s.move_unchecked(e, to);
                        }
                    }
                }
            }
            let f = vec![1.0 / k as f64; k];
            let m = Mixture::new(seqs.clone(), f).unwrap();
            trace.record(&m, -(i as f64), moved);
            if moved {
                plain.positions.push(
                    seqs.iter()
                        .flat_map(|s| s.positions_u16().to_vec())
                        .collect(),
                );
                plain.runs.push(1);
            } else {
                *plain.runs.last_mut().unwrap() += 1;
            }
        }
        (trace, plain)
    }

    fn assert_same(trace: &Trace, plain: &Plain, what: &str) {
        let (k, n) = (trace.n_subtypes, trace.n_events);
        assert_eq!(trace.runs, plain.runs, "{what}");
        assert_eq!(trace.n_positions(), plain.positions.len() * k * n, "{what}");
        for (st, p) in plain.positions.iter().enumerate() {
            for s in 0..k {
                for e in 0..n {
                    assert_eq!(trace.position(st, s, e), p[s * n + e] as usize, "{what}");
                }
            }
        }
        for s in 0..k {
            for e in 0..n {
                let want: Vec<u16> = plain.positions.iter().map(|p| p[s * n + e]).collect();
                assert_eq!(trace.event_positions(s, e), want, "{what}");
            }
        }
        let mut seen = 0;
        trace.for_each_state(|st, positions, orders| {
            assert_eq!(positions, &plain.positions[st][..], "{what}");
            for s in 0..k {
                for (p, &e) in orders[s * n..(s + 1) * n].iter().enumerate() {
                    assert_eq!(positions[s * n + e as usize] as usize, p, "{what}");
                }
            }
            seen += 1;
        });
        assert_eq!(seen, plain.positions.len(), "{what}");
    }

    #[test]
    fn states_read_back_as_recorded_and_take_little_room() {
        for (k, n) in [(1, 5), (3, 40), (2, 300)] {
            let (trace, plain) = walk(k, n, 3000, k as u64);
            assert_same(&trace, &plain, &format!("{k} x {n}"));
            // Mostly moves: a few bytes a state, not k * n (which is few for 5 events).
            if n < 30 {
                continue;
            }
            let full = plain.positions.len() * k * n * if n > 256 { 2 } else { 1 };
            let moves = trace.keys.bytes() + trace.moves.bytes();
            assert!(
                moves * 3 < full,
                "{moves} bytes of positions, {full} in full"
            );
        }
    }

    #[test]
    fn relabelling_cutting_and_appending_keep_the_states() {
        let (k, n) = (3, 30);
        let (mut trace, mut plain) = walk(k, n, 2000, 7);
        let perm = [2, 0, 1];
        trace.permute_subtypes(&perm);
        for p in plain.positions.iter_mut() {
            let old = p.clone();
            for (i, &q) in perm.iter().enumerate() {
                p[i * n..(i + 1) * n].copy_from_slice(&old[q * n..(q + 1) * n]);
            }
        }
        assert_same(&trace, &plain, "permuted");
        // Cut in the middle of a run of states between keys, then record on.
        let total = trace.n_iterations();
        trace.truncate(total / 2 + 3);
        let mut it = 0;
        let keep = plain
            .runs
            .iter()
            .position(|&r| {
                it += r as usize;
                it >= total / 2 + 3
            })
            .unwrap();
        plain.positions.truncate(keep + 1);
        plain.runs.truncate(keep + 1);
        *plain.runs.last_mut().unwrap() -= (it - (total / 2 + 3)) as u32;
        assert_same(&trace, &plain, "cut");
        let (more, more_plain) = walk(k, n, 500, 8);
        trace.append(&more);
        plain.positions.extend(more_plain.positions);
        plain.runs.extend(more_plain.runs);
        assert_same(&trace, &plain, "appended");
    }

    #[test]
    fn json_keeps_every_state_in_full_and_reads_back_equal() {
        let (trace, plain) = walk(2, 12, 400, 3);
        let json = serde_json::to_value(&trace).unwrap();
        let values = json["positions"]["values"].as_array().unwrap();
        let flat: Vec<u64> = plain
            .positions
            .iter()
            .flatten()
            .map(|&p| p as u64)
            .collect();
        assert_eq!(
            values
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect::<Vec<_>>(),
            flat
        );
        let back: Trace = serde_json::from_value(json).unwrap();
        assert_eq!(back, trace);
        assert_same(&back, &plain, "read back");
        // A state recorded after reading continues the same states.
        let mut a = back.clone();
        let mut b = trace.clone();
        let order = EventOrder::new(&(0..12).collect::<Vec<_>>(), 12).unwrap();
        let seqs = (0..2).map(|_| Sequence::new(&order, &(0..12).collect::<Vec<_>>()).unwrap());
        let m = Mixture::new(seqs.collect(), vec![0.5, 0.5]).unwrap();
        a.record(&m, 1.0, true);
        b.record(&m, 1.0, true);
        assert_eq!(a, b);
    }
}
