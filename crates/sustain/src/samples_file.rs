//! MCMC samples in a NumPy `.npz` file beside a results file (results.json, a
//! checkpoint), so that the JSON keeps summaries and stays small. Per subtype count
//! K the file holds the distinct states of every chain, chain after chain, each
//! with how many consecutive iterations it was held (`docs/formats.md`):
//! `k{K}_chain` (`<i4`, the chain's place in `samples.chains`), `k{K}_runs`
//! (`<u4`), `k{K}_sequences` (`|u1`, or `<u2` beyond 256 events: states x subtypes
//! x events, the event at each position), `k{K}_fractions` (`<f8`, states x
//! subtypes), `k{K}_loglike` (`<f8`, states).
//! The JSON names the file and its SHA-256, so a file replaced since is refused.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sustain_sampler::{ChainRun, MergedSamples, SamplesFile, Trace};

use crate::npz::{Dtype, NpzWriter};
use crate::npz_file::NpzFile;
use crate::results::SubtypeModel;

/// The samples file of a fit folder, beside results.json.
pub const SAMPLES_FILE: &str = "samples.npz";

/// The archive comment that marks a samples file as this program's.
pub const MARK: &str = "written by sustain";

/// A samples file that cannot be used: which file, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplesError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for SamplesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Writes the traces of `models` (one entry per subtype count) to `path`: first to
/// `tmp` (in the same folder), then renamed. Returns the reference the JSON keeps.
pub fn write(path: &Path, tmp: &Path, models: &[&MergedSamples]) -> io::Result<SamplesFile> {
    let traces: Vec<Vec<&Trace>> = models
        .iter()
        .map(|m| m.chains.iter().map(|c| &c.trace).collect())
        .collect();
    write_file(path, tmp, |tmp| write_to(tmp, &traces))
}

/// Writes a file to `path` with `fill` (given `tmp`, in the same folder), then
/// renames it; returns its name and SHA-256, for the JSON that names it.
pub(crate) fn write_file(
    path: &Path,
    tmp: &Path,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<SamplesFile> {
    let written = fill(tmp).and_then(|()| sha256_of(tmp));
    let sha256 = match written {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
    };
    std::fs::rename(tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(tmp);
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(SamplesFile { name, sha256 })
}

fn write_to(tmp: &Path, models: &[Vec<&Trace>]) -> io::Result<()> {
    let mut w = NpzWriter::create(tmp)?;
    for traces in models {
        let Some(first) = traces.first() else {
            continue;
        };
        let (k, n) = (first.n_subtypes, first.n_events);
        if traces.iter().any(|t| t.n_subtypes != k || t.n_events != n) {
            return Err(io::Error::other("chains of one model differ in shape"));
        }
        let states: usize = traces.iter().map(|t| t.n_states()).sum();
        let name = |what: &str| format!("k{k}_{what}");
        w.array(&name("chain"), Dtype::I32, &[states], |o| {
            for (c, t) in traces.iter().enumerate() {
                let c = i32::try_from(c).map_err(io::Error::other)?.to_le_bytes();
                for _ in 0..t.n_states() {
                    o.write_all(&c)?;
                }
            }
            Ok(())
        })?;
        w.array(&name("runs"), Dtype::U32, &[states], |o| {
            write_chains(o, traces, |t| &t.runs, u32::to_le_bytes)
        })?;
        let wide = n > 256;
        let dtype = if wide { Dtype::U16 } else { Dtype::U8 };
        w.array(&name("sequences"), dtype, &[states, k, n], |o| {
            let mut bytes = Vec::with_capacity(2 * k * n);
            for t in traces.iter() {
                let mut written = Ok(());
                t.for_each_state(|_, _, orders| {
                    if written.is_err() {
                        return;
                    }
                    bytes.clear();
                    for &e in orders {
                        if wide {
                            bytes.extend_from_slice(&e.to_le_bytes());
                        } else {
                            bytes.push(e as u8);
                        }
                    }
                    written = o.write_all(&bytes);
                });
                written?;
            }
            Ok(())
        })?;
        w.array(&name("fractions"), Dtype::F64, &[states, k], |o| {
            write_chains(o, traces, |t| &t.fractions, f64::to_le_bytes)
        })?;
        w.array(&name("loglike"), Dtype::F64, &[states], |o| {
            write_chains(o, traces, |t| &t.loglike, f64::to_le_bytes)
        })?;
    }
    w.finish(MARK)
}

/// Writes `values` of every chain, one chain after another, each value as the
/// bytes `le` gives (little-endian).
fn write_chains<T: Copy, const N: usize>(
    o: &mut dyn io::Write,
    traces: &[&Trace],
    values: impl Fn(&Trace) -> &[T],
    le: impl Fn(T) -> [u8; N],
) -> io::Result<()> {
    for t in traces {
        for &v in values(t) {
            o.write_all(&le(v))?;
        }
    }
    Ok(())
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The samples as a JSON file that names `file` keeps them: burn-in, thinning and
/// each chain's index, acceptance and wall time, without the traces.
pub fn reference(samples: &MergedSamples, file: &SamplesFile) -> MergedSamples {
    MergedSamples {
        chains: samples
            .chains
            .iter()
            .map(|c| ChainRun {
                index: c.index,
                trace: Trace::default(),
                acceptance: c.acceptance,
                wall_s: c.wall_s,
            })
            .collect(),
        burn_in: samples.burn_in,
        thin: samples.thin,
        file: Some(file.clone()),
    }
}

/// Most positional-variance cells (subtypes x events x positions) results.json
/// keeps inline: about 0.5 MB of JSON. A larger table (e.g. 3 subtypes of 120
/// events) is left out of the JSON (`"pvd": []`) and recomputed from the samples
/// when the fit is read, so that results.json stays under 1 MB.
pub const PVD_INLINE_MAX: usize = 40_000;

/// `model` as results.json keeps it when its samples are in `file`: the samples
/// named, not inline, and the positional variance left out when it has more than
/// [`PVD_INLINE_MAX`] cells ([`load`] recomputes it).
pub fn shell(model: &SubtypeModel, file: &SamplesFile) -> SubtypeModel {
    let mut shell = with_samples(model, reference(&model.samples, file));
    let cells: usize = model.pvd.iter().flatten().map(Vec::len).sum();
    if cells > PVD_INLINE_MAX {
        shell.pvd = Vec::new();
    }
    shell
}

/// `model` with `samples` in place of its own (every other field copied; listed
/// one by one so that a new field of [`SubtypeModel`] is not forgotten here).
pub fn with_samples(model: &SubtypeModel, samples: MergedSamples) -> SubtypeModel {
    SubtypeModel {
        n_subtypes: model.n_subtypes,
        ml_sequences: model.ml_sequences.clone(),
        ml_f: model.ml_f.clone(),
        ml_loglike: model.ml_loglike,
        em_sequences: model.em_sequences.clone(),
        em_f: model.em_f.clone(),
        em_loglike: model.em_loglike,
        mean_f: model.mean_f.clone(),
        diagnostics: model.diagnostics.clone(),
        pvd: model.pvd.clone(),
        timing: model.timing.clone(),
        steps: model.steps.clone(),
        samples,
        convergence: model.convergence.clone(),
        chains: model.chains.clone(),
        disagreements: model.disagreements.clone(),
        nonconvergence: model.nonconvergence.clone(),
    }
}

/// Reads the traces of every model whose samples name a file (in `dir`), checking
/// the file against the hash the JSON keeps; models with their traces inline (files
/// written before samples files) are left as they are. Each file is read once.
pub fn load(models: &mut [SubtypeModel], dir: &Path) -> Result<(), SamplesError> {
    let mut open: Option<(SamplesFile, PathBuf, NpzFile)> = None;
    for model in models.iter_mut() {
        let Some(file) = model.samples.file.clone() else {
            continue;
        };
        if open.as_ref().is_none_or(|(f, _, _)| *f != file) {
            let path = dir.join(&file.name);
            let npz = open_checked(&path, &file)?;
            open = Some((file, path, npz));
        }
        let Some((_, path, npz)) = &open else {
            continue;
        };
        let fail = |message: String| SamplesError {
            path: path.clone(),
            message,
        };
        fill(&mut model.samples, model.n_subtypes, npz).map_err(|why| {
            fail(format!(
                "not a valid samples file: model of {} subtype(s): {why}",
                model.n_subtypes
            ))
        })?;
    }
    Ok(())
}

/// Reads the samples of a fit read from the results file `results_path` (its
/// samples.npz beside it; results with inline samples pass unchanged), and
/// recomputes a positional variance left out of the JSON ([`shell`]): what a
/// program that reads results.json itself calls before staging with the samples.
pub fn load_fit(
    result: &mut crate::results::FitResult,
    results_path: &Path,
) -> Result<(), SamplesError> {
    let dir = results_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load(&mut result.models, dir)?;
    restore_pvd(&mut result.models);
    Ok(())
}

/// Recomputes the positional variance of models whose results.json left it out
/// ([`shell`]), from their (loaded) samples: the same function of the samples that
/// made it. Checkpoints always keep theirs, so one without is an edit, refused there.
pub fn restore_pvd(models: &mut [SubtypeModel]) {
    for model in models {
        if model.pvd.is_empty() {
            model.pvd = model.samples.position_frequencies();
        }
    }
}

/// [`load`] of one model's samples (K = `k`), for readers of the JSON alone.
pub fn load_one(samples: &mut MergedSamples, k: usize, dir: &Path) -> Result<(), SamplesError> {
    let Some(file) = samples.file.clone() else {
        return Ok(());
    };
    let path = dir.join(&file.name);
    let npz = open_checked(&path, &file)?;
    fill(samples, k, &npz).map_err(|why| SamplesError {
        path,
        message: format!("not a valid samples file: model of {k} subtype(s): {why}"),
    })
}

/// Reads `path`, refusing a name that leaves the folder, a file whose hash is not
/// `file`'s, and a file that is not a zip.
pub(crate) fn open_checked(path: &Path, file: &SamplesFile) -> Result<NpzFile, SamplesError> {
    let fail = |message: String| SamplesError {
        path: path.to_path_buf(),
        message,
    };
    let plain = Path::new(&file.name)
        .file_name()
        .is_some_and(|n| n == file.name.as_str())
        && file.name != ".."
        && file.name != ".";
    if !plain {
        return Err(fail(
            "the samples file must be a file name in the results file's folder".into(),
        ));
    }
    // Hashed and read as streams: a large file is never held whole.
    let sha256 = sha256_of(path).map_err(|e| fail(format!("cannot read the samples: {e}")))?;
    if sha256 != file.sha256 {
        return Err(fail(format!(
            "not the samples file this results file names: its SHA-256 is {}, the results \
             file names {} (replaced, damaged or truncated?)",
            &sha256[..12],
            &file.sha256[..12.min(file.sha256.len())]
        )));
    }
    NpzFile::open(path).map_err(fail)
}

/// Rebuilds the traces of `samples` (K = `k`) from the arrays `k{K}_*` of `npz`.
fn fill(samples: &mut MergedSamples, k: usize, npz: &NpzFile) -> Result<(), String> {
    let name = |what: &str| format!("k{k}_{what}");
    let (chain, runs) = (npz.read(&name("chain"))?, npz.read(&name("runs"))?);
    let (fractions, loglike) = (npz.read(&name("fractions"))?, npz.read(&name("loglike"))?);
    let (chain, runs) = (chain.view(), runs.view());
    let (fractions, loglike) = (fractions.view(), loglike.view());
    // The sequences, the bulk of the file, stream in one state at a time.
    let mut seqs = npz.stream(&name("sequences"))?;
    let states = chain.len();
    if seqs.shape.len() != 3 || seqs.shape[0] != states || seqs.shape[1] != k {
        return Err(format!(
            "{} has shape {:?}; want ({states}, {k}, events)",
            name("sequences"),
            seqs.shape
        ));
    }
    let n = seqs.shape[2];
    if !matches!(seqs.dtype, Dtype::U8 | Dtype::U16) {
        return Err(format!("{} is not of unsigned integers", name("sequences")));
    }
    for (a, want, what) in [
        (&runs, vec![states], "runs"),
        (&fractions, vec![states, k], "fractions"),
        (&loglike, vec![states], "loglike"),
    ] {
        if a.shape != want {
            return Err(format!(
                "{} has shape {:?}; want {want:?}",
                name(what),
                a.shape
            ));
        }
    }
    if chain.dtype != Dtype::I32 || runs.dtype != Dtype::U32 {
        return Err(format!(
            "{} or {} has another dtype",
            name("chain"),
            name("runs")
        ));
    }
    if fractions.dtype != Dtype::F64 || loglike.dtype != Dtype::F64 {
        return Err(format!(
            "{} or {} is not float64",
            name("fractions"),
            name("loglike")
        ));
    }
    let n_chains = samples.chains.len();
    let mut traces: Vec<Trace> = (0..n_chains).map(|_| Trace::new(k, n)).collect();
    let mut last = 0i64;
    let mut orders = vec![0u16; k * n];
    let mut seen = vec![false; n];
    let wide = seqs.dtype == Dtype::U16;
    let mut row = vec![0u8; k * n * seqs.dtype.size()];
    for t in 0..states {
        seqs.read(&mut row)?;
        let seq_at = |i: usize| -> usize {
            if wide {
                usize::from(u16::from_le_bytes([row[2 * i], row[2 * i + 1]]))
            } else {
                usize::from(row[i])
            }
        };
        let c = chain.int(t);
        if c < last || c >= n_chains as i64 {
            return Err(format!(
                "{}[{t}] is {c}: chains run 0..{n_chains} in order",
                name("chain")
            ));
        }
        last = c;
        for s in 0..k {
            seen.iter_mut().for_each(|x| *x = false);
            for p in 0..n {
                let e = seq_at(s * n + p);
                if e >= n || seen[e] {
                    return Err(format!(
                        "state {t}, subtype {s}: the sequence is not an order of the {n} events \
                         (event {e} at position {p})"
                    ));
                }
                seen[e] = true;
                orders[s * n + p] = e as u16;
            }
        }
        let f: Vec<f64> = (0..k).map(|s| fractions.f64(t * k + s)).collect();
        let by_subtype: Vec<&[u16]> = orders.chunks_exact(n.max(1)).collect();
        traces[c as usize].push_state(&by_subtype, &f, loglike.f64(t), runs.int(t) as u32);
    }
    seqs.finish()?;
    for (run, trace) in samples.chains.iter_mut().zip(traces) {
        run.trace = trace;
    }
    samples.file = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sustain_model::{EventOrder, Mixture, Sequence};

    /// Two chains of 2 subtypes over `n` events with a few distinct states each.
    fn samples(n: usize) -> MergedSamples {
        let order = EventOrder::new(&(0..n).collect::<Vec<_>>(), n).unwrap();
        let chains = (0..2)
            .map(|c| {
                let mut trace = Trace::new(2, n);
                for i in 0..5usize {
                    let mut a: Vec<usize> = (0..n).collect();
                    a.rotate_left((i + c) % n);
                    let mut b: Vec<usize> = (0..n).rev().collect();
                    b.swap(0, i % n);
                    let seqs = vec![
                        Sequence::new(&order, &a).unwrap(),
                        Sequence::new(&order, &b).unwrap(),
                    ];
                    let f = 0.1 + 0.1 * i as f64;
                    let m = Mixture::new(seqs, vec![f, 1.0 - f]).unwrap();
                    trace.record(&m, -10.0 - i as f64 / 3.0, i % 2 == 0 || c == 1);
                }
                ChainRun {
                    index: c,
                    trace,
                    acceptance: 0.25,
                    wall_s: 1.5,
                }
            })
            .collect();
        MergedSamples {
            chains,
            burn_in: 1,
            thin: 2,
            file: None,
        }
    }

    fn model(samples: MergedSamples) -> SubtypeModel {
        let text = include_str!("../tests/data/subtype_model_shell.json");
        let mut m: SubtypeModel = serde_json::from_str(text).unwrap();
        m.samples = samples;
        m
    }

    #[test]
    fn traces_round_trip_through_the_file_to_the_bit() {
        for n in [7, 300] {
            let (dir, path) = crate::test_files::temp_file(SAMPLES_FILE);
            let full = samples(n);
            let file = write(&path, &dir.path().join(".tmp"), &[&full]).unwrap();
            assert!(!dir.path().join(".tmp").exists());
            let shell = model(reference(&full, &file));
            let json = serde_json::to_string(&shell).unwrap();
            assert!(!json.contains("\"trace\""), "{json}");
            let mut back: Vec<SubtypeModel> = vec![serde_json::from_str(&json).unwrap()];
            load(&mut back, dir.path()).unwrap();
            assert_eq!(back[0].samples, full, "{n} events");
            // Same samples, same bytes.
            let again = dir.path().join("again.npz");
            write(&again, &dir.path().join(".tmp2"), &[&full]).unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&again).unwrap()
            );
            // Whether a trace keeps positions as moves (recorded, read from the
            // file) or every state in full (read from JSON): the same bytes.
            let flat: MergedSamples =
                serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
            for (i, other) in [&flat, &back[0].samples].into_iter().enumerate() {
                let other_path = dir.path().join(format!("other{i}.npz"));
                write(&other_path, &dir.path().join(".tmp3"), &[other]).unwrap();
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    std::fs::read(&other_path).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_large_positional_variance_is_left_out_of_the_json_and_recomputed() {
        for n in [7, 300] {
            let (dir, path) = crate::test_files::temp_file(SAMPLES_FILE);
            let mut full = model(samples(n));
            full.pvd = full.samples.position_frequencies();
            let file = write(&path, &dir.path().join(".tmp"), &[&full.samples]).unwrap();
            let kept = shell(&full, &file);
            // 2 subtypes x 7 x 7 cells stay; 2 x 300 x 300 do not.
            assert_eq!(kept.pvd.is_empty(), n == 300, "{n} events");
            let json = serde_json::to_string(&kept).unwrap();
            // 180,000 cells would be megabytes of JSON.
            assert!(json.len() < 20_000, "{} bytes", json.len());
            let mut back: Vec<SubtypeModel> = vec![serde_json::from_str(&json).unwrap()];
            load(&mut back, dir.path()).unwrap();
            // A checkpoint's reader sees the table missing; a fit's reader restores it.
            assert_eq!(back[0].pvd.is_empty(), n == 300);
            restore_pvd(&mut back);
            assert_eq!(back[0], full, "{n} events");
        }
    }

    #[test]
    fn checkpoints_keep_samples_in_a_file_and_read_older_ones_inline() {
        let dir = tempfile::tempdir().unwrap();
        let cps = crate::checkpoint::Checkpoints::new(dir.path()).unwrap();
        let n = 7;
        let order = EventOrder::new(&(0..n).collect::<Vec<_>>(), n).unwrap();
        let seqs = (0..2)
            .map(|_| Sequence::new(&order, &(0..n).collect::<Vec<_>>()).unwrap())
            .collect();
        let em = crate::em::MlFit {
            mixture: Mixture::new(seqs, vec![0.5, 0.5]).unwrap(),
            loglike: -3.0,
        };
        let mut full = model(samples(n));
        full.pvd = full.samples.position_frequencies();
        let fp = crate::checkpoint::Fingerprints {
            full: "fp".into(),
            resume: "fp-resume".into(),
        };
        cps.save(2, &fp, &full, &em).unwrap();
        let json = std::fs::read_to_string(dir.path().join("checkpoint_k2.json")).unwrap();
        assert!(!json.contains("\"trace\""), "samples inline in {json}");
        assert!(dir.path().join("checkpoint_k2.npz").is_file());
        let (back, _, _) = cps.load(2, &fp, &order).unwrap().unwrap();
        assert_eq!(back, full);
        // A checkpoint written before samples files: the model inline.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["model"] = serde_json::to_value(&full).unwrap();
        std::fs::remove_file(dir.path().join("checkpoint_k2.npz")).unwrap();
        std::fs::write(dir.path().join("checkpoint_k2.json"), v.to_string()).unwrap();
        let (old, _, _) = cps.load(2, &fp, &order).unwrap().unwrap();
        assert_eq!(old, full);
    }

    #[test]
    fn a_replaced_or_truncated_file_is_refused_naming_it() {
        let (dir, path) = crate::test_files::temp_file(SAMPLES_FILE);
        let full = samples(7);
        let file = write(&path, &dir.path().join(".tmp"), &[&full]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let shell = || vec![model(reference(&full, &file))];
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = load(&mut shell(), dir.path()).unwrap_err();
        assert_eq!(e.path, path);
        assert!(e.message.contains("SHA-256"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = load(&mut shell(), dir.path()).unwrap_err();
        assert!(e.to_string().contains("cannot read the samples"), "{e}");
        // A name that leaves the folder.
        let mut m = shell();
        m[0].samples.file.as_mut().unwrap().name = "../x.npz".into();
        assert!(load(&mut m, dir.path())
            .unwrap_err()
            .message
            .contains("file name"));
        // A model the file holds no samples of.
        write(&path, &dir.path().join(".tmp"), &[&full]).unwrap();
        let mut m = shell();
        m[0].n_subtypes = 3;
        let e = load(&mut m, dir.path()).unwrap_err();
        assert!(e.message.contains("no array k3_chain"), "{e}");
    }
}
