//! Comparing two evaluations of the same values (GPU against CPU, f32 against f64).

/// The largest relative difference `|got - want| / |want|` over pairs of values.
pub fn max_relative_difference(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "as many values on both sides");
    got.iter()
        .zip(want)
        .map(|(g, w)| ((g - w) / w).abs())
        .fold(0.0, f64::max)
}
