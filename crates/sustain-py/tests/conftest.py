"""Shared fixtures: small simulated cohorts of each model family, made here with
numpy so the tests need nothing but the package (and, for the CLI comparison, the
`sustain` binary of this repository)."""

import os
import pathlib
import shutil

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def zscore_cohort(n=60, n_biomarkers=4, seed=1, missing=0.0):
    """Subjects at random stages of one of two sequences of z = 1, 2, 3 events."""
    rng = np.random.default_rng(seed)
    z_vals = np.tile([1.0, 2.0, 3.0], (n_biomarkers, 1))
    data = np.zeros((n, n_biomarkers))
    for m in range(n):
        severity = rng.uniform(0, 4, size=n_biomarkers)
        order = np.arange(n_biomarkers) if m % 2 == 0 else np.arange(n_biomarkers)[::-1]
        progress = rng.uniform(0, 1)
        data[m] = severity * np.clip(progress * n_biomarkers - np.argsort(order), 0, 1) + rng.normal(0, 1, n_biomarkers)
    if missing:
        mask = rng.random(data.shape) < missing
        mask[:, 0] &= ~mask[:, 1:].all(axis=1)  # no subject without data (refused as bad input)
        data[mask] = np.nan
    labels = [f"b{i}" for i in range(n_biomarkers)]
    return data, z_vals, np.full(n_biomarkers, 5.0), labels


def mixture_cohort(n=60, n_biomarkers=5, seed=2):
    rng = np.random.default_rng(seed)
    L_yes = rng.uniform(0.05, 0.95, size=(n, n_biomarkers))
    return L_yes, 1 - L_yes, [f"b{i}" for i in range(n_biomarkers)]


def ordinal_cohort(n=60, n_biomarkers=4, seed=3, p=0.9):
    rng = np.random.default_rng(seed)
    score_vals = np.tile([1.0, 2.0, 3.0], (n_biomarkers, 1))
    scores = rng.integers(0, 4, size=(n, n_biomarkers))
    prob_nl = np.where(scores == 0, p, (1 - p) / 3)
    prob_score = np.stack([np.where(scores == j, p, (1 - p) / 3) for j in (1, 2, 3)], axis=2)
    return prob_nl, prob_score, score_vals, [f"b{i}" for i in range(n_biomarkers)]


@pytest.fixture
def sustain_bin():
    """The `sustain` binary of this checkout (built by `cargo test --workspace`)."""
    env = os.environ.get("SUSTAIN_BIN")
    candidates = [pathlib.Path(env)] if env else [REPO / "target" / p / "sustain" for p in ("release", "debug")]
    for c in candidates:
        if c.is_file():
            return str(c)
    found = shutil.which("sustain")
    if found:
        return found
    pytest.skip("NOTICE: no `sustain` binary (build it with cargo build -p sustain-cli, or set SUSTAIN_BIN)")
