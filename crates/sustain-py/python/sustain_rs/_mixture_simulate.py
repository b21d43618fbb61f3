"""The reference's simulators of event-based (mixture) cohorts (pySuStaIn
``MixtureSustain.generate_random_model``, ``generate_data``, ``test_sustain``,
``create_mixture_data``), with their signatures. They draw, as the reference does,
from numpy's global generator (``np.random.seed``), in the same order, so the same
seed gives the same cohorts (checked against the reference's output in
tests/test_simulators.py).

``test_sustain`` needs each biomarker's two-component mixture fitted to the
simulated values; like the reference it takes them from kde_ebm's
``fit_all_gmm_models`` / ``fit_all_kde_models`` (install kde_ebm for that), or
from a ``mixture_arrays.npz`` it or the reference saved in the working directory.
It keeps kde_ebm (SLSQP) so that its arrays are the reference's; for your own data
``sustain_rs.fit_mixtures`` fits the same mixtures without kde_ebm."""

from pathlib import Path

import numpy as np

from ._simulate import _stages_quarter_controls

_ARRAYS = "mixture_arrays.npz"


def generate_random_model(N_biomarkers, N_S):
    """``N_S`` random event orders (``np.random.permutation``), all redrawn (up to
    30 times) until no two are equal; a warning is printed if they still are."""
    S = np.zeros((N_S, N_biomarkers))
    for _ in range(30):
        for s in range(N_S):
            S[s, :] = np.random.permutation(N_biomarkers)
        matched_others = any(np.all(S[s, :] == S[i, :]) for s in range(N_S) for i in range(s))
        if not matched_others:
            break
    if matched_others:
        print('WARNING: Iterated 30 times and could not find unique sequences for all subtypes.')
    return S


def generate_data(subtypes, stages, gt_ordering, mixture_style):
    """A cohort of event values: controls' values N(0, 0.25); an event that has
    occurred N(1.5, sd) for ``mixture_GMM`` or lognormal(0.5, sd) for
    ``mixture_KDE``, each biomarker's sd drawn first (U(0.25, 0.5), resp. U(0.2,
    0.5)). Subject by subject, in its event order. Returns ``(data,
    data_denoised)``."""
    if mixture_style not in ("mixture_GMM", "mixture_KDE"):
        raise ValueError("mixture_style must be 'mixture_GMM' or 'mixture_KDE'")
    gt_ordering = np.asarray(gt_ordering)
    subtypes = np.asarray(subtypes).reshape(-1).astype(int)
    stages = np.asarray(stages).reshape(-1).astype(int)
    N_biomarkers, N_subjects = gt_ordering.shape[1], len(subtypes)
    if np.any(stages < 0) or np.any(stages > N_biomarkers):
        raise ValueError("stages must be between 0 and the number of biomarkers")
    mean_controls, std_controls = np.zeros(N_biomarkers), np.full(N_biomarkers, 0.25)
    if mixture_style == "mixture_GMM":
        mean_cases, std_cases = np.full(N_biomarkers, 1.5), np.random.uniform(0.25, 0.50, N_biomarkers)
        draw_case = np.random.normal
    else:
        mean_cases, std_cases = np.full(N_biomarkers, 0.5), np.random.uniform(0.2, 0.5, N_biomarkers)
        draw_case = np.random.lognormal
    data = np.zeros((N_subjects, N_biomarkers))
    data_denoised = np.zeros((N_subjects, N_biomarkers))
    for i in range(N_subjects):
        order = gt_ordering[subtypes[i], :].astype(int)
        for j, b in enumerate(order):
            if j < stages[i]:
                data[i, b] = draw_case(mean_cases[b], std_cases[b])
                data_denoised[i, b] = mean_cases[b]
            else:
                data[i, b] = np.random.normal(mean_controls[b], std_controls[b])
                data_denoised[i, b] = mean_controls[b]
    return data, data_denoised


def create_mixture_data(cls, n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, seed, mixture_type,
                        save_path):
    """Simulate the reference's test cohort (seeding numpy's global generator),
    fit each biomarker's mixture with kde_ebm from the controls (stage 0) and the
    cases (stage >= 0.8 x (biomarkers + 1)), and save their likelihoods ``L_yes``,
    ``L_no`` of every subject to ``save_path`` (an .npz)."""
    if mixture_type not in ("mixture_GMM", "mixture_KDE"):
        raise ValueError("mixture_type must be 'mixture_GMM' or 'mixture_KDE'")
    try:
        from kde_ebm.mixture_model import fit_all_gmm_models, fit_all_kde_models
    except ImportError as e:
        raise ImportError(
            "MixtureSustain.test_sustain fits each biomarker's mixture with kde_ebm, as pySuStaIn does: install "
            f"kde_ebm, or put a {_ARRAYS} (L_yes, L_no) in the working directory. To fit mixtures to your own "
            "data without kde_ebm, use sustain_rs.fit_mixtures (or the CLI's `sustain mixture`).") from e
    np.random.seed(seed)
    sequences = cls.generate_random_model(n_biomarkers, n_subtypes)
    stages = _stages_quarter_controls(n_samples, n_biomarkers)
    data, _ = cls.generate_data(ground_truth_subtypes, stages, sequences, mixture_type)
    labels = 2 * np.ones(data.shape[0], dtype=int)  # 2: neither, left out of the fit
    labels[np.where(stages >= np.round((n_biomarkers + 1) * 0.8))[0]] = 1
    labels[np.where(stages == 0)[0]] = 0
    fit = fit_all_gmm_models if mixture_type == "mixture_GMM" else fit_all_kde_models
    mixtures = fit(data, labels)
    L_yes, L_no = np.zeros(data.shape), np.zeros(data.shape)
    for i in range(n_biomarkers):
        if mixture_type == "mixture_GMM":
            L_no[:, i], L_yes[:, i] = mixtures[i].pdf(None, data[:, i])
        else:
            L_no[:, i], L_yes[:, i] = mixtures[i].pdf(data[:, i].reshape(-1, 1))
    np.savez(save_path, L_yes=L_yes, L_no=L_no)


def test_sustain(cls, n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, sustain_kwargs, seed=42,
                 mixture_type="mixture_GMM"):
    """A model (``cls``) of the reference's simulated event-based cohort. As the
    reference: the likelihoods come from ``mixture_arrays.npz`` in the working
    directory when it exists (whatever the arguments), else they are made by
    ``create_mixture_data`` (kde_ebm) and saved there first."""
    path = Path.cwd() / _ARRAYS
    if not path.is_file():
        cls.create_mixture_data(n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, seed, mixture_type,
                                save_path=path)
    arrays = np.load(path)
    return cls(arrays["L_yes"], arrays["L_no"], **sustain_kwargs)
