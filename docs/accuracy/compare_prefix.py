"""Recovery of the simulated truth by our fit and the reference's, for
docs/accuracy.md: ML log-likelihood of the 3-subtype model, subtype agreement
(best label matching) over diseased subjects, stage exact / within one, and the
Kendall tau of each true sequence with its matched ML sequence.

    python3 docs/accuracy/compare_prefix.py FAMILY OUR_FIT_DIR REF_OUT SHARED_FAMILY_DIR
"""
import csv, itertools, json, sys

family, ours, ref, shared = sys.argv[1:5]

def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))

truth = rows(f"{shared}/truth_subjects.csv")
t_sub = [int(r["subtype"]) for r in truth]
t_stage = [int(r["stage"]) for r in truth]
t_seq = json.load(open(f"{shared}/truth_sequences.json"))["sequences"]

def kendall(a, b):
    pa = {e: i for i, e in enumerate(a)}
    pb = {e: i for i, e in enumerate(b)}
    n = len(a)
    c = d = 0
    for i in range(n):
        for j in range(i + 1, n):
            if (pa[i] < pa[j]) == (pb[i] < pb[j]):
                c += 1
            else:
                d += 1
    return (c - d) / (c + d)

def report(name, sub, stage, seqs, ll):
    diseased = [m for m in range(len(t_sub)) if t_stage[m] > 0]
    best = max(itertools.permutations(range(3)),
               key=lambda p: sum(p[sub[m]] == t_sub[m] for m in diseased))
    agree = sum(best[sub[m]] == t_sub[m] for m in diseased) / len(diseased)
    exact = sum(stage[m] == t_stage[m] for m in range(len(stage))) / len(stage)
    within = sum(abs(stage[m] - t_stage[m]) <= 1 for m in range(len(stage))) / len(stage)
    inv = {best[s]: s for s in range(3)}
    taus = [kendall(t_seq[t], seqs[inv[t]]) for t in range(3)]
    print(f"| {name} | {ll:.3f} | {agree:.2f} | {exact:.2f} / {within:.2f} | "
          + " / ".join(f"{x:.2f}" for x in taus) + " |")

r = json.load(open(f"{ours}/results.json"))["models"][2]
o = rows(f"{ours}/subjects_k3.csv")
report("sustain-rs", [int(x["ml_subtype"]) for x in o], [int(x["ml_stage"]) for x in o],
       r["ml_sequences"], r["ml_loglike"])
refj = [json.loads(l) for l in open(f"{ref}.log") if l.startswith("{")]
refj = [x for x in refj if x["family"] == family][0]
p = rows(f"{ref}/{family}_subjects.csv")
# The reference numbers ml_subtype by descending mean fraction, its samples not.
order = sorted(range(3), key=lambda s: -refj["mean_f"][s])
report("pySuStaIn", [int(x["ml_subtype"]) for x in p], [int(x["ml_stage"]) for x in p],
       [refj["ml_sequences"][s] for s in order], refj["ml_loglike"])
