#!/bin/sh
# Our event-based and ordinal models next to pySuStaIn's, interleaved (reference,
# ours, reference, ours) so that both see the same machine; prints each run's
# JSON lines and the ratios of the best times.
#   benches/reference/prefix_side_by_side.sh PYTHON [--quick]
# PYTHON: a Python with pySuStaIn (and kde_ebm) installed; see docs/performance.md.
set -eu
py=${1:?usage: $0 PYTHON [--quick]}
quick=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cargo build --release --example prefix_timing --manifest-path "$root/Cargo.toml" >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/prefix_timing"
for round in 1 2; do
    (cd "$out" && "$py" "$root/benches/reference/prefix_reference.py" $quick 2>/dev/null) >> "$out/reference.jsonl"
    "$bin" $quick >> "$out/ours.jsonl"
done
cat "$out/reference.jsonl" "$out/ours.jsonl"
python3 - "$out" <<'PY'
import json, sys, collections
def best(path):
    b = collections.defaultdict(dict)
    for line in open(path):
        r = json.loads(line)
        for k, v in r.items():
            if k != "model":
                b[r["model"]][k] = min(v, b[r["model"]].get(k, float("inf")))
    return b
ref, ours = best(sys.argv[1] + "/reference.jsonl"), best(sys.argv[1] + "/ours.jsonl")
for model in ref:
    for k in ("loglike_s", "mcmc_iter_s", "em_pass_s"):
        print(f"{model} {k}: reference {ref[model][k]:.3e} s, ours {ours[model][k]:.3e} s, ratio {ref[model][k] / ours[model][k]:.0f}x")
PY
