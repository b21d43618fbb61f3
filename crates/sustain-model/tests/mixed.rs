//! The mixed-type model against the families it combines: with only z-scored
//! biomarkers it is the z-score `Likelihood`, with only ordinal or only event
//! biomarkers the `PrefixModel` of that family; with all three, its events are
//! numbered score-major over the combined matrix, its stage values are each
//! part's, and bad inputs are refused naming row and column.

use ndarray::Array2;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use sustain_core::generic;
use sustain_model::*;
use sustain_testkit::conformance::small_mixed_model;

/// Every stage log-likelihood with the subject's offset added back.
fn absolute_stages<M: StageModel>(model: &M, s: &Sequence) -> Vec<f64> {
    let ns = model.order().n_stages();
    let mut out = vec![0.0; model.n_subjects() * ns];
    model.stage_loglikes(s, &mut out);
    let offsets = model.subject_offsets();
    for (m, row) in out.chunks_exact_mut(ns).enumerate() {
        let c = offsets.get(m).copied().unwrap_or(0.0);
        row.iter_mut().for_each(|v| *v += c);
    }
    out
}

fn assert_close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1.0),
            "value {i}: {g} vs {w}"
        );
    }
}

fn random_z(n: usize, b: usize, missing: f64, rng: &mut Pcg64) -> Array2<f64> {
    let mut z = Array2::from_shape_fn((n, b), |_| {
        if rng.gen_bool(missing) {
            f64::NAN
        } else {
            rng.gen_range(-2.0..5.0)
        }
    });
    // Every subject keeps one value (the z-score Dataset requires it).
    for m in 0..n {
        z[[m, 0]] = rng.gen_range(-2.0..5.0);
    }
    z
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// z-scored biomarkers only: the z-score model's stage log-likelihoods
    /// (marginalised missing values), constants included.
    #[test]
    fn zscore_only_is_the_zscore_model(seed in 0u64..10_000, b in 1usize..5, levels in 1usize..4) {
        let mut rng = Pcg64::seed_from_u64(seed);
        let n = 37;
        let z = random_z(n, b, 0.1, &mut rng);
        let z_vals: Vec<Vec<f64>> = (0..b)
            .map(|_| (1..=levels).map(|j| j as f64 + rng.gen_range(0.0..0.5)).collect())
            .collect();
        let z_max: Vec<f64> = (0..b).map(|_| levels as f64 + rng.gen_range(1.0..3.0)).collect();
        let mixed = MixedModel::new(
            Some(ZscorePart { data: z.view(), z_vals: &z_vals, z_max: &z_max }),
            None,
            None,
        ).unwrap();
        let events = EventSet::new(&z_vals, &z_max).unwrap();
        let lik = Likelihood::new(events.clone(), &Dataset::new(z).unwrap(), MissingConvention::Marginalise).unwrap();
        prop_assert_eq!(mixed.order(), StageModel::order(&lik));
        for _ in 0..3 {
            let s = Sequence::random(&events, &mut rng);
            assert_close(&absolute_stages(&mixed, &s), &absolute_stages(&lik, &s), 1e-12);
        }
    }

    /// Ordinal biomarkers only: the ordinal PrefixModel, to the bit.
    #[test]
    fn ordinal_only_is_the_ordinal_model(seed in 0u64..10_000, b in 1usize..5) {
        let mut rng = Pcg64::seed_from_u64(seed);
        let n = 29;
        let scores = Array2::from_shape_fn((n, b), |_| {
            if rng.gen_bool(0.05) { f64::NAN } else { f64::from(rng.gen_range(0u8..4)) }
        });
        let score_vals: Vec<Vec<f64>> = (0..b)
            .map(|i| if i % 2 == 0 { vec![1.0, 2.0, 3.0] } else { vec![1.0, 2.0] })
            .collect();
        let (nl, levels) = score_probabilities(&score_vals, scores.view(), 0.8).unwrap();
        let views: Vec<_> = levels.iter().map(|t| t.view()).collect();
        let want = ordinal(&score_vals, nl.view(), &views).unwrap();
        let got = MixedModel::new(
            None,
            Some(OrdinalPart { score_vals: &score_vals, p_normal: nl.view(), p_score: &views }),
            None,
        ).unwrap();
        prop_assert_eq!(got.order().n_events(), want.order().n_events());
        prop_assert_eq!(got.subject_offsets(), want.subject_offsets());
        for _ in 0..3 {
            let s = Sequence::random(want.order(), &mut rng);
            prop_assert_eq!(absolute_stages(&got, &s), absolute_stages(&want, &s));
        }
    }

    /// Event biomarkers only: the event-based PrefixModel, to the bit.
    #[test]
    fn event_only_is_the_event_based_model(seed in 0u64..10_000, b in 1usize..6) {
        let mut rng = Pcg64::seed_from_u64(seed);
        let n = 31;
        let yes = Array2::from_shape_fn((n, b), |_| rng.gen_range(1e-4..2.0));
        let no = Array2::from_shape_fn((n, b), |_| rng.gen_range(1e-4..2.0));
        let want = event_based(yes.view(), no.view()).unwrap();
        let got = MixedModel::new(
            None,
            None,
            Some(EventPart { p_event: yes.view(), p_no_event: no.view() }),
        ).unwrap();
        prop_assert_eq!(got.subject_offsets(), want.subject_offsets());
        for _ in 0..3 {
            let s = Sequence::random(want.order(), &mut rng);
            prop_assert_eq!(absolute_stages(&got, &s), absolute_stages(&want, &s));
        }
    }
}

/// z-score biomarkers first, then ordinal, then event; events walk the columns of
/// the combined matrix, then the biomarkers.
#[test]
fn events_are_numbered_score_major_over_all_biomarkers() {
    let model = small_mixed_model(5, 1);
    let order = model.order();
    // Column 0: z0, z1, z2, o3, o4, e5, e6; column 1: z0, z1, z2, o3, o4;
    // column 2: z1, o3, o4.
    let want = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 1, 3, 4];
    let got: Vec<usize> = (0..order.n_events())
        .map(|e| order.biomarker_of(e))
        .collect();
    assert_eq!(got, want);
    assert_eq!(order.label(0), "z = 1");
    assert_eq!(order.label(3), "score 1");
    assert_eq!(order.label(5), "event");
    assert_eq!(model.event_values()[14], 3.0);
}

/// All three parts: each subject's stage values are the z-score model's ramps on
/// the mixed sequence plus the discrete factors (computed here from the
/// definition, stage by stage).
#[test]
fn mixed_stages_follow_the_definition() {
    let z = ndarray::array![[0.5, f64::NAN], [2.5, 1.0]];
    let z_vals = vec![vec![1.0, 2.0], vec![1.5]];
    let z_max = [3.0, 4.0];
    let score_vals = vec![vec![1.0, 2.0]];
    let nl = ndarray::array![[0.7], [0.1]];
    let s1 = ndarray::array![[0.2], [0.3]];
    let s2 = ndarray::array![[0.1], [0.6]];
    let yes = ndarray::array![[0.3], [0.9]];
    let no = ndarray::array![[0.7], [0.1]];
    let model = MixedModel::new(
        Some(ZscorePart {
            data: z.view(),
            z_vals: &z_vals,
            z_max: &z_max,
        }),
        Some(OrdinalPart {
            score_vals: &score_vals,
            p_normal: nl.view(),
            p_score: &[s1.view(), s2.view()],
        }),
        Some(EventPart {
            p_event: yes.view(),
            p_no_event: no.view(),
        }),
    )
    .unwrap();
    // Events: 0 (z0, 1), 1 (z1, 1.5), 2 (o2, 1), 3 (e3), 4 (z0, 2), 5 (o2, 2).
    let order = model.order().clone();
    assert_eq!(order.n_events(), 6);
    let s = Sequence::new(&order, &[2, 0, 3, 5, 1, 4]).unwrap();
    let got = absolute_stages(&model, &s);
    let ns = 7;
    // The ramp of z0: knots (0,0), (pos(0)+1 = 2, 1), (pos(4)+1 = 6, 2), (7, 3);
    // of z1: (0,0), (pos(1)+1 = 5, 1.5), (7, 4).
    let curve = |knots: &[(f64, f64)], t: f64| {
        let i = knots
            .iter()
            .rposition(|k| k.0 <= t)
            .unwrap()
            .min(knots.len() - 2);
        let ((t0, v0), (t1, v1)) = (knots[i], knots[i + 1]);
        v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    };
    let k0 = [(0.0, 0.0), (2.0, 1.0), (6.0, 2.0), (7.0, 3.0)];
    let k1 = [(0.0, 0.0), (5.0, 1.5), (7.0, 4.0)];
    let mu = |knots: &[(f64, f64)], k: usize| {
        0.5 * (curve(knots, k as f64) + curve(knots, k as f64 + 1.0))
    };
    let norm =
        |x: f64, m: f64| (-0.5 * (x - m) * (x - m)).exp() / (2.0 * std::f64::consts::PI).sqrt();
    for m in 0..2 {
        for k in 0..ns {
            let happened = |e: usize| s.position(e) < k;
            let mut p = norm(z[[m, 0]], mu(&k0, k));
            if !z[[m, 1]].is_nan() {
                p *= norm(z[[m, 1]], mu(&k1, k));
            }
            p *= if happened(5) {
                s2[[m, 0]]
            } else if happened(2) {
                s1[[m, 0]]
            } else {
                nl[[m, 0]]
            };
            p *= if happened(3) { yes[[m, 0]] } else { no[[m, 0]] };
            let want = (p / ns as f64).ln();
            let g = got[m * ns + k];
            assert!(
                (g - want).abs() < 1e-12 * want.abs().max(1.0),
                "subject {m} stage {k}: {g} vs {want}"
            );
        }
    }
}

/// The faster per-subject path, subsets and the generic evaluations agree.
#[test]
fn subject_loglikes_and_subsets_agree() {
    let model = small_mixed_model(43, 3);
    let mut rng = Pcg64::seed_from_u64(4);
    let s = Sequence::random(model.order(), &mut rng);
    let mut fast = vec![0.0; 43];
    model.subject_loglikes(&s, &mut fast);
    let mut slow = vec![0.0; 43];
    generic::subject_loglikes_from_stages(&model, &s, &mut slow);
    assert_close(&fast, &slow, 1e-13);
    let picked = [7, 3, 39, 3];
    let sub = model.subset(&picked).unwrap();
    let ns = model.order().n_stages();
    let all = absolute_stages(&model, &s);
    let part = absolute_stages(&sub, &s);
    for (i, &m) in picked.iter().enumerate() {
        assert_eq!(part[i * ns..(i + 1) * ns], all[m * ns..(m + 1) * ns]);
    }
    assert!(model.subset(&[43]).is_err());
    assert!(model.subset(&[]).is_err());
}

/// Errors name the row and the column in the mixed biomarker order.
#[test]
fn bad_inputs_name_row_and_column() {
    let z = ndarray::array![[0.5, 1.0], [f64::INFINITY, 1.0]];
    let z_vals = vec![vec![1.0], vec![1.0]];
    let z_max = [3.0, 3.0];
    let zp = ZscorePart {
        data: z.view(),
        z_vals: &z_vals,
        z_max: &z_max,
    };
    let err = MixedModel::new(Some(zp), None, None).unwrap_err();
    assert_eq!(err, ModelError::InfiniteValue { row: 1, column: 0 });

    let good = ndarray::array![[0.5, 1.0], [0.0, 1.0]];
    let zp = ZscorePart {
        data: good.view(),
        ..zp
    };
    let yes = ndarray::array![[0.5], [-0.1]];
    let no = ndarray::array![[0.5], [0.5]];
    let ev = EventPart {
        p_event: yes.view(),
        p_no_event: no.view(),
    };
    match MixedModel::new(Some(zp), None, Some(ev)).unwrap_err() {
        ModelError::BadProbability { row, column, .. } => assert_eq!((row, column), (1, 2)),
        other => panic!("{other}"),
    }
    // Parts that disagree on the subjects, and no parts at all.
    let short = ndarray::array![[0.5], [0.5], [0.5]];
    let ev = EventPart {
        p_event: short.view(),
        p_no_event: short.view(),
    };
    assert!(matches!(
        MixedModel::new(Some(zp), None, Some(ev)),
        Err(ModelError::Shape(_))
    ));
    assert!(MixedModel::new(None, None, None).is_err());
}
