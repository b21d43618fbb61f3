"""Golden likelihoods of the mixed-type model, made with the reference
(pySuStaIn `MixedTypeSustain`).

Run from outside a pySuStaIn clone, with a venv holding numpy==1.26.4 scipy pandas
scikit-learn tqdm pathos dill matplotlib and `pip install --no-deps <clone>`:

    V/bin/python make_golden.py OUT/cases.json

Four small cohorts (z-score + ordinal + event; z-score + event; ordinal + event;
z-score + ordinal with zeros in z_vals and score_vals). The first three come from
the reference's own `generate_random_model` / `generate_data` (GMM event
likelihoods, ordinal scores with p_correct 0.9); the fourth is drawn here, its
ordinal probabilities built from raw scores as generate_data builds them (per
biomarker, Z its highest score: `sustain_model::ordinal_score_probabilities`). For each
cohort: the inputs, and for random valid sequences (`generate_random_model`) and
fractions the reference's total log-likelihood from
`AbstractSustain._calculate_likelihood`, and `log p_perm_k` (stage likelihoods
with the 1/(N+1) prior) of the first subtype, first 5 subjects, of evaluation 0.
For the first cohort also the reference's staging of its subjects
(`subtype_and_stage_individuals_newData`, the 4 evaluations as samples, 4 drawn):
ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage.
"""
import json
import os
import sys
import tempfile

import numpy as np
from pySuStaIn.MixedTypeSustain import MixedTypeSustain

out = sys.argv[1]
P_CORRECT = 0.9


def probabilities(scores, score_vals):
    """prob_nl and prob_score (subjects x biomarkers x levels) from raw scores, as
    generate_data builds them: per biomarker, Z its highest score."""
    nl = np.zeros(scores.shape)
    ps = np.zeros(scores.shape + (score_vals.shape[1],))
    for b in range(score_vals.shape[0]):
        wrong = (1 - P_CORRECT) / np.max(score_vals[b])
        nl[:, b] = np.where(scores[:, b] == 0, P_CORRECT, wrong)
        for j in range(score_vals.shape[1]):
            lvl = score_vals[b, j]
            ps[:, b, j] = np.where(scores[:, b] == lvl, P_CORRECT, wrong) if lvl > 0 else wrong
    return nl, ps


def reference_scores(nl, ps):
    """Raw scores back from the reference's probabilities (score 0 where prob_nl is
    the correct one, else the level whose probability is)."""
    scores = np.zeros(nl.shape, dtype=int)
    for m in range(nl.shape[0]):
        for b in range(nl.shape[1]):
            if nl[m, b] == P_CORRECT:
                continue
            hit = np.nonzero(ps[m, b, :] == P_CORRECT)[0]
            scores[m, b] = hit[0] + 1 if len(hit) else ps.shape[2] + 1
    return scores


def generated(name, n, z_vals, z_max, score_vals, n_event, n_subtypes, seed):
    rng = np.random.default_rng(seed)
    nz = 0 if z_vals is None else z_vals.shape[0]
    S = MixedTypeSustain.generate_random_model(z_vals, score_vals, n_event, n_subtypes, seed=seed)
    N = S.shape[1]
    subtypes = rng.integers(0, n_subtypes, n)
    stages = rng.integers(0, N + 1, n)
    z, scores, _, nl, ps, yes, no = MixedTypeSustain.generate_data(
        subtypes, stages, S, z_vals, z_max, score_vals, n_event,
        prob_correct_ordinal=P_CORRECT, seed=seed)
    if nl is not None:
        scores = reference_scores(nl, ps)
        nl2, ps2 = probabilities(scores, score_vals)
        assert np.allclose(nl, nl2, rtol=0, atol=1e-15) and np.allclose(ps, ps2, rtol=0, atol=1e-15)
    return dict(name=name, z=z, z_vals=z_vals, z_max=z_max, scores=scores, score_vals=score_vals,
                nl=nl, ps=ps, yes=yes, no=no, n_subtypes=n_subtypes, seed=seed)


def drawn(name, n, z_vals, z_max, score_vals, n_subtypes, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(1.0, 1.5, (n, z_vals.shape[0]))
    scores = np.stack([rng.integers(0, int(np.max(row)) + 1, n) for row in score_vals], axis=1)
    nl, ps = probabilities(scores, score_vals)
    return dict(name=name, z=z, z_vals=z_vals, z_max=z_max, scores=scores, score_vals=score_vals,
                nl=nl, ps=ps, yes=None, no=None, n_subtypes=n_subtypes, seed=seed)


def as_list(a):
    return None if a is None else np.asarray(a).tolist()


def run(c):
    tmp = tempfile.mkdtemp()
    labels = lambda p, k: [f"{p}{i}" for i in range(k)]
    nz = 0 if c["z"] is None else c["z"].shape[1]
    no_ = 0 if c["nl"] is None else c["nl"].shape[1]
    ne = 0 if c["yes"] is None else c["yes"].shape[1]
    model = MixedTypeSustain(
        c["z"], c["z_vals"] if nz else None, c["z_max"] if nz else None, labels("z", nz),
        c["nl"], c["ps"], c["score_vals"] if no_ else None, labels("o", no_),
        c["yes"], c["no"], labels("e", ne),
        1, c["n_subtypes"], 10, tmp, c["name"], False, seed=0)
    data = model._MixedTypeSustain__sustainData
    rng = np.random.default_rng(c["seed"] + 1000)
    evals = []
    for i in range(4):
        S = MixedTypeSustain.generate_random_model(
            c["z_vals"] if nz else None, c["score_vals"] if no_ else None, ne, c["n_subtypes"],
            seed=int(rng.integers(1 << 30)))
        f = rng.dirichlet(np.ones(c["n_subtypes"]))
        loglike, _, _, _, p_perm_k = model._calculate_likelihood(data, S.astype(float), f)
        e = dict(sequences=S.tolist(), f=f.tolist(), loglike=float(loglike))
        if i == 0:
            e["log_stage_likelihood_first5"] = np.log(p_perm_k[:5, :, 0]).tolist()
        evals.append(e)
    staging = None
    if c["name"] == "z_ordinal_event":
        # The evaluations' mixtures as 4 samples: the reference's staging of the
        # cohort's own subjects with them.
        seq = np.stack([np.array(e["sequences"], float) for e in evals], axis=2)
        f = np.stack([np.array(e["f"]) for e in evals], axis=1)
        out = model.subtype_and_stage_individuals_newData(c["z"], c["nl"], c["ps"], c["yes"], c["no"], seq, f, 4)
        staging = dict(ml_subtype=out[0].ravel().tolist(), prob_ml_subtype=out[1].ravel().tolist(),
                       ml_stage=out[2].ravel().tolist(), prob_ml_stage=out[3].ravel().tolist())
    return dict(
        name=c["name"], n_events=int(model.num_stages), staging=staging,
        z_vals=as_list(c["z_vals"]) if nz else [], z_max=as_list(c["z_max"]) if nz else [],
        score_vals=as_list(c["score_vals"]) if no_ else [], n_event=ne, p_correct=P_CORRECT,
        zscores=as_list(c["z"]) if nz else [], scores=as_list(c["scores"]) if no_ else [],
        p_event=as_list(c["yes"]) if ne else [], p_no_event=as_list(c["no"]) if ne else [],
        evaluations=evals)


cohorts = [
    generated("z_ordinal_event", 40, np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3]]), np.array([5, 5, 4]),
              np.array([[1, 2, 3], [1, 2, 3]]), 3, 3, 1),
    generated("z_event", 30, np.array([[1, 2], [1, 2], [1, 2], [1, 2]]), np.array([3, 4, 3, 4]),
              None, 3, 2, 2),
    generated("ordinal_event", 30, None, None, np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3]]), 2, 3, 3),
    drawn("zeros_z_ordinal", 30, np.array([[1, 2, 0], [1, 2, 3], [0, 1.5, 2.5]]), np.array([3, 5, 4]),
          np.array([[1, 2, 0], [1, 2, 3]]), 2, 4),
]
cases = [run(c) for c in cohorts]
with open(out, "w") as fh:
    json.dump(dict(source="pySuStaIn MixedTypeSustain, AbstractSustain._calculate_likelihood",
                   cohorts=cases), fh, separators=(",", ":"))
