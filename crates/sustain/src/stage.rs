//! Subtyping and staging subjects from samples (spec section 6).

use crate::results::{SubjectStage, SubtypeModel};
use ndarray::{Array2, Array3};
use sustain_model::{Likelihood, Mixture, Sequence};
use sustain_sampler::MergedSamples;

/// `count` evenly spaced `(chain, state)` samples of merged chains.
pub fn evenly_spaced(samples: &MergedSamples, count: usize) -> Vec<(usize, usize)> {
    let idx = samples.sample_index();
    if idx.len() <= count {
        return idx;
    }
    (0..count)
        .map(|i| idx[i * (idx.len() - 1) / (count - 1).max(1)])
        .collect()
}

/// The mixture of sample `(chain, state)`.
pub fn sample_mixture(
    lik: &Likelihood,
    samples: &MergedSamples,
    (c, st): (usize, usize),
) -> Mixture {
    let t = &samples.chains[c].trace;
    let seqs: Vec<Sequence> = (0..t.n_subtypes)
        .map(|s| {
            let mut order = vec![0; t.n_events];
            for e in 0..t.n_events {
                order[t.position(st, s, e)] = e;
            }
            Sequence::new(lik.events(), &order)
                .unwrap_or_else(|e| unreachable!("a chain only holds valid sequences: {e}"))
        })
        .collect();
    let f: Vec<f64> = (0..t.n_subtypes).map(|s| t.fraction(st, s)).collect();
    let sum: f64 = f.iter().sum();
    Mixture::new(seqs, f.iter().map(|v| v / sum).collect())
        .unwrap_or_else(|e| unreachable!("a chain only holds valid fractions: {e}"))
}

/// Averaged posteriors of every subject over samples, then the most probable
/// subtype and stage (first maximum on ties).
pub fn stage_subjects(
    lik: &Likelihood,
    model: &SubtypeModel,
    ids: &[String],
    n_samples: usize,
    threads: usize,
) -> Vec<SubjectStage> {
    let picks = evenly_spaced(&model.samples, n_samples);
    let m = lik.n_subjects();
    let ns = lik.events().n_stages();
    let k = model.n_subtypes;
    let parts = sustain_cpu::parallel_map(picks.len(), threads, |i| {
        let mix = sample_mixture(lik, &model.samples, picks[i]);
        let p = lik.posteriors(&mix);
        (p.subtype, p.subtype_stage)
    });
    let mut subtype = Array2::<f64>::zeros((m, k));
    let mut joint = Array3::<f64>::zeros((m, ns, k));
    for (s, j) in &parts {
        subtype += s;
        joint += j;
    }
    let n = parts.len().max(1) as f64;
    subtype /= n;
    joint /= n;
    (0..m)
        .map(|i| {
            let mut ml_subtype = 0;
            for s in 0..k {
                if subtype[[i, s]] > subtype[[i, ml_subtype]] {
                    ml_subtype = s;
                }
            }
            let mut ml_stage = 0;
            for st in 0..ns {
                if joint[[i, st, ml_subtype]] > joint[[i, ml_stage, ml_subtype]] {
                    ml_stage = st;
                }
            }
            SubjectStage {
                id: ids.get(i).cloned().unwrap_or_else(|| (i + 1).to_string()),
                ml_subtype,
                prob_ml_subtype: subtype[[i, ml_subtype]],
                ml_stage,
                prob_ml_stage: joint[[i, ml_stage, ml_subtype]],
            }
        })
        .collect()
}
