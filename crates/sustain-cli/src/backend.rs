//! The compute backend a subcommand runs on (`--backend`, `--require-gpu`).

use clap::ValueEnum;
use std::sync::Arc;
use sustain::backend::{Engine, Selection};
use sustain::model::SustainModel;

use crate::error::CliError;

/// Where likelihoods are evaluated. Shared by every subcommand that evaluates the
/// model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Backend {
    /// The CPU (the exact log-domain kernels of `sustain-model`).
    #[default]
    Cpu,
    /// A GPU through wgpu (Vulkan, Metal, DX12; Mesa's lavapipe in software), in f32
    /// (totals agree with the CPU to about 1e-7 relative), for z-score, mixture and
    /// ordinal models (mixed-type models run on the CPU, with a one-line notice). Needs a build with the
    /// `gpu` feature; without one, or without a usable adapter, the command runs on
    /// the CPU and says so in one line on stderr (unless --require-gpu). Pays off for
    /// large cohorts and many chains (10,000 subjects: 3x 16 CPU cores on an H200);
    /// on a few hundred subjects every call waits the GPU's latency and the CPU is
    /// faster.
    Gpu,
}

/// `--backend` and `--require-gpu`, flattened into every subcommand that evaluates
/// likelihoods (`evaluate`, `fit`, `cv`, `stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::Args)]
pub struct BackendArgs {
    /// Where likelihoods are evaluated (evaluate's output and results.json name the
    /// one used). With gpu, fits run their E-M start points one after another and
    /// their MCMC chains in lockstep on the GPU (step-size tuning on the CPU); test
    /// subjects and staging posteriors are evaluated in batches of posterior
    /// samples, in f32 summed in f64 (within about 1e-6 of the CPU).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,

    /// With --backend gpu: fail (exit status 2) instead of running on the CPU when no
    /// GPU can be used [default: off].
    #[arg(long)]
    pub require_gpu: bool,
}

impl BackendArgs {
    /// [`Backend::select`] under `--require-gpu`.
    pub fn select(self) -> Result<Selection, CliError> {
        self.backend.select(self.require_gpu)
    }
}

impl Backend {
    /// The name used on the command line and in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }

    /// The library's backend.
    pub fn config(self) -> sustain::config::Backend {
        match self {
            Backend::Cpu => sustain::config::Backend::Cpu,
            Backend::Gpu => sustain::config::Backend::Gpu,
        }
    }

    /// Resolves the backend for a command that evaluates likelihoods itself: prints
    /// the one-line fallback notice on stderr when the GPU is unavailable, or fails
    /// with `require_gpu`.
    pub fn select(self, require_gpu: bool) -> Result<Selection, CliError> {
        let selection = sustain::backend::select(self.config(), require_gpu)
            .map_err(|e| CliError::new(e.to_string()))?;
        if let Some(notice) = &selection.notice {
            warn_once(notice);
        }
        Ok(selection)
    }
}

/// The engine of a command on a model of a family other than z-scores (`family`,
/// as model.json names it): the GPU under `--backend gpu` when an adapter exists
/// and it evaluates the family (mixture, ordinal), else the CPU after one line on
/// stderr, or an error under `--require-gpu`. Returns the engine and the backend
/// it is (for outputs).
pub fn engine_for<M: SustainModel>(
    args: BackendArgs,
    model: &Arc<M>,
    family: &str,
) -> Result<(Engine, Backend), CliError> {
    let BackendArgs {
        backend,
        require_gpu,
    } = args;
    let selection = args.select()?;
    let served = selection
        .engine
        .for_model(model, family)
        .map_err(|e| CliError::new(format!("GPU: {e}")))?;
    if let Some(notice) = &served.notice {
        if require_gpu {
            return Err(CliError::new(
                notice.trim_end_matches(RUNNING_ON_THE_CPU).to_string(),
            ));
        }
        warn_once(notice);
    }
    let ran_on = match (&selection.notice, &served.notice) {
        (None, None) => backend,
        _ => Backend::Cpu,
    };
    Ok((served.engine, ran_on))
}

/// How a fallback notice ends.
const RUNNING_ON_THE_CPU: &str = "; running on the CPU";

/// Staging a model of a family other than z-scores: with `--backend gpu`, the
/// one-line notice that it runs on the CPU, or the error under `--require-gpu`.
pub fn cpu_staging(args: BackendArgs) -> Result<(), CliError> {
    const LINE: &str = "the GPU backend stages z-score models only";
    if args.backend == Backend::Gpu {
        if args.require_gpu {
            return Err(CliError::new(LINE));
        }
        warn_once(&format!("{LINE}{RUNNING_ON_THE_CPU}"));
    }
    Ok(())
}

/// Prints `line` on stderr unless the same line was printed before by this process
/// (cross-validation fits every fold and would repeat a fallback notice).
pub fn warn_once(line: &str) {
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let fresh = match SEEN.lock() {
        Ok(mut seen) if !seen.iter().any(|s| s == line) => {
            seen.push(line.to_string());
            true
        }
        Ok(_) => false,
        Err(_) => true,
    };
    if fresh {
        crate::printing::eprint_line(line);
    }
}
