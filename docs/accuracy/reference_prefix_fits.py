"""The reference's fits of the bundled mixture and ordinal examples, for
docs/accuracy.md: pySuStaIn's MixtureSustain / OrdinalSustain with its settings
(10 start points, 3 subtypes, 1e4 MCMC iterations, seed 42) on
examples/data/{mixture,ordinal}; prints, per family, the ML log-likelihood of the
3-subtype model and writes each subject's ML subtype and stage to OUT/*.csv.

Run from outside the pySuStaIn clone, with its venv:
    V/bin/python docs/accuracy/reference_prefix_fits.py examples/data OUT
"""
import csv, json, os, pickle, sys, time
import numpy as np
from pySuStaIn import MixtureSustain, OrdinalSustain

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def table(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows[1:]])

def run(kind, sustain):
    t0 = time.time()
    sustain.run_sustain_algorithm()
    wall = time.time() - t0
    with open(os.path.join(out, kind, "pickle_files", f"{kind}_subtype2.pickle"), "rb") as f:
        p = pickle.load(f)
    ml = float(np.max(p["samples_likelihood"]))
    with open(os.path.join(out, f"{kind}_subjects.csv"), "w") as f:
        f.write("ml_subtype,ml_stage\n")
        for s, k in zip(p["ml_subtype"].ravel(), p["ml_stage"].ravel()):
            f.write(f"{int(s)},{int(k)}\n")
    # The ML sample's sequences, in the subtype numbering of ml_subtype.
    best = int(np.argmax(p["samples_likelihood"]))
    seqs = p["samples_sequence"][:, :, best].astype(int).tolist()
    print(json.dumps({"family": kind, "ml_loglike": ml, "wall_s": wall, "ml_sequences": seqs,
                      "mean_f": np.mean(p["samples_f"], axis=1).tolist()}), flush=True)

for kind in ("mixture", "ordinal"):
    os.makedirs(os.path.join(out, kind), exist_ok=True)

yes = table(os.path.join(root, "mixture", "p_yes.csv"))
no = table(os.path.join(root, "mixture", "p_no.csv"))
labels = [f"bm{b}" for b in range(yes.shape[1])]
run("mixture", MixtureSustain(yes, no, labels, 10, 3, int(1e4), os.path.join(out, "mixture"), "mixture", False, seed=42))

scores = table(os.path.join(root, "ordinal", "scores.csv"))
Z = 3
pc = 0.9
wrong = (1 - pc) / Z
prob_nl = np.where(scores == 0, pc, wrong)
prob_score = np.stack([np.where(scores == z, pc, wrong) for z in (1, 2, 3)], axis=2)
score_vals = np.array([[1, 2, 3]] * scores.shape[1])
run("ordinal", OrdinalSustain(prob_nl, prob_score, score_vals, [f"bm{b}" for b in range(scores.shape[1])],
                              10, 3, int(1e4), os.path.join(out, "ordinal"), "ordinal", False, seed=42))
