//! The mixed-type model (z-scored, ordinal and event biomarkers in one sequence)
//! as a [`ModelInput`] for [`crate::Fit`].

use std::sync::Arc;

use sustain_model::MixedModel;

use crate::fit::{family_input, ModelInput};
use crate::results::ModelDescriptor;

/// The descriptor results.json records of `model`.
pub fn mixed_descriptor(model: &MixedModel) -> ModelDescriptor {
    let spec = model.spec();
    ModelDescriptor::Mixed {
        z_vals: spec.z_vals.clone(),
        z_max: spec.z_max.clone(),
        score_vals: spec.score_vals.clone(),
        n_event: spec.n_event,
    }
}

/// The mixed-type model `model` (biomarkers `biomarkers`, z-scored first, then
/// ordinal, then event) as a [`ModelInput`]: each event's value is its threshold
/// (z-scored), its score (ordinal) or 1 (event).
pub fn mixed_input<'a>(
    model: &'a Arc<MixedModel>,
    biomarkers: &'a [String],
) -> ModelInput<'a, MixedModel> {
    let descriptor = mixed_descriptor(model);
    family_input(
        model,
        biomarkers,
        descriptor,
        model.event_values(),
        model.identity_bytes(),
    )
}

/// What each biomarker's event values are called under `descriptor` (one entry per
/// biomarker of `n_biomarkers`): "z" for z-scored biomarkers, "score" for ordinal
/// ones, "" for event ones (their single event has no value to show).
pub fn value_names(descriptor: &ModelDescriptor, n_biomarkers: usize) -> Vec<&'static str> {
    let one = |name| vec![name; n_biomarkers];
    match descriptor {
        ModelDescriptor::Zscore { .. } => one("z"),
        ModelDescriptor::Ordinal { .. } => one("score"),
        ModelDescriptor::Mixture | ModelDescriptor::Other { .. } => one(""),
        ModelDescriptor::Mixed {
            z_vals, score_vals, ..
        } => (0..n_biomarkers)
            .map(|b| match b {
                b if b < z_vals.len() => "z",
                b if b < z_vals.len() + score_vals.len() => "score",
                _ => "",
            })
            .collect(),
    }
}
