//! A model of any family other than z-scores, read from its files, and the one
//! place the commands (fit, cv, merge, chain shards, stage, evaluate) turn it into
//! the facade's [`ModelInput`]: each command writes one [`FamilyJob`], generic over
//! the model, instead of a branch per family.

use std::path::Path;

use sustain::fit::{prefix_input, ModelInput};
use sustain::mixed::mixed_input;
use sustain::model::SustainModel;

use crate::error::CliError;
use crate::families::{self, Family, LoadedModel};
use crate::families_mixed::{self, LoadedMixed};

/// A mixture, ordinal or mixed-type model read from its files.
pub enum LoadedFamily {
    /// A mixture or ordinal model (prefix products).
    Prefix(LoadedModel),
    /// A mixed-type model.
    Mixed(LoadedMixed),
}

/// What a command does with a loaded model of any family: `run` receives the
/// model as the facade's input and the subjects' ids.
pub trait FamilyJob<'a> {
    /// What the job returns.
    type Output;
    /// Runs the job on `input`, whose subjects are `ids`.
    fn run<M: SustainModel>(self, input: ModelInput<'a, M>, ids: &'a [String]) -> Self::Output;
}

/// Reads the model of `family` (not z-score) at `model_path`; `data` is the CSV of
/// raw scores / z-scores the family may need.
pub fn load_family(
    model_path: &Path,
    family: Family,
    data: Option<&Path>,
    id_column: Option<&str>,
) -> Result<LoadedFamily, CliError> {
    Ok(match family {
        Family::Mixed => {
            LoadedFamily::Mixed(families_mixed::load_mixed(model_path, data, id_column)?)
        }
        _ => LoadedFamily::Prefix(families::load(model_path, family, data, id_column)?),
    })
}

impl LoadedFamily {
    /// One id per subject.
    pub fn ids(&self) -> &[String] {
        match self {
            LoadedFamily::Prefix(l) => &l.ids,
            LoadedFamily::Mixed(l) => &l.ids,
        }
    }

    /// What a new model must share with a fit's to be staged under it (for
    /// messages).
    pub fn what_must_match(&self) -> &'static str {
        match self {
            LoadedFamily::Prefix(_) => "family, biomarkers, events and scores",
            LoadedFamily::Mixed(_) => "family, biomarkers, thresholds and scores",
        }
    }

    /// Runs `job` on the model.
    pub fn run<'a, J: FamilyJob<'a>>(&'a self, job: J) -> J::Output {
        match self {
            LoadedFamily::Prefix(l) => job.run(prefix_input(&l.model, &l.biomarkers), &l.ids),
            LoadedFamily::Mixed(l) => job.run(mixed_input(&l.model, &l.biomarkers), &l.ids),
        }
    }
}
