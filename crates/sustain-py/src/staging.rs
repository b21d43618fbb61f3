//! The z-score model's two staging posteriors in one pass, on threads.

use ndarray::Array3;
use sustain_core::Mixture;
use sustain_model::kernels::LANES;
use sustain_model::Likelihood;

/// Subjects per job (a multiple of the kernels' lane groups). Each subject's sums
/// do not depend on the grouping, so neither does the result on the thread count.
const BLOCK: usize = 64 * LANES;

/// Sums over `mixtures` of the joint posterior and of the posterior under equal
/// fractions, subjects x stages x subtypes each.
pub fn pair(lik: &Likelihood, mixtures: &[Mixture], threads: usize) -> (Array3<f64>, Array3<f64>) {
    let n = lik.n_subjects();
    let ns = lik.events().n_stages();
    let k = mixtures.first().map_or(1, Mixture::n_subtypes);
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(BLOCK)
        .map(|a| (a, (a + BLOCK).min(n)))
        .collect();
    let parts = sustain_cpu::parallel_map(ranges.len(), threads, |i| {
        let (a, z) = ranges[i];
        let mut joint = vec![0.0; (z - a) * ns * k];
        let mut equal = vec![0.0; (z - a) * ns * k];
        lik.posterior_sums_pair_into(mixtures, a..z, &mut joint, &mut equal);
        (joint, equal)
    });
    let mut joint = Vec::with_capacity(n * ns * k);
    let mut equal = Vec::with_capacity(n * ns * k);
    for (j, e) in parts {
        joint.extend(j);
        equal.extend(e);
    }
    let shape = (n, ns, k);
    (
        Array3::from_shape_vec(shape, joint)
            .unwrap_or_else(|_| unreachable!("one row per subject")),
        Array3::from_shape_vec(shape, equal)
            .unwrap_or_else(|_| unreachable!("one row per subject")),
    )
}
