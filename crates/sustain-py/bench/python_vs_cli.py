"""Side by side, interleaved: the same z-score fit through `sustain fit` and through
sustain_rs (Python), and pySuStaIn's tutorial workflow through sustain_rs.

    python crates/sustain-py/bench/python_vs_cli.py --sustain target/release/sustain [--repeats 3]

Prints one line per run and the medians; docs/performance.md quotes them.
"""
import argparse
import contextlib
import json
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import sustain_rs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import zscore_cohort  # noqa: E402


def write_csv(path, data, labels):
    rows = ["id," + ",".join(labels)] + [
        f"{i + 1}," + ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for i, row in enumerate(data)]
    path.write_text("\n".join(rows) + "\n")


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cli_fit(binary, model_args, out, k, startpoints, iterations, chains, seed):
    """Wall and CPU seconds of `sustain fit`."""
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run([binary, "fit", *model_args, "--subtypes", str(k), "--startpoints", str(startpoints),
                    "--iterations", str(iterations), "--chains", str(chains), "--seed", str(seed),
                    "--missing", "reference", "--out", str(out), "--quiet", "--no-report"],
                   check=True, capture_output=True)
    return time.perf_counter() - t0, children_cpu() - c0


def py_fit(data, z_vals, z_max, labels, out, k, startpoints, iterations, chains, seed):
    """Wall and CPU seconds of the same fit through sustain_rs."""
    t0, c0 = time.perf_counter(), time.process_time()
    model = sustain_rs.ZscoreSustainMissingData(data, z_vals, z_max, labels, startpoints, k,
                                                iterations * chains, out, "b", True, seed=seed, n_chains=chains,
                                                progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        model.run_sustain_algorithm()
    return time.perf_counter() - t0, time.process_time() - c0


def workflow(data, labels, new, out):
    """pySuStaIn's tutorial: fit (10 start points, 3 subtypes, 1e4 iterations),
    3-fold cross-validation, staging new subjects."""
    z_vals = np.tile([1.0, 2.0, 3.0], (data.shape[1], 1))
    t0, c0 = time.perf_counter(), time.process_time()
    model = sustain_rs.ZscoreSustain(data, z_vals, np.full(data.shape[1], 5.0), labels, 10, 3, int(1e4), out, "w",
                                     True, seed=1, progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        seq, f, *_ = model.run_sustain_algorithm()
        model.cross_validate_sustain_model([np.arange(i, data.shape[0], 3) for i in range(3)])
        model.subtype_and_stage_individuals_newData(new, seq, f, 1000)
    return time.perf_counter() - t0, time.process_time() - c0


def ctrl_c_latency(tmp):
    """Seconds from Ctrl-C (SIGINT, sent 2 s into a long fit) to KeyboardInterrupt."""
    import os
    import signal
    import threading
    data, z_vals, z_max, labels = zscore_cohort(400, n_biomarkers=6)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 4, 3, 10_000_000, tmp, "c", False, seed=1,
                                     progress=False)
    sent = []
    timer = threading.Timer(2.0, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT)))
    timer.start()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model.run_sustain_algorithm()
    except KeyboardInterrupt:
        return time.perf_counter() - sent[0]
    raise RuntimeError("the fit ended before Ctrl-C")


def fits(args):
    """The same fit through the CLI and through Python, interleaved."""
    cases = []
    sim42 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sim42"
    if (sim42 / "data.csv").is_file():
        spec = json.loads((sim42 / "model.json").read_text())
        data = np.genfromtxt(sim42 / "data.csv", delimiter=",", skip_header=1)
        cases.append(("sim42 (500 x 5, 3 subtypes, 10 start points, 4 chains x 2500)",
                      ["--data", str(sim42 / "data.csv"), "--model", str(sim42 / "model.json")],
                      (data, np.array(spec["z_vals"], float), np.array(spec["z_max"], float), spec["biomarkers"]),
                      (3, 10, 2500, 4)))
    else:
        print("NOTICE: ../shared/data/sim42 absent; sim42 skipped")
    data, z_vals, z_max, labels = zscore_cohort(1000, n_biomarkers=10, seed=42, missing=0.1)
    cases.append(("W1 (1000 x 10, z 1,2,3, 10% missing, 3 subtypes, 10 start points, 4 chains x 2500)",
                  None, (data, z_vals, z_max, labels), (3, 10, 2500, 4)))
    for name, model_args, (data, z_vals, z_max, labels), (k, sp, it, ch) in cases:
        times = {"cli": [], "python": []}
        cpu = {"cli": [], "python": []}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            if model_args is None:
                csv = tmp / "z.csv"
                write_csv(csv, data, labels)
                model_args = ["--data", str(csv), "--id-column", "id", "--zvals", "1,2,3", "--zmax", "5"]
            for r in range(args.repeats):
                for who, run in (("cli", lambda: cli_fit(args.sustain, model_args, tmp / f"cli{r}", k, sp, it, ch, 7)),
                                 ("python", lambda: py_fit(data, z_vals, z_max, labels, tmp / f"py{r}", k, sp, it,
                                                           ch, 7))):
                    wall, c = run()
                    times[who].append(wall)
                    cpu[who].append(c)
                print(f"{name} run {r}: cli {times['cli'][-1]:.2f} s ({cpu['cli'][-1]:.2f} s CPU), "
                      f"python {times['python'][-1]:.2f} s ({cpu['python'][-1]:.2f} s CPU)", flush=True)
        c, p = statistics.median(times["cli"]), statistics.median(times["python"])
        cc, pc = statistics.median(cpu["cli"]), statistics.median(cpu["python"])
        print(f"{name}: median wall cli {c:.2f} s, python {p:.2f} s, python/cli {p / c:.3f}; "
              f"median CPU cli {cc:.2f} s, python {pc:.2f} s, python/cli {pc / cc:.3f}")


def tutorial(args):
    """pySuStaIn's tutorial workflow through Python: wall and CPU time."""
    data, _, _, labels = zscore_cohort(1000, n_biomarkers=8, seed=3)
    new = zscore_cohort(50, n_biomarkers=8, seed=4)[0]
    ts, cpu = [], []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            wall, c = workflow(data, labels, new, Path(tmp))
        ts.append(wall)
        cpu.append(c)
        print(f"tutorial workflow run {r}: {wall:.2f} s wall, {c:.2f} s CPU (all threads)", flush=True)
    print(f"tutorial workflow (1000 x 8, fit + 3-fold CV + staging 50): median {statistics.median(ts):.2f} s wall, "
          f"{statistics.median(cpu):.2f} s CPU")


def ctrl_c(args):
    lat = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            lat.append(ctrl_c_latency(Path(tmp)))
    print("Ctrl-C to KeyboardInterrupt: " + ", ".join(f"{v:.2f} s" for v in lat))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sustain", help="the sustain binary (needed for the CLI comparison)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["fits", "workflow", "ctrl-c"], help="run one part only")
    args = ap.parse_args()
    parts = {"fits": fits, "workflow": tutorial, "ctrl-c": ctrl_c}
    for name, part in parts.items():
        if args.only in (None, name):
            if name == "fits" and not args.sustain:
                ap.error("--sustain is needed for the CLI comparison")
            part(args)


if __name__ == "__main__":
    main()
