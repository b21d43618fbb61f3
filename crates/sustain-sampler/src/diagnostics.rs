//! MCMC convergence diagnostics: rank-normalised split R-hat, bulk and tail
//! effective sample size (ESS).
//!
//! The computations follow Vehtari, Gelman, Simpson, Carpenter and Bürkner
//! (2021), "Rank-normalization, folding, and localization: an improved
//! R-hat for assessing convergence of MCMC", *Bayesian Analysis* 16(2), and
//! reproduce, step by step, the implementation in ArviZ (`arviz.rhat`,
//! `arviz.ess`; checked against ArviZ 0.23.4), which itself follows Stan:
//!
//! * every chain is split in two halves; when a chain has an odd number of
//!   draws, the middle draw is dropped;
//! * rank normalisation pools all (split) draws, gives tied values their
//!   average rank `r` (1-based) and maps it to
//!   `z = Phi^-1((r - 3/8) / (S + 1/4))`, `S` being the number of pooled
//!   draws (Blom's offset);
//! * the autocovariances of every chain are computed with an FFT and
//!   combined across chains as in Stan,
//!   `rho_t = 1 - (W - mean_chains(acov_t)) / var_plus`, then truncated
//!   with Geyer's initial positive sequence and made monotone with Geyer's
//!   initial monotone sequence; `tau = max(tau, 1 / log10(N))` and
//!   `ESS = N / tau`, `N` being the total number of draws.
//!
//! # Input and edge cases
//!
//! Every function takes the draws of one scalar quantity as a slice of
//! chains (`chains[c][i]` is draw `i` of chain `c`). All chains should have
//! the same length; if they do not, every chain is truncated to the length
//! of the shortest one (its leading draws are kept). One chain is enough:
//! it is split into two halves like any other chain.
//!
//! The functions return `f64::NAN` (and never panic) when
//!
//! * there are no chains, or fewer than 4 draws per chain;
//! * any draw is NaN;
//! * the quantity is constant: every draw of every chain is the same value
//!   (R-hat and ESS are then undefined).
//!
//! When every chain is constant but the chains hold different values, the
//! within-chain variance is zero while the between-chain variance is not:
//! [`rhat`] and [`split_rhat_basic`] return `f64::INFINITY` (as ArviZ does).
//! The ESS values in that case are finite and small (again as in ArviZ).

mod runs;
pub use runs::{rhat_of_runs, Runs};

/// Summary of one scalar quantity over several chains.
///
/// Each field holds what the function of the same name returns, so a field
/// is `f64::NAN` in the cases documented at the module level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Rank-normalised split R-hat, see [`rhat`].
    pub rhat: f64,
    /// Bulk effective sample size, see [`ess_bulk`].
    pub ess_bulk: f64,
    /// Tail effective sample size, see [`ess_tail`].
    pub ess_tail: f64,
}

/// Rank-normalised split R-hat: max of bulk R-hat and folded (|x - median|) R-hat, as arviz.rhat(method="rank").
///
/// The chains are split in halves, the pooled split draws are
/// rank-normalised and the classic R-hat `sqrt((B/W + n - 1) / n)` of the
/// normalised values is the bulk R-hat; the same is done with the draws
/// folded around their pooled median, `|x - median|`, for the tail R-hat.
/// The larger of the two is returned.
///
/// Returns `f64::NAN` for fewer than 4 draws per chain, NaN draws or a
/// constant quantity, and `f64::INFINITY` when each chain is constant but
/// the chains differ (see the module documentation). Unlike ArviZ, which
/// returns NaN for fewer than two chains, a single chain is accepted: its
/// two halves are compared.
pub fn rhat(chains: &[&[f64]]) -> f64 {
    let Some(draws) = Draws::new(chains) else {
        return f64::NAN;
    };
    rhat_rank_of(&Ranked::of(draws.split()))
}

/// Bulk ESS (rank-normalised split chains), as arviz.ess(method="bulk").
///
/// The ESS of the rank-normalised split chains. Returns `f64::NAN` for fewer
/// than 4 draws per chain, NaN draws or a constant quantity (ArviZ returns
/// the number of draws for a constant quantity).
pub fn ess_bulk(chains: &[&[f64]]) -> f64 {
    let Some(draws) = Draws::new(chains) else {
        return f64::NAN;
    };
    let split = draws.split();
    let fft = Fft::for_draws(split.n_draws);
    ess_bulk_of(&Ranked::of(split), &fft)
}

/// Tail ESS: min of the ESS of the 5% and 95% quantile indicators, as arviz.ess(method="tail").
///
/// For `p` in {0.05, 0.95}, the quantile `q_p` of all draws pooled is
/// computed with linear interpolation (R's type 7, as ArviZ does), and the
/// ESS of the split chains of the indicator `x <= q_p` is computed; the
/// smaller of the two is returned. If an indicator is constant (for example
/// when more than 5% of the draws equal the maximum), its ESS counts as the
/// total number of draws, as in ArviZ.
///
/// Returns `f64::NAN` for fewer than 4 draws per chain, NaN draws or a
/// constant quantity (ArviZ returns the number of draws for a constant
/// quantity).
pub fn ess_tail(chains: &[&[f64]]) -> f64 {
    let Some(draws) = Draws::new(chains) else {
        return f64::NAN;
    };
    let fft = Fft::for_draws(draws.n_draws / 2);
    ess_tail_of(&draws, None, &fft)
}

/// R-hat, bulk ESS and tail ESS of one scalar quantity at once.
///
/// Equivalent to calling [`rhat`], [`ess_bulk`] and [`ess_tail`], but the
/// input is validated and split only once.
pub fn summarize(chains: &[&[f64]]) -> Summary {
    let Some(draws) = Draws::new(chains) else {
        return Summary {
            rhat: f64::NAN,
            ess_bulk: f64::NAN,
            ess_tail: f64::NAN,
        };
    };
    // One plan, one sort of the split draws and one rank normalisation
    // serve all three values.
    let fft = Fft::for_draws(draws.n_draws / 2);
    let ranked = Ranked::of(draws.split());
    // The split draws hold every draw when chains have an even length,
    // so their sorted values are the pooled draws' sorted values.
    let sorted_draws = (draws.n_draws % 2 == 0).then_some(ranked.sorted.as_slice());
    Summary {
        rhat: rhat_rank_of(&ranked),
        ess_bulk: ess_bulk_of(&ranked, &fft),
        ess_tail: ess_tail_of(&draws, sorted_draws, &fft),
    }
}

/// Plain (non-rank) split R-hat, useful for integer quantities.
///
/// The classic potential scale reduction factor `sqrt((B/W + n - 1) / n)`
/// of the split chains, computed on the raw values, as
/// `arviz.rhat(method="split")`. Returns `f64::NAN` for fewer than 4 draws
/// per chain, NaN draws or a constant quantity, and `f64::INFINITY` when
/// each chain is constant but the chains differ. A single chain is accepted
/// (ArviZ returns NaN for it).
pub fn split_rhat_basic(chains: &[&[f64]]) -> f64 {
    let Some(draws) = Draws::new(chains) else {
        return f64::NAN;
    };
    rhat_core(&draws.split())
}

/// Split draws with their rank normalisation and their values in ascending
/// order, computed once for the bulk and folded R-hat and the bulk ESS.
struct Ranked {
    split: Draws,
    z: Draws,
    sorted: Vec<f64>,
}

impl Ranked {
    fn of(split: Draws) -> Ranked {
        let (z, sorted) = rank_normalize(&split.values);
        Ranked {
            z: split.with_values(z),
            split,
            sorted,
        }
    }
}

// ---------------------------------------------------------------------------
// Draw storage
// ---------------------------------------------------------------------------

/// A rectangular block of draws: `n_chains` chains of `n_draws` draws each,
/// stored chain after chain.
#[derive(Debug, Clone)]
struct Draws {
    values: Vec<f64>,
    n_chains: usize,
    n_draws: usize,
}

impl Draws {
    /// Copies and validates the input: `None` when the diagnostics are
    /// undefined (no chains, fewer than 4 draws per chain, NaN draws, or
    /// all draws identical). Chains are truncated to the shortest length.
    fn new(chains: &[&[f64]]) -> Option<Draws> {
        let n_draws = chains.iter().map(|c| c.len()).min()?;
        if n_draws < 4 {
            return None;
        }
        let mut values = Vec::with_capacity(chains.len() * n_draws);
        for chain in chains {
            values.extend_from_slice(&chain[..n_draws]);
        }
        if values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let first = values[0];
        if values.iter().all(|&v| v == first) {
            return None;
        }
        Some(Draws {
            values,
            n_chains: chains.len(),
            n_draws,
        })
    }

    /// Draws of chain `c`.
    fn chain(&self, c: usize) -> &[f64] {
        &self.values[c * self.n_draws..(c + 1) * self.n_draws]
    }

    /// Iterator over the chains.
    fn chains(&self) -> impl ExactSizeIterator<Item = &[f64]> + '_ {
        (0..self.n_chains).map(move |c| self.chain(c))
    }

    /// Split chains: the first halves of all chains followed by the last
    /// halves (ArviZ's order; the order does not change any result). The
    /// middle draw of an odd-length chain is dropped.
    fn split(&self) -> Draws {
        let half = self.n_draws / 2;
        let mut values = Vec::with_capacity(2 * self.n_chains * half);
        for chain in self.chains() {
            values.extend_from_slice(&chain[..half]);
        }
        for chain in self.chains() {
            values.extend_from_slice(&chain[self.n_draws - half..]);
        }
        Draws {
            values,
            n_chains: 2 * self.n_chains,
            n_draws: half,
        }
    }

    /// The same shape with new values.
    fn with_values(&self, values: Vec<f64>) -> Draws {
        debug_assert_eq!(values.len(), self.values.len());
        Draws {
            values,
            n_chains: self.n_chains,
            n_draws: self.n_draws,
        }
    }
}

// ---------------------------------------------------------------------------
// Diagnostics on validated draws
// ---------------------------------------------------------------------------

/// ArviZ `_rhat_rank` on already split draws.
fn rhat_rank_of(ranked: &Ranked) -> f64 {
    let bulk = rhat_core(&ranked.z);
    let median = median_of_sorted(&ranked.sorted);
    let split = &ranked.split;
    let folded: Vec<f64> = split.values.iter().map(|&v| (v - median).abs()).collect();
    let tail = rhat_core(&split.with_values(rank_normalize(&folded).0));
    // Python's `max(bulk, tail)`: `tail` only when it is strictly larger.
    if tail > bulk {
        tail
    } else {
        bulk
    }
}

/// ArviZ `_ess_bulk` on already split draws.
fn ess_bulk_of(ranked: &Ranked, fft: &Fft) -> f64 {
    ess_core(&ranked.z, fft)
}

/// ArviZ `_ess_tail` on unsplit draws; `sorted` holds the draws in
/// ascending order when the caller has them.
fn ess_tail_of(draws: &Draws, sorted: Option<&[f64]>, fft: &Fft) -> f64 {
    let own;
    let sorted = match sorted {
        Some(sorted) => sorted,
        None => {
            own = sorted_values(&draws.values);
            &own
        }
    };
    let ess_at = |p: f64| {
        let q = quantile_type7(sorted, p);
        let indicator: Vec<f64> = draws
            .values
            .iter()
            .map(|&v| if v <= q { 1.0 } else { 0.0 })
            .collect();
        ess_core(&draws.with_values(indicator).split(), fft)
    };
    let low = ess_at(0.05);
    let high = ess_at(0.95);
    // Python's `min(low, high)`.
    if high < low {
        high
    } else {
        low
    }
}

/// Classic R-hat of (already split) chains, ArviZ `_rhat`:
/// `sqrt((B/W + n - 1) / n)` with `B = n * var(chain means)` and `W` the mean
/// of the within-chain variances (both with `ddof = 1`).
fn rhat_core(draws: &Draws) -> f64 {
    rhat_of_chains(draws.chains().map(|c| c.iter().copied()), draws.n_draws)
}

/// [`rhat_core`] of chains given as iterators over their `n` draws each (read
/// twice): the same additions in the same order as over slices, so the same bits.
fn rhat_of_chains<I: Iterator<Item = f64> + Clone>(
    chains: impl ExactSizeIterator<Item = I>,
    n: usize,
) -> f64 {
    let mut means = Vec::with_capacity(chains.len());
    let mut within = 0.0;
    for chain in chains {
        let (mean, var) = mean_var_of(chain, n);
        means.push(mean);
        within += var;
    }
    rhat_from_means(&means, within, n)
}

/// Classic R-hat from each chain's mean and the sum of the chains' variances
/// (`within`, before dividing by the number of chains), `n` draws each.
fn rhat_from_means(means: &[f64], within: f64, n: usize) -> f64 {
    let within = within / means.len() as f64;
    let n = n as f64;
    let between = n * mean_var(means).1;
    ((between / within + n - 1.0) / n).sqrt()
}

/// Effective sample size of (already split) chains, ArviZ `_ess`.
fn ess_core(draws: &Draws, fft: &Fft) -> f64 {
    let m = draws.n_chains;
    let n = draws.n_draws;
    let n_total = (m * n) as f64;
    let (lo, hi) = draws
        .values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    // `np.finfo(float).resolution`
    if hi - lo < 1e-15 {
        return n_total;
    }
    let nf = n as f64;
    let acov: Vec<Vec<f64>> = draws.chains().map(|c| autocov(c, fft)).collect();
    let chain_means: Vec<f64> = draws.chains().map(|c| mean_var(c).0).collect();
    let mean_acov = |t: usize| acov.iter().map(|a| a[t]).sum::<f64>() / m as f64;

    let mean_var_w = mean_acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var_w * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += mean_var(&chain_means).1;
    }
    let rho_at = |t: usize| 1.0 - (mean_var_w - mean_acov(t)) / var_plus;

    // n >= 2 because every chain had at least 4 draws before splitting.
    let mut rho_hat = vec![0.0; n];
    let mut rho_even = 1.0;
    rho_hat[0] = rho_even;
    let mut rho_odd = rho_at(1);
    rho_hat[1] = rho_odd;

    // Geyer's initial positive sequence.
    let n_i = n as isize;
    let mut t: isize = 1;
    while t < n_i - 3 && rho_even + rho_odd > 0.0 {
        let tu = t as usize;
        rho_even = rho_at(tu + 1);
        rho_odd = rho_at(tu + 2);
        if rho_even + rho_odd >= 0.0 {
            rho_hat[tu + 1] = rho_even;
            rho_hat[tu + 2] = rho_odd;
        }
        t += 2;
    }
    let max_t = t - 2;
    // `max_t + 1 = t - 1 >= 0` and `< n`.
    let last = (max_t + 1) as usize;
    if rho_even > 0.0 {
        rho_hat[last] = rho_even;
    }

    // Geyer's initial monotone sequence.
    let mut t: isize = 1;
    while t <= max_t - 2 {
        let tu = t as usize;
        if rho_hat[tu + 1] + rho_hat[tu + 2] > rho_hat[tu - 1] + rho_hat[tu] {
            rho_hat[tu + 1] = (rho_hat[tu - 1] + rho_hat[tu]) / 2.0;
            rho_hat[tu + 2] = rho_hat[tu + 1];
        }
        t += 2;
    }

    let mut tau = -1.0 + 2.0 * rho_hat[..last].iter().sum::<f64>() + rho_hat[last];
    let floor = 1.0 / n_total.log10();
    // Python's `max(tau, floor)` (keeps a NaN `tau`).
    if floor > tau {
        tau = floor;
    }
    if rho_hat.iter().any(|r| r.is_nan()) {
        return f64::NAN;
    }
    n_total / tau
}

// ---------------------------------------------------------------------------
// Statistics helpers
// ---------------------------------------------------------------------------

/// Mean and variance with `ddof = 1` (two-pass, as NumPy).
fn mean_var(x: &[f64]) -> (f64, f64) {
    mean_var_of(x.iter().copied(), x.len())
}

/// [`mean_var`] of the `n` values of `x` (read twice).
fn mean_var_of(x: impl Iterator<Item = f64> + Clone, n: usize) -> (f64, f64) {
    let n = n as f64;
    let mean = x.clone().sum::<f64>() / n;
    let ss: f64 = x.map(|v| (v - mean) * (v - mean)).sum();
    (mean, ss / (n - 1.0))
}

/// Median of values in ascending order (the mean of the two middle values
/// for an even count), as `np.median`.
fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The values in ascending order (no NaN).
fn sorted_values(x: &[f64]) -> Vec<f64> {
    let mut keys: Vec<u64> = x.iter().map(|&v| order_key(v)).collect();
    keys.sort_unstable();
    keys.into_iter().map(from_order_key).collect()
}

/// An unsigned integer that orders like the float (`-0.0` just below
/// `0.0`; no NaN here).
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Indices `0..keys.len()` in the ascending order of `keys`: a least
/// significant digit radix sort, one byte per pass, that skips the bytes
/// all keys share (most of them for draws of a few distinct values).
fn radix_order(keys: &[u64]) -> Vec<u32> {
    let n = keys.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let Some(&first) = keys.first() else {
        return order;
    };
    // The bits in which some key differs from the first one.
    let varying = keys.iter().fold(0, |acc, &k| acc | (k ^ first));
    let mut spare = vec![0u32; n];
    for byte in 0..8 {
        let shift = 8 * byte;
        if (varying >> shift) & 0xff == 0 {
            continue;
        }
        let mut start = [0u32; 256];
        for &k in keys {
            start[(k >> shift) as usize & 0xff] += 1;
        }
        let mut sum = 0;
        for slot in start.iter_mut() {
            let count = *slot;
            *slot = sum;
            sum += count;
        }
        for &i in &order {
            let digit = (keys[i as usize] >> shift) as usize & 0xff;
            spare[start[digit] as usize] = i;
            start[digit] += 1;
        }
        std::mem::swap(&mut order, &mut spare);
    }
    order
}

/// Quantile of sorted values with linear interpolation between order
/// statistics (R's type 7), computed as `scipy.stats.mstats.mquantiles`
/// with `alphap = betap = 1` does, which is what ArviZ uses.
fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    // `m = alphap + p * (1 - alphap - betap)` with `alphap = betap = 1`
    // (`1 + p * -1` rounds exactly like `1 - p`).
    let m = 1.0 - p;
    let aleph = n as f64 * p + m;
    let k = aleph.clamp(1.0, (n - 1) as f64).floor();
    let gamma = (aleph - k).clamp(0.0, 1.0);
    let k = k as usize;
    (1.0 - gamma) * sorted[k - 1] + gamma * sorted[k]
}

/// Rank normalisation of pooled values: average ranks `r` (1-based, ties
/// get the mean of their ranks) mapped to `Phi^-1((r - 3/8) / (S + 1/4))`.
/// Also returns the values in ascending order. The input has no NaN.
fn rank_normalize(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if let Some(ranked) = rank_by_counting(x) {
        return ranked;
    }
    let s = x.len();
    let keys: Vec<u64> = x.iter().map(|&v| order_key(v)).collect();
    let order = radix_order(&keys);
    let sorted: Vec<f64> = order.iter().map(|&i| x[i as usize]).collect();
    let mut z = vec![0.0; s];
    let mut i = 0;
    while i < s {
        let mut j = i + 1;
        // `==` groups -0.0 with 0.0, which sort next to each other.
        while j < s && sorted[j] == sorted[i] {
            j += 1;
        }
        let value = tied_z(i, j, s);
        for &idx in &order[i..j] {
            z[idx as usize] = value;
        }
        i = j;
    }
    (z, sorted)
}

/// Most distinct values [`rank_by_counting`] takes.
const COUNTING_RANGE: f64 = 4096.0;

/// [`rank_normalize`] for draws that are whole or half numbers of a small
/// range (event positions, and their distances to a median): counted, not
/// sorted. The ranks are the sort's, and so are the values in ascending
/// order, except that a `-0.0` may come out as `0.0` (equal, and every use
/// compares or subtracts them). `None` for any other draws.
fn rank_by_counting(x: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    // Adding and subtracting 1.5 * 2^52 rounds any |d| < 2^51 to an integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    // 2^52 plus an integer in [0, 2^52) holds that integer in its mantissa.
    const MANTISSA: f64 = 4_503_599_627_370_496.0;
    const LIMIT: f64 = (1u64 << 50) as f64;
    if x.is_empty() {
        return None;
    }
    // Twice a value is an exact integer for these draws (doubling is exact).
    // Branch-free, so that the pass vectorises.
    let (mut lo, mut hi, mut whole) = (f64::INFINITY, f64::NEG_INFINITY, true);
    for &v in x {
        let d = 2.0 * v;
        // False for NaN.
        whole &= (d + ROUND) - ROUND == d;
        lo = if d < lo { d } else { lo };
        hi = if d > hi { d } else { hi };
    }
    // Infinities and huge values fail the limits.
    if !(whole && lo > -LIMIT && hi < LIMIT) || hi - lo >= COUNTING_RANGE {
        return None;
    }
    let slot = |v: f64| ((2.0 * v - lo) + MANTISSA).to_bits() as u32 as usize;
    let mut counts = vec![0u32; (hi - lo) as usize + 1];
    for &v in x {
        counts[slot(v)] += 1;
    }
    let z_of = z_of_counts(&counts);
    let mut sorted = Vec::with_capacity(x.len());
    for (c, &count) in counts.iter().enumerate() {
        sorted.extend(std::iter::repeat_n((lo + c as f64) / 2.0, count as usize));
    }
    Some((x.iter().map(|&v| z_of[slot(v)]).collect(), sorted))
}

/// The normal score of values at 0-based sorted places `i..j` of `s` pooled
/// values: they share the average 1-based rank `r`, mapped to
/// `Phi^-1((r - 3/8) / (s + 1/4))`.
fn tied_z(i: usize, j: usize, s: usize) -> f64 {
    let rank = 0.5 * ((i + 1 + j) as f64);
    inv_normal_cdf((rank - 0.375) / (s as f64 - 2.0 * 0.375 + 1.0))
}

/// The normal score of every value from how many draws hold each value
/// (`counts[v]`, values in ascending order); 0 for values no draw holds.
fn z_of_counts<C: Copy + Into<u64>>(counts: &[C]) -> Vec<f64> {
    let s = counts.iter().map(|&c| c.into()).sum::<u64>() as usize;
    let mut i = 0;
    counts
        .iter()
        .map(|&count| {
            let j = i + count.into() as usize;
            let z = if j > i { tied_z(i, j, s) } else { 0.0 };
            i = j;
            z
        })
        .collect()
}

/// Inverse of the standard normal CDF, Wichura's algorithm AS 241
/// (PPND16), relative accuracy about 1e-16. The coefficients are kept as
/// published.
#[allow(clippy::excessive_precision)]
fn inv_normal_cdf(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = ((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
            + 67265.770927008700853)
            * r
            + 45921.953931549871457)
            * r
            + 13731.693765509461125)
            * r
            + 1971.5909503065514427)
            * r
            + 133.14166789178437745)
            * r
            + 3.387132872796366608;
        let den = ((((((r * 5226.495278852545925 + 28729.085735721942674) * r
            + 39307.89580009271061)
            * r
            + 21213.794301586595867)
            * r
            + 5394.1960214247511077)
            * r
            + 687.1870074920579083)
            * r
            + 42.313330701600911252)
            * r
            + 1.0;
        return q * num / den;
    }
    // Tail: r = sqrt(-ln(min(p, 1 - p))); `1 - p` is exact for p >= 0.5.
    let tail_p = if q < 0.0 { p } else { 1.0 - p };
    let mut r = (-tail_p.ln()).sqrt();
    let value = if r <= 5.0 {
        r -= 1.6;
        let num = ((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
            + 0.24178072517745061177)
            * r
            + 1.27045825245236838258)
            * r
            + 3.64784832476320460504)
            * r
            + 5.7694972214606914055)
            * r
            + 4.6303378461565452959)
            * r
            + 1.42343711074968357734;
        let den = ((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
            + 0.0151986665636164571966)
            * r
            + 0.14810397642748007459)
            * r
            + 0.68976733498510000455)
            * r
            + 1.6763848301838038494)
            * r
            + 2.05319162663775882187)
            * r
            + 1.0;
        num / den
    } else {
        r -= 5.0;
        let num = ((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
            + 0.0012426609473880784386)
            * r
            + 0.026532189526576123093)
            * r
            + 0.29656057182850489123)
            * r
            + 1.7848265399172913358)
            * r
            + 5.4637849111641143699)
            * r
            + 6.6579046435011037772;
        let den = ((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
            + 1.8463183175100546818e-5)
            * r
            + 7.868691311456132591e-4)
            * r
            + 0.0148753612908506148525)
            * r
            + 0.13692988092273580531)
            * r
            + 0.59983220655588793769)
            * r
            + 1.0;
        num / den
    };
    if q < 0.0 {
        -value
    } else {
        value
    }
}

// ---------------------------------------------------------------------------
// FFT autocovariance
// ---------------------------------------------------------------------------

/// Autocovariances of `x` at lags `0..n` (biased, divided by `n`, around the
/// mean), computed with a zero-padded radix-2 FFT, as ArviZ `autocov`.
/// `fft` has the size `Fft::for_draws(n)`.
fn autocov(x: &[f64], fft: &Fft) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let size = fft.size;
    debug_assert_eq!(size, Fft::size_for(n));
    // The transforms take their input in bit-reversed order: the values
    // are written there directly, and so is the power spectrum. The plan's
    // buffers are reused from call to call.
    let mut scratch = fft.scratch.borrow_mut();
    let (re, im, power) = &mut *scratch;
    re.clear();
    re.resize(size, 0.0);
    im.clear();
    im.resize(size, 0.0);
    power.resize(size, 0.0);
    for (&slot, &v) in fft.reversed.iter().zip(x) {
        re[slot as usize] = v - mean;
    }
    fft.passes::<false>(re, im);
    for ((&slot, &a), &b) in fft.reversed.iter().zip(re.iter()).zip(im.iter()) {
        power[slot as usize] = a * a + b * b;
    }
    im.fill(0.0);
    fft.passes::<true>(power, im);
    let scale = 1.0 / (size as f64 * n as f64);
    power[..n].iter().map(|&v| v * scale).collect()
}

/// An iterative radix-2 complex FFT of a fixed power-of-two size, with the
/// twiddle factors of each pass stored contiguously so that a pass runs
/// over plain slices.
struct Fft {
    size: usize,
    /// Pass with half-length `h` reads `cos(2 pi k / (2h))` for `k < h` at
    /// `cos[h - 1..2h - 1]`.
    cos: Vec<f64>,
    /// The matching sines, same layout.
    sin: Vec<f64>,
    /// `reversed[i]` is `i` with its bits reversed.
    reversed: Vec<u32>,
    /// [`autocov`]'s buffers (real, imaginary, power), kept between calls.
    scratch: std::cell::RefCell<(Vec<f64>, Vec<f64>, Vec<f64>)>,
}

impl Fft {
    /// Padding to at least `2n - 1` makes the circular correlation of `n`
    /// values linear.
    fn size_for(n: usize) -> usize {
        (2 * n).next_power_of_two()
    }

    /// The plan that [`autocov`] needs for chains of `n` draws.
    fn for_draws(n: usize) -> Fft {
        Fft::new(Fft::size_for(n))
    }

    fn new(size: usize) -> Fft {
        debug_assert!(size.is_power_of_two());
        let half = size / 2;
        let step = 2.0 * std::f64::consts::PI / size as f64;
        // The angles of the full size; a pass of half-length h reads every
        // (half / h)-th of them, as the table of a single size would.
        let (cos_full, sin_full): (Vec<f64>, Vec<f64>) = (0..half)
            .map(|k| {
                let angle = step * k as f64;
                (angle.cos(), angle.sin())
            })
            .unzip();
        let mut cos = Vec::with_capacity(size);
        let mut sin = Vec::with_capacity(size);
        let mut h = 1;
        while h <= half {
            let stride = half / h;
            cos.extend((0..h).map(|k| cos_full[k * stride]));
            sin.extend((0..h).map(|k| sin_full[k * stride]));
            h *= 2;
        }
        let bits = size.trailing_zeros();
        // `checked_shr`: a shift by the whole width (size 1) leaves index 0.
        let reversed = (0..size)
            .map(|i| {
                i.reverse_bits()
                    .checked_shr(usize::BITS - bits)
                    .unwrap_or(0) as u32
            })
            .collect();
        Fft {
            size,
            cos,
            sin,
            reversed,
            scratch: Default::default(),
        }
    }

    /// In-place unnormalised transform: `X_k = sum_j x_j e^{-2 pi i jk/N}`,
    /// or with `e^{+...}` when `INVERSE` (no `1/N` factor).
    #[cfg(test)]
    fn run<const INVERSE: bool>(&self, re: &mut [f64], im: &mut [f64]) {
        for (i, &j) in self.reversed.iter().enumerate() {
            let j = j as usize;
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        self.passes::<INVERSE>(re, im);
    }

    /// The butterfly passes of [`Fft::run`], on input already in
    /// bit-reversed order; four butterflies per instruction where the CPU
    /// has AVX2 (the same operations per butterfly, so the same bits).
    fn passes<const INVERSE: bool>(&self, re: &mut [f64], im: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            unsafe { self.passes_avx2::<INVERSE>(re, im) };
            return;
        }
        self.passes_inline::<INVERSE>(re, im);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn passes_avx2<const INVERSE: bool>(&self, re: &mut [f64], im: &mut [f64]) {
        self.passes_inline::<INVERSE>(re, im);
    }

    #[inline(always)]
    fn passes_inline<const INVERSE: bool>(&self, re: &mut [f64], im: &mut [f64]) {
        let n = self.size;
        let (re, im) = (&mut re[..n], &mut im[..n]);
        let mut half = 1;
        while half < n {
            let len = 2 * half;
            let cos = &self.cos[half - 1..len - 1];
            let sin = &self.sin[half - 1..len - 1];
            for (re, im) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
                let (re_a, re_b) = re.split_at_mut(half);
                let (im_a, im_b) = im.split_at_mut(half);
                butterflies::<INVERSE>(re_a, re_b, im_a, im_b, cos, sin);
            }
            half = len;
        }
    }
}

/// One pass's butterflies over a block: `(a, b) <- (a + w b, a - w b)` with
/// `w = cos - i sin` (forward) or `cos + i sin` (inverse).
#[inline(always)]
fn butterflies<const INVERSE: bool>(
    re_a: &mut [f64],
    re_b: &mut [f64],
    im_a: &mut [f64],
    im_b: &mut [f64],
    cos: &[f64],
    sin: &[f64],
) {
    let n = re_a.len();
    let (re_b, im_a, im_b, cos, sin) = (
        &mut re_b[..n],
        &mut im_a[..n],
        &mut im_b[..n],
        &cos[..n],
        &sin[..n],
    );
    for k in 0..n {
        let wr = cos[k];
        // Negation is exact: the forward pass uses -sin.
        let wi = if INVERSE { sin[k] } else { -sin[k] };
        ((re_a[k], im_a[k]), (re_b[k], im_b[k])) =
            butterfly((re_a[k], im_a[k]), (re_b[k], im_b[k]), (wr, wi));
    }
}

/// One radix-2 butterfly on complex numbers as `(re, im)`: `(a + w b, a - w b)`.
#[inline(always)]
fn butterfly(a: (f64, f64), b: (f64, f64), w: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let tr = b.0 * w.0 - b.1 * w.1;
    let ti = b.0 * w.1 + b.1 * w.0;
    ((a.0 + tr, a.1 + ti), (a.0 - tr, a.1 - ti))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// SplitMix64 with Box-Muller normals; the Python twin lives in
    /// `tests/data/arviz_reference.py` and must stay operation-for-operation
    /// identical.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1).
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / 9007199254740992.0)
        }

        fn normal(&mut self) -> f64 {
            let u1 = self.uniform();
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// The datasets of `arviz_reference.py`.
    fn gen(name: &str, seed: u64, n_chains: usize, n_draws: usize) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::new();
        for c in 0..n_chains {
            let mut chain = Vec::with_capacity(n_draws);
            match name {
                "iid" | "odd" => {
                    for _ in 0..n_draws {
                        chain.push(rng.normal());
                    }
                }
                "ar1" | "single" => {
                    let rho: f64 = if name == "ar1" { 0.9 } else { 0.5 };
                    let s = (1.0 - rho * rho).sqrt();
                    let mut x = rng.normal();
                    for _ in 0..n_draws {
                        chain.push(x);
                        x = rho * x + s * rng.normal();
                    }
                }
                "shifted" => {
                    for _ in 0..n_draws {
                        chain.push(rng.normal() + 0.4 * c as f64);
                    }
                }
                "cauchy" => {
                    for _ in 0..n_draws {
                        let a = rng.normal();
                        let b = rng.normal();
                        chain.push(a / b);
                    }
                }
                "binary" => {
                    for _ in 0..n_draws {
                        chain.push(if rng.uniform() < 0.3 { 1.0 } else { 0.0 });
                    }
                }
                "ties" => {
                    for _ in 0..n_draws {
                        chain.push((2.0 * rng.normal()).floor());
                    }
                }
                _ => panic!("unknown dataset {name}"),
            }
            out.push(chain);
        }
        out
    }

    fn as_slices(chains: &[Vec<f64>]) -> Vec<&[f64]> {
        chains.iter().map(|c| c.as_slice()).collect()
    }

    /// Output of `tests/data/arviz_reference.py` (ArviZ 0.23.4, NumPy 2.4.6):
    /// (name, seed, chains, draws, rhat_rank, rhat_split, ess_bulk, ess_tail,
    /// first draw, sum of draws).
    #[allow(clippy::type_complexity)]
    const GOLDEN: &[(&str, u64, usize, usize, f64, f64, f64, f64, f64, f64)] = &[
        (
            "iid",
            11,
            4,
            500,
            1.0000030344336048,
            0.9990028988875576,
            2125.045694340603,
            2013.9178683093426,
            -0.11777151165953513,
            -47.999520229744206,
        ),
        (
            "ar1",
            22,
            4,
            1000,
            1.0129197946594979,
            1.0130948614778321,
            230.18997503674447,
            473.84178387005636,
            0.6461376911948143,
            107.25506355672272,
        ),
        (
            "shifted",
            33,
            4,
            300,
            1.107647946916963,
            1.1078603535091505,
            26.12990854105726,
            495.0323893331729,
            1.6703094178489541,
            697.7252814985246,
        ),
        (
            "cauchy",
            44,
            4,
            400,
            1.0003238553196894,
            0.9992901668730728,
            1689.1713955777584,
            1498.7002613256952,
            -0.6578032177174945,
            -2762.537880174225,
        ),
        (
            "odd",
            55,
            3,
            101,
            0.9996227775204973,
            0.998733682201205,
            274.0877253922451,
            303.9329653289248,
            1.2747192767285334,
            1.6586820254784655,
        ),
        (
            "ties",
            66,
            4,
            250,
            1.001372554061445,
            1.0012989965655918,
            990.3456699694129,
            1008.1847256347589,
            -3.0,
            -629.0,
        ),
        (
            "binary",
            88,
            4,
            200,
            0.997035083246954,
            0.997035083246954,
            814.07862118346,
            800.0,
            1.0,
            251.0,
        ),
        (
            "single",
            77,
            1,
            400,
            f64::NAN,
            f64::NAN,
            167.37689948118984,
            218.51880175458203,
            -1.3820793822078232,
            -22.056816056961047,
        ),
    ];

    /// (p, scipy.stats.norm.ppf(p)), from the same script (SciPy 1.17.1).
    const PPF_GOLDEN: &[(f64, f64)] = &[
        (1e-300, -37.0470962993612),
        (1e-20, -9.262340089798409),
        (1e-10, -6.361340902404056),
        (1e-05, -4.264890793922825),
        (0.001, -3.090232306167813),
        (0.02425, -1.972961051311885),
        (0.05, -1.6448536269514729),
        (0.075, -1.4395314709384563),
        (0.2, -0.8416212335729142),
        (0.3, -0.5244005127080409),
        (0.5, 0.0),
        (0.6, 0.2533471031357997),
        (0.9, 1.2815515655446004),
        (0.925, 1.4395314709384563),
        (0.97575, 1.972961051311885),
        (0.999, 3.090232306167813),
        (0.99999, 4.264890793923841),
        (0.9999999999990905, 7.047700256664409),
    ];

    fn assert_rel(actual: f64, expected: f64, tol: f64, what: &str) {
        let err = (actual - expected).abs() / expected.abs().max(1e-300);
        assert!(
            err <= tol,
            "{what}: got {actual:.17e}, expected {expected:.17e} (relative error {err:.3e})"
        );
    }

    #[test]
    fn diagnostics_inv_normal_cdf_matches_scipy() {
        for &(p, expected) in PPF_GOLDEN {
            let z = inv_normal_cdf(p);
            if expected == 0.0 {
                assert_eq!(z, 0.0);
            } else {
                assert_rel(z, expected, 1e-14, &format!("ppf({p})"));
            }
        }
        assert_eq!(inv_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inv_normal_cdf(1.0), f64::INFINITY);
        assert!(inv_normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn diagnostics_fft_autocov_matches_direct() {
        let mut rng = SplitMix64(5);
        for n in [1usize, 2, 3, 5, 17, 64, 100] {
            let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let fast = autocov(&x, &Fft::for_draws(n));
            let mean = x.iter().sum::<f64>() / n as f64;
            for (lag, &f) in fast.iter().enumerate() {
                let direct: f64 = (0..n - lag)
                    .map(|i| (x[i] - mean) * (x[i + lag] - mean))
                    .sum::<f64>()
                    / n as f64;
                assert!(
                    (f - direct).abs() < 1e-12,
                    "n={n} lag={lag}: {f} vs {direct}"
                );
            }
        }
    }

    /// The textbook forms the fast code must reproduce to the bit: ranks
    /// from an index sort, and a radix-2 FFT that computes its twiddle
    /// factors where it uses them.
    mod textbook {
        use super::super::inv_normal_cdf;

        pub fn rank_normalize(x: &[f64]) -> Vec<f64> {
            let s = x.len();
            let mut order: Vec<usize> = (0..s).collect();
            order.sort_by(|&a, &b| x[a].partial_cmp(&x[b]).unwrap());
            let denom = s as f64 - 2.0 * 0.375 + 1.0;
            let mut z = vec![0.0; s];
            let mut i = 0;
            while i < s {
                let mut j = i + 1;
                while j < s && x[order[j]] == x[order[i]] {
                    j += 1;
                }
                let value = inv_normal_cdf((0.5 * ((i + 1 + j) as f64) - 0.375) / denom);
                for &idx in &order[i..j] {
                    z[idx] = value;
                }
                i = j;
            }
            z
        }

        pub fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
            let n = re.len();
            if n <= 1 {
                return;
            }
            let bits = n.trailing_zeros();
            for i in 0..n {
                let j = i.reverse_bits() >> (usize::BITS - bits);
                if j > i {
                    re.swap(i, j);
                    im.swap(i, j);
                }
            }
            let step = 2.0 * std::f64::consts::PI / n as f64;
            let sign = if inverse { 1.0 } else { -1.0 };
            let mut len = 2;
            while len <= n {
                let half = len / 2;
                for start in (0..n).step_by(len) {
                    for k in 0..half {
                        let angle = step * (k * (n / len)) as f64;
                        let (wr, wi) = (angle.cos(), sign * angle.sin());
                        let (a, b) = (start + k, start + k + half);
                        ((re[a], im[a]), (re[b], im[b])) =
                            crate::diagnostics::butterfly((re[a], im[a]), (re[b], im[b]), (wr, wi));
                    }
                }
                len *= 2;
            }
        }
    }

    /// Values with many ties, signed zeros, integers and wide magnitudes.
    fn awkward_values() -> impl Strategy<Value = Vec<f64>> {
        let value = prop_oneof![
            (-3i32..4).prop_map(f64::from),
            (-9i32..9).prop_map(|v| f64::from(v) / 2.0),
            Just(-0.0),
            Just(0.0),
            -1e6f64..1e6,
            -1e-300f64..1e-300,
        ];
        // Half the cases only whole and half numbers (the counting path).
        let counted = prop_oneof![
            (-3i32..4).prop_map(f64::from),
            (-5000i32..5000).prop_map(|v| f64::from(v) / 2.0),
            Just(-0.0),
        ];
        // Whole numbers the counting path must refuse.
        let refused = prop_oneof![
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(2f64.powi(51)),
            Just(-(2f64.powi(60))),
            (-3i32..4).prop_map(f64::from),
        ];
        prop_oneof![
            prop::collection::vec(value, 1..300),
            prop::collection::vec(counted, 1..300),
            prop::collection::vec(refused, 1..50),
        ]
    }

    /// Sizes 1 and 2 (no butterflies, one pass) by hand: the bit reversal of
    /// size 1 must not shift by the word width.
    #[test]
    fn diagnostics_fft_of_one_and_two_values() {
        let fft = Fft::new(1);
        let (mut re, mut im) = (vec![3.5], vec![-1.0]);
        fft.run::<false>(&mut re, &mut im);
        assert_eq!((re[0], im[0]), (3.5, -1.0));
        let fft = Fft::new(2);
        let (mut re, mut im) = (vec![1.0, 2.0], vec![0.0, 0.0]);
        fft.run::<false>(&mut re, &mut im);
        assert_eq!(re, [3.0, -1.0]);
    }

    proptest! {
        #[test]
        fn diagnostics_ranks_equal_the_textbook_ranks(x in awkward_values()) {
            let (z, sorted) = rank_normalize(&x);
            let expected = textbook::rank_normalize(&x);
            prop_assert_eq!(
                z.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            prop_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
            // The same values (`==`: a -0.0 may come back as 0.0).
            let mut multiset = x.clone();
            multiset.sort_by(|a, b| a.partial_cmp(b).unwrap());
            prop_assert_eq!(&sorted, &multiset);
            prop_assert_eq!(sorted_values(&x), multiset);
        }

        #[test]
        fn diagnostics_fft_equals_the_textbook_fft(
            x in prop::collection::vec(-1e3f64..1e3, 1..600),
            inverse in any::<bool>(),
        ) {
            let size = x.len().next_power_of_two();
            let mut re = x.clone();
            re.resize(size, 0.0);
            let mut im: Vec<f64> = re.iter().map(|v| v * 0.5 - 1.0).collect();
            let (mut re2, mut im2) = (re.clone(), im.clone());
            let fft = Fft::new(size);
            if inverse {
                fft.run::<true>(&mut re, &mut im);
            } else {
                fft.run::<false>(&mut re, &mut im);
            }
            textbook::fft(&mut re2, &mut im2, inverse);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&re), bits(&re2));
            prop_assert_eq!(bits(&im), bits(&im2));
        }
    }

    #[test]
    fn diagnostics_golden_values_from_arviz() {
        for &(
            name,
            seed,
            n_chains,
            n_draws,
            rhat_ref,
            rhat_split_ref,
            bulk_ref,
            tail_ref,
            first,
            sum,
        ) in GOLDEN
        {
            let chains = gen(name, seed, n_chains, n_draws);
            // The generator reproduces the Python draws.
            assert_rel(
                chains[0][0].abs().max(1e-300),
                first.abs().max(1e-300),
                1e-14,
                name,
            );
            assert_eq!(chains[0][0].signum(), first.signum(), "{name}");
            let total: f64 = chains.iter().flatten().sum();
            assert!(
                (total - sum).abs() <= 1e-9 * sum.abs().max(1.0),
                "{name}: sum {total} vs {sum}"
            );

            let slices = as_slices(&chains);
            let s = summarize(&slices);
            assert_eq!(s.rhat.to_bits(), rhat(&slices).to_bits(), "{name}");
            assert_eq!(s.ess_bulk, ess_bulk(&slices), "{name}");
            assert_eq!(s.ess_tail, ess_tail(&slices), "{name}");
            if n_chains >= 2 {
                assert_rel(s.rhat, rhat_ref, 1e-6, &format!("{name} rhat"));
                assert_rel(
                    split_rhat_basic(&slices),
                    rhat_split_ref,
                    1e-6,
                    &format!("{name} split rhat"),
                );
            } else {
                // ArviZ refuses R-hat for one chain; ours compares the halves.
                assert!(rhat_ref.is_nan() && rhat_split_ref.is_nan());
                assert!((s.rhat - 1.0).abs() < 0.05, "{name}: rhat {}", s.rhat);
                assert!((split_rhat_basic(&slices) - 1.0).abs() < 0.05);
            }
            assert_rel(s.ess_bulk, bulk_ref, 1e-6, &format!("{name} ess_bulk"));
            assert_rel(s.ess_tail, tail_ref, 1e-6, &format!("{name} ess_tail"));
        }
    }

    fn normals(seed: u64, n_chains: usize, n_draws: usize, shift: f64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64(seed);
        (0..n_chains)
            .map(|c| {
                (0..n_draws)
                    .map(|_| rng.normal() + shift * c as f64)
                    .collect()
            })
            .collect()
    }

    fn ar1(seed: u64, n_chains: usize, n_draws: usize, rho: f64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64(seed);
        let s = (1.0 - rho * rho).sqrt();
        (0..n_chains)
            .map(|_| {
                let mut x = rng.normal();
                (0..n_draws)
                    .map(|_| {
                        let v = x;
                        x = rho * x + s * rng.normal();
                        v
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn diagnostics_iid_normals_converge() {
        for seed in [1u64, 2, 3] {
            let chains = normals(seed, 4, 1000, 0.0);
            let s = summarize(&as_slices(&chains));
            assert!((s.rhat - 1.0).abs() < 0.01, "seed {seed}: rhat {}", s.rhat);
            assert!(
                s.ess_bulk > 3000.0 && s.ess_bulk < 5000.0,
                "seed {seed}: ess_bulk {}",
                s.ess_bulk
            );
            assert!(
                s.ess_tail > 2000.0 && s.ess_tail < 6000.0,
                "seed {seed}: ess_tail {}",
                s.ess_tail
            );
            assert!((split_rhat_basic(&as_slices(&chains)) - 1.0).abs() < 0.01);
        }
    }

    #[test]
    fn diagnostics_shifted_chains_do_not_converge() {
        let chains = normals(4, 4, 1000, 3.0);
        let slices = as_slices(&chains);
        assert!(rhat(&slices) > 1.5, "rhat {}", rhat(&slices));
        assert!(split_rhat_basic(&slices) > 1.5);
        assert!(ess_bulk(&slices) < 100.0);
    }

    #[test]
    fn diagnostics_ar1_ess_matches_theory() {
        let rho = 0.9;
        let chains = ar1(6, 4, 5000, rho);
        let n = 20000.0;
        let expected = n * (1.0 - rho) / (1.0 + rho);
        let bulk = ess_bulk(&as_slices(&chains));
        assert!(
            (bulk / expected - 1.0).abs() < 0.3,
            "ess_bulk {bulk}, expected about {expected}"
        );
        let r = rhat(&as_slices(&chains));
        assert!(r < 1.01, "rhat {r}");
    }

    #[test]
    fn diagnostics_edge_cases() {
        // Too few draws.
        let short = [[1.0, 2.0, 3.0], [2.0, 3.0, 1.0]];
        let short: Vec<&[f64]> = short.iter().map(|c| c.as_slice()).collect();
        let s = summarize(&short);
        assert!(s.rhat.is_nan() && s.ess_bulk.is_nan() && s.ess_tail.is_nan());
        assert!(split_rhat_basic(&short).is_nan());
        // No chains at all, or an empty chain.
        assert!(rhat(&[]).is_nan());
        assert!(ess_bulk(&[&[], &[1.0, 2.0, 3.0, 4.0]]).is_nan());
        // Constant quantity.
        let constant = vec![vec![2.5; 50]; 4];
        let s = summarize(&as_slices(&constant));
        assert!(s.rhat.is_nan() && s.ess_bulk.is_nan() && s.ess_tail.is_nan());
        assert!(split_rhat_basic(&as_slices(&constant)).is_nan());
        // NaN draws.
        let mut with_nan = normals(7, 4, 100, 0.0);
        with_nan[2][10] = f64::NAN;
        let s = summarize(&as_slices(&with_nan));
        assert!(s.rhat.is_nan() && s.ess_bulk.is_nan() && s.ess_tail.is_nan());
        // Constant chains that differ from each other: R-hat is infinite
        // (2 chains: the folded values are constant, the bulk ones are not).
        for n_chains in [2usize, 4] {
            let stuck: Vec<Vec<f64>> = (0..n_chains).map(|c| vec![c as f64; 10]).collect();
            let slices = as_slices(&stuck);
            assert_eq!(rhat(&slices), f64::INFINITY);
            assert_eq!(split_rhat_basic(&slices), f64::INFINITY);
            // ArviZ 0.23.4 gives bulk = tail ESS = 5 (2 chains) and 10 (4 chains).
            let expected = if n_chains == 2 { 5.0 } else { 10.0 };
            assert_rel(ess_bulk(&slices), expected, 1e-9, "stuck ess_bulk");
            assert_rel(ess_tail(&slices), expected, 1e-9, "stuck ess_tail");
        }
        // Exactly 4 draws works.
        let four = [[0.1, 0.5, -0.3, 0.2], [0.4, -0.1, 0.3, 0.0]];
        let four: Vec<&[f64]> = four.iter().map(|c| c.as_slice()).collect();
        let s = summarize(&four);
        assert!(s.rhat.is_finite() && s.ess_bulk.is_finite() && s.ess_tail.is_finite());
    }

    #[test]
    fn diagnostics_unequal_lengths_are_truncated() {
        let chains = normals(8, 3, 200, 0.0);
        let mut longer = chains.clone();
        longer[1].extend([5.0, 6.0, 7.0]);
        assert_eq!(
            summarize(&as_slices(&chains)),
            summarize(&as_slices(&longer))
        );
    }

    #[test]
    fn diagnostics_rank_based_values_are_invariant_to_monotone_maps() {
        let chains = ar1(9, 4, 300, 0.7);
        let mapped: Vec<Vec<f64>> = chains
            .iter()
            .map(|c| c.iter().map(|&v| v.exp()).collect())
            .collect();
        let a = rhat(&as_slices(&chains));
        let b = rhat(&as_slices(&mapped));
        // The bulk part is invariant; the folded part depends on the scale,
        // so compare only the bulk ESS exactly and R-hat loosely.
        assert_eq!(ess_bulk(&as_slices(&chains)), ess_bulk(&as_slices(&mapped)));
        assert_eq!(ess_tail(&as_slices(&chains)), ess_tail(&as_slices(&mapped)));
        assert!((a - b).abs() < 0.05);
    }

    #[test]
    fn diagnostics_large_input_is_fast_enough() {
        let chains = ar1(10, 4, 100_000, 0.5);
        let start = std::time::Instant::now();
        let s = summarize(&as_slices(&chains));
        let elapsed = start.elapsed();
        assert!(s.rhat.is_finite() && s.ess_bulk > 0.0 && s.ess_tail > 0.0);
        let expected = 400_000.0 * (1.0 - 0.5) / (1.0 + 0.5);
        assert!((s.ess_bulk / expected - 1.0).abs() < 0.1, "{}", s.ess_bulk);
        assert!(elapsed.as_secs_f64() < 20.0, "took {elapsed:?}");
    }
}
