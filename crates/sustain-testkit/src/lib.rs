//! Test support of the SuStaIn workspace, a dev-dependency only (not published):
//! - [`workloads`]: the benchmark cohorts W1 and W2, one definition each;
//! - [`cohorts`]: small simulated cohorts for tests;
//! - [`conformance`]: the checks every batch evaluator passes against a reference;
//! - [`defaults`]: evaluators with their fast paths hidden behind the trait's defaults;
//! - [`enumerate`]: every valid sequence of a small problem and its exact posterior;
//! - [`rows`]: numeric CSV files read as rows (empty cell = missing);
//! - [`shared`]: the shared data next to the repository, where present;
//! - [`walk`]: random steps of the incremental-likelihood tests.

pub mod cohorts;
pub mod compare;
pub mod conformance;
pub mod defaults;
pub mod enumerate;
pub mod rows;
pub mod shared;
pub mod walk;
pub mod workloads;

pub use cohorts::{
    cohort, equal_fractions, random_mixture, scaled, spec, uniform_cohort, walk_cohort,
};
pub use compare::max_relative_difference;
pub use rows::{read_rows, read_rows_from, to_csv};
pub use shared::{shared_data, sim42, Sim42};
pub use walk::{accept_or_reject, random_fractions, random_moves, random_weighted_mixture};
pub use workloads::{w1, w2};
