//! Quantiles of sorted samples (the report's fraction intervals, suggest-model's
//! percentiles).

/// The `p`-quantile (0 to 1) of `sorted` (ascending, finite) by linear
/// interpolation between order statistics (numpy's default); NaN when empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.5), 2.5);
        // numpy.percentile([1, 2, 3, 4], 95) = 3.85
        assert!((quantile(&v, 0.95) - 3.85).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
