//! Two-component Gaussian mixtures of one biomarker, fitted from controls and
//! patients the way kde_ebm's `fit_all_gmm_models` does (the mixtures pySuStaIn's
//! `MixtureSustain` tutorial turns into `L_yes` / `L_no`).
//!
//! The model: `f(x) = w N(x; mu_c, sd_c) + (1 - w) N(x; mu_p, sd_p)`, a "control"
//! (no event) and a "patient" (event) component, fitted by maximum likelihood to the
//! values of the controls and patients together, inside the reference's box:
//! - start: each component at its group's mean and sd (population sd, ddof = 0),
//!   `w = 0.5`;
//! - the component means stay on their own side: when the patients' mean is above
//!   the controls', `mu_c` in [min of all values, controls' mean] and `mu_p` in
//!   [patients' mean, patients' max] (mirrored when below);
//! - each sd in [0.05, 1] x its group's sd; `w` in [0.1, 0.9];
//! - `fix_controls`: the control component stays at the controls' mean and sd.
//!
//! kde_ebm maximises with SLSQP; here the same bounded problem is solved with E-M
//! whose M-step clamps each parameter to its box. That is exact, not a heuristic:
//! the expected log-likelihood is concave in each mean with an optimum that does not
//! depend on the sd, and unimodal in each sd and in `w`, so the clamped values
//! maximise it over the box; each step therefore never lowers the likelihood, and
//! the fixed point satisfies the box-constrained optimality conditions SLSQP stops
//! at. E-M is run far tighter than SLSQP's default tolerance (1e-6 on the objective).
//!
//! Pure numerics: no files, no names; `sustain mixture` adds those.

use std::f64::consts::PI;
use std::fmt;

/// Fewest observed values each group needs (a mean and a non-zero sd).
pub const MIN_PER_GROUP: usize = 2;

/// Most E-M iterations; overlapping components converge slowly, but each
/// iteration costs only a pass over one biomarker's values.
const MAX_ITERATIONS: usize = 200_000;

/// Stop when an iteration raises the mean log-likelihood by less than this and no
/// parameter moves by more than [`PARAMETER_TOL`] (relative to the data's scale).
const LOGLIK_TOL: f64 = 1e-14;
const PARAMETER_TOL: f64 = 1e-11;

/// The reference's bounds on the control fraction `w`.
const MIX_BOUNDS: (f64, f64) = (0.1, 0.9);
/// The reference's lower bound on an sd, as a fraction of its group's sd.
const MIN_SD_FRACTION: f64 = 0.05;

/// A normal distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaussian {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
}

impl Gaussian {
    /// Log density at `x`.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        let z = (x - self.mean) / self.sd;
        -0.5 * z * z - self.sd.ln() - 0.5 * (2.0 * PI).ln()
    }

    /// Density at `x`.
    #[cfg(test)]
    pub fn pdf(&self, x: f64) -> f64 {
        self.ln_pdf(x).exp()
    }
}

/// A fitted two-component mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmFit {
    /// The no-event component.
    pub control: Gaussian,
    /// The event component.
    pub patient: Gaussian,
    /// Weight of the control component, `w` (kde_ebm's `mix`).
    pub control_fraction: f64,
    /// Negative log-likelihood of the fitted values (kde_ebm's objective).
    pub neg_log_likelihood: f64,
    /// E-M iterations run.
    pub iterations: usize,
    /// Whether the stopping rule was met before [`MAX_ITERATIONS`].
    pub converged: bool,
}

impl GmmFit {
    /// pySuStaIn's `L_no`, `L_yes` of a value: each component's density times its
    /// weight (kde_ebm's `ParametricMM.pdf`, as the reference's MixtureSustain
    /// simulations call it), as natural logarithms.
    pub fn ln_likelihoods(&self, x: f64) -> (f64, f64) {
        weighted_ln(
            self.control_fraction,
            self.control.ln_pdf(x),
            self.patient.ln_pdf(x),
        )
    }
}

/// `(ln L_no, ln L_yes)` of a two-component mixture: each component's log density
/// plus the log of its weight (`control_fraction` and its complement).
pub fn weighted_ln(control_fraction: f64, ln_control: f64, ln_patient: f64) -> (f64, f64) {
    (
        control_fraction.ln() + ln_control,
        (1.0 - control_fraction).ln() + ln_patient,
    )
}

/// A biomarker's fitted mixture, of either method.
#[derive(Debug, Clone, PartialEq)]
pub enum Fitted {
    /// Two Gaussians.
    Gmm(GmmFit),
    /// Two kernel density estimates.
    Kde(crate::mixture_kde::KdeFit),
}

impl Fitted {
    /// `ln L_no`, `ln L_yes` of a value: each component's density times its weight.
    pub fn ln_likelihoods(&self, x: f64) -> (f64, f64) {
        match self {
            Fitted::Gmm(f) => f.ln_likelihoods(x),
            Fitted::Kde(f) => f.ln_likelihoods(x),
        }
    }

    /// `(L_no, L_yes)` of a value as `sustain mixture` writes them, and whether
    /// both underflowed and were scaled by a common factor.
    pub fn likelihoods(&self, x: f64) -> (f64, f64, bool) {
        let (ln_no, ln_yes) = self.ln_likelihoods(x);
        let (p_no, p_yes) = (ln_no.exp(), ln_yes.exp());
        // A value 0 in both files is no evidence either way and is refused by
        // the readers; a common factor keeps the ratio, which is all SuStaIn uses.
        if p_no < f64::MIN_POSITIVE && p_yes < f64::MIN_POSITIVE {
            let top = ln_no.max(ln_yes);
            let scaled = if top.is_finite() {
                ((ln_no - top).exp(), (ln_yes - top).exp())
            } else {
                (1.0, 1.0) // beyond any scale: no evidence either way
            };
            return (scaled.0, scaled.1, true);
        }
        (p_no, p_yes, false)
    }

    /// Weight of the control component.
    pub fn control_fraction(&self) -> f64 {
        match self {
            Fitted::Gmm(f) => f.control_fraction,
            Fitted::Kde(f) => f.control_fraction,
        }
    }
}

/// Why a biomarker's mixture could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum MixtureError {
    /// Fewer than [`MIN_PER_GROUP`] observed values in a group.
    TooFew {
        /// "controls" or "patients".
        group: &'static str,
        /// Observed values in the group.
        n: usize,
    },
    /// A group's values are all equal, so its sd (and bounds) are zero.
    ZeroSd {
        /// "controls" or "patients".
        group: &'static str,
    },
    /// KDE: the groups' distributions give no direction of the disease.
    NoDirection,
    /// KDE: relabelling left fewer than two values in a component.
    Degenerate,
}

impl fmt::Display for MixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFew { group, n } => write!(
                f,
                "{n} {group} with a value; at least {MIN_PER_GROUP} are needed to fit a mixture"
            ),
            Self::ZeroSd { group } => write!(
                f,
                "the {group}' values are all equal, so their component has no spread"
            ),
            Self::NoDirection => write!(
                f,
                "the controls' and patients' values give no direction of the disease (their distributions cross evenly)"
            ),
            Self::Degenerate => write!(
                f,
                "the KDE mixture's relabelling left fewer than {MIN_PER_GROUP} values in a component; try --method gmm"
            ),
        }
    }
}

impl std::error::Error for MixtureError {}

/// Mean and population sd (ddof = 0, numpy's `nanstd`).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Either method's first checks, controls first: refuses a group with fewer than
/// [`MIN_PER_GROUP`] observed values, then one that `also` refuses.
pub fn check_groups(
    controls: &[f64],
    patients: &[f64],
    also: impl Fn(&'static str, &[f64]) -> Result<(), MixtureError>,
) -> Result<(), MixtureError> {
    for (group, values) in [("controls", controls), ("patients", patients)] {
        if values.len() < MIN_PER_GROUP {
            return Err(MixtureError::TooFew {
                group,
                n: values.len(),
            });
        }
        also(group, values)?;
    }
    Ok(())
}

/// Box of one component: (mean bounds, sd bounds).
type Bounds = ((f64, f64), (f64, f64));

/// Fits the mixture of one biomarker to the observed (finite) values of its
/// controls and patients; see the module docs.
pub fn fit_gmm(
    controls: &[f64],
    patients: &[f64],
    fix_controls: bool,
) -> Result<GmmFit, MixtureError> {
    check_groups(controls, patients, |_, _| Ok(()))?;
    let (mean_c, sd_c) = mean_sd(controls);
    let (mean_p, sd_p) = mean_sd(patients);
    if sd_c <= 0.0 {
        return Err(MixtureError::ZeroSd { group: "controls" });
    }
    if sd_p <= 0.0 {
        return Err(MixtureError::ZeroSd { group: "patients" });
    }
    let all: Vec<f64> = controls.iter().chain(patients).copied().collect();
    let min_all = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max_c = controls.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let max_p = patients.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sd_box = |sd: f64| (MIN_SD_FRACTION * sd, sd);
    // The reference's `event_sign`: the patients lie above the controls.
    let (box_c, box_p): (Bounds, Bounds) = if mean_c < mean_p {
        (
            ((min_all, mean_c), sd_box(sd_c)),
            ((mean_p, max_p), sd_box(sd_p)),
        )
    } else {
        (
            ((mean_c, max_c), sd_box(sd_c)),
            ((min_all, mean_p), sd_box(sd_p)),
        )
    };

    let mut control = Gaussian {
        mean: mean_c,
        sd: sd_c,
    };
    let mut patient = Gaussian {
        mean: mean_p,
        sd: sd_p,
    };
    let mut w = 0.5;
    let scale = sd_c.max(sd_p);
    let mut responsibility = vec![0.0; all.len()];
    let mut previous = f64::NEG_INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < MAX_ITERATIONS {
        // E-step: each value's probability of the patient component.
        let mean_loglik = e_step(&all, control, patient, w, &mut responsibility);
        // M-step, each parameter clamped to its box.
        let r_total: f64 = responsibility.iter().sum();
        let n = all.len() as f64;
        let new_w = clamp(1.0 - r_total / n, MIX_BOUNDS);
        let new_patient = weighted_gaussian(&all, responsibility.iter().copied(), box_p);
        let new_control = if fix_controls {
            control
        } else {
            weighted_gaussian(&all, responsibility.iter().map(|r| 1.0 - r), box_c)
        };
        let moved = [
            (new_w - w).abs(),
            (new_control.mean - control.mean).abs() / scale,
            (new_control.sd - control.sd).abs() / scale,
            (new_patient.mean - patient.mean).abs() / scale,
            (new_patient.sd - patient.sd).abs() / scale,
        ]
        .into_iter()
        .fold(0.0, f64::max);
        let gained = mean_loglik - previous;
        (control, patient, w) = (new_control, new_patient, new_w);
        previous = mean_loglik;
        iterations += 1;
        if gained.abs() < LOGLIK_TOL && moved < PARAMETER_TOL {
            converged = true;
            break;
        }
    }
    let neg_log_likelihood =
        -e_step(&all, control, patient, w, &mut responsibility) * all.len() as f64;
    Ok(GmmFit {
        control,
        patient,
        control_fraction: w,
        neg_log_likelihood,
        iterations,
        converged,
    })
}

fn clamp(v: f64, (lo, hi): (f64, f64)) -> f64 {
    v.max(lo).min(hi)
}

/// Fills `responsibility` with each value's posterior probability of the patient
/// component; returns the mean log-likelihood of the values.
fn e_step(
    values: &[f64],
    control: Gaussian,
    patient: Gaussian,
    w: f64,
    responsibility: &mut [f64],
) -> f64 {
    let (ln_w, ln_1w) = (w.ln(), (1.0 - w).ln());
    let mut total = 0.0;
    for (&x, r) in values.iter().zip(responsibility.iter_mut()) {
        let a = ln_w + control.ln_pdf(x);
        let b = ln_1w + patient.ln_pdf(x);
        let top = a.max(b);
        let ln_sum = top + ((a - top).exp() + (b - top).exp()).ln();
        *r = (b - ln_sum).exp();
        total += ln_sum;
    }
    total / values.len() as f64
}

/// The weighted mean, clamped to its bounds, and the weighted rms deviation from
/// it, clamped to its bounds: the M-step of one component.
fn weighted_gaussian(
    values: &[f64],
    weights: impl Iterator<Item = f64> + Clone,
    (mean_box, sd_box): Bounds,
) -> Gaussian {
    let total: f64 = weights.clone().sum();
    if total <= 0.0 {
        // No value belongs to this component: keep it at the edge of its box.
        return Gaussian {
            mean: mean_box.0,
            sd: sd_box.1,
        };
    }
    let mean = values
        .iter()
        .zip(weights.clone())
        .map(|(x, r)| r * x)
        .sum::<f64>()
        / total;
    let mean = clamp(mean, mean_box);
    let var = values
        .iter()
        .zip(weights)
        .map(|(x, r)| r * (x - mean).powi(2))
        .sum::<f64>()
        / total;
    Gaussian {
        mean,
        sd: clamp(var.sqrt(), sd_box),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// `n` draws of a normal distribution (seeded).
    pub(crate) fn draw(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let normal = Normal::new(mean, sd).unwrap();
        (0..n).map(|_| normal.sample(&mut rng)).collect()
    }

    /// kde_ebm's objective at given parameters.
    fn nll(values: &[f64], c: Gaussian, p: Gaussian, w: f64) -> f64 {
        -values
            .iter()
            .map(|&x| (w * c.pdf(x) + (1.0 - w) * p.pdf(x)).ln())
            .sum::<f64>()
    }

    #[test]
    fn separated_groups_are_recovered() {
        let controls = draw(400, 0.0, 1.0, 1);
        let patients = draw(400, 6.0, 0.5, 2);
        let fit = fit_gmm(&controls, &patients, false).unwrap();
        assert!(fit.converged);
        assert!((fit.control.mean - 0.0).abs() < 0.15, "{fit:?}");
        assert!((fit.patient.mean - 6.0).abs() < 0.1, "{fit:?}");
        assert!((fit.control.sd - 1.0).abs() < 0.1, "{fit:?}");
        assert!((fit.patient.sd - 0.5).abs() < 0.1, "{fit:?}");
        assert!((fit.control_fraction - 0.5).abs() < 0.01, "{fit:?}");
    }

    #[test]
    fn bounds_hold_and_the_optimum_is_local() {
        // Overlapping groups: the unconstrained optimum would leave the box.
        let controls = draw(100, 0.0, 1.0, 3);
        let mut patients = draw(60, 0.8, 1.0, 4);
        patients.extend(draw(40, 0.0, 1.0, 5));
        let (mc, sc) = mean_sd(&controls);
        let (mp, sp) = mean_sd(&patients);
        let fit = fit_gmm(&controls, &patients, false).unwrap();
        assert!(fit.converged);
        let all: Vec<f64> = controls.iter().chain(&patients).copied().collect();
        let min_all = all.iter().copied().fold(f64::INFINITY, f64::min);
        let max_p = patients.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(fit.control.mean >= min_all && fit.control.mean <= mc);
        assert!(fit.patient.mean >= mp && fit.patient.mean <= max_p);
        assert!(fit.control.sd >= 0.05 * sc && fit.control.sd <= sc);
        assert!(fit.patient.sd >= 0.05 * sp && fit.patient.sd <= sp);
        assert!((0.1..=0.9).contains(&fit.control_fraction));
        let best = nll(&all, fit.control, fit.patient, fit.control_fraction);
        assert!((best - fit.neg_log_likelihood).abs() < 1e-9 * best.abs());
        // No feasible nudge of any parameter does better.
        let h = 1e-4;
        for k in 0..5 {
            for s in [-h, h] {
                let (mut c, mut p, mut w) = (fit.control, fit.patient, fit.control_fraction);
                match k {
                    0 => c.mean = (c.mean + s).clamp(min_all, mc),
                    1 => c.sd = (c.sd + s).clamp(0.05 * sc, sc),
                    2 => p.mean = (p.mean + s).clamp(mp, max_p),
                    3 => p.sd = (p.sd + s).clamp(0.05 * sp, sp),
                    _ => w = (w + s).clamp(0.1, 0.9),
                }
                assert!(nll(&all, c, p, w) >= best - 1e-9, "parameter {k} step {s}");
            }
        }
    }

    #[test]
    fn decreasing_biomarkers_mirror_the_bounds() {
        let controls: Vec<f64> = draw(300, 0.0, 1.0, 6);
        let patients: Vec<f64> = draw(300, 4.0, 1.0, 7);
        let up = fit_gmm(&controls, &patients, false).unwrap();
        let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
        let down = fit_gmm(&neg(&controls), &neg(&patients), false).unwrap();
        assert!((up.control.mean + down.control.mean).abs() < 1e-8);
        assert!((up.patient.mean + down.patient.mean).abs() < 1e-8);
        assert!((up.control.sd - down.control.sd).abs() < 1e-8);
        assert!((up.control_fraction - down.control_fraction).abs() < 1e-8);
    }

    #[test]
    fn fixed_controls_keep_the_control_component() {
        let controls = draw(200, 1.0, 2.0, 8);
        let patients = draw(200, 5.0, 1.0, 9);
        let (mc, sc) = mean_sd(&controls);
        let fit = fit_gmm(&controls, &patients, true).unwrap();
        assert_eq!(fit.control, Gaussian { mean: mc, sd: sc });
        assert!(fit.converged);
        let free = fit_gmm(&controls, &patients, false).unwrap();
        assert!(free.neg_log_likelihood <= fit.neg_log_likelihood + 1e-9);
    }

    #[test]
    fn too_few_or_constant_groups_are_errors() {
        assert_eq!(
            fit_gmm(&[1.0], &[2.0, 3.0], false),
            Err(MixtureError::TooFew {
                group: "controls",
                n: 1
            })
        );
        assert_eq!(
            fit_gmm(&[1.0, 2.0], &[3.0, 3.0], false),
            Err(MixtureError::ZeroSd { group: "patients" })
        );
    }

    #[test]
    fn likelihoods_are_weighted_component_densities() {
        let fit = GmmFit {
            control: Gaussian { mean: 0.0, sd: 1.0 },
            patient: Gaussian { mean: 2.0, sd: 0.5 },
            control_fraction: 0.25,
            neg_log_likelihood: 0.0,
            iterations: 0,
            converged: true,
        };
        let (no, yes) = fit.ln_likelihoods(1.0);
        let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * PI).sqrt();
        assert!((no.exp() - 0.25 * phi(1.0)).abs() < 1e-15);
        assert!((yes.exp() - 0.75 * phi(-2.0) / 0.5).abs() < 1e-15);
    }
}
