//! Why a run failed, as typed variants: a caller matches on what went wrong
//! (settings, a checkpoint, a file, the backend, the data) and reads its fields;
//! the messages are the one-line texts the CLI prints.

use std::path::PathBuf;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid settings.
    #[error("invalid settings: {0}")]
    Config(#[from] ConfigError),
    /// Invalid model or data.
    #[error(transparent)]
    Model(#[from] sustain_model::ModelError),
    /// A checkpoint that cannot be used.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// Reading or writing the file or folder `path`.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was done to it.
        action: IoAction,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A value that cannot be written as JSON.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    /// The requested backend is unavailable (the GPU with `require_gpu`).
    #[error("{0}")]
    Backend(#[from] BackendError),
    /// The data cannot support the fit asked for (e.g. too few subjects to split
    /// into more subtypes); the message says what to change.
    #[error("{0}")]
    Data(#[from] DataError),
    /// The run was cancelled through its progress counters
    /// ([`sustain_sampler::progress::ChainProgress::cancel`]), e.g. by Ctrl-C.
    #[error("cancelled")]
    Cancelled,
}

/// What was done to a file or folder when [`Error::Io`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoAction {
    /// Creating a folder.
    Create,
    /// Writing a file.
    Write,
}

impl std::fmt::Display for IoAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Write => "write",
        })
    }
}

/// Settings that cannot run (the text after "invalid settings: ").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field of [`crate::config::FitConfig`] out of its range.
    #[error("{0}")]
    Settings(String),
    /// A subtype count outside `1..=max_subtypes`.
    #[error("subtype count {k} is out of range 1..={max}")]
    SubtypeOutOfRange {
        /// The count asked for.
        k: usize,
        /// The largest count of the settings.
        max: usize,
    },
    /// No subtype count was fitted.
    #[error("no subtype count")]
    NoSubtypeCount,
    /// Not one name per biomarker.
    #[error("{names} biomarker names for {biomarkers} biomarkers")]
    BiomarkerNames {
        /// Names given.
        names: usize,
        /// Biomarkers of the events.
        biomarkers: usize,
    },
    /// The chains of a subtype count produced no model.
    #[error("the chains of {n_subtypes} subtype(s) did not run")]
    ChainsDidNotRun {
        /// The subtype count.
        n_subtypes: usize,
    },
    /// Chain shards with `require_gpu`.
    #[error("chain shards run on the CPU only; drop --require-gpu or run without --chain-shard")]
    ShardsNeedCpu,
    /// A fold count outside `2..=subjects`.
    #[error("folds = {n_folds} must be between 2 and the number of subjects ({n_subjects})")]
    FoldCount {
        /// Folds asked for.
        n_folds: usize,
        /// Subjects of the data.
        n_subjects: usize,
    },
    /// A subject without a fold label.
    #[error("row {row} has no fold label (every subject needs one)")]
    MissingFoldLabel {
        /// The subject's row, 1-based.
        row: usize,
    },
    /// Fold labels naming fewer than 2 folds.
    #[error("the fold labels name {n_folds} fold(s); cross-validation needs at least 2")]
    TooFewFolds {
        /// Distinct labels.
        n_folds: usize,
    },
    /// A fold index outside `0..n_folds`.
    #[error("fold {fold} is out of range 0..{n_folds}")]
    FoldOutOfRange {
        /// The fold asked for.
        fold: usize,
        /// Folds of the run.
        n_folds: usize,
    },
    /// Assembling a fold from no parts.
    #[error("no fold parts to assemble")]
    NoFoldParts,
    /// Combining no folds.
    #[error("no folds to combine")]
    NoFolds,
}

/// A checkpoint, shard or fold part that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A checkpoint file that does not hold a valid model (edited or damaged).
    #[error("{}: {why}", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with its model.
        why: sustain_model::ModelError,
    },
    /// A checkpoint whose samples file cannot be used.
    #[error("{} is not a valid checkpoint: {why}", .path.display())]
    Samples {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with its samples file.
        why: crate::samples_file::SamplesError,
    },
    /// A checkpoint between rounds whose chains do not fit the run.
    #[error("{} is not a valid checkpoint: {why}", .path.display())]
    Chains {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not fit.
        why: String,
    },
    /// A checkpoint file that is not valid JSON of a checkpoint.
    #[error("{} is not a valid checkpoint: {source}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        source: serde_json::Error,
    },
    /// A checkpoint made from other data or settings.
    #[error(
        "{} was made from different data or settings (fingerprint {} vs {}); use another --out folder or delete it",
        .path.display(), short(.saved), short(.expected)
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its fingerprint.
        saved: String,
        /// The fingerprint of this run's data and settings.
        expected: String,
    },
    /// A chain shard with another number of subtype counts than the settings.
    #[error("a shard holds {held} subtype counts, the settings {expected}")]
    ShardCounts {
        /// Counts in the shard.
        held: usize,
        /// The settings' largest count.
        expected: usize,
    },
    /// A shard's model at the wrong place.
    #[error("a shard's model {position} has {n_subtypes} subtypes")]
    ShardModelOrder {
        /// Its place, 1-based.
        position: usize,
        /// Its subtype count.
        n_subtypes: usize,
    },
    /// Merging no shards.
    #[error("no shards to merge")]
    NoShards,
    /// Shards that disagree on what their chains start from.
    #[error("the shards disagree on the E-M optimum or step sizes of {n_subtypes} subtype(s)")]
    ShardsDisagree {
        /// The subtype count.
        n_subtypes: usize,
    },
    /// Shards that do not hold each chain once.
    #[error("the shards hold chains {chains:?} of {n_subtypes} subtype(s), not 0..{n_chains}")]
    ShardChains {
        /// The chain indices held, sorted.
        chains: Vec<usize>,
        /// The subtype count.
        n_subtypes: usize,
        /// Chains of the settings.
        n_chains: usize,
    },
    /// A fold part of another run or fold than the first part.
    #[error(
        "part {n_subtypes} subtype(s) of fold {fold} comes from a different run or fold than part {first_n_subtypes} subtype(s) of fold {first_fold}"
    )]
    ForeignPart {
        /// The part's subtype count.
        n_subtypes: usize,
        /// The part's fold.
        fold: usize,
        /// The first part's subtype count.
        first_n_subtypes: usize,
        /// The first part's fold.
        first_fold: usize,
    },
    /// A fold part with a subtype count outside `1..=max`.
    #[error("part of fold {fold} has subtype count {n_subtypes}, outside 1..={max}")]
    PartCount {
        /// The part's fold.
        fold: usize,
        /// Its subtype count.
        n_subtypes: usize,
        /// The largest count of the run.
        max: usize,
    },
    /// Subtype counts without a part.
    #[error("fold {fold}: missing subtype count(s) {} of 1..={max}", list(.missing))]
    MissingParts {
        /// The fold.
        fold: usize,
        /// The missing counts.
        missing: Vec<usize>,
        /// The largest count of the run.
        max: usize,
    },
    /// A fold of another run than the first fold.
    #[error(
        "fold {fold} comes from a different run (data, settings, seed or fold count differ) than fold {first_fold}"
    )]
    ForeignFold {
        /// The fold.
        fold: usize,
        /// The first fold.
        first_fold: usize,
    },
    /// A fold index outside `0..n_folds`.
    #[error("fold {fold} is out of range 0..{n_folds}")]
    FoldOutOfRange {
        /// The fold.
        fold: usize,
        /// Folds of the run.
        n_folds: usize,
    },
    /// Folds without a result.
    #[error("missing fold(s) {} of {n_folds}", list(.missing))]
    MissingFolds {
        /// The missing folds.
        missing: Vec<usize>,
        /// Folds of the run.
        n_folds: usize,
    },
}

/// A backend that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The GPU was required ([`crate::config::FitConfig::require_gpu`]) but is not there.
    #[error("the GPU backend is required but unavailable: {why}")]
    GpuRequired {
        /// Why there is no GPU (one line).
        why: String,
    },
    /// The thread that ran the fit panicked.
    #[error("the fit thread panicked")]
    FitThreadPanicked,
}

/// Data that cannot support the fit asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// Fewer than 2 subjects: no subtype can be split.
    #[error(
        "cannot fit {n_subtypes} subtypes: the data has only {n_subjects} subject(s), and a split needs at least 2; fit 1 subtype or use more subjects"
    )]
    TooFewSubjects {
        /// The subtype count asked for.
        n_subtypes: usize,
        /// Subjects of the data.
        n_subjects: usize,
    },
    /// No fitted subtype holds two subjects to split.
    #[error(
        "cannot fit {n_subtypes} subtypes: none of the {fitted} subtype(s) fitted before holds two or more of the {n_subjects} subjects, so none can be split; fit at most {fitted} subtype(s) or use more subjects"
    )]
    NothingToSplit {
        /// The subtype count asked for.
        n_subtypes: usize,
        /// Subtypes fitted before.
        fitted: usize,
        /// Subjects of the data.
        n_subjects: usize,
    },
}

/// The first 12 characters of a fingerprint, as messages show it (by characters,
/// so that an edited file cannot cut one in two).
fn short(fingerprint: &str) -> &str {
    match fingerprint.char_indices().nth(12) {
        Some((end, _)) => &fingerprint[..end],
        None => fingerprint,
    }
}

/// Numbers joined by ", ".
fn list(numbers: &[usize]) -> String {
    let words: Vec<String> = numbers.iter().map(usize::to_string).collect();
    words.join(", ")
}
