//! `sustain simulate`: a z-score cohort of any size drawn from random true
//! sequences (the model crate's simulator), written as a data CSV, a model.json
//! that `fit --model` reads and a truth.json with what was drawn.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;
use sustain_model::simulate::{simulate, SimulationSpec};
use sustain_model::{Dataset, EventSet, Mixture, Sequence};

use crate::error::CliError;
use crate::io::{self, create_dir, format_cell};

/// Most values (subjects x biomarkers) one cohort may hold (a few GB of CSV).
const MAX_VALUES: usize = 200_000_000;

/// The files `simulate` writes into `--out`.
const OUTPUTS: [&str; 3] = ["data.csv", "model.json", "truth.json"];

/// Arguments of `sustain simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Number of subjects.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub subjects: usize,

    /// Number of biomarkers (named bm0, bm1, ...).
    #[arg(long, value_name = "B", default_value_t = 4)]
    pub biomarkers: usize,

    /// Comma-separated z-score thresholds of every biomarker (one event each).
    #[arg(
        long,
        value_name = "Z1,Z2",
        value_delimiter = ',',
        default_value = "1,2,3"
    )]
    pub zvals: Vec<f64>,

    /// The z-score every biomarker reaches at the last stage.
    #[arg(long, value_name = "Z", default_value_t = 5.0)]
    pub zmax: f64,

    /// Number of subtypes (true sequences).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub subtypes: usize,

    /// Comma-separated fraction of each subtype, summing to 1 [default: equal].
    #[arg(long, value_name = "F1,F2", value_delimiter = ',')]
    pub fractions: Option<Vec<f64>>,

    /// Fraction of values removed at random (each subject keeps at least one).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub missing_fraction: f64,

    /// Fraction of subjects that are controls (stage 0).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub control_fraction: f64,

    /// Random seed: the same seed and options give the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output folder: data.csv (with an id column), model.json and truth.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Write over data.csv, model.json and truth.json in DIR [default: off].
    #[arg(long)]
    pub force: bool,
}

/// truth.json: the true mixture (readable as `--sequences`) and each subject's
/// subtype and stage.
#[derive(Serialize)]
struct Truth<'a> {
    sequences: Vec<Vec<usize>>,
    f: &'a [f64],
    ids: &'a [String],
    subtypes: &'a [usize],
    stages: &'a [usize],
    seed: u64,
}

#[derive(Serialize)]
struct ModelJson<'a> {
    biomarkers: &'a [String],
    z_vals: Vec<Vec<f64>>,
    z_max: Vec<f64>,
}

/// Runs `sustain simulate`.
pub fn run(args: &SimulateArgs) -> Result<(), CliError> {
    let (events, fractions) = check(args)?;
    let targets: Vec<PathBuf> = OUTPUTS.iter().map(|n| args.out.join(n)).collect();
    if !args.force {
        if let Some(p) = targets.iter().find(|p| p.exists()) {
            return Err(CliError::new(format!(
                "{} exists; choose another --out, or pass --force to write over it",
                p.display()
            )));
        }
    }
    // The true sequences from the seed, the subjects from the next stream.
    let mut rng = Pcg64::seed_from_u64(args.seed);
    let sequences = (0..args.subtypes)
        .map(|_| Sequence::random(&events, &mut rng))
        .collect();
    let truth = Mixture::new(sequences, fractions).map_err(|e| CliError::new(e.to_string()))?;
    let spec = SimulationSpec {
        n_subjects: args.subjects,
        control_fraction: args.control_fraction,
        missing_fraction: args.missing_fraction,
    };
    let sim = simulate(&events, &truth, &spec, args.seed.wrapping_add(1))
        .map_err(|e| CliError::new(e.to_string()))?;
    let names: Vec<String> = (0..args.biomarkers).map(|b| format!("bm{b}")).collect();
    let width = args.subjects.to_string().len();
    let ids: Vec<String> = (1..=args.subjects)
        .map(|m| format!("s{m:0width$}"))
        .collect();
    let csv = data_csv(&names, &ids, &sim.data);
    let model = ModelJson {
        biomarkers: &names,
        z_vals: vec![args.zvals.clone(); args.biomarkers],
        z_max: vec![args.zmax; args.biomarkers],
    };
    let truth_json = Truth {
        sequences: truth.sequences().iter().map(Sequence::order).collect(),
        f: truth.fractions(),
        ids: &ids,
        subtypes: &sim.subtypes,
        stages: &sim.stages,
        seed: args.seed,
    };
    create_dir(&args.out)?;
    io::write_atomic(&targets[0], csv.as_bytes())?;
    io::write_json(&targets[1], &model)?;
    io::write_json(&targets[2], &truth_json)?;
    io::write_stdout(&format!(
        "Simulated {} subjects x {} biomarkers ({} events, {} subtype(s)) into {}\n",
        args.subjects,
        args.biomarkers,
        events.n_events(),
        args.subtypes,
        display(&args.out)
    ))
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Validates the options; returns the events and the subtype fractions.
fn check(args: &SimulateArgs) -> Result<(EventSet, Vec<f64>), CliError> {
    let bad = |m: String| Err(CliError::new(m));
    if args.subjects == 0 {
        return bad("--subjects must be at least 1".into());
    }
    if args.biomarkers == 0 {
        return bad("--biomarkers must be at least 1".into());
    }
    if args.subjects.saturating_mul(args.biomarkers) > MAX_VALUES {
        return bad(format!(
            "--subjects x --biomarkers = {} values; at most {MAX_VALUES}",
            args.subjects as u128 * args.biomarkers as u128
        ));
    }
    if args.zvals.is_empty() || args.zvals.iter().any(|z| !z.is_finite() || *z <= 0.0) {
        return bad(format!(
            "--zvals {:?}: thresholds must be positive finite numbers",
            args.zvals
        ));
    }
    if args.zvals.windows(2).any(|w| w[1] <= w[0]) {
        return bad(format!(
            "--zvals {:?}: thresholds must be strictly increasing",
            args.zvals
        ));
    }
    let top = args.zvals[args.zvals.len() - 1];
    if !args.zmax.is_finite() || args.zmax <= top {
        return bad(format!(
            "--zmax {} must be finite and above the largest threshold {top}",
            args.zmax
        ));
    }
    if args.subtypes == 0 {
        return bad("--subtypes must be at least 1".into());
    }
    if args.subtypes > args.subjects {
        return bad(format!(
            "--subtypes {} exceeds --subjects {}",
            args.subtypes, args.subjects
        ));
    }
    for (name, v) in [
        ("--missing-fraction", args.missing_fraction),
        ("--control-fraction", args.control_fraction),
    ] {
        if !(0.0..1.0).contains(&v) {
            return bad(format!("{name} {v} must be in [0, 1)"));
        }
    }
    let fractions = match &args.fractions {
        None => vec![1.0 / args.subtypes as f64; args.subtypes],
        Some(f) => {
            if f.len() != args.subtypes {
                return bad(format!(
                    "--fractions has {} values but --subtypes is {}",
                    f.len(),
                    args.subtypes
                ));
            }
            if f.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return bad(format!("--fractions {f:?}: each must be positive"));
            }
            let total: f64 = f.iter().sum();
            if (total - 1.0).abs() > 1e-6 {
                return bad(format!("--fractions {f:?} sum to {total}, not 1"));
            }
            f.clone()
        }
    };
    let events = EventSet::uniform(args.biomarkers, &args.zvals, args.zmax)
        .map_err(|e| CliError::new(format!("--biomarkers and --zvals: {e}")))?;
    Ok((events, fractions))
}

/// The data CSV: a header `id,bm0,...`, one row per subject, empty cells missing.
fn data_csv(names: &[String], ids: &[String], data: &Dataset) -> String {
    let values = data.values();
    let mut out = String::with_capacity(ids.len() * (names.len() * 8 + 8));
    out.push_str("id");
    for n in names {
        out.push(',');
        out.push_str(n);
    }
    out.push('\n');
    for (m, id) in ids.iter().enumerate() {
        out.push_str(id);
        for b in 0..names.len() {
            let _ = write!(out, ",{}", format_cell(values[[m, b]]));
        }
        out.push('\n');
    }
    out
}
