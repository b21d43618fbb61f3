//! Every validation error of the model crate, with its message text.

use ndarray::array;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::*;

/// The error of `r`, which must have failed.
fn err<T: std::fmt::Debug>(r: Result<T>) -> ModelError {
    r.expect_err("expected a validation error")
}

/// Two biomarkers: events 0 = (b0, 1), 1 = (b1, 1), 2 = (b0, 2).
fn small_events() -> EventSet {
    EventSet::new(&[vec![1.0, 2.0], vec![1.0]], &[5.0, 5.0]).unwrap()
}

// ----------------------------------------------------------------- event sets

#[test]
fn thresholds_not_increasing() {
    let e = err(EventSet::new(
        &[vec![1.0, 2.0], vec![2.0, 1.0]],
        &[5.0, 5.0],
    ));
    assert_eq!(
        e,
        ModelError::ThresholdsNotIncreasing {
            biomarker: 1,
            values: vec![2.0, 1.0]
        }
    );
    assert_eq!(
        e.to_string(),
        "thresholds of biomarker 1 are not strictly increasing: [2.0, 1.0]"
    );
    // Equal thresholds are not strictly increasing either.
    let e = err(EventSet::new(&[vec![1.5, 1.5]], &[5.0]));
    assert_eq!(
        e.to_string(),
        "thresholds of biomarker 0 are not strictly increasing: [1.5, 1.5]"
    );
}

#[test]
fn non_finite_thresholds() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = err(EventSet::new(&[vec![1.0], vec![1.0, bad]], &[5.0, 5.0]));
        assert_eq!(
            e,
            ModelError::NonFiniteModel {
                what: "z_vals",
                biomarker: 1
            }
        );
        assert_eq!(e.to_string(), "non-finite value in z_vals for biomarker 1");
    }
}

#[test]
fn non_finite_z_max() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = err(EventSet::new(
            &[vec![1.0], vec![1.0], vec![1.0]],
            &[5.0, 5.0, bad],
        ));
        assert_eq!(
            e,
            ModelError::NonFiniteModel {
                what: "z_max",
                biomarker: 2
            }
        );
        assert_eq!(e.to_string(), "non-finite value in z_max for biomarker 2");
    }
}

#[test]
fn negative_threshold() {
    let e = err(EventSet::new(
        &[vec![1.0, 2.0], vec![-1.5, 2.0]],
        &[5.0, 5.0],
    ));
    assert_eq!(
        e,
        ModelError::NegativeThreshold {
            biomarker: 1,
            value: -1.5
        }
    );
    assert_eq!(
        e.to_string(),
        "threshold -1.5 of biomarker 1 is negative: thresholds must be positive (0 means no event)"
    );
}

#[test]
fn no_events() {
    let e = err(EventSet::new(&[vec![0.0, 0.0], vec![0.0]], &[5.0, 5.0]));
    assert_eq!(e, ModelError::NoEvents);
    assert_eq!(
        e.to_string(),
        "the model has no events: every threshold in z_vals is 0"
    );
    let e = err(EventSet::new(&[vec![], vec![]], &[5.0, 5.0]));
    assert_eq!(e, ModelError::NoEvents);
}

#[test]
fn no_biomarkers() {
    let e = err(EventSet::new(&[], &[]));
    assert_eq!(e.to_string(), "shape mismatch: z_vals has no biomarkers");
}

#[test]
fn z_vals_and_z_max_lengths_differ() {
    let e = err(EventSet::new(&[vec![1.0], vec![1.0]], &[5.0, 5.0, 5.0]));
    assert!(matches!(e, ModelError::Shape(_)));
    assert_eq!(
        e.to_string(),
        "shape mismatch: z_vals has 2 biomarkers but z_max has 3 values"
    );
    let e = err(EventSet::uniform(0, &[1.0], 5.0));
    assert_eq!(e.to_string(), "shape mismatch: z_vals has no biomarkers");
}

#[test]
fn too_many_events() {
    let n = u16::MAX as usize + 1;
    let row: Vec<f64> = (1..=n).map(|i| i as f64).collect();
    let e = err(EventSet::new(&[row], &[1e6]));
    assert_eq!(e, ModelError::TooManyEvents(n));
    assert_eq!(
        e.to_string(),
        "the model has 65536 events; at most 65535 are supported"
    );
    // The largest supported size is accepted.
    let row: Vec<f64> = (1..n).map(|i| i as f64).collect();
    assert_eq!(
        EventSet::new(&[row], &[1e6]).unwrap().n_events(),
        u16::MAX as usize
    );
}

// ----------------------------------------------------------------- data

#[test]
fn infinite_value_names_row_and_column() {
    let e = err(Dataset::new(array![
        [0.0, 1.0, 2.0],
        [0.5, f64::NAN, 1.0],
        [1.0, 2.0, f64::NEG_INFINITY]
    ]));
    assert_eq!(e, ModelError::InfiniteValue { row: 2, column: 2 });
    assert_eq!(e.to_string(), "infinite value at row 2, column 2");
    let e = err(Dataset::from_rows(&[
        vec![0.0, 1.0],
        vec![f64::INFINITY, 1.0],
    ]));
    assert_eq!(e.to_string(), "infinite value at row 1, column 0");
}

#[test]
fn all_missing_subject_names_row() {
    let e = err(Dataset::new(array![
        [0.0, 1.0],
        [1.0, f64::NAN],
        [f64::NAN, f64::NAN]
    ]));
    assert_eq!(e, ModelError::AllMissing { row: 2 });
    assert_eq!(
        e.to_string(),
        "subject at row 2 has every biomarker missing"
    );
    // `select` validates too.
    let d = Dataset::new(array![[f64::NAN, 1.0], [2.0, 1.0]]).unwrap();
    assert!(d.select(&[1, 0]).is_ok());
}

#[test]
fn no_subjects() {
    let e = err(Dataset::new(ndarray::Array2::zeros((0, 3))));
    assert_eq!(e, ModelError::NoSubjects);
    assert_eq!(e.to_string(), "the data has no subjects");
    assert_eq!(
        err(Dataset::from_rows(&[])).to_string(),
        "the data has no subjects"
    );
    let d = Dataset::new(array![[1.0, 2.0]]).unwrap();
    assert_eq!(err(d.select(&[])).to_string(), "the data has no subjects");
}

#[test]
fn ragged_rows() {
    let e = err(Dataset::from_rows(&[
        vec![0.0, 1.0],
        vec![0.0, 1.0],
        vec![1.0],
    ]));
    assert!(matches!(e, ModelError::Shape(_)));
    assert_eq!(
        e.to_string(),
        "shape mismatch: row 2 has 1 values, row 0 has 2"
    );
}

#[test]
fn biomarker_count_mismatch() {
    let data = Dataset::new(array![[0.0, 1.0, 2.0]]).unwrap();
    for conv in [MissingConvention::Marginalise, MissingConvention::Reference] {
        let e = err(Likelihood::new(small_events(), &data, conv));
        assert_eq!(e, ModelError::BiomarkerCount { data: 3, model: 2 });
        assert_eq!(
            e.to_string(),
            "the data has 3 biomarkers but the model has 2"
        );
    }
}

// ----------------------------------------------------------------- sequences

#[test]
fn sequence_wrong_length() {
    let ev = small_events();
    let e = err(Sequence::new(&ev, &[0, 1]));
    assert!(matches!(e, ModelError::InvalidSequence(_)));
    assert_eq!(
        e.to_string(),
        "invalid sequence: has 2 events, the model has 3"
    );
    assert_eq!(
        err(Sequence::new(&ev, &[0, 1, 2, 3])).to_string(),
        "invalid sequence: has 4 events, the model has 3"
    );
}

#[test]
fn sequence_duplicate_event() {
    let e = err(Sequence::new(&small_events(), &[0, 1, 0]));
    assert_eq!(e.to_string(), "invalid sequence: event 0 appears twice");
}

#[test]
fn sequence_event_out_of_range() {
    let e = err(Sequence::new(&small_events(), &[0, 3, 1]));
    assert_eq!(
        e.to_string(),
        "invalid sequence: event index 3 out of range 0..3"
    );
}

#[test]
fn sequence_biomarker_order_violated() {
    // Event 2 (b0, z = 2) before event 0 (b0, z = 1).
    let e = err(Sequence::new(&small_events(), &[2, 1, 0]));
    assert_eq!(
        e.to_string(),
        "invalid sequence: event 2 (biomarker 0, z = 2) comes before event 0 (z = 1)"
    );
}

#[test]
fn mixture_sequences_of_different_lengths() {
    let a = Sequence::new(&small_events(), &[0, 1, 2]).unwrap();
    let other = EventSet::uniform(1, &[1.0], 3.0).unwrap();
    let b = Sequence::new(&other, &[0]).unwrap();
    let e = err(Mixture::new(vec![a, b], vec![0.5, 0.5]));
    assert_eq!(
        e.to_string(),
        "invalid sequence: sequences differ in length"
    );
}

// ----------------------------------------------------------------- fractions

fn two_sequences() -> Vec<Sequence> {
    let ev = small_events();
    vec![
        Sequence::new(&ev, &[0, 1, 2]).unwrap(),
        Sequence::new(&ev, &[1, 0, 2]).unwrap(),
    ]
}

#[test]
fn fractions_wrong_length() {
    let e = err(Mixture::new(two_sequences(), vec![1.0]));
    assert!(matches!(e, ModelError::InvalidFractions(_)));
    assert_eq!(
        e.to_string(),
        "invalid fractions: 1 fractions for 2 subtypes"
    );
    let e = err(Mixture::new(two_sequences(), vec![0.2, 0.3, 0.5]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: 3 fractions for 2 subtypes"
    );
}

#[test]
fn fractions_for_no_subtypes() {
    let e = err(Mixture::new(vec![], vec![]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: a model needs at least one subtype"
    );
}

#[test]
fn fractions_negative() {
    let e = err(Mixture::new(two_sequences(), vec![1.5, -0.5]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fraction -0.5 is negative or not finite"
    );
}

#[test]
fn fractions_not_finite() {
    let e = err(Mixture::new(two_sequences(), vec![f64::NAN, 1.0]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fraction NaN is negative or not finite"
    );
    let e = err(Mixture::new(two_sequences(), vec![0.5, f64::INFINITY]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fraction inf is negative or not finite"
    );
}

#[test]
fn fractions_not_summing_to_one() {
    let e = err(Mixture::new(two_sequences(), vec![0.5, 0.6]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fractions sum to 1.1, not 1"
    );
    let e = err(Mixture::new(two_sequences(), vec![0.25, 0.25]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fractions sum to 0.5, not 1"
    );
    // Within the tolerance is accepted; just outside is not.
    assert!(Mixture::new(two_sequences(), vec![0.5, 0.5 + 0.9e-6]).is_ok());
    assert!(Mixture::new(two_sequences(), vec![0.5, 0.5 + 1.1e-6]).is_err());
}

#[test]
fn set_fractions_validates_and_keeps_the_old_ones() {
    let mut m = Mixture::new(two_sequences(), vec![0.4, 0.6]).unwrap();
    let e = err(m.set_fractions(vec![0.7, 0.7]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: fractions sum to 1.4, not 1"
    );
    assert_eq!(m.fractions(), &[0.4, 0.6]);
    let e = err(m.set_fractions(vec![1.0]));
    assert_eq!(
        e.to_string(),
        "invalid fractions: 1 fractions for 2 subtypes"
    );
    assert_eq!(m.fractions(), &[0.4, 0.6]);
}

// ----------------------------------------------------------------- moves

#[test]
fn disallowed_move() {
    let ev = small_events();
    // Order 0, 1, 2: event 2 (b0, z = 2) must stay after event 0 at position 0.
    let mut s = Sequence::new(&ev, &[0, 1, 2]).unwrap();
    let before = s.clone();
    let e = err(s.move_event(&ev, 2, 0));
    assert_eq!(
        e,
        ModelError::MoveNotAllowed {
            event: 2,
            position: 0,
            low: 1,
            high: 2
        }
    );
    assert_eq!(
        e.to_string(),
        "event 2 may not move to position 0; allowed 1..=2"
    );
    assert_eq!(s, before);
    // Event 0 must stay before event 2 at position 2.
    let e = err(s.move_event(&ev, 0, 2));
    assert_eq!(
        e.to_string(),
        "event 0 may not move to position 2; allowed 0..=1"
    );
    // Past the end.
    let e = err(s.move_event(&ev, 1, 3));
    assert_eq!(
        e.to_string(),
        "event 1 may not move to position 3; allowed 0..=2"
    );
    assert_eq!(s, before);
}

// ----------------------------------------------------------------- simulator

#[test]
fn simulate_rejects_bad_specs() {
    let ev = small_events();
    let truth = Mixture::single(Sequence::random(&ev, &mut Pcg64::seed_from_u64(0)));
    let with = |f: fn(&mut SimulationSpec)| {
        let mut spec = SimulationSpec::default();
        f(&mut spec);
        spec
    };
    let cases: [(SimulationSpec, &str); 4] = [
        (with(|s| s.n_subjects = 0), "the data has no subjects"),
        (
            with(|s| s.missing_fraction = 1.0),
            "shape mismatch: missing_fraction = 1 must be in [0, 1)",
        ),
        (
            with(|s| s.control_fraction = -0.1),
            "shape mismatch: control_fraction = -0.1 must be in [0, 1)",
        ),
        (
            with(|s| s.missing_fraction = f64::NAN),
            "shape mismatch: missing_fraction = NaN must be in [0, 1)",
        ),
    ];
    for (spec, message) in &cases {
        let e = err(simulate(&ev, &truth, spec, 1));
        assert_eq!(e.to_string(), *message);
    }
}

// ----------------------------------------------------------------- parsing

#[test]
fn unknown_missing_convention() {
    assert_eq!(
        "reference".parse::<MissingConvention>(),
        Ok(MissingConvention::Reference)
    );
    assert_eq!(
        "marginalize".parse::<MissingConvention>(),
        Ok(MissingConvention::Marginalise)
    );
    assert_eq!(
        "drop".parse::<MissingConvention>(),
        Err(
            "unknown missing-value convention 'drop' (expected marginalise or reference)"
                .to_string()
        )
    );
}

// ------------------------------------------------------- values out of range

/// Values whose squares overflow the likelihood are rejected by position, never
/// evaluated to NaN.
#[test]
fn data_values_beyond_1e150_are_rejected() {
    let e = Dataset::from_rows(&[vec![1.0, 2.0], vec![0.5, -1.4e155]]).unwrap_err();
    assert_eq!(
        e,
        ModelError::ValueTooLarge {
            row: 1,
            column: 1,
            value: -1.4e155
        }
    );
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    // The bound itself is fine, and the likelihood stays finite there.
    let d = Dataset::from_rows(&[vec![1e150, 2.0], vec![0.5, 1.0]]).unwrap();
    let ev = EventSet::uniform(2, &[1.0, 2.0], 5.0).unwrap();
    let lik = Likelihood::new(ev.clone(), &d, MissingConvention::Marginalise).unwrap();
    let seq = Sequence::new(&ev, &[0, 1, 2, 3]).unwrap();
    let mix = Mixture::new(vec![seq], vec![1.0]).unwrap();
    assert!(lik.loglike(&mix).is_finite());
}

#[test]
fn z_max_must_be_positive_and_model_values_bounded() {
    for bad in [0.0, -1.0] {
        let e = EventSet::new(&[vec![1.0, 2.0]], &[bad]).unwrap_err();
        assert_eq!(
            e,
            ModelError::ModelValueOutOfRange {
                what: "z_max",
                biomarker: 0,
                value: bad
            },
            "{e}"
        );
    }
    let e = EventSet::new(&[vec![1.0], vec![1.0, 1e151]], &[5.0, 2e151]).unwrap_err();
    assert!(
        matches!(e, ModelError::ModelValueOutOfRange { biomarker: 1, .. }),
        "{e}"
    );
}
