//! Simulation-based calibration (Talts et al. 2018): draw a true sequence from the
//! prior (uniform over orders), simulate a small cohort from it, sample the
//! posterior with the `exact` chain, and rank each event's true position among
//! thinned posterior samples (ties broken at random). For a correct sampler the
//! ranks are uniform; a chi-square test at a fixed seed checks it. The chain
//! starts at the truth, which is a draw from the posterior given the data, so
//! every sample is a posterior draw. A sampler that does not reach the posterior
//! (a chain from a random start with steps too small to leave it) fails the same
//! test.

use rand::Rng;
use std::sync::Arc;
use sustain_model::simulate::simulate;
use sustain_model::*;
use sustain_sampler::{rng, run_chain, PausedChain, ProposalMode, Round, StepSizes};
use sustain_testkit::spec;

const REPLICATES: usize = 200;
const EVENTS: usize = 4;
const ITERATIONS: usize = 3_000;
/// Thinning leaves `ITERATIONS / THIN` = 60 samples, far apart in a chain that
/// mixes over 24 orders in a few iterations.
const THIN: usize = 50;
const BINS: usize = 5;
/// The chi-square critical value for 4 degrees of freedom at p = 0.001.
const CHI2_4_P001: f64 = 18.467;

/// Rank histograms (`BINS` bins) of every event's true position; `broken`: the
/// chains start at a random order with tiny steps instead of at the truth.
fn rank_histograms(broken: bool) -> Vec<Vec<usize>> {
    let events = EventSet::uniform(EVENTS, &[1.5], 4.0).unwrap();
    let mut draws = rng::stream(2026, 9, 0);
    let mut hist = vec![vec![0usize; BINS]; EVENTS];
    for r in 0..REPLICATES {
        let truth = Mixture::new(vec![Sequence::random(&events, &mut draws)], vec![1.0]).unwrap();
        let sim = simulate(&events, &truth, &spec(40, 0.0, 0.0), r as u64).unwrap();
        let lik = Arc::new(
            Likelihood::new(events.clone(), &sim.data, MissingConvention::Marginalise).unwrap(),
        );
        let mut steps = StepSizes::initial(1, EVENTS);
        let start = if broken {
            steps.sigma_seq = vec![vec![1e-3; EVENTS]];
            Mixture::new(vec![Sequence::random(&events, &mut draws)], vec![1.0]).unwrap()
        } else {
            truth.clone()
        };
        let mut chain_rng = rng::stream(2026, rng::purpose::CHAIN, r as u64);
        let evaluator = IncrementalLikelihood::new(Arc::clone(&lik), &start);
        let round = Round::new(ProposalMode::Exact, &steps, ITERATIONS);
        let run = run_chain(0, &events, evaluator, &start, round, &mut chain_rng);
        let samples = run.trace.state_indices(THIN - 1, THIN);
        let true_positions = truth.sequences()[0].positions_u16();
        for (e, h) in hist.iter_mut().enumerate() {
            let p = true_positions[e] as usize;
            let below = samples
                .iter()
                .filter(|&&st| run.trace.position(st, 0, e) < p)
                .count();
            let equal = samples
                .iter()
                .filter(|&&st| run.trace.position(st, 0, e) == p)
                .count();
            let rank = below + draws.gen_range(0..=equal);
            h[rank * BINS / (samples.len() + 1)] += 1;
        }
    }
    hist
}

fn chi_square(h: &[usize]) -> f64 {
    let expected = h.iter().sum::<usize>() as f64 / h.len() as f64;
    h.iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn ranks_of_true_positions_are_uniform() {
    for (e, h) in rank_histograms(false).iter().enumerate() {
        let x2 = chi_square(h);
        eprintln!("event {e}: ranks {h:?}, chi-square {x2:.1}");
        assert!(
            x2 < CHI2_4_P001,
            "event {e}: ranks {h:?}, chi-square {x2:.1}"
        );
    }
}

#[test]
fn a_sampler_that_misses_the_posterior_fails() {
    let worst = rank_histograms(true)
        .iter()
        .map(|h| {
            eprintln!(
                "broken sampler: ranks {h:?}, chi-square {:.1}",
                chi_square(h)
            );
            chi_square(h)
        })
        .fold(0.0, f64::max);
    assert!(worst > CHI2_4_P001, "chi-square {worst:.1}");
}

/// Rank histograms of the true fraction of subtype 0 in 2-subtype cohorts whose
/// fractions are drawn from the prior (flat on the simplex) and whose sequences
/// are uniform, sampled by chains that are the cold copies of replica-exchange
/// ladders of powers `betas` (`[1]`: plain chains). `broken`: the chains start at
/// random fractions with tiny fraction steps instead of at the truth.
fn fraction_rank_histogram(betas: &[f64], broken: bool) -> Vec<usize> {
    const SUBJECTS: usize = 30;
    let events = EventSet::uniform(3, &[1.5], 4.0).unwrap();
    let mut draws = rng::stream(2027, 9, 0);
    let mut hist = vec![0usize; BINS];
    for r in 0..REPLICATES {
        let f0: f64 = draws.gen();
        let sequences = vec![
            Sequence::random(&events, &mut draws),
            Sequence::random(&events, &mut draws),
        ];
        let truth = Mixture::new(sequences.clone(), vec![f0, 1.0 - f0]).unwrap();
        let sim = simulate(&events, &truth, &spec(SUBJECTS, 0.0, 0.0), r as u64).unwrap();
        let lik = Arc::new(
            Likelihood::new(events.clone(), &sim.data, MissingConvention::Marginalise).unwrap(),
        );
        let mut steps = StepSizes::initial(2, events.n_events());
        steps.sigma_f = vec![0.25; 2];
        let start = if broken {
            steps.sigma_f = vec![1e-4; 2];
            let g: f64 = draws.gen();
            Mixture::new(sequences, vec![g, 1.0 - g]).unwrap()
        } else {
            truth.clone()
        };
        let mut chain = PausedChain::start(r, &start, 2027, events.n_events())
            .tempered(betas.to_vec(), 2027)
            .unwrap();
        chain.run(
            &events,
            |state| IncrementalLikelihood::new(Arc::clone(&lik), state),
            Round::new(ProposalMode::Exact, &steps, ITERATIONS),
        );
        let run = chain.run_so_far(ITERATIONS);
        let samples = run.trace.state_indices(THIN - 1, THIN);
        let below = samples
            .iter()
            .filter(|&&st| run.trace.fraction(st, 0) < f0)
            .count();
        // Samples still at the start (the truth) tie with it: ties at random.
        let equal = samples
            .iter()
            .filter(|&&st| run.trace.fraction(st, 0) == f0)
            .count();
        let rank = below + draws.gen_range(0..=equal);
        hist[rank * BINS / (samples.len() + 1)] += 1;
    }
    hist
}

#[test]
fn ranks_of_true_fractions_are_uniform_with_and_without_replica_exchange() {
    for betas in [vec![1.0], vec![1.0, 0.5, 0.25]] {
        let h = fraction_rank_histogram(&betas, false);
        let x2 = chi_square(&h);
        eprintln!("ladder {betas:?}: fraction ranks {h:?}, chi-square {x2:.1}");
        assert!(
            x2 < CHI2_4_P001,
            "ladder {betas:?}: ranks {h:?}, chi-square {x2:.1}"
        );
    }
    let h = fraction_rank_histogram(&[1.0], true);
    let x2 = chi_square(&h);
    eprintln!("broken sampler: fraction ranks {h:?}, chi-square {x2:.1}");
    assert!(
        x2 > CHI2_4_P001,
        "a sampler stuck at random fractions must fail: {h:?}"
    );
}
