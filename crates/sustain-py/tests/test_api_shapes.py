"""Every public method returns what pySuStaIn returns: the same types, shapes and
dtypes (recorded from pySuStaIn by data/record_reference_shapes.py), and the same
pickle files with the same keys."""

import contextlib
import io
import json
import os
import pathlib
import pickle

import numpy as np
import pytest

import sustain_rs
from conftest import mixture_cohort, ordinal_cohort, zscore_cohort
from data.record_reference_shapes import describe

REFERENCE = json.loads((pathlib.Path(__file__).parent / "data" / "reference_shapes.json").read_text())
M, N_ITER, N_S, FOLDS = 60, 200, 2, 3


def pickle_keys(path, dims):
    with open(path, "rb") as f:
        d = pickle.load(f)
    d.pop("sustain_rs")  # the fingerprint and summaries this package adds
    return {k: describe(v, dims) for k, v in sorted(d.items())}


def make(name, out):
    if name in ("ZscoreSustain", "ZscoreSustainMissingData"):
        data, z_vals, z_max, labels = zscore_cohort(M, missing=0.1 if name.endswith("MissingData") else 0.0)
        cls = getattr(sustain_rs, name)
        model = cls(data, z_vals, z_max, labels, 2, N_S, N_ITER, out, "x", False, seed=1, n_chains=2)
        new = (zscore_cohort(7, seed=9)[0],)
    elif name == "MixtureSustain":
        L_yes, L_no, labels = mixture_cohort(M)
        model = sustain_rs.MixtureSustain(L_yes, L_no, labels, 2, N_S, N_ITER, out, "x", False, seed=1, n_chains=2)
        new = (L_yes[:7], L_no[:7])
    else:
        prob_nl, prob_score, score_vals, labels = ordinal_cohort(M)
        model = sustain_rs.OrdinalSustain(prob_nl, prob_score, score_vals, labels, 2, N_S, N_ITER, out, "x", False,
                                          seed=1, n_chains=2)
        new = (prob_nl[:7], prob_score[:7])
    return model, new


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_same_types_shapes_and_dtypes_as_pysustain(name, tmp_path):
    ref = REFERENCE[name]
    dims = ref["dims"]
    model, new = make(name, tmp_path)
    test_idxs = [np.arange(i, M, FOLDS) for i in range(FOLDS)]
    with contextlib.redirect_stdout(io.StringIO()):
        res = model.run_sustain_algorithm()
        cv = model.cross_validate_sustain_model(test_idxs)
        staged = model.subtype_and_stage_individuals_newData(*new, res[0], res[1], 10)
    assert describe(list(res), dims) == ref["run_sustain_algorithm"]
    assert describe(list(cv), dims) == ref["cross_validate_sustain_model"]
    assert describe(list(staged), dims | {"M": 7}) == ref["subtype_and_stage_individuals_newData"]
    pdir = tmp_path / "pickle_files"
    assert pickle_keys(pdir / "x_subtype1.pickle", dims) == ref["subtype_pickle"]
    assert pickle_keys(pdir / "x_fold0_subtype1.pickle", dims | {"M": M - M // FOLDS}) == ref["fold_pickle"]


def test_outputs_mean_what_pysustain_means(tmp_path):
    data, z_vals, z_max, labels = zscore_cohort(M)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 2, 400, tmp_path, "x", False, seed=3,
                                     n_chains=2, progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        seq, f, ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage, pss = model.run_sustain_algorithm()
    n_events = 12
    # Every sample's sequence is a permutation of the events.
    assert np.all(np.sort(seq, axis=1) == np.arange(n_events)[None, :, None])
    assert np.allclose(f.sum(axis=0), 1.0)
    # prob_subtype_stage: per subject a distribution over stages and subtypes.
    assert np.allclose(pss.sum(axis=(1, 2)), 1.0)
    with open(tmp_path / "pickle_files" / "x_subtype1.pickle", "rb") as fh:
        prob_subtype = pickle.load(fh)["prob_subtype"]
    assert np.allclose(prob_subtype.sum(axis=1), 1.0)
    assert np.array_equal(ml_subtype[:, 0], np.argmax(prob_subtype, axis=1))
    assert np.allclose(prob_ml_subtype[:, 0], prob_subtype[np.arange(M), ml_subtype[:, 0].astype(int)])
    stage = pss[np.arange(M), :, ml_subtype[:, 0].astype(int)]
    assert np.array_equal(ml_stage[:, 0], np.argmax(stage, axis=1))
    assert np.allclose(prob_ml_stage[:, 0], stage[np.arange(M), ml_stage[:, 0].astype(int)])
    # A second run loads the pickles (no fit) and returns the same arrays.
    again = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 2, 400, tmp_path, "x", False, seed=3,
                                     n_chains=2, progress=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        res2 = again.run_sustain_algorithm()
    assert "Found pickle file" in out.getvalue()
    assert np.array_equal(res2[0], seq) and np.array_equal(res2[6], pss)
    d = again.diagnostics(2)
    assert isinstance(d["converged"], bool) and d["rhat_loglike"] > 0.9
    assert d["summary"]["n_subtypes"] == 2


def test_inference_data_has_chains_and_draws(tmp_path):
    arviz = pytest.importorskip("arviz", reason="NOTICE: to_inference_data needs arviz")
    data, z_vals, z_max, labels = zscore_cohort(M)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 2, 400, tmp_path, "x", False, seed=3,
                                     n_chains=4, progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        seq, f, *_ = model.run_sustain_algorithm()
    idata = model.to_inference_data(2)
    post = idata.posterior
    assert post.sizes["chain"] == 4 and post.sizes["draw"] == 100
    assert post["f"].shape == (4, 100, 2) and post["event_position"].shape == (4, 100, 2, 12)
    # The draws are the returned samples, chain after chain.
    assert np.allclose(post["f"].values.reshape(400, 2).T, f)
    assert np.array_equal(post["event_position"].values[0, 0], np.argsort(seq[:, :, 0], axis=1))
    rhat = arviz.rhat(idata, var_names=["log_likelihood_total"])
    assert np.isfinite(float(rhat["log_likelihood_total"]))


def test_until_converged_runs_rounds_and_says_so(tmp_path):
    data, z_vals, z_max, labels = zscore_cohort(M)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 1, 400, tmp_path, "x", False, seed=3,
                                     n_chains=2, progress=False, until_converged=True, max_iterations=3200)
    with contextlib.redirect_stdout(io.StringIO()):
        seq, f, *_ = model.run_sustain_algorithm()
    summary = model.diagnostics(1)["summary"]
    assert seq.shape[2] >= 400 and seq.shape[2] == f.shape[1]
    assert seq.shape[2] <= 2 * 3200
    # The samples are every round's: the chains ran past N_iterations_MCMC unless
    # the first round already converged.
    if not model.diagnostics(1)["converged"]:
        assert seq.shape[2] > 400
    assert len(summary["convergence"]["rounds"]) >= 1
    if not model.diagnostics(1)["converged"]:
        assert summary["nonconvergence"], "a run that did not converge says why"


def test_replica_exchange_is_reported_and_needs_rounds(tmp_path):
    data, z_vals, z_max, labels = zscore_cohort(M)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 1, 400, tmp_path, "x", False, seed=3,
                                     n_chains=2, progress=False, until_converged=True, max_iterations=3200,
                                     tempering=3)
    with contextlib.redirect_stdout(io.StringIO()):
        model.run_sustain_algorithm()
    ladder = model.diagnostics(1)["summary"]["convergence"]["tempering"]
    assert len(ladder["betas"]) == 3 and ladder["betas"][0] == 1.0
    assert len(ladder["swap_rates"]) == 2
    with pytest.raises(ValueError, match="until_converged"):
        sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 2, 1, 400, tmp_path, "y", False, seed=3,
                                 tempering=3)
