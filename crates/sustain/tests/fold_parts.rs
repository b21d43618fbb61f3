//! One subtype count of a fold, run alone, equals that count of the whole fold, and
//! the parts of a fold assemble into exactly the fold's result.

use sustain::cv::{assemble_fold, make_folds, run_fold, run_fold_part, CvRun, FoldPart};
use sustain::prelude::*;
use sustain_testkit::{cohort, spec};

struct Case {
    events: EventSet,
    names: Vec<String>,
    data: Dataset,
    config: FitConfig,
}

impl Case {
    fn input(&self) -> FitInput<'_> {
        FitInput {
            events: &self.events,
            biomarkers: &self.names,
            data: &self.data,
        }
    }
}

fn case() -> Case {
    let events = EventSet::uniform(4, &[1.0, 2.0], 4.0).unwrap();
    let w = cohort(events, &[0.6, 0.4], 7, &spec(120, 0.1, 0.1), 5);
    let config = FitConfig {
        n_startpoints: 2,
        max_subtypes: 3,
        n_iterations: 300,
        tuning_iterations: 100,
        tuning_passes: 1,
        n_chains: 2,
        seed: 11,
        threads: 2,
        ..FitConfig::default()
    };
    Case {
        names: (0..4).map(|b| format!("b{b}")).collect(),
        events: w.events,
        data: w.data,
        config,
    }
}

#[test]
fn subtype_count_alone_equals_the_whole_fit() {
    let c = case();
    let input = c.input();
    let whole = Fit::zscore(&input, c.config.clone()).run().unwrap();
    for k in [1, 3] {
        let alone = Fit::zscore(&input, c.config.clone()).run_subtype_count(k);
        let alone = alone.unwrap();
        let w = &whole.models[k - 1];
        // Every chain's trace (the runs' wall times differ, so not the runs).
        assert_eq!(alone.samples.chains.len(), w.samples.chains.len());
        for (a, b) in alone.samples.chains.iter().zip(&w.samples.chains) {
            assert!(a.trace == b.trace, "k = {k}: chain {} differs", a.index);
        }
        assert_eq!(alone.ml_sequences, w.ml_sequences);
        assert_eq!(alone.ml_loglike.to_bits(), w.ml_loglike.to_bits());
        assert_eq!(alone.em_loglike.to_bits(), w.em_loglike.to_bits());
    }
    let err = Fit::zscore(&input, c.config.clone()).run_subtype_count(4);
    let err = err.unwrap_err();
    assert!(err.to_string().contains("out of range 1..=3"), "{err}");
}

#[test]
fn fold_parts_assemble_into_the_fold() {
    let c = case();
    let input = c.input();
    let folds = make_folds(c.data.n_subjects(), 3, None, c.config.seed).unwrap();
    let cv = CvRun {
        config: &c.config,
        folds: &folds,
        fingerprint: "fp",
    };
    let whole = run_fold(&input, &cv, 1, &|_| {}).unwrap();
    // Parts in any order.
    let parts: Vec<FoldPart> = [3, 1, 2]
        .iter()
        .map(|&k| run_fold_part(&input, &cv, 1, k, &|_| {}).unwrap())
        .collect();
    let assembled = assemble_fold(&parts).unwrap();
    assert_eq!(assembled, whole);
    for (a, b) in assembled.loglike.iter().zip(&whole.loglike) {
        assert_eq!(a.to_bits(), b.to_bits());
    }

    // A missing part is named; a part of another fold or run is refused.
    let err = assemble_fold(&[parts[0].clone(), parts[2].clone()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing subtype count(s) 1 of 1..=3"),
        "{err}"
    );
    let mut other = parts[1].clone();
    other.fingerprint = "other".into();
    let err = assemble_fold(&[parts[0].clone(), other, parts[2].clone()]).unwrap_err();
    assert!(err.to_string().contains("different run or fold"), "{err}");
    let mut other = parts[1].clone();
    other.fold = 0;
    assert!(assemble_fold(&[parts[0].clone(), other]).is_err());
}
