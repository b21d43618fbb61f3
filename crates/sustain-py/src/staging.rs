//! pySuStaIn's staging posteriors, both normalisations from one evaluation of each
//! sample's stage likelihoods.

use ndarray::{s, Array3};
use sustain_core::{Mixture, ModelError, StageModel};

/// Subjects handled together: their results do not depend on the grouping, so the
/// answer is the same on any number of threads.
const BLOCK: usize = 2048;

/// Over `mixtures` (samples), per subject `m`, stage `k` and subtype `s`, the means
/// of `f_s p(x_m | k, S_s) / sum` (the joint posterior) and of
/// `p(x_m | k, S_s) / sum` (pySuStaIn's `prob_subtype_stage`, without fractions).
pub fn staging<M: StageModel + Sync>(
    model: &M,
    mixtures: &[Mixture],
    threads: usize,
) -> Result<(Array3<f64>, Array3<f64>), ModelError> {
    let n_subjects = model.n_subjects();
    let n_stages = model.order().n_events() + 1;
    let k = mixtures.first().map_or(1, Mixture::n_subtypes);
    let blocks: Vec<(usize, usize)> = (0..n_subjects)
        .step_by(BLOCK)
        .map(|a| (a, (a + BLOCK).min(n_subjects)))
        .collect();
    let parts = sustain_cpu::parallel_map(blocks.len(), threads, |b| {
        let (a, z) = blocks[b];
        let rows: Vec<usize> = (a..z).collect();
        let part = model.subset(&rows)?;
        Ok::<_, ModelError>(block_staging(&part, mixtures, n_stages, k))
    });
    let mut joint = Array3::<f64>::zeros((n_subjects, n_stages, k));
    let mut plain = Array3::<f64>::zeros((n_subjects, n_stages, k));
    for (&(a, z), part) in blocks.iter().zip(parts) {
        let (j, p) = part?;
        joint.slice_mut(s![a..z, .., ..]).assign(&j);
        plain.slice_mut(s![a..z, .., ..]).assign(&p);
    }
    let n = mixtures.len().max(1) as f64;
    Ok((joint / n, plain / n))
}

/// [`staging`] of one block of subjects (sums over samples, not yet means).
fn block_staging<M: StageModel>(
    model: &M,
    mixtures: &[Mixture],
    n_stages: usize,
    k: usize,
) -> (Array3<f64>, Array3<f64>) {
    let m = model.n_subjects();
    let mut joint = Array3::<f64>::zeros((m, n_stages, k));
    let mut plain = Array3::<f64>::zeros((m, n_stages, k));
    let mut ll = vec![vec![0.0; m * n_stages]; k];
    for mixture in mixtures {
        for (s, seq) in mixture.sequences().iter().enumerate() {
            model.stage_loglikes(seq, &mut ll[s]);
        }
        let f = mixture.fractions();
        for i in 0..m {
            let at = |s: usize, st: usize| ll[s][i * n_stages + st];
            let max = (0..k)
                .flat_map(|s| (0..n_stages).map(move |st| (s, st)))
                .map(|(s, st)| at(s, st))
                .fold(f64::NEG_INFINITY, f64::max);
            let (mut total_f, mut total) = (0.0, 0.0);
            for s in 0..k {
                for st in 0..n_stages {
                    let p = (at(s, st) - max).exp();
                    total += p;
                    total_f += f[s] * p;
                }
            }
            for s in 0..k {
                for st in 0..n_stages {
                    let p = (at(s, st) - max).exp();
                    joint[[i, st, s]] += f[s] * p / total_f;
                    plain[[i, st, s]] += p / total;
                }
            }
        }
    }
    (joint, plain)
}
