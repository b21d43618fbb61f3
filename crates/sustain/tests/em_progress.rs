//! E-M's job counter, as displays read it: once E-M ends, every subtype count's
//! counter has done as many jobs as its target said (start points of one subtype;
//! per cluster, split start points and as many E-Ms on all data).

use std::sync::{Arc, Mutex};
use sustain::prelude::*;
use sustain_sampler::progress::ChainProgress;
use sustain_testkit::{self as testkit, spec};

#[test]
fn em_job_counters_reach_their_targets() {
    let events = EventSet::uniform(3, &[1.0, 2.0], 4.0).unwrap();
    let w = testkit::cohort(events, &[0.5, 0.3, 0.2], 5, &spec(120, 0.1, 0.0), 7);
    let names: Vec<String> = (0..3).map(|b| format!("b{b}")).collect();
    let input = FitInput {
        events: &w.events,
        biomarkers: &names,
        data: &w.data,
    };
    let config = FitConfig {
        n_startpoints: 3,
        max_subtypes: 3,
        n_iterations: 200,
        n_chains: 1,
        tuning_passes: 1,
        tuning_iterations: 100,
        seed: 3,
        threads: 2,
        ..FitConfig::default()
    };
    let seen: Mutex<Vec<(usize, Arc<ChainProgress>)>> = Mutex::new(Vec::new());
    let on_progress = |p: Progress| {
        if let Progress::EmJobs {
            n_subtypes,
            progress,
        } = p
        {
            seen.lock().unwrap().push((n_subtypes, progress));
        }
    };
    Fit::zscore(&input, config)
        .on_progress(&on_progress)
        .run()
        .unwrap();
    let seen = seen.into_inner().unwrap();
    let counts: Vec<usize> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(counts, [1, 2, 3]);
    for (k, p) in &seen {
        assert!(p.finished(), "{k} subtype(s): counter not closed");
        // One subtype: 3 start points; k subtypes: every one of the k - 1 clusters
        // (each holds subjects here) split from 3 start points, then 3 E-Ms on all data.
        let expected = if *k == 1 { 3 } else { 2 * (k - 1) * 3 } as u64;
        assert_eq!(
            (p.done(0), p.target()),
            (expected, expected),
            "{k} subtype(s)"
        );
    }
}
