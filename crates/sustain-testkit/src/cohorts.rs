//! Small simulated cohorts: the pieces the tests assemble them from (a random true
//! mixture, a simulation spec) and the benchmark cohort shape.

use rand_pcg::Pcg64;
use sustain_model::simulate::{random_cohort, Cohort, SimulationSpec};
use sustain_model::{Dataset, EventSet, Mixture, Sequence};

/// What to simulate: `n_subjects`, a share of controls and of missing values.
pub fn spec(n_subjects: usize, control_fraction: f64, missing_fraction: f64) -> SimulationSpec {
    SimulationSpec {
        n_subjects,
        control_fraction,
        missing_fraction,
    }
}

/// `k` equal fractions.
pub fn equal_fractions(k: usize) -> Vec<f64> {
    vec![1.0 / k as f64; k]
}

/// One random sequence per fraction, drawn from `rng` in order.
pub fn random_mixture(events: &EventSet, fractions: &[f64], rng: &mut Pcg64) -> Mixture {
    let sequences = (0..fractions.len())
        .map(|_| Sequence::random(events, rng))
        .collect();
    Mixture::new(sequences, fractions.to_vec())
        .unwrap_or_else(|e| panic!("fractions {fractions:?}: {e}"))
}

/// A cohort of a random truth (`fractions`, from stream `truth_seed`) simulated by
/// `spec` with seed `data_seed`.
pub fn cohort(
    events: EventSet,
    fractions: &[f64],
    truth_seed: u64,
    spec: &SimulationSpec,
    data_seed: u64,
) -> Cohort {
    random_cohort(events, fractions, truth_seed, spec, data_seed)
        .unwrap_or_else(|e| panic!("simulating {spec:?}: {e}"))
}

/// The benchmark cohort shape: `n_subjects` on `n_biomarkers` biomarkers with
/// thresholds 1, 2, 3 and z_max 5, the truth drawn from stream `seed` with
/// `fractions`, subjects simulated with seed `seed + 1` (no controls, 10% missing).
pub fn uniform_cohort(
    n_subjects: usize,
    n_biomarkers: usize,
    fractions: &[f64],
    seed: u64,
) -> Cohort {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0, 3.0], 5.0)
        .unwrap_or_else(|e| unreachable!("fixed thresholds are valid: {e}"));
    cohort(
        events,
        fractions,
        seed,
        &spec(n_subjects, 0.0, 0.1),
        seed + 1,
    )
}

/// `data` with every value multiplied by `scale` (NaN stays missing): large values
/// make stage likelihoods span thousands of nats.
pub fn scaled(data: &Dataset, scale: f64) -> Dataset {
    sustain_model::simulate::scaled(data, scale)
        .unwrap_or_else(|e| panic!("scaling by {scale}: {e}"))
}

/// The cohorts of the incremental-state walks: `n_biomarkers` with `thresholds` and
/// z_max 5, `n_subtypes` of equal fractions, 10% controls and 15% missing values,
/// truth and subjects from `seed`, every value then multiplied by `scale`.
pub fn walk_cohort(
    n_biomarkers: usize,
    thresholds: &[f64],
    n_subtypes: usize,
    n_subjects: usize,
    seed: u64,
    scale: f64,
) -> Cohort {
    let events = EventSet::uniform(n_biomarkers, thresholds, 5.0).unwrap();
    let fractions = equal_fractions(n_subtypes);
    let mut w = cohort(events, &fractions, seed, &spec(n_subjects, 0.1, 0.15), seed);
    w.data = scaled(&w.data, scale);
    w
}
