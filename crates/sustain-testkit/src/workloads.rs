//! The benchmark cohorts of `docs/performance.md`, simulated from fixed seeds so
//! that every bench, example and the `sustain bench-chains` command measure the same
//! data. W1 is the workload of the numerical contract's reference figures
//! (`sustain-spec.md` section 9: M = 1000, B = 10, thresholds 1, 2, 3, N = 30, 10%
//! missing, 3 subtypes):
//! - W1: 1000 subjects, 10 biomarkers x z 1, 2, 3 (30 events, z_max 5), 3 subtypes
//!   with fractions 0.5 / 0.3 / 0.2, 10% missing values;
//! - W2: 2000 subjects, 15 biomarkers x z 1, 2, 3 (45 events), 5 subtypes with
//!   fractions 0.3 / 0.25 / 0.2 / 0.15 / 0.1, 10% missing values.
//!
//! ```
//! let w1 = sustain_testkit::w1();
//! assert_eq!(w1.data.n_subjects(), 1000);
//! assert_eq!(w1.events.n_events(), 30);
//! assert_eq!(w1.truth.n_subtypes(), 3);
//! ```

use sustain_model::simulate::Cohort;

use crate::cohorts::uniform_cohort;

/// W1 (see the module notes).
pub fn w1() -> Cohort {
    uniform_cohort(1000, 10, &[0.5, 0.3, 0.2], 1)
}

/// W2 (see the module notes).
pub fn w2() -> Cohort {
    uniform_cohort(2000, 15, &[0.3, 0.25, 0.2, 0.15, 0.1], 2)
}
