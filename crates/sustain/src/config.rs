//! Settings of a SuStaIn run, with the reference's knobs and defaults plus ours.

use serde::{Deserialize, Serialize};
use sustain_model::MissingConvention;
use sustain_sampler::ProposalMode;

/// Which backend evaluates likelihoods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// CPU threads (always available).
    #[default]
    Cpu,
    /// wgpu compute (needs the `gpu` feature; falls back to the CPU with a one-line
    /// notice unless [`FitConfig::require_gpu`]). E-M start points run one after
    /// another with GPU evaluators, MCMC chains in lockstep (one dispatch per
    /// iteration); step-size tuning stays on the CPU.
    Gpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            o => Err(format!("unknown backend '{o}' (expected cpu or gpu)")),
        }
    }
}

/// Chains that run in rounds until every reported quantity converges
/// ([`sustain_sampler::verdict::unmet_criteria`]) or a budget ends. The first
/// round runs [`FitConfig::n_iterations`] per chain; each later round adds about
/// half the iterations per chain so far (in whole first rounds), continuing every
/// chain from where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UntilConverged {
    /// Most iterations per chain, all rounds together.
    pub max_iterations: usize,
    /// Most seconds of tuning and chains per subtype count (none: no time limit).
    /// A run stopped by it holds a prefix of the samples a longer run would hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<f64>,
    /// Replica exchange: each chain a ladder of this many tempered copies (1: plain
    /// chains, sample for sample as before).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub tempering_rungs: usize,
    /// The hottest copy's power of the likelihood at the start (the ladder is
    /// geometric from 1 and respaced between rounds from the swap rates).
    #[serde(
        default = "default_hottest",
        skip_serializing_if = "is_default_hottest"
    )]
    pub tempering_hottest: f64,
}

fn one() -> usize {
    1
}
fn is_one(n: &usize) -> bool {
    *n == 1
}
/// The starting power of the hottest copy of a replica-exchange ladder.
pub const DEFAULT_HOTTEST: f64 = 0.1;
fn default_hottest() -> f64 {
    DEFAULT_HOTTEST
}
fn is_default_hottest(b: &f64) -> bool {
    *b == DEFAULT_HOTTEST
}

impl UntilConverged {
    /// Chains of a fixed `n` iterations each ([`FitConfig::n_iterations`] must be
    /// `n`) with a replica-exchange ladder of `rungs` copies: one round of `n` and
    /// no time budget, what the command line's `--iterations N --tempering R`
    /// runs (see [`FitConfig::fixed_length`]).
    pub fn one_round(n: usize, rungs: usize) -> Self {
        Self {
            max_iterations: n,
            max_seconds: None,
            tempering_rungs: rungs,
            ..Self::default()
        }
    }
}

impl Default for UntilConverged {
    fn default() -> Self {
        Self {
            max_iterations: 2_000_000,
            max_seconds: None,
            tempering_rungs: 1,
            tempering_hottest: DEFAULT_HOTTEST,
        }
    }
}

/// Settings of a fit. Everything that changes a result is here (and in the
/// fingerprint of checkpoints); `threads` is not, because results do not depend on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// E-M start points (reference: 25).
    pub n_startpoints: usize,
    /// Largest subtype count; models 1..=max are fitted (reference: `N_S_max`).
    pub max_subtypes: usize,
    /// MCMC iterations per chain after tuning (reference: `N_iterations_MCMC`);
    /// with [`FitConfig::until_converged`], those of the first round.
    pub n_iterations: usize,
    /// Run the chains in rounds until they converge, instead of a fixed
    /// `n_iterations` (none, the default here: fixed length; the command line
    /// makes it its default). Files written before this field read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_converged: Option<UntilConverged>,
    /// Independent chains started from the E-M optimum.
    pub n_chains: usize,
    /// Tuning passes and iterations per pass (reference: 3 x 10,000).
    pub tuning_passes: usize,
    /// Iterations of each tuning pass.
    pub tuning_iterations: usize,
    /// Iterations dropped at the start of each chain before merging.
    pub burn_in: usize,
    /// Keep every `thin`-th iteration when merging.
    pub thin: usize,
    /// Run seed: the whole run is determined by it.
    pub seed: u64,
    /// Proposal mode of the chains.
    pub proposal: ProposalMode,
    /// Missing-value convention.
    pub missing: MissingConvention,
    /// Likelihood backend.
    pub backend: Backend,
    /// E-M: maximum passes (reference: 100).
    pub em_max_passes: usize,
    /// E-M: relative-change tolerance (reference: 1e-6).
    pub em_tolerance: f64,
    /// Samples used for staging subjects (spec section 6: 1000).
    pub staging_samples: usize,
    /// Threads (default: available cores). Does not change results.
    #[serde(skip)]
    pub threads: usize,
    /// With [`Backend::Gpu`]: fail instead of falling back to the CPU when no GPU
    /// can be used (see [`crate::backend::select`]).
    #[serde(skip)]
    pub require_gpu: bool,
    /// Which chains of `0..n_chains` this process runs (for cluster shards).
    #[serde(skip)]
    pub chain_range: Option<std::ops::Range<usize>>,
    /// Counts finished E-M jobs (start points and splits) in slot 0, for progress
    /// displays. Does not change results.
    #[serde(skip)]
    pub em_progress: Option<std::sync::Arc<sustain_sampler::progress::ChainProgress>>,
}

/// Copies per chain of the replica-exchange ladder that chains run until they
/// converge with unless told otherwise: a second, tempered copy let the 2- and
/// 3-subtype posteriors of sim42 converge where plain chains had not after 1.28
/// million iterations, at little cost where plain chains converge anyway.
pub const DEFAULT_TEMPERING_RUNGS: usize = 2;

/// Copies per chain of the ladder of chains that run until they converge:
/// `requested`, or [`DEFAULT_TEMPERING_RUNGS`] on every engine (the GPU's
/// lockstep chains run ladders as the CPU's do). The one place that resolves
/// the default: the command line and the Python package both ask it.
pub fn tempering_rungs(requested: Option<usize>) -> usize {
    requested.unwrap_or(DEFAULT_TEMPERING_RUNGS)
}

/// The proposal a fit uses unless told otherwise: blockwise moves for chains that
/// run until they converge (they mix faster), exact ones for a fixed length, so
/// fixed-length results of earlier versions are reproduced sample for sample.
pub fn default_proposal(until_converged: bool) -> ProposalMode {
    if until_converged {
        ProposalMode::Blockwise
    } else {
        ProposalMode::Exact
    }
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            n_startpoints: 25,
            max_subtypes: 3,
            n_iterations: 100_000,
            until_converged: None,
            n_chains: 4,
            tuning_passes: 3,
            tuning_iterations: 10_000,
            burn_in: 0,
            thin: 1,
            seed: 42,
            proposal: ProposalMode::Exact,
            missing: MissingConvention::Marginalise,
            backend: Backend::Cpu,
            em_max_passes: 100,
            em_tolerance: 1e-6,
            staging_samples: 1000,
            threads: sustain_sampler::default_threads(),
            require_gpu: false,
            chain_range: None,
            em_progress: None,
        }
    }
}

impl FitConfig {
    /// Whether the chains run a fixed number of iterations: no rounds, or one
    /// round by construction ([`UntilConverged::one_round`]).
    pub fn fixed_length(&self) -> bool {
        self.until_converged
            .as_ref()
            .is_none_or(|u| u.max_iterations == self.n_iterations && u.max_seconds.is_none())
    }

    /// Checks every setting; the message names the setting and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("start points", self.n_startpoints),
            ("subtypes", self.max_subtypes),
            ("iterations", self.n_iterations),
            ("chains", self.n_chains),
            ("threads", self.threads),
            ("thin", self.thin),
            ("E-M passes", self.em_max_passes),
            ("staging samples", self.staging_samples),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.max_subtypes > 8 {
            return Err(format!(
                "subtypes = {} is more than the supported 8",
                self.max_subtypes
            ));
        }
        if self.burn_in >= self.n_iterations {
            return Err(format!(
                "burn-in ({}) must be smaller than the iterations per chain ({})",
                self.burn_in, self.n_iterations
            ));
        }
        if let Some(u) = &self.until_converged {
            if u.tempering_rungs == 0 || u.tempering_rungs > 64 {
                return Err(format!(
                    "tempering rungs must be between 1 (no replica exchange) and 64, not {}",
                    u.tempering_rungs
                ));
            }
            if !(u.tempering_hottest > 0.0 && u.tempering_hottest < 1.0) {
                return Err(format!(
                    "the hottest tempering power must be between 0 and 1, not {}",
                    u.tempering_hottest
                ));
            }
            if u.max_iterations < self.n_iterations {
                return Err(format!(
                    "the most iterations per chain ({}) must be at least the first round's ({})",
                    u.max_iterations, self.n_iterations
                ));
            }
            if u.max_seconds.is_some_and(|s| s.is_nan() || s <= 0.0) {
                return Err("the most seconds must be positive".into());
            }
            if self.chain_range.is_some() {
                // A shard cannot see the other shards' chains to judge them.
                return Err(if self.fixed_length() {
                    "chain shards run plain chains, without replica exchange".into()
                } else {
                    "chain shards run a fixed number of iterations".into()
                });
            }
        }
        if self.em_tolerance.is_nan() || self.em_tolerance <= 0.0 {
            return Err("E-M tolerance must be positive".into());
        }
        if let Some(r) = &self.chain_range {
            if r.is_empty() || r.end > self.n_chains {
                return Err(format!(
                    "chain shard {}..{} is outside 0..{}",
                    r.start, r.end, self.n_chains
                ));
            }
        }
        Ok(())
    }
}
