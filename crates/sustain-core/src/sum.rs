//! Compensated summation, shared by every model and backend so that totals split
//! into blocks add up to the same bits wherever they are computed.

/// Neumaier's compensated sum, in order.
pub fn neumaier_sum(values: &[f64]) -> f64 {
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    for &v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            comp += (sum - t) + v;
        } else {
            comp += (v - t) + sum;
        }
        sum = t;
    }
    sum + comp
}
