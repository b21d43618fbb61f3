"""sustain_rs.fit_mixtures: the same L_yes / L_no as the CLI's `sustain mixture`
(one Rust copy of the fit), ValueErrors that name the bad column or row, and a
MixtureSustain fit from its arrays."""

import json
import subprocess

import numpy as np
import pytest

import sustain_rs


def _cohort(seed=3, n=120, n_biomarkers=3):
    """Controls near 0, patients shifted up by biomarker, some other subjects and
    missing values."""
    rng = np.random.default_rng(seed)
    diagnosis = np.array(["CN"] * 50 + ["AD"] * 50 + ["MCI"] * (n - 100), dtype=object)
    shift = np.where(diagnosis == "AD", 1.0, np.where(diagnosis == "MCI", 0.5, 0.0))
    data = rng.normal(0.0, 0.3, size=(n, n_biomarkers)) + shift[:, None] * np.linspace(1.0, 2.0, n_biomarkers)
    data[5, 1] = np.nan
    data[70, 0] = np.nan
    return data, diagnosis


def _cli(sustain_bin, tmp_path, data, diagnosis, method, fix_controls):
    raw = tmp_path / "raw.csv"
    names = [f"b{i}" for i in range(data.shape[1])]
    with raw.open("w") as f:
        f.write(",".join(["dx"] + names) + "\n")
        for d, row in zip(diagnosis, data):
            f.write(",".join([d] + ["" if np.isnan(v) else repr(float(v)) for v in row]) + "\n")
    out = tmp_path / f"out_{method}_{fix_controls}"
    cmd = [sustain_bin, "mixture", "--raw", str(raw), "--diagnosis-column", "dx", "--control-value", "CN",
           "--patient-value", "AD", "--method", method, "--out", str(out)]
    subprocess.run(cmd + (["--fix-controls"] if fix_controls else []), check=True, capture_output=True)
    read = lambda name: np.genfromtxt(out / name, delimiter=",", skip_header=1)[:, 1:]  # noqa: E731
    return read("p_event.csv"), read("p_no_event.csv"), json.loads((out / "mixtures.json").read_text())


@pytest.mark.parametrize("method,fix_controls", [("gmm", False), ("gmm", True), ("kde", False)])
def test_fit_mixtures_gives_the_clis_likelihoods(sustain_bin, tmp_path, method, fix_controls):
    data, diagnosis = _cohort()
    cli_yes, cli_no, cli_fits = _cli(sustain_bin, tmp_path, data, diagnosis, method, fix_controls)
    L_yes, L_no, fits = sustain_rs.fit_mixtures(data, diagnosis, method=method, fix_controls=fix_controls,
                                               control_value="CN", patient_value="AD", return_fits=True,
                                               biomarker_labels=["b0", "b1", "b2"])
    assert L_yes.shape == L_no.shape == data.shape
    assert np.isnan(L_yes[5, 1]) and np.isnan(L_no[70, 0])
    # The CLI writes its CSVs with round-trip precision, so equal to the last bit.
    np.testing.assert_array_equal(L_yes, cli_yes)
    np.testing.assert_array_equal(L_no, cli_no)
    for mine, theirs in zip(fits, cli_fits["biomarkers"]):
        assert mine == theirs  # same names, counts and parameters (JSON keeps every bit)


def test_fit_mixtures_output_runs_a_mixture_sustain_fit(tmp_path):
    data, diagnosis = _cohort(seed=4, n=100)
    L_yes, L_no = sustain_rs.fit_mixtures(data[:, :3], (diagnosis == "AD").astype(int))
    # The reference's MixtureSustain takes no missing values.
    keep = ~np.isnan(L_yes).any(axis=1)
    m = sustain_rs.MixtureSustain(L_yes[keep], L_no[keep], ["b0", "b1", "b2"], 4, 1, 200, str(tmp_path),
                                  "fitmix", False, 7)
    result = m.run_sustain_algorithm()
    samples_sequence = result[0]
    assert samples_sequence.shape[:2] == (1, 3)
    assert sorted(samples_sequence[0, :, 0]) == [0, 1, 2]


def test_fit_mixtures_numbers_match_numbers_and_text_as_the_cli():
    data, diagnosis = _cohort()
    numeric = np.where(diagnosis == "CN", 0.0, np.where(diagnosis == "AD", 1.0, 2.0))
    by_text = sustain_rs.fit_mixtures(data, diagnosis, control_value="CN", patient_value="AD")
    by_number = sustain_rs.fit_mixtures(data, numeric)  # 0 matches 0.0, 1 matches 1.0
    np.testing.assert_array_equal(by_text[0], by_number[0])


@pytest.mark.parametrize("change,message", [
    (lambda d, x: (d, x, {"method": "em"}), "method must be 'gmm' or 'kde'"),
    (lambda d, x: (d, x, {"patient_value": "CN"}), "both 'CN'"),
    (lambda d, x: (d, x, {"patient_value": "PD"}), "no subject has 'PD', so there are no patients"),
    (lambda d, x: (d, x[:-1], {}), "diagnosis has 119 values for 120 rows"),
    (lambda d, x: (np.vstack([d[:3], [[np.nan] * 3], d[4:]]), x, {}), "row 4: every biomarker is missing"),
    (lambda d, x: (np.column_stack([d[:, :2], np.where(x == "CN", 1.0, d[:, 2])]), x, {}),
     "column 'biomarker 2': the controls' values are all equal"),
    (lambda d, x: (np.where(np.arange(120)[:, None] == 7, "high", d.astype(object)), x, {}),
     r"column 'biomarker 0', row 8: 'high' is not a number"),
])
def test_fit_mixtures_bad_input_raises_value_error(change, message):
    data, diagnosis = _cohort()
    data, diagnosis, kwargs = change(data, diagnosis)
    kwargs = {"control_value": "CN", "patient_value": "AD", **kwargs}
    with pytest.raises(ValueError, match=message):
        sustain_rs.fit_mixtures(data, diagnosis, **kwargs)


def test_fit_mixtures_names_dataframe_columns():
    pd = pytest.importorskip("pandas")
    data, diagnosis = _cohort()
    data[diagnosis == "CN", 1] = 2.0
    frame = pd.DataFrame(data, columns=["hippocampus", "ventricles", "csf_abeta"])
    with pytest.raises(ValueError, match="column 'ventricles': the controls' values are all equal"):
        sustain_rs.fit_mixtures(frame, diagnosis, control_value="CN", patient_value="AD")
