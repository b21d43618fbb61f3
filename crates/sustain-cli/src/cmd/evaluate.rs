//! `sustain evaluate`: the log-likelihood of data under given sequences and subtype
//! fractions, in total and per subject (spec section 3).

use std::path::{Path, PathBuf};

use serde::Serialize;
use sustain_model::{Likelihood, SustainModel};

use crate::backend::{engine_for, Backend, BackendArgs};
use crate::cmd::ModelDataArgs;
use crate::error::CliError;
use crate::families::{self, Family};
use crate::family_model::{load_family, FamilyJob, LoadedFamily};
use crate::io;

/// Arguments of `sustain evaluate`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub input: ModelDataArgs,

    /// Sequences JSON: {"sequences": [[event indices, first to last], ...], "f":
    /// [subtype fractions]}; "f" may be left out for a single sequence. Events are
    /// numbered z-score-major (all biomarkers' first thresholds, then the second, ...).
    #[arg(long, value_name = "SEQUENCES.json")]
    pub sequences: PathBuf,

    #[command(flatten)]
    pub backend: BackendArgs,
}

/// The JSON printed on stdout.
#[derive(Debug, Serialize)]
struct EvaluateOutput<'a> {
    /// `sum_m log p(x_m)`.
    loglike: f64,
    /// The missing-value convention used.
    missing: &'static str,
    /// The backend used.
    backend: &'static str,
    /// Subject ids, aligned with `per_subject`.
    ids: &'a [String],
    /// `log p(x_m)` per subject, in data order.
    per_subject: Vec<f64>,
}

/// Runs `sustain evaluate`: prints `{"loglike", "missing", "backend", "ids",
/// "per_subject"}` as one line of JSON on stdout.
pub fn run(args: &EvaluateArgs) -> Result<(), CliError> {
    let family = families::family_of(&args.input.model)?;
    if family != Family::ZScore {
        return run_other_family(args, family);
    }
    let (model, data) = args.input.load()?;
    let data_path = args.input.data.as_deref().unwrap_or(Path::new("data"));
    let mixture = io::read_sequences(&args.sequences, &model.events)?;
    let selection = args.backend.select()?;
    let likelihood = Likelihood::new(model.events, &data.dataset, args.input.missing.convention())
        .map_err(|e| CliError::in_file(data_path, e))?;
    let (loglike, per_subject, backend) = if selection.engine.is_cpu() {
        (
            likelihood.loglike(&mixture),
            likelihood.log_p_subjects(&mixture),
            Backend::Cpu,
        )
    } else {
        let likelihood = std::sync::Arc::new(likelihood);
        let gpu_error = |e: sustain_model::ModelError| CliError::new(format!("GPU: {e}"));
        let mut evaluator = selection.engine.evaluator(&likelihood).map_err(gpu_error)?;
        let batch = std::slice::from_ref(&mixture);
        let loglike = evaluator.loglike_batch(batch).map_err(gpu_error)?[0];
        let per_subject = evaluator
            .log_p_subjects_batch(batch)
            .map_err(gpu_error)?
            .swap_remove(0);
        (loglike, per_subject, Backend::Gpu)
    };
    print_output(&EvaluateOutput {
        loglike,
        missing: args.input.missing.name(),
        backend: backend.name(),
        ids: &data.ids,
        per_subject,
    })
}

/// `sustain evaluate` of a mixture, ordinal or mixed-type model: on the GPU under
/// `--backend gpu` where it evaluates the family (mixture, ordinal), else on the CPU.
fn run_other_family(args: &EvaluateArgs, family: Family) -> Result<(), CliError> {
    let loaded = load_family(
        &args.input.model,
        family,
        args.input.data.as_deref(),
        args.input.ids.name(),
    )?;
    // Missing z-scores are always marginalised in the mixed-type family.
    let missing = match loaded {
        LoadedFamily::Mixed(_) => crate::cmd::Missing::Marginalise,
        LoadedFamily::Prefix(_) => args.input.missing,
    };
    loaded.run(EvaluateJob {
        args,
        family,
        missing,
    })
}

/// Prints the log-likelihoods of a loaded model under `args.sequences`.
struct EvaluateJob<'j> {
    args: &'j EvaluateArgs,
    family: Family,
    missing: crate::cmd::Missing,
}

impl<'a> FamilyJob<'a> for EvaluateJob<'_> {
    type Output = Result<(), CliError>;
    fn run<M: SustainModel>(
        self,
        input: sustain::fit::ModelInput<'a, M>,
        ids: &'a [String],
    ) -> Self::Output {
        let args = self.args;
        let mixture = io::read_sequences(&args.sequences, input.model.order())?;
        let family = self.family.name();
        let (engine, backend) = engine_for(args.backend, &input.model, family)?;
        let gpu_error = |e: sustain_model::ModelError| CliError::new(format!("GPU: {e}"));
        // The CPU's evaluator is the model's own (the values of SustainModel::loglike).
        let mut evaluator = engine.evaluator(&input.model).map_err(gpu_error)?;
        let batch = std::slice::from_ref(&mixture);
        print_output(&EvaluateOutput {
            loglike: evaluator.loglike_batch(batch).map_err(gpu_error)?[0],
            missing: self.missing.name(),
            backend: backend.name(),
            ids,
            per_subject: evaluator
                .log_p_subjects_batch(batch)
                .map_err(gpu_error)?
                .swap_remove(0),
        })
    }
}

fn print_output(output: &EvaluateOutput) -> Result<(), CliError> {
    let mut text = serde_json::to_string(output)
        .map_err(|e| CliError::new(format!("cannot format the result: {e}")))?;
    text.push('\n');
    io::write_stdout(&text)
}
