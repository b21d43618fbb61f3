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
        if saved.fingerprint != fingerprint {
            return Err(Error::Checkpoint(format!(
                "{} was made from different data or settings (fingerprint {} vs {}); use another --out folder or delete it",
                path.display(),
                &saved.fingerprint[..12.min(saved.fingerprint.len())],
                &fingerprint[..12.min(fingerprint.len())]
            )));
        }
        let seqs = saved
            .em_sequences
            .iter()
            .map(|s| Sequence::new(events, s))
            .collect::<Result<Vec<_>, _>>()?;
        let mixture = Mixture::new(seqs, saved.em_f)?;
        Ok(Some((
            saved.model,
            MlFit {
                mixture,
                loglike: saved.em_loglike,
            },
        )))
    }
}
