"""Bad input raises ValueError with a message naming the problem, never a crash;
pickles of other data are refused; Ctrl-C stops a fit."""

import contextlib
import io
import os
import signal
import threading
import time

import numpy as np
import pytest

import sustain_rs
from conftest import mixture_cohort, zscore_cohort


def zs(data=None, **kw):
    d, z_vals, z_max, labels = zscore_cohort(40)
    args = dict(data=d if data is None else data, Z_vals=z_vals, Z_max=z_max, biomarker_labels=labels,
                N_startpoints=2, N_S_max=1, N_iterations_MCMC=100, output_folder=kw.pop("out", "unused"),
                dataset_name="x", use_parallel_startpoints=False, seed=1)
    args.update(kw)
    return sustain_rs.ZscoreSustain(**args)


def test_missing_values_need_the_missing_data_class():
    d = zscore_cohort(40)[0]
    d[3, 2] = np.nan
    with pytest.raises(ValueError, match="row 3, column 2 .*ZscoreSustainMissingData"):
        zs(d)


def test_bad_settings_and_shapes():
    with pytest.raises(ValueError, match="biomarker_labels"):
        zs(biomarker_labels=["a"])
    with pytest.raises(ValueError, match="N_S_max"):
        zs(N_S_max=0)
    with pytest.raises(ValueError, match="N_iterations_MCMC"):
        zs(N_iterations_MCMC=10.5)
    with pytest.raises(ValueError, match="(?i)z_vals"):
        zs(Z_vals=np.ones((2, 3)))
    with pytest.raises(ValueError):
        zs(Z_max=[5.0, 5.0])
    with pytest.raises(ValueError, match="backend"):
        zs(backend="tpu")
    with pytest.raises(ValueError):
        zs(data=np.full((40, 4), np.inf))
    L_yes, L_no, labels = mixture_cohort(20)
    L_yes[4, 1] = -0.5
    with pytest.raises(ValueError, match="row 4.*column 1|row 5.*column 2"):
        sustain_rs.MixtureSustain(L_yes, L_no, labels, 2, 1, 100, "unused", "x", False, seed=1)


def test_staging_rejects_bad_samples(tmp_path):
    model = zs(out=tmp_path, progress=False)
    with contextlib.redirect_stdout(io.StringIO()):
        seq, f, *_ = model.run_sustain_algorithm()
    bad = seq.copy()
    bad[0, 0, 0] = bad[0, 1, 0]  # not a permutation any more
    with pytest.raises(ValueError, match="sample 0"):
        model.subtype_and_stage_individuals_newData(zscore_cohort(3)[0], bad, f, 100)
    with pytest.raises(ValueError, match="events"):
        model.subtype_and_stage_individuals_newData(zscore_cohort(3)[0], seq[:, :5], f, 10)


def test_pickles_of_other_data_or_settings_are_refused(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        zs(out=tmp_path, progress=False).run_sustain_algorithm()
        with pytest.raises(ValueError, match="other data or settings"):
            zs(out=tmp_path, seed=2, progress=False).run_sustain_algorithm()
        other = zscore_cohort(40, seed=8)[0]
        with pytest.raises(ValueError, match="other data or settings"):
            zs(other, out=tmp_path, progress=False).run_sustain_algorithm()
    # A pickle without sustain_rs's fingerprint (e.g. pySuStaIn's) is not trusted.
    import pickle
    path = tmp_path / "pickle_files" / "x_subtype0.pickle"
    with open(path, "rb") as f:
        v = pickle.load(f)
    v.pop("sustain_rs")
    with open(path, "wb") as f:
        pickle.dump(v, f)
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(ValueError, match="not written by sustain_rs"):
            zs(out=tmp_path, progress=False).run_sustain_algorithm()


def test_ctrl_c_stops_a_fit(tmp_path):
    """The fit asked for takes many minutes; Ctrl-C ends it early and leaves no
    pickle (the latency itself is measured in bench/, not asserted on a busy host)."""
    data, z_vals, z_max, labels = zscore_cohort(400, n_biomarkers=6)
    model = sustain_rs.ZscoreSustain(data, z_vals, z_max, labels, 4, 3, 10_000_000, tmp_path, "x", False,
                                     seed=1, progress=False)
    timer = threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with contextlib.redirect_stdout(io.StringIO()):
            model.run_sustain_algorithm()
    elapsed = time.monotonic() - t0
    timer.cancel()
    assert elapsed < 30.0, f"stopped {elapsed - 2.0:.1f} s after Ctrl-C"
    assert not list((tmp_path / "pickle_files").glob("*.pickle")), "an interrupted fit left a pickle"


def test_figures_know_the_models_event_order():
    from sustain_rs._families import _events_of
    z_vals = np.array([[1.0, 2.0, 3.0], [0.5, 1.5, 0.0], [2.0, 0.0, 0.0]])
    native = sustain_rs.ZScoreSustainData(np.zeros((2, 3)), 6, Z_vals=z_vals, Z_max=[5.0, 5.0, 5.0]).native
    assert _events_of(z_vals) == (native.event_biomarkers, native.event_levels, 3)


def test_a_subject_without_data_is_named():
    d = zscore_cohort(40)[0]
    d[7, :] = np.nan
    with pytest.raises(ValueError, match="row 7 has every biomarker missing"):
        sustain_rs.ZscoreSustainMissingData(d, *zscore_cohort(40)[1:], 2, 1, 100, "unused", "x", False, seed=1)
