"""The example notebook (examples/python/tutorial.ipynb) runs end to end."""

import contextlib
import io
import json
import os

import pytest

from conftest import REPO

pytest.importorskip("matplotlib", reason="NOTICE: the notebook draws figures with matplotlib")


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    nb = json.loads((REPO / "examples" / "python" / "tutorial.ipynb").read_text())
    monkeypatch.chdir(tmp_path)
    scope = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), "tutorial.ipynb", "exec"), scope)
    assert "CVIC:" in out.getvalue()
    assert os.path.isfile(tmp_path / "tutorial-output" / "sim_subtype1_PVD_3fold_CV.png")
