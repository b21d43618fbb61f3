//! `sustain mixture`: raw biomarker values to the event / no-event likelihoods of a
//! mixture (event-based) SuStaIn model, by fitting each biomarker's two-component
//! mixture to controls and patients as kde_ebm's `fit_all_gmm_models` does
//! (numerics in [`sustain_model::mixture_fit`]).
//!
//! Writes into `--out DIR`: `p_event.csv` and `p_no_event.csv` (pySuStaIn's `L_yes`
//! and `L_no`), `mixtures.json` (the fitted parameters), `mixtures.svg/.png` (each
//! biomarker's histogram with its fitted components) and, last, `model.json`, which
//! `sustain evaluate` and the other commands read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;

use crate::cmd::shared_args::{IdColumn, Overwrite};
use crate::error::CliError;
use crate::folder_lock::{FolderLock, FOLDER_LOCK};
use crate::io::create_dir;
use crate::io::{self, Cell, CsvTable};
use crate::plot::{draw_mixtures, BiomarkerValues, MixturePanel};
use sustain_model::mixture_fit::{fit_gmm, Fitted, GmmFit};
use sustain_model::mixture_kde::fit_kde;

/// File names written into `--out`.
const P_EVENT: &str = "p_event.csv";
const P_NO_EVENT: &str = "p_no_event.csv";
const MODEL: &str = "model.json";
const FITS: &str = "mixtures.json";
const FIGURE: &str = "mixtures";
/// The `written_by` mark of model.json and mixtures.json: files with it are this
/// command's own and may be replaced by a later run.
const WRITTEN_BY: &str = "sustain mixture";

/// How each biomarker's mixture is fitted (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Method {
    /// Two Gaussians (kde_ebm's `fit_all_gmm_models`).
    #[default]
    Gmm,
    /// Two adaptive kernel density estimates (kde_ebm's `fit_all_kde_models`).
    Kde,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Gmm => "gmm",
            Method::Kde => "kde",
        }
    }
}

/// Arguments of `sustain mixture`.
#[derive(Debug, Clone, clap::Args)]
pub struct MixtureArgs {
    /// CSV of raw values with a header row, one row per subject (controls, patients
    /// and any others). Empty cells, NA, NaN and nan are missing values.
    #[arg(long, value_name = "RAW.csv")]
    pub raw: PathBuf,

    /// Column of --raw holding each subject's diagnosis.
    #[arg(long, value_name = "COLUMN")]
    pub diagnosis_column: String,

    /// Diagnosis of a control (compared as text, or as numbers when both are
    /// numbers: 0 matches 0.0).
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub control_value: String,

    /// Diagnosis of a patient (the cases whose values define the event). Subjects
    /// with any other diagnosis are not used in the fit but get likelihoods too.
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub patient_value: String,

    /// Comma-separated biomarker columns, in this order [default: every column
    /// except the id and diagnosis columns].
    #[arg(long, value_name = "B1,B2", value_delimiter = ',')]
    pub biomarkers: Vec<String>,

    #[command(flatten)]
    pub ids: IdColumn,

    /// How each biomarker's mixture is fitted.
    #[arg(long, value_enum, default_value_t = Method::Gmm)]
    pub method: Method,

    /// Keep the control component at the controls' mean and sd; fit only the
    /// patient component and the mixing fraction (kde_ebm's
    /// `implement_fixed_controls`).
    #[arg(long)]
    pub fix_controls: bool,

    /// Output folder (made if absent).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub overwrite: Overwrite,
}

/// One biomarker's fit, as written to mixtures.json.
#[derive(Debug, Serialize)]
struct FitReport {
    name: String,
    /// Weight of the control component (kde_ebm's `mix`).
    control_fraction: f64,
    n_controls: usize,
    n_patients: usize,
    /// E-M iterations (gmm) or relabelling rounds (kde).
    iterations: usize,
    #[serde(flatten)]
    method: MethodReport,
}

/// What each method adds to a biomarker's report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum MethodReport {
    Gmm {
        control_mean: f64,
        control_sd: f64,
        patient_mean: f64,
        patient_sd: f64,
        neg_log_likelihood: f64,
        converged: bool,
    },
    Kde {
        /// Values in each component after relabelling.
        n_control_labels: usize,
        n_patient_labels: usize,
    },
}

#[derive(Debug, Serialize)]
struct FitsFile<'a> {
    written_by: &'a str,
    raw: String,
    method: &'a str,
    fix_controls: bool,
    n_subjects: usize,
    n_controls: usize,
    n_patients: usize,
    biomarkers: Vec<FitReport>,
}

/// model.json as this command writes it.
#[derive(Debug, Serialize)]
struct ModelJson<'a> {
    model: &'a str,
    biomarkers: &'a [String],
    p_event: &'a str,
    p_no_event: &'a str,
    written_by: &'a str,
}

/// Which subjects are controls or patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Control,
    Patient,
    Other,
}

/// Runs `sustain mixture` (see the module docs).
pub fn run(args: &MixtureArgs) -> Result<(), CliError> {
    let table = CsvTable::read(&args.raw)?;
    let diag_col = table.column_index(&args.diagnosis_column)?;
    if same_value(&args.control_value, &args.patient_value) {
        return Err(CliError::new(format!(
            "--control-value and --patient-value are both '{}'; they must differ",
            args.control_value
        )));
    }
    let id_col = table.optional_column_index(args.ids.name())?;
    if id_col == Some(diag_col) {
        return Err(CliError::new(
            "--id-column and --diagnosis-column name the same column",
        ));
    }
    let groups: Vec<Group> = table
        .rows
        .iter()
        .map(|row| {
            if same_value(&row[diag_col], &args.control_value) {
                Group::Control
            } else if same_value(&row[diag_col], &args.patient_value) {
                Group::Patient
            } else {
                Group::Other
            }
        })
        .collect();
    let count = |g: Group| groups.iter().filter(|&&x| x == g).count();
    let (n_controls, n_patients) = (count(Group::Control), count(Group::Patient));
    for (n, which, value) in [
        (n_controls, "controls", &args.control_value),
        (n_patients, "patients", &args.patient_value),
    ] {
        if n == 0 {
            return Err(no_group_error(&table, diag_col, which, value));
        }
    }

    let reserved: BTreeSet<usize> = id_col.into_iter().chain(Some(diag_col)).collect();
    let biomarker_cols = biomarker_columns(&table, &args.biomarkers, &reserved)?;
    let names: Vec<String> = biomarker_cols
        .iter()
        .map(|&c| table.headers[c].clone())
        .collect();
    let id_header = match id_col {
        Some(c) => table.headers[c].clone(),
        None if names.iter().any(|n| n == "id") => {
            return Err(table.error(
                "a biomarker is named 'id', the name of the outputs' row-number column; pass --id-column",
            ))
        }
        None => "id".to_string(),
    };
    let columns = biomarker_cols
        .iter()
        .map(|&c| table.numeric_column(c))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(r) = (0..table.n_rows()).find(|&r| columns.iter().all(|c| c[r].is_nan())) {
        return Err(table.error(format!(
            "row {}: every biomarker is missing; remove the row (it carries no information)",
            r + 1
        )));
    }

    // Fit every biomarker before anything is written.
    let mut fits = Vec::with_capacity(names.len());
    for (name, values) in names.iter().zip(&columns) {
        let of = |g: Group| -> Vec<f64> {
            values
                .iter()
                .zip(&groups)
                .filter(|(v, &x)| x == g && v.is_finite())
                .map(|(v, _)| *v)
                .collect()
        };
        let (controls, patients) = (of(Group::Control), of(Group::Patient));
        let fit = match args.method {
            Method::Gmm => fit_gmm(&controls, &patients, args.fix_controls).map(Fitted::Gmm),
            Method::Kde => fit_kde(&controls, &patients, args.fix_controls).map(Fitted::Kde),
        }
        .map_err(|e| table.error(format!("column '{name}': {e}")))?;
        fits.push((fit, controls, patients));
    }

    let ids: Vec<String> = match id_col {
        Some(c) => table.column_text(c),
        None => (1..=table.n_rows()).map(|r| r.to_string()).collect(),
    };
    let (p_event, p_no_event, rescaled) = likelihood_tables(&columns, &fits);
    let header = std::iter::once(id_header.as_str())
        .chain(names.iter().map(String::as_str))
        .collect::<Vec<_>>();
    let event_bytes = csv_bytes(&header, &ids, &p_event)?;
    let no_event_bytes = csv_bytes(&header, &ids, &p_no_event)?;
    let reports: Vec<FitReport> = names
        .iter()
        .zip(&fits)
        .map(|(name, (fit, controls, patients))| {
            let (iterations, method) = match fit {
                Fitted::Gmm(g) => (
                    g.iterations,
                    MethodReport::Gmm {
                        control_mean: g.control.mean,
                        control_sd: g.control.sd,
                        patient_mean: g.patient.mean,
                        patient_sd: g.patient.sd,
                        neg_log_likelihood: g.neg_log_likelihood,
                        converged: g.converged,
                    },
                ),
                Fitted::Kde(k) => (
                    k.iterations,
                    MethodReport::Kde {
                        n_control_labels: k.n_control_labels,
                        n_patient_labels: k.n_patient_labels,
                    },
                ),
            };
            FitReport {
                name: name.clone(),
                control_fraction: fit.control_fraction(),
                n_controls: controls.len(),
                n_patients: patients.len(),
                iterations,
                method,
            }
        })
        .collect();
    let fits_file = FitsFile {
        written_by: WRITTEN_BY,
        raw: args.raw.display().to_string(),
        method: args.method.name(),
        fix_controls: args.fix_controls,
        n_subjects: table.n_rows(),
        n_controls,
        n_patients,
        biomarkers: reports,
    };
    let model = ModelJson {
        model: "mixture",
        biomarkers: &names,
        p_event: P_EVENT,
        p_no_event: P_NO_EVENT,
        written_by: WRITTEN_BY,
    };

    // Writing: the folder locked, nothing replaced that is not this command's own.
    if args.out.is_file() {
        return Err(CliError::new(format!(
            "--out {} is a file; give a folder",
            args.out.display()
        )));
    }
    create_dir(&args.out)?;
    let _lock = FolderLock::take(&args.out, FOLDER_LOCK)?;
    refuse_overwrites(args, &header.join(","))?;
    io::write_atomic(&args.out.join(P_EVENT), &event_bytes)?;
    io::write_atomic(&args.out.join(P_NO_EVENT), &no_event_bytes)?;
    io::write_json(&args.out.join(FITS), &fits_file)?;
    let panels: Vec<MixturePanel> = names
        .iter()
        .zip(&fits)
        .map(|(name, (fit, controls, patients))| MixturePanel {
            values: BiomarkerValues {
                name: name.clone(),
                controls: controls.clone(),
                patients: patients.clone(),
            },
            fit: fit.clone(),
        })
        .collect();
    draw_mixtures(&args.out.join(FIGURE), &panels).map_err(|e| CliError::new(e.0))?;
    io::write_json(&args.out.join(MODEL), &model)?;

    let mut text = serde_json::to_string_pretty(&fits_file)
        .map_err(|e| CliError::new(format!("cannot format the summary: {e}")))?;
    text.push('\n');
    io::write_stdout(&text)?;
    let n_other = count(Group::Other);
    if n_other > 0 {
        note(&format!(
            "{n_other} subjects are neither controls nor patients: not used in the fits, but given likelihoods"
        ));
    }
    for (name, (fit, _, _)) in names.iter().zip(&fits) {
        if let Fitted::Gmm(
            fit @ GmmFit {
                converged: false, ..
            },
        ) = fit
        {
            note(&format!(
                "biomarker '{name}': the mixture fit stopped after {} iterations before its tolerance",
                fit.iterations
            ));
        }
    }
    if rescaled > 0 {
        note(&format!(
            "{rescaled} values lie so far from both components that both likelihoods underflow; their two likelihoods were scaled by a common factor (which leaves every posterior unchanged)"
        ));
    }
    Ok(())
}

/// The p_event and p_no_event tables (subjects x biomarkers; NaN = missing) and how
/// many values were rescaled because both likelihoods underflowed.
fn likelihood_tables(
    columns: &[Vec<f64>],
    fits: &[(Fitted, Vec<f64>, Vec<f64>)],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, usize) {
    let n = columns.first().map_or(0, Vec::len);
    let mut yes = vec![vec![f64::NAN; columns.len()]; n];
    let mut no = vec![vec![f64::NAN; columns.len()]; n];
    let mut rescaled = 0;
    for (b, (values, (fit, _, _))) in columns.iter().zip(fits).enumerate() {
        for (m, &x) in values.iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            let (p_no, p_yes, scaled) = fit.likelihoods(x);
            rescaled += usize::from(scaled);
            yes[m][b] = p_yes;
            no[m][b] = p_no;
        }
    }
    (yes, no, rescaled)
}

fn csv_bytes(header: &[&str], ids: &[String], rows: &[Vec<f64>]) -> Result<Vec<u8>, CliError> {
    let fail = |e: &dyn std::fmt::Display| CliError::new(format!("cannot format a CSV: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).map_err(|e| fail(&e))?;
    for (id, row) in ids.iter().zip(rows) {
        let record = std::iter::once(id.clone()).chain(row.iter().map(|&v| io::format_cell(v)));
        writer.write_record(record).map_err(|e| fail(&e))?;
    }
    writer.into_inner().map_err(|e| fail(&e))
}

/// Refuses to write over --raw or over a file in --out that this command did not
/// write (a CSV with another header, a JSON without its mark, figures beside a
/// model.json that is not its own), unless --force.
fn refuse_overwrites(args: &MixtureArgs, header: &str) -> Result<(), CliError> {
    let out = &args.out;
    let outputs = [
        P_EVENT,
        P_NO_EVENT,
        FITS,
        MODEL,
        &format!("{FIGURE}.svg"),
        &format!("{FIGURE}.png"),
    ]
    .map(|name| out.join(name));
    for path in &outputs {
        if crate::overwrite::same_file(path, &args.raw) {
            return Err(CliError::new(format!(
                "--out {} holds the file that --raw reads ({}); choose another --out",
                out.display(),
                args.raw.display()
            )));
        }
    }
    if args.overwrite.force {
        return Ok(());
    }
    let foreign = |path: &Path| {
        CliError::new(format!(
            "{} already exists and was not written by `sustain mixture`; choose another --out, or pass --force to replace it",
            path.display()
        ))
    };
    for name in [P_EVENT, P_NO_EVENT] {
        let path = out.join(name);
        if path.exists() {
            // A header of another biomarker list is fine if the folder is ours.
            let ours = first_line(&path).is_some_and(|l| l == header) || marked(&out.join(MODEL));
            if !ours {
                return Err(foreign(&path));
            }
        }
    }
    for name in [FITS, MODEL] {
        let path = out.join(name);
        if path.exists() && !marked(&path) {
            return Err(foreign(&path));
        }
    }
    for ext in ["svg", "png"] {
        let path = out.join(format!("{FIGURE}.{ext}"));
        if path.exists() && !marked(&out.join(MODEL)) && !marked(&out.join(FITS)) {
            return Err(foreign(&path));
        }
    }
    Ok(())
}

/// Whether `path` is a model.json this command wrote.
fn marked(path: &Path) -> bool {
    crate::overwrite::json_written_by(path, WRITTEN_BY)
}

fn first_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().next().map(|l| l.trim_end().to_string())
}

/// The biomarker columns: those named (each once, none reserved), or every column
/// but the reserved ones.
fn biomarker_columns(
    table: &CsvTable,
    named: &[String],
    reserved: &BTreeSet<usize>,
) -> Result<Vec<usize>, CliError> {
    let cols: Vec<usize> = if named.is_empty() {
        (0..table.headers.len())
            .filter(|c| !reserved.contains(c))
            .collect()
    } else {
        let mut seen = BTreeSet::new();
        let mut cols = Vec::with_capacity(named.len());
        for name in named {
            if !seen.insert(name.as_str()) {
                return Err(CliError::new(format!(
                    "--biomarkers: '{name}' is given twice"
                )));
            }
            let c = table.column_index(name)?;
            if reserved.contains(&c) {
                return Err(CliError::new(format!(
                    "--biomarkers: '{name}' is the id or diagnosis column"
                )));
            }
            cols.push(c);
        }
        cols
    };
    if cols.is_empty() {
        return Err(table.error("no biomarker columns besides the id and diagnosis columns"));
    }
    if let Some(e) = cols.iter().find_map(|&c| table.unnamed_column_error(c)) {
        return Err(e);
    }
    Ok(cols)
}

/// A hint on stderr (`note: ...`); a failure to write it is ignored.
fn note(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {message}");
}

/// Whether a cell holds `value`: equal text, or equal numbers.
fn same_value(cell: &str, value: &str) -> bool {
    let (cell, value) = (cell.trim(), value.trim());
    if cell == value {
        return true;
    }
    matches!((io::parse_cell(cell), io::parse_cell(value)), (Cell::Number(a), Cell::Number(b)) if a == b)
}

fn no_group_error(table: &CsvTable, col: usize, which: &str, value: &str) -> CliError {
    table.error(format!(
        "column '{}': no row has '{value}', so there are no {which} (values in that column: {})",
        table.headers[col],
        table.listed_values(col)
    ))
}
