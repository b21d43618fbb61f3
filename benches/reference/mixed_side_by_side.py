"""One 3-subtype log-likelihood of the mixed-type model: pySuStaIn's
MixedTypeSustain._calculate_likelihood against sustain_rs's, interleaved
(reference, ours, reference, ours, ...), best of each, one thread.

Run with a Python that has pySuStaIn (its `pip install --no-deps` of a clone),
sustain_rs (`pip install ./crates/sustain-py`) and pytest (the cohort is read by
the package's test helpers), from outside the pySuStaIn clone:

    V/bin/python benches/reference/mixed_side_by_side.py [SUBJECTS]

The cohort is the first golden cohort of crates/sustain-model/tests/data/
mixed_golden (z-scored, ordinal and event biomarkers, made by the reference's own
simulator), its subjects repeated to SUBJECTS (default 1000); the sequences and
fractions are its first golden evaluation.
"""
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
from pySuStaIn.MixedTypeSustain import MixedTypeSustain as Reference

import sustain_rs

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ROOT / "crates" / "sustain-model" / "tests" / "data" / "mixed_golden" / "cases.json"
sys.path.insert(0, str(ROOT / "crates" / "sustain-py" / "tests"))
from test_mixed import inputs  # noqa: E402  (the cohort as the constructors take it)

n_subjects = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
cohort = json.loads(CASES.read_text())["cohorts"][0]
blocks = list(inputs(cohort))
m0 = next(b.shape[0] for b in (blocks[0], blocks[3], blocks[6]) if b is not None)
rows = np.arange(n_subjects) % m0
for i in (0, 3, 4, 6, 7):  # the per-subject blocks
    if blocks[i] is not None:
        blocks[i] = blocks[i][rows]
z, z_vals, z_max, nl, ps, sv, yes, no = blocks
ev = cohort["evaluations"][0]
S = np.array(ev["sequences"], float)
f = np.array(ev["f"])


def labels(prefix, a):
    return [f"{prefix}{i}" for i in range(0 if a is None else a.shape[1])]


args = (z, z_vals, z_max, labels("z", z), nl, ps, sv, labels("o", nl), yes, no, labels("e", yes),
        1, S.shape[0], 100)
with tempfile.TemporaryDirectory() as tmp:
    ref = Reference(*args, tmp, "ref", False, seed=1)
    ours = sustain_rs.MixedTypeSustain(*args, tmp, "ours", False, seed=1, threads=1, progress=False)
ref_data = ref._MixedTypeSustain__sustainData


def reference_once():
    return ref._calculate_likelihood(ref_data, S, f)[0]


def ours_once():
    log_p = ours._log_likelihood_setofsamples(ours._sustainData, S[:, :, None], f[:, None])
    return float(np.sum(log_p))


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        value = fn()
        times.append(time.process_time() - t0)
    return min(times), value


ref_best, ours_best = float("inf"), float("inf")
for _ in range(5):
    t, ref_value = best(reference_once, 3)
    ref_best = min(ref_best, t)
    t, ours_value = best(ours_once, 30)
    ours_best = min(ours_best, t)
print(f"{n_subjects} subjects, {S.shape[0]} subtypes, {S.shape[1]} events")
print(f"reference: {ref_best * 1e3:.2f} ms  log-likelihood {ref_value:.10f}")
print(f"ours:      {ours_best * 1e3:.3f} ms  log-likelihood {ours_value:.10f}")
print(f"ratio: {ref_best / ours_best:.0f}x (thread CPU time, best of each)")
assert abs(ref_value - ours_value) <= 1e-9 * abs(ref_value), "the two disagree"
