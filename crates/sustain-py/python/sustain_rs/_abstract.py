"""pySuStaIn's AbstractSustain on the Rust fit: the same public methods, return
values and pickle files, with the computation in ``sustain_rs._native``."""

import json
import math
import os

import numpy as np

from . import _pickles
from ._progress import progress_callback


class SustainData:
    """A family's data as pySuStaIn's ``AbstractSustainData``: the subjects of a
    model (``native``, a ``sustain_rs._native.Model``) and its number of stages."""

    def __init__(self, native, numStages):
        self.native = native
        self.__numStages = int(numStages)

    def getNumSamples(self):
        return self.native.n_subjects

    def getNumBiomarkers(self):
        return self.native.n_biomarkers

    def getNumStages(self):
        return self.__numStages

    def reindex(self, index):
        rows = [int(i) for i in np.asarray(index).ravel()]
        return type(self)._from_native(self.native.subset(rows), self.__numStages)

    @classmethod
    def _from_native(cls, native, numStages):
        obj = cls.__new__(cls)
        SustainData.__init__(obj, native, numStages)
        return obj


def _whole(name, value, minimum):
    """An integer setting given as int or integral float (pySuStaIn's tutorial
    writes ``int(1e4)``, some scripts ``1e4``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if not float(value).is_integer() or value < minimum:
        raise ValueError(f"{name} is {value!r}: it must be a whole number of at least {minimum}")
    return int(value)


class AbstractSustain:
    """What every SuStaIn model does (pySuStaIn's ``AbstractSustain``)."""

    def __init__(self, sustainData, N_startpoints, N_S_max, N_iterations_MCMC, output_folder,
                 dataset_name, use_parallel_startpoints, seed=None, *, n_chains=4, backend="cpu",
                 threads=None, progress=True, until_converged=False, max_iterations=2_000_000,
                 max_seconds=None, tempering=None):
        if not isinstance(sustainData, SustainData):
            raise ValueError("sustainData must be a sustain_rs SustainData")
        self._sustainData = sustainData
        self.N_startpoints = _whole("N_startpoints", N_startpoints, 1)
        self.N_S_max = _whole("N_S_max", N_S_max, 1)
        self.N_iterations_MCMC = _whole("N_iterations_MCMC", N_iterations_MCMC, 1)
        self.output_folder = os.fspath(output_folder)
        self.dataset_name = str(dataset_name)
        # Results do not depend on the thread count; pySuStaIn's switch only chose
        # between one process and all cores.
        self.use_parallel_startpoints = bool(use_parallel_startpoints)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**32 - 1))
            print(f"sustain_rs: seed not given; using seed={seed} (pass it to reproduce this run)")
        self.seed = _whole("seed", seed, 0)
        self.n_chains = _whole("n_chains", n_chains, 1)
        if self.n_chains > self.N_iterations_MCMC:
            raise ValueError(
                f"n_chains is {self.n_chains} but N_iterations_MCMC is {self.N_iterations_MCMC}: "
                "each chain needs at least one iteration"
            )
        if backend not in ("cpu", "gpu"):
            raise ValueError(f"backend is {backend!r}: it must be 'cpu' or 'gpu'")
        self.backend = backend
        self.threads = None if threads is None else _whole("threads", threads, 1)
        self.progress = bool(progress)
        # Chains in rounds until R-hat < 1.01 and ESS > 400 (or the budget ends);
        # N_iterations_MCMC / n_chains is then the first round's length per chain and
        # the samples returned are all the rounds' (not cut to N_iterations_MCMC).
        self.until_converged = bool(until_converged)
        self._rounds = None
        if self.until_converged:
            budget = _whole("max_iterations", max_iterations, 1)
            if max_seconds is not None and not (float(max_seconds) > 0):
                raise ValueError(f"max_seconds is {max_seconds!r}: it must be positive")
            # Replica exchange: each chain a ladder of `tempering` copies (1: off;
            # None: the library's default on every backend, as the command line's).
            rungs = None if tempering is None else _whole("tempering", tempering, 1)
            if rungs is not None and rungs > 64:
                raise ValueError(f"tempering is {rungs}: at most 64 copies per chain")
            self._rounds = (budget, None if max_seconds is None else float(max_seconds), rungs)
        elif tempering not in (None, 1):
            raise ValueError("tempering (replica exchange) needs until_converged=True")
        self._summaries = {}
        self._fold_summaries = {}

    # ----------------------------------------------------------------- settings
    @property
    def iterations_per_chain(self):
        """Each chain's iterations: the N_iterations_MCMC samples pySuStaIn returns
        are the chains' samples one chain after another, cut to that length."""
        return math.ceil(self.N_iterations_MCMC / self.n_chains)

    def _fingerprint(self, data, seed):
        return data.native.fingerprint(self.biomarker_labels, self.N_startpoints,
                                       self.iterations_per_chain, self.n_chains, seed, self._rounds)

    def _fit(self, data, max_subtypes, seed, checkpoint_dir):
        callback = progress_callback() if self.progress else None
        try:
            return data.native.fit(
                self.biomarker_labels, max_subtypes, self.N_startpoints,
                self.iterations_per_chain, self.n_chains, seed, backend=self.backend,
                threads=self.threads, checkpoint_dir=checkpoint_dir,
                progress=callback, until_converged=self._rounds)
        finally:
            if callback is not None:
                callback.close()

    def _pickle_dir(self):
        path = os.path.join(self.output_folder, "pickle_files")
        os.makedirs(path, exist_ok=True)
        return path

    def _checkpoint_dir(self, tag):
        # The facade's checkpoints, so that an interrupted run resumes.
        return os.path.join(self._pickle_dir(), ".sustain_rs", f"{self.dataset_name}{tag}")

    def _cut(self, fitted):
        """pySuStaIn's sample arrays of one fitted subtype count."""
        n = None if self.until_converged else self.N_iterations_MCMC
        return (fitted["samples_sequence"][:, :, :n], fitted["samples_f"][:, :n],
                fitted["samples_likelihood"][:n], fitted["samples_chain"][:n])

    # ---------------------------------------------------------- public methods
    def run_sustain_algorithm(self, plot=False, plot_format="png", **kwargs):
        """Fits 1..N_S_max subtypes (each pickled; an existing pickle of the same data
        and settings is loaded instead) and returns, for the largest model,
        ``samples_sequence, samples_f, ml_subtype, prob_ml_subtype, ml_stage,
        prob_ml_stage, prob_subtype_stage``."""
        pickle_dir = self._pickle_dir()
        fingerprint = self._fingerprint(self._sustainData, self.seed)
        paths = [_pickles.subtype_path(pickle_dir, self.dataset_name, s) for s in range(self.N_S_max)]
        loaded = {}
        for s, path in enumerate(paths):
            if os.path.exists(path):
                loaded[s] = _pickles.load_checked(path, fingerprint)
        missing = [s for s in range(self.N_S_max) if s not in loaded]
        fitted = {}
        if missing:
            models = self._fit(self._sustainData, max(missing) + 1, self.seed, self._checkpoint_dir(""))
            fitted = {s: models[s] for s in missing}
        if plot:
            import matplotlib.pyplot as plt
            fig0, ax0 = plt.subplots()
        for s in range(self.N_S_max):
            if s in loaded:
                print(f"Found pickle file: {paths[s]}. Using pickled variables for {s} subtype.")
                v = loaded[s]
                self._summaries[s + 1] = v[_pickles.META_KEY].get("summary")
            else:
                print(f"Failed to find pickle file: {paths[s]}. Running SuStaIn model for {s} subtype.")
                f = fitted[s]
                samples_sequence, samples_f, samples_likelihood, samples_chain = self._cut(f)
                staged = self.subtype_and_stage_individuals(self._sustainData, samples_sequence, samples_f, 1000)
                v = {"samples_sequence": samples_sequence, "samples_f": samples_f,
                     "samples_likelihood": samples_likelihood}
                for key, value in zip(("ml_subtype", "prob_ml_subtype", "ml_stage", "prob_ml_stage",
                                       "prob_subtype", "prob_stage", "prob_subtype_stage"), staged):
                    v[key] = value
                # As pySuStaIn: "prev" is set to this count's E-M optimum before saving.
                v.update(ml_sequence_EM=f["ml_sequence_EM"], ml_sequence_prev_EM=f["ml_sequence_EM"],
                         ml_f_EM=f["ml_f_EM"], ml_f_prev_EM=f["ml_f_EM"])
                summary = json.loads(f["summary"])
                summary["samples_chain"] = samples_chain.tolist()
                self._summaries[s + 1] = summary
                # The summary travels in the pickle too (diagnostics after a reload).
                _pickles.save_new(paths[s], v, {"fingerprint": fingerprint, "summary": summary})
            self._plot_subtype_order = np.argsort(v["ml_f_EM"])[::-1]
            self._plot_biomarker_order = v["ml_sequence_EM"][self._plot_subtype_order[0], :].astype(int)
            if plot:
                figs, _ = self._plot_sustain_model(
                    samples_sequence=v["samples_sequence"], samples_f=v["samples_f"],
                    n_samples=self._sustainData.getNumSamples(), biomarker_labels=self.biomarker_labels,
                    subtype_order=self._plot_subtype_order, biomarker_order=self._plot_biomarker_order,
                    save_path=os.path.join(self.output_folder, f"{self.dataset_name}_subtype{s}_PVD.{plot_format}"),
                    **kwargs)
                ax0.plot(range(len(v["samples_likelihood"])), v["samples_likelihood"], label=f"Subtype {s + 1}")
        if plot:
            ax0.legend(loc="upper right")
            fig0.tight_layout()
            fig0.savefig(os.path.join(self.output_folder, f"MCMC_likelihoods.{plot_format}"), bbox_inches="tight")
        return (v["samples_sequence"], v["samples_f"], v["ml_subtype"], v["prob_ml_subtype"],
                v["ml_stage"], v["prob_ml_stage"], v["prob_subtype_stage"])

    def cross_validate_sustain_model(self, test_idxs, select_fold=[], plot=False):  # noqa: B006 (pySuStaIn's signature)
        """Fits each fold's training subjects and evaluates its test subjects; returns
        ``(CVIC, loglike_matrix)`` once every fold is done (``([], [])`` while only
        some were asked for with ``select_fold``)."""
        pickle_dir = self._pickle_dir()
        n_folds_all = len(test_idxs)
        if select_fold != [] and select_fold is not None:
            select_fold = [select_fold] if np.isscalar(select_fold) else list(select_fold)
        else:
            select_fold = list(range(n_folds_all))
        for fold in select_fold:
            if not (0 <= int(fold) < n_folds_all):
                raise ValueError(f"select_fold has fold {fold}, but test_idxs has {n_folds_all} folds")
        n_folds = len(select_fold)
        is_full = n_folds == n_folds_all
        loglike_matrix = np.zeros((n_folds, self.N_S_max))
        n_all = self._sustainData.getNumSamples()
        for fold in select_fold:
            test = np.asarray(test_idxs[fold]).astype(int).ravel()
            if test.size == 0 or test.min() < 0 or test.max() >= n_all:
                raise ValueError(f"test_idxs[{fold}] must hold subject rows in 0..{n_all - 1}")
            test_set = set(test.tolist())
            train = np.array([x for x in range(n_all) if x not in test_set])
            data_train = self._sustainData.reindex(train)
            data_test = self._sustainData.reindex(test)
            seed = (self.seed + 1000 * (fold + 1)) % 2**64
            fingerprint = self._fingerprint(data_train, seed)
            paths = [_pickles.fold_path(pickle_dir, self.dataset_name, fold, s) for s in range(self.N_S_max)]
            loaded = {s: _pickles.load_checked(p, fingerprint) for s, p in enumerate(paths) if os.path.exists(p)}
            missing = [s for s in range(self.N_S_max) if s not in loaded]
            fitted = {}
            if missing:
                models = self._fit(data_train, max(missing) + 1, seed, self._checkpoint_dir(f"_fold{fold}"))
                fitted = {s: models[s] for s in missing}
            for s in range(self.N_S_max):
                if s in loaded:
                    print(f"Loading {paths[s]}")
                    v = loaded[s]
                    samples_sequence, samples_f = v["samples_sequence"], v["samples_f"]
                else:
                    f = fitted[s]
                    samples_sequence, samples_f, samples_likelihood, _ = self._cut(f)
                    v = {"ml_sequence_EM": f["ml_sequence_EM"], "ml_sequence_prev_EM": f["ml_sequence_EM"],
                         "ml_f_EM": f["ml_f_EM"], "ml_f_prev_EM": f["ml_f_EM"],
                         "samples_sequence": samples_sequence, "samples_f": samples_f,
                         "samples_likelihood": samples_likelihood}
                log_p = self._log_likelihood_setofsamples(data_test, samples_sequence, samples_f)
                if s not in loaded:
                    v["mean_likelihood_subj_test"] = np.mean(np.exp(log_p), axis=1)
                    _pickles.save_new(paths[s], v, {
                        "fingerprint": fingerprint,
                        "log_mean_likelihood_subj_test": _log_mean_exp(log_p).tolist()})
                if is_full:
                    # pySuStaIn's mean over samples of sum(log(p + 1e-250)), without underflow.
                    loglike_matrix[fold, s] = np.mean(np.sum(np.logaddexp(log_p, np.log(1e-250)), axis=0))
        if not is_full:
            print("Cannot calculate CVIC and loglike_matrix without all folds. "
                  "Rerun cross_validate_sustain_model after all folds calculated.")
            return [], []
        print(f"Average test set log-likelihood for each subtype model: {np.mean(loglike_matrix, 0)}")
        if plot:
            self._plot_cv_loglikes(loglike_matrix)
        CVIC = np.zeros(self.N_S_max)
        for s in range(self.N_S_max):
            logs = []
            for fold in range(n_folds):
                v = _pickles.load_pickle(_pickles.fold_path(pickle_dir, self.dataset_name, fold, s))
                meta = v.get(_pickles.META_KEY, {})
                if "log_mean_likelihood_subj_test" in meta:
                    logs.append(np.asarray(meta["log_mean_likelihood_subj_test"]))
                else:
                    logs.append(np.log(v["mean_likelihood_subj_test"]))
            CVIC[s] = -2 * np.sum(np.concatenate(logs))
        print("CVIC for each subtype model: " + str(CVIC))
        return CVIC, loglike_matrix

    def combine_cross_validated_sequences(self, N_subtypes, N_folds, plot_format="png", **kwargs):
        """Cross-validated positional variance diagrams: the folds' samples of the
        ``N_subtypes`` model, each fold's subtypes matched to the full model's by
        Kendall's tau (as pySuStaIn), plotted and saved as pySuStaIn names them."""
        pickle_dir = os.path.join(self.output_folder, "pickle_files")
        full_path = _pickles.subtype_path(pickle_dir, self.dataset_name, N_subtypes - 1)
        if not os.path.exists(full_path):
            raise ValueError(f"Failed to find pickle file for full model with {N_subtypes} subtypes: {full_path}")
        full = _pickles.load_pickle(full_path)
        seq_full, f_full = full["ml_sequence_EM"], full["ml_f_EM"]
        seqs, fs = [], []
        for i in range(N_folds):
            path = _pickles.fold_path(pickle_dir, self.dataset_name, i, N_subtypes - 1)
            if not os.path.exists(path):
                raise ValueError(f"Failed to find pickle file for fold {i}: {path}")
            v = _pickles.load_pickle(path)
            order = match_subtypes(seq_full, v["ml_sequence_EM"])
            seqs.append(v["samples_sequence"][order, :, :])
            fs.append(v["samples_f"][order, :])
        samples_sequence_cval = np.concatenate(seqs, axis=2)
        samples_f_cval = np.concatenate(fs, axis=1)
        plot_subtype_order = np.argsort(f_full)[::-1]
        plot_biomarker_order = seq_full[plot_subtype_order[0], :].astype(int)
        figs, _ = self._plot_sustain_model(
            samples_sequence=samples_sequence_cval, samples_f=samples_f_cval,
            n_samples=self._sustainData.getNumSamples(), cval=True, biomarker_labels=self.biomarker_labels,
            subtype_order=plot_subtype_order, biomarker_order=plot_biomarker_order, **kwargs)
        if "save_path" not in kwargs:
            if len(figs) > 1:
                for num_subtype, fig in zip(range(N_subtypes), figs):
                    fig.savefig(os.path.join(
                        self.output_folder,
                        f"{self.dataset_name}_subtype{N_subtypes - 1}_subtype{num_subtype}-separated_PVD_{N_folds}fold_CV.{plot_format}"),
                        bbox_inches="tight")
            else:
                figs[0].savefig(os.path.join(
                    self.output_folder, f"{self.dataset_name}_subtype{N_subtypes - 1}_PVD_{N_folds}fold_CV.{plot_format}"),
                    bbox_inches="tight")
        return figs

    def subtype_and_stage_individuals(self, sustainData, samples_sequence, samples_f, N_samples):
        """pySuStaIn's staging: ``ml_subtype, prob_ml_subtype, ml_stage,
        prob_ml_stage, prob_subtype, prob_stage, prob_subtype_stage`` of the subjects
        of ``sustainData``, from ``N_samples`` evenly spaced samples."""
        samples_sequence = np.asarray(samples_sequence)
        samples_f = np.asarray(samples_f)
        if samples_sequence.ndim != 3 or samples_f.ndim != 2:
            raise ValueError("samples_sequence must be subtypes x events x samples and samples_f subtypes x samples")
        n_iter = samples_sequence.shape[2]
        N_samples = _whole("N_samples", N_samples, 1)
        select = np.round(np.linspace(0, n_iter - 1, N_samples)).astype(int)
        ix = np.argsort(np.mean(samples_f, axis=1))[::-1]
        seqs = _as_events(samples_sequence[ix][:, :, select].transpose(2, 0, 1))
        fracs = np.ascontiguousarray(samples_f[ix][:, select].T, dtype=np.float64)
        # The joint posterior gives prob_subtype and prob_stage; pySuStaIn's
        # prob_subtype_stage normalises each sample's stage likelihoods over stages
        # and subtypes without the fractions (the posterior under equal fractions).
        # Both come from one pass over the samples.
        joint, prob_subtype_stage = sustainData.native.staging(seqs, fracs)
        n_stages = sustainData.getNumStages()
        if joint.shape[1] != n_stages + 1:
            raise ValueError(f"the samples have {joint.shape[1] - 1} events, the data {n_stages}")
        prob_subtype = joint.sum(axis=1)
        prob_stage = joint.sum(axis=2)
        m = prob_subtype.shape[0]
        ml_subtype = np.full((m, 1), np.nan)
        prob_ml_subtype = np.full((m, 1), np.nan)
        ml_stage = np.full((m, 1), np.nan)
        prob_ml_stage = np.full((m, 1), np.nan)
        ok = ~np.isnan(prob_subtype).any(axis=1)
        best = np.argmax(np.nan_to_num(prob_subtype, nan=-1.0), axis=1)
        ml_subtype[ok, 0] = best[ok]
        prob_ml_subtype[ok, 0] = prob_subtype[ok, best[ok]]
        stage_probs = prob_subtype_stage[np.arange(m), :, best]
        ok_stage = ok & ~np.isnan(stage_probs).any(axis=1)
        best_stage = np.argmax(np.nan_to_num(stage_probs, nan=-1.0), axis=1)
        ml_stage[ok_stage, 0] = best_stage[ok_stage]
        prob_ml_stage[ok_stage, 0] = stage_probs[ok_stage, best_stage[ok_stage]]
        return ml_subtype, prob_ml_subtype, ml_stage, prob_ml_stage, prob_subtype, prob_stage, prob_subtype_stage

    # ---------------------------------------------------------- beyond pySuStaIn
    def diagnostics(self, n_subtypes):
        """Convergence of the ``n_subtypes`` model: the verdict, rank-normalised
        R-hat and bulk/tail ESS of the log-likelihood, fractions and event positions
        (as a dict; ``summary`` adds the maximum-likelihood model and timings)."""
        summary = self._summary(n_subtypes)
        d = dict(summary["diagnostics"])
        d["summary"] = {k: v for k, v in summary.items() if k not in ("diagnostics", "samples_chain")}
        return d

    def to_inference_data(self, n_subtypes):
        """The ``n_subtypes`` model's samples as ArviZ ``InferenceData``: posterior
        ``f`` (chain, draw, subtype), ``event_position`` (chain, draw, subtype,
        event) and ``log_likelihood_total`` (chain, draw)."""
        try:
            import arviz
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_inference_data needs arviz: pip install arviz") from e
        summary = self._summary(n_subtypes)
        path = _pickles.subtype_path(os.path.join(self.output_folder, "pickle_files"),
                                     self.dataset_name, n_subtypes - 1)
        v = _pickles.load_pickle(path)
        chain = np.asarray(summary["samples_chain"])
        chains = sorted(set(chain.tolist()))
        draws = min(int(np.sum(chain == c)) for c in chains)
        seq, f, ll = v["samples_sequence"], v["samples_f"], v["samples_likelihood"][:, 0]
        pos = np.argsort(seq, axis=1)  # event -> position
        pick = [np.flatnonzero(chain == c)[:draws] for c in chains]
        posterior = {
            "f": np.stack([f[:, p].T for p in pick]),
            "event_position": np.stack([pos[:, :, p].transpose(2, 0, 1) for p in pick]),
            "log_likelihood_total": np.stack([ll[p] for p in pick]),
        }
        return arviz.from_dict(posterior=posterior, dims={"f": ["subtype"], "event_position": ["subtype", "event"]})

    # ------------------------------------------------------------------ helpers
    def _summary(self, n_subtypes):
        n_subtypes = _whole("n_subtypes", n_subtypes, 1)
        if n_subtypes in self._summaries and self._summaries[n_subtypes]:
            return self._summaries[n_subtypes]
        path = _pickles.subtype_path(os.path.join(self.output_folder, "pickle_files"),
                                     self.dataset_name, n_subtypes - 1)
        if os.path.exists(path):
            meta = _pickles.load_pickle(path).get(_pickles.META_KEY, {})
            if meta.get("summary"):
                return meta["summary"]
        raise ValueError(f"no fit of {n_subtypes} subtypes yet: run run_sustain_algorithm first")

    def _log_likelihood_setofsamples(self, sustainData, samples_sequence, samples_f):
        """log of pySuStaIn's ``_evaluate_likelihood_setofsamples``: subjects x
        samples, with its thinning of long runs."""
        n_total = samples_sequence.shape[2]
        if n_total >= 1e6:
            n = int(np.round(n_total / 1000))
        elif n_total >= 1e5:
            n = int(np.round(n_total / 100))
        else:
            n = n_total
        select = np.round(np.linspace(0, n_total - 1, n)).astype(int)
        seqs = _as_events(samples_sequence[:, :, select].transpose(2, 0, 1))
        fracs = np.ascontiguousarray(samples_f[:, select].T, dtype=np.float64)
        return sustainData.native.log_p_subjects(seqs, fracs).T

    def _evaluate_likelihood_setofsamples(self, sustainData, samples_sequence, samples_f):
        return np.exp(self._log_likelihood_setofsamples(sustainData, samples_sequence, samples_f))

    def _plot_cv_loglikes(self, loglike_matrix):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.boxplot([loglike_matrix[:, i] for i in range(loglike_matrix.shape[1])])
        ax.set_xticks(range(1, loglike_matrix.shape[1] + 1),
                      [f"Subtype {i + 1}" for i in range(loglike_matrix.shape[1])])
        ax.set_ylabel("Test-set log-likelihood")
        fig.savefig(os.path.join(self.output_folder, "Log_likelihoods_cv_folds.png"))


def _as_events(x):
    """Sequences as int64 event indices (pySuStaIn stores them as floats)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
            raise ValueError("samples_sequence must hold whole event indices")
    return np.ascontiguousarray(x, dtype=np.int64)


def _log_mean_exp(log_p):
    mx = np.max(log_p, axis=1, keepdims=True)
    return (mx + np.log(np.mean(np.exp(log_p - mx), axis=1, keepdims=True)))[:, 0]


def kendall_tau(a, b):
    """Kendall's tau-a of two rankings without ties (as scipy for permutations)."""
    a, b = np.asarray(a), np.asarray(b)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    n = len(a)
    return float(np.sum(da * db) / (n * (n - 1))) if n > 1 else 1.0


def match_subtypes(seq_full, seq_fold):
    """pySuStaIn's matching of a fold's subtypes to the full model's: pairs taken in
    decreasing Kendall's tau of their sequences; the fold's subtype for each full one."""
    k = seq_full.shape[0]
    corr = np.array([[kendall_tau(np.argsort(seq_full[j]), np.argsort(seq_fold[i])) for i in range(k)]
                     for j in range(k)])
    set_full, set_fold = [], []
    rows, cols = np.unravel_index(np.argsort(corr.flatten(), kind="stable")[::-1], (k, k))
    for r, c in zip(rows, cols):
        if r not in set_full and c not in set_fold:
            set_full.append(int(r))
            set_fold.append(int(c))
    return [set_fold[i] for i in np.argsort(set_full)]
