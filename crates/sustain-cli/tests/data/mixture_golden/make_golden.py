"""Golden likelihoods for `sustain mixture`, made with the reference (kde_ebm).

Run from outside a kde_ebm clone, with a venv holding numpy==1.26.4 scipy pandas
scikit-learn and `pip install --no-deps <kde_ebm clone>` (github ucl-pond/kde_ebm):

    V/bin/python make_golden.py ../shared/data/golden_mixture OUTDIR

Inputs: golden_mixture/raw.csv (values) and diagnosis.csv (0 control, 1 advanced
case, 2 other), same subjects in the same order. Writes into OUTDIR:
- raw_diagnosis.csv: id, diagnosis, bm0..bm7 (the input of `sustain mixture`);
- raw_missing.csv: the same with some values blanked (every 7th subject's bm
  (subject mod 8), controls and patients included);
- for each case (gmm: full fit; gmm_fixed: implement_fixed_controls=True;
  gmm_missing: full fit on raw_missing.csv): CASE_params.csv (per biomarker the
  fitted theta [control mean, control sd, patient mean, patient sd, control
  fraction] and kde_ebm's objective at it), CASE_L_yes.csv and CASE_L_no.csv:
  L_no, L_yes = mixtures[i].pdf(None, x), as pySuStaIn's MixtureSustain simulation
  (sim/simrun.py) makes them; missing values stay empty.
- kde, kde_fixed, kde_missing: the same with fit_all_kde_models; CASE_params.csv
  holds each mixture's control fraction, relabelling rounds (iter_) and the
  number of values in each component.

The pip-installed kde_ebm 0.0.3 lacks its subpackages; put the clone on
PYTHONPATH instead (cwd outside the clone): PYTHONPATH=CLONE V/bin/python ...
"""
import sys
import numpy as np
import pandas as pd
from kde_ebm.mixture_model import fit_all_gmm_models, fit_all_kde_models

src, out = sys.argv[1], sys.argv[2]
raw = pd.read_csv(f"{src}/raw.csv")
dx = pd.read_csv(f"{src}/diagnosis.csv")
assert (raw["id"].astype(int).values == dx["id"].values).all()
biomarkers = [c for c in raw.columns if c != "id"]
table = pd.DataFrame({"id": dx["id"].values, "diagnosis": dx["diagnosis"].values})
for b in biomarkers:
    table[b] = raw[b].values
table.to_csv(f"{out}/raw_diagnosis.csv", index=False, float_format="%.17g")

missing = table.copy()
for m in range(0, len(missing), 7):
    missing.loc[m, biomarkers[m % len(biomarkers)]] = np.nan
missing.to_csv(f"{out}/raw_missing.csv", index=False, float_format="%.17g")


def fit_and_write(case, frame, fit_all, pdf, param_row, param_columns):
    """Fits every biomarker's mixture with `fit_all` and writes the case's
    parameters (one `param_row(i, mixture, X, y, seen)` per biomarker) and its
    likelihood tables (`pdf(mixture, values)` gives (L_no, L_yes))."""
    X = frame[biomarkers].values.astype(float)
    y = frame["diagnosis"].values.astype(int)
    mixtures = fit_all(X, y)
    L_yes = np.full(X.shape, np.nan)
    L_no = np.full(X.shape, np.nan)
    params = []
    for i, mm in enumerate(mixtures):
        seen = ~np.isnan(X[:, i])
        L_no[seen, i], L_yes[seen, i] = pdf(mm, X[seen, i])
        params.append(param_row(i, mm, X, y, seen))
    pd.DataFrame(params, columns=["biomarker", *param_columns]
                 ).to_csv(f"{out}/{case}_params.csv", index=False, float_format="%.17g")
    for name, L in [("L_yes", L_yes), ("L_no", L_no)]:
        df = pd.DataFrame(L, columns=biomarkers)
        df.insert(0, "id", frame["id"].values)
        df.to_csv(f"{out}/{case}_{name}.csv", index=False, float_format="%.17g")
    return L_yes, L_no


def run_kde(case, frame, fixed):
    fit_and_write(
        case, frame,
        lambda X, y: fit_all_kde_models(X, y, implement_fixed_controls=fixed),
        lambda mm, v: mm.pdf(v.reshape(-1, 1)),
        lambda i, mm, X, y, seen: [biomarkers[i], mm.mixture, mm.iter_,
                                   mm.controls_kde._n_kernels, mm.patholog_kde._n_kernels],
        ["control_fraction", "iterations", "n_control_labels", "n_patient_labels"])


def run(case, frame, fixed):
    return fit_and_write(
        case, frame,
        lambda X, y: fit_all_gmm_models(X, y, implement_fixed_controls=fixed),
        lambda mm, v: mm.pdf(None, v),
        lambda i, mm, X, y, seen: [biomarkers[i], *mm.theta,
                                   mm.likelihood(mm.theta, X[(y < 2) & seen, i])],
        ["control_mean", "control_sd", "patient_mean", "patient_sd", "control_fraction",
         "neg_log_likelihood"])


L_yes, L_no = run("gmm", table, False)
run("gmm_fixed", table, True)
run("gmm_missing", missing, False)
# A harder cohort (seeded): overlapping groups, a biomarker that falls with
# disease, and patients on both sides of the controls, so that the bounds bind,
# the direction mirrors and kde_ebm's relabelling rules act.
rng = np.random.default_rng(7)
n_c, n_p, n_o = 60, 80, 10
prodromal = rng.random(n_p) < 0.4
both_sides = rng.random(n_p) < 0.3
overlap = pd.DataFrame({
    "id": np.arange(1, n_c + n_p + n_o + 1),
    "diagnosis": np.repeat([0, 1, 2], [n_c, n_p, n_o]),
    "rises": np.concatenate([rng.normal(0, 1, n_c),
                             np.where(prodromal, rng.normal(0.2, 1, n_p), rng.normal(2.5, 0.8, n_p)),
                             rng.normal(1, 1, n_o)]),
    "falls": np.concatenate([rng.normal(10, 2, n_c), rng.normal(6, 3, n_p), rng.normal(8, 2, n_o)]),
    "two_sided": np.concatenate([rng.normal(0, 1, n_c),
                                 np.where(both_sides, rng.normal(-3, 0.5, n_p), rng.normal(3, 1, n_p)),
                                 rng.normal(0, 2, n_o)]),
})
overlap.to_csv(f"{out}/raw_overlap.csv", index=False, float_format="%.17g")
biomarkers_all = biomarkers
biomarkers = ["rises", "falls", "two_sided"]
run("gmm_overlap", overlap, False)
run_kde("kde_overlap", overlap, False)
run_kde("kde_overlap_fixed", overlap, True)
biomarkers = biomarkers_all

# KDE mixtures (kde_ebm's KDEMM; needs awkde, github noxtoby/awkde, pip install
# --no-build-isolation with pybind11 and wheel present).
run_kde("kde", table, False)
run_kde("kde_fixed", table, True)
run_kde("kde_missing", missing, False)

# How the project's golden_mixture p_yes/p_no compare (informational).
p_yes = pd.read_csv(f"{src}/p_yes.csv")[biomarkers].values
p_no = pd.read_csv(f"{src}/p_no.csv")[biomarkers].values
print("max rel diff vs golden_mixture p_yes:", np.max(np.abs(L_yes - p_yes) / p_yes))
print("max rel diff vs golden_mixture p_no:", np.max(np.abs(L_no - p_no) / p_no))
