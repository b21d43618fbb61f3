"""Golden outputs of the reference's z-score, ordinal and mixture simulators
(pySuStaIn ``ZscoreSustain``, ``OrdinalSustain``, ``MixtureSustain``:
``generate_random_model``, ``generate_data``, ``test_sustain``,
``create_mixture_data``), which sustain_rs repeats draw for draw
(tests/test_simulators.py). After each call the next ``np.random.rand()`` is kept
too, so a test also sees that the same number of values was drawn.

``test_sustain`` is run on a subclass whose constructor keeps its arguments: the
arrays it would build the model from. The mixtures of ``create_mixture_data`` are
fitted by kde_ebm's ``fit_all_gmm_models``; what it is given and what it gives
back are kept.

Run from outside a pySuStaIn clone, with a venv holding numpy==1.26.4 scipy pandas
scikit-learn tqdm pathos dill matplotlib, `pip install --no-deps <clone>`, and
kde_ebm's source on PYTHONPATH (its KDE module imports awkde's GaussianKDE, which the GMM
fit does not use: an `awkde.py` holding `GaussianKDE = None` on the path will do):

    V/bin/python record_simulators.py simulators.npz
"""
import os
import sys
import tempfile

import numpy as np
from pySuStaIn.MixtureSustain import MixtureSustain
from pySuStaIn.OrdinalSustain import OrdinalSustain
from pySuStaIn.ZscoreSustain import ZscoreSustain

out = sys.argv[1]
rec = {}


def next_draw(name):
    rec[name + "_next"] = np.array(np.random.rand())


def capture(base):
    """``base`` with a constructor that keeps its positional arguments."""
    class Captured(base):
        def __init__(self, *args, **kwargs):
            self.args = args
    return Captured


# --- z-score: 4 biomarkers, uneven thresholds (8 events), 3 subtypes.
z_vals = np.array([[1, 2, 3], [1, 2, 0], [0.5, 0, 0], [1, 1.5, 0]])
z_max = np.array([5.0, 4.0, 2.0, 3.0])
np.random.seed(7)
seqs = ZscoreSustain.generate_random_model(z_vals, 3)
rec["z_model"] = seqs
next_draw("z_model")
rng = np.random.RandomState(3)
n = 30
rec["z_subtypes"] = rng.randint(0, 3, n)
rec["z_stages"] = rng.randint(0, seqs.shape[1] + 2, (n, 1))
np.random.seed(11)
data, denoised, stage_value = ZscoreSustain.generate_data(rec["z_subtypes"], rec["z_stages"], seqs, z_vals, z_max)
rec["z_data"], rec["z_denoised"], rec["z_stage_value"] = data, denoised, stage_value
next_draw("z_data")
truth = np.random.RandomState(5).randint(0, 2, 40)
rec["truth"] = truth
m = capture(ZscoreSustain).test_sustain(5, 40, 2, truth, {}, seed=42)
rec["z_test_data"], rec["z_test_z_vals"], rec["z_test_z_max"] = m.args
next_draw("z_test")

# --- ordinal: 3 biomarkers, uneven scores, p_correct 0.8.
score_vals = np.array([[1, 2, 3], [1, 2, 0], [1, 0, 0]])
np.random.seed(8)
seqs = OrdinalSustain.generate_random_model(score_vals, 2)
rec["o_model"] = seqs
next_draw("o_model")
n_scores, p = 3, 0.8
p_nl = np.full(n_scores + 1, (1 - p) / n_scores)
p_nl[0] = p
p_score = np.full((n_scores, n_scores + 1), (1 - p) / n_scores)
for s in range(n_scores):
    p_score[s, s + 1] = p
stage_score = score_vals.T.flatten()
keep = np.nonzero(stage_score)[0]
stage_biomarker = np.tile(np.arange(3), (n_scores,))[keep]
stage_score = stage_score[keep]
rng = np.random.RandomState(4)
rec["o_subtypes"] = rng.randint(0, 2, n)
rec["o_stages"] = rng.randint(0, seqs.shape[1] + 1, (n, 1)).astype(float)
rec["o_p_nl"], rec["o_p_score"] = p_nl, p_score
np.random.seed(12)
rec["o_prob_nl"], rec["o_prob_score"] = OrdinalSustain.generate_data(
    n_scores, n, 3, stage_biomarker, p_nl, p_score, rec["o_subtypes"], seqs, rec["o_stages"], stage_score)
next_draw("o_data")
m = capture(OrdinalSustain).test_sustain(4, 40, 2, truth, {}, seed=42)
rec["o_test_prob_nl"], rec["o_test_prob_score"], rec["o_test_score_vals"] = m.args
next_draw("o_test")

# --- mixture: unique orders; orders that cannot all differ (2 biomarkers, 3 subtypes).
np.random.seed(9)
rec["e_model"] = MixtureSustain.generate_random_model(6, 3)
next_draw("e_model")
np.random.seed(10)
rec["e_model_dup"] = MixtureSustain.generate_random_model(2, 3)
next_draw("e_model_dup")
seqs = rec["e_model"]
rng = np.random.RandomState(6)
rec["e_subtypes"] = rng.randint(0, 3, n)
rec["e_stages"] = rng.randint(0, 7, (n, 1))
for style in ["mixture_GMM", "mixture_KDE"]:
    np.random.seed(13)
    d, dd = MixtureSustain.generate_data(rec["e_subtypes"], rec["e_stages"], seqs, style)
    rec[f"e_data_{style}"], rec[f"e_denoised_{style}"] = d, dd
    next_draw(f"e_data_{style}")

import kde_ebm.mixture_model as mm  # noqa: E402 (only the mixture fit needs it)

fitted = mm.fit_all_gmm_models


def fit_and_keep(data, labels):
    rec["e_fit_data"], rec["e_fit_labels"] = data, labels
    return fitted(data, labels)


mm.fit_all_gmm_models = fit_and_keep
with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    m = capture(MixtureSustain).test_sustain(5, 40, 2, truth, {}, seed=42)
    rec["e_test_L_yes"], rec["e_test_L_no"] = m.args
    next_draw("e_test")
    os.chdir("/")
np.savez_compressed(out, **rec)
