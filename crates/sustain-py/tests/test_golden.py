"""Staging and test-set likelihoods equal pySuStaIn's on the same samples (golden
values recorded from pySuStaIn by data/record_staging_golden.py)."""

import pathlib

import numpy as np
import pytest

import sustain_rs

G = np.load(pathlib.Path(__file__).parent / "data" / "staging_golden.npz")


def check(got, family):
    for i, value in enumerate(got):
        want = G[f"{family}_out{i}"]
        assert value.shape == want.shape, (family, i)
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-12, err_msg=f"{family} output {i}")


def test_zscore_missing_data_staging_and_likelihoods():
    data = G["zscore_data"]
    model = sustain_rs.ZscoreSustainMissingData(data, G["zscore_z_vals"], G["zscore_z_max"], ["a", "b", "c", "d"],
                                                1, 2, 10, "unused", "g", False, seed=1)
    check(model.subtype_and_stage_individuals_newData(data, G["zscore_seq"], G["zscore_f"], 20), "zscore")
    lik = model._evaluate_likelihood_setofsamples(model._ZscoreSustain__sustainData, G["zscore_seq"], G["zscore_f"])
    np.testing.assert_allclose(lik, G["zscore_lik"], rtol=1e-9)


def test_mixture_staging():
    model = sustain_rs.MixtureSustain(G["mixture_L_yes"], G["mixture_L_no"], list("abcde"), 1, 3, 10, "unused", "g",
                                      False, seed=1)
    check(model.subtype_and_stage_individuals_newData(G["mixture_L_yes"], G["mixture_L_no"], G["mixture_seq"],
                                                      G["mixture_f"], 20), "mixture")


def test_ordinal_staging():
    model = sustain_rs.OrdinalSustain(G["ordinal_prob_nl"], G["ordinal_prob_score"], G["ordinal_score_vals"],
                                      list("abc"), 1, 2, 10, "unused", "g", False, seed=1)
    check(model.subtype_and_stage_individuals_newData(G["ordinal_prob_nl"], G["ordinal_prob_score"],
                                                      G["ordinal_seq"], G["ordinal_f"], 20), "ordinal")


@pytest.mark.parametrize("n", [1, 50_000])
def test_staging_one_subject_and_many(n):
    """Fast for one subject and for 50,000 (pySuStaIn's takes about 29 h for 47,000)."""
    rng = np.random.default_rng(1)
    data = rng.normal(1.5, 1.5, size=(n, 4))
    model = sustain_rs.ZscoreSustainMissingData(G["zscore_data"], G["zscore_z_vals"], G["zscore_z_max"],
                                                ["a", "b", "c", "d"], 1, 2, 10, "unused", "g", False, seed=1)
    out = model.subtype_and_stage_individuals_newData(data, G["zscore_seq"], G["zscore_f"], 50)
    assert out[6].shape == (n, 10, 2) and np.allclose(out[6].sum(axis=(1, 2)), 1.0)
