"""pySuStaIn's pickle files: the same names and keys, written atomically, and
reused only when they were made from the same data and settings."""

import os
import pickle
import tempfile

#: The key sustain_rs adds to each pickle (pySuStaIn ignores keys it does not read).
META_KEY = "sustain_rs"


def subtype_path(pickle_dir, dataset_name, s):
    return os.path.join(pickle_dir, f"{dataset_name}_subtype{s}.pickle")


def fold_path(pickle_dir, dataset_name, fold, s):
    return os.path.join(pickle_dir, f"{dataset_name}_fold{fold}_subtype{s}.pickle")


def load_checked(path, fingerprint):
    """The variables of pickle ``path`` if it was written by sustain_rs for the same
    data and settings (``fingerprint``); a ``ValueError`` naming the file otherwise,
    so that results of other data are never silently reused."""
    with open(path, "rb") as f:
        variables = pickle.load(f)
    meta = variables.get(META_KEY) if isinstance(variables, dict) else None
    if not isinstance(meta, dict) or "fingerprint" not in meta:
        raise ValueError(
            f"{path}: this pickle was not written by sustain_rs, so it cannot be checked "
            "against these data and settings; move it away (or choose another "
            "output_folder or dataset_name) to fit again"
        )
    if meta["fingerprint"] != fingerprint:
        raise ValueError(
            f"{path}: this pickle was made from other data or settings (data, model, "
            "N_startpoints, N_iterations_MCMC, n_chains or seed differ); move it away "
            "(or choose another output_folder or dataset_name) to fit again"
        )
    return variables


def load_pickle(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def save_new(path, variables, meta):
    """Writes ``variables`` plus sustain_rs's ``meta`` (its fingerprint, summaries)
    to ``path`` through a temporary file and a link; never replaces a file."""
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; it is not replaced")
    variables = dict(variables)
    variables[META_KEY] = dict(meta)
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pickle", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(variables, f)
            f.flush()
            os.fsync(f.fileno())
        # os.link fails if `path` appeared meanwhile: nothing is overwritten.
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
