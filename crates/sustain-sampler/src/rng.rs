//! Random streams: one per chain, derived from the run seed and the chain index,
//! so a chain's draws do not depend on which thread runs it.

use rand_pcg::Pcg64;

/// SplitMix64 finaliser: spreads a seed over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream of `purpose`-th kind and index `index` of a run seeded with `seed`.
/// PCG streams with distinct stream ids are independent sequences.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Pcg64 {
    let state = ((mix(seed) as u128) << 64) | mix(seed ^ purpose.rotate_left(17)) as u128;
    let stream_id = ((purpose as u128) << 64) | index as u128;
    Pcg64::new(state, stream_id)
}

/// Stream purposes.
pub mod purpose {
    /// Main MCMC chains (index = chain).
    pub const CHAIN: u64 = 1;
    /// Step-size tuning runs (index = tuning pass).
    pub const TUNING: u64 = 2;
    /// E-M start points (index = start point).
    pub const START_POINT: u64 = 3;
    /// Cluster splits in the hierarchical fit.
    pub const SPLIT: u64 = 4;
    /// Cross-validation folds.
    pub const FOLD: u64 = 5;
    /// Replica exchange: chain `i`'s swap stream is index `1024 i`, its hot copy
    /// `r` (rank `r`, from 1) index `1024 i + r`.
    pub const TEMPERED: u64 = 6;
}
