//! The mixed-type model from pySuStaIn `MixedTypeSustain`'s split inputs.

use ndarray::{Array2, ArrayView2, ArrayView3};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sustain_model::{EventPart, MixedModel, OrdinalPart, ZscorePart};

use crate::convert::value_err;

/// The parts as Python gives them (each block optional, given whole or not at all).
pub(crate) struct Parts<'a> {
    pub zdata: Option<ArrayView2<'a, f64>>,
    pub z_vals: Option<Vec<Vec<f64>>>,
    pub z_max: Option<Vec<f64>>,
    pub prob_nl: Option<ArrayView2<'a, f64>>,
    pub prob_score: Option<ArrayView3<'a, f64>>,
    pub score_vals: Option<Vec<Vec<f64>>>,
    pub prob_yes: Option<ArrayView2<'a, f64>>,
    pub prob_no: Option<ArrayView2<'a, f64>>,
}

fn incomplete(what: &str) -> PyErr {
    PyValueError::new_err(format!("the {what} inputs must be given together"))
}

/// Builds the model; `prob_score[:, b, j]` is the probability given the `j`-th
/// score of `score_vals[b]` (the reference indexes it by score - 1: the same for
/// scores 1, 2, ...).
pub(crate) fn mixed_model(p: Parts) -> PyResult<MixedModel> {
    // Views reborrowed here, so that every part lives as long as this function.
    let (zdata, prob_nl) = (p.zdata, p.prob_nl);
    let (prob_yes, prob_no) = (p.prob_yes, p.prob_no);
    let z = match (&zdata, &p.z_vals, &p.z_max) {
        (Some(data), Some(z_vals), Some(z_max)) => Some(ZscorePart {
            data: data.view(),
            z_vals,
            z_max,
        }),
        (None, None, None) => None,
        _ => return Err(incomplete("z-score (zscore_data, Z_vals, Z_max)")),
    };
    let tables: Vec<Array2<f64>> = p.prob_score.map_or(Vec::new(), |ps| {
        (0..ps.dim().2)
            .map(|j| ps.slice(ndarray::s![.., .., j]).to_owned())
            .collect()
    });
    let views: Vec<_> = tables.iter().map(|t| t.view()).collect();
    let ordinal = match (&prob_nl, p.prob_score, &p.score_vals) {
        (Some(p_normal), Some(_), Some(score_vals)) => Some(OrdinalPart {
            score_vals,
            p_normal: p_normal.view(),
            p_score: &views,
        }),
        (None, None, None) => None,
        _ => return Err(incomplete("ordinal (prob_nl, prob_score, score_vals)")),
    };
    let event = match (&prob_yes, &prob_no) {
        (Some(p_event), Some(p_no_event)) => Some(EventPart {
            p_event: p_event.view(),
            p_no_event: p_no_event.view(),
        }),
        (None, None) => None,
        _ => return Err(incomplete("event (event_prob_yes, event_prob_no)")),
    };
    MixedModel::new(z, ordinal, event).map_err(value_err)
}
