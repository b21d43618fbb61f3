//! Progress as data: per-chain iteration counters that chains update and a user
//! interface (a terminal bar, a notebook, a log line) reads whenever it likes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Iterations done by each chain of a run, out of `total` each.
#[derive(Debug)]
pub struct ChainProgress {
    done: Vec<AtomicU64>,
    total: u64,
    /// Where the chains are heading now: `total`, or the current round's length
    /// when chains run until they converge (then `total` is the budget).
    target: AtomicU64,
    closed: AtomicBool,
    cancelled: AtomicBool,
}

impl ChainProgress {
    /// Counters for `n_chains` chains of `total` iterations.
    pub fn new(n_chains: usize, total: u64) -> Self {
        Self {
            done: (0..n_chains).map(|_| AtomicU64::new(0)).collect(),
            total,
            target: AtomicU64::new(total),
            closed: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        }
    }
    /// Number of chains.
    pub fn n_chains(&self) -> usize {
        self.done.len()
    }
    /// Iterations per chain.
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Iterations per chain the current stretch of work ends at (for displays):
    /// [`Self::total`] unless [`Self::set_target`] said otherwise.
    pub fn target(&self) -> u64 {
        self.target.load(Ordering::Relaxed)
    }
    /// Sets [`Self::target`], e.g. to the length of the round that starts.
    pub fn set_target(&self, n: u64) {
        self.target.store(n, Ordering::Relaxed);
    }
    /// Iterations done by chain slot `i`.
    pub fn done(&self, i: usize) -> u64 {
        self.done[i].load(Ordering::Relaxed)
    }
    /// Records that chain slot `i` has done `n` iterations.
    pub fn set(&self, i: usize, n: u64) {
        if let Some(c) = self.done.get(i) {
            c.store(n, Ordering::Relaxed);
        }
    }
    /// Adds `n` to slot `i` (for counters of unknown total, e.g. E-M jobs).
    pub fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.done.get(i) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
    /// Marks the work as over (for counters whose total was not known).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
    /// Asks the work these counters follow to stop early (a user's Ctrl-C): chains
    /// stop at their next progress report, E-M after its current pass, and the fit
    /// fails with a cancellation error instead of returning shortened results.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
    /// Whether [`ChainProgress::cancel`] was called.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
    /// Whether every chain has finished (or the counter was closed).
    pub fn finished(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
            || (self.total > 0 && (0..self.done.len()).all(|i| self.done(i) >= self.total))
    }
}

impl PartialEq for ChainProgress {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total
            && self.n_chains() == other.n_chains()
            && (0..self.n_chains()).all(|i| self.done(i) == other.done(i))
    }
}
