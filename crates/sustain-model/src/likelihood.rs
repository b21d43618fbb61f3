//! The SuStaIn z-score likelihood (spec section 3), exact, in the log domain.

use crate::data::Dataset;
use crate::error::{ModelError, Result};
use crate::events::EventSet;
use crate::kernels::{self, GroupInput, Isa, Lanes, StageInput, LANES, TOTAL_BLOCK};
use crate::mixture::Mixture;
use crate::sequence::Sequence;
use crate::stages::StageValues;
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// How a missing value enters the likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingConvention {
    /// Marginalise: a missing value contributes nothing (constant 0). The default.
    #[default]
    Marginalise,
    /// The reference's constant `-0.5 ln(2 pi) - 0.5 ln(1/z_max[b])^2` per missing
    /// value, so absolute log-likelihoods match pySuStaIn. Posteriors, E-M and MCMC
    /// decisions are the same under both conventions.
    Reference,
}

impl std::str::FromStr for MissingConvention {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "marginalise" | "marginalize" => Ok(Self::Marginalise),
            "reference" => Ok(Self::Reference),
            other => Err(format!(
                "unknown missing-value convention '{other}' (expected marginalise or reference)"
            )),
        }
    }
}

/// Data prepared for fast evaluation against one event set: values laid out in
/// groups of [`LANES`] subjects, biomarker-major inside a group, and every constant
/// that does not depend on the sequence precomputed.
///
/// Invariant: built from a validated [`Dataset`] whose biomarkers match the events.
#[derive(Debug, Clone)]
pub struct Likelihood {
    events: EventSet,
    /// The data it was prepared from (subsets for E-M splits and folds, and the GPU
    /// backend's upload, start from it).
    data: std::sync::Arc<Dataset>,
    convention: MissingConvention,
    isa: Isa,
    n_subjects: usize,
    /// `x[group][b][lane]`, 0 for missing and padding.
    x: Vec<f64>,
    /// Per group, the biomarkers with a missing value in some lane
    /// (`miss_col_start[g]..miss_col_start[g+1]`) and for each a lane mask, 1 where
    /// missing (`miss_mask[i][lane]`): the kernels add back `mu^2/2` column-wise.
    miss_cols: Vec<u16>,
    miss_mask: Vec<f64>,
    miss_col_start: Vec<usize>,
    /// `obs[group][b][lane]`: 1 observed, 0 missing or padding.
    obs: Vec<f64>,
    /// Per group, the largest `|x|` (bounds how much a move can change a stage).
    group_xmax: Vec<f64>,
    /// Per subject: `sum_obs(-x^2/2 - ln(2 pi)/2 - ln sigma)` + missing constants - ln(N+1).
    subject_const: Vec<f64>,
    /// The subjects again, in groups of similar missing patterns, for the full
    /// likelihood (`None` where that saves little or would take much memory).
    sorted: Option<SortedGroups>,
}

/// Subjects regrouped so that each lane group's missing values fall in few
/// biomarkers: the stage kernel adds one masked column per biomarker missing
/// somewhere in a group (on W1, 5.44 columns per group of 8 in subject order, 1.66
/// sorted; W2 8.26 and 2.84), so the full likelihood does fewer multiply-adds. A subject's value is
/// the same bits in any group: a column where its own value is not missing adds an
/// exact 0 to its lane.
#[derive(Debug, Clone)]
struct SortedGroups {
    /// `order[i]`: the subject at sorted position `i`.
    order: Vec<u32>,
    x: Vec<f64>,
    miss_cols: Vec<u16>,
    miss_mask: Vec<f64>,
    miss_col_start: Vec<usize>,
}

/// Most values a sorted copy of the data may hold (64 MB).
const SORTED_MAX_VALUES: usize = 8 << 20;

/// Per group of `LANES` consecutive entries of `order` (subject indices into
/// `values`), the biomarkers with a missing value in some lane and their lane masks
/// (1 where missing): `(cols, masks, start)` with group `g`'s columns in
/// `start[g]..start[g + 1]`.
fn missing_columns(
    values: ndarray::ArrayView2<f64>,
    order: &[usize],
) -> (Vec<u16>, Vec<f64>, Vec<usize>) {
    let nb = values.ncols();
    let n_groups = order.len().div_ceil(LANES);
    let (mut cols, mut masks, mut start) =
        (Vec::new(), Vec::new(), Vec::with_capacity(n_groups + 1));
    for g in 0..n_groups {
        start.push(cols.len());
        let lanes = &order[g * LANES..((g + 1) * LANES).min(order.len())];
        for b in 0..nb {
            let mut mask = [0.0; LANES];
            let mut any = false;
            for (lane, &m) in lanes.iter().enumerate() {
                if values[[m, b]].is_nan() {
                    mask[lane] = 1.0;
                    any = true;
                }
            }
            if any {
                cols.push(b as u16);
                masks.extend_from_slice(&mask);
            }
        }
    }
    start.push(cols.len());
    (cols, masks, start)
}

impl SortedGroups {
    /// The sorted layout of `values`, if it has at most 80% of the masked columns
    /// of the subject order `unsorted_cols` and fits [`SORTED_MAX_VALUES`].
    fn build(values: ndarray::ArrayView2<f64>, sigma: f64, unsorted_cols: usize) -> Option<Self> {
        let (m, nb) = values.dim();
        if unsorted_cols == 0 || m.div_ceil(LANES) * LANES * nb > SORTED_MAX_VALUES {
            return None;
        }
        let sorted = Self::layout(values, sigma);
        (sorted.miss_cols.len() * 5 <= unsorted_cols * 4).then_some(sorted)
    }

    /// The sorted layout of `values`, whatever it saves.
    fn layout(values: ndarray::ArrayView2<f64>, sigma: f64) -> Self {
        let (m, nb) = values.dim();
        // Complete subjects first, then by number of missing values, then by which
        // biomarkers are missing (lexicographic), then by index (a total order).
        let missing: Vec<Vec<u16>> = (0..m)
            .map(|i| {
                (0..nb)
                    .filter(|&b| values[[i, b]].is_nan())
                    .map(|b| b as u16)
                    .collect()
            })
            .collect();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| {
            (missing[a].len(), &missing[a], a).cmp(&(missing[b].len(), &missing[b], b))
        });
        let (miss_cols, miss_mask, miss_col_start) = missing_columns(values, &order);
        let mut x = vec![0.0; m.div_ceil(LANES) * nb * LANES];
        for (i, &s) in order.iter().enumerate() {
            let (g, lane) = (i / LANES, i % LANES);
            for b in 0..nb {
                let v = values[[s, b]];
                if !v.is_nan() {
                    x[(g * nb + b) * LANES + lane] = v / sigma;
                }
            }
        }
        Self {
            order: order.iter().map(|&i| i as u32).collect(),
            x,
            miss_cols,
            miss_mask,
            miss_col_start,
        }
    }

    fn group(&self, g: usize, nb: usize) -> GroupInput<'_> {
        GroupInput {
            x: &self.x[g * nb * LANES..(g + 1) * nb * LANES],
            miss_cols: &self.miss_cols[self.miss_col_start[g]..self.miss_col_start[g + 1]],
            miss_mask: &self.miss_mask
                [self.miss_col_start[g] * LANES..self.miss_col_start[g + 1] * LANES],
        }
    }
}

/// The three posteriors of spec section 3 for a fixed `(S, f)`, each normalised per
/// subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Posteriors {
    /// `prob_subtype[m][s]`.
    pub subtype: Array2<f64>,
    /// `prob_stage[m][k]`.
    pub stage: Array2<f64>,
    /// `prob_subtype_stage[m][k][s]`.
    pub subtype_stage: Array3<f64>,
}

impl Likelihood {
    /// Prepares `data` for the model `events`.
    pub fn new(events: EventSet, data: &Dataset, convention: MissingConvention) -> Result<Self> {
        let nb = events.n_biomarkers();
        if data.n_biomarkers() != nb {
            return Err(ModelError::BiomarkerCount {
                data: data.n_biomarkers(),
                model: nb,
            });
        }
        let n_subjects = data.n_subjects();
        let n_groups = n_subjects.div_ceil(LANES);
        let sigma = events.sigma();
        let values = data.values();
        let mut x = vec![0.0; n_groups * nb * LANES];
        let mut obs = vec![0.0; n_groups * nb * LANES];
        let mut subject_const = vec![0.0; n_subjects];
        let log_stages = (events.n_stages() as f64).ln();
        for g in 0..n_groups {
            for lane in 0..LANES {
                let m = g * LANES + lane;
                if m >= n_subjects {
                    break;
                }
                let mut c = -log_stages;
                for b in 0..nb {
                    let v = values[[m, b]];
                    if v.is_nan() {
                        if convention == MissingConvention::Reference {
                            let t = (1.0 / (events.z_max(b) - events.z_min())).ln();
                            c += -HALF_LN_2PI - 0.5 * t * t;
                        }
                    } else {
                        let xs = v / sigma;
                        x[(g * nb + b) * LANES + lane] = xs;
                        obs[(g * nb + b) * LANES + lane] = 1.0;
                        c += -0.5 * xs * xs - HALF_LN_2PI - sigma.ln();
                    }
                }
                subject_const[m] = c;
            }
        }
        let subject_order: Vec<usize> = (0..n_subjects).collect();
        let (miss_cols, miss_mask, miss_col_start) = missing_columns(values.view(), &subject_order);
        let group_xmax = x
            .chunks(nb * LANES)
            .map(|c| c.iter().fold(0.0f64, |m, v| m.max(v.abs())))
            .collect();
        let sorted = SortedGroups::build(values.view(), sigma, miss_cols.len());
        Ok(Self {
            events,
            data: std::sync::Arc::new(data.clone()),
            convention,
            isa: Isa::detect(),
            n_subjects,
            x,
            miss_cols,
            miss_mask,
            miss_col_start,
            obs,
            group_xmax,
            subject_const,
            sorted,
        })
    }

    /// The event set.
    pub fn events(&self) -> &EventSet {
        &self.events
    }
    /// The data set this likelihood was prepared from.
    pub fn data(&self) -> &Dataset {
        &self.data
    }
    /// Number of subjects `M`.
    pub fn n_subjects(&self) -> usize {
        self.n_subjects
    }
    /// The missing-value convention.
    pub fn convention(&self) -> MissingConvention {
        self.convention
    }
    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// The portable kernels (always available; for tests comparing kernels).
    pub fn with_baseline_kernels(mut self) -> Self {
        self.isa = Isa::Baseline;
        self
    }
    /// The kernels of `isa` if this CPU supports them (for tests and benchmarks
    /// comparing kernels), else `None`.
    pub fn with_kernels(mut self, isa: Isa) -> Option<Self> {
        if !isa.is_supported() {
            return None;
        }
        self.isa = isa;
        Some(self)
    }
    /// The sequence-independent part of `log p(x_m)`, including `-ln(N+1)`.
    pub fn subject_constants(&self) -> &[f64] {
        &self.subject_const
    }
    pub(crate) fn n_groups(&self) -> usize {
        self.miss_col_start.len() - 1
    }

    /// The subjects `subjects` (a range of this likelihood's subjects) as a
    /// likelihood of their own, for splitting one chain's work over threads. Every
    /// lane group of the shard is the corresponding group of `self`, so per-group
    /// results (and the block partials of [`crate::IncrementalLikelihood`]) are the
    /// same bits in the shard as in the whole.
    ///
    /// # Panics
    /// If a bound of `subjects` is neither a multiple of [`TOTAL_BLOCK`] nor the
    /// number of subjects, or the range is empty.
    pub fn shard(&self, subjects: std::ops::Range<usize>) -> Likelihood {
        assert!(
            subjects.start.is_multiple_of(TOTAL_BLOCK)
                && subjects.start < subjects.end
                && (subjects.end.is_multiple_of(TOTAL_BLOCK) || subjects.end == self.n_subjects)
                && subjects.end <= self.n_subjects,
            "a shard starts on a block boundary and holds subjects"
        );
        let nb = self.events.n_biomarkers();
        let (g0, g1) = (subjects.start / LANES, subjects.end.div_ceil(LANES));
        let cols = self.miss_col_start[g0]..self.miss_col_start[g1];
        let x = self.x[g0 * nb * LANES..g1 * nb * LANES].to_vec();
        let obs = self.obs[g0 * nb * LANES..g1 * nb * LANES].to_vec();
        let miss_cols = self.miss_cols[cols.clone()].to_vec();
        let miss_mask = self.miss_mask[cols.start * LANES..cols.end * LANES].to_vec();
        let miss_col_start: Vec<usize> = self.miss_col_start[g0..=g1]
            .iter()
            .map(|c| c - cols.start)
            .collect();
        Likelihood {
            events: self.events.clone(),
            data: std::sync::Arc::new(
                self.data
                    .select(&subjects.clone().collect::<Vec<_>>())
                    .unwrap_or_else(|_| unreachable!("a shard's subjects exist")),
            ),
            convention: self.convention,
            isa: self.isa,
            n_subjects: subjects.len(),
            x,
            miss_cols,
            miss_mask,
            miss_col_start,
            obs,
            group_xmax: self.group_xmax[g0..g1].to_vec(),
            subject_const: self.subject_const[subjects].to_vec(),
            // Shards serve chains, which never evaluate full likelihoods.
            sorted: None,
        }
    }
    /// Number of subjects rounded up to whole lane groups.
    pub fn padded_subjects(&self) -> usize {
        self.n_groups() * LANES
    }

    /// Per subject `log sum_k exp(L[k][m])`, where `L` is the stage-dependent part of
    /// `log p(x_m | k)` (no constants). `out` must hold [`Self::padded_subjects`].
    pub fn subtype_lse_into(&self, sequence: &Sequence, scratch: &mut Scratch, out: &mut [f64]) {
        let mu = StageValues::new(&self.events, sequence);
        self.subtype_lse_from_stage_values(&mu, scratch, out);
    }

    /// As [`Self::subtype_lse_into`] from precomputed stage values.
    pub fn subtype_lse_from_stage_values(
        &self,
        mu: &StageValues,
        scratch: &mut Scratch,
        out: &mut [f64],
    ) {
        assert!(out.len() >= self.padded_subjects(), "output too short");
        self.fill_stage_input(mu, scratch);
        let groups = self.groups();
        let mut block = std::mem::take(&mut scratch.block);
        kernels::subtype_lse(
            self.isa,
            &self.stage_input(scratch),
            &groups,
            &mut block,
            out,
        );
        scratch.block = block;
    }

    /// Largest `|x|` (scaled by 1/sigma) of each group.
    pub(crate) fn group_xmax(&self) -> &[f64] {
        &self.group_xmax
    }

    /// Every group's values and observed masks (`[g][b][lane]` each).
    pub(crate) fn all_group_arrays(&self) -> (&[f64], &[f64]) {
        (&self.x, &self.obs)
    }

    /// Group `g`'s values and observed mask (`[b][lane]` each).
    pub(crate) fn group_arrays(&self, g: usize) -> (&[f64], &[f64]) {
        let nb = self.events.n_biomarkers();
        let r = g * nb * LANES..(g + 1) * nb * LANES;
        (&self.x[r.clone()], &self.obs[r])
    }

    /// Stage kernel inputs from stage values (scaled by 1/sigma) into `scratch`.
    pub(crate) fn fill_stage_input(&self, mu: &StageValues, scratch: &mut Scratch) {
        let nb = self.events.n_biomarkers();
        let ns = self.events.n_stages();
        let stride = stage_stride(ns);
        let inv_sigma = 1.0 / self.events.sigma();
        scratch.prepare(nb, ns);
        scratch.neg_half_sum_mu_sq.iter_mut().for_each(|v| *v = 0.0);
        for b in 0..nb {
            let src = mu.biomarker(b);
            for k in 0..ns {
                let m = src[k] * inv_sigma;
                scratch.mu[b * stride + k] = m;
                scratch.half_mu_sq[b * stride + k] = 0.5 * m * m;
                scratch.neg_half_sum_mu_sq[k] -= 0.5 * m * m;
            }
        }
    }

    pub(crate) fn stage_input<'a>(&self, scratch: &'a Scratch) -> StageInput<'a> {
        StageInput {
            mu: &scratch.mu,
            half_mu_sq: &scratch.half_mu_sq,
            neg_half_sum_mu_sq: &scratch.neg_half_sum_mu_sq,
            n_biomarkers: self.events.n_biomarkers(),
            n_stages: self.events.n_stages(),
            stride: stage_stride(self.events.n_stages()),
        }
    }

    pub(crate) fn groups(&self) -> Vec<GroupInput<'_>> {
        (0..self.n_groups()).map(|g| self.group(g)).collect()
    }

    /// The stage kernel's inputs of group `g`.
    pub(crate) fn group(&self, g: usize) -> GroupInput<'_> {
        let nb = self.events.n_biomarkers();
        GroupInput {
            x: &self.x[g * nb * LANES..(g + 1) * nb * LANES],
            miss_cols: &self.miss_cols[self.miss_col_start[g]..self.miss_col_start[g + 1]],
            miss_mask: &self.miss_mask
                [self.miss_col_start[g] * LANES..self.miss_col_start[g + 1] * LANES],
        }
    }

    /// Per subject `log p(x_m)` from per-subtype stage sums (`lse[s]`, as from
    /// [`Self::subtype_lse_into`]) and fractions. `out` holds padded subjects;
    /// padding entries are meaningless.
    pub fn combine_into(&self, fractions: &[f64], lse: &[&[f64]], out: &mut [f64]) {
        let log_f: Vec<f64> = fractions.iter().map(|f| f.ln()).collect();
        kernels::mixture(self.isa, &log_f, lse, out);
        for (o, c) in out.iter_mut().zip(&self.subject_const) {
            *o += c;
        }
    }

    /// Sum over real subjects of per-subject values (padding ignored), compensated.
    pub fn sum_subjects(&self, per_subject: &[f64]) -> f64 {
        neumaier_sum(&per_subject[..self.n_subjects])
    }

    /// Total log-likelihood of a mixture.
    ///
    /// ```
    /// use sustain_model::*;
    /// let ev = EventSet::uniform(2, &[1.0, 2.0], 5.0).unwrap();
    /// let data = Dataset::from_rows(&[vec![0.1, 2.0], vec![f64::NAN, 1.5]]).unwrap();
    /// let lik = Likelihood::new(ev.clone(), &data, MissingConvention::Marginalise).unwrap();
    /// let seq = Sequence::new(&ev, &[0, 1, 2, 3]).unwrap();
    /// let ll = lik.loglike(&Mixture::single(seq));
    /// assert!(ll.is_finite() && ll < 0.0);
    /// ```
    pub fn loglike(&self, mixture: &Mixture) -> f64 {
        let per = self.log_p_subjects_padded(mixture, &mut Scratch::default());
        self.sum_subjects(&per)
    }

    /// Per subject `log p(x_m)` of a mixture.
    pub fn log_p_subjects(&self, mixture: &Mixture) -> Vec<f64> {
        let mut per = self.log_p_subjects_padded(mixture, &mut Scratch::default());
        per.truncate(self.n_subjects);
        per
    }

    fn log_p_subjects_padded(&self, mixture: &Mixture, scratch: &mut Scratch) -> Vec<f64> {
        let mp = self.padded_subjects();
        // SIMD CPUs: all subtypes at once, relative to a bound of the stage values.
        let mut scratches: Vec<Scratch> = mixture
            .sequences()
            .iter()
            .map(|seq| {
                let mut sc = Scratch::default();
                self.fill_stage_input(&StageValues::new(&self.events, seq), &mut sc);
                sc
            })
            .collect();
        let mut block = std::mem::take(&mut scratches[0].block);
        let sts: Vec<StageInput> = scratches.iter().map(|sc| self.stage_input(sc)).collect();
        let log_f: Vec<f64> = mixture.fractions().iter().map(|f| f.ln()).collect();
        let mut out = vec![0.0; mp];
        let nb = self.events.n_biomarkers();
        let done = match &self.sorted {
            Some(sorted) => {
                let groups: Vec<GroupInput> =
                    (0..self.n_groups()).map(|g| sorted.group(g, nb)).collect();
                let mut by_position = vec![0.0; mp];
                let done = kernels::mixture_direct(
                    self.isa,
                    &sts,
                    &groups,
                    mixture.fractions(),
                    &log_f,
                    &mut block,
                    &mut by_position,
                );
                for (v, &m) in by_position.iter().zip(&sorted.order) {
                    out[m as usize] = *v;
                }
                done
            }
            None => kernels::mixture_direct(
                self.isa,
                &sts,
                &self.groups(),
                mixture.fractions(),
                &log_f,
                &mut block,
                &mut out,
            ),
        };
        if done {
            for (o, c) in out.iter_mut().zip(&self.subject_const) {
                *o += c;
            }
            return out;
        }
        drop(sts);
        scratches[0].block = block;
        let mut lse = vec![0.0; mp * mixture.n_subtypes()];
        for (s, seq) in mixture.sequences().iter().enumerate() {
            self.subtype_lse_into(seq, scratch, &mut lse[s * mp..(s + 1) * mp]);
        }
        let parts: Vec<&[f64]> = lse.chunks(mp).collect();
        let mut out = vec![0.0; mp];
        self.combine_into(mixture.fractions(), &parts, &mut out);
        out
    }

    /// `log p_perm_k[m][k]` of one subtype: `log p(x_m | k) - ln(N+1)`, with the
    /// constants of the chosen missing-value convention (subjects x stages).
    pub fn log_p_perm_k(&self, sequence: &Sequence) -> Array2<f64> {
        let mu = StageValues::new(&self.events, sequence);
        let ns = self.events.n_stages();
        let mut scratch = Scratch::default();
        self.fill_stage_input(&mu, &mut scratch);
        let st = self.stage_input(&scratch);
        let mut block = vec![0.0; st.stride * LANES];
        let mut out = Array2::zeros((self.n_subjects, ns));
        for (g, gi) in self.groups().iter().enumerate() {
            kernels::stage_values(self.isa, &st, gi, &mut block);
            for lane in 0..LANES.min(self.n_subjects - g * LANES) {
                let m = g * LANES + lane;
                for k in 0..ns {
                    out[[m, k]] = block[k * LANES + lane] + self.subject_const[m];
                }
            }
        }
        out
    }

    /// The posteriors over subtypes, stages, and both, for a mixture (spec section 3).
    pub fn posteriors(&self, mixture: &Mixture) -> Posteriors {
        let joint = self.posterior_sums(std::slice::from_ref(mixture));
        let subtype = joint.sum_axis(ndarray::Axis(1));
        let stage = joint.sum_axis(ndarray::Axis(2));
        Posteriors {
            subtype,
            stage,
            subtype_stage: joint,
        }
    }

    /// The sum over `mixtures` of their subtype-stage posteriors
    /// ([`Posteriors::subtype_stage`], `[subject, stage, subtype]`), added in the
    /// order given (what staging from posterior samples averages). The stage values
    /// of a sequence that several mixtures share are computed once.
    ///
    /// # Panics
    /// If the mixtures have different numbers of subtypes.
    pub fn posterior_sums(&self, mixtures: &[Mixture]) -> Array3<f64> {
        let ns = self.events.n_stages();
        let n_sub = mixtures.first().map_or(0, Mixture::n_subtypes);
        let mut sum = Array3::zeros((self.n_subjects, ns, n_sub));
        let out = sum
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("a new array is contiguous"));
        self.posterior_sums_into(mixtures, 0..self.n_subjects, out);
        sum
    }

    /// [`Self::posterior_sums`] of the subjects `subjects` only, added into `out`
    /// (their rows of the `[subject, stage, subtype]` array, in that layout). Each
    /// subject's values are the same bits whatever range it is computed in, so
    /// threads can split the subjects.
    ///
    /// # Panics
    /// If `subjects.start` is not a multiple of [`LANES`], the range ends past the
    /// last subject, `out` has another length, or the mixtures have different
    /// numbers of subtypes.
    pub fn posterior_sums_into(
        &self,
        mixtures: &[Mixture],
        subjects: std::ops::Range<usize>,
        out: &mut [f64],
    ) {
        if self.check_posterior_args(mixtures, &subjects, out.len()) {
            self.posterior_sums_chunked(mixtures, subjects, out, None, POSTERIOR_BUDGET);
        }
    }

    /// [`Self::posterior_sums_into`] into `joint`, and in the same pass into
    /// `equal` the sums under equal fractions (pySuStaIn's `prob_subtype_stage`
    /// normalises each sample's stage likelihoods without the fractions): the
    /// stage values of each distinct sequence are computed once for both. `joint`
    /// gets the same bits as from [`Self::posterior_sums_into`].
    pub fn posterior_sums_pair_into(
        &self,
        mixtures: &[Mixture],
        subjects: std::ops::Range<usize>,
        joint: &mut [f64],
        equal: &mut [f64],
    ) {
        assert_eq!(joint.len(), equal.len(), "one row per subject in both");
        if self.check_posterior_args(mixtures, &subjects, joint.len()) {
            self.posterior_sums_chunked(mixtures, subjects, joint, Some(equal), POSTERIOR_BUDGET);
        }
    }

    /// The panics of [`Self::posterior_sums_into`]; whether there is anything to
    /// sum (no mixtures: nothing).
    fn check_posterior_args(
        &self,
        mixtures: &[Mixture],
        subjects: &std::ops::Range<usize>,
        out_len: usize,
    ) -> bool {
        let ns = self.events.n_stages();
        let n_sub = mixtures.first().map_or(0, Mixture::n_subtypes);
        assert!(
            mixtures.iter().all(|m| m.n_subtypes() == n_sub),
            "every mixture has the same number of subtypes"
        );
        assert!(
            subjects.start.is_multiple_of(LANES) && subjects.end <= self.n_subjects,
            "subjects start on a lane group and exist"
        );
        if mixtures.is_empty() {
            return false;
        }
        assert!(
            out_len == subjects.len() * ns * n_sub,
            "one row per subject"
        );
        true
    }

    /// [`Self::posterior_sums_into`] with the mixtures taken in consecutive chunks
    /// whose distinct sequences hold at most about `budget` bytes of stage-kernel
    /// inputs and values (large models, many samples). Every subject's sums are
    /// accumulated in mixture order whatever the chunks, so the result does not
    /// depend on `budget`.
    fn posterior_sums_chunked(
        &self,
        mixtures: &[Mixture],
        subjects: std::ops::Range<usize>,
        out: &mut [f64],
        equal_out: Option<&mut [f64]>,
        budget: usize,
    ) {
        let ns = self.events.n_stages();
        let n_sub = mixtures[0].n_subtypes();
        let stride = stage_stride(ns);
        let nb = self.events.n_biomarkers();
        // Per distinct sequence: its `Scratch` and its stage values of one group.
        let per_sequence = ((2 * nb + 1 + 2 * LANES) * stride) * std::mem::size_of::<f64>();
        let max_distinct = (budget / per_sequence).max(n_sub);
        let first = subjects.start;
        let groups = first / LANES..subjects.end.div_ceil(LANES);
        let size = n_sub * ns * LANES;
        // `[g][s][k][lane]`: whole vectors per group, moved to the subjects' rows at
        // the end.
        let mut acc = vec![0.0; groups.len() * size];
        // Sums under equal fractions, when asked for.
        let mut acc_equal = vec![
            0.0;
            if equal_out.is_some() {
                groups.len() * size
            } else {
                0
            }
        ];
        let log_equal = vec![-(n_sub as f64).ln(); n_sub];
        let mut tmp = vec![0.0; size];
        let mut start = 0;
        while start < mixtures.len() {
            // Distinct sequences of the chunk and each mixture's index into them.
            let mut distinct: Vec<&Sequence> = Vec::new();
            let mut index: std::collections::HashMap<&Sequence, usize> = Default::default();
            let mut picks: Vec<Vec<usize>> = Vec::new();
            let mut end = start;
            while end < mixtures.len() {
                let seqs = mixtures[end].sequences();
                let mut fresh: Vec<&Sequence> = Vec::new();
                for seq in seqs {
                    if !index.contains_key(seq) && !fresh.contains(&seq) {
                        fresh.push(seq);
                    }
                }
                if end > start && distinct.len() + fresh.len() > max_distinct {
                    break;
                }
                for seq in fresh {
                    index.insert(seq, distinct.len());
                    distinct.push(seq);
                }
                picks.push(seqs.iter().map(|seq| index[seq]).collect());
                end += 1;
            }
            let scratches: Vec<Scratch> = distinct
                .iter()
                .map(|seq| {
                    let mut scratch = Scratch::default();
                    self.fill_stage_input(&StageValues::new(&self.events, seq), &mut scratch);
                    scratch
                })
                .collect();
            let log_f: Vec<Vec<f64>> = mixtures[start..end]
                .iter()
                .map(|m| m.fractions().iter().map(|f| f.ln()).collect())
                .collect();
            let mut blocks = vec![0.0; distinct.len() * stride * LANES];
            let mut maxima = vec![[0.0; LANES]; distinct.len()];
            for (j, g) in groups.clone().enumerate() {
                let gi = self.group(g);
                for (d, scratch) in scratches.iter().enumerate() {
                    let block = &mut blocks[d * stride * LANES..(d + 1) * stride * LANES];
                    kernels::stage_values(self.isa, &self.stage_input(scratch), &gi, block);
                    // Each sequence's exponentials once per group, not per mixture.
                    kernels::stage_exp(self.isa, block, ns, &mut maxima[d]);
                }
                let acc = &mut acc[j * size..(j + 1) * size];
                let mut parts: Vec<&[f64]> = Vec::with_capacity(n_sub);
                let mut refs: Vec<&Lanes> = Vec::with_capacity(n_sub);
                for (lf, pick) in log_f.iter().zip(&picks) {
                    parts.clear();
                    parts.extend(
                        pick.iter()
                            .map(|&d| &blocks[d * stride * LANES..(d + 1) * stride * LANES]),
                    );
                    refs.clear();
                    refs.extend(pick.iter().map(|&d| &maxima[d]));
                    kernels::posterior_group(self.isa, lf, &parts, &refs, ns, &mut tmp, acc);
                    if equal_out.is_some() {
                        let acc_equal = &mut acc_equal[j * size..(j + 1) * size];
                        kernels::posterior_group(
                            self.isa, &log_equal, &parts, &refs, ns, &mut tmp, acc_equal,
                        );
                    }
                }
            }
            start = end;
        }
        let rows = |acc: &[f64], out: &mut [f64]| {
            for (j, g) in groups.clone().enumerate() {
                let acc = &acc[j * size..(j + 1) * size];
                for m in g * LANES..((g + 1) * LANES).min(subjects.end) {
                    let lane = m - g * LANES;
                    let row = &mut out[(m - first) * ns * n_sub..(m - first + 1) * ns * n_sub];
                    for k in 0..ns {
                        for s in 0..n_sub {
                            row[k * n_sub + s] += acc[(s * ns + k) * LANES + lane];
                        }
                    }
                }
            }
        };
        rows(&acc, out);
        if let Some(equal) = equal_out {
            rows(&acc_equal, equal);
        }
    }
}

/// Bytes of stage-kernel inputs and values that staging holds at once for the
/// distinct sequences of its samples (per call, so per thread): samples beyond it
/// are taken in further chunks.
const POSTERIOR_BUDGET: usize = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{simulate, SimulationSpec};
    use rand::SeedableRng;

    /// Subjects regrouped by missing pattern give the same bits per subject as
    /// subject order (a column a lane does not miss adds an exact 0), on every
    /// kernel this CPU has, with both conventions; the regrouping is used where it
    /// saves columns and never in shards.
    #[test]
    fn sorted_groups_give_the_same_bits() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        for (nb, n, missing) in [(10, 203, 0.1), (6, 64, 0.3), (3, 9, 0.2), (15, 517, 0.05)] {
            let events = EventSet::uniform(nb, &[1.0, 2.0, 3.0], 5.0).unwrap();
            let seqs: Vec<Sequence> = (0..3)
                .map(|_| Sequence::random(&events, &mut rng))
                .collect();
            let truth = Mixture::new(seqs, vec![0.5, 0.3, 0.2]).unwrap();
            let spec = SimulationSpec {
                n_subjects: n,
                control_fraction: 0.1,
                missing_fraction: missing,
            };
            let sim = simulate(&events, &truth, &spec, 9).unwrap();
            for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
                for isa in [Isa::Avx512, Isa::Avx2, Isa::Baseline] {
                    let Some(lik) = Likelihood::new(events.clone(), &sim.data, conv)
                        .unwrap()
                        .with_kernels(isa)
                    else {
                        continue;
                    };
                    if n >= 200 {
                        assert!(
                            lik.sorted.is_some(),
                            "{nb} x {n}: sorting saves columns here"
                        );
                    }
                    assert!(lik.shard(0..64.min(n)).sorted.is_none());
                    let mut plain = lik.clone();
                    plain.sorted = None;
                    let mut lik = lik;
                    lik.sorted = Some(SortedGroups::layout(sim.data.values().view(), 1.0));
                    let (a, b) = (lik.log_p_subjects(&truth), plain.log_p_subjects(&truth));
                    for (i, (u, v)) in a.iter().zip(&b).enumerate() {
                        assert_eq!(
                            u.to_bits(),
                            v.to_bits(),
                            "{isa:?} {conv:?} subject {i}: {u} vs {v}"
                        );
                    }
                    assert_eq!(
                        lik.loglike(&truth).to_bits(),
                        plain.loglike(&truth).to_bits()
                    );
                }
            }
        }
    }

    /// Chunking the samples (a budget of one mixture's sequences, or of all) gives
    /// the same bits.
    #[test]
    fn posterior_sums_do_not_depend_on_the_budget() {
        let events = EventSet::uniform(4, &[1.0, 2.0], 5.0).unwrap();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let mixture = |rng: &mut rand_pcg::Pcg64| {
            Mixture::new(
                (0..3).map(|_| Sequence::random(&events, rng)).collect(),
                vec![0.5, 0.3, 0.2],
            )
            .unwrap()
        };
        let truth = mixture(&mut rng);
        let spec = SimulationSpec {
            n_subjects: 45,
            control_fraction: 0.1,
            missing_fraction: 0.2,
        };
        let data = simulate(&events, &truth, &spec, 6).unwrap().data;
        let lik = Likelihood::new(events.clone(), &data, MissingConvention::Marginalise).unwrap();
        // Repeats share sequences across chunk boundaries.
        let mut mixtures: Vec<Mixture> = (0..7).map(|_| mixture(&mut rng)).collect();
        mixtures.extend(mixtures.clone());
        let whole = lik.posterior_sums(&mixtures);
        let (ns, m) = (events.n_stages(), lik.n_subjects());
        for budget in [0, 1, 1 << 14, usize::MAX] {
            let mut out = vec![0.0; m * ns * 3];
            lik.posterior_sums_chunked(&mixtures, 0..m, &mut out, None, budget);
            assert!(
                out.iter()
                    .zip(whole.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "budget {budget}"
            );
        }
        // The pair: the joint sums to the bit, and the sums under equal fractions
        // as from those mixtures with equal fractions.
        let equal_mixtures: Vec<Mixture> = mixtures
            .iter()
            .map(|x| Mixture::new(x.sequences().to_vec(), vec![1.0 / 3.0; 3]).unwrap())
            .collect();
        let equal_whole = lik.posterior_sums(&equal_mixtures);
        let (mut joint, mut equal) = (vec![0.0; m * ns * 3], vec![0.0; m * ns * 3]);
        lik.posterior_sums_pair_into(&mixtures, 0..m, &mut joint, &mut equal);
        assert!(joint
            .iter()
            .zip(whole.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(equal
            .iter()
            .zip(equal_whole.iter())
            .all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs().max(1e-300)));
        // The small budgets do split the 14 mixtures (at least 21 distinct
        // sequences) into several chunks, and the default does not.
        let stride = stage_stride(ns);
        let per = ((2 * events.n_biomarkers() + 1 + 2 * LANES) * stride) * 8;
        assert!(POSTERIOR_BUDGET / per >= 3 && (1usize << 14) / per < 21);
    }
}

/// Reusable buffers of the stage kernel (avoid allocating per call).
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    mu: Vec<f64>,
    half_mu_sq: Vec<f64>,
    neg_half_sum_mu_sq: Vec<f64>,
    block: Vec<f64>,
}

impl Scratch {
    fn prepare(&mut self, nb: usize, ns: usize) {
        let stride = stage_stride(ns);
        // Padded stages are computed but never read, so their contents do not matter.
        self.mu.resize(nb * stride, 0.0);
        self.half_mu_sq.resize(nb * stride, 0.0);
        self.neg_half_sum_mu_sq.resize(stride, 0.0);
        self.block.resize(stride * LANES, 0.0);
    }
}

/// Stage row length of the kernels' padded layout.
pub(crate) fn stage_stride(n_stages: usize) -> usize {
    n_stages.div_ceil(kernels::STAGE_STRIDE_MULTIPLE) * kernels::STAGE_STRIDE_MULTIPLE
}

pub use sustain_core::neumaier_sum;
