//! Chains that run until they converge: they stop at the first round whose
//! diagnostics pass, a budget stop holds exactly a prefix of a longer run's
//! samples, both hold the states of a fixed-length run of the same total (each
//! round starts its evaluators afresh, so log-likelihoods agree to rounding), and
//! neither the samples nor the stopping round depend on the thread count.

use sustain::config::UntilConverged;
use sustain::prelude::*;
use sustain::rounds::{Convergence, Stop};
use sustain_sampler::verdict::unmet_criteria;
use sustain_sampler::{merge, Trace};
use sustain_testkit::{self as testkit, spec};

fn cohort() -> (EventSet, Dataset, Vec<String>) {
    let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
    let w = testkit::cohort(events, &[0.6, 0.4], 5, &spec(150, 0.1, 0.0), 6);
    let names = (0..3).map(|b| format!("b{b}")).collect();
    (w.events, w.data, names)
}

fn config(threads: usize, until: Option<UntilConverged>, n_iterations: usize) -> FitConfig {
    FitConfig {
        n_startpoints: 3,
        max_subtypes: 2,
        n_iterations,
        until_converged: until,
        n_chains: 3,
        tuning_passes: 2,
        tuning_iterations: 300,
        seed: 5,
        threads,
        ..FitConfig::default()
    }
}

fn run(config: &FitConfig) -> FitResult {
    let (events, data, names) = cohort();
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &data,
    };
    Fit::zscore(&input, config.clone()).run().unwrap()
}

/// Whether two models hold the same samples (traces and acceptance; wall times
/// differ from run to run).
fn same_samples(a: &SubtypeModel, b: &SubtypeModel) -> bool {
    a.samples.chains.len() == b.samples.chains.len()
        && a.samples
            .chains
            .iter()
            .zip(&b.samples.chains)
            .all(|(x, y)| x.index == y.index && x.trace == y.trace && x.acceptance == y.acceptance)
}

/// Whether two traces hold the same states (positions, fractions, run lengths),
/// with log-likelihoods equal to rounding.
fn same_states(a: &Trace, b: &Trace) -> bool {
    let positions = |t: &Trace| {
        let mut p = Vec::new();
        t.for_each_state(|_, pos, _| p.push(pos.to_vec()));
        p
    };
    a.runs == b.runs
        && a.fractions == b.fractions
        && positions(a) == positions(b)
        && a.loglike
            .iter()
            .zip(&b.loglike)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs())
}

fn until(max_iterations: usize) -> Option<UntilConverged> {
    Some(UntilConverged {
        max_iterations,
        ..UntilConverged::default()
    })
}

/// The first `n` rounds' totals when the first round is 500 iterations: each
/// later round adds half the total so far, rounded up to whole first rounds.
fn rounds_of_500(n: usize) -> Vec<usize> {
    let mut total: usize = 0;
    (0..n)
        .map(|_| {
            total += if total == 0 {
                500
            } else {
                (total / 2).div_ceil(500) * 500
            };
            total
        })
        .collect()
}

#[test]
fn stops_at_the_first_passing_round_whatever_the_threads() {
    let one = run(&config(1, until(400_000), 500));
    for m in &one.models {
        let c = m
            .convergence
            .as_ref()
            .expect("a run until convergence records it");
        assert_eq!(
            c.stopped,
            Stop::Converged,
            "{} subtype(s): {c:?}",
            m.n_subtypes
        );
        let (last, earlier) = c.rounds.split_last().unwrap();
        assert!(last.unmet.is_empty());
        assert!(earlier.iter().all(|r| !r.unmet.is_empty()), "{c:?}");
        assert_eq!(last.iterations_per_chain, c.iterations_per_chain);
        assert_eq!(
            c.rounds
                .iter()
                .map(|r| r.iterations_per_chain)
                .collect::<Vec<_>>(),
            rounds_of_500(c.rounds.len())
        );
        // The diagnostics of what was kept pass; those of the round before did not.
        assert!(
            unmet_criteria(&m.diagnostics).is_empty(),
            "{:?}",
            m.diagnostics
        );
        assert!(m.diagnostics.converged);
        assert!(m.nonconvergence.is_empty() && m.disagreements.is_empty());
        assert_eq!(m.chains.len(), 3);
        if let Some(before) = earlier.last() {
            let runs: Vec<_> = m
                .samples
                .chains
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.trace.truncate(before.iterations_per_chain);
                    r
                })
                .collect();
            let (_, d) = merge(runs, 0, 1);
            assert!(
                !unmet_criteria(&d).is_empty(),
                "round before the last passed"
            );
        }
    }
    // The 2-subtype model needs more than one round, or the test shows little.
    assert!(one.models[1].convergence.as_ref().unwrap().rounds.len() > 1);
    let two = run(&config(2, until(400_000), 500));
    for (a, b) in one.models.iter().zip(&two.models) {
        assert!(same_samples(a, b), "{} subtype(s)", a.n_subtypes);
        let rounds = |m: &SubtypeModel| {
            let c = m.convergence.clone().unwrap();
            (c.stopped, c.iterations_per_chain, c.rounds.len())
        };
        assert_eq!(rounds(a), rounds(b));
        assert_eq!(a.chains, b.chains);
    }
    // A fixed-length run of the same total holds the same states.
    let total = one.models[1]
        .convergence
        .as_ref()
        .unwrap()
        .iterations_per_chain;
    let fixed = run(&config(2, None, total));
    for (a, b) in fixed.models[1]
        .samples
        .chains
        .iter()
        .zip(&one.models[1].samples.chains)
    {
        assert!(same_states(&a.trace, &b.trace), "chain {}", a.index);
    }
    assert!(fixed.models[1].convergence.is_none());
}

#[test]
fn a_budget_stop_holds_a_prefix_of_a_longer_run() {
    let short = run(&config(2, until(1_500), 500));
    // Rounds of 500, 1000, 2000, 2400: the short run's third round (cut at 1500)
    // starts where the long run's does.
    let long = run(&config(2, until(2_400), 500));
    let fixed = run(&config(2, None, 2_400));
    let m = &short.models[1];
    let c = m.convergence.as_ref().unwrap();
    assert_eq!(c.stopped, Stop::MaxIterations, "{c:?}");
    assert_eq!(c.iterations_per_chain, 1_500);
    assert!(!m.nonconvergence.is_empty(), "a budget stop says why");
    assert_eq!(
        long.models[1].convergence.as_ref().unwrap().stopped,
        Stop::MaxIterations
    );
    let chains = |r: &FitResult| r.models[1].samples.chains.clone();
    for ((a, b), f) in m
        .samples
        .chains
        .iter()
        .zip(chains(&long))
        .zip(chains(&fixed))
    {
        let (mut b, mut f) = (b.trace, f.trace);
        b.truncate(1_500);
        f.truncate(1_500);
        assert!(a.trace == b, "chain {}", a.index);
        assert!(same_states(&a.trace, &f), "chain {}", a.index);
    }
}

/// A batch engine over the serial evaluator (lockstep chains, as the GPU's are).
fn serial_engine() -> sustain::backend::Engine {
    use std::sync::Arc;
    use sustain::backend::{BoxedEvaluator, Engine};
    use sustain::model::SerialEvaluator;
    Engine::batch("serial".to_string(), |model: &dyn std::any::Any| {
        let lik = model.downcast_ref::<Arc<Likelihood>>()?;
        Some(Ok(
            Box::new(SerialEvaluator::new(Arc::clone(lik))) as BoxedEvaluator
        ))
    })
}

/// [`run`] on `engine`, saving into (and continuing from) `checkpoints`.
fn run_on(
    engine: &sustain::backend::Engine,
    config: &FitConfig,
    checkpoints: Option<&sustain::checkpoint::Checkpoints>,
) -> FitResult {
    let (events, data, names) = cohort();
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &data,
    };
    Fit::zscore(&input, config.clone())
        .engine(engine)
        .checkpoints(checkpoints)
        .run()
        .unwrap()
}

/// A batch engine (lockstep chains) continues its chains from round to round:
/// the same stopping rule, and the samples of a fixed-length run of the final
/// length.
#[test]
fn a_batch_engine_stops_the_same_way() {
    let engine = serial_engine();
    let mut c = config(2, until(400_000), 500);
    c.max_subtypes = 1;
    let batch = run_on(&engine, &c, None);
    let conv = batch.models[0].convergence.clone().unwrap();
    assert_eq!(conv.stopped, Stop::Converged, "{conv:?}");
    let (last, earlier) = conv.rounds.split_last().unwrap();
    assert!(last.unmet.is_empty() && earlier.iter().all(|r| !r.unmet.is_empty()));
    let mut fixed = config(2, None, conv.iterations_per_chain);
    fixed.max_subtypes = 1;
    let fixed = run_on(&engine, &fixed, None);
    assert!(same_samples(&batch.models[0], &fixed.models[0]));
}

/// Replica-exchange ladders in a batch engine's lockstep chains are the CPU's:
/// the same states round after round and the same respaced ladder at the end
/// (the evaluators differ only in rounding). The budget stops both before they
/// converge: the verdicts on the log-likelihood may differ, since the full
/// evaluation gives a revisited state the same bits (ties in the ranks) and
/// the incremental one bits within rounding.
#[test]
fn a_batch_engine_runs_the_cpus_ladders() {
    let ladder = Some(UntilConverged {
        max_iterations: 2_000,
        tempering_rungs: 3,
        ..UntilConverged::default()
    });
    let c = config(2, ladder, 500);
    let batch = run_on(&serial_engine(), &c, None);
    let cpu = run(&c);
    for (a, b) in batch.models.iter().zip(&cpu.models) {
        let k = a.n_subtypes;
        let (ca, cb) = (
            a.convergence.clone().unwrap(),
            b.convergence.clone().unwrap(),
        );
        for c in [&ca, &cb] {
            assert_eq!(c.stopped, Stop::MaxIterations, "{k} subtype(s): {c:?}");
            assert!(c.rounds.len() > 2, "{k} subtype(s): {c:?}");
        }
        let lengths = |c: &Convergence| -> Vec<usize> {
            c.rounds.iter().map(|r| r.iterations_per_chain).collect()
        };
        assert_eq!(lengths(&ca), lengths(&cb), "{k} subtype(s)");
        assert!(ca.tempering.is_some(), "{k} subtype(s): no ladder");
        assert_eq!(ca.tempering, cb.tempering, "{k} subtype(s)");
        for (x, y) in a.samples.chains.iter().zip(&b.samples.chains) {
            assert!(same_states(&x.trace, &y.trace), "{k} subtype(s)");
            assert_eq!(x.acceptance, y.acceptance);
        }
    }
}

/// A batch engine saves its chains after every round: a run stopped by its
/// budget continues from its checkpoints to the samples of a run never stopped.
#[test]
fn a_batch_engine_continues_from_saved_rounds() {
    let engine = serial_engine();
    let budget = |max_iterations| {
        config(
            2,
            Some(UntilConverged {
                max_iterations,
                tempering_rungs: 2,
                ..UntilConverged::default()
            }),
            500,
        )
    };
    let whole = run_on(&engine, &budget(2_000), None);
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = sustain::checkpoint::Checkpoints::new(dir.path()).unwrap();
    let short = run_on(&engine, &budget(1_000), Some(&checkpoints));
    let stopped = |r: &FitResult| r.models[1].convergence.clone().unwrap().stopped;
    assert_eq!(stopped(&short), Stop::MaxIterations);
    let saved = dir.path().join("checkpoint_rounds_k2.json");
    assert!(saved.exists(), "no rounds saved");
    let resumed = run_on(&engine, &budget(2_000), Some(&checkpoints));
    for (a, b) in resumed.models.iter().zip(&whole.models) {
        assert!(same_samples(a, b), "{} subtype(s)", a.n_subtypes);
        let rounds = |m: &SubtypeModel| m.convergence.clone().unwrap().rounds.len();
        assert_eq!(rounds(a), rounds(b));
    }
    // The resumed run kept the short run's rounds (their seconds) instead of
    // running them again.
    let seconds = |r: &FitResult| r.models[1].convergence.clone().unwrap().rounds[0].seconds;
    assert_eq!(seconds(&resumed), seconds(&short));
}
