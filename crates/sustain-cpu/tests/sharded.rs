//! A chain split over threads by subjects gives the same bits as one state: same
//! traces (every log-likelihood, sequence and fraction), whatever the shard count,
//! including data that drives the incremental state onto its exact fallbacks.

use rand::{Rng, SeedableRng};
use std::sync::Arc;
use sustain_cpu::sharded::shard_ranges;
use sustain_cpu::{run_chains, ChainSettings, ShardedIncremental};
use sustain_model::*;
use sustain_sampler::{run_chain, ChainEvaluator, ChainRun, ProposalMode, Round, StepSizes};
use sustain_testkit::{self as testkit, equal_fractions, random_mixture, spec};

/// A simulated cohort of `n` subjects; `outliers` of them get huge values on every
/// biomarker (fragile groups, rebuilt groups, subjects outside the incremental
/// range).
fn cohort(n: usize, subtypes: usize, outliers: usize, seed: u64) -> (Arc<Likelihood>, Mixture) {
    let events = EventSet::uniform(6, &[1.0, 2.0, 3.0], 5.0).unwrap();
    let fractions = equal_fractions(subtypes);
    let w = testkit::cohort(events, &fractions, seed, &spec(n, 0.1, 0.2), seed);
    let (events, mut rng) = (w.events, w.rng);
    let mut values = w.data.values().to_owned();
    for i in 0..outliers {
        let m = (i * 37 + 5) % n;
        for b in 0..events.n_biomarkers() {
            values[[m, b]] = if (i + b) % 2 == 0 { 80.0 } else { -60.0 };
        }
    }
    let data = Dataset::new(values).unwrap();
    let lik = Arc::new(Likelihood::new(events, &data, MissingConvention::Marginalise).unwrap());
    let start = random_mixture(lik.events(), &fractions, &mut rng);
    (lik, start)
}

fn chain<E: ChainEvaluator>(lik: &Likelihood, start: &Mixture, evaluator: E) -> ChainRun {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
    let steps = StepSizes::initial(start.n_subtypes(), lik.events().n_events());
    let round = Round::new(ProposalMode::Exact, &steps, 2000);
    run_chain(0, lik.events(), evaluator, start, round, &mut rng)
}

#[test]
fn split_chains_match_one_state_to_the_bit() {
    for (n, subtypes, outliers) in [(300, 1, 0), (300, 3, 0), (517, 2, 6), (130, 4, 3)] {
        let (lik, start) = cohort(n, subtypes, outliers, n as u64);
        let whole = chain(
            &lik,
            &start,
            IncrementalLikelihood::new(Arc::clone(&lik), &start),
        );
        // The chain must move, or the comparison shows little.
        assert!(whole.acceptance > 0.01, "acceptance {}", whole.acceptance);
        for shards in [1, 2, 3, 8] {
            let split = ShardedIncremental::new(Arc::clone(&lik), &start, shards);
            let used = split.n_shards();
            assert_eq!(used, shards.min(n.div_ceil(TOTAL_BLOCK)));
            let run = chain(&lik, &start, split);
            assert!(
                run.trace == whole.trace,
                "{n} subjects, {subtypes} subtypes, {outliers} outliers: {used} shards differ"
            );
        }
    }
}

#[test]
fn split_proposals_match_exact_likelihood() {
    // Outliers far outside the incremental range: big moves leave it (the split
    // state falls back to the exact log-likelihood and rebuilds every shard on
    // accept, as one state does); small moves in between are computed from the
    // states. (A shard that missed a rebuild differs only in rounding, which takes
    // the longer chains of the test above to show.)
    let (lik, start) = cohort(260, 2, 8, 3);
    let mut split = ShardedIncremental::new(Arc::clone(&lik), &start, 3);
    let mut whole = IncrementalLikelihood::new(Arc::clone(&lik), &start);
    let ll0 = split.reset(&start);
    assert_eq!(ll0, ChainEvaluator::reset(&mut whole, &start));
    assert!((ll0 - lik.loglike(&start)).abs() < 1e-9 * ll0.abs());
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    let mut current = start.clone();
    let mut out_of_range_accepts = 0;
    for i in 0..120 {
        let mut next = current.clone();
        let s = i % next.n_subtypes();
        if i % 4 == 0 {
            next.sequences_mut()[s] = Sequence::random(lik.events(), &mut rng);
        } else {
            let e = rng.gen_range(0..lik.events().n_events());
            let allowed = next.sequences()[s].allowed_positions(lik.events(), e);
            let to = rng.gen_range(allowed);
            next.sequences_mut()[s]
                .move_event(lik.events(), e, to)
                .unwrap();
        }
        let mut changed = vec![false; next.n_subtypes()];
        changed[s] = true;
        let (a, b) = (
            split.propose(&next, &changed),
            ChainEvaluator::propose(&mut whole, &next, &changed),
        );
        assert_eq!(a, b, "proposal {i}");
        assert!(
            (a - lik.loglike(&next)).abs() < 1e-8 * a.abs(),
            "proposal {i}"
        );
        if i % 3 == 2 {
            split.reject();
            ChainEvaluator::reject(&mut whole);
        } else {
            // Whether `whole` fell back: its log-likelihood is then the exact one.
            if a == lik.loglike(&next) && i % 4 == 0 {
                out_of_range_accepts += 1;
            }
            split.accept();
            ChainEvaluator::accept(&mut whole);
            current = next;
        }
    }
    assert!(out_of_range_accepts > 0, "no accepted move left the range");
}

#[test]
fn run_chains_results_do_not_depend_on_chain_threads() {
    // 600 subjects: 10 blocks, enough for 2 useful shards.
    let (lik, start) = cohort(600, 3, 2, 21);
    assert_eq!(sustain_cpu::sharded::useful_shards(600, 2, TOTAL_BLOCK), 2);
    let steps = StepSizes::initial(3, lik.events().n_events());
    let runs = |threads: usize, chain_threads: usize| {
        let settings = ChainSettings {
            mode: ProposalMode::Exact,
            steps: steps.clone(),
            n_iterations: 800,
            seed: 4,
            threads,
            chain_threads,
        };
        run_chains(&lik, &start, &settings, 0..2)
            .into_iter()
            .map(|r| r.trace)
            .collect::<Vec<_>>()
    };
    let one = runs(1, 1);
    assert_eq!(one, runs(2, 2));
    assert_eq!(one, runs(4, 2));
    assert_eq!(one, runs(5, 4));
}

#[test]
fn small_cohorts_stay_on_one_thread() {
    use sustain_cpu::sharded::{useful_shards, MIN_BLOCKS_PER_SHARD};
    assert_eq!(useful_shards(1, 8, TOTAL_BLOCK), 1);
    assert_eq!(
        useful_shards(MIN_BLOCKS_PER_SHARD * TOTAL_BLOCK, 8, TOTAL_BLOCK),
        1
    );
    assert_eq!(
        useful_shards(2 * MIN_BLOCKS_PER_SHARD * TOTAL_BLOCK, 8, TOTAL_BLOCK),
        2
    );
    assert_eq!(useful_shards(100_000, 8, TOTAL_BLOCK), 8);
    assert_eq!(useful_shards(100_000, 0, TOTAL_BLOCK), 1);
}

#[test]
fn shard_ranges_cover_the_subjects_on_block_boundaries() {
    for n in [1, 63, 64, 65, 500, 1000, 4097] {
        for shards in 1..10 {
            let r = shard_ranges(n, shards, TOTAL_BLOCK);
            assert!(!r.is_empty() && r.len() <= shards);
            assert_eq!(r.len(), shards.min(n.div_ceil(TOTAL_BLOCK)));
            assert_eq!(r[0].start, 0);
            assert_eq!(r.last().unwrap().end, n);
            for w in r.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            for x in &r {
                assert!(x.start < x.end && x.start % TOTAL_BLOCK == 0);
            }
        }
    }
}
