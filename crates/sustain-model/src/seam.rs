//! The z-score model behind the model seam ([`StageModel`], [`SustainModel`]): its
//! own exact and fast paths (SIMD kernels, the incremental chain state, the
//! screened E-M evaluator) serve E-M, chains and staging, so fits through the seam
//! are the same bits as before it.

use crate::batch::{posterior_sums_serial, SerialEvaluator};
use crate::error::Result;
use crate::incremental::IncrementalLikelihood;
use crate::likelihood::{Likelihood, Scratch};
use crate::mixture::Mixture;
use crate::sequence::Sequence;
use crate::TOTAL_BLOCK;
use ndarray::Array3;
use std::sync::Arc;
use sustain_core::{
    BatchEvaluator, ChainEvaluator, EventOrder, Screened, ShardState, StageModel, SustainModel,
};

impl StageModel for Likelihood {
    fn order(&self) -> &EventOrder {
        self.events().order()
    }
    fn n_subjects(&self) -> usize {
        Likelihood::n_subjects(self)
    }
    fn stage_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let with_constants = self.log_p_perm_k(sequence);
        let ns = self.events().n_stages();
        for (m, row) in with_constants.outer_iter().enumerate() {
            let c = self.subject_constants()[m];
            for (o, v) in out[m * ns..(m + 1) * ns].iter_mut().zip(row) {
                *o = v - c;
            }
        }
    }
    fn subset(&self, subjects: &[usize]) -> Result<Self> {
        Likelihood::new(
            self.events().clone(),
            &self.data().select(subjects)?,
            self.convention(),
        )
    }
    fn subject_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let mut padded = vec![0.0; self.padded_subjects()];
        self.subtype_lse_into(sequence, &mut Scratch::default(), &mut padded);
        let n = out.len().min(padded.len());
        out[..n].copy_from_slice(&padded[..n]);
    }
    fn subject_offsets(&self) -> &[f64] {
        self.subject_constants()
    }
}

impl SustainModel for Likelihood {
    const SHARD_BLOCK: usize = TOTAL_BLOCK;

    fn loglike(&self, mixture: &Mixture) -> f64 {
        Likelihood::loglike(self, mixture)
    }
    fn log_p_subjects(&self, mixture: &Mixture) -> Vec<f64> {
        Likelihood::log_p_subjects(self, mixture)
    }
    fn posterior_sums(&self, mixtures: &[Mixture]) -> Result<Array3<f64>> {
        posterior_sums_serial(self, mixtures)
    }
    fn posterior_sums_into(
        &self,
        mixtures: &[Mixture],
        subjects: std::ops::Range<usize>,
        out: &mut [f64],
    ) -> Result<()> {
        let k = sustain_core::evaluate::common_subtypes(mixtures)?;
        let ns = self.events().n_stages();
        if !subjects.start.is_multiple_of(crate::kernels::LANES)
            || subjects.end > Likelihood::n_subjects(self)
            || (!mixtures.is_empty() && out.len() != subjects.len() * ns * k)
        {
            return Err(crate::ModelError::Shape(format!(
                "posterior sums of subjects {subjects:?} into {} values",
                out.len()
            )));
        }
        Likelihood::posterior_sums_into(self, mixtures, subjects, out);
        Ok(())
    }
    fn shard(&self, subjects: std::ops::Range<usize>) -> Result<Self> {
        Ok(Likelihood::shard(self, subjects))
    }
    fn shard_state(model: Arc<Self>, start: &Mixture) -> Box<dyn ShardState> {
        Box::new(IncrementalLikelihood::new(model, start))
    }
    fn chain_evaluator(model: &Arc<Self>, start: &Mixture) -> Box<dyn ChainEvaluator + Send> {
        Box::new(IncrementalLikelihood::new(Arc::clone(model), start))
    }
    fn batch_evaluator(model: &Arc<Self>) -> Box<dyn BatchEvaluator + Send> {
        Box::new(SerialEvaluator::new(Arc::clone(model)))
    }
}

impl ShardState for IncrementalLikelihood {
    fn reset_shard(&mut self, mixture: &Mixture) -> bool {
        IncrementalLikelihood::reset_shard(self, mixture)
    }
    fn propose_shard(&mut self, mixture: &Mixture, changed: &[bool]) -> bool {
        IncrementalLikelihood::propose_shard(self, mixture, changed)
    }
    fn propose_shard_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<bool> {
        IncrementalLikelihood::propose_shard_unless_rejected(self, proposal)
    }
    fn accept_shard(&mut self, rebuild: bool) {
        IncrementalLikelihood::accept_shard(self, rebuild)
    }
    fn reject(&mut self) {
        IncrementalLikelihood::reject(self)
    }
    fn partials(&self) -> &[f64] {
        IncrementalLikelihood::partials(self)
    }
}

impl ChainEvaluator for IncrementalLikelihood {
    fn reset(&mut self, mixture: &Mixture) -> f64 {
        IncrementalLikelihood::reset(self, mixture)
    }
    fn propose(&mut self, mixture: &Mixture, changed: &[bool]) -> f64 {
        IncrementalLikelihood::propose(self, mixture, changed)
    }
    fn accept(&mut self) {
        IncrementalLikelihood::accept(self)
    }
    fn reject(&mut self) {
        IncrementalLikelihood::reject(self)
    }
    fn propose_unless_rejected(&mut self, proposal: Screened<'_>) -> Option<f64> {
        IncrementalLikelihood::propose_unless_rejected(self, proposal)
    }
}
