//! One chain's likelihood split over threads by subjects.
//!
//! When there are fewer chains than cores (the reference's one chain, or the last
//! subtype count of a fit), each chain's proposals can use several threads: the
//! subjects are cut into shards on the model's block boundaries
//! ([`SustainModel::SHARD_BLOCK`]), each shard keeps its own [`ShardState`], and a proposal's total is the
//! compensated sum of every shard's block partials in order. A whole state computes
//! the same block partials, so a split chain gives the same bits as an unsplit one:
//! results do not depend on the thread count.
//!
//! Shards are not tied to threads: for each command every thread, the chain's own
//! included, claims shards that nobody has taken yet and runs them. When a helper
//! thread is not running (a busy machine), the chain's thread simply does all the
//! shards itself instead of waiting for it. Helpers wait for commands by spinning
//! briefly, then parking.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use sustain_core::{neumaier_sum, ChainEvaluator, Mixture, Screened, ShardState, SustainModel};

/// Spin iterations before a waiting thread parks or yields (a proposal takes
/// tens of microseconds).
const SPIN: u32 = 4_000;

/// How a shard resolves its pending proposal before the next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolve {
    Nothing,
    Accept { rebuild: bool },
    Reject,
}

/// What every shard does in one round.
enum Command {
    Reset(Mixture),
    Propose {
        resolve: Resolve,
        mixture: Mixture,
        changed: Vec<bool>,
    },
}

/// One shard's state and the outcome of its last command.
struct ShardSlot {
    state: Box<dyn ShardState>,
    /// Whether every subject stayed in the incremental range.
    ok: bool,
}

struct Shard {
    slot: Mutex<ShardSlot>,
    /// The last round this shard was claimed in (claims never go back).
    claimed: AtomicU64,
}

/// What the chain's thread and its helpers share.
struct Shared {
    shards: Vec<Shard>,
    /// The current round and its command.
    command: Mutex<(u64, Option<Arc<Command>>)>,
    round: AtomicU64,
    /// Shards finished in the current round.
    finished: AtomicUsize,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a helper panicked; `wait_round` reports that.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Claims and runs every shard of round `round` that nobody has taken yet.
    fn work(&self, round: u64, command: &Command) {
        for shard in &self.shards {
            if shard.claimed.fetch_max(round, Ordering::AcqRel) < round {
                let mut slot = lock(&shard.slot);
                slot.ok = run(slot.state.as_mut(), command);
                drop(slot);
                self.finished.fetch_add(1, Ordering::Release);
            }
        }
    }
}

fn run(state: &mut dyn ShardState, command: &Command) -> bool {
    match command {
        Command::Reset(m) => state.reset_shard(m),
        Command::Propose {
            resolve,
            mixture,
            changed,
        } => {
            apply(state, *resolve);
            state.propose_shard(mixture, changed)
        }
    }
}

/// Resolves a shard's pending proposal.
fn apply(state: &mut dyn ShardState, resolve: Resolve) {
    match resolve {
        Resolve::Nothing => {}
        Resolve::Accept { rebuild } => state.accept_shard(rebuild),
        Resolve::Reject => state.reject(),
    }
}

/// A helper thread's loop: wait for a round, take part in it.
fn help(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        while shared.round.load(Ordering::Acquire) == seen {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::park();
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let (round, command) = lock(&shared.command).clone();
        seen = round;
        if let Some(command) = command {
            shared.work(round, &command);
        }
    }
}

pub use sustain_sampler::settings::{useful_shards, MIN_BLOCKS_PER_SHARD};

/// The subject ranges of `shards` shards (at most one per [`SustainModel::SHARD_BLOCK`]) of
/// `n` subjects, on block boundaries and as even as blocks allow.
pub fn shard_ranges(n: usize, shards: usize, block: usize) -> Vec<std::ops::Range<usize>> {
    let block = block.max(1);
    let blocks = n.div_ceil(block);
    let shards = shards.clamp(1, blocks.max(1));
    (0..shards)
        .map(|i| {
            let (b0, b1) = (i * blocks / shards, (i + 1) * blocks / shards);
            (b0 * block).min(n)..(b1 * block).min(n)
        })
        .collect()
}

/// A [`ChainEvaluator`] whose proposals are computed by several threads, each
/// round's shards taken by whichever thread is free. Gives the same
/// log-likelihoods, to the bit, as one [`ShardState`] over all subjects.
pub struct ShardedIncremental<M: SustainModel> {
    lik: Arc<M>,
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    round: u64,
    /// What the shards do with their pending proposal before the next command.
    resolve: Resolve,
    /// The pending proposal left the incremental range in some shard.
    rebuild: bool,
    blocks: Vec<f64>,
}

impl<M: SustainModel> std::fmt::Debug for ShardedIncremental<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedIncremental")
            .field("shards", &self.shared.shards.len())
            .finish()
    }
}

impl<M: SustainModel> ShardedIncremental<M> {
    /// The state of `mixture` split into (up to) `shards` shards, worked on by the
    /// calling thread and `shards - 1` helper threads.
    pub fn new(lik: Arc<M>, mixture: &Mixture, shards: usize) -> Self {
        let mut ranges = shard_ranges(lik.n_subjects(), shards, M::SHARD_BLOCK);
        // A model that cannot be cut keeps the chain on one thread.
        let parts: Option<Vec<Arc<M>>> = if ranges.len() == 1 {
            Some(vec![Arc::clone(&lik)])
        } else {
            ranges
                .iter()
                .map(|r| lik.shard(r.clone()).ok().map(Arc::new))
                .collect()
        };
        let parts = parts.unwrap_or_else(|| {
            ranges = std::iter::once(0..lik.n_subjects()).collect();
            vec![Arc::clone(&lik)]
        });
        debug_assert_eq!(ranges.len(), parts.len());
        let shards = parts
            .into_iter()
            .map(|part| Shard {
                slot: Mutex::new(ShardSlot {
                    state: M::shard_state(part, mixture),
                    ok: true,
                }),
                claimed: AtomicU64::new(0),
            })
            .collect::<Vec<_>>();
        let n = shards.len();
        let shared = Arc::new(Shared {
            shards,
            command: Mutex::new((0, None)),
            round: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let helpers = (1..n)
            .map(|_| {
                let sh = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("sustain-shard".into())
                    .spawn(move || help(&sh))
                    .unwrap_or_else(|e| panic!("cannot start a shard thread: {e}"))
            })
            .collect();
        Self {
            lik,
            shared,
            helpers,
            round: 0,
            resolve: Resolve::Nothing,
            rebuild: false,
            blocks: Vec::new(),
        }
    }

    /// Number of shards the proposals are split into.
    pub fn n_shards(&self) -> usize {
        self.shared.shards.len()
    }

    /// Runs one round of `command` on every shard; the total and whether every
    /// subject stayed in range.
    fn round(&mut self, command: Command, mixture: &Mixture) -> (f64, bool) {
        let sh = Arc::clone(&self.shared);
        self.round += 1;
        let round = self.round;
        let command = Arc::new(command);
        sh.finished.store(0, Ordering::Relaxed);
        *lock(&sh.command) = (round, Some(Arc::clone(&command)));
        sh.round.store(round, Ordering::Release);
        for h in &self.helpers {
            h.thread().unpark();
        }
        sh.work(round, &command);
        self.wait_round();
        self.blocks.clear();
        let mut ok = true;
        for shard in &sh.shards {
            let slot = lock(&shard.slot);
            ok &= slot.ok;
            self.blocks.extend_from_slice(slot.state.partials());
        }
        (self.total(ok, &self.blocks, mixture), ok)
    }

    /// The log-likelihood from every shard's block partials in order, or from
    /// scratch where a subject left the incremental range (`ok` false).
    fn total(&self, ok: bool, blocks: &[f64], mixture: &Mixture) -> f64 {
        if ok {
            neumaier_sum(blocks)
        } else {
            self.lik.loglike(mixture)
        }
    }

    /// One shard (no helpers): resolves the pending proposal, then `propose` on
    /// the shard's state, without a round or copies of the proposal. `propose`
    /// gives whether every subject stayed in range, or `None` when the proposal was
    /// rejected without a value (then so is this).
    fn on_one_shard(
        &mut self,
        mixture: &Mixture,
        propose: impl FnOnce(&mut dyn ShardState) -> Option<bool>,
    ) -> Option<f64> {
        let resolve = std::mem::replace(&mut self.resolve, Resolve::Nothing);
        let sh = Arc::clone(&self.shared);
        let mut slot = lock(&sh.shards[0].slot);
        let state = slot.state.as_mut();
        apply(state, resolve);
        let ok = propose(state)?;
        self.rebuild = !ok;
        Some(self.total(ok, state.partials(), mixture))
    }

    /// Waits until every shard of the current round is finished (a helper may
    /// still be running one it claimed).
    fn wait_round(&self) {
        let n = self.shared.shards.len();
        let mut spins = 0u32;
        while self.shared.finished.load(Ordering::Acquire) < n {
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                if self.helpers.iter().any(|h| h.is_finished()) {
                    panic!("a shard thread of the chain stopped (it panicked)");
                }
                std::thread::yield_now();
            }
        }
    }
}

impl<M: SustainModel> Drop for ShardedIncremental<M> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.round.fetch_add(1, Ordering::AcqRel);
        for h in &self.helpers {
            h.thread().unpark();
        }
        for h in self.helpers.drain(..) {
            // A helper's panic was already reported by `wait_round` (or nobody waited).
            let _ = h.join();
        }
    }
}

impl<M: SustainModel> ChainEvaluator for ShardedIncremental<M> {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        self.resolve = Resolve::Nothing;
        self.rebuild = false;
        self.round(Command::Reset(mixture.clone()), mixture).0
    }

    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        if self.helpers.is_empty() {
            return self
                .on_one_shard(mixture, |state| Some(state.propose_shard(mixture, changed)))
                .unwrap_or_else(|| unreachable!("an exact proposal always has a value"));
        }
        let resolve = std::mem::replace(&mut self.resolve, Resolve::Nothing);
        let command = Command::Propose {
            resolve,
            mixture: mixture.clone(),
            changed: changed.to_vec(),
        };
        let (ll, ok) = self.round(command, mixture);
        self.rebuild = !ok;
        ll
    }

    fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
        if !self.helpers.is_empty() {
            // Several shards: every proposal is evaluated (a screen would need a
            // round of its own).
            return Some(self.propose(proposal.mixture, proposal.changed));
        }
        self.on_one_shard(proposal.mixture, |state| {
            state.propose_shard_unless_rejected(proposal)
        })
    }

    fn accept(&mut self) {
        self.resolve = Resolve::Accept {
            rebuild: self.rebuild,
        };
    }

    fn reject(&mut self) {
        self.resolve = Resolve::Reject;
    }
}
