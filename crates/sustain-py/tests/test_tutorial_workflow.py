"""pySuStaIn's tutorial workflow (fit, cross-validation, cross-validated PVDs,
staging new subjects, plotting) with only the import changed."""

import contextlib
import io

import numpy as np
import pytest

import sustain_rs as pySuStaIn  # the tutorial's `import pySuStaIn`, switched
from conftest import zscore_cohort

plt = pytest.importorskip("matplotlib.pyplot", reason="NOTICE: the tutorial's figures need matplotlib")


def test_tutorial_workflow(tmp_path):
    data, Z_vals, Z_max, SuStaInLabels = zscore_cohort(90, n_biomarkers=3, seed=4)
    N_startpoints = 5
    N_S_max = 2
    N_iterations_MCMC = int(2e3)
    output_folder = tmp_path / "sim"
    output_folder.mkdir()
    dataset_name = "sim"
    sustain_input = pySuStaIn.ZscoreSustain(data, Z_vals, Z_max, SuStaInLabels, N_startpoints, N_S_max,
                                            N_iterations_MCMC, output_folder, dataset_name, False, seed=11)
    with contextlib.redirect_stdout(io.StringIO()):
        samples_sequence, samples_f, ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage, prob_subtype_stage = \
            sustain_input.run_sustain_algorithm(plot=True)
    assert (output_folder / "sim_subtype1_PVD.png").is_file()
    assert (output_folder / "MCMC_likelihoods.png").is_file()
    assert (output_folder / "pickle_files" / "sim_subtype1.pickle").is_file()

    # The tutorial's folds (StratifiedKFold on the subtype labels), written out.
    labels = ml_subtype[:, 0].astype(int)
    test_idxs = [np.flatnonzero(np.arange(len(labels)) % 3 == f) for f in range(3)]
    with contextlib.redirect_stdout(io.StringIO()):
        CVIC, loglike_matrix = sustain_input.cross_validate_sustain_model(test_idxs)
    assert CVIC.shape == (N_S_max,) and loglike_matrix.shape == (3, N_S_max)
    assert np.all(np.isfinite(CVIC)) and np.all(np.isfinite(loglike_matrix))
    for N_S in range(1, N_S_max + 1):
        sustain_input.combine_cross_validated_sequences(N_S, len(test_idxs))
        assert (output_folder / f"sim_subtype{N_S - 1}_PVD_3fold_CV.png").is_file()

    figs, axs = pySuStaIn.ZscoreSustain.plot_positional_var(
        samples_sequence, samples_f, data.shape[0], Z_vals, biomarker_labels=SuStaInLabels)
    assert len(figs) == 1 and len(axs[0]) == N_S_max

    new = zscore_cohort(5, n_biomarkers=3, seed=5)[0]
    out = sustain_input.subtype_and_stage_individuals_newData(new, samples_sequence, samples_f, 100)
    assert [o.shape for o in out] == [(5, 1)] * 4 + [(5, N_S_max), (5, 10), (5, 10, N_S_max)]
    plt.close("all")


def test_positional_variance_without_matplotlib(tmp_path, monkeypatch):
    """Without matplotlib, plot_positional_var draws its own SVG figure."""
    from sustain_rs import _plots
    monkeypatch.setattr(_plots, "_pyplot", lambda: None)
    rng = np.random.default_rng(2)
    seq = np.stack([np.stack([rng.permutation(5) for _ in range(30)], axis=1) for _ in range(2)])
    f = rng.dirichlet([1, 1], size=30).T
    figs, axs = pySuStaIn.MixtureSustain.plot_positional_var(seq, f, 100, biomarker_labels=list("abcde"),
                                                             save_path=tmp_path / "pvd.png")
    assert len(figs) == 1 and axs == [None]
    svg = (tmp_path / "pvd.svg").read_text()
    assert svg.count("<rect") == 2 * 5 * 5 and "Subtype 2" in svg and 'role="img"' in svg
