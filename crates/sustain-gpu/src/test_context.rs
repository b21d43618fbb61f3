//! The GPU context that tests (of this crate and of the facade) share: created once
//! per test binary, and None where no adapter exists, so a test can skip there.

use crate::{GpuContext, GpuError};
use std::sync::{Arc, OnceLock};

/// The shared context, or None (with a NOTICE) when no adapter exists. Any other
/// failure (device, shader) panics: a GPU that exists but cannot be used fails the
/// test instead of skipping it.
pub fn test_context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    let c = CTX.get_or_init(|| match GpuContext::new() {
        Ok(c) => {
            eprintln!("GPU adapter: {}", c.description());
            Some(Arc::new(c))
        }
        Err(GpuError::NoAdapter(why)) => {
            eprintln!("NOTICE: no GPU adapter ({why}); GPU tests skipped");
            None
        }
        Err(e) => panic!("an adapter exists but the GPU cannot be used: {e}"),
    });
    if c.is_none() {
        eprintln!("NOTICE: skipped, no GPU adapter");
    }
    c.clone()
}
