//! One chain's likelihood split over threads by subjects.
//!
//! When there are fewer chains than cores (the reference's one chain, or the last
//! subtype count of a fit), each chain's proposals can use several threads: the
//! subjects are cut into shards on [`TOTAL_BLOCK`] boundaries, each shard keeps its
//! own [`IncrementalLikelihood`] on a worker thread, and a proposal's total is the
//! compensated sum of every shard's block partials in order. A whole state computes
//! the same block partials, so a split chain gives the same bits as an unsplit one:
//! results do not depend on the thread count.
//!
//! Workers wait for commands by spinning briefly, then parking; the chain's own
//! thread works on the first shard while the others work on theirs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use sustain_model::likelihood::neumaier_sum;
use sustain_model::{IncrementalLikelihood, Likelihood, Mixture, TOTAL_BLOCK};
use sustain_sampler::ChainEvaluator;

/// Spin iterations before a waiting thread parks or yields (a proposal takes
/// tens of microseconds; a park and wake-up costs about as much).
const SPIN: u32 = 20_000;

/// How a worker resolves its pending proposal before the next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolve {
    Nothing,
    Accept { rebuild: bool },
    Reject,
}

enum Command {
    Reset(Arc<Mixture>),
    Propose {
        resolve: Resolve,
        mixture: Arc<Mixture>,
        changed: Arc<Vec<bool>>,
    },
    Stop,
}

/// One worker's command slot and reply.
struct Mailbox {
    command: Mutex<Option<Command>>,
    posted: AtomicU64,
    /// `(ok, block partials)` of the last command.
    reply: Mutex<(bool, Vec<f64>)>,
    done: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a worker panicked; `wait` reports that.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Worker {
    mailbox: Arc<Mailbox>,
    handle: Option<JoinHandle<()>>,
    seq: u64,
}

impl Worker {
    fn spawn(state: IncrementalLikelihood) -> Self {
        let mailbox = Arc::new(Mailbox {
            command: Mutex::new(None),
            posted: AtomicU64::new(0),
            reply: Mutex::new((true, Vec::new())),
            done: AtomicU64::new(0),
        });
        let mb = Arc::clone(&mailbox);
        let handle = std::thread::Builder::new()
            .name("sustain-shard".into())
            .spawn(move || serve(state, &mb))
            .unwrap_or_else(|e| panic!("cannot start a shard thread: {e}"));
        Self {
            mailbox,
            handle: Some(handle),
            seq: 0,
        }
    }

    fn post(&mut self, command: Command) {
        self.seq += 1;
        *lock(&self.mailbox.command) = Some(command);
        self.mailbox.posted.store(self.seq, Ordering::Release);
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }

    /// Waits for the reply to the last command; appends its partials to `blocks`
    /// and returns its `ok`.
    fn wait(&self, blocks: &mut Vec<f64>) -> bool {
        let mut spins = 0u32;
        while self.mailbox.done.load(Ordering::Acquire) != self.seq {
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                if self.handle.as_ref().is_none_or(|h| h.is_finished()) {
                    panic!("a shard thread of the chain stopped (it panicked)");
                }
                std::thread::yield_now();
            }
        }
        let reply = lock(&self.mailbox.reply);
        blocks.extend_from_slice(&reply.1);
        reply.0
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.post(Command::Stop);
        if let Some(h) = self.handle.take() {
            // A worker's panic was already reported by `wait` (or nobody waited).
            let _ = h.join();
        }
    }
}

/// A worker's loop: wait for a command, run it on the shard, reply.
fn serve(mut state: IncrementalLikelihood, mb: &Mailbox) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        loop {
            let posted = mb.posted.load(Ordering::Acquire);
            if posted != seen {
                seen = posted;
                break;
            }
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::park();
            }
        }
        let Some(command) = lock(&mb.command).take() else {
            continue;
        };
        let ok = match command {
            Command::Stop => return,
            Command::Reset(m) => state.reset_shard(&m),
            Command::Propose {
                resolve,
                mixture,
                changed,
            } => {
                resolve_pending(&mut state, resolve);
                state.propose_shard(&mixture, &changed)
            }
        };
        {
            let mut reply = lock(&mb.reply);
            reply.0 = ok;
            reply.1.clear();
            reply.1.extend_from_slice(state.partials());
        }
        mb.done.store(seen, Ordering::Release);
    }
}

fn resolve_pending(state: &mut IncrementalLikelihood, resolve: Resolve) {
    match resolve {
        Resolve::Nothing => {}
        Resolve::Accept { rebuild } => state.accept_shard(rebuild),
        Resolve::Reject => state.reject(),
    }
}

/// Fewest [`TOTAL_BLOCK`]s of subjects worth a thread of their own: below that the
/// hand-over and the per-proposal bookkeeping each shard repeats outweigh the
/// split work.
pub const MIN_BLOCKS_PER_SHARD: usize = 4;

/// How many of `threads` threads one chain over `n` subjects should use: at most
/// one per [`MIN_BLOCKS_PER_SHARD`] blocks, at least 1.
pub fn useful_shards(n: usize, threads: usize) -> usize {
    threads
        .min(n.div_ceil(TOTAL_BLOCK) / MIN_BLOCKS_PER_SHARD)
        .max(1)
}

/// The subject ranges of `shards` shards (at most one per [`TOTAL_BLOCK`]) of
/// `n` subjects, on block boundaries and as even as blocks allow.
pub fn shard_ranges(n: usize, shards: usize) -> Vec<std::ops::Range<usize>> {
    let blocks = n.div_ceil(TOTAL_BLOCK);
    let shards = shards.clamp(1, blocks.max(1));
    (0..shards)
        .map(|i| {
            let (b0, b1) = (i * blocks / shards, (i + 1) * blocks / shards);
            (b0 * TOTAL_BLOCK).min(n)..(b1 * TOTAL_BLOCK).min(n)
        })
        .collect()
}

/// A [`ChainEvaluator`] whose proposals are computed by several threads, each on
/// a shard of the subjects. Gives the same log-likelihoods, to the bit, as one
/// [`IncrementalLikelihood`] over all subjects.
pub struct ShardedIncremental {
    lik: Arc<Likelihood>,
    local: IncrementalLikelihood,
    workers: Vec<Worker>,
    /// What the workers do with their pending proposal before the next command.
    resolve: Resolve,
    /// The pending proposal left the incremental range in some shard.
    rebuild: bool,
    blocks: Vec<f64>,
}

impl std::fmt::Debug for ShardedIncremental {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedIncremental")
            .field("shards", &(self.workers.len() + 1))
            .finish()
    }
}

impl ShardedIncremental {
    /// The state of `mixture` split into (up to) `shards` shards, all but the first
    /// on threads of their own.
    pub fn new(lik: Arc<Likelihood>, mixture: &Mixture, shards: usize) -> Self {
        let ranges = shard_ranges(lik.n_subjects(), shards);
        let mut workers = Vec::with_capacity(ranges.len().saturating_sub(1));
        for r in &ranges[1..] {
            let shard = Arc::new(lik.shard(r.clone()));
            workers.push(Worker::spawn(IncrementalLikelihood::new(shard, mixture)));
        }
        let local = if ranges.len() == 1 {
            IncrementalLikelihood::new(Arc::clone(&lik), mixture)
        } else {
            IncrementalLikelihood::new(Arc::new(lik.shard(ranges[0].clone())), mixture)
        };
        Self {
            lik,
            local,
            workers,
            resolve: Resolve::Nothing,
            rebuild: false,
            blocks: Vec::new(),
        }
    }

    /// Number of shards (threads) the proposals use.
    pub fn n_shards(&self) -> usize {
        self.workers.len() + 1
    }

    /// Collects the workers' replies after the local shard's `ok`; the total.
    fn gather(&mut self, ok: bool, mixture: &Mixture) -> (f64, bool) {
        self.blocks.clear();
        self.blocks.extend_from_slice(self.local.partials());
        let mut all_ok = ok;
        for w in &self.workers {
            all_ok &= w.wait(&mut self.blocks);
        }
        let ll = if all_ok {
            neumaier_sum(&self.blocks)
        } else {
            self.lik.loglike(mixture)
        };
        (ll, all_ok)
    }
}

impl ChainEvaluator for ShardedIncremental {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        let m = Arc::new(mixture.clone());
        for w in &mut self.workers {
            w.post(Command::Reset(Arc::clone(&m)));
        }
        self.resolve = Resolve::Nothing;
        self.rebuild = false;
        let ok = self.local.reset_shard(mixture);
        self.gather(ok, mixture).0
    }

    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        if !self.workers.is_empty() {
            let m = Arc::new(mixture.clone());
            let c = Arc::new(changed.to_vec());
            let resolve = std::mem::replace(&mut self.resolve, Resolve::Nothing);
            for w in &mut self.workers {
                w.post(Command::Propose {
                    resolve,
                    mixture: Arc::clone(&m),
                    changed: Arc::clone(&c),
                });
            }
        }
        let ok = self.local.propose_shard(mixture, changed);
        let (ll, all_ok) = self.gather(ok, mixture);
        self.rebuild = !all_ok;
        ll
    }

    fn accept(&mut self) {
        self.local.accept_shard(self.rebuild);
        self.resolve = Resolve::Accept {
            rebuild: self.rebuild,
        };
    }

    fn reject(&mut self) {
        self.local.reject();
        self.resolve = Resolve::Reject;
    }
}
