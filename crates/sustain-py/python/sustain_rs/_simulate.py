"""The reference's simulators of z-score and ordinal cohorts (pySuStaIn
``ZscoreSustain`` and ``OrdinalSustain``: ``generate_random_model``,
``generate_data``, ``test_sustain``), with their signatures. They draw, as the
reference does, from numpy's global generator (``np.random.seed``), in the same
order, so the same seed gives the same cohorts (checked against the reference's
output in tests/test_simulators.py)."""

import numpy as np

from ._mixed_simulate import _events, _next_events, _zscore_values
from ._normal_quantile import norm_ppf


def generate_random_model(Z_vals, N_S, seed=None):
    """``N_S`` random sequences (subtypes x events) of the events of ``Z_vals``
    (biomarkers x thresholds or scores, 0 for none) in which each biomarker's events
    come in increasing value: at every position one of the events that may come
    next is drawn with ``np.random.rand``. ``seed`` is accepted and not used, as in
    the reference: seed numpy's global generator instead."""
    score, biomarker = _events(np.asarray(Z_vals))
    n = score.shape[0]
    S = np.zeros((int(N_S), n))
    for s in range(int(N_S)):
        free = np.ones(n, dtype=bool)
        for i in range(n):
            possible = _next_events(free, score, biomarker)
            # The reference's index: ceil(u * k) - 1 (u = 0 picks the last).
            S[s, i] = possible[int(np.ceil(np.random.rand() * len(possible)) - 1)]
            free[int(S[s, i])] = False
    return S


def generate_data_zscore(subtypes, stages, gt_ordering, Z_vals, Z_max):
    """A z-score cohort: each subject's noise-free z-scores at its subtype and
    stage (a ramp from 0 through each threshold to ``Z_max``) plus unit normal
    noise (the normal quantiles of ``np.random.rand(B, M)``). Returns ``(data,
    data_denoised, stage_value)``, ``stage_value`` biomarkers x (events + 2) x
    subtypes."""
    Z_vals = np.asarray(Z_vals)
    Z_max = np.ravel(np.asarray(Z_max))
    gt_ordering = np.asarray(gt_ordering)
    subtypes = np.asarray(subtypes).reshape(-1).astype(int)
    stages = np.asarray(stages).reshape(-1).astype(int)
    B = Z_vals.shape[0]
    score, biomarker = _events(Z_vals)
    if len(Z_max) != B:
        raise ValueError("Z_max length must match the number of biomarkers (rows of Z_vals)")
    if np.any(stages < 0) or np.any(stages > score.shape[0] + 1):
        raise ValueError("stages must be between 0 and the number of events + 1")
    stage_value = np.stack([_zscore_values(gt_ordering[s].astype(int), score, biomarker, Z_max, B)
                            for s in range(gt_ordering.shape[0])], axis=2)
    M = stages.shape[0]
    data_denoised = stage_value[:, stages, subtypes].T
    data = data_denoised + norm_ppf(np.random.rand(B, M).T)
    return data, data_denoised, stage_value


def generate_data_ordinal(N_scores, n_samples, n_biomarkers, stage_biomarker_index, p_nl_dist, p_score_dist,
                          ground_truth_subtypes, ground_truth_sequence, ground_truth_stages, stage_score):
    """An ordinal cohort: every score drawn from ``p_nl_dist`` (``np.random.choice``
    over all subjects and biomarkers), then, subject by subject and score by score,
    the biomarkers that reached that score at the subject's stage redrawn from its
    row of ``p_score_dist``. Returns ``(prob_nl, prob_score)``: each drawn score's
    probability if normal and at each score."""
    N_scores, n_samples, n_biomarkers = int(N_scores), int(n_samples), int(n_biomarkers)
    stage_biomarker_index = np.ravel(stage_biomarker_index)
    stage_score = np.ravel(stage_score)
    p_nl_dist, p_score_dist = np.asarray(p_nl_dist), np.asarray(p_score_dist)
    subtypes = np.asarray(ground_truth_subtypes).reshape(-1).astype(int)
    stages = np.asarray(ground_truth_stages).reshape(-1).astype(int)
    sequences = np.asarray(ground_truth_sequence).astype(int)
    data = np.random.choice(range(N_scores + 1), n_samples * n_biomarkers, replace=True, p=p_nl_dist)
    data = data.reshape((n_samples, n_biomarkers))
    for m in range(n_samples):
        placed = sequences[subtypes[m], :stages[m]]
        # The highest score each biomarker has reached at this stage (0: none).
        reached = np.zeros(n_biomarkers)
        np.maximum.at(reached, stage_biomarker_index[placed], stage_score[placed])
        for score in range(N_scores):
            at = reached == score + 1
            data[m, at] = np.random.choice(range(N_scores + 1), np.sum(at), replace=True, p=p_score_dist[score, :])
    prob_nl = p_nl_dist[data]
    prob_score = np.transpose(p_score_dist[:, data], (1, 2, 0))
    return prob_nl, prob_score


def _stages_quarter_controls(n_samples, N_stages):
    """A quarter of the subjects at stage 0, the rest at random stages 1 ..
    N_stages (``np.random.randint``), as the reference's test cohorts."""
    controls = np.zeros((int(np.round(n_samples * 0.25)), 1))
    others = np.random.randint(1, N_stages + 1, (int(np.round(n_samples * 0.75)), 1))
    return np.vstack((controls, others)).astype(int)


def test_sustain_zscore(cls, n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, sustain_kwargs, seed=42):
    """A model (``cls``) of the reference's simulated z-score cohort: thresholds 1,
    2, 3 (biomarker 0 without the third), z_max 5 (2 for biomarker 2), random
    sequences, a quarter controls. Seeds numpy's global generator with ``seed``, as
    the reference; ``sustain_kwargs`` are the constructor's other arguments."""
    if int(n_biomarkers) < 3:
        raise ValueError("n_biomarkers must be >= 3 (the reference's cohort changes biomarkers 0 and 2)")
    np.random.seed(seed)
    Z_vals = np.tile(np.arange(1, 4), (n_biomarkers, 1))
    Z_vals[0, 2] = 0
    Z_max = np.full((n_biomarkers,), 5)
    Z_max[2] = 2
    sequences = generate_random_model(Z_vals, n_subtypes)
    # The reference's stages reach events + 1 (its ramps have that many + 2 columns).
    stages = _stages_quarter_controls(n_samples, np.sum(Z_vals > 0) + 1)
    data, _, _ = generate_data_zscore(ground_truth_subtypes, stages, sequences, Z_vals, Z_max)
    return cls(data, Z_vals, Z_max, **sustain_kwargs)


def test_sustain_ordinal(cls, n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, sustain_kwargs, seed=42):
    """A model (``cls``) of the reference's simulated ordinal cohort: scores 1, 2, 3
    per biomarker, each drawn right with probability 0.9, random sequences and
    stages. Seeds numpy's global generator with ``seed``, as the reference."""
    np.random.seed(seed)
    N_scores = 3
    score_vals = np.tile(np.arange(1, N_scores + 1), (n_biomarkers, 1))
    sequences = generate_random_model(score_vals, n_subtypes)
    N_k = np.sum(score_vals > 0) + 1
    stages = np.ceil(np.random.rand(n_samples, 1) * N_k) - 1
    p_correct = 0.9
    p_nl_dist = np.full((N_scores + 1), (1 - p_correct) / N_scores)
    p_nl_dist[0] = p_correct
    p_score_dist = np.full((N_scores, N_scores + 1), (1 - p_correct) / N_scores)
    for score in range(N_scores):
        p_score_dist[score, score + 1] = p_correct
    stage_score, stage_biomarker_index = _events(score_vals)
    prob_nl, prob_score = generate_data_ordinal(N_scores, n_samples, n_biomarkers, stage_biomarker_index,
                                                p_nl_dist, p_score_dist, ground_truth_subtypes, sequences,
                                                stages, stage_score)
    return cls(prob_nl, prob_score, score_vals, **sustain_kwargs)
