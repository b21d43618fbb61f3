//! Checkpoints: each finished subtype count (and fold) written atomically with a
//! fingerprint of data and settings, so a rerun resumes and a changed input is
//! refused rather than silently mixed in. Chains that run until they converge
//! also save their state after every round ([`crate::round_checkpoint`]).

use crate::config::FitConfig;
use crate::em::MlFit;
use crate::fit::FitInput;
use crate::results::SubtypeModel;
use crate::{CheckpointError, Error, IoAction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use sustain_model::{EventOrder, Mixture, Sequence};

/// SHA-256 over the data (bit patterns), the model and every result-changing setting.
pub fn fingerprint(input: &FitInput, config: &FitConfig) -> String {
    fingerprint_of(&identity(input), config)
}

/// What a z-score fit's fingerprint hashes of its data and model: the data's bit
/// patterns, then the biomarker names, `z_vals` and `z_max`.
pub fn identity(input: &FitInput) -> Vec<u8> {
    let mut bytes: Vec<u8> = input
        .data
        .values()
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    bytes.extend(
        format!(
            "{:?}{:?}{:?}",
            input.biomarkers,
            input.events.z_vals(),
            input.events.z_max_all()
        )
        .bytes(),
    );
    bytes
}

/// SHA-256 over a model's identity bytes ([`identity`] for z-scores) and every
/// result-changing setting.
pub fn fingerprint_of(identity: &[u8], config: &FitConfig) -> String {
    let mut h = Sha256::new();
    h.update(format!("sustain-fit v{}\n", crate::results::SCHEMA_VERSION));
    h.update(identity);
    h.update(serde_json::to_string(config).unwrap_or_default());
    format!("{:x}", h.finalize())
}

/// [`fingerprint_of`] with the budgets of chains that run until they converge
/// left out: a run continued with another budget is the same run, further on.
pub fn resume_fingerprint_of(identity: &[u8], config: &FitConfig) -> String {
    let mut config = config.clone();
    if let Some(u) = &mut config.until_converged {
        u.max_iterations = 0;
        u.max_seconds = None;
    }
    fingerprint_of(identity, &config)
}

/// The fingerprints a checkpoint is checked against: of every setting, and
/// without the budgets ([`resume_fingerprint_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// [`fingerprint_of`].
    pub full: String,
    /// [`resume_fingerprint_of`].
    pub resume: String,
}

impl Fingerprints {
    /// Both fingerprints of `identity` under `config`.
    pub fn of(identity: &[u8], config: &FitConfig) -> Self {
        Self {
            full: fingerprint_of(identity, config),
            resume: resume_fingerprint_of(identity, config),
        }
    }
}

/// How a checkpoint's inputs compare with this run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The same data and settings.
    Same,
    /// The same but for the budgets of chains that run until they converge.
    OtherBudget,
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then
/// a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_beside(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Where `path` is written before it is renamed into place: `.NAME.tmpPID` in the
/// same folder (so the rename never crosses file systems).
fn temp_beside(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp{}", std::process::id()))
}

/// What every checkpoint file holds: whose inputs it is from, and the E-M optimum
/// of its subtype count.
#[derive(Serialize, Deserialize)]
struct SavedEmOptimum {
    fingerprint: String,
    /// [`resume_fingerprint_of`] (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume_fingerprint: Option<String>,
    n_subtypes: usize,
    em_sequences: Vec<Vec<usize>>,
    em_f: Vec<f64>,
    em_loglike: f64,
}

impl SavedEmOptimum {
    fn new(k: usize, fingerprint: &Fingerprints, em: &MlFit) -> Self {
        Self {
            fingerprint: fingerprint.full.clone(),
            resume_fingerprint: Some(fingerprint.resume.clone()),
            n_subtypes: k,
            em_sequences: em.mixture.sequences().iter().map(|s| s.order()).collect(),
            em_f: em.mixture.fractions().to_vec(),
            em_loglike: em.loglike,
        }
    }
    /// The optimum, validated against `events`, and how its inputs compare with
    /// this run's; refused if made from other inputs.
    fn fit(
        self,
        path: &Path,
        fingerprint: &Fingerprints,
        events: &EventOrder,
    ) -> Result<(MlFit, Match), Error> {
        let matched = if self.fingerprint == fingerprint.full {
            Match::Same
        } else {
            let resume = self
                .resume_fingerprint
                .as_deref()
                .unwrap_or(&self.fingerprint);
            check_fingerprint(path, resume, &fingerprint.resume)?;
            Match::OtherBudget
        };
        // An edited or damaged file: the message names it.
        let damaged = |why| CheckpointError::Damaged {
            path: path.to_path_buf(),
            why,
        };
        let seqs = self
            .em_sequences
            .iter()
            .map(|s| Sequence::new(events, s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(damaged)?;
        let fit = MlFit {
            mixture: Mixture::new(seqs, self.em_f).map_err(damaged)?,
            loglike: self.em_loglike,
        };
        Ok((fit, matched))
    }
}

/// A finished subtype count.
#[derive(Serialize, Deserialize)]
struct Saved {
    #[serde(flatten)]
    em: SavedEmOptimum,
    model: SubtypeModel,
}

/// The E-M optimum of a subtype count, saved before its chains run.
#[derive(Serialize, Deserialize)]
struct SavedEm {
    #[serde(flatten)]
    em: SavedEmOptimum,
    em_s: f64,
}

/// Writes `value` as JSON to `path` atomically.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)?;
    write_atomic(path, &bytes).map_err(|source| Error::Io {
        action: IoAction::Write,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a checkpoint file if there is one.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| {
        CheckpointError::Unreadable {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub(crate) dir: PathBuf,
}

impl Checkpoints {
    /// Uses (and creates) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: IoAction::Create,
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }
    /// `checkpoint{part}_k{k}.{ext}` in the folder; `part` is "" (subtype count
    /// `k`'s model), "_em" (its E-M optimum) or "_rounds" (its chains between
    /// rounds).
    pub(crate) fn file(&self, part: &str, k: usize, ext: &str) -> PathBuf {
        self.dir.join(format!("checkpoint{part}_k{k}.{ext}"))
    }
    /// Writes the binary samples file of `part` of subtype count `k` with
    /// `write(path, temporary path)`, which renames the temporary file into place.
    pub(crate) fn write_samples<T>(
        &self,
        part: &str,
        k: usize,
        write: impl FnOnce(&Path, &Path) -> std::io::Result<T>,
    ) -> Result<T, Error> {
        let npz = self.file(part, k, "npz");
        write(&npz, &temp_beside(&npz)).map_err(|source| Error::Io {
            action: IoAction::Write,
            path: npz,
            source,
        })
    }
    /// Saves subtype count `k`.
    pub fn save(
        &self,
        k: usize,
        fingerprint: &Fingerprints,
        model: &SubtypeModel,
        em: &MlFit,
    ) -> Result<(), Error> {
        // The samples first, in a binary file beside the JSON that names them.
        let file = self.write_samples("", k, |npz, tmp| {
            crate::samples_file::write(npz, tmp, &[&model.samples])
        })?;
        let samples = crate::samples_file::reference(&model.samples, &file);
        let saved = Saved {
            em: SavedEmOptimum::new(k, fingerprint, em),
            model: crate::samples_file::with_samples(model, samples),
        };
        write_json(&self.file("", k, "json"), &saved)
    }
    /// Saves the E-M optimum of subtype count `k` and its wall time (seconds), so a
    /// rerun interrupted before `k`'s chains finish does not redo its E-M.
    pub fn save_em(
        &self,
        k: usize,
        fingerprint: &Fingerprints,
        em: &MlFit,
        em_s: f64,
    ) -> Result<(), Error> {
        let saved = SavedEm {
            em: SavedEmOptimum::new(k, fingerprint, em),
            em_s,
        };
        write_json(&self.file("_em", k, "json"), &saved)
    }
    /// Loads the E-M optimum of subtype count `k` and its wall time if saved
    /// (budgets of chains do not change it); refuses one made from other inputs.
    pub fn load_em(
        &self,
        k: usize,
        fingerprint: &Fingerprints,
        events: &EventOrder,
    ) -> Result<Option<(MlFit, f64)>, Error> {
        let path = self.file("_em", k, "json");
        let Some(saved) = read_json::<SavedEm>(&path)? else {
            return Ok(None);
        };
        let (fit, _) = saved.em.fit(&path, fingerprint, events)?;
        Ok(Some((fit, saved.em_s)))
    }
    /// Loads subtype count `k` if saved, with whether it was fitted with this
    /// run's budgets; refuses one made from other inputs.
    pub(crate) fn load(
        &self,
        k: usize,
        fingerprint: &Fingerprints,
        events: &EventOrder,
    ) -> Result<Option<(SubtypeModel, MlFit, Match)>, Error> {
        let path = self.file("", k, "json");
        let Some(saved) = read_json::<Saved>(&path)? else {
            return Ok(None);
        };
        let (fit, matched) = saved.em.fit(&path, fingerprint, events)?;
        // Samples in the binary file it names (or inline, in older checkpoints).
        let mut models = [saved.model];
        crate::samples_file::load(&mut models, &self.dir).map_err(|why| {
            Error::Checkpoint(CheckpointError::Samples {
                path: path.clone(),
                why,
            })
        })?;
        let [model] = models;
        Ok(Some((model, fit, matched)))
    }
}

/// Refuses a checkpoint made from other data or settings.
pub(crate) fn check_fingerprint(path: &Path, saved: &str, fingerprint: &str) -> Result<(), Error> {
    if saved == fingerprint {
        return Ok(());
    }
    Err(CheckpointError::Foreign {
        path: path.to_path_buf(),
        saved: saved.to_string(),
        expected: fingerprint.to_string(),
    }
    .into())
}
