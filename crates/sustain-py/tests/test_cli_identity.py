"""The same fit through Python and through `sustain fit` gives identical results
for the same seed."""

import contextlib
import io
import json
import subprocess

import numpy as np

import sustain_rs
from conftest import zscore_cohort


def test_python_and_cli_fit_identically(tmp_path, sustain_bin):
    data, z_vals, z_max, labels = zscore_cohort(80, n_biomarkers=3, seed=6)
    csv = tmp_path / "z.csv"
    rows = ["id," + ",".join(labels)] + [f"{i + 1}," + ",".join(repr(float(v)) for v in row)
                                         for i, row in enumerate(data)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cli"
    subprocess.run([sustain_bin, "fit", "--data", str(csv), "--id-column", "id", "--zvals", "1,2,3", "--zmax", "5",
                    "--subtypes", "2", "--startpoints", "3", "--iterations", "600", "--chains", "2",
                    "--seed", "17", "--missing", "reference", "--out", str(out), "--quiet"],
                   check=True, capture_output=True)
    cli = json.loads((out / "results.json").read_text())
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 3, 2, 1200, tmp_path / "py", "z", True, seed=17,
                                     n_chains=2, progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        model.run_sustain_algorithm()
    for k, cli_model in enumerate(cli["models"], start=1):
        d = model.diagnostics(k)
        summary = d.pop("summary")
        assert summary["ml_sequences"] == cli_model["ml_sequences"]
        assert summary["ml_f"] == cli_model["ml_f"]
        assert summary["ml_loglike"] == cli_model["ml_loglike"]
        assert summary["mean_f"] == cli_model["mean_f"]
        assert d == cli_model["diagnostics"]
    # The E-M optimum in the pickle is the CLI's.
    import pickle
    with open(tmp_path / "py" / "pickle_files" / "z_subtype1.pickle", "rb") as f:
        v = pickle.load(f)
    assert np.array_equal(v["ml_sequence_EM"], np.array(cli["models"][1]["em_sequences"], dtype=float))
