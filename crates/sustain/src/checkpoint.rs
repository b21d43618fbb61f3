//! Checkpoints: each finished subtype count (and fold) written atomically with a
//! fingerprint of data and settings, so a rerun resumes and a changed input is
//! refused rather than silently mixed in.

use crate::config::FitConfig;
use crate::em::MlFit;
use crate::fit::FitInput;
use crate::results::SubtypeModel;
use crate::Error;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use sustain_model::{EventSet, Mixture, Sequence};

/// SHA-256 over the data (bit patterns), the model and every result-changing setting.
pub fn fingerprint(input: &FitInput, config: &FitConfig) -> String {
    let mut h = Sha256::new();
    h.update(format!("sustain-fit v{}\n", crate::results::SCHEMA_VERSION));
    for v in input.data.values().iter() {
        h.update(v.to_bits().to_le_bytes());
    }
    h.update(format!(
        "{:?}{:?}{:?}",
        input.biomarkers,
        input.events.z_vals(),
        input.events.z_max_all()
    ));
    h.update(serde_json::to_string(config).unwrap_or_default());
    format!("{:x}", h.finalize())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then
/// a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[derive(Serialize, Deserialize)]
struct Saved {
    fingerprint: String,
    n_subtypes: usize,
    em_sequences: Vec<Vec<usize>>,
    em_f: Vec<f64>,
    em_loglike: f64,
    model: SubtypeModel,
}

/// The E-M optimum of one subtype count, saved before its chains run.
#[derive(Serialize, Deserialize)]
struct SavedEm {
    fingerprint: String,
    n_subtypes: usize,
    em_sequences: Vec<Vec<usize>>,
    em_f: Vec<f64>,
    em_loglike: f64,
    em_s: f64,
}

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// Uses (and creates) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self { dir })
    }
    fn path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("checkpoint_k{k}.json"))
    }
    /// Saves subtype count `k`.
    pub fn save(
        &self,
        k: usize,
        fingerprint: &str,
        model: &SubtypeModel,
        em: &MlFit,
    ) -> Result<(), Error> {
        let saved = Saved {
            fingerprint: fingerprint.to_string(),
            n_subtypes: k,
            em_sequences: em.mixture.sequences().iter().map(|s| s.order()).collect(),
            em_f: em.mixture.fractions().to_vec(),
            em_loglike: em.loglike,
            model: model.clone(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| Error::Io(e.to_string()))?;
        let path = self.path(k);
        write_atomic(&path, &bytes)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
    }
    fn em_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("checkpoint_em_k{k}.json"))
    }
    /// Saves the E-M optimum of subtype count `k` and its wall time (seconds), so a
    /// rerun interrupted before `k`'s chains finish does not redo its E-M.
    pub fn save_em(&self, k: usize, fingerprint: &str, em: &MlFit, em_s: f64) -> Result<(), Error> {
        let saved = SavedEm {
            fingerprint: fingerprint.to_string(),
            n_subtypes: k,
            em_sequences: em.mixture.sequences().iter().map(|s| s.order()).collect(),
            em_f: em.mixture.fractions().to_vec(),
            em_loglike: em.loglike,
            em_s,
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| Error::Io(e.to_string()))?;
        let path = self.em_path(k);
        write_atomic(&path, &bytes)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
    }
    /// Loads the E-M optimum of subtype count `k` and its wall time if saved;
    /// refuses one made from other inputs.
    pub fn load_em(
        &self,
        k: usize,
        fingerprint: &str,
        events: &EventSet,
    ) -> Result<Option<(MlFit, f64)>, Error> {
        let path = self.em_path(k);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let saved: SavedEm = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Checkpoint(format!("{} is not a valid checkpoint: {e}", path.display()))
        })?;
        check_fingerprint(&path, &saved.fingerprint, fingerprint)?;
        let fit = ml_fit(events, &saved.em_sequences, saved.em_f, saved.em_loglike)?;
        Ok(Some((fit, saved.em_s)))
    }
    /// Loads subtype count `k` if saved; refuses one made from other inputs.
    pub fn load(
        &self,
        k: usize,
        fingerprint: &str,
        events: &EventSet,
    ) -> Result<Option<(SubtypeModel, MlFit)>, Error> {
        let path = self.path(k);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Checkpoint(format!("{} is not a valid checkpoint: {e}", path.display()))
        })?;
        check_fingerprint(&path, &saved.fingerprint, fingerprint)?;
        let fit = ml_fit(events, &saved.em_sequences, saved.em_f, saved.em_loglike)?;
        Ok(Some((saved.model, fit)))
    }
}

/// Refuses a checkpoint made from other data or settings.
fn check_fingerprint(path: &Path, saved: &str, fingerprint: &str) -> Result<(), Error> {
    if saved == fingerprint {
        return Ok(());
    }
    Err(Error::Checkpoint(format!(
        "{} was made from different data or settings (fingerprint {} vs {}); use another --out folder or delete it",
        path.display(),
        &saved[..12.min(saved.len())],
        &fingerprint[..12.min(fingerprint.len())]
    )))
}

/// A saved E-M optimum, validated against `events`.
fn ml_fit(
    events: &EventSet,
    sequences: &[Vec<usize>],
    f: Vec<f64>,
    loglike: f64,
) -> Result<MlFit, Error> {
    let seqs = sequences
        .iter()
        .map(|s| Sequence::new(events, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MlFit {
        mixture: Mixture::new(seqs, f)?,
        loglike,
    })
}
