//! The GPU context shared by the tests of a test binary.

use std::sync::{Arc, OnceLock};
use sustain_gpu::{GpuContext, GpuError};

/// The shared context, or None (with a NOTICE) when no adapter exists. Any other
/// failure (device, shader) fails the test.
pub fn ctx() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    let c = CTX.get_or_init(|| match GpuContext::new() {
        Ok(c) => {
            eprintln!("GPU adapter: {}", c.description());
            Some(Arc::new(c))
        }
        Err(GpuError::NoAdapter(why)) => {
            eprintln!("NOTICE: no GPU adapter ({why}); GPU agreement tests skipped");
            None
        }
        Err(e) => panic!("GPU context: {e}"),
    });
    if c.is_none() {
        eprintln!("NOTICE: skipped, no GPU adapter");
    }
    c.clone()
}
