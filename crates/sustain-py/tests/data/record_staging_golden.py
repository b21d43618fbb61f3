"""Golden values of pySuStaIn's staging (subtype_and_stage_individuals_newData) and
test-set likelihoods (_evaluate_likelihood_setofsamples) on fixed samples, for
tests/test_golden.py. Run with pySuStaIn installed, from outside its clone:

    python record_staging_golden.py staging_golden.npz
"""
import sys

import numpy as np
import pySuStaIn


def random_samples(rng, n_s, events_of_biomarker, n_samples, n_events):
    """Valid sequences (each biomarker's events in increasing order) and fractions."""
    seq = np.zeros((n_s, n_events, n_samples))
    for i in range(n_samples):
        for s in range(n_s):
            owner = np.concatenate([[b] * len(ev) for b, ev in enumerate(events_of_biomarker)])
            rng.shuffle(owner)
            nxt = [0] * len(events_of_biomarker)
            for pos, b in enumerate(owner):
                seq[s, pos, i] = events_of_biomarker[b][nxt[b]]
                nxt[b] += 1
    f = rng.dirichlet(np.ones(n_s), size=n_samples).T
    return seq, f


def main(path):
    rng = np.random.default_rng(5)
    out = {}
    B, M, S, N = 4, 30, 2, 50
    z_vals = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 0.0], [1.0, 2.0, 3.0], [0.5, 0.0, 0.0]])
    z_max = np.array([5.0, 4.0, 5.0, 2.0])
    n_events = int(np.count_nonzero(z_vals))
    # Event e of pySuStaIn: column by column, biomarkers in order.
    ev = [[] for _ in range(B)]
    e = 0
    for j in range(z_vals.shape[1]):
        for b in range(B):
            if z_vals[b, j] > 0:
                ev[b].append(e)
                e += 1
    data = rng.normal(1.5, 1.5, size=(M, B))
    data[rng.random(data.shape) < 0.1] = np.nan
    seq, f = random_samples(rng, S, ev, N, n_events)
    model = pySuStaIn.ZscoreSustainMissingData(data, z_vals, z_max, [f"b{i}" for i in range(B)], 1, S, 10,
                                               "unused", "g", False, seed=1)
    staged = model.subtype_and_stage_individuals_newData(data, seq, f, 20)
    from pySuStaIn.ZScoreSustainMissingData import ZScoreSustainData
    lik = model._evaluate_likelihood_setofsamples(ZScoreSustainData(data, n_events), seq, f)
    out.update({f"zscore_{k}": v for k, v in dict(data=data, z_vals=z_vals, z_max=z_max, seq=seq, f=f, lik=lik).items()})
    out.update({f"zscore_out{i}": v for i, v in enumerate(staged)})

    L_yes = rng.uniform(0.05, 2.0, size=(M, 5)); L_no = rng.uniform(0.05, 2.0, size=(M, 5))
    seq, f = random_samples(rng, 3, [[b] for b in range(5)], N, 5)
    model = pySuStaIn.MixtureSustain(L_yes, L_no, [f"b{i}" for i in range(5)], 1, 3, 10, "unused", "g", False, seed=1)
    staged = model.subtype_and_stage_individuals_newData(L_yes, L_no, seq, f, 20)
    out.update({f"mixture_{k}": v for k, v in dict(L_yes=L_yes, L_no=L_no, seq=seq, f=f).items()})
    out.update({f"mixture_out{i}": v for i, v in enumerate(staged)})

    score_vals = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    scores = np.stack([rng.integers(0, 4, M), rng.integers(0, 3, M), rng.integers(0, 2, M)], axis=1)
    p = 0.85
    prob_nl = np.where(scores == 0, p, (1 - p) / 3)
    prob_score = np.stack([np.where(scores == j, p, (1 - p) / 3) for j in (1, 2, 3)], axis=2)
    ev = [[] for _ in range(3)]
    e = 0
    for j in range(3):
        for b in range(3):
            if score_vals[b, j] > 0:
                ev[b].append(e)
                e += 1
    seq, f = random_samples(rng, 2, ev, N, e)
    model = pySuStaIn.OrdinalSustain(prob_nl, prob_score, score_vals, ["a", "b", "c"], 1, 2, 10, "unused", "g",
                                     False, seed=1)
    staged = model.subtype_and_stage_individuals_newData(prob_nl, prob_score, seq, f, 20)
    out.update({f"ordinal_{k}": v for k, v in dict(prob_nl=prob_nl, prob_score=prob_score, score_vals=score_vals,
                                                   seq=seq, f=f).items()})
    out.update({f"ordinal_out{i}": v for i, v in enumerate(staged)})
    np.savez(path, **out)


if __name__ == "__main__":
    main(sys.argv[1])
