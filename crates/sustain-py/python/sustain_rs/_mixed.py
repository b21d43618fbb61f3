"""pySuStaIn's ``MixedTypeSustain``: z-scored, ordinal and event biomarkers in one
sequence, with its constructor signature and methods."""

import numpy as np

from . import _mixed_simulate as _simulate
from . import _native
from ._abstract import AbstractSustain, SustainData
from ._families import OrdinalSustain, _matrix


def _optional(name, value, ndim=2):
    return None if value is None else _matrix(name, value, ndim)


def _combine_ordinal_event_inputs(ordinal_prob_nl, ordinal_prob_score, ordinal_score_vals, event_prob_yes,
                                  event_prob_no):
    """The reference's combined ordinal/event block: ``prob_nl`` (subjects x
    (ordinal + event)), ``prob_score`` (subjects x (ordinal + event) x scores, an
    event's likelihood given it happened in score 0) and their ``score_vals``."""
    n_ord = 0 if ordinal_prob_nl is None else ordinal_prob_nl.shape[1]
    n_ev = 0 if event_prob_yes is None else event_prob_yes.shape[1]
    if n_ord + n_ev == 0:
        return None, None, np.zeros((0, 0))
    sv = np.zeros((0, 1)) if n_ord == 0 else np.asarray(ordinal_score_vals, dtype=np.float64)
    width = max(sv.shape[1], 1)
    score_vals = np.zeros((n_ord + n_ev, width))
    score_vals[:n_ord, :sv.shape[1]] = sv
    score_vals[n_ord:, 0] = 1
    m = (ordinal_prob_nl if n_ord else event_prob_yes).shape[0]
    prob_score = np.zeros((m, n_ord + n_ev, width))
    if n_ord:
        prob_score[:, :n_ord, :ordinal_prob_score.shape[2]] = ordinal_prob_score
    if n_ev:
        prob_score[:, n_ord:, 0] = event_prob_yes
    parts = [p for p in (ordinal_prob_nl, event_prob_no) if p is not None]
    return np.hstack(parts), prob_score, score_vals


class MixedTypeSustainData(SustainData):
    """pySuStaIn's ``MixedTypeSustainData``: z-scores and the combined ordinal/event
    block (``prob_nl``, ``prob_score``; see ``_combine_ordinal_event_inputs``),
    with the model's parameters as keyword arguments (``n_ordinal`` of the block's
    biomarkers are ordinal, scored by ``score_vals``; the rest are events)."""

    def __init__(self, zdata, prob_nl, prob_score, numStages, *, z_vals=None, z_max=None, score_vals=None,
                 n_ordinal=0):
        zdata = _optional("zdata", zdata)
        if zdata is not None and (z_vals is None or z_max is None):
            raise ValueError("sustain_rs.MixedTypeSustainData needs z_vals and z_max with zdata")
        ord_nl = ord_ps = sv = yes = no = None
        if prob_nl is not None:
            prob_nl = _matrix("prob_nl", prob_nl)
            prob_score = _matrix("prob_score", prob_score, 3)
            n_ord = int(n_ordinal)
            if n_ord:
                sv = _matrix("score_vals", score_vals)
                ord_nl = np.ascontiguousarray(prob_nl[:, :n_ord])
                ord_ps = np.ascontiguousarray(prob_score[:, :n_ord, :sv.shape[1]])
            if prob_nl.shape[1] > n_ord:
                yes = np.ascontiguousarray(prob_score[:, n_ord:, 0])
                no = np.ascontiguousarray(prob_nl[:, n_ord:])
        z_max = None if zdata is None else [float(v) for v in np.ravel(z_max)]
        native = _native.Model.mixed(zdata, None if zdata is None else _matrix("z_vals", z_vals), z_max,
                                     ord_nl, ord_ps, sv, yes, no)
        super().__init__(native, numStages)


class MixedTypeSustain(AbstractSustain):
    """The mixed-type model (pySuStaIn's ``MixedTypeSustain``): z-score biomarkers
    first, then ordinal, then event ones, in one sequence. A missing (NaN) z-score
    is marginalised (the reference takes none)."""

    _combine_ordinal_event_inputs = staticmethod(_combine_ordinal_event_inputs)

    def __init__(self, zscore_data, z_vals, z_max, zscore_biomarker_labels,
                 ordinal_prob_nl, ordinal_prob_score, ordinal_score_vals, ordinal_biomarker_labels,
                 event_prob_yes, event_prob_no, event_biomarker_labels,
                 N_startpoints, N_S_max, N_iterations_MCMC, output_folder, dataset_name,
                 use_parallel_startpoints, seed=None, **kwargs):
        self.zscore_data = _optional("zscore_data", zscore_data)
        self.z_vals = None if self.zscore_data is None else _matrix("z_vals", z_vals)
        self.max_biomarker_zscore = None if self.zscore_data is None else np.ravel(np.asarray(z_max, float))
        self.ordinal_prob_nl = _optional("ordinal_prob_nl", ordinal_prob_nl)
        self.ordinal_prob_score = _optional("ordinal_prob_score", ordinal_prob_score, 3)
        self.ordinal_score_vals = (None if self.ordinal_prob_nl is None
                                   else _matrix("ordinal_score_vals", ordinal_score_vals))
        self.event_prob_yes = _optional("event_prob_yes", event_prob_yes)
        self.event_prob_no = _optional("event_prob_no", event_prob_no)
        self.zscore_biomarker_labels = [str(b) for b in zscore_biomarker_labels]
        self.event_biomarker_labels = [str(b) for b in event_biomarker_labels]
        self.ordinal_event_biomarker_labels = [str(b) for b in ordinal_biomarker_labels] + self.event_biomarker_labels
        self.biomarker_labels = self.zscore_biomarker_labels + self.ordinal_event_biomarker_labels
        for name, labels, block in [("zscore", self.zscore_biomarker_labels, self.zscore_data),
                                    ("ordinal", ordinal_biomarker_labels, self.ordinal_prob_nl),
                                    ("event", self.event_biomarker_labels, self.event_prob_yes)]:
            n = 0 if block is None else block.shape[1]
            if len(labels) != n:
                raise ValueError(f"{len(labels)} {name} biomarker labels for {n} {name} biomarkers")
        self.prob_nl, self.prob_score, self.score_vals = _combine_ordinal_event_inputs(
            self.ordinal_prob_nl, self.ordinal_prob_score, self.ordinal_score_vals, self.event_prob_yes,
            self.event_prob_no)
        self.mixed_data_vals = self._mixed_values()
        self.num_stages = int(np.count_nonzero(self.mixed_data_vals))
        self.__sustainData = self._data(self.zscore_data, self.prob_nl, self.prob_score)
        super().__init__(self.__sustainData, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                         dataset_name, use_parallel_startpoints, seed, **kwargs)

    def _mixed_values(self):
        """The padded biomarkers x levels matrix of every biomarker's thresholds and
        scores (the reference's ``mixed_data_vals``), which numbers the events."""
        blocks = [b for b in (self.z_vals, self.score_vals) if b is not None and b.size]
        width = max(b.shape[1] for b in blocks)
        return np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in blocks])

    def _data(self, zdata, prob_nl, prob_score):
        n_ord = 0 if self.ordinal_prob_nl is None else self.ordinal_prob_nl.shape[1]
        return MixedTypeSustainData(zdata, prob_nl, prob_score, self.num_stages, z_vals=self.z_vals,
                                    z_max=self.max_biomarker_zscore, score_vals=self.ordinal_score_vals,
                                    n_ordinal=n_ord)

    def subtype_and_stage_individuals_newData(self, zscore_data_new, ordinal_prob_nl_new, ordinal_prob_score_new,
                                              event_prob_yes_new, event_prob_no_new, samples_sequence, samples_f,
                                              N_samples):
        ordinal_prob_nl_new = _optional("ordinal_prob_nl_new", ordinal_prob_nl_new)
        event_prob_yes_new = _optional("event_prob_yes_new", event_prob_yes_new)
        for name, new, old in [("zscore_data_new", zscore_data_new, self.zscore_data),
                               ("ordinal_prob_nl_new", ordinal_prob_nl_new, self.ordinal_prob_nl),
                               ("event_prob_yes_new", event_prob_yes_new, self.event_prob_yes)]:
            if (new is None) != (old is None) or (new is not None and np.shape(new)[1] != old.shape[1]):
                raise ValueError(f"{name} must have the training data's biomarkers "
                                 f"({0 if old is None else old.shape[1]})")
        prob_nl, prob_score, _ = _combine_ordinal_event_inputs(
            ordinal_prob_nl_new, _optional("ordinal_prob_score_new", ordinal_prob_score_new, 3),
            self.ordinal_score_vals, event_prob_yes_new, _optional("event_prob_no_new", event_prob_no_new))
        new = self._data(zscore_data_new, prob_nl, prob_score)
        return self.subtype_and_stage_individuals(new, samples_sequence, samples_f, N_samples)

    def _plot_sustain_model(self, *args, **kwargs):
        return MixedTypeSustain.plot_positional_var(*args, score_vals=self.mixed_data_vals, **kwargs)

    # pySuStaIn's MixedTypeSustain.plot_positional_var is OrdinalSustain's (the
    # mixed matrix as score_vals: z rows, then ordinal and event rows; each event
    # takes its level's colour).
    plot_positional_var = staticmethod(OrdinalSustain.plot_positional_var)

    # The reference's simulators (same signatures, same draws from the same seed).
    generate_random_model = staticmethod(_simulate.generate_random_model)
    generate_data = staticmethod(_simulate.generate_data)
    test_sustain = classmethod(_simulate.test_sustain)
