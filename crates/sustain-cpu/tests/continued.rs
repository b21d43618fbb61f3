//! Chains run in rounds continue exactly: rounds of any lengths, on any thread
//! count, hold the samples of one run of their total length (so a run stopped by
//! its budget holds a prefix of a longer run's samples).

use std::sync::Arc;
use sustain_cpu::{continue_chains, run_chains, ChainSettings};
use sustain_model::*;
use sustain_sampler::{PausedChain, ProposalMode, RoundEnd, StepSizes};
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

#[test]
fn rounds_hold_the_samples_of_one_long_run() {
    for (n_subjects, k) in [(200, 1), (300, 2), (250, 3)] {
        let events = EventSet::uniform(5, &[1.0, 2.0], 4.0).unwrap();
        let fractions = equal_fractions(k);
        let w = testkit::cohort(events, &fractions, 3, &spec(n_subjects, 0.1, 0.1), 4);
        let mut rng = w.rng;
        let lik =
            Arc::new(Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap());
        let start = random_mixture(lik.events(), &fractions, &mut rng);
        let total = 3500;
        let whole = run_chains(&lik, &start, &settings(&lik, k, total, 1), 0..3);
        assert!(whole[0].acceptance > 0.01, "the chains must move");
        for threads in [1, 2] {
            let s = settings(&lik, k, 0, threads);
            let mut paused: Vec<PausedChain<_>> = (0..3)
                .map(|i| PausedChain::start(i, &start, s.seed, lik.events().n_events()))
                .collect();
            // Rounds of uneven lengths, one not a multiple of the progress block.
            for n in [700, 1, 1299, 1500] {
                let ends = continue_chains(&lik, &s, &mut paused, n, None, None);
                assert!(ends.iter().all(|e| *e == RoundEnd::Done));
            }
            for (p, w) in paused.iter().zip(&whole) {
                assert_eq!(p.n_iterations(), total);
                let run = p.run_so_far(total);
                assert!(
                    run.trace == w.trace,
                    "{k} subtype(s), {threads} thread(s): chain {} differs from one run",
                    w.index
                );
                assert_eq!(run.acceptance, w.acceptance);
                // Cut short: a prefix of the long run, iteration by iteration.
                let cut = p.run_so_far(1234);
                assert_eq!(cut.trace.n_iterations(), 1234);
                assert_eq!(
                    cut.trace.loglike_series(0, 1),
                    w.trace.loglike_series(0, 1)[..1234].to_vec()
                );
            }
        }
    }
}
