//! `sustain_rs._native`: the Rust half of the Python package `sustain_rs`.
//!
//! It exposes one class, [`model::Model`] (a SuStaIn model of any family on its
//! data), whose methods call the facade `sustain`: fitting (E-M, tuning, chains,
//! with progress and Ctrl-C), posteriors of subtypes and stages over a set of
//! samples, and per-subject log-likelihoods. pySuStaIn's classes, pickles and
//! figures are written in Python on top of it (`python/sustain_rs/`), so no part
//! of the algorithm exists twice.

mod convert;
mod mixed;
mod mixture_fit;
mod model;
mod run;
mod staging;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(mixture_fit::fit_mixtures, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GPU_BUILT", cfg!(feature = "gpu"))?;
    Ok(())
}
