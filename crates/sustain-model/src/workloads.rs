//! The benchmark cohorts of `docs/performance.md`, simulated from fixed seeds so
//! every bench, the `sustain bench-chains` command and the report measure the same
//! data:
//! - W1: 1000 subjects, 10 biomarkers x z 1, 2, 3 (30 events, z_max 5), 3 subtypes
//!   with fractions 0.5 / 0.3 / 0.2, 10% missing values;
//! - W2: 2000 subjects, 15 biomarkers x z 1, 2, 3 (45 events), 5 subtypes with
//!   fractions 0.3 / 0.25 / 0.2 / 0.15 / 0.1, 10% missing values.
//!
//! ```
//! let w1 = sustain_model::workloads::w1();
//! assert_eq!(w1.data.n_subjects(), 1000);
//! assert_eq!(w1.events.n_events(), 30);
//! assert_eq!(w1.truth.n_subtypes(), 3);
//! ```

use crate::data::Dataset;
use crate::events::EventSet;
use crate::mixture::Mixture;
use crate::sequence::Sequence;
use crate::simulate::{simulate, SimulationSpec};
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// A simulated benchmark cohort.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The events (z-score thresholds).
    pub events: EventSet,
    /// The true mixture the subjects were drawn from.
    pub truth: Mixture,
    /// The subjects' z-scores, with missing values.
    pub data: Dataset,
    /// The random stream that drew the true sequences, positioned after them (the
    /// benches draw their candidate sequences from it).
    pub rng: Pcg64,
}

/// A cohort of `n_subjects` on `n_biomarkers` biomarkers with thresholds 1, 2, 3
/// and z_max 5, subtypes drawn from stream `seed` with `fractions`, subjects
/// simulated with seed `seed + 1` (no controls, 10% missing values).
pub fn cohort(n_subjects: usize, n_biomarkers: usize, fractions: &[f64], seed: u64) -> Workload {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0, 3.0], 5.0)
        .unwrap_or_else(|e| unreachable!("fixed thresholds are valid: {e}"));
    let mut rng = Pcg64::seed_from_u64(seed);
    let sequences = (0..fractions.len())
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let truth = Mixture::new(sequences, fractions.to_vec())
        .unwrap_or_else(|e| panic!("fractions {fractions:?}: {e}"));
    let spec = SimulationSpec {
        n_subjects,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    let data = simulate(&events, &truth, &spec, seed + 1)
        .unwrap_or_else(|e| panic!("simulating {n_subjects} subjects: {e}"))
        .data;
    Workload {
        events,
        truth,
        data,
        rng,
    }
}

/// W1 (see the module notes).
pub fn w1() -> Workload {
    cohort(1000, 10, &[0.5, 0.3, 0.2], 1)
}

/// W2 (see the module notes).
pub fn w2() -> Workload {
    cohort(2000, 15, &[0.3, 0.25, 0.2, 0.15, 0.1], 2)
}
