//! Which evaluator makes E-M's choices on a batch engine: the model's own CPU
//! evaluator wherever its choices are pure and exact (the z-score walk, from 16
//! biomarkers), the engine's elsewhere. Shown with a batch engine whose evaluator
//! chooses badly on purpose (always the last allowed position): from 16
//! biomarkers the fit's E-M optimum is the CPU's, below that it is the bad one.

use std::ops::RangeInclusive;
use std::sync::Arc;
use sustain::backend::{BoxedEvaluator, Engine};
use sustain::prelude::*;
use sustain_core::{BatchEvaluator, EventOrder, Mixture, Sequence, SubtypeOf};
use sustain_model::{Likelihood, SerialEvaluator};
use sustain_testkit::{self as testkit, spec};

/// The serial evaluator, except that E-M's choice is the last allowed position.
struct LastPosition(SerialEvaluator);

impl BatchEvaluator for LastPosition {
    fn events(&self) -> &EventOrder {
        self.0.events()
    }
    fn n_subjects(&self) -> usize {
        self.0.n_subjects()
    }
    fn loglike_batch(&mut self, mixtures: &[Mixture]) -> sustain_core::Result<Vec<f64>> {
        self.0.loglike_batch(mixtures)
    }
    fn log_p_subjects_batch(
        &mut self,
        mixtures: &[Mixture],
    ) -> sustain_core::Result<Vec<Vec<f64>>> {
        self.0.log_p_subjects_batch(mixtures)
    }
    fn posterior_sums(
        &mut self,
        mixtures: &[Mixture],
    ) -> sustain_core::Result<ndarray::Array3<f64>> {
        self.0.posterior_sums(mixtures)
    }
    fn best_subtype_candidate(
        &mut self,
        _slot: SubtypeOf<'_>,
        candidates: &[Sequence],
    ) -> sustain_core::Result<usize> {
        Ok(candidates.len().saturating_sub(1))
    }
    fn best_event_position(
        &mut self,
        _slot: SubtypeOf<'_>,
        _event: usize,
        allowed: RangeInclusive<usize>,
    ) -> sustain_core::Result<usize> {
        Ok(*allowed.end())
    }
}

fn em_optimum(n_biomarkers: usize, engine: &Engine) -> (Vec<Vec<usize>>, f64) {
    let events = EventSet::uniform(n_biomarkers, &[1.0, 2.0], 4.0).unwrap();
    let w = testkit::cohort(events, &[1.0], 5, &spec(80, 0.1, 0.0), 9);
    let names: Vec<String> = (0..n_biomarkers).map(|b| format!("b{b}")).collect();
    let input = FitInput {
        events: &w.events,
        biomarkers: &names,
        data: &w.data,
    };
    let config = FitConfig {
        n_startpoints: 2,
        max_subtypes: 1,
        n_iterations: 50,
        n_chains: 1,
        tuning_passes: 1,
        tuning_iterations: 50,
        seed: 4,
        threads: 2,
        ..FitConfig::default()
    };
    let fit = Fit::zscore(&input, config).engine(engine).run().unwrap();
    let m = &fit.models[0];
    (m.em_sequences.clone(), m.em_loglike)
}

#[test]
fn em_choices_come_from_the_walk_wherever_it_is_exact() {
    let contrary = Engine::batch("last position", |model: &dyn std::any::Any| {
        let lik = model.downcast_ref::<Arc<Likelihood>>()?;
        Some(Ok(
            Box::new(LastPosition(SerialEvaluator::new(Arc::clone(lik)))) as BoxedEvaluator,
        ))
    });
    // 16 biomarkers: the walk chooses, whatever the engine.
    let cpu = em_optimum(16, &Engine::Cpu);
    assert_eq!(em_optimum(16, &contrary), cpu);
    // 4 biomarkers: the engine's evaluator chooses (here badly).
    let cpu = em_optimum(4, &Engine::Cpu);
    let bad = em_optimum(4, &contrary);
    assert!(bad.1 < cpu.1, "{bad:?} against {cpu:?}");
}
