"""MixedTypeSustain against the reference (pySuStaIn's MixedTypeSustain): its
log-likelihoods and staging on the golden cohorts of
crates/sustain-model/tests/data/mixed_golden (made by make_golden.py there)."""

import json
import pathlib

import numpy as np
import pytest

import sustain_rs

GOLDEN = (pathlib.Path(__file__).resolve().parents[2] / "sustain-model" / "tests" / "data" / "mixed_golden"
          / "cases.json")
COHORTS = json.loads(GOLDEN.read_text())["cohorts"]


def probabilities(scores, score_vals, p_correct):
    """prob_nl and prob_score from raw scores, as the reference's generate_data."""
    nl = np.zeros(scores.shape)
    ps = np.zeros(scores.shape + (score_vals.shape[1],))
    for b in range(score_vals.shape[0]):
        wrong = (1 - p_correct) / score_vals[b].max()
        nl[:, b] = np.where(scores[:, b] == 0, p_correct, wrong)
        for j in range(score_vals.shape[1]):
            ps[:, b, j] = np.where(scores[:, b] == score_vals[b, j], p_correct, wrong)
    return nl, ps


def inputs(c):
    """The cohort as MixedTypeSustain's split inputs (None for absent blocks)."""
    z = np.array(c["zscores"]) if c["zscores"] else None
    z_vals = np.array(c["z_vals"], float) if z is not None else None
    z_max = np.array(c["z_max"], float) if z is not None else None
    nl = ps = sv = None
    if c["scores"]:
        sv = np.array(c["score_vals"], float)
        nl, ps = probabilities(np.array(c["scores"]), sv, c["p_correct"])
    yes = np.array(c["p_event"]) if c["p_event"] else None
    no = np.array(c["p_no_event"]) if c["p_no_event"] else None
    return z, z_vals, z_max, nl, ps, sv, yes, no


def model(c, tmp_path):
    z, z_vals, z_max, nl, ps, sv, yes, no = inputs(c)
    labels = lambda p, a: [f"{p}{i}" for i in range(0 if a is None else a.shape[1])]  # noqa: E731
    return sustain_rs.MixedTypeSustain(z, z_vals, z_max, labels("z", z), nl, ps, sv, labels("o", nl),
                                       yes, no, labels("e", yes), 2, 3, 100, str(tmp_path), "mixed", False,
                                       seed=1)


def samples(c):
    ev = c["evaluations"]
    seq = np.stack([np.array(e["sequences"], float) for e in ev], axis=2)
    f = np.stack([np.array(e["f"]) for e in ev], axis=1)
    return seq, f, np.array([e["loglike"] for e in ev])


@pytest.mark.parametrize("c", COHORTS, ids=[c["name"] for c in COHORTS])
def test_loglikes_are_the_reference(c, tmp_path):
    m = model(c, tmp_path)
    seq, f, want = samples(c)
    p = m._evaluate_likelihood_setofsamples(m._MixedTypeSustain__sustainData, seq, f)
    np.testing.assert_allclose(np.log(p).sum(axis=0), want, rtol=1e-9)
    assert m.num_stages == c["n_events"]


def test_staging_is_the_reference(tmp_path):
    c = COHORTS[0]
    m = model(c, tmp_path)
    z, _, _, nl, ps, _, yes, no = inputs(c)
    seq, f, _ = samples(c)
    out = m.subtype_and_stage_individuals_newData(z, nl, ps, yes, no, seq, f, 4)
    want = c["staging"]
    np.testing.assert_array_equal(out[0].ravel(), want["ml_subtype"])
    np.testing.assert_allclose(out[1].ravel(), want["prob_ml_subtype"], rtol=1e-9)
    np.testing.assert_array_equal(out[2].ravel(), want["ml_stage"])
    np.testing.assert_allclose(out[3].ravel(), want["prob_ml_stage"], rtol=1e-9)


def test_fit_and_plot(tmp_path):
    c = COHORTS[0]
    m = model(c, tmp_path)
    out = m.run_sustain_algorithm()
    samples_sequence, samples_f = out[0], out[1]
    assert samples_sequence.shape[:2] == (3, c["n_events"])
    figs, _ = sustain_rs.MixedTypeSustain.plot_positional_var(samples_sequence, samples_f, 40, m.mixed_data_vals,
                                                              biomarker_labels=m.biomarker_labels)
    assert figs


def test_bad_inputs_are_value_errors(tmp_path):
    c = COHORTS[0]
    z, z_vals, z_max, nl, ps, sv, yes, no = inputs(c)
    bad = yes.copy()
    bad[3, 1] = -0.5
    with pytest.raises(ValueError, match="row 3, column 6"):
        sustain_rs.MixedTypeSustain(z, z_vals, z_max, ["a", "b", "c"], nl, ps, sv, ["d", "e"], bad, no,
                                    ["f", "g", "h"], 1, 1, 10, str(tmp_path), "x", False)
    with pytest.raises(ValueError, match="biomarker labels"):
        sustain_rs.MixedTypeSustain(z, z_vals, z_max, ["a"], nl, ps, sv, ["d", "e"], yes, no,
                                    ["f", "g", "h"], 1, 1, 10, str(tmp_path), "x", False)


def test_cross_validation(tmp_path):
    c = COHORTS[0]
    m = model(c, tmp_path)
    folds = [np.arange(40)[i::2] for i in range(2)]
    cvic, loglike = m.cross_validate_sustain_model(folds)
    assert np.shape(cvic) == (3,) and np.all(np.isfinite(cvic))
    assert np.shape(loglike) == (2, 3) and np.all(np.isfinite(loglike))


SIMULATOR = np.load(pathlib.Path(__file__).resolve().parent / "data" / "mixed_simulator.npz")


def test_simulators_draw_what_the_reference_draws():
    """generate_random_model and generate_data from the same seeds give the
    reference's arrays (data/mixed_simulator.npz, made by
    data/record_mixed_simulator.py)."""
    g = SIMULATOR
    z_vals, z_max = np.array([[1, 2], [1, 0]]), np.array([5.0, 4.0])
    ordinal = np.array([[1, 2, 3], [1, 2, 0]])
    seqs = sustain_rs.MixedTypeSustain.generate_random_model(z_vals, ordinal, 2, 2, seed=7)
    np.testing.assert_array_equal(seqs, g["model_sequences"])
    out = sustain_rs.MixedTypeSustain.generate_data(g["subtypes"], g["stages"], seqs, z_vals, z_max, ordinal, 2,
                                                    prob_correct_ordinal=0.8, mixture_style="mixture_GMM",
                                                    seed=11)
    names = ["zscore_data", "ordinal_data", "event_data", "ordinal_prob_nl", "ordinal_prob_score",
             "event_prob_yes", "event_prob_no"]
    for name, got in zip(names, out):
        np.testing.assert_allclose(got, g["data_" + name], rtol=1e-13, atol=0, err_msg=name)
    # Each biomarker's events in increasing score in every sequence.
    vals = np.array([[1, 2, 0], [1, 0, 0], [1, 2, 3], [1, 2, 0], [1, 0, 0], [1, 0, 0]])
    order = vals.T.ravel()
    biomarker = np.tile(np.arange(6), 3)[order > 0]
    for s in seqs:
        for b in range(6):
            assert np.all(np.diff(order[order > 0][s][biomarker[s] == b]) > 0)


def test_test_sustain_builds_the_reference_cohort(tmp_path):
    g = SIMULATOR
    kwargs = dict(N_startpoints=2, N_S_max=2, N_iterations_MCMC=100, output_folder=str(tmp_path),
                  dataset_name="t", use_parallel_startpoints=False)
    m = sustain_rs.MixedTypeSustain.test_sustain(7, 40, 2, g["test_truth"], kwargs, seed=42)
    assert isinstance(m, sustain_rs.MixedTypeSustain)
    for name in ["zscore_data", "z_vals", "ordinal_prob_nl", "ordinal_prob_score", "ordinal_score_vals",
                 "event_prob_yes", "event_prob_no"]:
        np.testing.assert_allclose(getattr(m, name), g["test_" + name], rtol=1e-13, atol=0, err_msg=name)
    np.testing.assert_array_equal(m.max_biomarker_zscore, g["test_z_max"])
    assert m.biomarker_labels == list(g["test_biomarker_labels"])
    assert m.num_stages == 3 * 3 + 2 * 3 + 2
    # The cohort fits: E-M and chains run on it.
    out = m.run_sustain_algorithm()
    assert out[0].shape[0] == 2
