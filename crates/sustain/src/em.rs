//! Maximum-likelihood fitting by E-M with random start points, and the
//! hierarchical split from n to n+1 subtypes (spec section 4).

use crate::backend::{BoxedEvaluator, Engine};
use crate::config::FitConfig;
use crate::em_memo::{MoveMemo, StateKey};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::{Arc, Mutex};
use sustain_core::SubtypeOf;
use sustain_core::{BatchEvaluator, Mixture, ModelError, Result, Sequence, SustainModel};
use sustain_sampler::rng;

/// A maximum-likelihood estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct MlFit {
    /// Sequences and fractions.
    pub mixture: Mixture,
    /// Its log-likelihood.
    pub loglike: f64,
}

/// Per subject and subtype: `prob_subtype[m][s]` (normalised per subject).
pub fn subtype_responsibilities<M: SustainModel>(model: &M, mixture: &Mixture) -> Vec<Vec<f64>> {
    let mut rows = Vec::with_capacity(model.n_subjects());
    for_each_responsibility(model, mixture, |r| rows.push(r.to_vec()));
    rows
}

/// Calls `visit` with each subject's subtype responsibilities, in subject order
/// (one buffer, no allocation per subject).
fn for_each_responsibility<M: SustainModel>(
    model: &M,
    mixture: &Mixture,
    mut visit: impl FnMut(&[f64]),
) {
    let n = model.n_subjects();
    let ns = mixture.n_subtypes();
    let mut lse = vec![0.0; n * ns];
    for (s, seq) in mixture.sequences().iter().enumerate() {
        model.subject_loglikes(seq, &mut lse[s * n..(s + 1) * n]);
    }
    let log_f: Vec<f64> = mixture.fractions().iter().map(|f| f.ln()).collect();
    let mut w = vec![0.0; ns];
    for m in 0..n {
        let mut max = f64::NEG_INFINITY;
        for s in 0..ns {
            w[s] = log_f[s] + lse[s * n + m];
            max = max.max(w[s]);
        }
        let mut t = 0.0;
        for v in w.iter_mut() {
            *v = (*v - max).exp();
            t += *v;
        }
        for v in w.iter_mut() {
            *v /= t;
        }
        visit(&w);
    }
}

/// `f_s` = mean over subjects of the subtype responsibilities.
fn update_fractions<M: SustainModel>(lik: &M, mixture: &Mixture) -> Vec<f64> {
    let mut f = vec![0.0; mixture.n_subtypes()];
    for_each_responsibility(lik, mixture, |r| {
        for (fs, v) in f.iter_mut().zip(r) {
            *fs += v;
        }
    });
    let total: f64 = f.iter().sum();
    f.iter().map(|v| v / total).collect()
}

/// One optimisation pass (spec section 4): fractions, then every event of every
/// subtype (random orders) moved to its best position, then fractions again.
pub fn em_pass<M: SustainModel, R: Rng + ?Sized>(
    lik: &M,
    evaluator: &mut dyn BatchEvaluator,
    start: &Mixture,
    rng: &mut R,
) -> Result<MlFit> {
    em_pass_settled(lik, evaluator, start, rng, &mut Settled::new(start), None)
}

/// Which events are known to be at their best position. Scoring an event's
/// candidates again when nothing in the mixture has changed since it was moved
/// to its best gives the same scores and the same choice (the first maximum, where
/// it already is), so E-M skips it: in the last passes of a converging E-M most
/// events settle. `stamp` counts the mixture's changes; `at[s][e]` is the stamp
/// just after event `e` of subtype `s` was put at its best.
struct Settled {
    stamp: u64,
    n_events: usize,
    at: Vec<u64>,
}

impl Settled {
    fn new(mixture: &Mixture) -> Self {
        let n_events = mixture.sequences().first().map_or(0, |s| s.len());
        Self {
            stamp: 1,
            n_events,
            at: vec![0; mixture.n_subtypes() * n_events],
        }
    }

    fn is_settled(&self, s: usize, e: usize) -> bool {
        self.at[s * self.n_events + e] == self.stamp
    }

    fn changed(&mut self) {
        self.stamp += 1;
    }

    fn settle(&mut self, s: usize, e: usize) {
        self.at[s * self.n_events + e] = self.stamp;
    }
}

/// Sets `m`'s fractions to E-M's update, noting a change of any bit.
fn update_fractions_settled<M: SustainModel>(
    lik: &M,
    m: &mut Mixture,
    settled: &mut Settled,
) -> Result<()> {
    let f = update_fractions(lik, m);
    if f.iter()
        .zip(m.fractions())
        .any(|(a, b)| a.to_bits() != b.to_bits())
    {
        settled.changed();
    }
    m.set_fractions(f)
}

/// [`em_pass`] that skips the events `settled` knows to be at their best and
/// records the ones it puts there (`settled` must describe `start`), and takes
/// the choices `memo` knows instead of asking the evaluator.
fn em_pass_settled<M: SustainModel, R: Rng + ?Sized>(
    lik: &M,
    evaluator: &mut dyn BatchEvaluator,
    start: &Mixture,
    rng: &mut R,
    settled: &mut Settled,
    memo: Option<&MoveMemo>,
) -> Result<MlFit> {
    let events = lik.order();
    let mut m = start.clone();
    if m.n_subtypes() > 1 {
        update_fractions_settled(lik, &mut m, settled)?;
    }
    let mut subtypes: Vec<usize> = (0..m.n_subtypes()).collect();
    subtypes.shuffle(rng);
    let n_events = events.n_events();
    let mut order: Vec<usize> = (0..n_events).collect();
    // The memo's key of `m`, made when first needed after each change.
    let mut key: Option<StateKey> = None;
    for &s in &subtypes {
        order.shuffle(rng);
        for &e in &order {
            let allowed = m.sequences()[s].allowed_positions(events, e);
            if allowed.start() == allowed.end() || settled.is_settled(s, e) {
                continue;
            }
            let remembered = memo.and_then(|memo| {
                memo.get(key.get_or_insert_with(|| StateKey::of(&m)), n_events, s, e)
            });
            let to = match remembered {
                Some(to) => to,
                None => {
                    // The first maximum, as the reference takes.
                    let to = evaluator.best_event_position(SubtypeOf::new(&m, s), e, allowed)?;
                    if let (Some(memo), Some(key)) = (memo, &key) {
                        memo.put(key, m.n_subtypes(), n_events, s, e, to);
                    }
                    to
                }
            };
            if m.sequences()[s].position(e) != to {
                m.sequences_mut()[s].move_unchecked(e, to);
                settled.changed();
                key = None;
            }
            settled.settle(s, e);
        }
    }
    if m.n_subtypes() > 1 {
        update_fractions_settled(lik, &mut m, settled)?;
    }
    let loglike = evaluator.loglike_batch(std::slice::from_ref(&m))?[0];
    Ok(MlFit {
        mixture: m,
        loglike,
    })
}

/// Whether a pass from log-likelihood `before` to `after` ends E-M: their relative
/// change is below `tolerance` (spec section 4).
pub fn pass_converged(before: f64, after: f64, tolerance: f64) -> bool {
    let denom = after.max(before).abs().max(f64::MIN_POSITIVE);
    ((after - before) / denom).abs() < tolerance
}

/// E-M from `start`: passes until the relative change is below the tolerance or
/// the pass limit; a pass is kept only if it improves the log-likelihood.
pub fn em<M: SustainModel, R: Rng + ?Sized>(
    lik: &M,
    evaluator: &mut dyn BatchEvaluator,
    start: Mixture,
    config: &FitConfig,
    rng: &mut R,
) -> Result<MlFit> {
    em_remembering(lik, evaluator, start, config, rng, None)
}

/// [`em`] that takes the choices `memo` knows and adds those it makes, where the
/// evaluator's choices are pure (the results are the same, see the `em_memo`
/// module).
fn em_remembering<M: SustainModel, R: Rng + ?Sized>(
    lik: &M,
    evaluator: &mut dyn BatchEvaluator,
    start: Mixture,
    config: &FitConfig,
    rng: &mut R,
    memo: Option<&MoveMemo>,
) -> Result<MlFit> {
    // A choice is shared only if it does not depend on the evaluator's history:
    // else which start point made it first could change results.
    let memo = memo.filter(|_| evaluator.choices_are_pure());
    let loglike = evaluator.loglike_batch(std::slice::from_ref(&start))?[0];
    let mut current = MlFit {
        mixture: start,
        loglike,
    };
    // Describes the mixture the next pass starts from: the last pass's end when
    // that pass was kept.
    let mut settled = Settled::new(&current.mixture);
    for _ in 0..config.em_max_passes {
        let cand = em_pass_settled(lik, evaluator, &current.mixture, rng, &mut settled, memo)?;
        let converged = pass_converged(current.loglike, cand.loglike, config.em_tolerance);
        if cand.loglike > current.loglike {
            current = cand;
        } else {
            settled = Settled::new(&current.mixture);
        }
        let cancelled = config.em_progress.as_ref().is_some_and(|p| p.cancelled());
        if converged || cancelled {
            break;
        }
    }
    Ok(current)
}

/// Tells the E-M job counter (if any) how many jobs this subtype count's E-M runs
/// in all, for displays.
fn expect_jobs(config: &FitConfig, n: usize) {
    if let Some(p) = &config.em_progress {
        p.set_target(n as u64);
    }
}

/// Runs `n` independent jobs in parallel on CPU threads; results in job order; as
/// many at once as the engine takes ([`Engine::em_jobs_at_once`]).
fn parallel_jobs<T: Send>(
    config: &FitConfig,
    engine: &Engine,
    n: usize,
    job: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    crate::executor::parallel_map(n, engine.em_jobs_at_once(config.threads), |i| {
        let r = job(i);
        if let Some(p) = &config.em_progress {
            p.add(0, 1);
        }
        r
    })
    .into_iter()
    .collect()
}

/// The evaluators of E-M on one data set: on the CPU a fresh [`SerialEvaluator`] per
/// job; for a batch engine a pool of the engine's evaluators, made on first use: a
/// job takes one and puts it back, so concurrent jobs never share one and at most one
/// exists per running job. Every evaluator of a pool gives the same values, so a
/// job's result does not depend on which one it takes.
struct Evaluators<'a, M: SustainModel> {
    engine: &'a Engine,
    lik: &'a Arc<M>,
    idle: Mutex<Vec<BoxedEvaluator>>,
    /// The choices made by this data set's E-Ms so far.
    memo: MoveMemo,
}

impl<'a, M: SustainModel> Evaluators<'a, M> {
    fn new(engine: &'a Engine, lik: &'a Arc<M>) -> Self {
        Self {
            engine,
            lik,
            idle: Mutex::new(Vec::new()),
            memo: MoveMemo::new(),
        }
    }

    /// [`em`] from `start` with this data set's evaluator.
    fn em<R: Rng + ?Sized>(
        &self,
        start: Mixture,
        config: &FitConfig,
        rng: &mut R,
    ) -> Result<MlFit> {
        let run = |ev: &mut dyn BatchEvaluator, rng: &mut R| {
            em_remembering(&**self.lik, ev, start, config, rng, Some(&self.memo))
        };
        if !self.engine.pools_evaluators() {
            return run(self.engine.evaluator(self.lik)?.as_mut(), rng);
        }
        let poisoned = || ModelError::Backend("an E-M job panicked".into());
        let taken = self.idle.lock().map_err(|_| poisoned())?.pop();
        let mut ev = match taken {
            Some(ev) => ev,
            None => self.engine.evaluator(self.lik)?,
        };
        let fit = run(ev.as_mut(), rng);
        self.idle.lock().map_err(|_| poisoned())?.push(ev);
        fit
    }
}

fn best(fits: Vec<MlFit>) -> Option<MlFit> {
    // First maximum: deterministic whatever the thread count.
    fits.into_iter()
        .fold(None, |acc: Option<MlFit>, f| match acc {
            Some(a) if a.loglike >= f.loglike => Some(a),
            _ => Some(f),
        })
}

/// One subtype: `n_startpoints` random starts, best kept. `stream` separates the
/// random streams of different callers (subtype counts, splits, folds). On the CPU.
pub fn fit_one_subtype<M: SustainModel>(
    lik: &Arc<M>,
    config: &FitConfig,
    stream: u64,
) -> Result<MlFit> {
    fit_one_subtype_with(&Engine::Cpu, lik, config, stream)
}

/// [`fit_one_subtype`] on `engine`.
pub fn fit_one_subtype_with<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    config: &FitConfig,
    stream: u64,
) -> Result<MlFit> {
    let evaluators = Evaluators::new(engine, lik);
    expect_jobs(config, config.n_startpoints);
    let fits = parallel_jobs(config, engine, config.n_startpoints, |i| {
        let mut rng = rng::stream(config.seed ^ stream, rng::purpose::START_POINT, i as u64);
        let start = Mixture::single(Sequence::random(lik.order(), &mut rng));
        evaluators.em(start, config, &mut rng)
    })?;
    best(fits).ok_or_else(|| ModelError::Backend("no start points".into()))
}

/// `n + 1` subtypes from the `n`-subtype E-M optimum (spec section 4), on the CPU.
/// Fails with [`crate::Error::Data`] when no subtype holds two subjects to split.
pub fn fit_split<M: SustainModel>(
    lik: &Arc<M>,
    previous: &MlFit,
    config: &FitConfig,
    stream: u64,
) -> std::result::Result<MlFit, crate::Error> {
    fit_split_with(&Engine::Cpu, lik, previous, config, stream)
}

/// [`fit_split`] on `engine`.
pub fn fit_split_with<M: SustainModel>(
    engine: &Engine,
    lik: &Arc<M>,
    previous: &MlFit,
    config: &FitConfig,
    stream: u64,
) -> std::result::Result<MlFit, crate::Error> {
    let n = previous.mixture.n_subtypes();
    let resp = subtype_responsibilities(&**lik, &previous.mixture);
    let assignment: Vec<usize> = resp
        .iter()
        .map(|r| {
            let mut b = 0;
            for (s, v) in r.iter().enumerate() {
                if *v > r[b] {
                    b = s;
                }
            }
            b
        })
        .collect();
    let full_evaluators = Evaluators::new(engine, lik);
    // Clusters with two or more subjects, with their data and random stream.
    struct Cluster<M> {
        index: usize,
        rows: Vec<usize>,
        lik: Arc<M>,
        stream: u64,
    }
    let mut clusters = Vec::new();
    for cluster in 0..n {
        let rows: Vec<usize> = (0..assignment.len())
            .filter(|&m| assignment[m] == cluster)
            .collect();
        if rows.len() < 2 {
            continue;
        }
        let sub_lik = Arc::new(lik.subset(&rows)?);
        clusters.push(Cluster {
            index: cluster,
            rows,
            lik: sub_lik,
            stream: stream.wrapping_mul(31).wrapping_add(cluster as u64 + 1),
        });
    }
    // Two parallel phases over every cluster's start points at once (fewer waits
    // for the slowest job than one phase per cluster; each job has its own random
    // stream, so results are the same): split each cluster in two, then E-M on all
    // data from each cluster's best split.
    let per = config.n_startpoints;
    // Every cluster's split start points, then as many E-Ms on all data (every
    // cluster has a best split when there are start points at all).
    expect_jobs(config, 2 * clusters.len() * per);
    let sub_evaluators: Vec<Evaluators<'_, M>> = clusters
        .iter()
        .map(|c| Evaluators::new(engine, &c.lik))
        .collect();
    let splits = parallel_jobs(config, engine, clusters.len() * per, |j| {
        let (c, i) = (&clusters[j / per], j % per);
        let mut rng = rng::stream(config.seed ^ c.stream, rng::purpose::SPLIT, i as u64);
        let halves = loop {
            let a: Vec<bool> = (0..c.rows.len()).map(|_| rng.gen_bool(0.5)).collect();
            let n1 = a.iter().filter(|&&v| v).count();
            if n1 > 0 && n1 < c.rows.len() {
                break a;
            }
        };
        let mut seqs = Vec::with_capacity(2);
        for half in [true, false] {
            let idx: Vec<usize> = (0..c.rows.len()).filter(|&m| halves[m] == half).collect();
            let half_lik = Arc::new(c.lik.subset(&idx)?);
            let start = Mixture::single(Sequence::random(lik.order(), &mut rng));
            seqs.push(
                Evaluators::new(engine, &half_lik)
                    .em(start, config, &mut rng)?
                    .mixture
                    .sequences()[0]
                    .clone(),
            );
        }
        let start = Mixture::new(seqs, vec![0.5, 0.5])?;
        sub_evaluators[j / per].em(start, config, &mut rng)
    })?;
    // Their memos are of no use to the E-Ms on all data.
    drop(sub_evaluators);
    let mut splits = splits.into_iter();
    let mut inits = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let fits: Vec<MlFit> = splits.by_ref().take(per).collect();
        let Some(split) = best(fits) else {
            inits.push(None);
            continue;
        };
        // Replace the cluster's sequence by the two halves, f uniform.
        let mut seqs: Vec<Sequence> = Vec::with_capacity(n + 1);
        for (s, seq) in previous.mixture.sequences().iter().enumerate() {
            if s == c.index {
                seqs.extend(split.mixture.sequences().iter().cloned());
            } else {
                seqs.push(seq.clone());
            }
        }
        inits.push(Some(Mixture::new(seqs, vec![1.0 / (n + 1) as f64; n + 1])?));
    }
    let jobs: Vec<(usize, usize)> = (0..clusters.len())
        .filter(|&c| inits[c].is_some())
        .flat_map(|c| (0..per).map(move |i| (c, i)))
        .collect();
    let fits = parallel_jobs(config, engine, jobs.len(), |j| {
        let (c, i) = jobs[j];
        let mut rng = rng::stream(
            config.seed ^ clusters[c].stream,
            rng::purpose::START_POINT,
            i as u64,
        );
        let init = inits[c]
            .clone()
            .unwrap_or_else(|| unreachable!("jobs only for clusters with a split"));
        full_evaluators.em(init, config, &mut rng)
    })?;
    let mut fits = fits.into_iter();
    let mut candidates = Vec::new();
    for c in 0..clusters.len() {
        if inits[c].is_some() {
            let cluster_fits: Vec<MlFit> = fits.by_ref().take(per).collect();
            if let Some(b) = best(cluster_fits) {
                candidates.push(b);
            }
        }
    }
    best(candidates).ok_or_else(|| {
        // Said in terms of what the user can change: the subtype count or the data
        // (with cross-validation, a fold's training part).
        let m = lik.n_subjects();
        crate::Error::Data(if m < 2 {
            crate::DataError::TooFewSubjects {
                n_subtypes: n + 1,
                n_subjects: m,
            }
        } else {
            crate::DataError::NothingToSplit {
                n_subtypes: n + 1,
                fitted: n,
                n_subjects: m,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use sustain_core::StageModel;
    use sustain_model::{Likelihood, MissingConvention, SerialEvaluator};
    use sustain_testkit::cohorts::walk_cohort;
    use sustain_testkit::defaults::{CandidatesOnly, CountingMoves};

    /// E-Ms from one start that share a memo (as the start points of one split
    /// do) give the bits of E-Ms without one, and ask the evaluator less.
    #[test]
    fn a_shared_memo_changes_no_result() {
        // 20 biomarkers: the z-score evaluator walks (`walk_pays`).
        let w = walk_cohort(20, &[1.0, 2.0], 2, 150, 7, 1.0);
        let lik =
            Arc::new(Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap());
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let random = Mixture::new(
            vec![
                Sequence::random(lik.order(), &mut rng),
                Sequence::random(lik.order(), &mut rng),
            ],
            vec![0.5, 0.5],
        )
        .unwrap();
        let config = FitConfig::default();
        // As after a split: an optimum, fractions made equal again.
        let mut ev = SerialEvaluator::new(Arc::clone(&lik));
        let (seqs, _) = em(&*lik, &mut ev, random, &config, &mut rng)
            .unwrap()
            .mixture
            .into_parts();
        let start = Mixture::new(seqs, vec![0.5, 0.5]).unwrap();
        let memo = MoveMemo::new();
        let (mut asked_with, mut asked_without) = (0, 0);
        for job in 0..4u64 {
            let run = |memo: Option<&MoveMemo>, asked: &mut usize| {
                let mut ev = CountingMoves(SerialEvaluator::new(Arc::clone(&lik)), 0);
                let mut rng = rand_pcg::Pcg64::seed_from_u64(100 + job);
                let fit =
                    em_remembering(&*lik, &mut ev, start.clone(), &config, &mut rng, memo).unwrap();
                *asked += ev.1;
                fit
            };
            let with = run(Some(&memo), &mut asked_with);
            let without = run(None, &mut asked_without);
            assert_eq!(
                with.loglike.to_bits(),
                without.loglike.to_bits(),
                "job {job}"
            );
            assert_eq!(with.mixture, without.mixture, "job {job}");
        }
        assert!(
            asked_with < asked_without,
            "the memo answered nothing: {asked_with} moves scored against {asked_without}"
        );
        // An evaluator whose choices may depend on its history is not given one.
        let memo = MoveMemo::new();
        let mut asked = [0, 0];
        for (i, memo) in [Some(&memo), None].into_iter().enumerate() {
            for job in 0..2u64 {
                let inner = SerialEvaluator::new(Arc::clone(&lik));
                let mut ev = CountingMoves(CandidatesOnly(inner), 0);
                let mut rng = rand_pcg::Pcg64::seed_from_u64(100 + job);
                em_remembering(&*lik, &mut ev, start.clone(), &config, &mut rng, memo).unwrap();
                asked[i] += ev.1;
            }
        }
        assert_eq!(asked[0], asked[1]);
    }
}
