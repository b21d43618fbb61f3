//! A simulator of SuStaIn z-score cohorts, as the reference's simulator draws them.

use crate::data::Dataset;
use crate::error::{ModelError, Result};
use crate::events::EventSet;
use crate::mixture::Mixture;
use crate::sequence::Sequence;
use crate::stages::StageValues;
use ndarray::Array2;
use rand::Rng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;

/// What to simulate besides the model.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationSpec {
    /// Number of subjects.
    pub n_subjects: usize,
    /// Fraction of subjects that are controls (stage 0; subtype still drawn).
    pub control_fraction: f64,
    /// Fraction of values removed at random (each subject keeps at least one).
    pub missing_fraction: f64,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        Self {
            n_subjects: 500,
            control_fraction: 0.0,
            missing_fraction: 0.0,
        }
    }
}

/// A simulated cohort with its ground truth.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The z-scores (NaN = removed).
    pub data: Dataset,
    /// True subtype of each subject.
    pub subtypes: Vec<usize>,
    /// True stage of each subject (`0..=N`).
    pub stages: Vec<usize>,
}

/// Draws subjects: subtype from the fractions, stage uniform on `0..=N` (controls at
/// 0), z-score = expected value at that stage + N(0, sigma) noise, then removes a
/// fraction of values at random. Fully determined by `seed`.
pub fn simulate(
    events: &EventSet,
    truth: &Mixture,
    spec: &SimulationSpec,
    seed: u64,
) -> Result<Simulation> {
    if spec.n_subjects == 0 {
        return Err(ModelError::NoSubjects);
    }
    for (name, v) in [
        ("control_fraction", spec.control_fraction),
        ("missing_fraction", spec.missing_fraction),
    ] {
        if !(0.0..1.0).contains(&v) {
            return Err(ModelError::Shape(format!("{name} = {v} must be in [0, 1)")));
        }
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let stage_values: Vec<StageValues> = truth
        .sequences()
        .iter()
        .map(|s| StageValues::new(events, s))
        .collect();
    let nb = events.n_biomarkers();
    let ns = events.n_stages();
    let mut values = Array2::zeros((spec.n_subjects, nb));
    let mut subtypes = Vec::with_capacity(spec.n_subjects);
    let mut stages = Vec::with_capacity(spec.n_subjects);
    let n_controls = (spec.control_fraction * spec.n_subjects as f64).round() as usize;
    for m in 0..spec.n_subjects {
        let u: f64 = rng.gen();
        let mut acc = 0.0;
        let mut s = truth.n_subtypes() - 1;
        for (i, f) in truth.fractions().iter().enumerate() {
            acc += f;
            if u < acc {
                s = i;
                break;
            }
        }
        let k = if m < n_controls {
            0
        } else {
            rng.gen_range(0..ns)
        };
        for b in 0..nb {
            let noise: f64 = StandardNormal.sample(&mut rng);
            values[[m, b]] = stage_values[s].get(b, k) + events.sigma() * noise;
        }
        subtypes.push(s);
        stages.push(k);
    }
    if spec.missing_fraction > 0.0 {
        for m in 0..spec.n_subjects {
            let keep = rng.gen_range(0..nb);
            for b in 0..nb {
                if b != keep && rng.gen::<f64>() < spec.missing_fraction {
                    values[[m, b]] = f64::NAN;
                }
            }
        }
    }
    Ok(Simulation {
        data: Dataset::new(values)?,
        subtypes,
        stages,
    })
}

/// `data` with every value multiplied by `scale` (a missing value stays
/// missing): large values make stage likelihoods span thousands of nats, the
/// numerically hard cases.
pub fn scaled(data: &Dataset, scale: f64) -> Result<Dataset> {
    let rows: Vec<Vec<f64>> = data
        .values()
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v * scale).collect())
        .collect();
    Dataset::from_rows(&rows)
}

/// A cohort simulated from a random true mixture.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// The events.
    pub events: EventSet,
    /// The true mixture the subjects were drawn from.
    pub truth: Mixture,
    /// The subjects' z-scores (NaN = removed).
    pub data: Dataset,
    /// The random stream that drew the true sequences, positioned after them (for
    /// drawing further sequences, such as benchmark candidates, reproducibly).
    pub rng: Pcg64,
}

/// Draws one true sequence per fraction from a stream seeded `truth_seed`, then
/// simulates `spec` from them with seed `data_seed` (see [`simulate`]).
pub fn random_cohort(
    events: EventSet,
    fractions: &[f64],
    truth_seed: u64,
    spec: &SimulationSpec,
    data_seed: u64,
) -> Result<Cohort> {
    let mut rng = Pcg64::seed_from_u64(truth_seed);
    let sequences = (0..fractions.len())
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let truth = Mixture::new(sequences, fractions.to_vec())?;
    let data = simulate(&events, &truth, spec, data_seed)?.data;
    Ok(Cohort {
        events,
        truth,
        data,
        rng,
    })
}

/// The cohort shape of the crate's unit tests and of the benchmarks: thresholds 1,
/// 2, 3 and z_max 5 on `n_biomarkers`, no controls, 10% missing values, the truth
/// from stream `seed` and the subjects from `seed + 1`.
#[cfg(test)]
pub(crate) fn test_cohort(
    n_subjects: usize,
    n_biomarkers: usize,
    fractions: &[f64],
    seed: u64,
) -> Cohort {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let spec = SimulationSpec {
        n_subjects,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    random_cohort(events, fractions, seed, &spec, seed + 1).unwrap()
}
