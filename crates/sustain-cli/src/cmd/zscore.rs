//! `sustain zscore`: raw biomarker values to covariate-adjusted z-scores against a
//! control group, as in the pySuStaIn tutorial (numerics in [`crate::zscore`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::cmd::shared_args::OverwriteInputs;
use crate::error::CliError;
use crate::io::{self, Cell, CsvTable};
use crate::zscore::zscore_against_controls;

/// Arguments of `sustain zscore`.
#[derive(Debug, Clone, clap::Args)]
pub struct ZscoreArgs {
    /// CSV of raw values with a header row, one row per subject (controls and
    /// patients). Empty cells, NA, NaN and nan are missing values.
    #[arg(long, value_name = "RAW.csv")]
    pub raw: PathBuf,

    /// Column that tells controls from the other subjects.
    #[arg(long, value_name = "COLUMN")]
    pub control_column: String,

    /// Value of --control-column that marks a control (compared as text, or as
    /// numbers when both are numbers: 0 matches 0.0).
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub control_value: String,

    /// Comma-separated covariates regressed out on the controls (e.g. Age,Headsize)
    /// [default: none; z-scores against the controls' mean and sd].
    #[arg(long, value_name = "C1,C2", value_delimiter = ',')]
    pub covariates: Vec<String>,

    /// Comma-separated biomarkers that decrease with disease (e.g. volumes); their
    /// z-scores are negated so that larger is always more abnormal [default: none].
    #[arg(long, value_name = "B1,B3", value_delimiter = ',')]
    pub flip: Vec<String>,

    /// Comma-separated biomarker columns to z-score, in this order [default: every
    /// numeric column except the id, control and covariate columns; columns without
    /// any number are skipped].
    #[arg(long, value_name = "B1,B2", value_delimiter = ',')]
    pub biomarkers: Vec<String>,

    /// Column of subject ids, copied as the first column of the output [default:
    /// none; the output has only the biomarkers, rows in input order].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,

    /// Output CSV: the id column (if given), then one z-score column per biomarker;
    /// missing values stay empty. Written atomically.
    #[arg(long, value_name = "Z.csv")]
    pub out: PathBuf,

    #[command(flatten)]
    pub overwrite: OverwriteInputs,
}

/// Per-biomarker fit, printed as JSON on stdout.
#[derive(Debug, Serialize)]
struct BiomarkerReport {
    name: String,
    flipped: bool,
    /// Intercept, then one slope per covariate (raw units).
    coefficients: Vec<f64>,
    residual_sd: f64,
    n_controls_used: usize,
    /// Mean z of the non-controls (NaN -> null when there are none): positive when
    /// the non-controls are more abnormal than the controls in the output's sense.
    mean_z_non_controls: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ZscoreReport {
    out: String,
    n_subjects: usize,
    n_controls: usize,
    covariates: Vec<String>,
    biomarkers: Vec<BiomarkerReport>,
}

/// Runs `sustain zscore`: writes the z-score CSV and prints a JSON summary of every
/// fit on stdout; hints about biomarkers that may need `--flip` go to stderr.
pub fn run(args: &ZscoreArgs) -> Result<(), CliError> {
    crate::overwrite::refuse_inputs(&args.out, &[("--raw", &args.raw)], args.overwrite.force)?;
    let table = CsvTable::read(&args.raw)?;
    let control_col = table.column_index(&args.control_column)?;
    if let Some(r) = table
        .rows
        .iter()
        .position(|row| row[control_col].is_empty())
    {
        return Err(table.cell_error(
            r,
            control_col,
            "empty: every row must say whether it is a control",
        ));
    }
    let id_col = table.optional_column_index(args.id_column.as_deref())?;
    let covariate_cols = distinct_columns(&table, &args.covariates, "--covariates")?;
    let covariates = covariate_cols
        .iter()
        .map(|&c| table.numeric_column(c))
        .collect::<Result<Vec<_>, _>>()?;

    let is_control: Vec<bool> = table
        .rows
        .iter()
        .map(|row| same_value(&row[control_col], &args.control_value))
        .collect();
    // The regression needs every covariate of a control.
    for (&col, values) in covariate_cols.iter().zip(&covariates) {
        if let Some(r) = (0..table.n_rows()).find(|&r| is_control[r] && values[r].is_nan()) {
            return Err(table.cell_error(
                r,
                col,
                "a control with a missing covariate; fill it in or remove the row",
            ));
        }
    }
    let n_controls = is_control.iter().filter(|&&c| c).count();
    if n_controls == 0 {
        return Err(no_control_error(&table, control_col, &args.control_value));
    }

    let reserved: BTreeSet<usize> = covariate_cols
        .iter()
        .copied()
        .chain(id_col)
        .chain(Some(control_col))
        .collect();
    // Hints for stderr, printed only when the run succeeds (an error is one line).
    let mut notes = Vec::new();
    let biomarker_cols = if args.biomarkers.is_empty() {
        let (cols, skipped) = default_biomarkers(&table, &reserved)?;
        if !skipped.is_empty() {
            notes.push(format!(
                "skipping columns without numbers: {} (pass --biomarkers to choose the columns)",
                skipped.join(", ")
            ));
        }
        cols
    } else {
        let cols = distinct_columns(&table, &args.biomarkers, "--biomarkers")?;
        if let Some(&c) = cols.iter().find(|c| reserved.contains(c)) {
            return Err(CliError::new(format!(
                "--biomarkers: '{}' is the id, control or a covariate column and cannot be z-scored",
                table.headers[c]
            )));
        }
        cols
    };
    let names: Vec<&str> = biomarker_cols
        .iter()
        .map(|&c| table.headers[c].as_str())
        .collect();
    let flip: BTreeSet<&str> = args.flip.iter().map(String::as_str).collect();
    if let Some(bad) = flip.iter().find(|f| !names.contains(f)) {
        return Err(CliError::new(format!(
            "--flip: '{bad}' is not one of the biomarkers being z-scored ({})",
            names.join(", ")
        )));
    }

    let mut columns = Vec::with_capacity(biomarker_cols.len());
    let mut reports = Vec::with_capacity(biomarker_cols.len());
    for (&col, &name) in biomarker_cols.iter().zip(&names) {
        let values = table.numeric_column(col)?;
        let flipped = flip.contains(name);
        let fit = zscore_against_controls(&values, &covariates, &is_control, flipped)
            .map_err(|e| table.error(format!("biomarker '{name}': {e}")))?;
        let patients: Vec<f64> = fit
            .z
            .iter()
            .zip(&is_control)
            .filter(|(z, &c)| !c && z.is_finite())
            .map(|(z, _)| *z)
            .collect();
        let mean_z_non_controls =
            (!patients.is_empty()).then(|| patients.iter().sum::<f64>() / patients.len() as f64);
        if let Some(mean) = mean_z_non_controls.filter(|m| *m < 0.0) {
            let hint = if flipped {
                "it is flipped; remove it from --flip if it increases with disease".to_string()
            } else {
                format!("if it decreases with disease, pass --flip {name}")
            };
            notes.push(format!(
                "biomarker '{name}': non-controls have mean z {mean:.3} (below the controls); {hint}"
            ));
        }
        reports.push(BiomarkerReport {
            name: name.to_string(),
            flipped,
            coefficients: fit.coefficients,
            residual_sd: fit.residual_sd,
            n_controls_used: fit.n_controls_used,
            mean_z_non_controls,
        });
        columns.push(fit.z);
    }

    let bytes = output_csv(&table, id_col, &names, &columns)
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", args.out.display())))?;
    let header = String::from_utf8_lossy(bytes.split(|&b| b == b'\n').next().unwrap_or(&[]))
        .trim_end()
        .to_string();
    crate::overwrite::refuse_foreign_file(&args.out, &header, "zscore", args.overwrite.force)?;
    io::write_atomic(&args.out, &bytes)?;

    let report = ZscoreReport {
        out: args.out.display().to_string(),
        n_subjects: table.n_rows(),
        n_controls,
        covariates: args.covariates.clone(),
        biomarkers: reports,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|e| CliError::new(format!("cannot format the summary: {e}")))?;
    text.push('\n');
    io::write_stdout(&text)?;
    for message in &notes {
        note(message);
    }
    Ok(())
}

/// A hint on stderr (`note: ...`); a failure to write it is ignored.
fn note(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {message}");
}

/// Column indices of `names`, each existing once and named once.
fn distinct_columns(
    table: &CsvTable,
    names: &[String],
    option: &str,
) -> Result<Vec<usize>, CliError> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .map(|name| {
            if !seen.insert(name.as_str()) {
                return Err(CliError::new(format!("{option}: '{name}' is given twice")));
            }
            table.column_index(name)
        })
        .collect()
}

/// Whether a cell holds the control value: equal text, or equal numbers.
fn same_value(cell: &str, value: &str) -> bool {
    let value = value.trim();
    if cell == value {
        return true;
    }
    matches!((io::parse_cell(cell), io::parse_cell(value)), (Cell::Number(a), Cell::Number(b)) if a == b)
}

fn no_control_error(table: &CsvTable, col: usize, value: &str) -> CliError {
    table.error(format!(
        "no row has '{}' = '{value}', so there are no controls (values in that column: {})",
        table.headers[col],
        table.listed_values(col)
    ))
}

/// Every column not in `reserved` that holds at least one number, and the names of
/// the columns skipped for holding no number at all (text labels, empty columns).
fn default_biomarkers<'t>(
    table: &'t CsvTable,
    reserved: &BTreeSet<usize>,
) -> Result<(Vec<usize>, Vec<&'t str>), CliError> {
    let mut cols = Vec::new();
    let mut skipped = Vec::new();
    for c in (0..table.headers.len()).filter(|c| !reserved.contains(c)) {
        let any_number = table
            .rows
            .iter()
            .any(|r| matches!(io::parse_cell(&r[c]), Cell::Number(_) | Cell::Infinite));
        if any_number {
            cols.push(c);
        } else {
            skipped.push(table.headers[c].as_str());
        }
    }
    if cols.is_empty() {
        return Err(table
            .error("no numeric columns to z-score besides the id, control and covariate columns"));
    }
    if let Some(e) = cols.iter().find_map(|&c| table.unnamed_column_error(c)) {
        return Err(e);
    }
    Ok((cols, skipped))
}

fn output_csv(
    table: &CsvTable,
    id_col: Option<usize>,
    names: &[&str],
    columns: &[Vec<f64>],
) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = id_col
        .map(|c| table.headers[c].as_str())
        .into_iter()
        .collect();
    header.extend_from_slice(names);
    writer.write_record(&header)?;
    for (m, row) in table.rows.iter().enumerate() {
        let mut record: Vec<String> = id_col.map(|c| row[c].clone()).into_iter().collect();
        record.extend(columns.iter().map(|z| io::format_cell(z[m])));
        writer.write_record(&record)?;
    }
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}
