//! The chain runs of a shard file (`DIR/shards/shard_{I}of{N}.json`) kept in a
//! `.npz` beside it (`shard_{I}of{N}.npz`, arrays as in samples.npz), so that the
//! JSON stays small as results.json does.

use std::path::Path;

use sustain::fit::ShardModel;
use sustain::sampler::{MergedSamples, SamplesFile};
use sustain::samples_file;

use crate::error::CliError;
use crate::io;

/// The runs of `model` as merged samples (no burn-in or thinning: the runs raw).
fn take_runs(model: &mut ShardModel, file: Option<SamplesFile>) -> MergedSamples {
    MergedSamples {
        chains: std::mem::take(&mut model.runs),
        burn_in: 0,
        thin: 1,
        file,
    }
}

/// Writes the traces of `models` to `path` (atomically) and leaves each run in
/// `models` without its trace; returns the reference the shard file keeps.
pub fn write(models: &mut [ShardModel], path: &Path) -> Result<SamplesFile, CliError> {
    let all: Vec<MergedSamples> = models.iter_mut().map(|m| take_runs(m, None)).collect();
    let refs: Vec<&MergedSamples> = all.iter().collect();
    let file = samples_file::write(path, &io::temp_path(path), &refs)
        .map_err(|e| CliError::write(path, &e))?;
    for (model, samples) in models.iter_mut().zip(&all) {
        model.runs = samples_file::reference(samples, &file).chains;
    }
    Ok(file)
}

/// Reads the traces of every model's runs from `file` (in `dir`), as [`write`]
/// left them.
pub fn load(models: &mut [ShardModel], file: &SamplesFile, dir: &Path) -> Result<(), CliError> {
    for model in models.iter_mut() {
        if model.runs.is_empty() {
            continue;
        }
        let mut samples = take_runs(model, Some(file.clone()));
        samples_file::load_one(&mut samples, model.n_subtypes, dir)
            .map_err(|e| CliError::in_file(&e.path, e.message))?;
        model.runs = samples.chains;
    }
    Ok(())
}
