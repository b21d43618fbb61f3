//! Between Python's values and the facade's: errors, sample arrays, sequences.

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sustain::results::SubtypeModel;
use sustain_core::{EventOrder, Mixture, ModelError, Sequence};

/// A facade error as the Python exception a user expects: bad input or settings
/// are a `ValueError` with the message the CLI prints, Ctrl-C a
/// `KeyboardInterrupt`, anything else a `RuntimeError`.
pub fn py_err(e: sustain::Error) -> PyErr {
    match e {
        sustain::Error::Cancelled => PyKeyboardInterrupt::new_err("the fit was interrupted"),
        sustain::Error::Config(_) | sustain::Error::Model(_) | sustain::Error::Data(_) => {
            PyValueError::new_err(e.to_string())
        }
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// A model error (bad data or sequences) as a `ValueError`.
pub fn value_err(e: ModelError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Rows of a 2-D array.
pub fn rows(a: ArrayView2<f64>) -> Vec<Vec<f64>> {
    a.outer_iter().map(|r| r.to_vec()).collect()
}

/// The mixtures of samples given as pySuStaIn holds them: `sequences[i][s][k]` is
/// the event at position `k` of subtype `s` in sample `i`, `fractions[i][s]` its
/// fraction. Fractions are renormalised as the reference's likelihood does.
pub fn mixtures_of(
    events: &EventOrder,
    sequences: ArrayView3<i64>,
    fractions: ArrayView2<f64>,
) -> PyResult<Vec<Mixture>> {
    let (n, k, e) = sequences.dim();
    if fractions.dim() != (n, k) {
        return Err(PyValueError::new_err(format!(
            "fractions have shape {:?} but the sequences hold {n} samples of {k} subtypes",
            fractions.dim()
        )));
    }
    if e != events.n_events() {
        return Err(PyValueError::new_err(format!(
            "sequences have {e} events but the model has {}",
            events.n_events()
        )));
    }
    (0..n)
        .map(|i| {
            let seqs = (0..k)
                .map(|s| {
                    let order = sequences
                        .slice(ndarray::s![i, s, ..])
                        .iter()
                        .map(|&v| usize::try_from(v).unwrap_or(usize::MAX))
                        .collect::<Vec<_>>();
                    Sequence::new(events, &order).map_err(|err| {
                        PyValueError::new_err(format!("sample {i}, subtype {s}: {err}"))
                    })
                })
                .collect::<PyResult<Vec<_>>>()?;
            let f = fractions.row(i).to_vec();
            let total: f64 = f.iter().sum();
            if !(total > 0.0 && f.iter().all(|v| v.is_finite() && *v >= 0.0)) {
                return Err(PyValueError::new_err(format!(
                    "sample {i}: fractions {f:?} are not non-negative with a positive sum"
                )));
            }
            Mixture::new(seqs, f.iter().map(|v| v / total).collect())
                .map_err(|err| PyValueError::new_err(format!("sample {i}: {err}")))
        })
        .collect()
}

/// One subtype count's model as pySuStaIn's arrays and this project's summaries:
/// `samples_sequence` (subtypes x events x samples, the event at each position, as
/// float64 like the reference), `samples_f` (subtypes x samples),
/// `samples_likelihood` (samples x 1), `samples_chain` (the chain of each sample),
/// `ml_sequence_EM` / `ml_f_EM` / `ml_likelihood_EM`, and `summary` (JSON: the
/// maximum-likelihood model, diagnostics, timings, step sizes).
pub fn model_dict<'py>(py: Python<'py>, model: &SubtypeModel) -> PyResult<Bound<'py, PyDict>> {
    let samples = &model.samples;
    let index = samples.sample_index();
    let (k, n) = (model.n_subtypes, index.len());
    let n_events = model.em_sequences.first().map_or(0, Vec::len);
    let mut seq = Array3::<f64>::zeros((k, n_events, n));
    let mut f = Array2::<f64>::zeros((k, n));
    let mut ll = Array2::<f64>::zeros((n, 1));
    let mut chain = Array1::<i64>::zeros(n);
    // Per chain: the log-likelihood of each kept iteration, in the order of
    // `sample_index` (chain by chain).
    let series: Vec<Vec<f64>> = samples
        .chains
        .iter()
        .map(|c| c.trace.loglike_series(samples.burn_in, samples.thin))
        .collect();
    let mut next_in_chain = vec![0usize; samples.chains.len()];
    for (i, &(c, st)) in index.iter().enumerate() {
        let t = &samples.chains[c].trace;
        let total: f64 = (0..k).map(|s| t.fraction(st, s)).sum();
        for s in 0..k {
            f[[s, i]] = t.fraction(st, s) / total;
        }
        ll[[i, 0]] = series[c][next_in_chain[c]];
        next_in_chain[c] += 1;
        chain[i] = samples.chains[c].index as i64;
    }
    // The sequences in one pass over each chain's states (a trace keeps positions
    // as moves, so reading one state at a time would replay them): `index` holds
    // each chain's samples together, their states in order.
    let mut at = 0;
    for (c, run) in samples.chains.iter().enumerate() {
        let mut i = at;
        while at < n && index[at].0 == c {
            at += 1;
        }
        run.trace.for_each_state(|st, _, orders| {
            while i < at && index[i].1 == st {
                for s in 0..k {
                    for p in 0..n_events {
                        seq[[s, p, i]] = orders[s * n_events + p] as f64;
                    }
                }
                i += 1;
            }
        });
        debug_assert_eq!(i, at, "every sample of chain {c} meets its state");
    }
    let em_seq = Array2::from_shape_fn((k, n_events), |(s, p)| model.em_sequences[s][p] as f64);
    let d = PyDict::new(py);
    d.set_item("samples_sequence", seq.into_pyarray(py))?;
    d.set_item("samples_f", f.into_pyarray(py))?;
    d.set_item("samples_likelihood", ll.into_pyarray(py))?;
    d.set_item("samples_chain", chain.into_pyarray(py))?;
    d.set_item("ml_sequence_EM", em_seq.into_pyarray(py))?;
    d.set_item("ml_f_EM", Array1::from(model.em_f.clone()).into_pyarray(py))?;
    d.set_item("ml_likelihood_EM", model.em_loglike)?;
    let summary = serde_json::json!({
        "n_subtypes": model.n_subtypes,
        "ml_sequences": model.ml_sequences,
        "ml_f": model.ml_f,
        "ml_loglike": model.ml_loglike,
        "mean_f": model.mean_f,
        "diagnostics": model.diagnostics,
        "timing": model.timing,
        "steps": model.steps,
        "convergence": model.convergence,
        "chains": model.chains,
        "disagreements": model.disagreements,
        "nonconvergence": model.nonconvergence,
    });
    d.set_item("summary", summary.to_string())?;
    Ok(d)
}
