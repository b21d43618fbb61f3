"""Records the types, shapes and dtypes of what pySuStaIn's public methods return
and pickle, for tests/test_api_shapes.py. Run with pySuStaIn installed (see the
developers' guide), from outside its clone:

    python record_reference_shapes.py > reference_shapes.json

Sizes are chosen distinct (subjects 60, test 20, train 40, biomarkers 4 or 5,
events 12 or 5, 200 iterations, 2 subtypes, 3 folds) so that each dimension is
written as its name; 1 stays a literal.
"""
import contextlib
import io
import json
import os
import pickle
import sys
import tempfile

import numpy as np

M, N_ITER, N_S, FOLDS = 60, 200, 2, 3


def describe(value, dims):
    if isinstance(value, np.ndarray):
        names = {}
        for k in sorted(dims):  # a size two dimensions share takes the first name
            names.setdefault(dims[k], k)
        return {"type": "ndarray", "dtype": str(value.dtype),
                "shape": [names.get(int(d), int(d)) if int(d) != 1 else 1 for d in value.shape]}
    if isinstance(value, (list, tuple)):
        return {"type": type(value).__name__, "items": [describe(v, dims) for v in value]}
    return {"type": type(value).__name__}


def pickle_keys(path, dims):
    with open(path, "rb") as f:
        d = pickle.load(f)
    return {k: describe(v, dims) for k, v in sorted(d.items())}


def record(name, make, n_events, n_biomarkers, new_data):
    rng = np.random.default_rng(3)
    test_idxs = [np.arange(i, M, FOLDS) for i in range(FOLDS)]
    dims = {"M": M, "M_test": M // FOLDS, "M_train": M - M // FOLDS, "E": n_events,
            "E+1": n_events + 1, "N_iter": N_ITER, "N_S": N_S, "folds": FOLDS, "B": n_biomarkers}
    with tempfile.TemporaryDirectory() as out:
        model = make(out)
        with contextlib.redirect_stdout(io.StringIO()):
            res = model.run_sustain_algorithm()
            cv = model.cross_validate_sustain_model(test_idxs)
            staged = model.subtype_and_stage_individuals_newData(*new_data, res[0], res[1], 10)
        pdir = os.path.join(out, "pickle_files")
        return {
            "run_sustain_algorithm": describe(list(res), dims),
            "cross_validate_sustain_model": describe(list(cv), dims),
            "subtype_and_stage_individuals_newData": describe(list(staged), dims | {"M": new_data[0].shape[0]}),
            "subtype_pickle": pickle_keys(os.path.join(pdir, f"{name}_subtype1.pickle"), dims),
            "fold_pickle": pickle_keys(os.path.join(pdir, f"{name}_fold0_subtype1.pickle"), dims | {"M": M - M // FOLDS}),
            "dims": dims,
        }


def quick_tuning(pySuStaIn):
    """pySuStaIn tunes with 3 x 10,000 MCMC iterations whatever N_iterations_MCMC is;
    here the step sizes are its starting ones (shapes do not depend on them), so
    recording takes minutes instead of hours."""
    def untuned(self, sustainData, seq_init, f_init):
        n_s, n_events = seq_init.shape
        return np.ones((n_s, n_events)), np.full(n_s, 0.01)
    pySuStaIn.AbstractSustain._optimise_mcmc_settings = untuned


def main():
    import pySuStaIn

    quick_tuning(pySuStaIn)
    rng = np.random.default_rng(1)
    out = {}
    B = 4
    z = rng.normal(1.5, 1.2, size=(M, B))
    z_vals = np.tile([1.0, 2.0, 3.0], (B, 1))
    labels = [f"b{i}" for i in range(B)]
    new_z = rng.normal(1.5, 1.2, size=(7, B))
    out["ZscoreSustain"] = record("zs", lambda o: pySuStaIn.ZscoreSustain(
        z, z_vals, np.full(B, 5.0), labels, 2, N_S, N_ITER, o, "zs", False, seed=1), 12, B, (new_z,))
    zm = z.copy(); zm[rng.random(zm.shape) < 0.1] = np.nan
    out["ZscoreSustainMissingData"] = record("zm", lambda o: pySuStaIn.ZscoreSustainMissingData(
        zm, z_vals, np.full(B, 5.0), labels, 2, N_S, N_ITER, o, "zm", False, seed=1), 12, B, (new_z,))
    Bm = 5
    L_yes = rng.uniform(0.05, 0.95, size=(M, Bm)); L_no = 1 - L_yes
    new_yes = rng.uniform(0.05, 0.95, size=(7, Bm))
    out["MixtureSustain"] = record("mx", lambda o: pySuStaIn.MixtureSustain(
        L_yes, L_no, [f"b{i}" for i in range(Bm)], 2, N_S, N_ITER, o, "mx", False, seed=1), 5, Bm,
        (new_yes, 1 - new_yes))
    score_vals = np.tile([1.0, 2.0, 3.0], (B, 1))
    scores = rng.integers(0, 4, size=(M, B))
    p = 0.9
    prob_nl = np.where(scores == 0, p, (1 - p) / 3)
    prob_score = np.stack([np.where(scores == j, p, (1 - p) / 3) for j in (1, 2, 3)], axis=2)
    new_nl, new_score = prob_nl[:7], prob_score[:7]
    out["OrdinalSustain"] = record("od", lambda o: pySuStaIn.OrdinalSustain(
        prob_nl, prob_score, score_vals, labels, 2, N_S, N_ITER, o, "od", False, seed=1), 12, B,
        (new_nl, new_score))
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
