//! Progress as data: per-chain iteration counters that chains update and a user
//! interface (a terminal bar, a notebook, a log line) reads whenever it likes.

use std::sync::atomic::{AtomicU64, Ordering};

/// Iterations done by each chain of a run, out of `total` each.
#[derive(Debug)]
pub struct ChainProgress {
    done: Vec<AtomicU64>,
    total: u64,
}

impl ChainProgress {
    /// Counters for `n_chains` chains of `total` iterations.
    pub fn new(n_chains: usize, total: u64) -> Self {
        Self {
            done: (0..n_chains).map(|_| AtomicU64::new(0)).collect(),
            total,
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
    /// Whether every chain has finished.
    pub fn finished(&self) -> bool {
        (0..self.done.len()).all(|i| self.done(i) >= self.total)
    }
}

impl PartialEq for ChainProgress {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total
            && self.n_chains() == other.n_chains()
            && (0..self.n_chains()).all(|i| self.done(i) == other.done(i))
    }
}
