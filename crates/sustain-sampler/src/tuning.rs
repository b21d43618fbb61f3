//! Step-size tuning (spec section 5).

use crate::chain::StepSizes;
use crate::trace::Trace;

/// Floor of the sequence step size.
pub const MIN_SIGMA_SEQ: f64 = 0.01;
/// Floor of the fraction step size (not in the reference, which can freeze `f`).
pub const MIN_SIGMA_F: f64 = 1e-4;

/// Step sizes from a tuning run: the sample standard deviation of each event's
/// position per subtype (floored at 0.01) and of each fraction.
pub fn step_sizes_from_trace(trace: &Trace) -> StepSizes {
    let (ns, ne) = (trace.n_subtypes, trace.n_events);
    let states = trace.state_indices(0, 1);
    let n = states.len() as f64;
    let sd = |values: &mut dyn Iterator<Item = f64>| {
        let (mut s1, mut s2) = (0.0, 0.0);
        for v in values {
            s1 += v;
            s2 += v * v;
        }
        if n < 2.0 {
            return 0.0;
        }
        let mean = s1 / n;
        ((s2 - n * mean * mean) / (n - 1.0)).max(0.0).sqrt()
    };
    let sigma_seq = (0..ns)
        .map(|s| {
            (0..ne)
                .map(|e| {
                    sd(&mut states.iter().map(|&st| trace.position(st, s, e) as f64))
                        .max(MIN_SIGMA_SEQ)
                })
                .collect()
        })
        .collect();
    // Floored so a fraction that never moved during tuning can still move.
    let sigma_f = (0..ns)
        .map(|s| sd(&mut states.iter().map(|&st| trace.fraction(st, s))).max(MIN_SIGMA_F))
        .collect();
    StepSizes { sigma_seq, sigma_f }
}
