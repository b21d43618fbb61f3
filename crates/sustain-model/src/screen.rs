//! E-M screening: every candidate position of an event is scored in single
//! precision with a rigorous bound on the error, and only the candidates whose
//! exact score could be the largest are scored exactly. The choice is the one that
//! scoring every candidate exactly makes (the first of equal maxima), at a fraction
//! of the cost: on `sim42` one candidate in seven is within reach of the best.
//!
//! Per subject `m` the single-precision part computes the centred stage values
//! `L[k] = -0.5 sum_b (x_b - obs_b mu_b[k])^2` (`x_b = 0` where missing) and their
//! log-sum-exp; the mixture
//! with the other subtypes is formed in double precision. With `u = 2^-24`,
//! `Z_b >= |mu_b[k]|` for every sequence and `U_m = sum_b obs_b (|x_b| + Z_b)^2`:
//! - each `x - mu` is within `2u (|x| + |mu|)` of its exact value (both inputs and
//!   the difference rounded once), so each square within `4u (|x| + |mu|)^2`, and
//!   the sum of `B` squares (one rounding per multiply-add) within
//!   `(4 + B) u U_m`: `|L~[k] - L[k]| <= (2 + B/2) u U_m`;
//! - the log-sum-exp is 1-Lipschitz in the `L[k]`; forming `L[k] - max` adds at
//!   most `u U_m`, the single-precision exponential at most `64u` relative (test
//!   `kernels/avx2.rs`, `tests::exp8f_is_accurate`), the sum of `N + 1` terms
//!   `(N + 1) u`;
//! - `ln(e^a + e^b)` is 1-Lipschitz in `b`.
//!
//! So a subject's score is within `(3 + B/2) u U_m + (N + 67) u` of its exact
//! value, and a candidate's total within the sum over subjects, `beta`. The
//! screen keeps every candidate whose score is within `2 (2 beta + margin)` of the
//! best, the margin covering the double-precision parts and the difference
//! between a fresh and an incremental evaluation (tested to 1e-12 relative).

use crate::incremental::IncrementalLikelihood;
use crate::kernels::{ln_plus, screen_candidate, Isa, LANES, SCREEN_BLOCK};
use crate::likelihood::Likelihood;
use crate::sequence::Sequence;
use crate::stages::StageValues;

/// Unit roundoff of f32.
const U32: f64 = 1.0 / (1u64 << 24) as f64;

/// Single-precision copy of the data and the error bound of a candidate's score.
#[derive(Debug, Clone)]
pub(crate) struct Screen {
    n_biomarkers: usize,
    n_stages: usize,
    /// Row length of `mu`: stages rounded up to the kernel's block.
    stride: usize,
    n_subjects: usize,
    /// `x[g][b][lane]` (scaled by 1/sigma; 0 where missing or padding).
    x: Vec<f32>,
    /// `obs[g][b][lane]`: 1 observed, 0 missing or padding.
    obs: Vec<f32>,
    /// Per padded subject `0.5 sum_obs x^2`: the centred form's offset from the
    /// stage kernel's `l`.
    h: Vec<f64>,
    /// Bound on `|screened - exact|` of a candidate's total (`beta`).
    beta: f64,
    /// `sum_m (|h_m| + U_m + 1)`: scale of the double-precision margin.
    scale: f64,
    /// `mu[b][k]` of the candidate being scored, rows of `stride` (padding 0).
    mu: Vec<f32>,
    /// Two groups' stage blocks (the AVX-512 kernel takes groups in pairs).
    buf: Vec<f32>,
    /// Whether the AVX-512 kernel screens (else the AVX2 one).
    avx512: bool,
    values: StageValues,
    base_values: StageValues,
    moved: Vec<bool>,
    dirty: Vec<bool>,
    others: Vec<f64>,
    reference: Vec<f64>,
    scores: Vec<f64>,
    /// Candidates screened so far and those kept for exact scoring.
    screened: u64,
    kept: u64,
}

/// Candidates screened before [`Screen::pays`] judges.
const TRIAL: u64 = 200;

impl Screen {
    /// The screen of `lik`'s data; `None` where the CPU has no AVX2 (the caller then
    /// scores every candidate exactly).
    pub(crate) fn new(lik: &Likelihood) -> Option<Self> {
        if !matches!(lik.isa(), Isa::Avx2 | Isa::Avx512) || !cfg!(target_arch = "x86_64") {
            return None;
        }
        let events = lik.events();
        let (nb, ns) = (events.n_biomarkers(), events.n_stages());
        let inv_sigma = 1.0 / events.sigma();
        // Largest |mu| any sequence can give: the curve only takes values between
        // its knots, z_min, the thresholds and z_max.
        let z: Vec<f64> = (0..nb)
            .map(|b| {
                let top = events
                    .biomarker_events(b)
                    .iter()
                    .map(|&e| events.event(e).z.abs())
                    .fold(events.z_max(b).abs(), f64::max);
                top.max(events.z_min().abs()) * inv_sigma
            })
            .collect();
        let ng = lik.n_groups();
        let mut x = Vec::with_capacity(ng * nb * LANES);
        let mut obs = Vec::with_capacity(ng * nb * LANES);
        let mut h = vec![0.0; ng * LANES];
        let (mut beta, mut scale) = (0.0, 0.0);
        for g in 0..ng {
            let (xg, og) = lik.group_arrays(g);
            x.extend(xg.iter().map(|&v| v as f32));
            obs.extend(og.iter().map(|&v| v as f32));
            for lane in 0..LANES {
                let m = g * LANES + lane;
                if m >= lik.n_subjects() {
                    break;
                }
                let (mut hm, mut um) = (0.0, 0.0);
                for b in 0..nb {
                    let (v, o) = (xg[b * LANES + lane], og[b * LANES + lane]);
                    hm += 0.5 * o * v * v;
                    um += o * (v.abs() + z[b]).powi(2);
                }
                h[m] = hm;
                beta += (3.0 + 0.5 * nb as f64) * U32 * um + (ns as f64 + 67.0) * U32;
                scale += hm.abs() + um + 1.0;
            }
        }
        let stride = ns.div_ceil(SCREEN_BLOCK) * SCREEN_BLOCK;
        Some(Self {
            n_biomarkers: nb,
            n_stages: ns,
            stride,
            n_subjects: lik.n_subjects(),
            x,
            obs,
            h,
            beta,
            scale,
            mu: vec![0.0; nb * stride],
            buf: vec![0.0; 2 * stride * LANES],
            avx512: lik.isa() == Isa::Avx512,
            values: StageValues::empty(),
            base_values: StageValues::empty(),
            moved: Vec::new(),
            dirty: Vec::new(),
            others: Vec::new(),
            reference: Vec::new(),
            scores: Vec::new(),
            screened: 0,
            kept: 0,
        })
    }

    /// The screened score of each candidate for subtype `t` of `state`'s current
    /// mixture (the total log-likelihood up to a constant shared by all candidates,
    /// within `beta` of exact) into `self.scores`; returns the best score and the
    /// half-width of the window that holds every candidate that could be the best.
    fn score(
        &mut self,
        lik: &Likelihood,
        state: &IncrementalLikelihood,
        t: usize,
        candidates: &[Sequence],
    ) -> (f64, f64) {
        let (nb, ns, stride) = (self.n_biomarkers, self.n_stages, self.stride);
        let events = lik.events();
        let inv_sigma = 1.0 / events.sigma();
        state.others_mix(t, &mut self.others, &mut self.reference);
        if state.current().n_subtypes() == 1 {
            self.others.iter_mut().for_each(|v| *v = f64::NEG_INFINITY);
        } else {
            ln_plus(&mut self.others, &self.reference);
        }
        let ln_f = state.current().fractions()[t].ln();
        let others_scale: f64 = self.others[..self.n_subjects]
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.abs())
            .sum();
        let base = &state.current().sequences()[t];
        self.base_values.refill(events, base);
        self.moved.resize(nb, false);
        // `mu` holds the base's rows; a candidate rewrites the rows it moves, and
        // the next candidate restores those it does not move (`dirty`).
        for b in 0..nb {
            convert_row(
                &mut self.mu[b * stride..],
                self.base_values.biomarker(b),
                inv_sigma,
            );
        }
        self.dirty.clear();
        self.dirty.resize(nb, false);
        self.scores.clear();
        for c in candidates {
            // Only biomarkers with an event at another position have new values.
            for (b, m) in self.moved.iter_mut().enumerate() {
                *m = events
                    .biomarker_events(b)
                    .iter()
                    .any(|&e| base.position(e) != c.position(e));
            }
            self.values
                .refill_moved(&self.base_values, events, c, &self.moved);
            for b in 0..nb {
                if self.moved[b] {
                    convert_row(
                        &mut self.mu[b * stride..],
                        self.values.biomarker(b),
                        inv_sigma,
                    );
                    self.dirty[b] = true;
                } else if self.dirty[b] {
                    convert_row(
                        &mut self.mu[b * stride..],
                        self.base_values.biomarker(b),
                        inv_sigma,
                    );
                    self.dirty[b] = false;
                }
            }
            let total = screen_candidate(
                self.avx512,
                &self.x,
                &self.obs,
                &self.mu,
                stride,
                ns,
                &mut self.buf,
                &self.others,
                &self.h,
                ln_f,
                self.n_subjects,
            );
            self.scores.push(total);
        }
        let best = self
            .scores
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        let margin = 1e-9 * (self.scale + others_scale + best.abs());
        (best, 2.0 * (self.beta + margin))
    }

    /// Indices (ascending) of the candidates for subtype `t` of `state`'s current
    /// mixture whose exact total log-likelihood may be the largest: every other
    /// candidate is certainly below one of these.
    pub(crate) fn window(
        &mut self,
        lik: &Likelihood,
        state: &IncrementalLikelihood,
        t: usize,
        candidates: &[Sequence],
    ) -> Vec<usize> {
        let all = || (0..candidates.len()).collect();
        if !self.pays() {
            return all();
        }
        let (best, width) = self.score(lik, state, t, candidates);
        if !best.is_finite() || !width.is_finite() || self.scores.iter().any(|v| v.is_nan()) {
            return all();
        }
        let window: Vec<usize> = (0..candidates.len())
            .filter(|&j| self.scores[j] >= best - width)
            .collect();
        self.screened += candidates.len() as u64;
        self.kept += window.len() as u64;
        window
    }

    /// Whether screening still saves work: on data where the bound is wide
    /// against the gaps between candidates (very many biomarkers per subject, say)
    /// most candidates are scored exactly anyway, and then the screen stops after
    /// a trial of [`TRIAL`] candidates, so it never costs much more than exact
    /// scoring alone.
    fn pays(&self) -> bool {
        self.screened < TRIAL || 2 * self.kept < self.screened
    }
    /// The screened scores of the last [`Self::window`] and the bound `beta` on
    /// each one's distance from its exact value up to a shared constant (tests).
    #[cfg(test)]
    pub(crate) fn last_scores(&self) -> (&[f64], f64) {
        (&self.scores, self.beta)
    }
}

/// `dst[k] = src[k] / sigma` rounded to f32, for the stages of `src`.
fn convert_row(dst: &mut [f32], src: &[f64], inv_sigma: f64) {
    for (d, v) in dst.iter_mut().zip(src) {
        *d = (v * inv_sigma) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::test_cohort;
    use crate::{Dataset, MissingConvention, Mixture};
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    /// On data with missing values and outliers, every screened score is within
    /// `beta` of the exact log-likelihood up to one constant shared by all
    /// candidates, and the window holds the exact best.
    #[test]
    fn screened_scores_are_within_their_bound() {
        let w = test_cohort(203, 7, &[0.5, 0.3, 0.2], 11);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        // Outliers (large z) and extra missing values.
        let mut values = w.data.values().to_owned();
        for _ in 0..40 {
            let (m, b) = (rng.gen_range(0..203), rng.gen_range(0..7));
            values[[m, b]] = if rng.gen_bool(0.5) {
                f64::NAN
            } else {
                rng.gen_range(-15.0..40.0)
            };
        }
        for m in 0..203 {
            if (0..7).all(|b| values[[m, b]].is_nan()) {
                values[[m, 0]] = 1.0;
            }
        }
        let data = Dataset::new(values).unwrap();
        // Both kernels (AVX2, and AVX-512 where the CPU has it; 203 subjects make an
        // odd number of groups, so the AVX-512 kernel's lone last group runs too).
        let kernels = [Isa::Avx2, Isa::Avx512];
        for (conv, isa) in [MissingConvention::Marginalise, MissingConvention::Reference]
            .into_iter()
            .flat_map(|c| kernels.map(|i| (c, i)))
        {
            let Some(lik) = Likelihood::new(w.events.clone(), &data, conv)
                .unwrap()
                .with_kernels(isa)
            else {
                eprintln!("skipped: no {isa:?} here");
                continue;
            };
            let lik = Arc::new(lik);
            let Some(mut screen) = Screen::new(&lik) else {
                eprintln!("skipped: no AVX2 here");
                return;
            };
            let ev = lik.events();
            let mut worst = 0.0f64;
            for trial in 0..12 {
                let n_sub = 1 + trial % 3;
                let seqs: Vec<Sequence> =
                    (0..n_sub).map(|_| Sequence::random(ev, &mut rng)).collect();
                let mut f: Vec<f64> = (0..n_sub).map(|_| rng.gen_range(0.05..1.0)).collect();
                let total: f64 = f.iter().sum();
                f.iter_mut().for_each(|v| *v /= total);
                let base = Mixture::new(seqs, f).unwrap();
                let state = IncrementalLikelihood::new(Arc::clone(&lik), &base);
                let t = trial % n_sub;
                let e = rng.gen_range(0..ev.n_events());
                let seq = &base.sequences()[t];
                let mut candidates: Vec<Sequence> = seq
                    .allowed_positions(ev, e)
                    .map(|to| {
                        let mut c = seq.clone();
                        c.move_unchecked(e, to);
                        c
                    })
                    .collect();
                candidates.push(Sequence::random(ev, &mut rng));
                let window = screen.window(&lik, &state, t, &candidates);
                let (scores, beta) = screen.last_scores();
                let exact: Vec<f64> = candidates
                    .iter()
                    .map(|c| {
                        let mut m = base.clone();
                        m.sequences_mut()[t] = c.clone();
                        lik.loglike(&m)
                    })
                    .collect();
                let gaps: Vec<f64> = exact.iter().zip(scores).map(|(x, s)| x - s).collect();
                let lo = gaps.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = gaps.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                assert!(
                    hi - lo <= 2.0 * beta,
                    "{conv:?} {isa:?} trial {trial}: screened scores spread {} around the exact ones, bound 2 x {beta}",
                    hi - lo
                );
                worst = worst.max((hi - lo) / (2.0 * beta));
                let best = crate::batch::first_max(&exact);
                assert!(
                    window.contains(&best),
                    "{conv:?} {isa:?} trial {trial}: window {window:?} misses {best}"
                );
            }
            // How much of the bound the errors use (the bound is a worst case).
            eprintln!("{conv:?} {isa:?}: largest spread / bound {worst:.4}");
        }
    }
}

#[cfg(test)]
mod stop_tests {
    use super::*;
    use crate::simulate::test_cohort;
    use crate::MissingConvention;
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    /// Where the bound is wide against the gaps between candidates (120 biomarkers
    /// per subject), the screen keeps most candidates, and after its trial it
    /// stops scoring and hands every candidate to exact scoring.
    #[test]
    fn screen_stops_where_it_does_not_pay() {
        let w = test_cohort(160, 120, &[0.6, 0.4], 9);
        let lik = Arc::new(
            Likelihood::new(w.events.clone(), &w.data, MissingConvention::Marginalise).unwrap(),
        );
        let Some(mut screen) = Screen::new(&lik) else {
            eprintln!("skipped: no AVX2 here");
            return;
        };
        let state = IncrementalLikelihood::new(Arc::clone(&lik), &w.truth);
        let ev = lik.events();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
        while screen.screened < TRIAL {
            let t = rng.gen_range(0..2);
            let e = rng.gen_range(0..ev.n_events());
            let seq = &w.truth.sequences()[t];
            let c: Vec<Sequence> = seq
                .allowed_positions(ev, e)
                .map(|to| {
                    let mut c = seq.clone();
                    c.move_unchecked(e, to);
                    c
                })
                .collect();
            let window = screen.window(&lik, &state, t, &c);
            assert!(!window.is_empty());
        }
        assert!(
            2 * screen.kept >= screen.screened,
            "kept {} of {}",
            screen.kept,
            screen.screened
        );
        assert!(!screen.pays());
        let before = screen.screened;
        let seq = &w.truth.sequences()[0];
        let c = vec![seq.clone(), Sequence::random(ev, &mut rng)];
        assert_eq!(screen.window(&lik, &state, 0, &c), vec![0, 1]);
        assert_eq!(screen.screened, before, "no screening after the trial");
    }
}
