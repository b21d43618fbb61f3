"""pySuStaIn's model classes, with its names and constructor signatures."""

import numpy as np

from . import _mixture_simulate, _native, _simulate
from ._abstract import AbstractSustain, SustainData
from ._plots import PVD_OPTIONS, plot_pvd


def _matrix(name, value, ndim=2):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array: {e}") from None
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, not {a.ndim} (shape {a.shape})")
    return np.ascontiguousarray(a)


def _labels(biomarker_labels, n):
    labels = [str(b) for b in biomarker_labels]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} biomarker_labels for {n} biomarkers")
    return labels


class ZScoreSustainData(SustainData):
    """z-scores (subjects x biomarkers) and the number of stages."""

    def __init__(self, data, numStages, *, Z_vals=None, Z_max=None, missing="marginalise"):
        if Z_vals is None or Z_max is None:
            raise ValueError("sustain_rs.ZScoreSustainData needs Z_vals and Z_max (keyword arguments)")
        native = _native.Model.zscore(_matrix("data", data), _matrix("Z_vals", Z_vals),
                                      [float(v) for v in np.ravel(Z_max)], missing)
        super().__init__(native, numStages)


class MixtureSustainData(SustainData):
    """pySuStaIn's ``L_yes`` and ``L_no`` (subjects x biomarkers)."""

    def __init__(self, L_yes, L_no, numStages):
        super().__init__(_native.Model.mixture(_matrix("L_yes", L_yes), _matrix("L_no", L_no)), numStages)


class OrdinalSustainData(SustainData):
    """pySuStaIn's ``prob_nl`` (subjects x biomarkers) and ``prob_score``
    (subjects x biomarkers x scores), with ``score_vals``."""

    def __init__(self, prob_nl, prob_score, numStages, *, score_vals=None):
        if score_vals is None:
            raise ValueError("sustain_rs.OrdinalSustainData needs score_vals (keyword argument)")
        native = _native.Model.ordinal(_matrix("prob_nl", prob_nl), _matrix("prob_score", prob_score, 3),
                                       _matrix("score_vals", score_vals))
        super().__init__(native, numStages)


class ZscoreSustain(AbstractSustain):
    """The z-score model (pySuStaIn's ``ZscoreSustain``): ``data`` holds no missing
    values (use ``ZscoreSustainMissingData`` for those)."""

    _missing = "reference"
    _allows_missing = False

    def __init__(self, data, Z_vals, Z_max, biomarker_labels, N_startpoints, N_S_max, N_iterations_MCMC,
                 output_folder, dataset_name, use_parallel_startpoints, seed=None, **kwargs):
        data = _matrix("data", data)
        if not self._allows_missing and np.isnan(data).any():
            row, col = np.argwhere(np.isnan(data))[0]
            raise ValueError(f"data row {row}, column {col} is missing (NaN): use ZscoreSustainMissingData")
        self.Z_vals = _matrix("Z_vals", Z_vals)
        self.Z_max = np.ravel(np.asarray(Z_max, dtype=np.float64))
        self.biomarker_labels = _labels(biomarker_labels, data.shape[1])
        n_events = int(np.count_nonzero(self.Z_vals))
        self.__sustainData = ZScoreSustainData(data, n_events, Z_vals=self.Z_vals, Z_max=self.Z_max,
                                               missing=self._missing)
        super().__init__(self.__sustainData, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                         dataset_name, use_parallel_startpoints, seed, **kwargs)

    def subtype_and_stage_individuals_newData(self, data_new, samples_sequence, samples_f, N_samples):
        data_new = _matrix("data_new", data_new)
        if not self._allows_missing and np.isnan(data_new).any():
            row, col = np.argwhere(np.isnan(data_new))[0]
            raise ValueError(f"data_new row {row}, column {col} is missing (NaN): use ZscoreSustainMissingData")
        new = ZScoreSustainData(data_new, self.__sustainData.getNumStages(), Z_vals=self.Z_vals,
                                Z_max=self.Z_max, missing=self._missing)
        return self.subtype_and_stage_individuals(new, samples_sequence, samples_f, N_samples)

    def _plot_sustain_model(self, *args, **kwargs):
        return ZscoreSustain.plot_positional_var(*args, Z_vals=self.Z_vals, **kwargs)

    @staticmethod
    def plot_positional_var(samples_sequence, samples_f, n_samples, Z_vals, biomarker_labels=None, ml_f_EM=None,
                            cval=False, subtype_order=None, biomarker_order=None, title_font_size=12,
                            stage_font_size=10, stage_label="SuStaIn Stage", stage_rot=0, stage_interval=1,
                            label_font_size=10, label_rot=0, cmap="original", biomarker_colours=None,
                            figsize=None, subtype_titles=None, separate_subtypes=False, save_path=None,
                            save_kwargs={}):  # noqa: B006 (pySuStaIn's signature)
        return _plot(locals(), *_events_of(Z_vals))

    # The reference's simulators (same signatures, same draws from numpy's global generator).
    generate_random_model = staticmethod(_simulate.generate_random_model)
    generate_data = staticmethod(_simulate.generate_data_zscore)
    test_sustain = classmethod(_simulate.test_sustain_zscore)


class ZscoreSustainMissingData(ZscoreSustain):
    """The z-score model with missing data (NaN), as pySuStaIn's
    ``ZscoreSustainMissingData`` (the same constant per missing value)."""

    _allows_missing = True


class MixtureSustain(AbstractSustain):
    """The event-based model (pySuStaIn's ``MixtureSustain``). ``use_dp`` is
    accepted for compatibility: the likelihoods are the same either way."""

    def __init__(self, L_yes, L_no, biomarker_labels, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                 dataset_name, use_parallel_startpoints, use_dp=False, seed=None, **kwargs):
        L_yes = _matrix("L_yes", L_yes)
        self.biomarker_labels = _labels(biomarker_labels, L_yes.shape[1])
        self.use_dp = bool(use_dp)
        self.__sustainData = MixtureSustainData(L_yes, L_no, L_yes.shape[1])
        super().__init__(self.__sustainData, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                         dataset_name, use_parallel_startpoints, seed, **kwargs)

    def subtype_and_stage_individuals_newData(self, L_yes_new, L_no_new, samples_sequence, samples_f, N_samples):
        new = MixtureSustainData(L_yes_new, L_no_new, self.__sustainData.getNumStages())
        return self.subtype_and_stage_individuals(new, samples_sequence, samples_f, N_samples)

    def _plot_sustain_model(self, *args, **kwargs):
        return MixtureSustain.plot_positional_var(*args, **kwargs)

    @staticmethod
    def plot_positional_var(samples_sequence, samples_f, n_samples, biomarker_labels=None, ml_f_EM=None,
                            cval=False, subtype_order=None, biomarker_order=None, title_font_size=12,
                            stage_font_size=10, stage_label="Event Position", stage_rot=0, stage_interval=1,
                            label_font_size=10, label_rot=0, cmap="Oranges", biomarker_colours=None,
                            figsize=None, subtype_titles=None, separate_subtypes=False, save_path=None,
                            save_kwargs={}):  # noqa: B006 (pySuStaIn's signature)
        n = np.asarray(samples_sequence).shape[1]
        return _plot(locals(), list(range(n)), [0] * n, n)

    # The reference's simulators (same signatures, same draws from numpy's global generator).
    generate_random_model = staticmethod(_mixture_simulate.generate_random_model)
    generate_data = staticmethod(_mixture_simulate.generate_data)
    create_mixture_data = classmethod(_mixture_simulate.create_mixture_data)
    test_sustain = classmethod(_mixture_simulate.test_sustain)


class OrdinalSustain(AbstractSustain):
    """The ordinal model (pySuStaIn's ``OrdinalSustain``)."""

    def __init__(self, prob_nl, prob_score, score_vals, biomarker_labels, N_startpoints, N_S_max,
                 N_iterations_MCMC, output_folder, dataset_name, use_parallel_startpoints, seed=None, **kwargs):
        prob_nl = _matrix("prob_nl", prob_nl)
        self.score_vals = _matrix("score_vals", score_vals)
        self.biomarker_labels = _labels(biomarker_labels, prob_nl.shape[1])
        n_events = int(np.count_nonzero(self.score_vals))
        self.__sustainData = OrdinalSustainData(prob_nl, prob_score, n_events, score_vals=self.score_vals)
        super().__init__(self.__sustainData, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                         dataset_name, use_parallel_startpoints, seed, **kwargs)

    def subtype_and_stage_individuals_newData(self, prob_nl_new, prob_score_new, samples_sequence, samples_f,
                                              N_samples):
        new = OrdinalSustainData(prob_nl_new, prob_score_new, self.__sustainData.getNumStages(),
                                 score_vals=self.score_vals)
        return self.subtype_and_stage_individuals(new, samples_sequence, samples_f, N_samples)

    def _plot_sustain_model(self, *args, **kwargs):
        return OrdinalSustain.plot_positional_var(*args, score_vals=self.score_vals, **kwargs)

    @staticmethod
    def plot_positional_var(samples_sequence, samples_f, n_samples, score_vals, biomarker_labels=None,
                            ml_f_EM=None, cval=False, subtype_order=None, biomarker_order=None,
                            title_font_size=12, stage_font_size=10, stage_label="SuStaIn Stage", stage_rot=0,
                            stage_interval=1, label_font_size=10, label_rot=0, cmap="original",
                            biomarker_colours=None, figsize=None, subtype_titles=None, separate_subtypes=False,
                            save_path=None, save_kwargs={}):  # noqa: B006 (pySuStaIn's signature)
        return _plot(locals(), *_events_of(score_vals))

    # The reference's simulators (same signatures, same draws from numpy's global generator).
    generate_random_model = staticmethod(_simulate.generate_random_model)
    generate_data = staticmethod(_simulate.generate_data_ordinal)
    test_sustain = classmethod(_simulate.test_sustain_ordinal)


def _plot(args, event_biomarkers, event_levels, n_biomarkers):
    """plot_pvd with the options of a plot_positional_var call (its ``locals()``);
    ``cmap`` and ``biomarker_colours`` are accepted and not used."""
    options = {k: args[k] for k in PVD_OPTIONS}
    return plot_pvd(args["samples_sequence"], args["samples_f"], args["n_samples"], event_biomarkers,
                    event_levels, n_biomarkers, **options)


def _events_of(vals):
    """Each event's biomarker and level, in the models' (and pySuStaIn's) event
    order: threshold column by column, biomarkers in order within a column."""
    vals = np.asarray(vals)
    biomarkers, levels = [], []
    seen = [0] * vals.shape[0]
    for j in range(vals.shape[1]):
        for b in range(vals.shape[0]):
            if vals[b, j] != 0:
                biomarkers.append(b)
                levels.append(seen[b])
                seen[b] += 1
    return biomarkers, levels, vals.shape[0]
