"""The reference's simulators on ZscoreSustain, OrdinalSustain and MixtureSustain
draw what pySuStaIn draws: the arrays of data/simulators.npz (made by
data/record_simulators.py with pySuStaIn), from the same seeds of numpy's global
generator, and the same number of draws (the next draw matches too)."""

import math
import pathlib
import sys
import types

import numpy as np
import pytest

import sustain_rs
from sustain_rs._normal_quantile import norm_ppf

G = np.load(pathlib.Path(__file__).resolve().parent / "data" / "simulators.npz")


def same(got, name):
    np.testing.assert_allclose(got, G[name], rtol=1e-13, atol=0, err_msg=name)


def same_next_draw(name):
    """The global generator is where the reference left it."""
    assert np.random.rand() == G[name + "_next"], name


def captured(base):
    """``base`` with a constructor that keeps its positional arguments (the arrays
    test_sustain builds the model from)."""
    class Captured(base):
        def __init__(self, *args, **kwargs):
            self.args = args
    return Captured


def test_normal_quantile_is_scipys():
    ndtri = pytest.importorskip("scipy.special").ndtri
    rs = np.random.RandomState(0)
    y = np.concatenate([rs.rand(20000), 0.5 + rs.uniform(-1e-7, 1e-7, 2000), 10 ** rs.uniform(-300, -1, 2000),
                        1 - 10 ** rs.uniform(-16, -1, 2000), [0.5, 2.0 ** -53, 1 - 2.0 ** -53, math.exp(-2)]])
    np.testing.assert_allclose(norm_ppf(y), ndtri(y), rtol=2e-15, atol=0)
    assert np.array_equal(norm_ppf([0.0, 1.0]), [-np.inf, np.inf])
    assert np.isnan(norm_ppf(1.5))


def test_zscore_simulators_draw_what_the_reference_draws():
    z_vals = np.array([[1, 2, 3], [1, 2, 0], [0.5, 0, 0], [1, 1.5, 0]])
    z_max = np.array([5.0, 4.0, 2.0, 3.0])
    np.random.seed(7)
    seqs = sustain_rs.ZscoreSustain.generate_random_model(z_vals, 3)
    same(seqs, "z_model")
    same_next_draw("z_model")
    np.random.seed(11)
    out = sustain_rs.ZscoreSustain.generate_data(G["z_subtypes"], G["z_stages"], seqs, z_vals, z_max)
    for name, got in zip(["z_data", "z_denoised", "z_stage_value"], out):
        same(got, name)
    same_next_draw("z_data")
    # Each biomarker's thresholds in increasing order in every sequence.
    score, biomarker = z_vals.T.ravel(), np.tile(np.arange(4), 3)
    score, biomarker = score[score > 0], biomarker[score > 0]
    for s in seqs.astype(int):
        for b in range(4):
            assert np.all(np.diff(score[s][biomarker[s] == b]) > 0)


def test_zscore_test_sustain_builds_the_reference_cohort():
    for cls in [sustain_rs.ZscoreSustain, sustain_rs.ZscoreSustainMissingData]:
        m = captured(cls).test_sustain(5, 40, 2, G["truth"], {}, seed=42)
        for name, got in zip(["z_test_data", "z_test_z_vals", "z_test_z_max"], m.args):
            same(got, name)
        same_next_draw("z_test")


def test_ordinal_simulators_draw_what_the_reference_draws():
    score_vals = np.array([[1, 2, 3], [1, 2, 0], [1, 0, 0]])
    np.random.seed(8)
    seqs = sustain_rs.OrdinalSustain.generate_random_model(score_vals, 2)
    same(seqs, "o_model")
    same_next_draw("o_model")
    stage_score = score_vals.T.ravel()
    keep = np.nonzero(stage_score)[0]
    np.random.seed(12)
    prob_nl, prob_score = sustain_rs.OrdinalSustain.generate_data(
        3, 30, 3, np.tile(np.arange(3), 3)[keep], G["o_p_nl"], G["o_p_score"], G["o_subtypes"], seqs,
        G["o_stages"], stage_score[keep])
    same(prob_nl, "o_prob_nl")
    same(prob_score, "o_prob_score")
    same_next_draw("o_data")


def test_ordinal_test_sustain_builds_the_reference_cohort():
    m = captured(sustain_rs.OrdinalSustain).test_sustain(4, 40, 2, G["truth"], {}, seed=42)
    for name, got in zip(["o_test_prob_nl", "o_test_prob_score", "o_test_score_vals"], m.args):
        same(got, name)
    same_next_draw("o_test")


def test_mixture_simulators_draw_what_the_reference_draws(capsys):
    np.random.seed(9)
    seqs = sustain_rs.MixtureSustain.generate_random_model(6, 3)
    same(seqs, "e_model")
    same_next_draw("e_model")
    assert len({tuple(s) for s in seqs}) == 3
    np.random.seed(10)
    same(sustain_rs.MixtureSustain.generate_random_model(2, 3), "e_model_dup")
    same_next_draw("e_model_dup")
    assert "could not find unique sequences" in capsys.readouterr().out
    for style in ["mixture_GMM", "mixture_KDE"]:
        np.random.seed(13)
        data, denoised = sustain_rs.MixtureSustain.generate_data(G["e_subtypes"], G["e_stages"], seqs, style)
        same(data, f"e_data_{style}")
        same(denoised, f"e_denoised_{style}")
        same_next_draw(f"e_data_{style}")
    with pytest.raises(ValueError, match="mixture_style"):
        sustain_rs.MixtureSustain.generate_data(G["e_subtypes"], G["e_stages"], seqs, "mixture_XYZ")


class _RecordedMixture:
    """Stands in for kde_ebm's fitted mixture of biomarker ``i``: checks it is asked
    for the reference's values and answers with the reference's likelihoods."""

    def __init__(self, i):
        self.i = i

    def pdf(self, theta, x):
        np.testing.assert_allclose(x, G["e_fit_data"][:, self.i], rtol=1e-13, atol=0)
        return G["e_test_L_no"][:, self.i], G["e_test_L_yes"][:, self.i]


def test_mixture_test_sustain_fits_the_reference_cohort(tmp_path, monkeypatch):
    """create_mixture_data hands kde_ebm the reference's values and labels and
    turns its mixtures into L_yes / L_no as the reference (kde_ebm replaced here by
    the reference's recorded fit); test_sustain saves them to mixture_arrays.npz
    in the working directory and reuses that file, as the reference."""
    seen = {}

    def fit_all_gmm_models(data, labels):
        seen["data"], seen["labels"] = data, labels
        return [_RecordedMixture(i) for i in range(data.shape[1])]

    fake = types.ModuleType("kde_ebm.mixture_model")
    fake.fit_all_gmm_models, fake.fit_all_kde_models = fit_all_gmm_models, None
    monkeypatch.setitem(sys.modules, "kde_ebm", types.ModuleType("kde_ebm"))
    monkeypatch.setitem(sys.modules, "kde_ebm.mixture_model", fake)
    monkeypatch.chdir(tmp_path)
    m = captured(sustain_rs.MixtureSustain).test_sustain(5, 40, 2, G["truth"], {}, seed=42)
    same(seen["data"], "e_fit_data")
    np.testing.assert_array_equal(seen["labels"], G["e_fit_labels"])
    same(m.args[0], "e_test_L_yes")
    same(m.args[1], "e_test_L_no")
    same_next_draw("e_test")
    assert (tmp_path / "mixture_arrays.npz").is_file()
    seen.clear()
    again = captured(sustain_rs.MixtureSustain).test_sustain(5, 40, 2, G["truth"], {}, seed=1)
    assert not seen  # loaded, not fitted again
    np.testing.assert_array_equal(again.args[0], m.args[0])


def test_mixture_test_sustain_without_kde_ebm_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kde_ebm", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImportError, match="kde_ebm.*mixture_arrays.npz"):
        sustain_rs.MixtureSustain.test_sustain(5, 40, 2, G["truth"], {}, seed=42)


def test_mixture_test_sustain_with_kde_ebm_gives_the_reference_likelihoods(tmp_path, monkeypatch):
    """With kde_ebm installed, its real GMM fit of our cohort: the reference's."""
    pytest.importorskip("kde_ebm.mixture_model")
    monkeypatch.chdir(tmp_path)
    m = captured(sustain_rs.MixtureSustain).test_sustain(5, 40, 2, G["truth"], {}, seed=42)
    np.testing.assert_allclose(m.args[0], G["e_test_L_yes"], rtol=1e-9)
    np.testing.assert_allclose(m.args[1], G["e_test_L_no"], rtol=1e-9)


KWARGS = dict(N_startpoints=2, N_S_max=2, N_iterations_MCMC=200, dataset_name="sim",
              use_parallel_startpoints=False)


@pytest.mark.parametrize("cls, n_biomarkers, n_events", [(sustain_rs.ZscoreSustain, 4, 11),
                                                      (sustain_rs.OrdinalSustain, 3, 9)])
def test_simulated_cohort_runs_through_a_fit(cls, n_biomarkers, n_events, tmp_path):
    truth = np.random.RandomState(0).randint(0, 2, 60)
    labels = [f"b{i}" for i in range(n_biomarkers)]
    m = cls.test_sustain(n_biomarkers, 60, 2, truth, dict(KWARGS, biomarker_labels=labels,
                                                          output_folder=str(tmp_path)), seed=3)
    assert isinstance(m, cls)
    samples_sequence, samples_f, ml_subtype = m.run_sustain_algorithm()[:3]
    assert samples_sequence.shape[:2] == (2, n_events)
    assert np.all(np.isfinite(samples_f)) and set(np.ravel(ml_subtype)) <= {0, 1}


def test_simulated_mixture_cohort_runs_through_a_fit(tmp_path, monkeypatch):
    """L_yes / L_no from the reference's recorded fit of the simulated cohort."""
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "mixture_arrays.npz", L_yes=G["e_test_L_yes"], L_no=G["e_test_L_no"])
    m = sustain_rs.MixtureSustain.test_sustain(5, 40, 2, G["truth"], dict(
        KWARGS, biomarker_labels=list("abcde"), output_folder=str(tmp_path)))
    samples_sequence, samples_f, ml_subtype = m.run_sustain_algorithm()[:3]
    assert samples_sequence.shape[:2] == (2, 5)
    assert np.all(np.isfinite(samples_f)) and set(np.ravel(ml_subtype)) <= {0, 1}
