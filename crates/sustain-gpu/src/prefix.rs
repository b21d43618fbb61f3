//! [`GpuEvaluator`] for the prefix models (event-based mixture, ordinal; spec
//! section 10): the per-event deltas resident on the device, the `prefix_*` entry
//! points of the shader.

use crate::evaluator::{tiles_for, DeviceData, Kernel, DEFAULT_CAPACITY, DEFAULT_SUBTYPES};
use crate::{GpuContext, GpuError, GpuEvaluator, SUBJECTS_PER_WORKGROUP};
use std::sync::Arc;
use sustain_model::{PrefixModel, StageModel};

impl GpuEvaluator {
    /// Uploads the prepared data of a prefix model (event-based or ordinal).
    ///
    /// Numbers: the device computes `g[m] = log sum_s f_s sum_k exp(v_k)`, with `v_k`
    /// the prefix sums of the subject's deltas along each sequence, in f32 (deltas
    /// rounded to f32, online log-sum-exp) and sums it per workgroup of 256
    /// subjects; the host adds each subject's offset (stage-0 log-likelihood and
    /// stage prior) and the tile sums in f64. Totals and per-subject values agree
    /// with the model's CPU evaluator to about 1e-7 relative; staging posteriors
    /// are the model's own (CPU, f64).
    pub fn for_prefix(ctx: Arc<GpuContext>, model: &Arc<PrefixModel>) -> Result<Self, GpuError> {
        Self::prefix_with_capacity(ctx, model, DEFAULT_CAPACITY, DEFAULT_SUBTYPES)
    }

    /// As [`Self::for_prefix`], with buffers sized for batches of `max_batch`
    /// candidates of up to `max_subtypes` subtypes from the start.
    pub fn prefix_with_capacity(
        ctx: Arc<GpuContext>,
        model: &Arc<PrefixModel>,
        max_batch: usize,
        max_subtypes: usize,
    ) -> Result<Self, GpuError> {
        let n = model.order().n_events();
        let n_subjects = model.n_subjects();
        let n_tiles = tiles_for(&ctx, n_subjects)?;
        let stride = n_tiles * SUBJECTS_PER_WORKGROUP;
        // Event-major, so that a workgroup's subjects read one contiguous row.
        let mut deltas = vec![0u32; n * stride];
        for (m, row) in model.event_deltas().chunks_exact(n).enumerate() {
            for (e, &d) in row.iter().enumerate() {
                deltas[e * stride + m] = (d as f32).to_bits();
            }
        }
        let mut subject_const = model.subject_offsets().to_vec();
        subject_const.resize(n_subjects, 0.0);
        Self::upload(
            ctx,
            DeviceData {
                kernel: Kernel::Prefix(Arc::clone(model)),
                n_subjects,
                n_tiles,
                // Not read by the prefix entry points; a binding needs a buffer.
                binding1: &[0; 8],
                binding2: &deltas,
                subject_const,
                // The position loop (two positions an iteration) and its exit test,
                // the subtype loop's iteration.
                loops_per_subtype: n.div_ceil(2) as u64 + 2,
            },
            max_batch,
            max_subtypes,
        )
    }
}
