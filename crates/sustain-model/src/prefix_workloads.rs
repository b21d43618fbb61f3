//! The benchmark cohorts of the event-based and ordinal models (issue 24's
//! workloads; `benches/prefix.rs`, `examples/prefix_timing.rs`), simulated from
//! fixed seeds:
//! - mixture: 2000 subjects x 50 biomarkers; `p_event` and `p_no_event` are the
//!   Gaussian densities N(2, 1) and N(0, 1) of values drawn from N(1, 1.5);
//! - ordinal: 1000 subjects x 10 biomarkers x scores 1, 2, 3 (30 events); scores
//!   drawn uniformly from 0..=3 and read with `p_correct = 0.9`.
//!
//! ```
//! let m = sustain_model::prefix_workloads::ordinal_workload();
//! assert_eq!(sustain_model::StageModel::n_subjects(&m), 1000);
//! ```

use crate::event_based::event_based;
use crate::mixture::Mixture;
use crate::ordinal::{ordinal, score_probabilities};
use crate::prefix::PrefixModel;
use crate::sequence::Sequence;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64;
use sustain_core::StageModel;

fn gaussian(x: f64, mu: f64) -> f64 {
    (-(x - mu) * (x - mu) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The event-based cohort (2000 x 50).
pub fn mixture_workload() -> PrefixModel {
    let (m, b) = (2000, 50);
    let mut rng = Pcg64::seed_from_u64(24);
    let normal = Normal::new(1.0, 1.5).unwrap_or_else(|_| unreachable!("valid parameters"));
    let x = Array2::from_shape_fn((m, b), |_| normal.sample(&mut rng));
    let yes = x.mapv(|v| gaussian(v, 2.0));
    let no = x.mapv(|v| gaussian(v, 0.0));
    event_based(yes.view(), no.view()).unwrap_or_else(|e| unreachable!("simulated data: {e}"))
}

/// The ordinal cohort (1000 x 10 x 3 scores).
pub fn ordinal_workload() -> PrefixModel {
    let (m, b) = (1000, 10);
    let mut rng = Pcg64::seed_from_u64(25);
    let score_vals = vec![vec![1.0, 2.0, 3.0]; b];
    let scores = Array2::from_shape_fn((m, b), |_| rng.gen_range(0..4) as f64);
    let (p_normal, p_score) = score_probabilities(&score_vals, scores.view(), 0.9)
        .unwrap_or_else(|e| unreachable!("simulated scores: {e}"));
    let views: Vec<_> = p_score.iter().map(|a| a.view()).collect();
    ordinal(&score_vals, p_normal.view(), &views)
        .unwrap_or_else(|e| unreachable!("simulated data: {e}"))
}

/// Three random sequences with fractions 0.5 / 0.3 / 0.2.
pub fn start(model: &PrefixModel, seed: u64) -> Mixture {
    let mut rng = Pcg64::seed_from_u64(seed);
    let seqs = (0..3)
        .map(|_| Sequence::random(model.order(), &mut rng))
        .collect();
    Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap_or_else(|e| unreachable!("valid: {e}"))
}
