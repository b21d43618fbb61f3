//! # sustain-gpu
//!
//! The SuStaIn batch likelihood as wgpu compute shaders: a [`GpuContext`] (adapter,
//! device, queue and compiled pipelines, created once and shared) and a
//! [`GpuEvaluator`] implementing [`sustain_model::BatchEvaluator`] with the data
//! resident on the device.
//!
//! Per call only the candidates travel to the device (event positions packed as u16
//! pairs, log-fractions as f32); the stage values, the per-subject per-stage
//! log-likelihoods, and the log-sum-exp over stages and subtypes are computed on the
//! device (shader `shaders/sustain_loglike.wgsl`). Per-subject values are summed per
//! workgroup of 256 subjects on the device and the tile sums finished in f64 on the
//! host, together with the sequence-independent per-subject constants (summed once,
//! in f64, at construction).
//!
//! The same evaluator serves the prefix models (event-based mixture, ordinal;
//! [`GpuEvaluator::for_prefix`]): their per-event deltas are resident instead, and
//! the shader's `prefix_*` entry points take the prefix sums along each sequence.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sustain_gpu::{GpuContext, GpuError, GpuEvaluator};
//! use sustain_model::*;
//! # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let events = EventSet::uniform(4, &[1.0, 2.0], 5.0)?;
//! let data = Dataset::from_rows(&[vec![0.1, 2.0, 0.3, f64::NAN], vec![1.5, 0.2, 2.2, 3.1]])?;
//! let ctx = match GpuContext::new() {
//!     Ok(ctx) => Arc::new(ctx),
//!     Err(GpuError::NoAdapter(why)) => {
//!         eprintln!("no GPU ({why}); using the CPU");
//!         return Ok(());
//!     }
//!     Err(e) => return Err(e.into()),
//! };
//! println!("GPU: {}", ctx.description());
//! let mut gpu = GpuEvaluator::new(ctx, events.clone(), &data, MissingConvention::Marginalise)?;
//! let mut rng = <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(1);
//! let mixture = Mixture::single(Sequence::random(&events, &mut rng));
//! let ll = gpu.loglike_batch(&[mixture])?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod context;
mod evaluator;
mod prefix;
mod test_context;

pub use context::GpuContext;
pub use evaluator::GpuEvaluator;
pub use test_context::test_context;

use sustain_model::ModelError;

/// Subjects per workgroup of the likelihood shader (`TILE` in the WGSL).
pub const SUBJECTS_PER_WORKGROUP: usize = 256;

/// Why the GPU backend could not be set up or could not evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuError {
    /// No adapter with compute shaders exists (no GPU, no driver, or no software
    /// Vulkan such as lavapipe). Callers should fall back to the CPU.
    NoAdapter(String),
    /// The adapter refused to create a device.
    Device(String),
    /// The shader or a pipeline failed to compile or validate.
    Shader(String),
    /// A device error while allocating, dispatching or reading back.
    Runtime(String),
    /// The model or data were rejected (e.g. the data's biomarkers do not match).
    Model(ModelError),
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::NoAdapter(why) => write!(f, "no GPU adapter with compute shaders: {why}"),
            GpuError::Device(e) => write!(f, "the GPU adapter could not create a device: {e}"),
            GpuError::Shader(e) => write!(f, "GPU shader compilation failed: {e}"),
            GpuError::Runtime(e) => write!(f, "GPU error: {e}"),
            GpuError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GpuError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GpuError::Model(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ModelError> for GpuError {
    fn from(e: ModelError) -> Self {
        GpuError::Model(e)
    }
}

impl From<GpuError> for ModelError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Model(m) => m,
            other => ModelError::Backend(other.to_string()),
        }
    }
}
