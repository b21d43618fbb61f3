//! `Model`: a SuStaIn model of one family on its subjects.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArray2, PyArray3, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use sustain::checkpoint;
use sustain::config::{default_proposal, FitConfig};
use sustain::fit::{prefix_input, FitInput};
use sustain_core::{BatchEvaluator, StageModel};
use sustain_cpu::ThreadedEvaluator;
use sustain_model::{
    event_based, ordinal, Dataset, EventSet, Likelihood, MissingConvention, MixedModel, PrefixModel,
};

use crate::convert::{mixtures_of, model_dict, rows, value_err};
use crate::run::{run_fit, FitRequest};

/// The family-specific part of a model.
#[derive(Clone)]
pub(crate) enum Family {
    /// The z-score model: its likelihood on the data (which holds the events, the
    /// data and the missing-value convention), built once.
    Zscore(Arc<Likelihood>),
    /// The event-based (mixture) and ordinal models.
    Prefix(Arc<PrefixModel>),
    /// The mixed-type model (z-scored, ordinal and event biomarkers).
    Mixed(Arc<MixedModel>),
}

/// Two arrays of one shape returned together.
type ArrayPair<'py> = (Bound<'py, PyArray3<f64>>, Bound<'py, PyArray3<f64>>);

/// A model as its own type: [`on_model!`] runs generic code on either.
enum Typed {
    Zscore(Arc<Likelihood>),
    Prefix(Arc<PrefixModel>),
    Mixed(Arc<MixedModel>),
}

/// `on_model!(model, m => expr)`: `expr` with `m` the model's `Arc` of its own type.
macro_rules! on_model {
    ($model:expr, $m:ident => $body:expr) => {
        match $model.typed()? {
            Typed::Zscore($m) => $body,
            Typed::Prefix($m) => $body,
            Typed::Mixed($m) => $body,
        }
    };
}

/// A SuStaIn model on its subjects: z-score (`Model.zscore`), event-based
/// (`Model.mixture`) or ordinal (`Model.ordinal`).
#[pyclass(module = "sustain_rs._native", frozen)]
pub struct Model {
    pub(crate) family: Family,
}

impl Model {
    /// The z-score likelihood of the data (built on demand: evaluations only).
    fn zscore_likelihood(
        events: &EventSet,
        data: &Dataset,
        missing: MissingConvention,
    ) -> PyResult<Arc<Likelihood>> {
        Ok(Arc::new(
            Likelihood::new(events.clone(), data, missing).map_err(value_err)?,
        ))
    }

    /// The model as its own type, for [`on_model!`].
    fn typed(&self) -> PyResult<Typed> {
        Ok(match &self.family {
            Family::Zscore(lik) => Typed::Zscore(Arc::clone(lik)),
            Family::Prefix(model) => Typed::Prefix(Arc::clone(model)),
            Family::Mixed(model) => Typed::Mixed(Arc::clone(model)),
        })
    }

    fn order(&self) -> &sustain_core::EventOrder {
        match &self.family {
            Family::Zscore(lik) => lik.events(),
            Family::Prefix(model) => model.order(),
            Family::Mixed(model) => model.order(),
        }
    }
}

#[pymethods]
impl Model {
    /// The z-score model: `data` (subjects x biomarkers; NaN = missing), `z_vals`
    /// (biomarkers x thresholds, 0 = no event), `z_max` (one per biomarker).
    /// `missing="reference"` gives missing values pySuStaIn's constant (its
    /// `ZscoreSustainMissingData`), `"marginalise"` nothing.
    #[staticmethod]
    #[pyo3(signature = (data, z_vals, z_max, missing = "reference"))]
    fn zscore(
        data: PyReadonlyArray2<f64>,
        z_vals: PyReadonlyArray2<f64>,
        z_max: Vec<f64>,
        missing: &str,
    ) -> PyResult<Self> {
        let events = EventSet::new(&rows(z_vals.as_array()), &z_max).map_err(value_err)?;
        let data = Dataset::new(data.as_array().to_owned()).map_err(value_err)?;
        if data.n_biomarkers() != events.n_biomarkers() {
            return Err(PyValueError::new_err(format!(
                "data has {} biomarkers (columns) but Z_vals has {} rows",
                data.n_biomarkers(),
                events.n_biomarkers()
            )));
        }
        let missing = missing
            .parse::<MissingConvention>()
            .map_err(PyValueError::new_err)?;
        // Checks the data against the model once, here, not at the first fit.
        Ok(Self {
            family: Family::Zscore(Self::zscore_likelihood(&events, &data, missing)?),
        })
    }

    /// The event-based model from pySuStaIn's `L_yes` and `L_no` (subjects x
    /// biomarkers).
    #[staticmethod]
    fn mixture(l_yes: PyReadonlyArray2<f64>, l_no: PyReadonlyArray2<f64>) -> PyResult<Self> {
        let model = event_based(l_yes.as_array(), l_no.as_array()).map_err(value_err)?;
        Ok(Self {
            family: Family::Prefix(Arc::new(model)),
        })
    }

    /// The ordinal model from pySuStaIn's `prob_nl` (subjects x biomarkers),
    /// `prob_score` (subjects x biomarkers x scores) and `score_vals` (biomarkers x
    /// scores, 0 = none).
    #[staticmethod]
    fn ordinal(
        prob_nl: PyReadonlyArray2<f64>,
        prob_score: PyReadonlyArray3<f64>,
        score_vals: PyReadonlyArray2<f64>,
    ) -> PyResult<Self> {
        let score_vals = rows(score_vals.as_array());
        let p = prob_score.as_array();
        let tables: Vec<ndarray::Array2<f64>> = (0..p.dim().2)
            .map(|j| p.slice(ndarray::s![.., .., j]).to_owned())
            .collect();
        let views: Vec<_> = tables.iter().map(|t| t.view()).collect();
        let model = ordinal(&score_vals, prob_nl.as_array(), &views).map_err(value_err)?;
        Ok(Self {
            family: Family::Prefix(Arc::new(model)),
        })
    }

    /// The mixed-type model (pySuStaIn `MixedTypeSustain`) from its parts, each
    /// optional: z-scores (subjects x biomarkers) with `z_vals` and `z_max`; ordinal
    /// `prob_nl`, `prob_score` (subjects x biomarkers x scores) and `score_vals`;
    /// event `prob_yes` and `prob_no` (subjects x biomarkers).
    #[staticmethod]
    #[pyo3(signature = (zdata, z_vals, z_max, prob_nl, prob_score, score_vals, prob_yes, prob_no))]
    #[allow(clippy::too_many_arguments)]
    fn mixed(
        zdata: Option<PyReadonlyArray2<f64>>,
        z_vals: Option<PyReadonlyArray2<f64>>,
        z_max: Option<Vec<f64>>,
        prob_nl: Option<PyReadonlyArray2<f64>>,
        prob_score: Option<PyReadonlyArray3<f64>>,
        score_vals: Option<PyReadonlyArray2<f64>>,
        prob_yes: Option<PyReadonlyArray2<f64>>,
        prob_no: Option<PyReadonlyArray2<f64>>,
    ) -> PyResult<Self> {
        let model = crate::mixed::mixed_model(crate::mixed::Parts {
            zdata: zdata.as_ref().map(|a| a.as_array()),
            z_vals: z_vals.as_ref().map(|a| rows(a.as_array())),
            z_max,
            prob_nl: prob_nl.as_ref().map(|a| a.as_array()),
            prob_score: prob_score.as_ref().map(|a| a.as_array()),
            score_vals: score_vals.as_ref().map(|a| rows(a.as_array())),
            prob_yes: prob_yes.as_ref().map(|a| a.as_array()),
            prob_no: prob_no.as_ref().map(|a| a.as_array()),
        })?;
        Ok(Self {
            family: Family::Mixed(Arc::new(model)),
        })
    }

    /// Number of subjects.
    #[getter]
    fn n_subjects(&self) -> usize {
        match &self.family {
            Family::Zscore(lik) => lik.data().n_subjects(),
            Family::Prefix(model) => model.n_subjects(),
            Family::Mixed(model) => model.n_subjects(),
        }
    }

    /// Number of events (stages are 0..=events).
    #[getter]
    fn n_events(&self) -> usize {
        self.order().n_events()
    }

    /// Number of biomarkers.
    #[getter]
    fn n_biomarkers(&self) -> usize {
        self.order().n_biomarkers()
    }

    /// Each event's biomarker (index).
    #[getter]
    fn event_biomarkers(&self) -> Vec<usize> {
        let order = self.order();
        (0..order.n_events())
            .map(|e| order.biomarker_of(e))
            .collect()
    }

    /// Each event's level within its biomarker (0 = first threshold or score).
    #[getter]
    fn event_levels(&self) -> Vec<usize> {
        let order = self.order();
        (0..order.n_events()).map(|e| order.level_of(e)).collect()
    }

    /// The same model on the subjects `rows` (in that order).
    fn subset(&self, rows: Vec<usize>) -> PyResult<Self> {
        let family = match &self.family {
            Family::Zscore(lik) => Family::Zscore(Arc::new(
                StageModel::subset(&**lik, &rows).map_err(value_err)?,
            )),
            Family::Prefix(model) => {
                Family::Prefix(Arc::new(model.subset(&rows).map_err(value_err)?))
            }
            Family::Mixed(model) => {
                Family::Mixed(Arc::new(model.subset(&rows).map_err(value_err)?))
            }
        };
        Ok(Self { family })
    }

    /// Hex fingerprint of the data, the model and the settings that change results:
    /// what pickles record so that one from other data or settings is refused.
    #[pyo3(signature = (biomarkers, n_startpoints, n_iterations, n_chains, seed, until_converged = None))]
    fn fingerprint(
        &self,
        biomarkers: Vec<String>,
        n_startpoints: usize,
        n_iterations: usize,
        n_chains: usize,
        seed: u64,
        until_converged: Option<(usize, Option<f64>, Option<usize>)>,
    ) -> PyResult<String> {
        let config = FitConfig {
            n_startpoints,
            n_iterations,
            n_chains,
            seed,
            // A subtype count's model does not depend on the largest count asked for.
            max_subtypes: 1,
            proposal: default_proposal(until_converged.is_some()),
            until_converged: rounds(until_converged),
            ..FitConfig::default()
        };
        Ok(checkpoint::fingerprint_of(
            &self.identity(&biomarkers)?,
            &config,
        ))
    }

    /// Fits 1..=`max_subtypes` subtypes (E-M, tuning, chains) and returns one dict
    /// per subtype count (see `model_dict`). `progress(kind, n_subtypes, done,
    /// total)` is called about ten times a second from this thread; Ctrl-C stops
    /// the fit within about a second (`KeyboardInterrupt`).
    /// `until_converged=(max_iterations, max_seconds, tempering_rungs)` runs the chains in rounds
    /// until they converge (`n_iterations` is then the first round's length).
    #[pyo3(signature = (biomarkers, max_subtypes, n_startpoints, n_iterations, n_chains, seed,
        backend = "cpu", threads = None, checkpoint_dir = None, progress = None,
        until_converged = None))]
    #[allow(clippy::too_many_arguments)]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        biomarkers: Vec<String>,
        max_subtypes: usize,
        n_startpoints: usize,
        n_iterations: usize,
        n_chains: usize,
        seed: u64,
        backend: &str,
        threads: Option<usize>,
        checkpoint_dir: Option<String>,
        progress: Option<Py<PyAny>>,
        until_converged: Option<(usize, Option<f64>, Option<usize>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let backend = backend
            .parse::<sustain::config::Backend>()
            .map_err(PyValueError::new_err)?;
        let mut config = FitConfig {
            n_startpoints,
            max_subtypes,
            n_iterations,
            n_chains,
            seed,
            backend,
            proposal: default_proposal(until_converged.is_some()),
            until_converged: rounds(until_converged),
            ..FitConfig::default()
        };
        if let Some(t) = threads {
            config.threads = t.max(1);
        }
        if let Family::Zscore(lik) = &self.family {
            config.missing = lik.convention();
        }
        config.validate().map_err(PyValueError::new_err)?;
        let request = FitRequest {
            model: self,
            biomarkers: &biomarkers,
            config: &config,
            checkpoint_dir: checkpoint_dir.as_deref(),
        };
        let (result, warnings) = run_fit(py, &request, progress.as_ref())?;
        for w in warnings {
            let warnings = py.import("warnings")?;
            warnings.call_method1("warn", (w,))?;
        }
        let list = PyList::empty(py);
        for model in &result.models {
            list.append(model_dict(py, model)?)?;
        }
        Ok(list)
    }

    /// pySuStaIn's subtype and stage posteriors averaged over samples:
    /// `sequences[i][s][k]` (the event at position `k` of subtype `s` in sample
    /// `i`) and `fractions[i][s]`; returns subjects x (events + 1) x subtypes, each
    /// sample's joint posterior normalised per subject before averaging.
    fn posterior<'py>(
        &self,
        py: Python<'py>,
        sequences: PyReadonlyArray3<i64>,
        fractions: PyReadonlyArray2<f64>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let mixtures = mixtures_of(self.order(), sequences.as_array(), fractions.as_array())?;
        let n = mixtures.len().max(1) as f64;
        let threads = sustain_cpu::default_threads();
        let sums = py.detach(|| -> PyResult<_> {
            on_model!(self, m => ThreadedEvaluator::new(m, threads)
                .posterior_sums(&mixtures)
                .map_err(value_err))
        })?;
        Ok((sums / n).into_pyarray(py))
    }

    /// pySuStaIn's two staging posteriors in one pass (same arguments as
    /// `posterior`): `posterior(sequences, fractions)` and the same under equal
    /// fractions (pySuStaIn's `prob_subtype_stage`). The z-score model computes
    /// each distinct sequence's stage values once for both.
    fn staging<'py>(
        &self,
        py: Python<'py>,
        sequences: PyReadonlyArray3<i64>,
        fractions: PyReadonlyArray2<f64>,
    ) -> PyResult<ArrayPair<'py>> {
        let mixtures = mixtures_of(self.order(), sequences.as_array(), fractions.as_array())?;
        let threads = sustain_cpu::default_threads();
        let n = mixtures.len().max(1) as f64;
        let (joint, equal) = py.detach(|| -> PyResult<_> {
            match self.typed()? {
                Typed::Zscore(lik) => Ok(crate::staging::pair(&lik, &mixtures, threads)),
                Typed::Prefix(m) => equal_pair(m, &mixtures, threads),
                Typed::Mixed(m) => equal_pair(m, &mixtures, threads),
            }
        })?;
        Ok(((joint / n).into_pyarray(py), (equal / n).into_pyarray(py)))
    }

    /// Per sample and subject, `log p(x_m | sample)`: samples x subjects.
    fn log_p_subjects<'py>(
        &self,
        py: Python<'py>,
        sequences: PyReadonlyArray3<i64>,
        fractions: PyReadonlyArray2<f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let mixtures = mixtures_of(self.order(), sequences.as_array(), fractions.as_array())?;
        let threads = sustain_cpu::default_threads();
        let per = py.detach(|| -> PyResult<_> {
            on_model!(self, m => ThreadedEvaluator::new(m, threads)
                .log_p_subjects_batch(&mixtures)
                .map_err(value_err))
        })?;
        let m = self.n_subjects();
        let mut out = ndarray::Array2::<f64>::zeros((per.len(), m));
        for (i, row) in per.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                out[[i, j]] = *v;
            }
        }
        Ok(out.into_pyarray(py))
    }
}

/// The posterior sums of `mixtures` and of the same under equal fractions.
fn equal_pair<M: sustain_core::SustainModel>(
    m: Arc<M>,
    mixtures: &[sustain_core::Mixture],
    threads: usize,
) -> PyResult<(ndarray::Array3<f64>, ndarray::Array3<f64>)> {
    let k = mixtures.first().map_or(1, |x| x.n_subtypes());
    let equal: Vec<sustain_core::Mixture> = mixtures
        .iter()
        .map(|x| {
            sustain_core::Mixture::new(x.sequences().to_vec(), vec![1.0 / k as f64; k])
                .map_err(value_err)
        })
        .collect::<PyResult<_>>()?;
    let mut eval = ThreadedEvaluator::new(m, threads);
    Ok((
        eval.posterior_sums(mixtures).map_err(value_err)?,
        eval.posterior_sums(&equal).map_err(value_err)?,
    ))
}

/// Run-until-converged settings from Python's `(max_iterations, max_seconds,
/// tempering_rungs)` (rungs `None`: [`sustain::config::tempering_rungs`]'s default).
fn rounds(
    settings: Option<(usize, Option<f64>, Option<usize>)>,
) -> Option<sustain::config::UntilConverged> {
    settings.map(
        |(max_iterations, max_seconds, rungs)| sustain::config::UntilConverged {
            max_iterations,
            max_seconds,
            tempering_rungs: sustain::config::tempering_rungs(rungs),
            ..Default::default()
        },
    )
}

impl Model {
    /// What checkpoints and pickles hash of the data and the model.
    pub(crate) fn identity(&self, biomarkers: &[String]) -> PyResult<Vec<u8>> {
        match &self.family {
            Family::Zscore(lik) => Ok(checkpoint::identity(&FitInput {
                events: lik.events(),
                biomarkers,
                data: lik.data(),
            })),
            Family::Prefix(model) => Ok(prefix_input(model, biomarkers).identity),
            Family::Mixed(model) => Ok(sustain::mixed::mixed_input(model, biomarkers).identity),
        }
    }
}
