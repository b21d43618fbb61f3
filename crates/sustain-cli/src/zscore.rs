//! Covariate-adjusted z-scores against a control group: the data preparation of the
//! pySuStaIn tutorial (`SuStaInWorkshop.ipynb`, "Normalize to control group").
//!
//! For one biomarker:
//! 1. fit ordinary least squares `biomarker ~ 1 + covariates` on the controls only,
//!    leaving out controls whose biomarker or any covariate is missing;
//! 2. residual = value - prediction, for every subject (missing when the value or a
//!    covariate is missing);
//! 3. `z = (residual - mean of the controls' residuals) / sd of the controls'
//!    residuals` (sample sd, ddof = 1, as pandas' `resid.std()` in the tutorial; the
//!    mean is 0 up to rounding because the model has an intercept);
//! 4. negated when the biomarker decreases with disease (`flip`), so that larger is
//!    always more abnormal, as SuStaIn expects.
//!
//! Pure numerics: no files, no names; the `zscore` subcommand adds those.

use std::fmt;

/// Why a biomarker could not be z-scored.
#[derive(Debug, Clone, PartialEq)]
pub enum ZscoreError {
    /// Fewer usable controls (biomarker and covariates observed) than the number of
    /// covariates + 2 (an intercept, one slope per covariate, and one degree of
    /// freedom for the sd).
    TooFewControls { usable: usize, needed: usize },
    /// The controls' residuals have zero standard deviation.
    ZeroSd,
    /// The covariates (with the intercept) are linearly dependent among the usable
    /// controls, so the regression has no unique solution.
    Collinear,
    /// Inputs of different lengths (a caller bug, reported rather than panicking).
    Shape(String),
}

impl fmt::Display for ZscoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewControls { usable, needed } => write!(
                f,
                "{usable} controls with this biomarker and every covariate observed; at least {needed} are needed (number of covariates + 2)"
            ),
            Self::ZeroSd => write!(
                f,
                "the controls' residuals have zero standard deviation, so z-scores are undefined"
            ),
            Self::Collinear => write!(
                f,
                "the covariates are collinear (or constant) among the controls, so the regression has no unique solution"
            ),
            Self::Shape(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for ZscoreError {}

/// The result of z-scoring one biomarker.
#[derive(Debug, Clone, PartialEq)]
pub struct ZscoreFit {
    /// Regression coefficients fitted on the controls: intercept, then one slope per
    /// covariate (in the order given).
    pub coefficients: Vec<f64>,
    /// Mean of the controls' residuals (0 up to rounding).
    pub residual_mean: f64,
    /// Sample standard deviation (ddof = 1) of the controls' residuals.
    pub residual_sd: f64,
    /// Number of controls used in the fit.
    pub n_controls_used: usize,
    /// One z-score per subject (NaN = missing), negated if `flip`.
    pub z: Vec<f64>,
}

/// Z-scores one biomarker against the controls (see the module docs).
///
/// `values[m]`: the biomarker of subject `m` (NaN = missing); `covariates[c][m]`:
/// covariate `c` of subject `m` (NaN = missing); `is_control[m]`: whether subject
/// `m` is a control; `flip`: negate the result (biomarkers that decrease with
/// disease).
///
/// ```text
/// // Controls 1, 2, 3 (mean 2, sd 1) and a patient at 5: z = -1, 0, 1, 3.
/// let fit = zscore_against_controls(&[1.0, 2.0, 3.0, 5.0], &[], &[true, true, true, false], false)?;
/// assert_eq!(fit.z, vec![-1.0, 0.0, 1.0, 3.0]);
/// ```
pub fn zscore_against_controls(
    values: &[f64],
    covariates: &[Vec<f64>],
    is_control: &[bool],
    flip: bool,
) -> Result<ZscoreFit, ZscoreError> {
    let n = values.len();
    if is_control.len() != n || covariates.iter().any(|c| c.len() != n) {
        return Err(ZscoreError::Shape(format!(
            "{n} values but {} control flags and covariates of lengths {:?}",
            is_control.len(),
            covariates.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    let complete = |m: usize| values[m].is_finite() && covariates.iter().all(|c| c[m].is_finite());
    let used: Vec<usize> = (0..n).filter(|&m| is_control[m] && complete(m)).collect();
    let n_coef = covariates.len() + 1;
    let needed = n_coef + 1;
    if used.len() < needed {
        return Err(ZscoreError::TooFewControls {
            usable: used.len(),
            needed,
        });
    }

    let mut design = Vec::with_capacity(n_coef);
    design.push(vec![1.0; used.len()]);
    for c in covariates {
        design.push(used.iter().map(|&m| c[m]).collect());
    }
    let y: Vec<f64> = used.iter().map(|&m| values[m]).collect();
    let coefficients = least_squares(&design, &y).ok_or(ZscoreError::Collinear)?;

    let residual = |m: usize| {
        if !complete(m) {
            return f64::NAN;
        }
        let predicted = coefficients[0]
            + covariates
                .iter()
                .zip(&coefficients[1..])
                .map(|(c, b)| b * c[m])
                .sum::<f64>();
        values[m] - predicted
    };
    let residuals: Vec<f64> = (0..n).map(residual).collect();
    let control_res: Vec<f64> = used.iter().map(|&m| residuals[m]).collect();
    let k = control_res.len() as f64;
    let residual_mean = control_res.iter().sum::<f64>() / k;
    let residual_sd = (control_res
        .iter()
        .map(|r| (r - residual_mean).powi(2))
        .sum::<f64>()
        / (k - 1.0))
        .sqrt();
    let scale = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if residual_sd.is_nan() || residual_sd <= 1e-12 * scale {
        return Err(ZscoreError::ZeroSd);
    }
    let sign = if flip { -1.0 } else { 1.0 };
    let z = residuals
        .iter()
        .map(|r| sign * (r - residual_mean) / residual_sd)
        .collect();
    Ok(ZscoreFit {
        coefficients,
        residual_mean,
        residual_sd,
        n_controls_used: used.len(),
        z,
    })
}

/// Least-squares solution `beta` of `sum_j beta[j] * columns[j] ~= y`, by Householder
/// QR (stable even when covariates differ in scale by orders of magnitude). `None`
/// when the columns are linearly dependent (relative tolerance 1e-10) or there are
/// fewer rows than columns.
pub fn least_squares(columns: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let n = y.len();
    let p = columns.len();
    if n < p || columns.iter().any(|c| c.len() != n) {
        return None;
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let original_norms: Vec<f64> = columns.iter().map(|c| norm(c)).collect();
    let mut a = columns.to_vec();
    let mut b = y.to_vec();
    for k in 0..p {
        let nk = norm(&a[k][k..]);
        if nk.is_nan() || nk == 0.0 || nk <= 1e-10 * original_norms[k] {
            return None;
        }
        let alpha = if a[k][k] > 0.0 { -nk } else { nk };
        let mut v: Vec<f64> = a[k][k..].to_vec();
        v[0] -= alpha;
        let vtv: f64 = v.iter().map(|x| x * x).sum();
        let reflect = |col: &mut [f64]| {
            let s: f64 = v.iter().zip(col.iter()).map(|(vi, ci)| vi * ci).sum();
            let t = 2.0 * s / vtv;
            for (ci, vi) in col.iter_mut().zip(&v) {
                *ci -= t * vi;
            }
        };
        for col in a.iter_mut().skip(k) {
            reflect(&mut col[k..]);
        }
        reflect(&mut b[k..]);
    }
    let mut beta = vec![0.0; p];
    for k in (0..p).rev() {
        let tail: f64 = (k + 1..p).map(|j| a[j][k] * beta[j]).sum();
        beta[k] = (b[k] - tail) / a[k][k];
    }
    Some(beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol)
    }

    #[test]
    fn no_covariates_is_plain_standardisation() {
        let fit = zscore_against_controls(
            &[1.0, 2.0, 3.0, 5.0],
            &[],
            &[true, true, true, false],
            false,
        )
        .unwrap();
        assert!(close(&fit.z, &[-1.0, 0.0, 1.0, 3.0], 1e-12), "{:?}", fit.z);
        assert!(close(&fit.coefficients, &[2.0], 1e-12));
        assert!((fit.residual_sd - 1.0).abs() < 1e-12);
        assert_eq!(fit.n_controls_used, 3);
    }

    #[test]
    fn one_covariate_known_by_hand() {
        // Controls: x = 0..3, y = 2 + 3x + e with e = [1, -1, -1, 1], which is
        // orthogonal to 1 and x, so OLS recovers (2, 3) and the residuals are e:
        // mean 0, sd sqrt(4/3). A patient at x = 10, y = 32 + 2 has z = 2/sqrt(4/3).
        let x = vec![0.0, 1.0, 2.0, 3.0, 10.0];
        let y = [3.0, 4.0, 7.0, 12.0, 34.0];
        let ctrl = [true, true, true, true, false];
        let fit = zscore_against_controls(&y, &[x], &ctrl, false).unwrap();
        assert!(
            close(&fit.coefficients, &[2.0, 3.0], 1e-12),
            "{:?}",
            fit.coefficients
        );
        let s = (4.0f64 / 3.0).sqrt();
        assert!(close(
            &fit.z,
            &[1.0 / s, -1.0 / s, -1.0 / s, 1.0 / s, 2.0 / s],
            1e-12
        ));
        assert!(fit.residual_mean.abs() < 1e-12);
    }

    #[test]
    fn flip_negates_and_patients_do_not_change_the_fit() {
        let x = vec![0.0, 1.0, 2.0, 3.0, 10.0, -4.0];
        let ctrl = [true, true, true, true, false, false];
        let a = zscore_against_controls(
            &[3.0, 4.0, 7.0, 12.0, 34.0, 0.0],
            std::slice::from_ref(&x),
            &ctrl,
            false,
        )
        .unwrap();
        let b =
            zscore_against_controls(&[3.0, 4.0, 7.0, 12.0, -99.0, 7.0], &[x], &ctrl, true).unwrap();
        assert_eq!(a.coefficients, b.coefficients);
        assert!(close(
            &a.z[..4],
            &b.z[..4].iter().map(|v| -v).collect::<Vec<_>>(),
            1e-12
        ));
    }

    #[test]
    fn missing_values_and_covariates() {
        let nan = f64::NAN;
        // Control 2 has its covariate missing and is left out of the fit; subject 4's
        // value is missing; subject 5's covariate is missing.
        let x = vec![0.0, 1.0, nan, 2.0, 3.0, 5.0, nan];
        let y = [3.0, 4.0, 100.0, 7.0, 12.0, nan, 1.0];
        let ctrl = [true, true, true, true, true, false, false];
        let fit = zscore_against_controls(&y, &[x], &ctrl, false).unwrap();
        assert_eq!(fit.n_controls_used, 4);
        assert!(close(&fit.coefficients, &[2.0, 3.0], 1e-12));
        assert!(fit.z[2].is_nan() && fit.z[5].is_nan() && fit.z[6].is_nan());
        assert!(fit.z[0].is_finite());
    }

    #[test]
    fn errors() {
        let ctrl = [true, true, false];
        assert_eq!(
            zscore_against_controls(&[1.0, 2.0, 3.0], &[vec![1.0, 2.0, 3.0]], &ctrl, false),
            Err(ZscoreError::TooFewControls {
                usable: 2,
                needed: 3
            })
        );
        assert_eq!(
            zscore_against_controls(
                &[4.0, 4.0, 4.0, 9.0],
                &[],
                &[true, true, true, false],
                false
            ),
            Err(ZscoreError::ZeroSd)
        );
        // A covariate constant among the controls is collinear with the intercept.
        assert_eq!(
            zscore_against_controls(
                &[1.0, 2.0, 4.0, 9.0],
                &[vec![7.0, 7.0, 7.0, 1.0]],
                &[true, true, true, false],
                false
            ),
            Err(ZscoreError::Collinear)
        );
        assert!(matches!(
            zscore_against_controls(&[1.0, 2.0], &[], &[true], false),
            Err(ZscoreError::Shape(_))
        ));
    }

    #[test]
    fn least_squares_two_covariates_of_different_scales() {
        // y = 1 + 0.5 a - 200 b exactly.
        let a: Vec<f64> = (0..8).map(|i| 60.0 + 3.0 * i as f64).collect();
        let b: Vec<f64> = (0..8).map(|i| 0.9 + 0.03 * ((i * 5) % 7) as f64).collect();
        let y: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| 1.0 + 0.5 * a - 200.0 * b)
            .collect();
        let beta = least_squares(&[vec![1.0; 8], a, b], &y).unwrap();
        assert!(close(&beta, &[1.0, 0.5, -200.0], 1e-9), "{beta:?}");
    }
}
