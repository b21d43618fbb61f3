//! `sustain demo`: fits the bundled small example with quick settings.

use std::path::PathBuf;

use crate::backend::BackendArgs;
use crate::cmd::fit::{self, FitArgs, FitData, FitSettings};
use crate::cmd::shared_args::{IdColumn, Quiet, Threads};
use crate::cmd::Missing;
use crate::error::CliError;
use crate::folder_lock::{FolderLock, FOLDER_LOCK};
use crate::io;
use crate::io::create_dir;

/// A bundled example: its files (name, contents; the first is the one an earlier
/// demo is recognised by), its model file and its data file, if any.
struct Example {
    files: &'static [(&'static str, &'static str)],
    model: &'static str,
    data: Option<&'static str>,
    subtypes: usize,
    what: &'static str,
}

/// `examples/data/small`: z-scores.
const ZSCORE: Example = Example {
    files: &[
        (
            "data.csv",
            include_str!("../../../../examples/data/small/data.csv"),
        ),
        (
            "model.json",
            include_str!("../../../../examples/data/small/model.json"),
        ),
    ],
    model: "model.json",
    data: Some("data.csv"),
    subtypes: 2,
    what: "200 simulated subjects' z-scores of 4 biomarkers",
};

/// `examples/data/mixture`: event-based.
const MIXTURE: Example = Example {
    files: &[
        (
            "p_yes.csv",
            include_str!("../../../../examples/data/mixture/p_yes.csv"),
        ),
        (
            "p_no.csv",
            include_str!("../../../../examples/data/mixture/p_no.csv"),
        ),
        (
            "model.json",
            include_str!("../../../../examples/data/mixture/model.json"),
        ),
    ],
    model: "model.json",
    data: None,
    subtypes: 3,
    what: "300 simulated subjects' event likelihoods of 8 biomarkers (event-based model)",
};

/// `examples/data/ordinal`: scores 0-3.
const ORDINAL: Example = Example {
    files: &[
        (
            "scores.csv",
            include_str!("../../../../examples/data/ordinal/scores.csv"),
        ),
        (
            "model.json",
            include_str!("../../../../examples/data/ordinal/model.json"),
        ),
    ],
    model: "model.json",
    data: Some("scores.csv"),
    subtypes: 3,
    what: "300 simulated subjects' scores (0-3) of 5 biomarkers (ordinal model)",
};

/// Which bundled example the demo fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoModel {
    /// z-scores (examples/data/small).
    Zscore,
    /// Event-based likelihoods (examples/data/mixture).
    Mixture,
    /// Ordinal scores (examples/data/ordinal).
    Ordinal,
}

/// Arguments of `sustain demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Output folder: the example's inputs in DIR/input/, and everything `sustain
    /// fit` writes. Rerunning in the folder of an earlier demo fits it anew; a
    /// folder that holds another fit is refused.
    #[arg(long, value_name = "DIR", default_value = "sustain-demo")]
    pub out: PathBuf,

    #[command(flatten)]
    pub progress: Quiet,

    /// Which model family's bundled example to fit.
    #[arg(long, value_enum, default_value_t = DemoModel::Zscore)]
    pub model: DemoModel,

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
    remove(&out.join(sustain::samples_file::SAMPLES_FILE))?;
    if let Ok(entries) = std::fs::read_dir(out.join("checkpoints")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // checkpoint_k{K}.json, checkpoint_em_k{K}.json, checkpoint_k{K}.npz
            // (its samples), and the temporary file of an interrupted write
            // (.checkpoint_k{K}.json.tmp{pid}).
            if name.trim_start_matches('.').starts_with("checkpoint_")
                && (name.contains(".json") || name.contains(".npz"))
            {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// Runs `sustain demo`: the bundled example of `--model` (z-scores: 200 simulated
/// subjects, 4 biomarkers, 1 and 2 subtypes; mixture and ordinal: 300 subjects, 1 to
/// 3 subtypes), 5 start points, 2 chains of 5000 iterations after 3 x 2000 tuning
/// iterations.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let example = match args.model {
        DemoModel::Zscore => &ZSCORE,
        DemoModel::Mixture => &MIXTURE,
        DemoModel::Ordinal => &ORDINAL,
    };
    let input_dir = args.out.join("input");
    let path = |name: &str| input_dir.join(name);
    // The inputs are written over only where they are the bundled example's.
    for (name, bundled) in example.files {
        let p = path(name);
        let foreign =
            p.exists() && std::fs::read(&p).map_or(true, |bytes| bytes != bundled.as_bytes());
        if foreign && !args.force {
            return Err(CliError::new(format!(
                "{} exists and is not the demo's; choose another --out, or pass --force to replace it",
                p.display()
            )));
        }
    }
    let (first, first_text) = example.files[0];
    create_dir(&args.out)?;
    let lock = FolderLock::take(&args.out, FOLDER_LOCK)?;
    // A folder of an earlier demo (its input/data.csv is the bundled data) is
    // refitted from scratch; any other folder holding a fit is refused.
    if std::fs::read(path(first)).is_ok_and(|bytes| bytes == first_text.as_bytes()) {
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
    for (name, text) in example.files {
        io::write_atomic(&path(name), text.as_bytes())?;
    }
    let model = path(example.model);
    let data = example.data.map(path);
    let fit_args = FitArgs {
        input: FitData {
            data: data.clone(),
            model: Some(model.clone()),
            zvals: None,
            zmax: None,
            ids: IdColumn {
                id_column: Some("id".into()),
            },
            missing: Missing::Marginalise,
        },
        settings: FitSettings {
            subtypes: example.subtypes,
            startpoints: 5,
            iterations: None,
            max_seconds: None,
            max_iterations: None,
            tempering: None,
            chains: 2,
            tuning_iterations: 2000,
            seed: 42,
            proposal: None,
            threads: Threads::default(),
        },
        burn_in: 0,
        thin: 1,
        backend: BackendArgs::default(),
        out: args.out.clone(),
        resume: false,
        force: false,
        progress: args.progress,
    };
    fit::run_locked(&fit_args, Some(lock))?;
    let summary = fit::data_summary(&fit_args.input);
    crate::report::after_run(&args.out, true, summary, false);
    let out = args.out.display();
    let k = example.subtypes;
    let data_arg = data
        .as_ref()
        .map(|d| format!("--data {} ", d.display()))
        .unwrap_or_default();
    io::write_stdout(&format!(
        "\nThe demo fitted {}, in {}.\n\
         Look at {out}/report.html (everything on one page), \
         {out}/pvd_k{k}.png (the subtypes' event sequences), \
         {out}/trace_k{k}.png (MCMC convergence), {out}/subjects_k{k}.csv (each subject's \
         subtype and stage) and {out}/results.json (everything).\n\
         The same fit from the command line:\n  sustain fit {data_arg}--model {} --id-column id \
         --subtypes {k} --startpoints 5 --chains 2 --tuning-iterations 2000 --out DIR\n",
        example.what,
        input_dir.display(),
        model.display(),
    ))
}
