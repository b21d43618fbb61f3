//! The GPU path of the facade on `../shared/data/sim42`: a full fit with GPU
//! evaluators (E-M one start point after another, lockstep MCMC chains) gives the
//! same maximum-likelihood sequences as the CPU backend.
//!
//! The GPU path is driven through [`Fit::engine`] with an [`Engine::batch`] over
//! `sustain_gpu::GpuEvaluator` (a dev-dependency), so this runs in the default
//! `cargo test --workspace` without the `gpu` feature. It skips with a NOTICE only
//! when no adapter at all can be created (or sim42 is absent).

use std::sync::Arc;
use sustain::backend::{BoxedEvaluator, Engine};
use sustain::config::Backend;
use sustain::model::{ModelError, SerialEvaluator};
use sustain::prelude::*;
use sustain::sampler::lockstep::{run_lockstep, LockstepSettings};
use sustain::sampler::StepSizes;
use sustain_gpu::{test_context, GpuEvaluator};
use sustain_testkit::{self as testkit, Sim42};

/// The whole cohort prepared under the marginalising convention.
fn likelihood(sim: &Sim42) -> Arc<Likelihood> {
    Arc::new(
        Likelihood::new(
            sim.events.clone(),
            &sim.data,
            MissingConvention::Marginalise,
        )
        .unwrap(),
    )
}

/// The whole cohort as fit input.
fn input(sim: &Sim42) -> FitInput<'_> {
    FitInput {
        events: &sim.events,
        biomarkers: &sim.names,
        data: &sim.data,
    }
}

fn sim42() -> Option<Sim42> {
    testkit::sim42("GPU fit test")
}

fn gpu_engine() -> Option<Engine> {
    let ctx = test_context()?;
    Some(Engine::batch(
        format!("GPU: {}", ctx.description()),
        move |model: &dyn std::any::Any| {
            let lik = model.downcast_ref::<Arc<Likelihood>>()?;
            Some(
                GpuEvaluator::from_likelihood(Arc::clone(&ctx), lik, lik.data())
                    .map(|e| Box::new(e) as BoxedEvaluator)
                    .map_err(ModelError::from),
            )
        },
    ))
}

fn config(backend: Backend) -> FitConfig {
    FitConfig {
        n_startpoints: 3,
        max_subtypes: 2,
        n_iterations: 500,
        n_chains: 2,
        tuning_passes: 2,
        tuning_iterations: 500,
        seed: 42,
        backend,
        ..FitConfig::default()
    }
}

#[test]
fn gpu_fit_gives_the_cpu_ml_sequences_on_sim42() {
    let Some(sim) = sim42() else { return };
    let Some(engine) = gpu_engine() else { return };
    let input = input(&sim);
    let t0 = std::time::Instant::now();
    let cpu = Fit::zscore(&input, config(Backend::Cpu)).run().unwrap();
    let cpu_s = t0.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    let gpu = Fit::zscore(&input, config(Backend::Gpu))
        .engine(&engine)
        .run()
        .unwrap();
    eprintln!(
        "sim42 fit: CPU {cpu_s:.2} s, {} {:.2} s",
        engine.name(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(gpu.settings.backend, Backend::Gpu);
    assert_eq!(cpu.models.len(), gpu.models.len());
    for (c, g) in cpu.models.iter().zip(&gpu.models) {
        eprintln!(
            "k={}: CPU ML {:?} ({}), GPU ML {:?} ({})",
            c.n_subtypes, c.ml_sequences, c.ml_loglike, g.ml_sequences, g.ml_loglike
        );
        assert_eq!(
            c.em_sequences, g.em_sequences,
            "E-M optimum, k={}",
            c.n_subtypes
        );
        assert_eq!(
            c.ml_sequences, g.ml_sequences,
            "ML sequences, k={}",
            c.n_subtypes
        );
        let rel = (c.ml_loglike - g.ml_loglike).abs() / c.ml_loglike.abs();
        assert!(
            rel < 1e-5,
            "ML log-likelihood {} vs {}",
            g.ml_loglike,
            c.ml_loglike
        );
        assert_eq!(g.samples.chains.len(), 2);
    }
}

/// The lockstep driver with the exact serial evaluator reproduces the CPU backend's
/// chains (`sustain_cpu::run_chains`) state by state on sim42 (no GPU needed): the
/// per-chain streams are the same, and no accept/reject decision here falls within
/// the ~1e-13 rounding difference of full vs incremental f64 evaluation.
#[test]
fn serial_lockstep_equals_run_chains_on_sim42() {
    let Some(sim) = sim42() else { return };
    let lik = likelihood(&sim);
    let mut rng = <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(9);
    let start = sustain_testkit::random_mixture(&sim.events, &[0.5, 0.5], &mut rng);
    let steps = StepSizes::initial(2, sim.events.n_events());
    let settings = sustain_cpu::ChainSettings {
        mode: ProposalMode::Exact,
        steps: steps.clone(),
        n_iterations: 300,
        seed: 3,
        threads: 2,
        chain_threads: 1,
    };
    let cpu = sustain_cpu::run_chains(&lik, &start, &settings, 0..3);
    let lock = run_lockstep(
        &mut SerialEvaluator::new(Arc::clone(&lik)),
        &start,
        &LockstepSettings {
            mode: ProposalMode::Exact,
            steps,
            n_iterations: 300,
            seed: 3,
            threads: 2,
        },
        0..3,
    )
    .unwrap();
    for (a, b) in lock.iter().zip(&cpu) {
        assert_eq!(a.index, b.index);
        assert_eq!(a.acceptance, b.acceptance);
        assert_eq!(a.trace.n_states(), b.trace.n_states());
        for st in 0..a.trace.n_states() {
            for s in 0..2 {
                for e in 0..sim.events.n_events() {
                    assert_eq!(a.trace.position(st, s, e), b.trace.position(st, s, e));
                }
                assert_eq!(a.trace.fraction(st, s), b.trace.fraction(st, s));
            }
        }
    }
}

#[test]
fn gpu_test_set_evaluation_agrees_with_the_cpu_on_sim42() {
    let Some(sim) = sim42() else { return };
    let Some(engine) = gpu_engine() else { return };
    let n = sim.data.n_subjects();
    let train: Vec<usize> = (0..n).filter(|m| m % 4 != 0).collect();
    let test: Vec<usize> = (0..n).filter(|m| m % 4 == 0).collect();
    let (train, test) = (
        sim.data.select(&train).unwrap(),
        sim.data.select(&test).unwrap(),
    );
    let input = FitInput {
        events: &sim.events,
        biomarkers: &sim.names,
        data: &train,
    };
    let fitted = Fit::zscore(&input, config(Backend::Cpu)).run().unwrap();
    let lik = Arc::new(
        Likelihood::new(sim.events.clone(), &test, MissingConvention::Marginalise).unwrap(),
    );
    for model in &fitted.models {
        let (cpu_ll, cpu_per) = sustain::cv::test_loglikes(&Engine::Cpu, &lik, model, 2).unwrap();
        let (gpu_ll, gpu_per) = sustain::cv::test_loglikes(&engine, &lik, model, 2).unwrap();
        eprintln!(
            "k={}: test log-likelihood CPU {cpu_ll}, GPU {gpu_ll}",
            model.n_subtypes
        );
        assert!(
            (cpu_ll - gpu_ll).abs() <= 1e-5 * cpu_ll.abs(),
            "{gpu_ll} vs {cpu_ll}"
        );
        assert_eq!(cpu_per.len(), test.n_subjects());
        for (c, g) in cpu_per.iter().zip(&gpu_per) {
            assert!((c - g).abs() <= 1e-4 * c.abs().max(1.0), "{g} vs {c}");
        }
    }
}

/// Staging on the GPU (`stage_posteriors` shader, f32) gives the CPU's subtypes and
/// stages, and probabilities within 1e-5, on sim42.
#[test]
fn gpu_staging_agrees_with_the_cpu_on_sim42() {
    let Some(sim) = sim42() else { return };
    let Some(engine) = gpu_engine() else { return };
    let input = input(&sim);
    let fitted = Fit::zscore(&input, config(Backend::Cpu)).run().unwrap();
    let lik = likelihood(&sim);
    let ids: Vec<String> = (1..=sim.data.n_subjects()).map(|i| i.to_string()).collect();
    for model in &fitted.models {
        let cpu = sustain::stage::stage_subjects(&lik, model, &ids, 200, 2);
        let mut eval = engine.evaluator(&lik).unwrap();
        let gpu = sustain::stage::stage_subjects_with(eval.as_mut(), model, &ids, 200).unwrap();
        assert_eq!(cpu.len(), gpu.len());
        let mut worst = 0.0f64;
        for (c, g) in cpu.iter().zip(&gpu) {
            assert_eq!(c.id, g.id);
            worst = worst.max((c.prob_ml_subtype - g.prob_ml_subtype).abs());
            // A different choice is allowed only between near-equal probabilities.
            if c.ml_subtype == g.ml_subtype && c.ml_stage == g.ml_stage {
                worst = worst.max((c.prob_ml_stage - g.prob_ml_stage).abs());
            } else {
                assert!(
                    (c.prob_ml_subtype - g.prob_ml_subtype).abs() < 1e-5
                        && (c.prob_ml_stage - g.prob_ml_stage).abs() < 1e-5,
                    "subject {}: CPU {c:?}, GPU {g:?}",
                    c.id
                );
            }
        }
        eprintln!(
            "k={}: staging CPU vs GPU, largest probability gap {worst:.2e}",
            model.n_subtypes
        );
        assert!(worst <= 1e-5, "largest gap {worst:.3e}");
    }
}

/// Replica-exchange ladders in the GPU's lockstep chains (every copy one more
/// lane of the batch) against the CPU's ladders on sim42, over two rounds (the
/// second continued from the first's states): the same states, swaps and
/// respaced ladders, log-likelihoods within the GPU's f32 rounding (1e-5
/// relative). A decision falling within that rounding would make a chain part
/// from the CPU's; with this seed none does (the run is deterministic on a
/// device).
#[test]
fn gpu_tempered_lockstep_equals_cpu_ladders_on_sim42() {
    use sustain::model::IncrementalLikelihood;
    use sustain::sampler::lockstep::continue_lockstep;
    use sustain::sampler::{geometric_ladder, PausedChain, Round, Trace};
    let Some(sim) = sim42() else { return };
    let Some(ctx) = test_context() else { return };
    let lik = likelihood(&sim);
    let events = sim.events.order().clone();
    let mut rng = <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(9);
    let start = sustain_testkit::random_mixture(&sim.events, &[0.5, 0.5], &mut rng);
    let steps = StepSizes::initial(2, sim.events.n_events());
    let round_of_250 = Round::new(ProposalMode::Blockwise, &steps, 250);
    let ladders = || -> Vec<PausedChain<IncrementalLikelihood>> {
        (0..3)
            .map(|i| {
                PausedChain::start(i, &start, 3, sim.events.n_events())
                    .tempered(geometric_ladder(3, 0.1), 3)
                    .unwrap()
            })
            .collect()
    };
    let (mut cpu, mut gpu) = (ladders(), ladders());
    let mut ev = GpuEvaluator::from_likelihood(ctx, &lik, lik.data()).unwrap();
    let positions = |t: &Trace| {
        let mut p = Vec::new();
        t.for_each_state(|_, pos, _| p.push(pos.to_vec()));
        p
    };
    for round in 0..2 {
        for chain in &mut cpu {
            let make = |m: &Mixture| IncrementalLikelihood::new(Arc::clone(&lik), m);
            chain.run(&events, make, round_of_250);
        }
        continue_lockstep(&mut ev, &mut gpu, round_of_250, 2).unwrap();
        for (g, c) in gpu.iter().zip(&cpu) {
            let what = format!("round {round}, chain {}", g.index);
            let (gt, ct) = (g.trace(), c.trace());
            assert!(ct.n_states() > 10, "{what}: too few moves to test anything");
            assert_eq!(gt.runs, ct.runs, "{what}: accept flags");
            assert_eq!(gt.fractions, ct.fractions, "{what}: fractions");
            assert!(positions(gt) == positions(ct), "{what}: positions");
            for (x, y) in gt.loglike.iter().zip(&ct.loglike) {
                assert!((x - y).abs() <= 1e-5 * y.abs(), "{what}: {x} vs {y}");
            }
            assert_eq!(g.ladder(), c.ladder(), "{what}: ladder and swap rates");
        }
    }
}
