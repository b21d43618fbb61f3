"""The reference's simulators of mixed-type cohorts (pySuStaIn
``MixedTypeSustain.generate_random_model``, ``generate_data`` and
``test_sustain``), with their signatures: the same draws from the same seeds, so a
study or test written against pySuStaIn gets the same cohorts (checked against
the reference's output in tests/test_mixed.py)."""

import numpy as np

_SQRT_2PI = np.sqrt(2 * np.pi)


def _blocks(z_vals, ordinal_scores):
    """z_vals and ordinal scores as 2-D arrays (empty ones 0 x 0)."""
    empty = np.zeros((0, 0), dtype=int)
    return (empty if z_vals is None else np.asarray(z_vals),
            empty if ordinal_scores is None else np.asarray(ordinal_scores))


def _score_matrix(z_vals, ordinal_scores, n_event):
    """The padded biomarkers x levels matrix of thresholds, scores and events (an
    event is score 1): z-scored biomarkers first, then ordinal, then event ones."""
    nz, no = z_vals.shape[0], ordinal_scores.shape[0]
    width = max(z_vals.shape[1] if z_vals.ndim == 2 and nz else 0,
                ordinal_scores.shape[1] if ordinal_scores.ndim == 2 and no else 0,
                1 if n_event else 0)
    vals = np.zeros((nz + no + n_event, width))
    if nz:
        vals[:nz, :z_vals.shape[1]] = z_vals
    if no:
        vals[nz:nz + no, :ordinal_scores.shape[1]] = ordinal_scores
    vals[nz + no:, :1] = 1
    return vals


def _events(vals):
    """Each event's score and biomarker, in event order (level by level, the
    biomarkers in order within a level; zeros are no event)."""
    scores = vals.T.ravel()
    keep = scores > 0
    return scores[keep], np.tile(np.arange(vals.shape[0]), vals.shape[1])[keep]


def generate_random_model(z_vals, ordinal_scores, n_event_biomarkers, N_S, seed=None):
    """``N_S`` random sequences (subtypes x events) in which each biomarker's events
    come in increasing score: at every position one of the events that may come
    next is drawn uniformly."""
    rng = np.random.default_rng(seed)
    z_vals, ordinal_scores = _blocks(z_vals, ordinal_scores)
    n_event_biomarkers, N_S = int(n_event_biomarkers), int(N_S)
    if N_S < 1:
        raise ValueError("N_S must be >= 1")
    vals = _score_matrix(z_vals, ordinal_scores, n_event_biomarkers)
    if vals.shape[1] == 0:
        return np.zeros((N_S, 0), dtype=int)
    score, biomarker = _events(vals)
    n = score.shape[0]
    S = np.zeros((N_S, n), dtype=int)
    for s in range(N_S):
        free = np.ones(n, dtype=bool)
        for i in range(n):
            S[s, i] = rng.choice(_next_events(free, score, biomarker))
            free[S[s, i]] = False
    return S


def _next_events(free, score, biomarker):
    """The events that may come next: per biomarker, its lowest-scored events
    among the ``free`` (not placed yet) ones, in event order."""
    next_ok = np.zeros(score.shape[0], dtype=bool)
    for b in np.unique(biomarker):
        mine = free & (biomarker == b)
        if mine.any():
            next_ok |= mine & (score == score[mine].min())
    return np.flatnonzero(next_ok)


def _zscore_values(seq, score, biomarker, z_max, nz):
    """The noise-free z-score of each z-scored biomarker at each stage of the
    sequence ``seq`` (nz x (stages + 2)): a ramp from 0 through each threshold, at
    the stage after its event, to z_max at the last stage."""
    n = score.shape[0]
    position = np.zeros(n, dtype=int)
    position[seq] = np.arange(n)
    out = np.zeros((nz, n + 2))
    for b in range(nz):
        at = np.concatenate([[0], position[biomarker == b], [n]])
        value = np.concatenate([[0], score[biomarker == b], [z_max[b]]])
        for j in range(len(at) - 1):
            first = at[j] if j == 0 else at[j] + 1
            out[b, first:at[j + 1] + 2] = np.linspace(value[j], value[j + 1], at[j + 1] + 2 - first)
    return out


def _reached(seq, score, biomarker, first, count):
    """The score reached by biomarkers ``first .. first + count`` at each stage of
    ``seq`` ((stages + 1) x count)."""
    out = np.zeros((score.shape[0] + 1, count))
    for stage, e in enumerate(seq):
        b = biomarker[e] - first
        if 0 <= b < count:
            out[stage + 1:, b] = score[e]
    return out


def _level_distribution(top, p, correct):
    """A score's distribution over 0..top: ``p`` on ``correct``, the rest spread."""
    dist = np.full(top + 1, (1.0 - p) / top)
    dist[correct] = p
    return dist


def _norm_pdf(x, loc, scale):
    y = (x - loc) / scale
    return np.exp(-y ** 2 / 2.0) / _SQRT_2PI / scale


def generate_data(subtypes, stages, gt_ordering, z_vals, z_max, ordinal_scores, n_event_biomarkers,
                  prob_correct_ordinal=0.9, mixture_style="mixture_GMM", seed=None):
    """A cohort of subjects of the given subtypes and stages under the sequences
    ``gt_ordering``: z-scores (ramp plus unit normal noise), raw ordinal scores
    (correct with probability ``prob_correct_ordinal``) and event values (normal,
    controls N(0, 0.25), cases N(1.5, U(0.25, 0.5))). Returns ``(zscore_data,
    ordinal_data, event_data, ordinal_prob_nl, ordinal_prob_score, event_prob_yes,
    event_prob_no)``, None for a block the model has not."""
    rng = np.random.default_rng(seed)
    subtypes = np.asarray(subtypes, dtype=int).reshape(-1)
    stages = np.asarray(stages, dtype=int).reshape(-1)
    gt_ordering = np.asarray(gt_ordering)
    z_vals, ordinal_scores = _blocks(z_vals, ordinal_scores)
    n_event = int(n_event_biomarkers)
    nz, no = z_vals.shape[0], ordinal_scores.shape[0]
    vals = _score_matrix(z_vals, ordinal_scores, n_event)
    score, biomarker = _events(vals)
    n_stages, n_samples = score.shape[0], len(subtypes)
    if np.any(stages < 0) or np.any(stages > n_stages):
        raise ValueError("stages must be between 0 and number of stages (inclusive)")
    if nz > 0 and len(z_max) != nz:
        raise ValueError("z_max length must match number of z-score biomarkers")
    if np.isscalar(prob_correct_ordinal):
        p_correct = np.full(no, float(prob_correct_ordinal))
    else:
        p_correct = np.asarray(prob_correct_ordinal, dtype=float).reshape(-1)
    if len(p_correct) != no:
        raise ValueError("prob_correct_ordinal must be scalar or length n_ordinal_biomarkers")
    if n_event and mixture_style not in ("mixture_GMM", "mixture_KDE"):
        raise ValueError("mixture_style must be 'mixture_GMM' or 'mixture_KDE'")
    if n_event and mixture_style == "mixture_KDE":
        raise NotImplementedError("mixture_KDE event generation is not available (nor in the reference)")
    out = [None] * 7
    if nz:
        ramps = np.stack([_zscore_values(gt_ordering[s].astype(int), score, biomarker, z_max, nz)
                          for s in range(gt_ordering.shape[0])], axis=2)
        z = ramps[:, stages, subtypes].T
        out[0] = z + rng.standard_normal((n_samples, nz))
    reached = [_reached(gt_ordering[s].astype(int), score, biomarker, nz, no + n_event)
               for s in range(gt_ordering.shape[0])]
    if no:
        out[1], out[3], out[4] = _ordinal_block(rng, vals[nz:nz + no], p_correct, reached, subtypes, stages)
    if n_event:
        out[2], out[5], out[6] = _event_block(rng, n_event, [r[:, no:] for r in reached], subtypes, stages)
    return tuple(out)


def _ordinal_block(rng, vals, p_correct, reached, subtypes, stages):
    """Raw ordinal scores (drawn as the reference draws them: every subject's
    normal-state score per biomarker, then each reached score subject by subject)
    and their ``prob_nl``, ``prob_score``."""
    n_samples, no = len(subtypes), vals.shape[0]
    top = vals.max(axis=1).astype(int)
    normal = [_level_distribution(top[b], p_correct[b], 0) for b in range(no)]
    levels = [np.array([_level_distribution(top[b], p_correct[b], z + 1) for z in range(top[b])])
              for b in range(no)]
    data = np.zeros((n_samples, no), dtype=int)
    for b in range(no):
        data[:, b] = rng.choice(top[b] + 1, n_samples, replace=True, p=normal[b])
    for m in range(n_samples):
        for b, value in enumerate(reached[subtypes[m]][stages[m], :no]):
            if value > 0:
                data[m, b] = rng.choice(top[b] + 1, 1, replace=True, p=levels[b][int(value) - 1])[0]
    prob_nl = np.zeros((n_samples, no))
    prob_score = np.zeros((n_samples, no, int(top.max())))
    for b in range(no):
        prob_nl[:, b] = normal[b][data[:, b]]
        prob_score[:, b, :top[b]] = levels[b][:, data[:, b]].T
    return data, prob_nl, prob_score


def _event_block(rng, n_event, reached, subtypes, stages):
    """Event values (normal, per subject and biomarker in turn) and their
    likelihoods given the event has / has not occurred, normalised per value."""
    mean_no, sd_no = np.zeros(n_event), np.full(n_event, 0.25)
    mean_yes, sd_yes = np.full(n_event, 1.5), rng.uniform(0.25, 0.50, n_event)
    data = np.zeros((len(subtypes), n_event))
    for m in range(len(subtypes)):
        hit = reached[subtypes[m]][stages[m]] > 0
        for b in range(n_event):
            data[m, b] = rng.normal(mean_yes[b], sd_yes[b]) if hit[b] else rng.normal(mean_no[b], sd_no[b])
    p_no = _norm_pdf(data, mean_no, sd_no)
    p_yes = _norm_pdf(data, mean_yes, sd_yes)
    total = p_no + p_yes + 1e-250
    return data, p_yes / total, p_no / total


def test_sustain(cls, n_biomarkers, n_samples, n_subtypes, ground_truth_subtypes, sustain_kwargs, seed=42):
    """A model (``cls``) of a simulated cohort: the biomarkers split into
    near-equal z-scored (thresholds 1, 2, 3; z_max 5), ordinal (scores 1, 2, 3) and
    event groups, random sequences, a quarter controls (stage 0) and the others at
    random stages; ``sustain_kwargs`` are the constructor's other arguments
    (``biomarker_labels`` optional)."""
    rng = np.random.default_rng(seed)
    n_biomarkers, n_samples, n_subtypes = int(n_biomarkers), int(n_samples), int(n_subtypes)
    truth = np.asarray(ground_truth_subtypes, dtype=int).reshape(-1)
    if n_biomarkers < 1:
        raise ValueError("n_biomarkers must be >= 1")
    if len(truth) != n_samples:
        raise ValueError("ground_truth_subtypes length must match n_samples")
    base, extra = divmod(n_biomarkers, 3)
    nz, no = base + (extra >= 1), base + (extra >= 2)
    n_event = n_biomarkers - nz - no
    levels = lambda k: np.tile(np.arange(1, 4), (k, 1)) if k else np.zeros((0, 0), dtype=int)  # noqa: E731
    z_vals, ordinal = levels(nz), levels(no)
    z_max = np.full((nz,), 5) if nz else np.array([])
    sequences = generate_random_model(z_vals, ordinal, n_event, n_subtypes, seed=seed)
    n_stages = int(np.sum(z_vals > 0) + np.sum(ordinal > 0) + n_event)
    n_controls = int(np.round(n_samples * 0.25))
    stages = np.vstack((np.zeros((n_controls, 1), dtype=int),
                        rng.integers(1, n_stages + 1, size=(n_samples - n_controls, 1), endpoint=False,
                                     dtype=int)))
    z, _, _, nl, ps, yes, no_ = generate_data(truth, stages, sequences, z_vals, z_max, ordinal, n_event,
                                              prob_correct_ordinal=0.9, mixture_style="mixture_GMM",
                                              seed=seed)
    kwargs = dict(sustain_kwargs)
    labels = kwargs.pop("biomarker_labels", None)
    labels = [f"Biomarker {i}" for i in range(n_biomarkers)] if labels is None else list(labels)
    if len(labels) != n_biomarkers:
        raise ValueError("biomarker_labels length in sustain_kwargs must match n_biomarkers")
    return cls(z, z_vals, z_max, labels[:nz], nl, ps, ordinal, labels[nz:nz + no], yes, no_,
               labels[nz + no:], **kwargs)
