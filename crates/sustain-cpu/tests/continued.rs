//! Chains run in rounds continue exactly: the same rounds give the same samples
//! on any thread count and whether or not the chains were saved and restored
//! between them (so a run stopped by its budget, or killed, continues to a
//! longer run's samples), and any rounds give the states of one run of their
//! total length (each round starts its evaluators afresh, so the
//! log-likelihoods agree to rounding).

use std::sync::Arc;
use sustain_cpu::{continue_chains, run_chains, ChainSettings, JobThreads, ShardedIncremental};
use sustain_model::*;
use sustain_sampler::{
    geometric_ladder, ChainSnapshot, PausedChain, ProposalMode, RoundEnd, StepSizes, Trace,
};
use sustain_testkit::{self as testkit, equal_fractions, random_mixture, spec};

fn settings(lik: &Likelihood, k: usize, n: usize, threads: usize) -> ChainSettings {
    ChainSettings {
        mode: ProposalMode::Exact,
        steps: StepSizes::initial(k, lik.events().n_events()),
        n_iterations: n,
        seed: 7,
        threads,
        chain_threads: threads,
    }
}

/// A cohort of `n_subjects` with `k` subtypes and a random start.
fn problem(n_subjects: usize, k: usize) -> (Arc<Likelihood>, Mixture) {
    let events = EventSet::uniform(5, &[1.0, 2.0], 4.0).unwrap();
    let fractions = equal_fractions(k);
    let w = testkit::cohort(events, &fractions, 3, &spec(n_subjects, 0.1, 0.1), 4);
    let mut rng = w.rng;
    let lik = Arc::new(Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap());
    let start = random_mixture(lik.events(), &fractions, &mut rng);
    (lik, start)
}

type Paused = PausedChain<ShardedIncremental<Likelihood>>;

/// Three chains at `start`, each a ladder of `rungs` copies.
fn chains(lik: &Likelihood, start: &Mixture, s: &ChainSettings, rungs: usize) -> Vec<Paused> {
    (0..3)
        .map(|i| {
            PausedChain::start(i, start, s.seed, lik.events().n_events())
                .tempered(geometric_ladder(rungs, 0.2), s.seed)
                .unwrap()
        })
        .collect()
}

/// Every state's positions, fractions and run length: a trace without its
/// log-likelihoods.
fn states(t: &Trace) -> (Vec<Vec<u16>>, Vec<f64>, Vec<u32>) {
    let mut positions = Vec::new();
    t.for_each_state(|_, p, _| positions.push(p.to_vec()));
    (positions, t.fractions.clone(), t.runs.clone())
}

#[test]
fn rounds_hold_the_states_of_one_long_run() {
    for (n_subjects, k) in [(200, 1), (300, 2), (250, 3)] {
        let (lik, start) = problem(n_subjects, k);
        let total = 3500;
        let whole = run_chains(&lik, &start, &settings(&lik, k, total, 1), 0..3);
        assert!(whole[0].acceptance > 0.01, "the chains must move");
        let mut by_threads: Vec<Vec<Trace>> = Vec::new();
        for threads in [1, 2] {
            let s = settings(&lik, k, 0, threads);
            let mut paused = chains(&lik, &start, &s, 1);
            // Rounds of uneven lengths, one not a multiple of the progress block.
            for n in [700, 1, 1299, 1500] {
                let ends = continue_chains(
                    &lik,
                    &s,
                    &mut paused,
                    n,
                    None,
                    None,
                    JobThreads::fixed(s.threads),
                );
                assert!(ends.iter().all(|e| *e == RoundEnd::Done));
            }
            for (p, w) in paused.iter().zip(&whole) {
                assert_eq!(p.n_iterations(), total);
                let run = p.run_so_far(total);
                let what = format!("{k} subtype(s), {threads} thread(s), chain {}", w.index);
                assert!(
                    states(&run.trace) == states(&w.trace),
                    "{what}: other states"
                );
                for (a, b) in run.trace.loglike.iter().zip(&w.trace.loglike) {
                    assert!((a - b).abs() <= 1e-9 * b.abs(), "{what}: {a} vs {b}");
                }
                assert_eq!(run.acceptance, w.acceptance);
                // Cut short: a prefix, iteration by iteration.
                let cut = p.run_so_far(1234);
                assert_eq!(cut.trace.n_iterations(), 1234);
                assert_eq!(
                    cut.trace.loglike_series(0, 1),
                    run.trace.loglike_series(0, 1)[..1234].to_vec()
                );
            }
            by_threads.push(paused.iter().map(|p| p.trace().clone()).collect());
        }
        assert!(
            by_threads[0] == by_threads[1],
            "{k} subtype(s): threads differ"
        );
    }
}

#[test]
fn chains_saved_and_restored_between_rounds_continue_exactly() {
    let (lik, start) = problem(300, 2);
    let s = settings(&lik, 2, 0, 2);
    let rounds = [900, 1800, 2400];
    for rungs in [1, 3] {
        let mut never = chains(&lik, &start, &s, rungs);
        for n in rounds {
            continue_chains(
                &lik,
                &s,
                &mut never,
                n,
                None,
                None,
                JobThreads::fixed(s.threads),
            );
        }
        let mut restored = chains(&lik, &start, &s, rungs);
        for n in rounds {
            continue_chains(
                &lik,
                &s,
                &mut restored,
                n,
                None,
                None,
                JobThreads::fixed(s.threads),
            );
            // Through JSON (random streams, ladder and all) and back, the trace
            // through its file form.
            restored = restored
                .iter()
                .map(|p| {
                    let json = serde_json::to_string(&p.snapshot()).unwrap();
                    let snapshot: ChainSnapshot = serde_json::from_str(&json).unwrap();
                    let trace: Trace =
                        serde_json::from_str(&serde_json::to_string(p.trace()).unwrap()).unwrap();
                    PausedChain::restore(&snapshot, trace, lik.events()).unwrap()
                })
                .collect();
        }
        // One more round: the streams and hot copies carried over too.
        continue_chains(
            &lik,
            &s,
            &mut never,
            500,
            None,
            None,
            JobThreads::fixed(s.threads),
        );
        continue_chains(
            &lik,
            &s,
            &mut restored,
            500,
            None,
            None,
            JobThreads::fixed(s.threads),
        );
        for (a, b) in never.iter().zip(&restored) {
            let total = a.n_iterations();
            let (a_run, b_run) = (a.run_so_far(total), b.run_so_far(total));
            assert!(
                a_run.trace == b_run.trace,
                "{rungs} rung(s): chain {} differs once restored",
                a.index
            );
            assert_eq!(a_run.acceptance, b_run.acceptance);
            assert_eq!(a.ladder(), b.ladder(), "{rungs} rung(s)");
        }
        if rungs > 1 {
            let (_, rates) = never[0].ladder().unwrap();
            assert!(rates.iter().all(|r| *r > 0.0), "the copies must swap");
        }
    }
}
