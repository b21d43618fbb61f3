//! The event-based model (pySuStaIn `MixtureSustain`, spec section 10): one event
//! per biomarker, each subject's value weighed by the likelihood of it given the
//! event has happened (`p_event`, pySuStaIn `L_yes`) or not (`p_no_event`, `L_no`).

use crate::error::{ModelError, Result};
use crate::prefix::{log_floor, PrefixFamily, PrefixModel};
use ndarray::ArrayView2;
use sustain_core::EventOrder;

/// The event-based model of subjects x biomarkers likelihoods. A value missing in
/// both (NaN) contributes the same factor whatever the stage, as the reference's
/// imputation makes it. Errors name the 0-based row and column of a value that is
/// negative, infinite, missing in one input only, or zero in both.
pub fn event_based(p_event: ArrayView2<f64>, p_no_event: ArrayView2<f64>) -> Result<PrefixModel> {
    let (order, delta, base) = event_parts(p_event, p_no_event)?;
    PrefixModel::from_parts(PrefixFamily::EventBased, order, delta, base)
}

/// [`event_based`]'s validated order, deltas (`delta[m * B + b]`) and stage-0
/// log-likelihoods (without the stage prior).
pub(crate) fn event_parts(
    p_event: ArrayView2<f64>,
    p_no_event: ArrayView2<f64>,
) -> Result<(EventOrder, Vec<f64>, Vec<f64>)> {
    if p_event.dim() != p_no_event.dim() {
        return Err(ModelError::Shape(format!(
            "p_event is {:?} (subjects x biomarkers) but p_no_event is {:?}",
            p_event.dim(),
            p_no_event.dim()
        )));
    }
    let (n_subjects, n_biomarkers) = p_event.dim();
    let order = EventOrder::one_per_biomarker(n_biomarkers)?;
    let mut delta = Vec::with_capacity(n_subjects * n_biomarkers);
    let mut base = Vec::with_capacity(n_subjects);
    for m in 0..n_subjects {
        let mut b0 = 0.0;
        for b in 0..n_biomarkers {
            let (yes, no) = (p_event[[m, b]], p_no_event[[m, b]]);
            let bad = |what, value, why| ModelError::BadProbability {
                what,
                row: m,
                column: b,
                value,
                why,
            };
            match (yes.is_nan(), no.is_nan()) {
                (true, true) => {
                    delta.push(0.0);
                    continue;
                }
                (true, false) => {
                    return Err(bad("p_event", yes, "missing where p_no_event is not"))
                }
                (false, true) => return Err(bad("p_no_event", no, "missing where p_event is not")),
                (false, false) => {}
            }
            for (what, v) in [("p_event", yes), ("p_no_event", no)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(bad(what, v, "a likelihood must be finite and not negative"));
                }
            }
            if yes == 0.0 && no == 0.0 {
                return Err(bad(
                    "p_event",
                    yes,
                    "p_event and p_no_event are both 0: the value is impossible either way",
                ));
            }
            b0 += log_floor(no);
            delta.push(log_floor(yes) - log_floor(no));
        }
        base.push(b0);
    }
    Ok((order, delta, base))
}
