//! The event-based and ordinal models' fast paths (subject-blocked kernels, the
//! incremental chain state) against the generic evaluations of `sustain_core`,
//! which use nothing but the stage log-likelihoods.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_core::generic;
use sustain_model::*;

/// An event-based model whose log-likelihood ratios have scale `scale` (large
/// scales drive the kernels onto their log-domain and rebuild paths); a few
/// probabilities are zero (floored) or missing in both inputs.
fn mixture_model(n: usize, b: usize, scale: f64, seed: u64) -> PrefixModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut yes = Array2::zeros((n, b));
    let mut no = Array2::zeros((n, b));
    for m in 0..n {
        for j in 0..b {
            let r: f64 = rng.gen();
            let (y, x) = if r < 0.01 {
                (0.0, 0.5)
            } else if r < 0.02 {
                (f64::NAN, f64::NAN)
            } else {
                let ly: f64 = rng.gen_range(-scale..scale);
                let lx: f64 = rng.gen_range(-scale..scale);
                (ly.exp(), lx.exp())
            };
            yes[[m, j]] = y;
            no[[m, j]] = x;
        }
    }
    event_based(yes.view(), no.view()).unwrap()
}

fn ordinal_model(n: usize, b: usize, seed: u64) -> PrefixModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let score_vals = vec![vec![1.0, 2.0, 3.0]; b];
    let scores = Array2::from_shape_fn((n, b), |_| rng.gen_range(0..4) as f64);
    let (p_normal, p_score) = score_probabilities(&score_vals, scores.view(), 0.9).unwrap();
    let views: Vec<_> = p_score.iter().map(|a| a.view()).collect();
    ordinal(&score_vals, p_normal.view(), &views).unwrap()
}

fn random_mixture(model: &PrefixModel, k: usize, rng: &mut Pcg64) -> Mixture {
    let seqs = (0..k)
        .map(|_| Sequence::random(model.order(), rng))
        .collect();
    let mut f: Vec<f64> = (0..k).map(|_| rng.gen_range(0.05..1.0)).collect();
    let t: f64 = f.iter().sum();
    f.iter_mut().for_each(|v| *v /= t);
    Mixture::new(seqs, f).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()) + 1e-12,
        "{what}: {a} vs {b}"
    );
}

fn models() -> Vec<(&'static str, PrefixModel)> {
    vec![
        ("mixture", mixture_model(203, 17, 3.0, 1)),
        ("mixture wide", mixture_model(77, 12, 90.0, 2)),
        ("mixture extreme", mixture_model(40, 9, 700.0, 3)),
        ("ordinal", ordinal_model(131, 6, 4)),
    ]
}

#[test]
fn full_evaluations_match_the_generic_ones() {
    let mut rng = Pcg64::seed_from_u64(9);
    for (name, model) in models() {
        for k in 1..=3 {
            let mix = random_mixture(&model, k, &mut rng);
            for seq in mix.sequences() {
                let n = model.n_subjects();
                let (mut fast, mut slow) = (vec![0.0; n], vec![0.0; n]);
                model.subject_loglikes(seq, &mut fast);
                generic::subject_loglikes_from_stages(&model, seq, &mut slow);
                for (a, b) in fast.iter().zip(&slow) {
                    close(*a, *b, name);
                }
            }
            let fast = model.log_p_subjects(&mix);
            let slow = generic::log_p_subjects(&model, &mix);
            for (a, b) in fast.iter().zip(&slow) {
                close(*a, *b, name);
            }
            close(model.loglike(&mix), generic::loglike(&model, &mix), name);
        }
    }
}

/// A proposal as the sampler makes them: in each changed subtype one event moved
/// (or two swapped), fractions perturbed.
fn propose(model: &PrefixModel, cur: &Mixture, rng: &mut Pcg64) -> (Mixture, Vec<bool>) {
    let mut next = cur.clone();
    let k = cur.n_subtypes();
    let changed: Vec<bool> = (0..k).map(|_| rng.gen_bool(0.7)).collect();
    let n = model.order().n_events();
    for (s, seq) in next.sequences_mut().iter_mut().enumerate() {
        if !changed[s] {
            continue;
        }
        let e = rng.gen_range(0..n);
        let allowed = seq.allowed_positions(model.order(), e);
        let to = rng.gen_range(allowed);
        if rng.gen_bool(0.5) {
            seq.move_event(model.order(), e, to).unwrap();
        } else {
            // A swap, where the order allows it.
            let mut order = seq.order();
            let from = seq.position(e);
            order.swap(from, to);
            if let Ok(swapped) = Sequence::new(model.order(), &order) {
                *seq = swapped;
            }
        }
    }
    let mut f: Vec<f64> = cur
        .fractions()
        .iter()
        .map(|v| (v + rng.gen_range(-0.05..0.05)).abs() + 1e-3)
        .collect();
    let t: f64 = f.iter().sum();
    f.iter_mut().for_each(|v| *v /= t);
    next.set_fractions(f).unwrap();
    (next, changed)
}

/// Accepts (or rejects) the pending proposal of both states.
fn settle(fast: &mut dyn ShardState, slow: &mut dyn ShardState, accept: bool) {
    if accept {
        fast.accept_shard(false);
        slow.accept_shard(false);
    } else {
        fast.reject();
        slow.reject();
    }
}

#[test]
fn chain_state_matches_the_generic_cached_shard() {
    let mut rng = Pcg64::seed_from_u64(21);
    for (name, model) in models() {
        let model = Arc::new(model);
        for k in [1, 3] {
            let mut cur = random_mixture(&model, k, &mut rng);
            let mut fast = PrefixModel::shard_state(Arc::clone(&model), &cur);
            let mut slow =
                generic::CachedShard::new(Arc::clone(&model), &cur, PrefixModel::SHARD_BLOCK);
            assert_eq!(fast.partials().len(), model.n_subjects().div_ceil(64));
            for _ in 0..300 {
                let (next, changed) = propose(&model, &cur, &mut rng);
                assert!(fast.propose_shard(&next, &changed));
                assert!(slow.propose_shard(&next, &changed));
                for (a, b) in fast.partials().iter().zip(slow.partials()) {
                    close(*a, *b, name);
                }
                let total = neumaier_sum(fast.partials());
                close(total, generic::loglike(&*model, &next), name);
                let accept = rng.gen_bool(0.4);
                settle(&mut *fast, &mut slow, accept);
                if accept {
                    cur = next;
                } else {
                    for (a, b) in fast.partials().iter().zip(slow.partials()) {
                        close(*a, *b, name);
                    }
                }
            }
            // After the chain, a fresh state agrees with the incremental one.
            let fresh = PrefixModel::shard_state(Arc::clone(&model), &cur);
            let (_, _) = (fast.propose_shard(&cur, &vec![false; k]), ());
            for (a, b) in fast.partials().iter().zip(fresh.partials()) {
                close(*a, *b, name);
            }
        }
    }
}

/// A model where event 0 changes nothing (every position of it ties).
fn tied_model() -> PrefixModel {
    let mut rng = Pcg64::seed_from_u64(5);
    let (n, b) = (90, 8);
    let yes = Array2::from_shape_fn((n, b), |_| rng.gen_range(0.01..1.0));
    let mut no = Array2::from_shape_fn((n, b), |_| rng.gen_range(0.01..1.0));
    for m in 0..n {
        no[[m, 0]] = yes[[m, 0]];
    }
    event_based(yes.view(), no.view()).unwrap()
}

#[test]
fn em_choice_matches_exact_scoring() {
    let mut rng = Pcg64::seed_from_u64(33);
    let mut all = models();
    all.push(("tied", tied_model()));
    let mut screened_ties = 0;
    for (name, model) in all {
        let model = Arc::new(model);
        let mut fast = PrefixModel::batch_evaluator(&model);
        let mut exact = generic::Batch::new(Arc::clone(&model));
        for k in [1, 3] {
            let mix = random_mixture(&model, k, &mut rng);
            for s in 0..k {
                for e in 0..model.order().n_events() {
                    let seq = &mix.sequences()[s];
                    let allowed = seq.allowed_positions(model.order(), e);
                    let mut candidates: Vec<Sequence> = allowed
                        .map(|to| {
                            let mut c = seq.clone();
                            c.move_unchecked(e, to);
                            c
                        })
                        .collect();
                    if rng.gen_bool(0.2) {
                        candidates.reverse();
                    }
                    if candidates.len() < 2 {
                        continue;
                    }
                    let scores = exact
                        .loglike_subtype_candidates(SubtypeOf::new(&mix, s), &candidates)
                        .unwrap();
                    let want = first_max(&scores);
                    let got = fast
                        .best_subtype_candidate(SubtypeOf::new(&mix, s), &candidates)
                        .unwrap();
                    assert_eq!(got, want, "{name}: subtype {s}, event {e}");
                    let ties = scores.iter().filter(|&&v| v == scores[want]).count();
                    if ties > 1 {
                        screened_ties += 1;
                    }
                    // Its exact scores are the generic ones.
                    let own = fast
                        .loglike_subtype_candidates(SubtypeOf::new(&mix, s), &candidates)
                        .unwrap();
                    assert_eq!(own, scores);
                }
            }
        }
    }
    eprintln!("{screened_ties} candidate lists with exact ties");
}

/// Fractions so small that `sum_s f_s T_s` can fall below what the linear paths
/// take (the subtype that reaches a subject's largest stage weighs 1e-250): the
/// log-likelihood and the chain state take their log-domain fallbacks and still
/// agree with the generic evaluations.
#[test]
fn negligible_fractions_match_the_generic_evaluations() {
    let mut rng = Pcg64::seed_from_u64(33);
    for (name, model) in models() {
        let model = Arc::new(model);
        let tiny = |mix: &mut Mixture| mix.set_fractions(vec![1.0, 1e-250, 1e-250]).unwrap();
        let mut cur = random_mixture(&model, 3, &mut rng);
        tiny(&mut cur);
        close(model.loglike(&cur), generic::loglike(&*model, &cur), name);
        let mut fast = PrefixModel::shard_state(Arc::clone(&model), &cur);
        let mut slow =
            generic::CachedShard::new(Arc::clone(&model), &cur, PrefixModel::SHARD_BLOCK);
        for _ in 0..60 {
            let (mut next, changed) = propose(&model, &cur, &mut rng);
            tiny(&mut next);
            assert!(fast.propose_shard(&next, &changed));
            assert!(slow.propose_shard(&next, &changed));
            for (a, b) in fast.partials().iter().zip(slow.partials()) {
                close(*a, *b, name);
            }
            close(model.loglike(&next), generic::loglike(&*model, &next), name);
            let accept = rng.gen_bool(0.5);
            settle(&mut *fast, &mut slow, accept);
            if accept {
                cur = next;
            }
        }
    }
}
