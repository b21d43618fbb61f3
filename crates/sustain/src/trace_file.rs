//! Chains' traces as they are held in memory (key states' positions and one move
//! per subtype between them, [`sustain_sampler::StoredTrace`]) in a NumPy `.npz`
//! file, for checkpoints between rounds: several times smaller and faster to write
//! than samples.npz's every state in full. Chain `i`'s arrays are `c{i}_keys`,
//! `c{i}_key_states`, `c{i}_moves`, `c{i}_last_order` (`<u2`, `<u4`),
//! `c{i}_fractions`, `c{i}_loglike` (`<f8`) and `c{i}_runs` (`<u4`).

use crate::npz::{Dtype, NpzWriter};
use crate::npz_file::NpzFile;
use crate::samples_file::{open_checked, write_file, SamplesError, MARK};
use std::io::{self, Write};
use std::path::Path;
use sustain_sampler::{SamplesFile, StoredTrace, Trace};

/// Writes `traces` to `path` (first to `tmp` in the same folder, then renamed).
pub(crate) fn write(path: &Path, tmp: &Path, traces: &[&Trace]) -> io::Result<SamplesFile> {
    write_file(path, tmp, |tmp| {
        let mut w = NpzWriter::create(tmp)?;
        for (i, t) in traces.iter().enumerate() {
            let (keys, key_states, moves, last_order) = t.stored();
            let name = |what: &str| format!("c{i}_{what}");
            let (nk, nm, nl) = (keys.len(), moves.len(), last_order.len());
            w.array(&name("keys"), Dtype::U16, &[nk], |o| {
                u16s(o, nk, |j| keys.get(j))
            })?;
            w.array(&name("moves"), Dtype::U16, &[nm], |o| {
                u16s(o, nm, |j| moves.get(j))
            })?;
            w.array(&name("last_order"), Dtype::U16, &[nl], |o| {
                u16s(o, nl, |j| usize::from(last_order[j]))
            })?;
            w.array(&name("key_states"), Dtype::U32, &[key_states.len()], |o| {
                for &k in key_states {
                    let k = u32::try_from(k).map_err(io::Error::other)?;
                    o.write_all(&k.to_le_bytes())?;
                }
                Ok(())
            })?;
            w.array(&name("runs"), Dtype::U32, &[t.runs.len()], |o| {
                t.runs
                    .iter()
                    .try_for_each(|r| o.write_all(&r.to_le_bytes()))
            })?;
            for (what, values) in [("fractions", &t.fractions), ("loglike", &t.loglike)] {
                w.array(&name(what), Dtype::F64, &[values.len()], |o| {
                    values
                        .iter()
                        .try_for_each(|v| o.write_all(&v.to_le_bytes()))
                })?;
            }
        }
        w.finish(MARK)
    })
}

/// Writes `get(0..n)` as little-endian `u16`s.
fn u16s(o: &mut dyn Write, n: usize, get: impl Fn(usize) -> usize) -> io::Result<()> {
    (0..n).try_for_each(|j| o.write_all(&(get(j) as u16).to_le_bytes()))
}

/// Reads `n_chains` traces of `k` subtypes and `n_events` events from the file
/// `file` names in `dir`, checked against its SHA-256.
pub(crate) fn read(
    dir: &Path,
    file: &SamplesFile,
    n_chains: usize,
    (k, n_events): (usize, usize),
) -> Result<Vec<Trace>, SamplesError> {
    let path = dir.join(&file.name);
    let npz = open_checked(&path, file)?;
    (0..n_chains)
        .map(|i| read_one(&npz, i, k, n_events))
        .collect::<Result<_, String>>()
        .map_err(|message| SamplesError {
            path,
            message: format!("not a valid checkpoint samples file: {message}"),
        })
}

fn read_one(npz: &NpzFile, i: usize, k: usize, n_events: usize) -> Result<Trace, String> {
    let ints = |what: &str, want: Dtype| -> Result<Vec<i64>, String> {
        let a = npz.read(&format!("c{i}_{what}"))?;
        let a = a.view();
        if a.dtype != want {
            return Err(format!("c{i}_{what} has another dtype"));
        }
        Ok((0..a.len()).map(|j| a.int(j)).collect())
    };
    let floats = |what: &str| -> Result<Vec<f64>, String> {
        let a = npz.read(&format!("c{i}_{what}"))?;
        let a = a.view();
        if a.dtype != Dtype::F64 {
            return Err(format!("c{i}_{what} is not float64"));
        }
        Ok((0..a.len()).map(|j| a.f64(j)).collect())
    };
    let u16s = |what: &str| -> Result<Vec<u16>, String> {
        Ok(ints(what, Dtype::U16)?
            .into_iter()
            .map(|v| v as u16)
            .collect())
    };
    Trace::from_stored(StoredTrace {
        n_subtypes: k,
        n_events,
        keys: u16s("keys")?,
        key_states: ints("key_states", Dtype::U32)?
            .into_iter()
            .map(|v| v as usize)
            .collect(),
        moves: u16s("moves")?,
        last_order: u16s("last_order")?,
        fractions: floats("fractions")?,
        loglike: floats("loglike")?,
        runs: ints("runs", Dtype::U32)?
            .into_iter()
            .map(|v| v as u32)
            .collect(),
    })
    .map_err(|why| format!("chain {i}: {why}"))
}
