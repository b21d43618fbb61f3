//! `fit_mixtures`: per biomarker, the two-component mixture of `sustain mixture`
//! (the model crate's `mixture_fit` / `mixture_kde`, one copy for both) and the
//! `L_yes` / `L_no` arrays MixtureSustain takes.

use ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sustain_model::mixture_fit::{fit_gmm, Fitted};
use sustain_model::mixture_kde::fit_kde;

/// A subject's group code from Python: controls and patients are fitted, others
/// only get likelihoods.
const CONTROL: i8 = 0;
const PATIENT: i8 = 1;

/// `(L_yes, L_no, fits, n_rescaled)` as handed to Python.
type MixtureArrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Vec<Bound<'py, PyDict>>,
    usize,
);

/// Fits each column of `values` (subjects x biomarkers, NaN = missing) from the
/// subjects whose `groups` code is 0 (controls) or 1 (patients); returns
/// `(L_yes, L_no, fits, n_rescaled)` with one dict of parameters per biomarker.
#[pyfunction]
#[pyo3(signature = (values, groups, names, method, fix_controls))]
pub fn fit_mixtures<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    groups: PyReadonlyArray1<'py, i8>,
    names: Vec<String>,
    method: &str,
    fix_controls: bool,
) -> PyResult<MixtureArrays<'py>> {
    let values = values.as_array();
    let groups = groups.as_array();
    let (n, b) = values.dim();
    if groups.len() != n || names.len() != b {
        return Err(PyValueError::new_err(format!(
            "{n} subjects x {b} biomarkers, but {} diagnoses and {} names",
            groups.len(),
            names.len()
        )));
    }
    let fits = py.detach(|| {
        (0..b)
            .map(|c| {
                let column = values.column(c);
                let of = |g: i8| -> Vec<f64> {
                    column
                        .iter()
                        .zip(groups.iter())
                        .filter(|(v, &x)| x == g && v.is_finite())
                        .map(|(v, _)| *v)
                        .collect()
                };
                let (controls, patients) = (of(CONTROL), of(PATIENT));
                let fit = match method {
                    "kde" => fit_kde(&controls, &patients, fix_controls).map(Fitted::Kde),
                    _ => fit_gmm(&controls, &patients, fix_controls).map(Fitted::Gmm),
                };
                fit.map(|f| (f, controls.len(), patients.len()))
                    .map_err(|e| format!("column '{}': {e}", names[c]))
            })
            .collect::<Result<Vec<_>, String>>()
    });
    let fits = fits.map_err(PyValueError::new_err)?;
    let mut yes = Array2::from_elem((n, b), f64::NAN);
    let mut no = Array2::from_elem((n, b), f64::NAN);
    let mut rescaled = 0;
    for (c, (fit, _, _)) in fits.iter().enumerate() {
        for (m, &x) in values.column(c).iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            let (p_no, p_yes, scaled) = fit.likelihoods(x);
            rescaled += usize::from(scaled);
            yes[[m, c]] = p_yes;
            no[[m, c]] = p_no;
        }
    }
    let reports = names
        .iter()
        .zip(&fits)
        .map(|(name, (fit, n_controls, n_patients))| {
            report(py, name, fit, *n_controls, *n_patients)
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((
        yes.into_pyarray(py).into_any(),
        no.into_pyarray(py).into_any(),
        reports,
        rescaled,
    ))
}

/// A biomarker's fitted parameters, with the keys of the CLI's mixtures.json.
fn report<'py>(
    py: Python<'py>,
    name: &str,
    fit: &Fitted,
    n_controls: usize,
    n_patients: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", name)?;
    d.set_item("control_fraction", fit.control_fraction())?;
    d.set_item("n_controls", n_controls)?;
    d.set_item("n_patients", n_patients)?;
    match fit {
        Fitted::Gmm(g) => {
            d.set_item("iterations", g.iterations)?;
            d.set_item("control_mean", g.control.mean)?;
            d.set_item("control_sd", g.control.sd)?;
            d.set_item("patient_mean", g.patient.mean)?;
            d.set_item("patient_sd", g.patient.sd)?;
            d.set_item("neg_log_likelihood", g.neg_log_likelihood)?;
            d.set_item("converged", g.converged)?;
        }
        Fitted::Kde(k) => {
            d.set_item("iterations", k.iterations)?;
            d.set_item("n_control_labels", k.n_control_labels)?;
            d.set_item("n_patient_labels", k.n_patient_labels)?;
        }
    }
    Ok(d)
}
