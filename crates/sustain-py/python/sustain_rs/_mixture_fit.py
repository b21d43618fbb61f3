"""``fit_mixtures``: raw biomarker values to the ``L_yes`` / ``L_no`` arrays that
``MixtureSustain`` takes, by fitting each biomarker's two-component mixture to
controls and patients as kde_ebm does. The numerics are the CLI's ``sustain
mixture`` (one Rust copy, in the model crate), so both give the same arrays."""

import warnings

import numpy as np

from . import _native

_METHODS = ("gmm", "kde")


def _same(cell, value):
    """Whether a diagnosis equals ``value``: equal text, or equal numbers (0 matches
    0.0 and "0"), as the CLI's ``--control-value`` / ``--patient-value``."""
    if str(cell).strip() == str(value).strip():
        return True
    try:
        return float(cell) == float(value)
    except (TypeError, ValueError):
        return False


def _columns(data, biomarker_labels):
    """Values as a float (subjects x biomarkers) array and the biomarker names
    (a DataFrame's columns, else ``biomarker_labels``, else "biomarker 0", ...)."""
    names = list(map(str, data.columns)) if hasattr(data, "columns") else None
    raw = np.asarray(data, dtype=object)
    if raw.ndim != 2:
        raise ValueError(f"data must be 2-D (subjects x biomarkers); it has shape {raw.shape}")
    if biomarker_labels is not None:
        names = [str(b) for b in biomarker_labels]
        if len(names) != raw.shape[1]:
            raise ValueError(f"biomarker_labels has {len(names)} names for {raw.shape[1]} columns of data")
    if names is None:
        names = [f"biomarker {i}" for i in range(raw.shape[1])]
    values = np.empty(raw.shape)
    for c, name in enumerate(names):
        for r, cell in enumerate(raw[:, c]):
            try:
                values[r, c] = np.nan if cell is None else float(cell)
            except (TypeError, ValueError):
                raise ValueError(f"column '{name}', row {r + 1}: {cell!r} is not a number") from None
    return values, names


def fit_mixtures(data, diagnosis, method="gmm", fix_controls=False, control_value=0, patient_value=1,
                 biomarker_labels=None, return_fits=False):
    """Per biomarker, the two-component mixture of kde_ebm (``method="gmm"``: two
    Gaussians, ``fit_all_gmm_models``; ``"kde"``: two kernel density estimates,
    ``fit_all_kde_models``) fitted to the controls' and patients' values, and each
    subject's likelihoods under its no-event and event component.

    ``data``: subjects x biomarkers (array or DataFrame; NaN = missing).
    ``diagnosis``: one value a subject; those equal to ``control_value`` are the
    controls, to ``patient_value`` the patients (text or numbers, as the CLI
    compares them); anyone else is left out of the fits but gets likelihoods.
    ``fix_controls`` keeps the control component at the controls' mean and sd.

    Returns ``(L_yes, L_no)``, float arrays of ``data``'s shape (NaN where a value
    is missing) for ``MixtureSustain(L_yes, L_no, ...)``, the same values ``sustain
    mixture`` writes to p_event.csv / p_no_event.csv; with ``return_fits=True``
    also a list of each biomarker's fitted parameters (mixtures.json's keys).
    Raises ``ValueError`` naming the column or row of bad input."""
    if method not in _METHODS:
        raise ValueError(f"method must be 'gmm' or 'kde', not {method!r}")
    if _same(control_value, patient_value):
        raise ValueError(f"control_value and patient_value are both {control_value!r}; they must differ")
    values, names = _columns(data, biomarker_labels)
    diagnosis = np.asarray(diagnosis, dtype=object).reshape(-1)
    if len(diagnosis) != values.shape[0]:
        raise ValueError(f"diagnosis has {len(diagnosis)} values for {values.shape[0]} rows of data")
    groups = np.full(len(diagnosis), 2, dtype=np.int8)  # 2: neither, left out of the fits
    groups[[_same(d, patient_value) for d in diagnosis]] = 1
    groups[[_same(d, control_value) for d in diagnosis]] = 0
    for code, which, value in ((0, "controls", control_value), (1, "patients", patient_value)):
        if not np.any(groups == code):
            seen = ", ".join(sorted({str(d) for d in diagnosis})[:10])
            raise ValueError(f"diagnosis: no subject has {value!r}, so there are no {which} "
                             f"(values in diagnosis: {seen})")
    missing_rows = np.all(np.isnan(values), axis=1)
    if np.any(missing_rows):
        r = int(np.argmax(missing_rows))
        raise ValueError(f"row {r + 1}: every biomarker is missing; remove the row (it carries no information)")
    L_yes, L_no, fits, rescaled = _native.fit_mixtures(values, groups, names, method, bool(fix_controls))
    for f in fits:
        if f.get("converged") is False:
            warnings.warn(f"biomarker '{f['name']}': the mixture fit stopped after {f['iterations']} "
                          "iterations before its tolerance", stacklevel=2)
    if rescaled:
        warnings.warn(f"{rescaled} values lie so far from both components that both likelihoods underflow; "
                      "their two likelihoods were scaled by a common factor (which leaves every posterior "
                      "unchanged)", stacklevel=2)
    return (L_yes, L_no, fits) if return_fits else (L_yes, L_no)
