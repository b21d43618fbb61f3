//! Property tests of the model crate: random event sets (ragged, `z_max` sometimes
//! below the top threshold), random data with missing values, random sequences and
//! fractions, checked against invariants and against a naive scalar
//! reimplementation of spec sections 1-3 written here from the formulas.

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::*;
use sustain_testkit::{
    accept_or_reject, cohort, defaults::RequiredOnly, random_fractions, random_mixture,
    random_moves, spec,
};

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// `z_vals` rows and `z_max` of a model, as handed to `EventSet::new`.
#[derive(Debug, Clone)]
struct Model {
    z_vals: Vec<Vec<f64>>,
    z_max: Vec<f64>,
}

impl Model {
    fn events(&self) -> EventSet {
        EventSet::new(&self.z_vals, &self.z_max).expect("strategy builds valid models")
    }
    fn n_biomarkers(&self) -> usize {
        self.z_vals.len()
    }
}

/// One biomarker: 1-4 strictly increasing positive thresholds and a `z_max` that is
/// equal to, above, or below (sometimes below the first threshold) the top one.
fn biomarker_strategy() -> impl Strategy<Value = (Vec<f64>, f64)> {
    (1usize..=4)
        .prop_flat_map(|n| {
            (
                0.1f64..2.0,
                prop::collection::vec(0.05f64..2.0, n - 1),
                0u8..3,
                0.05f64..1.0,
                1.0f64..3.0,
            )
        })
        .prop_map(|(first, steps, kind, below, above)| {
            let mut t = vec![first];
            for s in steps {
                let last = *t.last().unwrap();
                t.push(last + s);
            }
            let top = *t.last().unwrap();
            let z_max = match kind {
                0 => top,
                1 => top * above,
                _ => top * below,
            };
            (t, z_max)
        })
}

/// 1-8 biomarkers. Rows are either padded with zeros to a common width (plus up to
/// two extra all-zero columns) or left ragged (shorter rows).
fn model_strategy() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec(biomarker_strategy(), 1..=8),
        any::<bool>(),
        0usize..=2,
    )
        .prop_map(|(rows, pad, extra)| {
            let width = rows.iter().map(|(t, _)| t.len()).max().unwrap() + extra;
            let z_vals = rows
                .iter()
                .map(|(t, _)| {
                    let mut r = t.clone();
                    if pad {
                        r.resize(width, 0.0);
                    }
                    r
                })
                .collect();
            Model {
                z_vals,
                z_max: rows.iter().map(|(_, z)| *z).collect(),
            }
        })
}

/// 1-40 subjects x `nb` biomarkers; each value is missing with a per-case
/// probability, except one kept column per subject.
fn data_strategy(nb: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    (1usize..=40, prop::sample::select(vec![0.0, 0.2, 0.5, 0.9])).prop_flat_map(move |(m, p)| {
        prop::collection::vec(
            (
                prop::collection::vec((-4.0f64..12.0, 0.0f64..1.0), nb),
                0..nb,
            ),
            m,
        )
        .prop_map(move |rows| {
            rows.into_iter()
                .map(|(vals, keep)| {
                    vals.iter()
                        .enumerate()
                        .map(|(b, &(v, u))| if b != keep && u < p { f64::NAN } else { v })
                        .collect()
                })
                .collect()
        })
    })
}

/// 1-4 subtype weights (some exactly 0), normalised into fractions.
fn fractions_strategy() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![4 => 0.01f64..1.0, 1 => Just(0.0)], 1..=4).prop_map(
        |mut w| {
            if w.iter().all(|&v| v == 0.0) {
                w[0] = 1.0;
            }
            let sum: f64 = w.iter().sum();
            w.iter().map(|v| v / sum).collect()
        },
    )
}

/// A full case: model, data, a seed for the sequences, fractions.
#[derive(Debug, Clone)]
struct Case {
    model: Model,
    rows: Vec<Vec<f64>>,
    seed: u64,
    fractions: Vec<f64>,
}

impl Case {
    fn events(&self) -> EventSet {
        self.model.events()
    }
    fn data(&self) -> Dataset {
        Dataset::from_rows(&self.rows).expect("strategy builds valid data")
    }
    fn sequences(&self, events: &EventSet) -> Vec<Sequence> {
        let mut rng = Pcg64::seed_from_u64(self.seed);
        (0..self.fractions.len())
            .map(|_| Sequence::random(events, &mut rng))
            .collect()
    }
    fn mixture(&self, events: &EventSet) -> Mixture {
        Mixture::new(self.sequences(events), self.fractions.clone()).expect("valid fractions")
    }
    /// The case's events, data and mixture.
    fn parts(&self) -> (EventSet, Dataset, Mixture) {
        let ev = self.events();
        let mixture = self.mixture(&ev);
        (ev, self.data(), mixture)
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    model_strategy()
        .prop_flat_map(|model| {
            let nb = model.n_biomarkers();
            (
                Just(model),
                data_strategy(nb),
                any::<u64>(),
                fractions_strategy(),
            )
        })
        .prop_map(|(model, rows, seed, fractions)| Case {
            model,
            rows,
            seed,
            fractions,
        })
}

// ---------------------------------------------------------------------------
// Naive scalar reimplementation of the spec (sections 1-3)
// ---------------------------------------------------------------------------

/// Events `(biomarker, z)` numbered z-score-major: walk `j`, then `b`.
fn naive_events(z_vals: &[Vec<f64>]) -> Vec<(usize, f64)> {
    let width = z_vals.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for j in 0..width {
        for (b, row) in z_vals.iter().enumerate() {
            if let Some(&z) = row.get(j) {
                if z != 0.0 {
                    out.push((b, z));
                }
            }
        }
    }
    out
}

/// `mu[b][k]` from the piecewise-linear curve through `(0, 0)`, `(pos[e]+1, z_e)`,
/// `(N+1, z_max[b])`, averaged at `k` and `k+1`.
fn naive_mu(z_vals: &[Vec<f64>], z_max: &[f64], order: &[usize]) -> Vec<Vec<f64>> {
    let events = naive_events(z_vals);
    let n = events.len();
    let mut pos = vec![0usize; n];
    for (p, &e) in order.iter().enumerate() {
        pos[e] = p;
    }
    (0..z_vals.len())
        .map(|b| {
            let mut knots = vec![(0.0f64, 0.0f64)];
            for (e, &(eb, z)) in events.iter().enumerate() {
                if eb == b {
                    knots.push(((pos[e] + 1) as f64, z));
                }
            }
            knots.push(((n + 1) as f64, z_max[b]));
            let curve = |t: f64| -> f64 {
                for w in knots.windows(2) {
                    let ((t0, z0), (t1, z1)) = (w[0], w[1]);
                    if t >= t0 && t <= t1 {
                        return z0 + (z1 - z0) * (t - t0) / (t1 - t0);
                    }
                }
                panic!("t = {t} outside the knots {knots:?}");
            };
            (0..=n)
                .map(|k| 0.5 * (curve(k as f64) + curve((k + 1) as f64)))
                .collect()
        })
        .collect()
}

fn half_ln_2pi() -> f64 {
    0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// `log p(x | k)` for every stage `k`, straight from the spec (sigma 1, z_min 0).
fn naive_log_p_given_stage(
    row: &[f64],
    mu: &[Vec<f64>],
    z_max: &[f64],
    conv: MissingConvention,
) -> Vec<f64> {
    let ns = mu[0].len();
    (0..ns)
        .map(|k| {
            let mut v = 0.0;
            for (b, &x) in row.iter().enumerate() {
                if x.is_nan() {
                    if conv == MissingConvention::Reference {
                        let t = (1.0 / (z_max[b] - 0.0)).ln();
                        v += -half_ln_2pi() - 0.5 * t * t;
                    }
                } else {
                    let d = x - mu[b][k];
                    v += -half_ln_2pi() - 0.5 * d * d;
                }
            }
            v
        })
        .collect()
}

fn naive_lse(v: &[f64]) -> f64 {
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Per subject `log p(x_m) = log sum_s f_s sum_k p(x_m | k, s) / (N+1)`.
fn naive_log_p_subjects(
    model: &Model,
    rows: &[Vec<f64>],
    orders: &[Vec<usize>],
    fractions: &[f64],
    conv: MissingConvention,
) -> Vec<f64> {
    let mus: Vec<Vec<Vec<f64>>> = orders
        .iter()
        .map(|o| naive_mu(&model.z_vals, &model.z_max, o))
        .collect();
    let ns = mus[0][0].len() as f64;
    rows.iter()
        .map(|row| {
            let mut terms = Vec::new();
            for (s, mu) in mus.iter().enumerate() {
                if fractions[s] == 0.0 {
                    continue;
                }
                for l in naive_log_p_given_stage(row, mu, &model.z_max, conv) {
                    terms.push(fractions[s].ln() + l - ns.ln());
                }
            }
            naive_lse(&terms)
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

fn orders(mixture: &Mixture) -> Vec<Vec<usize>> {
    mixture.sequences().iter().map(Sequence::order).collect()
}

const CONVENTIONS: [MissingConvention; 2] =
    [MissingConvention::Marginalise, MissingConvention::Reference];

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Events are numbered z-score-major, exactly as the spec says.
    #[test]
    fn events_are_numbered_zscore_major(model in model_strategy()) {
        let ev = model.events();
        let naive = naive_events(&model.z_vals);
        prop_assert_eq!(ev.n_events(), naive.len());
        prop_assert_eq!(ev.n_stages(), naive.len() + 1);
        for (e, &(b, z)) in naive.iter().enumerate() {
            prop_assert_eq!(ev.event(e).biomarker, b);
            prop_assert_eq!(ev.event(e).z, z);
        }
        for b in 0..ev.n_biomarkers() {
            for (level, &e) in ev.biomarker_events(b).iter().enumerate() {
                prop_assert_eq!(ev.event(e).level, level);
            }
        }
    }

    /// `Sequence::random` yields valid sequences: they round-trip through the
    /// validating constructor and every biomarker's events appear in threshold order.
    #[test]
    fn random_sequences_are_valid(model in model_strategy(), seed in any::<u64>()) {
        let ev = model.events();
        let mut rng = Pcg64::seed_from_u64(seed);
        for _ in 0..4 {
            let seq = Sequence::random(&ev, &mut rng);
            let order = seq.order();
            prop_assert_eq!(order.len(), ev.n_events());
            let again = Sequence::new(&ev, &order);
            prop_assert!(again.is_ok(), "{:?}", again);
            prop_assert_eq!(again.unwrap(), seq.clone());
            for (p, &e) in order.iter().enumerate() {
                prop_assert_eq!(seq.position(e), p);
                prop_assert_eq!(seq.event_at(p), e);
            }
            for b in 0..ev.n_biomarkers() {
                let evs = ev.biomarker_events(b);
                for w in evs.windows(2) {
                    prop_assert!(seq.position(w[0]) < seq.position(w[1]));
                    prop_assert!(ev.event(w[0]).z < ev.event(w[1]).z);
                }
            }
        }
    }

    /// `StageValues` agree with the naive curve. With `z_max >=` the top threshold
    /// every biomarker's values are non-decreasing in the stage and lie in
    /// `[0, z_max]`. Otherwise the curve rises to the top threshold at `T = pos+1` of
    /// the top event and falls to `z_max` after it: the values are non-decreasing on
    /// stages `0..=T-1`, non-increasing on `T..=N`, bounded by the top threshold and
    /// never below `min(mu[0], z_max)`, and peak at stage `T-1` or `T`.
    #[test]
    fn stage_values_shape(model in model_strategy(), seed in any::<u64>()) {
        let ev = model.events();
        let mut rng = Pcg64::seed_from_u64(seed);
        let seq = Sequence::random(&ev, &mut rng);
        let sv = StageValues::new(&ev, &seq);
        let naive = naive_mu(&model.z_vals, &model.z_max, &seq.order());
        prop_assert_eq!(sv.n_stages(), ev.n_stages());
        let ns = ev.n_stages();
        prop_assert_eq!(naive.len(), ev.n_biomarkers());
        for (b, naive_b) in naive.iter().enumerate() {
            let mu = sv.biomarker(b);
            prop_assert_eq!(mu.len(), ns);
            for k in 0..ns {
                prop_assert!((mu[k] - naive_b[k]).abs() <= 1e-12 * naive_b[k].abs().max(1.0),
                    "b {} k {}: {} vs naive {}", b, k, mu[k], naive_b[k]);
                prop_assert_eq!(sv.get(b, k), mu[k]);
            }
            let evs = ev.biomarker_events(b);
            let top_e = *evs.last().unwrap();
            let top_z = ev.event(top_e).z;
            let z_max = ev.z_max(b);
            let eps = 1e-12;
            if z_max >= top_z {
                for k in 1..ns {
                    prop_assert!(mu[k] >= mu[k - 1] - eps,
                        "b {}: mu[{}] = {} < mu[{}] = {} with z_max {} >= top {}",
                        b, k, mu[k], k - 1, mu[k - 1], z_max, top_z);
                }
                prop_assert!(mu[0] >= -eps && mu[ns - 1] <= z_max + eps);
            } else {
                let t = seq.position(top_e) + 1; // knot of the top threshold, 1..=N
                for k in 1..t {
                    prop_assert!(mu[k] >= mu[k - 1] - eps, "rising part b {} k {}: {:?}", b, k, mu);
                }
                for k in t + 1..ns {
                    prop_assert!(mu[k] <= mu[k - 1] + eps, "falling part b {} k {} (T {}): {:?}", b, k, t, mu);
                }
                let lo = mu[0].min(z_max);
                for &m in mu {
                    prop_assert!(m <= top_z + eps && m >= lo - eps, "bounds b {}: {:?}", b, mu);
                }
                // The peak is at stage T-1 or T.
                let peak = mu.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(mu[t - 1] == peak || mu[t.min(ns - 1)] == peak, "peak b {} T {}: {:?}", b, t, mu);
            }
        }
    }

    /// Moving an event to any allowed position and back is the identity; the
    /// allowed range always contains the current position; a disallowed move errors
    /// (with the allowed range in the error) and leaves the sequence unchanged.
    #[test]
    fn moves(model in model_strategy(), seed in any::<u64>()) {
        let ev = model.events();
        let mut rng = Pcg64::seed_from_u64(seed);
        let seq = Sequence::random(&ev, &mut rng);
        let n = ev.n_events();
        for e in 0..n {
            let allowed = seq.allowed_positions(&ev, e);
            let from = seq.position(e);
            prop_assert!(allowed.contains(&from), "event {} at {} not in {:?}", e, from, allowed);
            prop_assert!(*allowed.end() < n);
            for to in 0..n + 2 {
                let mut s = seq.clone();
                if allowed.contains(&to) {
                    prop_assert!(s.move_event(&ev, e, to).is_ok());
                    prop_assert_eq!(s.position(e), to);
                    prop_assert!(Sequence::new(&ev, &s.order()).is_ok(), "move made an invalid sequence");
                    prop_assert!(s.allowed_positions(&ev, e).contains(&from));
                    let back = s.move_event(&ev, e, from);
                    prop_assert!(back.is_ok(), "{:?}", back);
                    prop_assert_eq!(&s, &seq);
                } else {
                    let err = s.move_event(&ev, e, to);
                    prop_assert_eq!(
                        err,
                        Err(ModelError::MoveNotAllowed {
                            event: e,
                            position: to,
                            low: *allowed.start(),
                            high: *allowed.end()
                        })
                    );
                    prop_assert_eq!(&s, &seq);
                }
            }
        }
        // A random walk of allowed moves keeps the sequence valid.
        let mut s = seq.clone();
        for _ in 0..50 {
            let e = rng.gen_range(0..n);
            let allowed = s.allowed_positions(&ev, e);
            prop_assert!(allowed.contains(&s.position(e)));
            let to = rng.gen_range(allowed);
            s.move_event(&ev, e, to).unwrap();
            let check = Sequence::new(&ev, &s.order());
            prop_assert!(check.is_ok(), "{:?}", check);
            prop_assert_eq!(check.unwrap(), s.clone());
        }
    }

    /// `StageValues::refill_moved` after a random walk of moves (recomputing only
    /// the biomarkers whose events moved) gives the same bits as computing every
    /// curve afresh; a biomarker left out while one of its events moved would not.
    #[test]
    fn refill_moved_matches_fresh_stage_values(model in model_strategy(), seed in any::<u64>()) {
        let ev = model.events();
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut s = Sequence::random(&ev, &mut rng);
        let mut mu = StageValues::new(&ev, &s);
        for _ in 0..20 {
            let before = s.clone();
            for _ in 0..rng.gen_range(1..3) {
                let e = rng.gen_range(0..ev.n_events());
                let to = rng.gen_range(s.allowed_positions(&ev, e));
                s.move_event(&ev, e, to).unwrap();
            }
            let mut moved = vec![false; ev.n_biomarkers()];
            for e in 0..ev.n_events() {
                if before.position(e) != s.position(e) {
                    moved[ev.event(e).biomarker] = true;
                }
            }
            let mut next = StageValues::new(&ev, &before);
            next.refill_moved(&mu, &ev, &s, &moved);
            let fresh = StageValues::new(&ev, &s);
            prop_assert!(next.as_slice().iter().zip(fresh.as_slice()).all(|(a, b)| a.to_bits() == b.to_bits()));
            mu = next;
        }
    }

    /// The fast path (`loglike`, `log_p_subjects`, `log_p_perm_k`) agrees with the
    /// naive scalar formula for both missing-value conventions, and the baseline
    /// kernels agree with the detected SIMD kernels.
    #[test]
    fn fast_path_matches_naive(case in case_strategy()) {
        let (ev, data, mixture) = case.parts();
        let ord = orders(&mixture);
        for conv in CONVENTIONS {
            let lik = Likelihood::new(ev.clone(), &data, conv).unwrap();
            let naive = naive_log_p_subjects(&case.model, &case.rows, &ord, &case.fractions, conv);
            let fast = lik.log_p_subjects(&mixture);
            prop_assert_eq!(fast.len(), case.rows.len());
            for (m, (a, b)) in fast.iter().zip(&naive).enumerate() {
                prop_assert!(a.is_finite());
                prop_assert!(rel(*a, *b) < 1e-10, "{:?} subject {}: fast {} naive {}", conv, m, a, b);
            }
            let total = lik.loglike(&mixture);
            let naive_total: f64 = naive.iter().sum();
            prop_assert!(rel(total, naive_total) < 1e-10, "{:?} total: fast {} naive {}", conv, total, naive_total);

            // p_perm_k of every subtype.
            let ns = ev.n_stages() as f64;
            for (s, seq) in mixture.sequences().iter().enumerate() {
                let perm = lik.log_p_perm_k(seq);
                let mu = naive_mu(&case.model.z_vals, &case.model.z_max, &ord[s]);
                for (m, row) in case.rows.iter().enumerate() {
                    let l = naive_log_p_given_stage(row, &mu, &case.model.z_max, conv);
                    for (k, v) in l.iter().enumerate() {
                        let want = v - ns.ln();
                        prop_assert!(rel(perm[[m, k]], want) < 1e-10,
                            "{:?} p_perm_k s {} m {} k {}: {} vs {}", conv, s, m, k, perm[[m, k]], want);
                    }
                }
            }

            let base = lik.clone().with_baseline_kernels();
            prop_assert_eq!(base.isa(), sustain_model::kernels::Isa::Baseline);
            let fast_b = base.log_p_subjects(&mixture);
            for (m, (a, b)) in fast.iter().zip(&fast_b).enumerate() {
                prop_assert!(rel(*a, *b) < 1e-12, "{:?} subject {}: {:?} {} vs baseline {}", conv, m, lik.isa(), a, b);
            }
            let total_b = base.loglike(&mixture);
            prop_assert!(rel(total, total_b) < 1e-12, "{:?} total {:?} {} vs baseline {}", conv, lik.isa(), total, total_b);
        }
    }

    /// The log-likelihood does not depend on the order of the subjects.
    #[test]
    fn loglike_invariant_under_subject_permutation(case in case_strategy(), perm_seed in any::<u64>()) {
        let (ev, data, mixture) = case.parts();
        let mut perm: Vec<usize> = (0..data.n_subjects()).collect();
        perm.shuffle(&mut Pcg64::seed_from_u64(perm_seed));
        let shuffled = data.select(&perm).unwrap();
        for conv in CONVENTIONS {
            let a = Likelihood::new(ev.clone(), &data, conv).unwrap();
            let b = Likelihood::new(ev.clone(), &shuffled, conv).unwrap();
            let (la, lb) = (a.loglike(&mixture), b.loglike(&mixture));
            prop_assert!(rel(la, lb) < 1e-10, "{:?}: {} vs permuted {}", conv, la, lb);
            let (pa, pb) = (a.log_p_subjects(&mixture), b.log_p_subjects(&mixture));
            for (i, &m) in perm.iter().enumerate() {
                prop_assert!(rel(pb[i], pa[m]) < 1e-12, "subject {} (now row {}): {} vs {}", m, i, pa[m], pb[i]);
            }
        }
    }

    /// Posteriors are probabilities that sum to 1 per subject, and their marginals
    /// agree with the joint.
    #[test]
    fn posteriors_sum_to_one(case in case_strategy()) {
        let (ev, data, mixture) = case.parts();
        let m_n = data.n_subjects();
        let (ns, n_sub) = (ev.n_stages(), mixture.n_subtypes());
        for conv in CONVENTIONS {
            let lik = Likelihood::new(ev.clone(), &data, conv).unwrap();
            let post = lik.posteriors(&mixture);
            prop_assert_eq!(post.subtype.dim(), (m_n, n_sub));
            prop_assert_eq!(post.stage.dim(), (m_n, ns));
            prop_assert_eq!(post.subtype_stage.dim(), (m_n, ns, n_sub));
            for m in 0..m_n {
                let s1: f64 = post.subtype.row(m).sum();
                let s2: f64 = post.stage.row(m).sum();
                let s3: f64 = post.subtype_stage.index_axis(ndarray::Axis(0), m).sum();
                for (what, s) in [("subtype", s1), ("stage", s2), ("subtype_stage", s3)] {
                    prop_assert!((s - 1.0).abs() < 1e-12, "{:?} subject {} {} posterior sums to {}", conv, m, what, s);
                }
                for v in post.subtype_stage.index_axis(ndarray::Axis(0), m).iter() {
                    prop_assert!(v.is_finite() && *v >= 0.0);
                }
                for (s, &f) in case.fractions.iter().enumerate() {
                    if f == 0.0 {
                        prop_assert_eq!(post.subtype[[m, s]], 0.0);
                    }
                }
            }
        }
    }

    /// `posterior_sums` over several mixtures (some sharing sequences, some with
    /// zero fractions) equals the sum of the spec's posteriors computed naively with
    /// `f64::exp`, and computing it on any split of the subjects gives the same bits.
    #[test]
    fn posterior_sums_match_naive(case in case_strategy(), seed2 in any::<u64>(), cut in 0usize..6) {
        let (ev, data, first) = case.parts();
        let mut rng = Pcg64::seed_from_u64(seed2);
        // The first mixture again, one with a subtype moved to a new sequence, and
        // one with other fractions (a zero among them when there are 2 or more).
        let mut moved = first.clone();
        moved.sequences_mut()[0] = Sequence::random(&ev, &mut rng);
        let n_sub = first.n_subtypes();
        let mut w: Vec<f64> = (0..n_sub).map(|s| if s == 1 { 0.0 } else { rng.gen_range(0.1..1.0) }).collect();
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= total);
        let refrac = Mixture::new(first.sequences().to_vec(), w).unwrap();
        let mixtures = vec![first.clone(), moved, first, refrac];
        let (m_n, ns) = (data.n_subjects(), ev.n_stages());
        for conv in CONVENTIONS {
            let lik = Likelihood::new(ev.clone(), &data, conv).unwrap();
            let got = lik.posterior_sums(&mixtures);
            prop_assert_eq!(got.dim(), (m_n, ns, n_sub));
            let mut want = ndarray::Array3::<f64>::zeros((m_n, ns, n_sub));
            for mix in &mixtures {
                let mus: Vec<Vec<Vec<f64>>> = mix
                    .sequences()
                    .iter()
                    .map(|seq| naive_mu(&case.model.z_vals, &case.model.z_max, &seq.order()))
                    .collect();
                for (m, row) in case.rows.iter().enumerate() {
                    let mut terms = vec![f64::NEG_INFINITY; ns * n_sub];
                    for (s, mu) in mus.iter().enumerate() {
                        for (k, l) in naive_log_p_given_stage(row, mu, &case.model.z_max, conv).into_iter().enumerate() {
                            terms[k * n_sub + s] = mix.fractions()[s].ln() + l;
                        }
                    }
                    let lse = naive_lse(&terms);
                    for k in 0..ns {
                        for s in 0..n_sub {
                            want[[m, k, s]] += (terms[k * n_sub + s] - lse).exp();
                        }
                    }
                }
            }
            for ((idx, a), b) in got.indexed_iter().zip(want.iter()) {
                // Sums over up to one posterior per mixture: relative to their size.
                prop_assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "{:?} {:?}: {} vs naive {}", conv, idx, a, b);
                if *b == 0.0 {
                    prop_assert_eq!(*a, 0.0, "a zero fraction gives exact zeros");
                }
            }
            // The portable kernels agree with the detected SIMD ones.
            let base = lik.clone().with_baseline_kernels().posterior_sums(&mixtures);
            for ((idx, a), b) in got.indexed_iter().zip(base.iter()) {
                // As above (a case with values near 11 and z_max 15 differed by
                // 4e-14 relative on a sum of 2.4; the regressions file keeps it).
                prop_assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "{:?} {:?}: {:?} {} vs baseline {}", conv, idx, lik.isa(), a, b);
            }
            // Any split on a lane-group boundary gives the same bits.
            let lanes = sustain_model::kernels::LANES;
            let at = (cut * lanes).min(m_n / lanes * lanes);
            let mut split = vec![0.0; m_n * ns * n_sub];
            let (lo, hi) = split.split_at_mut(at * ns * n_sub);
            lik.posterior_sums_into(&mixtures, 0..at, lo);
            lik.posterior_sums_into(&mixtures, at..m_n, hi);
            prop_assert!(split.iter().zip(got.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// `SerialEvaluator`: `loglike_subtype_candidates` equals `loglike` of the
    /// mixture with that subtype replaced; `loglike_batch` and
    /// `log_p_subjects_batch` equal the individual calls; the trait's default
    /// `loglike_subtype_candidates` agrees with the override.
    #[test]
    fn batch_evaluator_agrees(case in case_strategy(), cand_seed in any::<u64>()) {
        let (ev, data, mixture) = case.parts();
        let mut rng = Pcg64::seed_from_u64(cand_seed);
        let candidates: Vec<Sequence> = (0..4).map(|_| Sequence::random(&ev, &mut rng)).collect();
        for conv in CONVENTIONS {
            let lik = Arc::new(Likelihood::new(ev.clone(), &data, conv).unwrap());
            let mut serial = SerialEvaluator::new(lik.clone());
            let mut default_impl = RequiredOnly(SerialEvaluator::new(lik.clone()));
            prop_assert_eq!(serial.n_subjects(), data.n_subjects());
            prop_assert_eq!(serial.events(), ev.order());
            let mut replaced_all = Vec::new();
            for t in 0..mixture.n_subtypes() {
                let got = serial.loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates).unwrap();
                let via_default = default_impl.loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates).unwrap();
                prop_assert_eq!(got.len(), candidates.len());
                for (i, c) in candidates.iter().enumerate() {
                    let mut replaced = mixture.clone();
                    replaced.sequences_mut()[t] = c.clone();
                    let want = lik.loglike(&replaced);
                    prop_assert!(rel(got[i], want) < 1e-10,
                        "{:?} subtype {} candidate {} (f = {:?}): candidates {} vs loglike {}",
                        conv, t, i, mixture.fractions(), got[i], want);
                    prop_assert!(rel(via_default[i], want) < 1e-10);
                    replaced_all.push(replaced);
                }
            }
            replaced_all.push(mixture.clone());
            let batch = serial.loglike_batch(&replaced_all).unwrap();
            let per_batch = serial.log_p_subjects_batch(&replaced_all).unwrap();
            prop_assert_eq!(batch.len(), replaced_all.len());
            for (i, m) in replaced_all.iter().enumerate() {
                prop_assert_eq!(batch[i], lik.loglike(m));
                prop_assert_eq!(&per_batch[i], &lik.log_p_subjects(m));
            }
        }
    }

    /// E-M's decision: `best_subtype_candidate` (which screens in single precision
    /// where it can) picks the same candidate as ranking every exact score, on the
    /// positions of one event (close scores) plus a repeated candidate (a tie the
    /// first of which must win) and a random sequence.
    #[test]
    fn best_candidate_matches_exact_ranking(case in case_strategy(), cand_seed in any::<u64>()) {
        let (ev, data, mixture) = case.parts();
        let mut rng = Pcg64::seed_from_u64(cand_seed);
        for conv in CONVENTIONS {
            let lik = Arc::new(Likelihood::new(ev.clone(), &data, conv).unwrap());
            for t in 0..mixture.n_subtypes() {
                let e = rng.gen_range(0..ev.n_events());
                let seq = &mixture.sequences()[t];
                let mut candidates: Vec<Sequence> = seq
                    .allowed_positions(&ev, e)
                    .map(|to| {
                        let mut c = seq.clone();
                        c.move_unchecked(e, to);
                        c
                    })
                    .collect();
                let twin = candidates[rng.gen_range(0..candidates.len())].clone();
                candidates.push(twin);
                candidates.push(Sequence::random(&ev, &mut rng));
                let exact = SerialEvaluator::new(lik.clone())
                    .loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates)
                    .unwrap();
                let want = sustain_model::batch::first_max(&exact);
                let got = SerialEvaluator::new(lik.clone())
                    .best_subtype_candidate(SubtypeOf::new(&mixture, t), &candidates)
                    .unwrap();
                prop_assert_eq!(got, want, "{:?} subtype {} scores {:?}", conv, t, exact);
                // The trait's default ranks its own (fresh, not incremental) scores,
                // which may order a near-tie differently in the last bits.
                let mut default_impl = RequiredOnly(SerialEvaluator::new(lik.clone()));
                let fresh = default_impl.loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates).unwrap();
                let via_default = default_impl.best_subtype_candidate(SubtypeOf::new(&mixture, t), &candidates).unwrap();
                prop_assert_eq!(via_default, sustain_model::batch::first_max(&fresh));
            }
        }
    }

    /// E-M's move of one event: `best_event_position` (which walks the positions
    /// in order and scores only those that may be the best exactly) picks the
    /// position whose exact score is the first largest, for every event of every
    /// subtype (ragged thresholds, missing values, 1-3 subtypes), and agrees with
    /// the trait's default, which builds every candidate.
    #[test]
    fn best_event_position_matches_exact_ranking(case in case_strategy()) {
        let (ev, data, mixture) = case.parts();
        for conv in CONVENTIONS {
            let lik = Arc::new(Likelihood::new(ev.clone(), &data, conv).unwrap());
            let mut walked = SerialEvaluator::new(lik.clone()).with_walk(true);
            for t in 0..mixture.n_subtypes() {
                for e in 0..ev.n_events() {
                    let allowed = mixture.sequences()[t].allowed_positions(&ev, e);
                    let candidates = batch::event_candidates(SubtypeOf::new(&mixture, t), e, allowed.clone());
                    let exact = SerialEvaluator::new(lik.clone())
                        .loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates)
                        .unwrap();
                    let want = allowed.start() + sustain_model::batch::first_max(&exact);
                    let got = walked.best_event_position(SubtypeOf::new(&mixture, t), e, allowed.clone()).unwrap();
                    prop_assert_eq!(got, want, "{:?} subtype {} event {} scores {:?}", conv, t, e, exact);
                    let via_default = RequiredOnly(SerialEvaluator::new(lik.clone()))
                        .best_event_position(SubtypeOf::new(&mixture, t), e, allowed)
                        .unwrap();
                    let fresh = RequiredOnly(SerialEvaluator::new(lik.clone()))
                        .loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates)
                        .unwrap();
                    let start = *mixture.sequences()[t].allowed_positions(&ev, e).start();
                    prop_assert_eq!(via_default, start + sustain_model::batch::first_max(&fresh));
                }
            }
        }
    }

    /// `simulate` is deterministic for a seed and yields the requested shape.
    #[test]
    fn simulate_is_deterministic(
        model in model_strategy(),
        fractions in fractions_strategy(),
        seed in any::<u64>(),
        n_subjects in 1usize..60,
        control in prop::sample::select(vec![0.0, 0.25]),
        missing in prop::sample::select(vec![0.0, 0.1, 0.6]),
    ) {
        let ev = model.events();
        let mut rng = Pcg64::seed_from_u64(seed);
        let seqs = (0..fractions.len()).map(|_| Sequence::random(&ev, &mut rng)).collect();
        let truth = Mixture::new(seqs, fractions.clone()).unwrap();
        let spec = SimulationSpec { n_subjects, control_fraction: control, missing_fraction: missing };
        let a = simulate(&ev, &truth, &spec, seed).unwrap();
        let b = simulate(&ev, &truth, &spec, seed).unwrap();
        prop_assert_eq!(a.data.values().dim(), (n_subjects, ev.n_biomarkers()));
        prop_assert_eq!(a.subtypes.len(), n_subjects);
        prop_assert_eq!(a.stages.len(), n_subjects);
        let bits = |d: &Dataset| d.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&a.data), bits(&b.data));
        prop_assert_eq!(&a.subtypes, &b.subtypes);
        prop_assert_eq!(&a.stages, &b.stages);
        let n_controls = (control * n_subjects as f64).round() as usize;
        for m in 0..n_subjects {
            prop_assert!(a.subtypes[m] < truth.n_subtypes());
            prop_assert!(fractions[a.subtypes[m]] > 0.0, "subject {} drawn from an empty subtype", m);
            prop_assert!(a.stages[m] <= ev.n_events());
            if m < n_controls {
                prop_assert_eq!(a.stages[m], 0);
            }
            prop_assert!((0..ev.n_biomarkers()).any(|b| !a.data.is_missing(m, b)));
        }
        if missing == 0.0 {
            prop_assert_eq!(a.data.n_missing(), 0);
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed-case tests
// ---------------------------------------------------------------------------

/// 500 biomarkers x 3 thresholds (1500 events), 20 subjects: every `p(x_m | k)` is
/// below 1e-320, so the reference's exp-then-sum gives log(0 + 1e-250) or -inf.
/// The log-domain likelihood stays finite and matches the naive log-sum-exp.
#[test]
fn loglike_finite_for_500_biomarkers() {
    let nb = 500;
    let model = Model {
        z_vals: vec![vec![1.0, 2.0, 3.0]; nb],
        z_max: vec![5.0; nb],
    };
    let ev = model.events();
    assert_eq!(ev.n_events(), 1500);
    let w = cohort(ev.clone(), &[0.6, 0.4], 500, &spec(20, 0.0, 0.1), 501);
    let (truth, mut rng) = (w.truth, w.rng);
    // Extra independent noise (uniform on [-3, 3], variance 3) so that no stage fits
    // well: the best log p(x|k) is far below the smallest f64 exponent (about -745).
    let rows: Vec<Vec<f64>> = w
        .data
        .values()
        .outer_iter()
        .map(|r| r.iter().map(|v| v + rng.gen_range(-3.0..3.0)).collect())
        .collect();
    let data = Dataset::from_rows(&rows).unwrap();
    let ord = orders(&truth);
    for conv in CONVENTIONS {
        // The naive exp-then-sum underflows for every subject.
        let mus: Vec<Vec<Vec<f64>>> = ord
            .iter()
            .map(|o| naive_mu(&model.z_vals, &model.z_max, o))
            .collect();
        for row in &rows {
            let mut p = 0.0f64;
            for (s, mu) in mus.iter().enumerate() {
                for l in naive_log_p_given_stage(row, mu, &model.z_max, conv) {
                    p += truth.fractions()[s] * l.exp() / ev.n_stages() as f64;
                }
            }
            assert_eq!(p, 0.0, "exp-then-sum should underflow");
        }
        let lik = Likelihood::new(ev.clone(), &data, conv).unwrap();
        let ll = lik.loglike(&truth);
        assert!(ll.is_finite(), "{conv:?}: loglike {ll}");
        let naive = naive_log_p_subjects(&model, &rows, &ord, truth.fractions(), conv);
        let naive_total: f64 = naive.iter().sum();
        assert!(
            rel(ll, naive_total) < 1e-10,
            "{conv:?}: {ll} vs naive {naive_total}"
        );
        for (m, (a, b)) in lik.log_p_subjects(&truth).iter().zip(&naive).enumerate() {
            assert!(
                a.is_finite() && rel(*a, *b) < 1e-10,
                "{conv:?} subject {m}: {a} vs {b}"
            );
        }
        let base = lik.clone().with_baseline_kernels().loglike(&truth);
        assert!(
            rel(ll, base) < 1e-12,
            "{conv:?}: {:?} {ll} vs baseline {base}",
            lik.isa()
        );
        let post = lik.posteriors(&truth);
        for m in 0..rows.len() {
            assert!((post.stage.row(m).sum() - 1.0).abs() < 1e-12);
            assert!((post.subtype.row(m).sum() - 1.0).abs() < 1e-12);
        }
        let mut serial = SerialEvaluator::new(Arc::new(lik.clone()));
        let cand = vec![Sequence::random(&ev, &mut rng)];
        let got = serial
            .loglike_subtype_candidates(SubtypeOf::new(&truth, 1), &cand)
            .unwrap()[0];
        let mut replaced = truth.clone();
        replaced.sequences_mut()[1] = cand[0].clone();
        let want = lik.loglike(&replaced);
        assert!(got.is_finite() && rel(got, want) < 1e-10, "{got} vs {want}");
    }
}

/// A biomarker without events (an all-zero row) follows the straight line from
/// (0, 0) to (N+1, z_max); the fast path still matches the naive formula.
#[test]
fn biomarker_without_events_matches_naive() {
    let model = Model {
        z_vals: vec![vec![1.0, 2.0], vec![0.0, 0.0], vec![0.5, 0.0]],
        z_max: vec![4.0, 3.0, 2.0],
    };
    let ev = model.events();
    assert_eq!(ev.n_events(), 3);
    assert!(ev.biomarker_events(1).is_empty());
    let mut rng = Pcg64::seed_from_u64(3);
    let rows: Vec<Vec<f64>> = (0..13)
        .map(|m| {
            (0..3)
                .map(|b| {
                    if m % 3 == b && m % 2 == 0 {
                        f64::NAN
                    } else {
                        rng.gen_range(-2.0..6.0)
                    }
                })
                .collect()
        })
        .collect();
    let data = Dataset::from_rows(&rows).unwrap();
    let mixture = sustain_testkit::random_mixture(&ev, &[0.7, 0.3], &mut rng);
    let sv = StageValues::new(&ev, &mixture.sequences()[0]);
    for k in 0..ev.n_stages() {
        let want = 3.0 * (k as f64 + 0.5) / 4.0;
        assert!(
            (sv.get(1, k) - want).abs() < 1e-12,
            "k {k}: {} vs {want}",
            sv.get(1, k)
        );
    }
    for conv in CONVENTIONS {
        let lik = Likelihood::new(ev.clone(), &data, conv).unwrap();
        let naive =
            naive_log_p_subjects(&model, &rows, &orders(&mixture), mixture.fractions(), conv);
        for (a, b) in lik.log_p_subjects(&mixture).iter().zip(&naive) {
            assert!(rel(*a, *b) < 1e-10, "{conv:?}: {a} vs {b}");
        }
    }
}

/// The simulator removes each value except one kept per subject with probability
/// `missing_fraction`, so the overall missing share is `p * (B - 1) / B`; stages and
/// subtypes follow their distributions.
#[test]
fn simulate_missing_fraction_and_distributions() {
    let ev = EventSet::uniform(10, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let truth = random_mixture(&ev, &[0.5, 0.3, 0.2], &mut Pcg64::seed_from_u64(11));
    let n = 4000;
    let spec = spec(n, 0.0, 0.1);
    let sim = simulate(&ev, &truth, &spec, 12).unwrap();
    let share = sim.data.n_missing() as f64 / (n * 10) as f64;
    let expected = 0.1 * 9.0 / 10.0;
    assert!(
        (share - expected).abs() < 0.01,
        "missing share {share}, expected about {expected}"
    );
    assert!(
        (share - 0.1).abs() < 0.02,
        "missing share {share}, requested 0.1"
    );
    for (s, f) in truth.fractions().iter().enumerate() {
        let got = sim.subtypes.iter().filter(|&&x| x == s).count() as f64 / n as f64;
        assert!(
            (got - f).abs() < 0.03,
            "subtype {s}: share {got} vs fraction {f}"
        );
    }
    let mean_stage = sim.stages.iter().sum::<usize>() as f64 / n as f64;
    assert!(
        (mean_stage - 15.0).abs() < 0.6,
        "mean stage {mean_stage}, uniform on 0..=30 has mean 15"
    );
    // A different seed gives different data.
    let other = simulate(&ev, &truth, &spec, 13).unwrap();
    assert_ne!(other.stages, sim.stages);
    // Without missing values nothing is missing.
    let full = simulate(
        &ev,
        &truth,
        &SimulationSpec {
            missing_fraction: 0.0,
            ..spec
        },
        12,
    )
    .unwrap();
    assert_eq!(full.data.n_missing(), 0);
}

/// `Mixture::new` accepts fractions whose sum is within 1e-6 of 1
/// (`FRACTION_SUM_TOLERANCE`). `loglike` uses the fractions as given, so
/// `loglike_subtype_candidates` must too: it may not replace the other subtypes'
/// total weight by `1 - f_t`, nor give weight to subtypes whose fraction is 0.
#[test]
fn candidates_match_loglike_for_fractions_within_tolerance() {
    let ev = EventSet::uniform(4, &[1.0, 2.0], 4.0).unwrap();
    let mut rng = Pcg64::seed_from_u64(1);
    let seqs: Vec<Sequence> = (0..3).map(|_| Sequence::random(&ev, &mut rng)).collect();
    let truth = Mixture::new(seqs.clone(), vec![0.5, 0.3, 0.2]).unwrap();
    let sim = simulate(
        &ev,
        &truth,
        &SimulationSpec {
            n_subjects: 50,
            ..Default::default()
        },
        2,
    )
    .unwrap();
    let lik =
        Arc::new(Likelihood::new(ev.clone(), &sim.data, MissingConvention::Marginalise).unwrap());
    let mut serial = SerialEvaluator::new(lik.clone());
    let candidates = vec![Sequence::random(&ev, &mut rng)];
    let mut failures = Vec::new();
    for f in [
        vec![0.5, 0.3, 0.2 + 9e-7],
        vec![0.5, 0.3, 0.2 - 9e-7],
        vec![1.0 - 9e-7, 0.0, 0.0],
    ] {
        let mixture =
            Mixture::new(seqs.clone(), f.clone()).expect("within the documented tolerance");
        for t in 0..3 {
            let got = serial
                .loglike_subtype_candidates(SubtypeOf::new(&mixture, t), &candidates)
                .unwrap()[0];
            let mut replaced = mixture.clone();
            replaced.sequences_mut()[t] = candidates[0].clone();
            let want = lik.loglike(&replaced);
            if rel(got, want) >= 1e-10 {
                failures.push(format!(
                    "f = {f:?}, subtype {t}: candidates {got} vs loglike {want}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "loglike_subtype_candidates disagrees with loglike:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The incremental state of chains
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random walks of proposals (sequence moves in random subtypes, fraction
    /// changes, accepts and rejects) on random event sets and data, at z-score
    /// scales from ordinary to extreme (where most stage likelihoods underflow and
    /// the state's guarded paths run): every proposal and every accepted state
    /// equals a fresh evaluation.
    #[test]
    fn incremental_state_equals_fresh_evaluation(
        case in case_strategy(),
        scale in prop::sample::select(vec![1.0, 6.0, 25.0]),
        walk_seed in any::<u64>(),
        reference_convention in any::<bool>(),
    ) {
        let conv = if reference_convention {
            MissingConvention::Reference
        } else {
            MissingConvention::Marginalise
        };
        let events = case.events();
        let rows: Vec<Vec<f64>> = case.rows.iter().map(|r| r.iter().map(|v| v * scale).collect()).collect();
        let data = Dataset::from_rows(&rows).unwrap();
        let lik = Arc::new(Likelihood::new(events.clone(), &data, conv).unwrap());
        let mut current = case.mixture(&events);
        let mut inc = IncrementalLikelihood::new(Arc::clone(&lik), &current);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        prop_assert!(close(inc.loglike(), lik.loglike(&current)));
        let mut rng = Pcg64::seed_from_u64(walk_seed);
        let ns = current.n_subtypes();
        for it in 0..150 {
            let mut prop = current.clone();
            let changed = random_moves(&mut prop, &events, 0.6, &mut rng);
            if rng.gen_bool(0.3) {
                let f = random_fractions(ns, &mut rng);
                prop.set_fractions(f).unwrap();
            }
            let ll = inc.propose(&prop, &changed);
            let exact = lik.loglike(&prop);
            prop_assert!(close(ll, exact), "step {}: proposal {} vs fresh {}", it, ll, exact);
            accept_or_reject(&mut inc, &mut current, prop, &mut rng);
            let now = lik.loglike(&current);
            prop_assert!(close(inc.loglike(), now), "step {}: state {} vs fresh {}", it, inc.loglike(), now);
        }
    }
}
