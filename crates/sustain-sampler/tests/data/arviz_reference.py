"""Golden values for `crates/sustain-sampler/src/diagnostics.rs`.

How the numbers were produced
-----------------------------
    python3 -m venv /tmp/arvenv
    /tmp/arvenv/bin/pip install arviz numpy
    /tmp/arvenv/bin/python crates/sustain-sampler/tests/data/arviz_reference.py

(ArviZ 0.23.4, NumPy 2.4.6, SciPy 1.17.1, CPython 3.11 on x86_64 Linux.)
The script prints two Rust tables that are pasted into the `GOLDEN` and
`PPF_GOLDEN` constants of the test module of `diagnostics.rs`; `nan` is
written there as `f64::NAN`.

The draws are produced by a tiny deterministic generator that the Rust test
re-implements operation for operation (SplitMix64 -> 53-bit uniform ->
Box-Muller with `math.log`, `math.cos`, `math.sqrt`).  Only plain scalar
`math` functions are used (no numpy vectorised transcendental functions),
so both languages call the same C library routines and the draws agree to
the last bit on the same platform (and to ~1 ulp anywhere else, far below
the 1e-6 relative tolerance of the test).

Datasets (name, chains x draws):
  iid        4 x 500   standard normal draws
  ar1        4 x 1000  AR(1), rho = 0.9, unit stationary variance
  shifted    4 x 300   normal draws, chain c shifted by 0.4 * c
  cauchy     4 x 400   heavy tailed: ratio of two normals (Cauchy)
  odd        3 x 101   normal draws, odd length (middle draw dropped)
  ties       4 x 250   floor(2 * normal): integer valued, many ties
  binary     4 x 200   0/1 draws with P(1) = 0.3 (the 95% quantile is the
                       maximum, so its indicator is constant: ArviZ then
                       counts that indicator's ESS as the number of draws)
  single     1 x 400   AR(1), rho = 0.5, one chain (ESS only: ArviZ
                       returns NaN for R-hat with fewer than 2 chains)
"""

import math
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import arviz as az  # noqa: E402

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        # in (0, 1): never exactly 0, so log() is finite
        return ((self.next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0)

    def normal(self):
        u1 = self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def gen(name, seed, n_chains, n_draws):
    rng = SplitMix64(seed)
    out = []
    for c in range(n_chains):
        chain = []
        if name == "iid" or name == "odd":
            for _ in range(n_draws):
                chain.append(rng.normal())
        elif name == "ar1" or name == "single":
            rho = 0.9 if name == "ar1" else 0.5
            s = math.sqrt(1.0 - rho * rho)
            x = rng.normal()
            for _ in range(n_draws):
                chain.append(x)
                x = rho * x + s * rng.normal()
        elif name == "shifted":
            for _ in range(n_draws):
                chain.append(rng.normal() + 0.4 * c)
        elif name == "cauchy":
            for _ in range(n_draws):
                a = rng.normal()
                b = rng.normal()
                chain.append(a / b)
        elif name == "binary":
            for _ in range(n_draws):
                chain.append(1.0 if rng.uniform() < 0.3 else 0.0)
        elif name == "ties":
            for _ in range(n_draws):
                chain.append(float(math.floor(2.0 * rng.normal())))
        else:
            raise ValueError(name)
        out.append(chain)
    return np.array(out, dtype=float)


DATASETS = [
    ("iid", 11, 4, 500),
    ("ar1", 22, 4, 1000),
    ("shifted", 33, 4, 300),
    ("cauchy", 44, 4, 400),
    ("odd", 55, 3, 101),
    ("ties", 66, 4, 250),
    ("binary", 88, 4, 200),
    ("single", 77, 1, 400),
]

# Points at which the inverse normal CDF is checked against scipy.stats.norm.ppf.
PPF_POINTS = [1e-300, 1e-20, 1e-10, 1e-5, 0.001, 0.02425, 0.05, 0.075, 0.2, 0.3,
              0.5, 0.6, 0.9, 0.925, 0.97575, 0.999, 0.99999, 1.0 - 2.0 ** -40]


def main():
    print(f"// ArviZ {az.__version__}, NumPy {np.__version__}")
    print("// (name, seed, chains, draws, rhat_rank, rhat_split, ess_bulk, ess_tail, first draw, sum of draws)")
    for name, seed, n_chains, n_draws in DATASETS:
        x = gen(name, seed, n_chains, n_draws)
        rhat = float(az.rhat(x, method="rank"))
        rhat_split = float(az.rhat(x, method="split"))
        ess_bulk = float(az.ess(x, method="bulk"))
        ess_tail = float(az.ess(x, method="tail"))
        print(
            f'    ("{name}", {seed}, {n_chains}, {n_draws}, {rhat!r}, {rhat_split!r}, '
            f"{ess_bulk!r}, {ess_tail!r}, {float(x[0, 0])!r}, {math.fsum(x.ravel())!r}),"
        )
    from scipy import stats

    print("// (p, scipy.stats.norm.ppf(p))")
    for p in PPF_POINTS:
        print(f"    ({p!r}, {float(stats.norm.ppf(p))!r}),")


if __name__ == "__main__":
    main()
