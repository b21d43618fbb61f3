//! Kernel-density mixtures of one biomarker, as kde_ebm's `fit_all_kde_models`
//! (`KDEMM.fit`) makes them with awkde's adaptive Gaussian KDE.
//!
//! The KDE (awkde `GaussianKDE(glob_bw="scott", alpha, diag_cov=False)`, one
//! dimension): values standardised by their mean and sample sd (ddof = 1), global
//! bandwidth `h = n^(-1/5)`, a pilot estimate `f0` at every kernel with bandwidth
//! `h`, then kernel `j` gets bandwidth `h / (f0_j / g)^alpha` (`g` the geometric
//! mean of `f0`): wide in the tails, narrow at the peaks. A quirk kept on purpose:
//! an estimator refitted within one iteration keeps the global bandwidth of its
//! first fit (awkde stores `h` over the "scott" setting).
//!
//! The mixture (kde_ebm's label iteration): values sorted; the controls and patients
//! start as the two components; each round fits both KDEs, weights them by the
//! fraction labelled control, relabels every value by the larger weighted density,
//! fixes two-block splits by medians, sends values on the healthy side of the
//! controls' median (by the control component's CDF) to the control component, and
//! stops when the posterior ratios repeat exactly or the control fraction leaves
//! [0.1, 0.9] (at most 1500 rounds). The disease direction comes from the groups'
//! empirical CDFs under KDEs with alpha 0.3 (controls) and 0.1 (patients).
//!
//! Pure numerics, like [`crate::mixture_fit`].

use std::f64::consts::PI;

use crate::mixture_fit::{check_groups, MixtureError, MIN_PER_GROUP};

/// kde_ebm's `KDEMM` defaults.
const N_ITERS: usize = 1500;
const ALPHA: f64 = 0.3;
/// `disease_direction`'s patient-KDE sensitivity.
const ALPHA_PATIENTS_DIRECTION: f64 = 0.1;
/// `outlier_controls_quantile`: controls beyond it may change label even with
/// `fix_controls`.
const OUTLIER_CONTROLS_QUANTILE: f64 = 0.9;

/// An adaptive Gaussian KDE of one variable (awkde's `GaussianKDE`).
#[derive(Debug, Clone, PartialEq)]
pub struct Kde {
    mean: f64,
    sd: f64,
    /// Standardised kernel centres.
    centres: Vec<f64>,
    /// Inverse bandwidth of each kernel (standardised units).
    inv_bw: Vec<f64>,
    /// Global bandwidth, kept over refits (see the module docs).
    glob_bw: f64,
}

impl Kde {
    /// Fits a fresh estimator to `values` (at least 2, not all equal).
    fn fit(values: &[f64], alpha: f64) -> Kde {
        let glob_bw = (values.len() as f64).powf(-0.2);
        Self::refit(glob_bw, values, alpha)
    }

    /// Fits with a given global bandwidth.
    fn refit(glob_bw: f64, values: &[f64], alpha: f64) -> Kde {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let sd = var.sqrt();
        let centres: Vec<f64> = values.iter().map(|v| (v - mean) / sd).collect();
        let mut kde = Kde {
            mean,
            sd,
            inv_bw: vec![1.0 / glob_bw; centres.len()],
            centres,
            glob_bw,
        };
        let pilot: Vec<f64> = kde.centres.iter().map(|&y| kde.density_std(y)).collect();
        let ln_g = pilot.iter().map(|f| f.ln()).sum::<f64>() / n;
        let g = ln_g.exp();
        kde.inv_bw = pilot
            .iter()
            .map(|f| (f / g).powf(alpha) / glob_bw)
            .collect();
        kde
    }

    /// Density at a standardised point.
    fn density_std(&self, y: f64) -> f64 {
        let n = self.centres.len() as f64;
        let norm = 1.0 / ((2.0 * PI).sqrt() * self.sd) / n;
        self.centres
            .iter()
            .zip(&self.inv_bw)
            .map(|(&c, &ib)| {
                let d = y - c;
                ib * norm * (-0.5 * d * d * ib * ib).exp()
            })
            .sum()
    }

    /// Density at `x`.
    pub fn density(&self, x: f64) -> f64 {
        self.density_std((x - self.mean) / self.sd)
    }

    /// Log density at `x`, finite far in the tails where the density underflows.
    pub fn ln_density(&self, x: f64) -> f64 {
        let y = (x - self.mean) / self.sd;
        let n = self.centres.len() as f64;
        let ln_norm = -(2.0 * PI).sqrt().ln() - self.sd.ln() - n.ln();
        let terms: Vec<f64> = self
            .centres
            .iter()
            .zip(&self.inv_bw)
            .map(|(&c, &ib)| {
                let d = y - c;
                ib.ln() - 0.5 * d * d * ib * ib
            })
            .collect();
        let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        ln_norm + top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
    }
}

/// A fitted KDE mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct KdeFit {
    /// The no-event component.
    pub control: Kde,
    /// The event component.
    pub patient: Kde,
    /// Weight of the control component.
    pub control_fraction: f64,
    /// Values labelled control at the end.
    pub n_control_labels: usize,
    /// Values labelled patient at the end.
    pub n_patient_labels: usize,
    /// Relabelling rounds run (kde_ebm's `iter_`).
    pub iterations: usize,
}

impl KdeFit {
    /// `L_no`, `L_yes` of `x` as natural logarithms: each KDE times its weight
    /// (kde_ebm's `KDEMM.pdf`).
    pub fn ln_likelihoods(&self, x: f64) -> (f64, f64) {
        crate::mixture_fit::weighted_ln(
            self.control_fraction,
            self.control.ln_density(x),
            self.patient.ln_density(x),
        )
    }
}

/// The two groups' weighted KDE scores at the sorted values, the posterior
/// probability of the control component, and the control component's CDF and the
/// CDF difference's direction (kde_ebm's `disease_dirn`).
struct Scores {
    ratio: Vec<f64>,
    cdf_controls: Vec<f64>,
    disease_dirn: f64,
}

fn scores(values: &[f64], control: &Kde, patient: &Kde, mixture: f64) -> Scores {
    let c: Vec<f64> = values
        .iter()
        .map(|&x| control.density(x) * mixture)
        .collect();
    let p: Vec<f64> = values
        .iter()
        .map(|&x| patient.density(x) * (1.0 - mixture))
        .collect();
    let ratio = c.iter().zip(&p).map(|(c, p)| c / (c + p)).collect();
    let cdf = |s: &[f64]| {
        let mut acc = 0.0;
        let cum: Vec<f64> = s
            .iter()
            .map(|v| {
                acc += v;
                acc
            })
            .collect();
        let top = cum.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        cum.into_iter().map(|v| v / top).collect::<Vec<f64>>()
    };
    let (cdf_c, cdf_p) = (cdf(&c), cdf(&p));
    // numpy's nansum: 0/0 terms are skipped.
    let sum: f64 = cdf_c
        .iter()
        .zip(&cdf_p)
        .map(|(c, p)| (p - c) / (p + c))
        .filter(|v| !v.is_nan())
        .sum();
    Scores {
        ratio,
        cdf_controls: cdf_c,
        disease_dirn: -sign(sum),
    }
}

/// numpy's sign: -1, 0 or 1.
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Values of `sorted` whose label is `want`.
fn pick(sorted: &[f64], labels: &[bool], want: bool) -> Vec<f64> {
    sorted
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == want)
        .map(|(v, _)| *v)
        .collect()
}

/// numpy's median.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// numpy's quantile (linear interpolation) of sorted values.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    sorted[lo] + t * (sorted[hi] - sorted[lo])
}

/// kde_ebm's `disease_direction`: 1 when the disease raises the biomarker, -1
/// when it lowers it (0 when undecided).
fn disease_direction(sorted: &[f64], patient_label: &[bool]) -> f64 {
    let n = sorted.len() as f64;
    let controls = pick(sorted, patient_label, false);
    let patients = pick(sorted, patient_label, true);
    let mixture = controls.len() as f64 / n;
    let c = Kde::fit(&controls, ALPHA);
    let p = Kde::fit(&patients, ALPHA_PATIENTS_DIRECTION);
    scores(sorted, &c, &p, mixture).disease_dirn
}

/// Fits the KDE mixture of one biomarker to its controls' and patients' observed
/// values; see the module docs.
pub fn fit_kde(
    controls: &[f64],
    patients: &[f64],
    fix_controls: bool,
) -> Result<KdeFit, MixtureError> {
    check_groups(controls, patients, |group, values| {
        if values.iter().all(|v| *v == values[0]) {
            return Err(MixtureError::ZeroSd { group });
        }
        Ok(())
    })?;
    // Sorted values with their labels (true = patient); ties keep controls first.
    let mut pairs: Vec<(f64, bool)> = controls
        .iter()
        .map(|&v| (v, false))
        .chain(patients.iter().map(|&v| (v, true)))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let sorted: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let n = sorted.len();
    let mut labels0: Vec<bool> = pairs.iter().map(|p| p.1).collect();
    let patholog_dirn = disease_direction(&sorted, &labels0);
    if patholog_dirn == 0.0 {
        return Err(MixtureError::NoDirection);
    }
    let forced_normal = |cdf_controls: &[f64]| -> Vec<bool> {
        cdf_controls
            .iter()
            .map(|&c| {
                if patholog_dirn < 0.0 {
                    c > 0.5
                } else {
                    c < 0.5
                }
            })
            .collect()
    };
    let sorted_copy = {
        let mut s = sorted.clone();
        s.sort_by(f64::total_cmp);
        s
    };
    let fit_pair =
        |labels: &[bool], glob: Option<(f64, f64)>| -> Result<(Kde, Kde), MixtureError> {
            let c = pick(&sorted, labels, false);
            let p = pick(&sorted, labels, true);
            if c.len() < MIN_PER_GROUP || p.len() < MIN_PER_GROUP {
                return Err(MixtureError::Degenerate);
            }
            Ok(match glob {
                None => (Kde::fit(&c, ALPHA), Kde::fit(&p, ALPHA)),
                Some((gc, gp)) => (Kde::refit(gc, &c, ALPHA), Kde::refit(gp, &p, ALPHA)),
            })
        };
    let fraction = |labels: &[bool]| labels.iter().filter(|l| !**l).count() as f64 / n as f64;

    let mut labels = labels0.clone();
    let mut mixture = fraction(&labels);
    let mut old_ratio = vec![0.0; n];
    let mut iterations = 0;
    let (mut control, mut patient) = fit_pair(&labels, None)?;
    for i in 0..N_ITERS {
        // New estimators each round, so new global bandwidths.
        (control, patient) = fit_pair(&labels, None)?;
        let globs = (control.glob_bw, patient.glob_bw);
        let mut s = scores(&sorted, &control, &patient, mixture);
        let mut normal = forced_normal(&s.cdf_controls);
        if i == 0 {
            // The first round's prior: healthy-looking patients become controls
            // (in the reference this also rewrites the original labels).
            for (l, &f) in labels.iter_mut().zip(&normal) {
                if f {
                    *l = false;
                }
            }
            labels0.clone_from(&labels);
            mixture = fraction(&labels);
            (control, patient) = fit_pair(&labels, Some(globs))?;
            s = scores(&sorted, &control, &patient, mixture);
            normal = forced_normal(&s.cdf_controls);
        }
        if s.ratio == old_ratio {
            break;
        }
        iterations += 1;
        labels = s.ratio.iter().map(|&r| r < 0.5).collect();
        old_ratio = s.ratio;
        split_blocks(&sorted, &mut labels);
        for (l, &f) in labels.iter_mut().zip(&normal) {
            if f {
                *l = false;
            }
        }
        if fix_controls {
            // Controls keep their label unless they are extreme.
            let q = if s.disease_dirn > 0.0 {
                OUTLIER_CONTROLS_QUANTILE
            } else {
                1.0 - OUTLIER_CONTROLS_QUANTILE
            };
            let cut = quantile_sorted(&sorted_copy, q);
            for m in 0..n {
                let extreme = if s.disease_dirn > 0.0 {
                    sorted[m] > cut
                } else {
                    sorted[m] < cut
                };
                if !labels0[m] && !extreme {
                    labels[m] = false;
                }
            }
        }
        (control, patient) = fit_pair(&labels, Some(globs))?;
        mixture = fraction(&labels);
        if !(0.10..=0.90).contains(&mixture) {
            break;
        }
    }
    let n_patient_labels = labels.iter().filter(|l| **l).count();
    Ok(KdeFit {
        control,
        patient,
        control_fraction: mixture,
        n_control_labels: n - n_patient_labels,
        n_patient_labels,
        iterations,
    })
}

/// kde_ebm's fix of labels that alternate more than once along the sorted values:
/// the outer block on the far side is given the other label.
fn split_blocks(sorted: &[f64], labels: &mut [bool]) {
    let n = labels.len();
    let changes: Vec<usize> = (1..n).filter(|&i| labels[i] != labels[i - 1]).collect();
    let both = labels.iter().any(|l| *l) && labels.iter().any(|l| !*l);
    if changes.len() < 2 || !both {
        return;
    }
    let zeros: Vec<usize> = (0..n).filter(|&i| !labels[i]).collect();
    // The label to split on: 1 (patient) when the control labels are contiguous.
    let split_patient = zeros.windows(2).all(|w| w[1] - w[0] == 1);
    // Block lengths: up to the first change, between changes, after the last.
    let first = changes[0];
    let third = changes.get(2).copied().unwrap_or(n) - changes[1];
    let median_of = |want: bool| median(&pick(sorted, labels, want));
    let smaller = median_of(split_patient) < median_of(!split_patient);
    let replace: Vec<usize> = if smaller {
        (n - third..n).collect()
    } else {
        (0..first).collect()
    };
    for i in replace {
        labels[i] = !split_patient;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture_fit::tests::draw;

    #[test]
    fn kde_integrates_to_one_and_logs_agree() {
        let values = draw(80, 2.0, 0.7, 1);
        let kde = Kde::fit(&values, ALPHA);
        let (lo, hi, steps) = (-4.0, 8.0, 24_000);
        let dx = (hi - lo) / steps as f64;
        let area: f64 = (0..steps)
            .map(|i| kde.density(lo + (i as f64 + 0.5) * dx) * dx)
            .sum();
        assert!((area - 1.0).abs() < 1e-6, "{area}");
        for x in [-1.0, 0.5, 2.0, 3.3, 6.0] {
            assert!((kde.ln_density(x) - kde.density(x).ln()).abs() < 1e-10);
        }
        // Far in the tail the density underflows but its log does not.
        assert_eq!(kde.density(1e3), 0.0);
        assert!(kde.ln_density(1e3).is_finite());
    }

    #[test]
    fn separated_groups_keep_their_labels() {
        let controls = draw(150, 0.0, 1.0, 2);
        let patients = draw(150, 8.0, 1.0, 3);
        let fit = fit_kde(&controls, &patients, false).unwrap();
        assert_eq!(fit.n_control_labels, 150);
        assert!((fit.control_fraction - 0.5).abs() < 1e-12);
        let (no, yes) = fit.ln_likelihoods(0.0);
        assert!(no > yes + 10.0);
        let (no, yes) = fit.ln_likelihoods(8.0);
        assert!(yes > no + 10.0);
    }

    #[test]
    fn decreasing_biomarkers_work_too() {
        let controls = draw(150, 0.0, 1.0, 4);
        let patients = draw(150, -3.0, 1.0, 5);
        let fit = fit_kde(&controls, &patients, false).unwrap();
        let (no, yes) = fit.ln_likelihoods(-4.0);
        assert!(yes > no);
        let (no, yes) = fit.ln_likelihoods(1.0);
        assert!(no > yes);
    }

    #[test]
    fn split_blocks_relabels_the_far_block() {
        // Patients (true) on both sides of the controls: 1 1 0 0 0 1 1 1.
        let sorted: Vec<f64> = (0..8).map(f64::from).collect();
        let mut labels = vec![true, true, false, false, false, true, true, true];
        split_blocks(&sorted, &mut labels);
        // The controls are contiguous, and the patients' median (5) is not below
        // theirs (3): the first block becomes control, as kde_ebm relabels it.
        assert_eq!(
            labels,
            [false, false, false, false, false, true, true, true]
        );
    }

    #[test]
    fn median_and_quantile_follow_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((quantile_sorted(&s, 0.9) - 4.6).abs() < 1e-12);
        assert!((quantile_sorted(&s, 0.1) - 1.4).abs() < 1e-12);
    }
}
