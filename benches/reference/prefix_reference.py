"""Times pySuStaIn's MixtureSustain and OrdinalSustain on the workloads of
benches/prefix.rs (same shapes, same kind of simulated data; not the same
random numbers): one `_calculate_likelihood`, `_perform_mcmc` per iteration,
and one `_optimise_parameters` (MixtureSustain with use_dp=True; OrdinalSustain
has no use_dp), each the best of a few runs in thread CPU time. Prints one JSON
object per line. Single-threaded numpy (OPENBLAS_NUM_THREADS=1 etc., as the
driver sets) keeps thread CPU time the whole cost.

Run it with the reference installed (see docs/performance.md), from outside
its clone:  V/bin/python benches/reference/prefix_reference.py [--quick]
"""
import json
import sys
import tempfile
import time

import numpy as np
from scipy import stats

from pySuStaIn.MixtureSustain import MixtureSustain
from pySuStaIn.OrdinalSustain import OrdinalSustain


def best_of(fn, repeats):
    # Thread CPU time, as examples/prefix_timing.rs measures ours: other load on
    # the machine does not count.
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return min(times)


def mixture_workload(rng, m=2000, b=50):
    # Event/no-event likelihoods from two Gaussian densities, as a mixture
    # model of biomarker values would give them.
    x = rng.normal(1.0, 1.5, size=(m, b))
    return stats.norm.pdf(x, 2.0, 1.0), stats.norm.pdf(x, 0.0, 1.0)


def ordinal_workload(rng, m=1000, b=10, n_scores=3, p_correct=0.9):
    scores = rng.integers(0, n_scores + 1, size=(m, b))
    n = n_scores + 1
    p = np.full((m, b, n), (1 - p_correct) / (n - 1))
    np.put_along_axis(p, scores[:, :, None], p_correct, axis=2)
    prob_nl = p[:, :, 0]
    prob_score = p[:, :, 1:]
    score_vals = np.tile(np.arange(1, n_scores + 1), (b, 1))
    return prob_nl, prob_score, score_vals


def time_model(name, sustain, data, n_events, n_subtypes, rng, quick):
    # Valid starting sequences (the ordinal model's scores in order).
    seq = np.vstack([sustain._initialise_sequence(data, rng) for _ in range(n_subtypes)]).astype(float)
    f = np.array([0.5, 0.3, 0.2][:n_subtypes])
    reps = 3 if quick else 20
    t_ll = best_of(lambda: sustain._calculate_likelihood(data, seq, f), reps)
    iters = 50 if quick else 500
    # The ordinal model indexes seq_sigma per subtype and event.
    seq_sigma = 1.0 if name.startswith("mixture") else np.ones((n_subtypes, n_events))
    f_sigma = 0.01
    t_mcmc = best_of(lambda: sustain._perform_mcmc(data, seq, f, iters, seq_sigma, f_sigma), 1 if quick else 3)
    t_em = best_of(lambda: sustain._optimise_parameters(data, seq, f, np.random.default_rng(5)), 1 if quick else 2)
    print(json.dumps({"model": name, "loglike_s": t_ll, "mcmc_iter_s": t_mcmc / iters,
                      "em_pass_s": t_em}), flush=True)


def main():
    quick = "--quick" in sys.argv
    rng = np.random.default_rng(11)
    out = tempfile.mkdtemp()
    l_yes, l_no = mixture_workload(rng)
    mix = MixtureSustain(l_yes, l_no, [str(i) for i in range(50)], 1, 3, 10, out, "bench",
                         False, use_dp=True, seed=1)
    time_model("mixture_M2000_B50_S3", mix, mix._MixtureSustain__sustainData, 50, 3, rng, quick)
    prob_nl, prob_score, score_vals = ordinal_workload(rng)
    ordn = OrdinalSustain(prob_nl, prob_score, score_vals, [str(i) for i in range(10)], 1, 3, 10,
                          out, "bench", False, seed=1)
    time_model("ordinal_M1000_B10_N30_S3", ordn, ordn._OrdinalSustain__sustainData, 30, 3, rng,
               quick)


if __name__ == "__main__":
    main()
