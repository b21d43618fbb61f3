//! The compute backend a subcommand runs on (`--backend`).

use clap::ValueEnum;

/// Where likelihoods are evaluated. Shared by every subcommand that evaluates the
/// model; more backends (e.g. `gpu`) are added here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Backend {
    /// The CPU (the exact log-domain kernels of `sustain-model`).
    #[default]
    Cpu,
}

impl Backend {
    /// The name used on the command line and in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
        }
    }
}
