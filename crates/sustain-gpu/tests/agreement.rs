//! The GPU evaluator against the serial CPU evaluator: equal within 1e-5 relative.
//!
//! Every test needs a GPU adapter (a software one such as Mesa's lavapipe counts); a
//! test skips, printing a NOTICE, only when no adapter at all can be created.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::sync::Arc;
use sustain_gpu::{test_context, GpuContext, GpuEvaluator};
use sustain_model::*;
use sustain_testkit::{self as testkit, cohort, spec};

const REL: f64 = 1e-5;

/// Asserts agreement; returns the relative error.
fn assert_close(gpu: f64, cpu: f64, what: &str) -> f64 {
    let err = (gpu - cpu).abs() / cpu.abs().max(1e-300);
    assert!(
        gpu.is_finite() && err <= REL,
        "{what}: gpu {gpu} vs cpu {cpu} (relative error {err:.3e})"
    );
    err
}

struct Problem {
    events: EventSet,
    data: Dataset,
    convention: MissingConvention,
}

impl Problem {
    /// Simulated data for `events` (a 2-subtype truth), optionally with missing values.
    fn simulated(
        events: EventSet,
        n_subjects: usize,
        missing: f64,
        convention: MissingConvention,
        seed: u64,
    ) -> Self {
        let spec = spec(n_subjects, 0.1, missing);
        let w = cohort(events, &[0.6, 0.4], seed, &spec, seed + 1);
        Self {
            events: w.events,
            data: w.data,
            convention,
        }
    }

    /// [`Problem::simulated`] on the ragged events, missing values marginalised.
    fn ragged(n_subjects: usize, missing: f64, seed: u64) -> Self {
        let marginalise = MissingConvention::Marginalise;
        Self::simulated(ragged_events(), n_subjects, missing, marginalise, seed)
    }

    /// The serial CPU evaluator and the GPU one of this problem.
    fn evaluators(&self, ctx: &Arc<GpuContext>) -> (SerialEvaluator, GpuEvaluator) {
        (self.serial(), self.gpu(ctx))
    }

    fn serial(&self) -> SerialEvaluator {
        SerialEvaluator::new(Arc::new(
            Likelihood::new(self.events.clone(), &self.data, self.convention).unwrap(),
        ))
    }

    fn gpu(&self, ctx: &Arc<GpuContext>) -> GpuEvaluator {
        GpuEvaluator::new(
            Arc::clone(ctx),
            self.events.clone(),
            &self.data,
            self.convention,
        )
        .unwrap()
    }
}

/// Random fractions summing to 1; with `allow_zero`, sometimes one of them is 0.
fn random_fractions(n: usize, rng: &mut Pcg64, allow_zero: bool) -> Vec<f64> {
    let mut f: Vec<f64> = (0..n).map(|_| rng.gen_range(0.02..1.0)).collect();
    if allow_zero && n > 1 && rng.gen_bool(0.2) {
        f[rng.gen_range(0..n)] = 0.0;
    }
    let sum: f64 = f.iter().sum();
    f.iter().map(|v| v / sum).collect()
}

fn random_mixtures(events: &EventSet, n: usize, subtypes: &[usize], seed: u64) -> Vec<Mixture> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let k = subtypes[rng.gen_range(0..subtypes.len())];
            let seqs = (0..k).map(|_| Sequence::random(events, &mut rng)).collect();
            Mixture::new(seqs, random_fractions(k, &mut rng, true)).unwrap()
        })
        .collect()
}

/// loglike_batch and log_p_subjects_batch of `mixtures` on both evaluators.
fn check(p: &Problem, ctx: &Arc<GpuContext>, mixtures: &[Mixture], subjects: bool, what: &str) {
    let (mut cpu, mut gpu) = p.evaluators(ctx);
    let want = cpu.loglike_batch(mixtures).unwrap();
    let got = gpu.loglike_batch(mixtures).unwrap();
    assert_eq!(got.len(), want.len());
    let mut worst = 0.0f64;
    for (i, (g, c)) in got.iter().zip(&want).enumerate() {
        worst = worst.max(assert_close(
            *g,
            *c,
            &format!("{what}: loglike of candidate {i}"),
        ));
    }
    eprintln!(
        "{what}: {} candidates, largest relative error of loglike {worst:.2e}",
        mixtures.len()
    );
    if subjects {
        let want = cpu.log_p_subjects_batch(mixtures).unwrap();
        let got = gpu.log_p_subjects_batch(mixtures).unwrap();
        assert_eq!(got.len(), want.len());
        let mut worst = 0.0f64;
        for (i, (g, c)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), c.len());
            for (m, (a, b)) in g.iter().zip(c).enumerate() {
                worst = worst.max(assert_close(
                    *a,
                    *b,
                    &format!("{what}: log p of subject {m}, candidate {i}"),
                ));
            }
        }
        eprintln!("{what}: largest relative error of per-subject log p {worst:.2e}");
    }
}

/// Ragged thresholds, different z_max per biomarker.
fn ragged_events() -> EventSet {
    EventSet::new(
        &[
            vec![1.0, 2.0, 3.0],
            vec![1.0, 2.0],
            vec![1.5],
            vec![1.0, 2.0, 3.0],
            vec![0.5, 2.5, 0.0],
            vec![2.0],
        ],
        &[5.0, 4.0, 3.0, 6.0, 4.5, 3.5],
    )
    .unwrap()
}

#[test]
fn random_batches_complete_data() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(300, 0.0, 11);
    let mixtures = random_mixtures(&p.events, 37, &[1, 2, 3, 4, 5], 12);
    check(&p, &ctx, &mixtures, true, "complete");
}

#[test]
fn random_batches_missing_values_both_conventions() {
    let Some(ctx) = test_context() else { return };
    for (i, convention) in [MissingConvention::Marginalise, MissingConvention::Reference]
        .into_iter()
        .enumerate()
    {
        let p = Problem::simulated(ragged_events(), 257, 0.2, convention, 21 + i as u64);
        assert!(p.data.n_missing() > 0);
        let mixtures = random_mixtures(&p.events, 29, &[1, 2, 3, 4, 5], 22);
        check(
            &p,
            &ctx,
            &mixtures,
            true,
            &format!("missing, {convention:?}"),
        );
    }
}

#[test]
fn one_subject() {
    let Some(ctx) = test_context() else { return };
    for missing in [0.0, 0.5] {
        let p = Problem::simulated(
            ragged_events(),
            1,
            missing,
            MissingConvention::Reference,
            31,
        );
        let mixtures = random_mixtures(&p.events, 9, &[1, 2, 3, 4, 5], 32);
        check(&p, &ctx, &mixtures, true, "one subject");
    }
}

#[test]
fn one_biomarker() {
    let Some(ctx) = test_context() else { return };
    for thresholds in [vec![1.0], vec![1.0, 2.0, 3.0]] {
        let events = EventSet::uniform(1, &thresholds, 5.0).unwrap();
        let p = Problem::simulated(events, 100, 0.0, MissingConvention::Marginalise, 41);
        let mixtures = random_mixtures(&p.events, 11, &[1, 2, 3], 42);
        check(&p, &ctx, &mixtures, true, "one biomarker");
    }
}

#[test]
fn two_hundred_biomarkers() {
    let Some(ctx) = test_context() else { return };
    // 200 biomarkers, 1 or 2 thresholds each: N = 300 events, 301 stages, four
    // biomarker tiles and 19 stage tiles per subtype.
    let z_vals: Vec<Vec<f64>> = (0..200)
        .map(|b| {
            if b % 2 == 0 {
                vec![1.0, 2.0]
            } else {
                vec![1.5]
            }
        })
        .collect();
    let z_max: Vec<f64> = (0..200).map(|b| 3.0 + (b % 3) as f64).collect();
    let events = EventSet::new(&z_vals, &z_max).unwrap();
    let p = Problem::simulated(events, 70, 0.1, MissingConvention::Reference, 51);
    let mixtures = random_mixtures(&p.events, 5, &[1, 3, 5], 52);
    check(&p, &ctx, &mixtures, true, "200 biomarkers");
    // Staging with 8 subtypes over the 301 stages.
    let mixtures = random_mixtures(&p.events, 3, &[8], 53);
    let want = p.serial().posterior_sums(&mixtures).unwrap();
    let got = p.gpu(&ctx).posterior_sums(&mixtures).unwrap();
    let gap = posterior_gap(&got, &want, mixtures.len());
    eprintln!("200 biomarkers, 8 subtypes: largest posterior gap per sample {gap:.2e}");
    assert!(gap <= 1e-5, "gap {gap:.3e}");
}

#[test]
fn batch_of_one_and_of_4096() {
    let Some(ctx) = test_context() else { return };
    let events = EventSet::uniform(5, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let p = Problem::simulated(events, 130, 0.1, MissingConvention::Marginalise, 61);
    let one = random_mixtures(&p.events, 1, &[3], 62);
    check(&p, &ctx, &one, true, "batch of 1");
    let many = random_mixtures(&p.events, 4096, &[1, 2, 3, 4, 5], 63);
    check(&p, &ctx, &many, false, "batch of 4096");
}

#[test]
fn repeated_calls_and_buffer_growth() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(200, 0.1, 71);
    let mut cpu = p.serial();
    let lik = Likelihood::new(p.events.clone(), &p.data, p.convention).unwrap();
    let mut gpu = GpuEvaluator::with_capacity(Arc::clone(&ctx), &lik, &p.data, 8, 2).unwrap();
    for (round, (n, k)) in [(8, 2), (8, 2), (1500, 5), (3, 1), (8, 2)]
        .into_iter()
        .enumerate()
    {
        let mixtures = random_mixtures(&p.events, n, &[k], 72 + round as u64);
        let want = cpu.loglike_batch(&mixtures).unwrap();
        let got = gpu.loglike_batch(&mixtures).unwrap();
        for (g, c) in got.iter().zip(&want) {
            assert_close(*g, *c, &format!("round {round}"));
        }
    }
    assert!(gpu.loglike_batch(&[]).unwrap().is_empty());
}

#[test]
fn batches_split_over_several_dispatches() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::simulated(ragged_events(), 300, 0.1, MissingConvention::Reference, 75);
    let (mut cpu, mut gpu) = p.evaluators(&ctx);
    gpu.limit_dispatch(7);
    let mixtures = random_mixtures(&p.events, 30, &[1, 2, 3], 76);
    let want = cpu.loglike_batch(&mixtures).unwrap();
    let got = gpu.loglike_batch(&mixtures).unwrap();
    assert_eq!(got.len(), 30);
    for (g, c) in got.iter().zip(&want) {
        assert_close(*g, *c, "split loglike");
    }
    let want = cpu.log_p_subjects_batch(&mixtures).unwrap();
    let got = gpu.log_p_subjects_batch(&mixtures).unwrap();
    assert_eq!(got.len(), 30);
    for (g, c) in got.iter().zip(&want) {
        for (a, b) in g.iter().zip(c) {
            assert_close(*a, *b, "split log p");
        }
    }
    let base = mixtures[2].clone();
    let mut rng = Pcg64::seed_from_u64(77);
    let candidates: Vec<Sequence> = (0..20)
        .map(|_| Sequence::random(&p.events, &mut rng))
        .collect();
    let slot = SubtypeOf::new(&base, 0);
    let what = "split subtype candidates";
    candidates_agree(&mut cpu, &mut gpu, slot, &candidates, what);
}

/// The GPU scores each candidate for subtype `slot` as the CPU does.
fn candidates_agree(
    cpu: &mut SerialEvaluator,
    gpu: &mut GpuEvaluator,
    slot: SubtypeOf<'_>,
    candidates: &[Sequence],
    what: &str,
) {
    let want = cpu.loglike_subtype_candidates(slot, candidates).unwrap();
    let got = gpu.loglike_subtype_candidates(slot, candidates).unwrap();
    assert_eq!(got.len(), candidates.len());
    for (g, c) in got.iter().zip(&want) {
        assert_close(*g, *c, what);
    }
}

#[test]
fn subtype_candidates_match_serial() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::simulated(ragged_events(), 150, 0.15, MissingConvention::Reference, 81);
    let (mut cpu, mut gpu) = p.evaluators(&ctx);
    let mut rng = Pcg64::seed_from_u64(82);
    for n_sub in 1..=4 {
        for t in 0..n_sub {
            let seqs = (0..n_sub)
                .map(|_| Sequence::random(&p.events, &mut rng))
                .collect();
            let base = Mixture::new(seqs, random_fractions(n_sub, &mut rng, false)).unwrap();
            let candidates: Vec<Sequence> = (0..13)
                .map(|_| Sequence::random(&p.events, &mut rng))
                .collect();
            let what = format!("{n_sub} subtypes, subtype {t}");
            candidates_agree(
                &mut cpu,
                &mut gpu,
                SubtypeOf::new(&base, t),
                &candidates,
                &what,
            );
        }
    }
}

#[test]
fn rejects_sequences_of_another_model() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(20, 0.0, 91);
    let mut gpu = p.gpu(&ctx);
    let other = EventSet::uniform(2, &[1.0], 3.0).unwrap();
    let mut rng = Pcg64::seed_from_u64(92);
    let bad = Mixture::single(Sequence::random(&other, &mut rng));
    assert!(gpu.loglike_batch(&[bad]).is_err());
}

/// W1 (`sustain_testkit::w1`): 1000 subjects, 10 biomarkers x thresholds 1, 2, 3
/// (N = 30), 3 subtypes, 10% missing.
#[test]
fn workload_w1() {
    let Some(ctx) = test_context() else { return };
    let sustain_model::simulate::Cohort {
        events,
        truth,
        data,
        ..
    } = sustain_testkit::w1();
    let p = Problem {
        events,
        data,
        convention: MissingConvention::Marginalise,
    };
    let mut mixtures = random_mixtures(&p.events, 63, &[3], 103);
    mixtures.push(truth);
    check(&p, &ctx, &mixtures, true, "W1");
}

#[test]
fn sim42_data() {
    let Some(testkit::Sim42 { events, data, .. }) = testkit::sim42("sim42 test") else {
        return;
    };
    let Some(ctx) = test_context() else { return };
    assert_eq!(data.n_subjects(), 500);
    assert!(data.n_missing() > 0);
    for convention in [MissingConvention::Marginalise, MissingConvention::Reference] {
        let p = Problem {
            events: events.clone(),
            data: data.clone(),
            convention,
        };
        let mixtures = random_mixtures(&p.events, 40, &[1, 2, 3], 111);
        check(&p, &ctx, &mixtures, true, &format!("sim42 {convention:?}"));
    }
}

/// Totals over 50,000 subjects keep their precision (tile sums on the device, f64 on
/// the host).
#[test]
fn fifty_thousand_subjects() {
    let Some(ctx) = test_context() else { return };
    let events = EventSet::uniform(4, &[1.0, 2.0], 5.0).unwrap();
    let p = Problem::simulated(events, 50_000, 0.1, MissingConvention::Reference, 121);
    let mixtures = random_mixtures(&p.events, 6, &[1, 2, 3], 122);
    check(&p, &ctx, &mixtures, true, "50,000 subjects");
}

/// Largest absolute difference between two posterior-sum arrays, per summed mixture.
fn posterior_gap(gpu: &ndarray::Array3<f64>, cpu: &ndarray::Array3<f64>, n: usize) -> f64 {
    assert_eq!(gpu.shape(), cpu.shape());
    gpu.iter()
        .zip(cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / n.max(1) as f64
}

/// Staging posteriors (summed over a batch of samples) equal the CPU's to 1e-5 per
/// sample, for 1 to 5 subtypes, both conventions, subjects over two tiles.
#[test]
fn posterior_sums_match_serial() {
    let Some(ctx) = test_context() else { return };
    for (convention, seed) in [
        (MissingConvention::Marginalise, 91),
        (MissingConvention::Reference, 92),
    ] {
        let p = Problem::simulated(ragged_events(), 300, 0.15, convention, seed);
        let (mut cpu, mut gpu) = p.evaluators(&ctx);
        for k in 1..=5 {
            let mixtures = random_mixtures(&p.events, 37, &[k], seed + k as u64);
            let want = cpu.posterior_sums(&mixtures).unwrap();
            let got = gpu.posterior_sums(&mixtures).unwrap();
            assert_eq!(got.shape(), &[300, p.events.n_stages(), k]);
            let gap = posterior_gap(&got, &want, mixtures.len());
            eprintln!("posteriors, {k} subtypes, {convention:?}: largest gap per sample {gap:.2e}");
            assert!(gap <= 1e-5, "{k} subtypes: gap {gap:.3e}");
            // Each subject's posteriors sum to one per sample.
            for m in 0..300 {
                let total: f64 = got.slice(ndarray::s![m, .., ..]).sum();
                assert!((total - 37.0).abs() < 37.0 * 1e-4, "subject {m}: {total}");
            }
        }
    }
}

/// Staging split into one subject tile and few workgroup rows per dispatch, and over
/// several candidate chunks, gives the same sums.
#[test]
fn posterior_sums_split_over_dispatches() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(600, 0.1, 95);
    let mixtures = random_mixtures(&p.events, 50, &[3], 96);
    let ns = p.events.n_stages();
    check_limited_posteriors(&p, &ctx, &mixtures, |gpu| {
        // One tile's slab for two workgroup rows: three subject ranges, two rows each.
        gpu.limit_output_bytes((2 * 3 * ns * 256 * 4) as u64);
        gpu.limit_dispatch(7);
    });
}

/// The GPU's posterior sums under the limits that `limit` sets agree with the CPU's.
fn check_limited_posteriors(
    p: &Problem,
    ctx: &Arc<GpuContext>,
    mixtures: &[Mixture],
    limit: impl FnOnce(&mut GpuEvaluator),
) {
    let want = p.serial().posterior_sums(mixtures).unwrap();
    let mut gpu = p.gpu(ctx);
    limit(&mut gpu);
    let got = gpu.posterior_sums(mixtures).unwrap();
    let gap = posterior_gap(&got, &want, mixtures.len());
    assert!(gap <= 1e-5, "gap {gap:.3e}");
}

#[test]
fn posterior_sums_edge_cases() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(40, 0.0, 97);
    let mut gpu = p.gpu(&ctx);
    let empty = gpu.posterior_sums(&[]).unwrap();
    assert_eq!(empty.shape(), &[40, p.events.n_stages(), 1]);
    assert!(empty.iter().all(|&v| v == 0.0));
    let mut mixed = random_mixtures(&p.events, 2, &[2], 98);
    mixed.extend(random_mixtures(&p.events, 1, &[3], 99));
    let e = gpu.posterior_sums(&mixed).unwrap_err().to_string();
    assert!(e.contains("mixes models of 2 and 3 subtypes"), "{e}");
    // One subject, one sample.
    let one = Problem::ragged(1, 0.0, 100);
    let m = random_mixtures(&one.events, 1, &[2], 101);
    let want = one.serial().posterior_sums(&m).unwrap();
    let got = one.gpu(&ctx).posterior_sums(&m).unwrap();
    assert!(posterior_gap(&got, &want, 1) <= 1e-5);
}

/// A large model (500 biomarkers x 3 thresholds, 1501 stages): on a software adapter
/// (llvmpipe stops every loop of an invocation past 65,535 iterations, silently) one
/// subtype fits the loop budget and agrees with the CPU, more subtypes are refused with
/// a clear error; on a real GPU every case agrees.
#[test]
fn large_model_within_the_loop_budget() {
    let Some(ctx) = test_context() else { return };
    let z_vals: Vec<Vec<f64>> = (0..500).map(|_| vec![1.0, 2.0, 3.0]).collect();
    let events = EventSet::new(&z_vals, &vec![5.0; 500]).unwrap();
    let p = Problem::simulated(events, 20, 0.1, MissingConvention::Reference, 61);
    let one = random_mixtures(&p.events, 2, &[1], 62);
    check(&p, &ctx, &one, true, "500 biomarkers, 1 subtype");
    let two = random_mixtures(&p.events, 2, &[2], 63);
    let mut gpu = p.gpu(&ctx);
    if ctx.is_software() {
        let e = gpu.loglike_batch(&two).unwrap_err().to_string();
        assert!(e.contains("use the CPU backend"), "{e}");
        let e = gpu.posterior_sums(&one).unwrap_err().to_string();
        assert!(e.contains("shader loop iterations"), "{e}");
    } else {
        check(&p, &ctx, &two, true, "500 biomarkers, 2 subtypes");
    }
}

/// With a loop budget of one candidate per workgroup row, staging splits its rows
/// (and its dispatches) and still sums every candidate once.
#[test]
fn posterior_sums_under_a_loop_budget() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(300, 0.1, 64);
    let mixtures = random_mixtures(&p.events, 21, &[3], 65);
    let per_subtype = {
        // The smallest budget that takes one candidate (2 passes x 3 subtypes).
        let mut probe = p.gpu(&ctx);
        probe.limit_loop_budget(0);
        let e = probe.posterior_sums(&mixtures).unwrap_err().to_string();
        let need: u64 = e
            .split("needs up to ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no count in: {e}"));
        need
    };
    let ns = p.events.n_stages();
    check_limited_posteriors(&p, &ctx, &mixtures, |gpu| {
        gpu.limit_loop_budget(per_subtype);
        gpu.limit_output_bytes((5 * 3 * ns * 256 * 4) as u64);
    });
}

/// The conformance suite every batch evaluator passes (`sustain_testkit::conformance`,
/// as the CPU backends do), with the GPU's single-precision tolerances: 1e-5
/// relative for log-likelihoods, 1e-4 absolute for posteriors summed over a batch
/// of six samples (1e-5 per sample, as `posterior_sums_match_serial`).
#[test]
fn gpu_evaluator_passes_the_conformance_suite() {
    let Some(ctx) = test_context() else { return };
    let p = Problem::ragged(150, 0.1, 61);
    sustain_testkit::conformance::check_batch_evaluator(
        "GPU",
        &mut p.serial(),
        &mut p.gpu(&ctx),
        sustain_testkit::conformance::Tolerances {
            loglike_rel: REL,
            posterior_abs: 1e-4,
        },
        62,
    );
}
