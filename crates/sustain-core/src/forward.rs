//! Evaluators that wrap another evaluator and hand most calls to it: the
//! methods they forward, written once.

/// Writes [`BatchEvaluator`](crate::BatchEvaluator) methods that hand each call to
/// the evaluator in field `$field` of `self`, by groups: `required` (the methods
/// every evaluator writes), `loglike_subtype_candidates`, `best_subtype_candidate`.
/// `forward_batch_evaluator!(inner: required, loglike_subtype_candidates);` in an
/// `impl BatchEvaluator`; a tuple field is named by its index (`0`).
#[macro_export]
macro_rules! forward_batch_evaluator {
    (@required $field:tt) => {
        fn events(&self) -> &$crate::EventOrder {
            self.$field.events()
        }
        fn n_subjects(&self) -> usize {
            self.$field.n_subjects()
        }
        fn loglike_batch(&mut self, mixtures: &[$crate::Mixture]) -> $crate::Result<Vec<f64>> {
            self.$field.loglike_batch(mixtures)
        }
        fn log_p_subjects_batch(
            &mut self,
            mixtures: &[$crate::Mixture],
        ) -> $crate::Result<Vec<Vec<f64>>> {
            self.$field.log_p_subjects_batch(mixtures)
        }
        fn posterior_sums(
            &mut self,
            mixtures: &[$crate::Mixture],
        ) -> $crate::Result<$crate::__ndarray::Array3<f64>> {
            self.$field.posterior_sums(mixtures)
        }
    };
    (@loglike_subtype_candidates $field:tt) => {
        fn loglike_subtype_candidates(
            &mut self,
            slot: $crate::SubtypeOf<'_>,
            candidates: &[$crate::Sequence],
        ) -> $crate::Result<Vec<f64>> {
            self.$field.loglike_subtype_candidates(slot, candidates)
        }
    };
    (@best_subtype_candidate $field:tt) => {
        fn best_subtype_candidate(
            &mut self,
            slot: $crate::SubtypeOf<'_>,
            candidates: &[$crate::Sequence],
        ) -> $crate::Result<usize> {
            self.$field.best_subtype_candidate(slot, candidates)
        }
    };    ($field:tt: $($group:ident),+ $(,)?) => {
        $($crate::forward_batch_evaluator!(@$group $field);)+
    };
}
