//! Subtyping and staging subjects from samples (spec section 6).

use crate::results::{SubjectStage, SubtypeModel};
use ndarray::Axis;
use std::sync::Arc;
use sustain_core::{BatchEvaluator, EventOrder, Mixture, ModelError, Sequence, SustainModel};
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

/// The mixture of sample `(chain, state)` (sequences over `events`).
pub fn sample_mixture(
    events: &EventOrder,
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
            Sequence::new(events, &order)
                .unwrap_or_else(|e| unreachable!("a chain only holds valid sequences: {e}"))
        })
        .collect();
    let f: Vec<f64> = (0..t.n_subtypes).map(|s| t.fraction(st, s)).collect();
    let sum: f64 = f.iter().sum();
    Mixture::new(seqs, f.iter().map(|v| v / sum).collect())
        .unwrap_or_else(|e| unreachable!("a chain only holds valid fractions: {e}"))
}

/// Averaged posteriors of every subject over `n_samples` evenly spaced samples of
/// `model`, then the most probable subtype and stage (first maximum on ties), on CPU
/// threads. The result does not depend on the thread count.
pub fn stage_subjects<M: SustainModel>(
    lik: &Arc<M>,
    model: &SubtypeModel,
    ids: &[String],
    n_samples: usize,
    threads: usize,
) -> Vec<SubjectStage> {
    let mut eval = crate::executor::batch_evaluator(lik, threads);
    stage_subjects_with(&mut *eval, model, ids, n_samples)
        .unwrap_or_else(|e| unreachable!("the CPU stages any model of its own events: {e}"))
}

/// As [`stage_subjects`], with the posteriors summed by any batch evaluator (the GPU's
/// `stage_posteriors` shader, a CPU evaluator). Fails when the evaluator does (a
/// device error, a model of other events).
pub fn stage_subjects_with(
    eval: &mut dyn BatchEvaluator,
    model: &SubtypeModel,
    ids: &[String],
    n_samples: usize,
) -> Result<Vec<SubjectStage>, ModelError> {
    let picks = evenly_spaced(&model.samples, n_samples);
    let mixtures: Vec<Mixture> = picks
        .iter()
        .map(|&p| sample_mixture(eval.events(), &model.samples, p))
        .collect();
    let mut joint = eval.posterior_sums(&mixtures)?;
    joint /= picks.len().max(1) as f64;
    let subtype = joint.sum_axis(Axis(1));
    let (m, ns, k) = joint.dim();
    Ok((0..m)
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
        .collect())
}
