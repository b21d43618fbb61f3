//! Results as plain serde types with a schema version (documented in
//! `docs/formats.md`).

use crate::config::FitConfig;
use serde::{Deserialize, Serialize};
use sustain_sampler::chain_summary::{ChainSummary, Disagreement};
use sustain_sampler::{Diagnostics, MergedSamples};

/// Version of the results schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One event as written in results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Biomarker name.
    pub biomarker: String,
    /// Threshold.
    pub z: f64,
}

/// Wall times of one subtype count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// E-M (start points and splits), seconds.
    pub em_s: f64,
    /// Tuning and chains, seconds.
    pub mcmc_s: f64,
    /// Iterations per second of each chain.
    pub mcmc_iterations_per_s: Vec<f64>,
}

/// The fit of one subtype count. Subtypes are numbered by descending mean fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtypeModel {
    /// Number of subtypes.
    pub n_subtypes: usize,
    /// Maximum-likelihood sequences (event indices, first to last), over E-M and all samples.
    pub ml_sequences: Vec<Vec<usize>>,
    /// Maximum-likelihood fractions.
    pub ml_f: Vec<f64>,
    /// Maximum log-likelihood.
    pub ml_loglike: f64,
    /// The E-M optimum (same subtype numbering).
    pub em_sequences: Vec<Vec<usize>>,
    /// E-M fractions.
    pub em_f: Vec<f64>,
    /// E-M log-likelihood.
    pub em_loglike: f64,
    /// Mean fractions over merged samples.
    pub mean_f: Vec<f64>,
    /// Convergence diagnostics.
    pub diagnostics: Diagnostics,
    /// `pvd[s][e][k]`: fraction of merged samples with event `e` at position `k`.
    pub pvd: Vec<Vec<Vec<f64>>>,
    /// Wall times.
    pub timing: Timing,
    /// Step sizes after tuning.
    pub steps: sustain_sampler::StepSizes,
    /// The merged samples (compact traces).
    pub samples: MergedSamples,
    /// How chains that ran until they converged went: rounds, iterations per
    /// chain, why they stopped (none for a fixed length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convergence: Option<crate::rounds::Convergence>,
    /// Each chain's mean fractions and event positions, its subtypes matched to
    /// the merged ones (absent from older files: empty).
    #[serde(default)]
    pub chains: Vec<ChainSummary>,
    /// Chains that put a subtype's events elsewhere than the largest group of
    /// chains that agree (empty when the event positions converged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<Disagreement>,
    /// What is wrong when the chains did not converge, in words, with what to do
    /// (events numbered from 1 as in `events`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nonconvergence: Vec<String>,
}

/// Which model family a fit used, with its parameters: results.json's `"model"`,
/// tagged by `"family"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelDescriptor {
    /// The z-score model (`z_vals`, `z_max`, as at the top level of the file).
    Zscore {
        /// Thresholds per biomarker (0 = no event).
        z_vals: Vec<Vec<f64>>,
        /// The value each biomarker reaches at the end of the disease.
        z_max: Vec<f64>,
    },
    /// The event-based model (one event per biomarker).
    Mixture,
    /// The ordinal model.
    Ordinal {
        /// Scores of each biomarker's events (0 = no event).
        score_vals: Vec<Vec<f64>>,
    },
    /// The mixed-type model: z-scored biomarkers first, then ordinal ones, then
    /// event ones (pySuStaIn `MixedTypeSustain`).
    Mixed {
        /// Thresholds of the z-scored biomarkers (0 = no event).
        z_vals: Vec<Vec<f64>>,
        /// `z_max` of the z-scored biomarkers.
        z_max: Vec<f64>,
        /// Scores of the ordinal biomarkers (0 = no event).
        score_vals: Vec<Vec<f64>>,
        /// Number of event biomarkers.
        n_event: usize,
    },
    /// A family defined outside this project (through the model traits).
    Other {
        /// Its name.
        name: String,
    },
}

impl ModelDescriptor {
    /// The family's name, as results.json's `"family"` spells it (`zscore`,
    /// `mixture`, `ordinal`, `mixed`; an outside family's own name).
    pub fn family(&self) -> &str {
        match self {
            ModelDescriptor::Zscore { .. } => "zscore",
            ModelDescriptor::Mixture => "mixture",
            ModelDescriptor::Ordinal { .. } => "ordinal",
            ModelDescriptor::Mixed { .. } => "mixed",
            ModelDescriptor::Other { name } => name,
        }
    }
}

/// A whole fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitResult {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// Biomarker names.
    pub biomarkers: Vec<String>,
    /// The model family and its parameters. Files written before this field have
    /// none: their `z_vals` and `z_max` describe a z-score model
    /// ([`FitResult::model_descriptor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelDescriptor>,
    /// `z_vals` of the model (biomarkers x levels, 0 = no event).
    pub z_vals: Vec<Vec<f64>>,
    /// `z_max` of the model.
    pub z_max: Vec<f64>,
    /// Events by index.
    pub events: Vec<EventInfo>,
    /// Settings of the run.
    pub settings: FitConfig,
    /// Fingerprint of the data and settings.
    pub fingerprint: String,
    /// One model per subtype count, 1..=max.
    pub models: Vec<SubtypeModel>,
}

impl FitResult {
    /// The model family and parameters, also for files written before
    /// [`FitResult::model`] existed (a z-score model from `z_vals` and `z_max`).
    pub fn model_descriptor(&self) -> ModelDescriptor {
        self.model
            .clone()
            .unwrap_or_else(|| ModelDescriptor::Zscore {
                z_vals: self.z_vals.clone(),
                z_max: self.z_max.clone(),
            })
    }
}

/// One subject's subtype and stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectStage {
    /// Subject id.
    pub id: String,
    /// Most probable subtype (0-based, numbered as in `ml_sequences`).
    pub ml_subtype: usize,
    /// Its probability.
    pub prob_ml_subtype: f64,
    /// Most probable stage within that subtype.
    pub ml_stage: usize,
    /// Its probability (joint with the subtype, as the reference reports).
    pub prob_ml_stage: f64,
}

#[cfg(test)]
mod tests {
    use super::ModelDescriptor;

    /// `family()` names each built-in family as results.json tags it.
    #[test]
    fn family_names_match_the_results_tag() {
        let descriptors = [
            ModelDescriptor::Zscore {
                z_vals: vec![vec![1.0]],
                z_max: vec![2.0],
            },
            ModelDescriptor::Mixture,
            ModelDescriptor::Ordinal {
                score_vals: vec![vec![1.0]],
            },
            ModelDescriptor::Mixed {
                z_vals: Vec::new(),
                z_max: Vec::new(),
                score_vals: Vec::new(),
                n_event: 1,
            },
        ];
        for d in descriptors {
            let json = serde_json::to_value(&d).unwrap();
            assert_eq!(json["family"], d.family(), "{d:?}");
        }
        let other = ModelDescriptor::Other { name: "toy".into() };
        assert_eq!(other.family(), "toy");
    }
}
