//! Threads that jobs sharing a machine lend each other. A worker of
//! [`crate::share_threads_lending`] that finds no job left gives its threads up;
//! a job still running borrows them at its next round of chains and gives them
//! back when the round ends. Chains give the same bits on any number of threads,
//! so lending changes only when a result is ready, never what it is.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads given up by workers that ran out of jobs.
#[derive(Debug, Default)]
pub struct SpareThreads(AtomicUsize);

impl SpareThreads {
    /// Adds `n` threads to the spare ones.
    pub(crate) fn give(&self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }

    /// Takes up to `want` spare threads (fewer, or none, when fewer are spare).
    fn take(&self, want: usize) -> usize {
        let mut now = self.0.load(Ordering::Acquire);
        loop {
            let take = now.min(want);
            if take == 0 {
                return 0;
            }
            match self
                .0
                .compare_exchange_weak(now, now - take, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return take,
                Err(seen) => now = seen,
            }
        }
    }
}

/// The threads one job may use: its own share, and spare ones it may borrow.
#[derive(Debug, Clone, Copy)]
pub struct JobThreads<'a> {
    own: usize,
    spare: Option<&'a SpareThreads>,
}

impl<'a> JobThreads<'a> {
    /// `n` threads of its own and nothing to borrow.
    pub fn fixed(n: usize) -> Self {
        Self {
            own: n.max(1),
            spare: None,
        }
    }

    pub(crate) fn lending(own: usize, spare: &'a SpareThreads) -> Self {
        Self {
            own: own.max(1),
            spare: Some(spare),
        }
    }

    /// The job's own threads.
    pub fn own(&self) -> usize {
        self.own
    }

    /// Whether spare threads may come.
    pub(crate) fn lends(&self) -> bool {
        self.spare.is_some()
    }

    /// The job's own threads and as many spare ones as are free, `most` in all
    /// (never fewer than its own), until the lease drops.
    pub fn lease(&self, most: usize) -> Lease<'a> {
        let borrowed = match self.spare {
            Some(spare) => spare.take(most.saturating_sub(self.own)),
            None => 0,
        };
        Lease {
            own: self.own,
            borrowed,
            spare: self.spare,
        }
    }
}

/// Threads a job holds for one round: its own and borrowed ones, the borrowed
/// given back on drop.
#[derive(Debug)]
pub struct Lease<'a> {
    own: usize,
    borrowed: usize,
    spare: Option<&'a SpareThreads>,
}

impl Lease<'_> {
    /// Threads the job may run on now.
    pub fn threads(&self) -> usize {
        self.own + self.borrowed
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(spare), n @ 1..) = (self.spare, self.borrowed) {
            spare.give(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_borrow_what_is_spare_and_give_it_back() {
        let spare = SpareThreads::default();
        let job = JobThreads::lending(1, &spare);
        assert_eq!(job.lease(4).threads(), 1, "nothing spare yet");
        spare.give(2);
        {
            let a = job.lease(4);
            assert_eq!(a.threads(), 3);
            assert_eq!(job.lease(4).threads(), 1, "both lent out");
        }
        let a = job.lease(2);
        assert_eq!(a.threads(), 2, "capped at most");
        assert_eq!(job.lease(8).threads(), 2, "the other one");
        drop(a);
        assert_eq!(JobThreads::fixed(3).lease(8).threads(), 3);
        assert_eq!(job.lease(0).threads(), 1, "never below its own");
    }
}
