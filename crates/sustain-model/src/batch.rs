//! The batch-evaluation seam: many candidate models scored in one call.
//!
//! A backend keeps the data resident (it is given it once, at construction) and
//! receives only sequences and fractions per call. [`SerialEvaluator`] is the plain
//! single-thread implementation; the CPU-thread and GPU backends implement the same
//! trait and are tested against it.

use crate::em_walk::EventWalk;
use crate::error::Result;
use crate::incremental::IncrementalLikelihood;
use crate::likelihood::{Likelihood, Scratch};
use crate::mixture::Mixture;
use crate::screen::Screen;
use crate::sequence::Sequence;
use crate::SubtypeOf;
use ndarray::Array3;
use std::ops::RangeInclusive;
use std::sync::Arc;
use sustain_core::evaluate::{best_event_position_of_candidates, event_candidates_at};
pub use sustain_core::evaluate::{common_subtypes, event_candidates, first_max, BatchEvaluator};
use sustain_core::EventOrder;

/// Single-thread reference implementation of [`BatchEvaluator`].
///
/// E-M candidates are scored incrementally: the evaluator keeps the last base
/// mixture's per-stage state ([`IncrementalLikelihood`]), brings it to the new base
/// by recomputing only changed stages, and scores each candidate by its changed
/// stages only. [`BatchEvaluator::best_subtype_candidate`] first screens the
/// candidates in single precision with a proven error bound (on CPUs with AVX2)
/// and scores exactly only those that may be the best.
#[derive(Debug, Clone)]
pub struct SerialEvaluator {
    likelihood: Arc<Likelihood>,
    state: Option<IncrementalLikelihood>,
    /// E-M screening, made on first use (`None` inside: no AVX2 here).
    screen: Option<Option<Screen>>,
    /// E-M's walk over an event's positions, made on first use.
    walk: Option<EventWalk>,
    /// Whether E-M walks: `None` where it pays ([`walk_pays`]).
    walk_always: Option<bool>,
}

impl SerialEvaluator {
    /// Wraps prepared data.
    pub fn new(likelihood: Arc<Likelihood>) -> Self {
        Self {
            likelihood,
            state: None,
            screen: None,
            walk: None,
            walk_always: None,
        }
    }
    /// E-M walks an event's positions always (`true`) or never (`false`),
    /// instead of where it pays; the choices are the same either way (tests and
    /// measurements compare the two paths).
    pub fn with_walk(mut self, always: bool) -> Self {
        self.walk_always = Some(always);
        self
    }
    /// The prepared data.
    pub fn likelihood(&self) -> &Likelihood {
        &self.likelihood
    }
}

/// Scores `candidates` for subtype `subtype` of `base` on one thread; shared by the
/// serial and threaded evaluators.
pub fn subtype_candidates_serial(
    lik: &Likelihood,
    base: &Mixture,
    subtype: usize,
    candidates: &[Sequence],
    scratch: &mut Scratch,
) -> Vec<f64> {
    let mp = lik.padded_subjects();
    let others = others_lse(lik, base, subtype, scratch);
    let f_t = base.fractions()[subtype];
    // The other subtypes' actual total weight (fractions sum to 1 only within 1e-6).
    let f_rest: f64 = (0..base.n_subtypes())
        .filter(|&s| s != subtype)
        .map(|s| base.fractions()[s])
        .sum();
    let mut cand = vec![0.0; mp];
    let mut per = vec![0.0; mp];
    candidates
        .iter()
        .map(|c| {
            lik.subtype_lse_into(c, scratch, &mut cand);
            match &others {
                Some(o) => lik.combine_into(&[f_rest, f_t], &[o, &cand], &mut per),
                None => lik.combine_into(&[f_t], &[&cand], &mut per),
            }
            lik.sum_subjects(&per)
        })
        .collect()
}

/// [`BatchEvaluator::posterior_sums`] on one thread; shared by the serial and threaded
/// evaluators.
pub fn posterior_sums_serial(lik: &Likelihood, mixtures: &[Mixture]) -> Result<Array3<f64>> {
    let k = common_subtypes(mixtures)?;
    if mixtures.is_empty() {
        return Ok(Array3::zeros((
            lik.n_subjects(),
            lik.events().n_stages(),
            k,
        )));
    }
    Ok(lik.posterior_sums(mixtures))
}

/// `log sum_{s != t} (f_s / rest) exp(lse_s)` per subject, `rest` being the others'
/// total fraction; None for one subtype or when the others have no weight.
fn others_lse(
    lik: &Likelihood,
    base: &Mixture,
    t: usize,
    scratch: &mut Scratch,
) -> Option<Vec<f64>> {
    let n = base.n_subtypes();
    if n == 1 {
        return None;
    }
    let mp = lik.padded_subjects();
    let rest: f64 = (0..n)
        .filter(|&s| s != t)
        .map(|s| base.fractions()[s])
        .sum();
    if rest <= 0.0 {
        return None;
    }
    let mut parts = Vec::with_capacity(n - 1);
    let mut fr = Vec::with_capacity(n - 1);
    for s in (0..n).filter(|&s| s != t) {
        let mut v = vec![0.0; mp];
        lik.subtype_lse_into(&base.sequences()[s], scratch, &mut v);
        parts.push(v);
        fr.push(base.fractions()[s] / rest);
    }
    let refs: Vec<&[f64]> = parts.iter().map(Vec::as_slice).collect();
    let mut out = vec![0.0; mp];
    lik.combine_into(&fr, &refs, &mut out);
    // combine_into added the subject constants; remove them: they are added once more
    // when the candidate is combined.
    for (o, c) in out.iter_mut().zip(lik.subject_constants()) {
        *o -= c;
    }
    Some(out)
}

impl BatchEvaluator for SerialEvaluator {
    fn events(&self) -> &EventOrder {
        self.likelihood.events()
    }
    fn n_subjects(&self) -> usize {
        self.likelihood.n_subjects()
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<f64>> {
        Ok(mixtures
            .iter()
            .map(|m| self.likelihood.loglike(m))
            .collect())
    }
    fn log_p_subjects_batch(&mut self, mixtures: &[Mixture]) -> Result<Vec<Vec<f64>>> {
        Ok(mixtures
            .iter()
            .map(|m| self.likelihood.log_p_subjects(m))
            .collect())
    }
    fn posterior_sums(&mut self, mixtures: &[Mixture]) -> Result<Array3<f64>> {
        posterior_sums_serial(&self.likelihood, mixtures)
    }
    fn loglike_subtype_candidates(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<Vec<f64>> {
        let state = self.fresh_state_at(slot.base);
        Ok(exact_candidates(state, slot, candidates.iter()))
    }
    /// Screens the candidates in single precision (the `screen` module) and scores
    /// exactly only those that may be the best; without AVX2, scores all exactly.
    fn best_subtype_candidate(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> Result<usize> {
        self.choose(slot, candidates, false)
    }
    /// Where the walk pays ([`walk_pays`]), screens the positions by walking
    /// them in order (the `em_walk` module) and chooses among those that may be
    /// the best as [`Self::best_subtype_candidate`] does, from exact scores of a
    /// fresh state (so the choice does not depend on history); elsewhere, as the
    /// default.
    fn best_event_position(
        &mut self,
        slot: SubtypeOf<'_>,
        event: usize,
        allowed: RangeInclusive<usize>,
    ) -> Result<usize> {
        let start = *allowed.start();
        let lik = Arc::clone(&self.likelihood);
        if allowed.end() <= allowed.start() || !self.walk_always.unwrap_or_else(|| walk_pays(&lik))
        {
            return best_event_position_of_candidates(self, slot, event, allowed);
        }
        let walk = self.walk.get_or_insert_with(|| EventWalk::new(&lik));
        let window = walk.window(&lik, slot.base, slot.subtype, event, allowed);
        if let [only] = window[..] {
            return Ok(start + only);
        }
        let candidates = event_candidates_at(slot, event, window.iter().map(|&j| start + j));
        let best = self.choose(slot, &candidates, true)?;
        Ok(start + window[best])
    }
    /// Where the walk makes the choices (their exact scores from a fresh state).
    fn choices_are_pure(&self) -> bool {
        self.walk_always
            .unwrap_or_else(|| walk_pays(&self.likelihood))
    }
}

/// Whether E-M's walk beats screening each candidate whole: a walked candidate
/// costs about subjects x stages products, a whole one subjects x stages x
/// biomarkers multiply-adds in single precision; measured, the walk is faster
/// from about 16 biomarkers (docs/performance.md).
pub fn walk_pays(lik: &Likelihood) -> bool {
    lik.events().n_biomarkers() >= WALK_MIN_BIOMARKERS
}

/// See [`walk_pays`].
const WALK_MIN_BIOMARKERS: usize = 16;

/// The exact (incremental) total log-likelihood of `base` with subtype
/// `subtype`'s sequence replaced by each of `candidates`; `state` is at `base`.
fn exact_candidates<'a>(
    state: &mut IncrementalLikelihood,
    SubtypeOf { base, subtype }: SubtypeOf<'_>,
    candidates: impl Iterator<Item = &'a Sequence>,
) -> Vec<f64> {
    let mut changed = vec![false; base.n_subtypes()];
    changed[subtype] = true;
    let mut mixture = base.clone();
    candidates
        .map(|c| {
            mixture.sequences_mut()[subtype].clone_from(c);
            let ll = state.propose(&mixture, &changed);
            state.reject();
            ll
        })
        .collect()
}

impl SerialEvaluator {
    /// [`BatchEvaluator::best_subtype_candidate`]; with `fresh`, the screen and
    /// the exact scores use a state built afresh at the base
    /// ([`Self::fresh_state_at`]), so the choice does not depend on this
    /// evaluator's history. That costs a whole evaluation per call: the walk
    /// needs it in about one event in fifty, the screen far more often.
    fn choose(
        &mut self,
        slot: SubtypeOf<'_>,
        candidates: &[Sequence],
        fresh: bool,
    ) -> Result<usize> {
        if candidates.len() <= 1 {
            return Ok(0);
        }
        let lik = Arc::clone(&self.likelihood);
        let mut screen = self.screen.take().unwrap_or_else(|| Screen::new(&lik));
        let state = if fresh {
            self.fresh_state_at(slot.base)
        } else {
            self.state_at(slot.base)
        };
        let window = match &mut screen {
            Some(sc) => sc.window(&lik, state, slot.subtype, candidates),
            None => (0..candidates.len()).collect(),
        };
        let best = if window.len() == 1 {
            window[0]
        } else {
            let scores = exact_candidates(state, slot, window.iter().map(|&j| &candidates[j]));
            window[first_max(&scores)]
        };
        self.screen = Some(screen);
        Ok(best)
    }

    /// The incremental state built afresh at `base`. Exact scores taken from it
    /// depend on `base` and the candidates only, not on what this evaluator scored
    /// before (an incrementally updated state differs in the last bits): so an
    /// E-M choice is the same whichever evaluator makes it, and start points can
    /// share them (`sustain::em`).
    fn fresh_state_at(&mut self, base: &Mixture) -> &mut IncrementalLikelihood {
        self.state.insert(IncrementalLikelihood::new(
            Arc::clone(&self.likelihood),
            base,
        ))
    }

    /// The incremental state brought to `base` (built on first use; afterwards
    /// only the stages that changed since the last base are recomputed).
    fn state_at(&mut self, base: &Mixture) -> &mut IncrementalLikelihood {
        let reusable = self
            .state
            .as_ref()
            .is_some_and(|s| s.current().n_subtypes() == base.n_subtypes());
        if !reusable {
            return self.state.insert(IncrementalLikelihood::new(
                Arc::clone(&self.likelihood),
                base,
            ));
        }
        let state = self
            .state
            .as_mut()
            .unwrap_or_else(|| unreachable!("checked above"));
        let changed: Vec<bool> = (0..base.n_subtypes())
            .map(|s| state.current().sequences()[s] != base.sequences()[s])
            .collect();
        if changed.iter().any(|&c| c) || state.current().fractions() != base.fractions() {
            state.propose(base, &changed);
            state.accept();
        }
        state
    }
}
