//! The AVX-512 kernels give the same bits as the AVX2 kernels: full
//! log-likelihoods, per-subject values, staging posteriors, and every proposal of
//! an incremental state's random walk (extreme values included, so the rebuilt,
//! additive and fallback paths run too). A run's results then do not depend on
//! whether the machine has AVX-512.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_model::kernels::Isa;
use sustain_model::simulate::Cohort;
use sustain_model::*;
use sustain_testkit::{random_fractions, random_moves, walk_cohort as case};

/// A walk cohort (`sustain_testkit::walk_cohort`, here `case`).
type Case = Cohort;

/// The two likelihoods, or `None` (with a notice) where the CPU has no AVX-512.
fn pair(c: &Case, conv: MissingConvention) -> Option<(Likelihood, Likelihood)> {
    let lik = Likelihood::new(c.events.clone(), &c.data, conv).unwrap();
    let avx512 = lik.clone().with_kernels(Isa::Avx512);
    let avx2 = lik.with_kernels(Isa::Avx2);
    match (avx512, avx2) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            eprintln!("skipped: this CPU has no AVX-512 (the AVX-512 kernels are not compared)");
            None
        }
    }
}

fn same_bits(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            x.to_bits(),
            y.to_bits(),
            "{what} [{i}]: {x} (AVX-512) vs {y} (AVX2)"
        );
    }
}

fn full_evaluations_agree(c: &Case) {
    let mut rng = Pcg64::seed_from_u64(5);
    for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
        let Some((a, b)) = pair(c, conv) else { return };
        let n = c.truth.n_subtypes();
        let mut mixtures = vec![c.truth.clone()];
        for _ in 0..3 {
            let seqs = (0..n)
                .map(|_| Sequence::random(&c.events, &mut rng))
                .collect();
            let f = random_fractions(n, &mut rng);
            mixtures.push(Mixture::new(seqs, f).unwrap());
        }
        for m in &mixtures {
            same_bits(&a.log_p_subjects(m), &b.log_p_subjects(m), "log p(x_m)");
            same_bits(&[a.loglike(m)], &[b.loglike(m)], "loglike");
            let (pa, pb) = (a.posteriors(m), b.posteriors(m));
            same_bits(
                pa.subtype.as_slice().unwrap(),
                pb.subtype.as_slice().unwrap(),
                "subtype posterior",
            );
            same_bits(
                pa.stage.as_slice().unwrap(),
                pb.stage.as_slice().unwrap(),
                "stage posterior",
            );
        }
        let (sa, sb) = (a.posterior_sums(&mixtures), b.posterior_sums(&mixtures));
        same_bits(
            sa.as_slice().unwrap(),
            sb.as_slice().unwrap(),
            "posterior sums",
        );
    }
}

fn walks_agree(c: &Case, steps: usize) {
    for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
        let Some((a, b)) = pair(c, conv) else { return };
        let (a, b) = (Arc::new(a), Arc::new(b));
        let n = c.truth.n_subtypes();
        let mut rng = Pcg64::seed_from_u64(11);
        let start: Vec<Sequence> = (0..n)
            .map(|_| Sequence::random(&c.events, &mut rng))
            .collect();
        let mut current = Mixture::new(start, vec![1.0 / n as f64; n]).unwrap();
        let mut ia = IncrementalLikelihood::new(Arc::clone(&a), &current);
        let mut ib = IncrementalLikelihood::new(Arc::clone(&b), &current);
        same_bits(&[ia.loglike()], &[ib.loglike()], "start");
        for it in 0..steps {
            let mut prop = current.clone();
            let changed = random_moves(&mut prop, &c.events, 0.7, &mut rng);
            let f = random_fractions(n, &mut rng);
            prop.set_fractions(f).unwrap();
            let (la, lb) = (ia.propose(&prop, &changed), ib.propose(&prop, &changed));
            same_bits(&[la], &[lb], &format!("proposal {it}"));
            if rng.gen_bool(0.5) {
                ia.accept();
                ib.accept();
                current = prop;
            } else {
                ia.reject();
                ib.reject();
            }
            same_bits(
                &[ia.loglike()],
                &[ib.loglike()],
                &format!("state after step {it}"),
            );
        }
    }
}

#[test]
fn full_evaluations_agree_across_instruction_sets() {
    full_evaluations_agree(&case(10, &[1.0, 2.0, 3.0], 3, 203, 1, 1.0));
    full_evaluations_agree(&case(1, &[1.0, 2.0], 1, 13, 2, 1.0));
    full_evaluations_agree(&case(15, &[1.0, 2.0, 3.0], 5, 77, 3, 1.0));
    full_evaluations_agree(&case(4, &[1.0, 2.0], 2, 40, 4, 20.0));
}

#[test]
fn incremental_walks_agree_across_instruction_sets() {
    walks_agree(&case(10, &[1.0, 2.0, 3.0], 3, 203, 1, 1.0), 1500);
    walks_agree(&case(6, &[1.0, 2.0], 2, 33, 7, 1.0), 1500);
    walks_agree(&case(40, &[1.0, 2.0, 3.0], 2, 17, 3, 1.0), 500);
    // Extreme values: rebuilt groups, fragile groups' additive path, fallbacks.
    walks_agree(&case(5, &[1.0, 2.0], 2, 30, 9, 12.0), 1500);
    walks_agree(&case(5, &[1.0, 2.0, 3.0], 2, 41, 4, 30.0), 1500);
}

/// The full likelihood's direct path (stage values relative to `sum x^2 / 2`, all
/// subtypes at once) agrees with the maximum-based path (`subtype_lse_into` and
/// `combine_into`) on ordinary data and on data far from every stage, where it
/// falls back to that path; on every kernel the CPU has.
#[test]
fn direct_mixture_matches_maximum_based_path() {
    for (c, label) in [
        (case(10, &[1.0, 2.0, 3.0], 3, 203, 1, 1.0), "ordinary"),
        (case(4, &[1.0, 2.0], 2, 40, 4, 20.0), "outlying"),
        (case(3, &[1.0], 4, 17, 8, 60.0), "far outlying"),
    ] {
        for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Baseline] {
                let Some(lik) = Likelihood::new(c.events.clone(), &c.data, conv)
                    .unwrap()
                    .with_kernels(isa)
                else {
                    continue;
                };
                let m = &c.truth;
                let mp = lik.padded_subjects();
                let mut lse = vec![0.0; mp * m.n_subtypes()];
                let mut scratch = Scratch::default();
                for (s, seq) in m.sequences().iter().enumerate() {
                    lik.subtype_lse_into(seq, &mut scratch, &mut lse[s * mp..(s + 1) * mp]);
                }
                let parts: Vec<&[f64]> = lse.chunks(mp).collect();
                let mut want = vec![0.0; mp];
                lik.combine_into(m.fractions(), &parts, &mut want);
                let got = lik.log_p_subjects(m);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(g.is_finite(), "{label} {conv:?} {isa:?} subject {i}: {g}");
                    assert!(
                        (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                        "{label} {conv:?} {isa:?} subject {i}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
