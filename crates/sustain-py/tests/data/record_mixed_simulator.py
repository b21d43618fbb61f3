"""Golden outputs of the reference's mixed-type simulators (pySuStaIn
`MixedTypeSustain.generate_random_model`, `generate_data` and `test_sustain`),
which sustain_rs.MixedTypeSustain repeats draw for draw (tests/test_mixed.py).

Run from outside a pySuStaIn clone, with a venv holding numpy==1.26.4 scipy pandas
scikit-learn tqdm pathos dill matplotlib and `pip install --no-deps <clone>`:

    V/bin/python record_mixed_simulator.py mixed_simulator.npz
"""
import sys
import tempfile

import numpy as np
from pySuStaIn.MixedTypeSustain import MixedTypeSustain

out = sys.argv[1]
rec = {}

# Uneven blocks: 2 z-scored biomarkers (2 thresholds, one with a zero), 2
# ordinal ones (3 scores, one with 2), 2 events: 11 events.
z_vals = np.array([[1, 2], [1, 0]])
z_max = np.array([5.0, 4.0])
ordinal_scores = np.array([[1, 2, 3], [1, 2, 0]])
n_event = 2
seqs = MixedTypeSustain.generate_random_model(z_vals, ordinal_scores, n_event, 2, seed=7)
rec["model_sequences"] = seqs
rng = np.random.default_rng(3)
n = 30
subtypes = rng.integers(0, 2, n)
stages = rng.integers(0, seqs.shape[1] + 1, n)
rec["subtypes"], rec["stages"] = subtypes, stages
out_data = MixedTypeSustain.generate_data(subtypes, stages, seqs, z_vals, z_max, ordinal_scores, n_event,
                                          prob_correct_ordinal=0.8, mixture_style="mixture_GMM", seed=11)
for name, value in zip(["zscore_data", "ordinal_data", "event_data", "ordinal_prob_nl", "ordinal_prob_score",
                        "event_prob_yes", "event_prob_no"], out_data):
    rec["data_" + name] = value

# test_sustain: 7 biomarkers (3 z-scored, 2 ordinal, 2 event), 40 subjects.
truth = np.random.default_rng(5).integers(0, 2, 40)
rec["test_truth"] = truth
with tempfile.TemporaryDirectory() as tmp:
    kwargs = dict(N_startpoints=2, N_S_max=2, N_iterations_MCMC=100, output_folder=tmp, dataset_name="t",
                  use_parallel_startpoints=False)
    m = MixedTypeSustain.test_sustain(7, 40, 2, truth, kwargs, seed=42)
for name in ["zscore_data", "z_vals", "ordinal_prob_nl", "ordinal_prob_score", "ordinal_score_vals",
             "event_prob_yes", "event_prob_no", "biomarker_labels"]:
    rec["test_" + name] = np.asarray(getattr(m, name))
rec["test_z_max"] = np.ravel(m.max_biomarker_zscore)
np.savez(out, **rec)
