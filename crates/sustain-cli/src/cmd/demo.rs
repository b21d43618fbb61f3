//! `sustain demo`: fits the bundled small example with quick settings.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::cmd::fit::{self, create_dir, FitArgs, FitData, FitSettings, Proposal};
use crate::cmd::Missing;
use crate::error::CliError;
use crate::folder_lock::{FolderLock, FOLDER_LOCK};
use crate::io;

static DATA: &str = include_str!("../../../../examples/data/small/data.csv");
static MODEL: &str = include_str!("../../../../examples/data/small/model.json");

/// Arguments of `sustain demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Output folder: the example's inputs in DIR/input/, and everything `sustain
    /// fit` writes. Rerunning in the folder of an earlier demo fits it anew; a
    /// folder that holds another fit is refused.
    #[arg(long, value_name = "DIR", default_value = "sustain-demo")]
    pub out: PathBuf,

    /// No progress lines on stderr [default: off].
    #[arg(long)]
    pub quiet: bool,

    /// Write DIR/input/data.csv and model.json even when they hold other files
    /// (not the bundled example's), and replace a fit in DIR [default: off].
    #[arg(long)]
    pub force: bool,
}

/// Removes results.json and the checkpoints (E-M optima included) of an earlier
/// demo in `out`.
fn clear_earlier_demo(out: &std::path::Path) -> Result<(), CliError> {
    let remove = |p: &std::path::Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::new(format!(
            "cannot remove {} of an earlier demo: {e}",
            p.display()
        ))),
        _ => Ok(()),
    };
    remove(&out.join("results.json"))?;
    if let Ok(entries) = std::fs::read_dir(out.join("checkpoints")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // checkpoint_k{K}.json, checkpoint_em_k{K}.json, and the temporary
            // file of an interrupted write (.checkpoint_k{K}.json.tmp{pid}).
            if name.trim_start_matches('.').starts_with("checkpoint_") && name.contains(".json") {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// Runs `sustain demo`: 200 simulated subjects, 4 biomarkers; 1 and 2 subtypes, 5
/// start points, 2 chains of 5000 iterations after 3 x 2000 tuning iterations.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let input_dir = args.out.join("input");
    let data = input_dir.join("data.csv");
    let model = input_dir.join("model.json");
    // The inputs are written over only where they are the bundled example's.
    for (path, bundled) in [(&data, DATA), (&model, MODEL)] {
        let foreign =
            path.exists() && std::fs::read(path).map_or(true, |bytes| bytes != bundled.as_bytes());
        if foreign && !args.force {
            return Err(CliError::new(format!(
                "{} exists and is not the demo's; choose another --out, or pass --force to replace it",
                path.display()
            )));
        }
    }
    create_dir(&args.out)?;
    let lock = FolderLock::take(&args.out, FOLDER_LOCK)?;
    // A folder of an earlier demo (its input/data.csv is the bundled data) is
    // refitted from scratch; any other folder holding a fit is refused.
    if std::fs::read(&data).is_ok_and(|bytes| bytes == DATA.as_bytes()) {
        clear_earlier_demo(&args.out)?;
    } else if args.out.join("results.json").exists()
        || std::fs::read_dir(args.out.join("checkpoints")).is_ok_and(|mut d| d.next().is_some())
    {
        if !args.force {
            return Err(CliError::new(format!(
                "{} already holds a fit that is not a demo; choose another --out, or pass --force to replace it",
                args.out.display()
            )));
        }
        crate::overwrite::clear_fit_outputs(&args.out)?;
    }
    create_dir(&input_dir)?;
    io::write_atomic(&data, DATA.as_bytes())?;
    io::write_atomic(&model, MODEL.as_bytes())?;
    let fit_args = FitArgs {
        input: FitData {
            data: Some(data.clone()),
            model: Some(model.clone()),
            zvals: None,
            zmax: None,
            id_column: Some("id".into()),
            missing: Missing::Marginalise,
        },
        settings: FitSettings {
            subtypes: 2,
            startpoints: 5,
            iterations: 5000,
            chains: 2,
            tuning_iterations: 2000,
            seed: 42,
            proposal: Proposal::Exact,
            threads: None,
        },
        burn_in: 0,
        thin: 1,
        backend: Backend::Cpu,
        require_gpu: false,
        out: args.out.clone(),
        resume: false,
        force: false,
        quiet: args.quiet,
    };
    fit::run_locked(&fit_args, Some(lock))?;
    let out = args.out.display();
    io::write_stdout(&format!(
        "\nThe demo fitted {} with {}.\n\
         Look at {out}/pvd_k2.png (the two subtypes' event sequences), \
         {out}/trace_k2.png (MCMC convergence), {out}/subjects_k2.csv (each subject's \
         subtype and stage) and {out}/results.json (everything).\n\
         The same fit from the command line:\n  sustain fit --data {} --model {} --id-column id \
         --subtypes 2 --startpoints 5 --iterations 5000 --chains 2 --tuning-iterations 2000 --out DIR\n",
        data.display(),
        model.display(),
        data.display(),
        model.display()
    ))
}
