//! Reading the inputs and writing the outputs of every `sustain` subcommand.
//!
//! All readers return a [`CliError`] whose message names the file and, where it
//! applies, the row, column, biomarker or sequence at fault; none of them panics on
//! bad input.
//!
//! File formats:
//! - **Model** (JSON): `{"biomarkers": [names], "z_vals": [[thresholds per biomarker]],
//!   "z_max": [one per biomarker]}`; other keys (e.g. `"note"`) are ignored. Rows of
//!   `z_vals` may be ragged; a 0 means "no event at that level". See [`read_model`].
//! - **Data** (CSV): a header row, then one row per subject. Empty cells, `NA`, `NaN`
//!   and `nan` are missing values. See [`read_data`].
//! - **Sequences** (JSON): `{"sequences": [[event indices, first to last], ...],
//!   "f": [fractions]}`; `f` may be left out when there is one sequence. Events are
//!   numbered z-score-major (spec section 1). See [`read_sequences`].
//!
//! Row numbers in messages are **1-based data rows**: the header is not counted, so
//! "row 1" is the first subject (line 2 of a file without blank lines).
//! Biomarker and event indices in messages are 0-based, as in the model files.
//!
//! Outputs are written with [`write_atomic`]: to a temporary file in the same folder,
//! then renamed, so a half-written output never looks complete.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use sustain_model::{Dataset, EventOrder, EventSet, Mixture, ModelError, Sequence};

use crate::error::CliError;

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// A model file: biomarker names and the validated event set.
///
/// Invariant: `biomarkers.len() == events.n_biomarkers()`, names are unique, and
/// `biomarkers[b]` is the name of row `b` of `z_vals`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// Biomarker names, in model order (the data columns are taken by these names).
    pub biomarkers: Vec<String>,
    /// The events built from `z_vals` and `z_max`.
    pub events: EventSet,
}

#[derive(Deserialize)]
struct ModelJson {
    biomarkers: Vec<String>,
    z_vals: Vec<Vec<f64>>,
    z_max: Vec<f64>,
}

/// Reads a model file (see the module docs for the format) and validates it with
/// [`EventSet::new`]. Messages name the file and the biomarker (0-based index and
/// name), e.g. `model.json: thresholds of biomarker 2 ('bm2') are not strictly
/// increasing: [1, 3, 2]`.
pub fn read_model(path: &Path) -> Result<ModelFile, CliError> {
    let family = crate::families::family_of(path)?;
    if family != crate::families::Family::ZScore {
        return Err(CliError::in_file(
            path,
            format!(
                "a {} model: this command serves z-score models so far (evaluate and fit serve every family)",
                family.name()
            ),
        ));
    }
    let json: ModelJson = read_json(path)?;
    let n = json.biomarkers.len();
    if n != json.z_vals.len() {
        return Err(CliError::in_file(
            path,
            format!(
                "{n} biomarker names but z_vals has {} rows (one row per biomarker)",
                json.z_vals.len()
            ),
        ));
    }
    if let Some(name) = first_duplicate(&json.biomarkers) {
        return Err(CliError::in_file(
            path,
            format!("biomarker name '{name}' appears more than once"),
        ));
    }
    let events = EventSet::new(&json.z_vals, &json.z_max)
        .map_err(|e| CliError::in_file(path, model_error_message(&e, &json.biomarkers)))?;
    check_z_max(&json.z_vals, &json.z_max, &json.biomarkers)
        .map_err(|why| CliError::in_file(path, why))?;
    Ok(ModelFile {
        biomarkers: json.biomarkers,
        events,
    })
}

/// Refuses a `z_max` that does not exceed its biomarker's top threshold: the
/// piecewise-linear model rises from the last threshold to `z_max`, so a `z_max`
/// at or below it has no last segment. `names` label the biomarkers (may be empty).
pub fn check_z_max(z_vals: &[Vec<f64>], z_max: &[f64], names: &[String]) -> Result<(), String> {
    for (b, (row, &max)) in z_vals.iter().zip(z_max).enumerate() {
        let top = row.iter().copied().fold(0.0_f64, f64::max);
        if max <= top {
            let who = match names.get(b) {
                Some(name) => format!("biomarker {b} ('{name}')"),
                None => format!("biomarker {b}"),
            };
            return Err(format!(
                "z_max {max} of {who} must be larger than its top threshold {top}"
            ));
        }
    }
    Ok(())
}

/// A model error with biomarker indices completed by their names.
fn model_error_message(err: &ModelError, names: &[String]) -> String {
    let who = |b: usize| match names.get(b) {
        Some(name) => format!("biomarker {b} ('{name}')"),
        None => format!("biomarker {b}"),
    };
    match err {
        ModelError::ThresholdsNotIncreasing { biomarker, values } => format!(
            "thresholds of {} are not strictly increasing: {}",
            who(*biomarker),
            format_list(values)
        ),
        ModelError::NegativeThreshold { biomarker, value } => format!(
            "threshold {value} of {} is negative: thresholds must be positive (0 means no event)",
            who(*biomarker)
        ),
        ModelError::NonFiniteModel { what, biomarker } => {
            format!("{what} of {} is not a finite number", who(*biomarker))
        }
        other => other.to_string(),
    }
}

/// `[1, 2.5, 3]`: numbers in their shortest form.
fn format_list(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------
// CSV tables
// ---------------------------------------------------------------------------

/// What a CSV cell holds, by the rules of the data files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// Empty, `NA`, or any spelling of NaN (`NaN`, `nan`, ...).
    Missing,
    /// A finite number.
    Number(f64),
    /// `inf`, `-inf`, `Infinity`, or a number too large for an `f64`.
    Infinite,
    /// Anything else.
    NotANumber,
}

/// Classifies one cell (surrounding whitespace is ignored): `" 1.5 "` is
/// `Number(1.5)`, `"NA"` is `Missing`, `"-inf"` is `Infinite`, `"abc"` is
/// `NotANumber`.
pub fn parse_cell(cell: &str) -> Cell {
    let cell = cell.trim();
    if cell.is_empty() || cell == "NA" {
        return Cell::Missing;
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_nan() => Cell::Missing,
        Ok(v) if v.is_infinite() => Cell::Infinite,
        Ok(v) => Cell::Number(v),
        Err(_) => Cell::NotANumber,
    }
}

/// A CSV file read as text: the header and every data row, each row exactly as long
/// as the header. Cells are trimmed of surrounding whitespace.
///
/// Use it when a subcommand needs columns beyond the biomarkers (covariates, labels);
/// [`read_data`] builds on it.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// The file, as given (used in messages).
    pub path: PathBuf,
    /// Column names, in file order.
    pub headers: Vec<String>,
    /// Data rows (header excluded); `rows[i]` is data row `i + 1` in messages.
    pub rows: Vec<Vec<String>>,
}

impl CsvTable {
    /// Reads `path`. Errors: unreadable file, no header row, a row whose number of
    /// fields differs from the header's, malformed CSV (e.g. invalid UTF-8), and no
    /// data rows.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let file = std::fs::File::open(path).map_err(|e| CliError::read(path, &e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(std::io::BufReader::new(file));
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == 0 {
                    h.trim_start_matches('\u{feff}').trim().to_string()
                } else {
                    h.to_string()
                }
            })
            .collect();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(CliError::in_file(path, "no header row"));
        }
        // An unnamed first column is allowed (pandas writes its index there); it
        // can be no biomarker (see `unnamed_column_error`).
        if let Some(c) = headers
            .iter()
            .skip(1)
            .position(String::is_empty)
            .map(|c| c + 1)
        {
            return Err(CliError::in_file(
                path,
                format!(
                    "column {} of the header has no name{}",
                    c + 1,
                    if c + 1 == headers.len() {
                        " (a comma at the end of the header line?)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(name) = first_duplicate(&headers) {
            return Err(CliError::in_file(
                path,
                format!("column '{name}' appears more than once in the header"),
            ));
        }
        let mut rows = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| csv_error(path, &e))?;
            if record.len() != headers.len() {
                return Err(CliError::in_file(
                    path,
                    format!(
                        "row {} has {} fields but the header has {}",
                        i + 1,
                        record.len(),
                        headers.len()
                    ),
                ));
            }
            rows.push(record.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            return Err(CliError::in_file(path, "no data rows"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            headers,
            rows,
        })
    }

    /// The error for using column `col` when it has no name (only the first column
    /// may be unnamed, see [`CsvTable::read`]).
    pub fn unnamed_column_error(&self, col: usize) -> Option<CliError> {
        self.headers[col].is_empty().then(|| {
            self.error(format!(
                "column {} of the header has no name; name it, or leave it out (pandas: to_csv(index=False))",
                col + 1
            ))
        })
    }

    /// The distinct values of column `col`, quoted and sorted, the first ten and a
    /// count of the rest: what a message shows when a wanted value is absent.
    pub fn listed_values(&self, col: usize) -> String {
        let seen: std::collections::BTreeSet<&str> =
            self.rows.iter().map(|r| r[col].as_str()).collect();
        let mut listed: Vec<String> = seen.iter().take(10).map(|s| format!("'{s}'")).collect();
        if seen.len() > 10 {
            listed.push(format!("... ({} distinct)", seen.len()));
        }
        listed.join(", ")
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// [`Self::column_index`] of an optional column (`--id-column` and the like).
    pub fn optional_column_index(&self, name: Option<&str>) -> Result<Option<usize>, CliError> {
        name.map(|name| self.column_index(name)).transpose()
    }

    /// The index of column `name`. Errors if it is absent (the message lists the
    /// columns) or appears more than once.
    pub fn column_index(&self, name: &str) -> Result<usize, CliError> {
        let mut found = self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.as_str() == name);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(self.error(format!(
                "column '{name}' appears more than once in the header"
            ))),
            (None, _) => Err(self.error(format!(
                "no column '{name}' (columns: {})",
                self.headers.join(", ")
            ))),
        }
    }

    /// The raw text of column `col` (trimmed), one entry per data row.
    pub fn column_text(&self, col: usize) -> Vec<String> {
        self.rows.iter().map(|r| r[col].clone()).collect()
    }

    /// Cell `(row, col)` (0-based) as a number: NaN when missing; an error naming the
    /// row (1-based) and column when it is not a number or is infinite.
    pub fn number(&self, row: usize, col: usize) -> Result<f64, CliError> {
        let text = &self.rows[row][col];
        match parse_cell(text) {
            Cell::Missing => Ok(f64::NAN),
            Cell::Number(v) if v.abs() > sustain_model::data::MAX_ABS_VALUE => Err(self
                .cell_error(
                    row,
                    col,
                    format!("value {v:e} is too large (beyond 1e150 the likelihood overflows)"),
                )),
            Cell::Number(v) => Ok(v),
            Cell::Infinite => Err(self.cell_error(row, col, "infinite value")),
            Cell::NotANumber => Err(self.cell_error(row, col, format!("'{text}' is not a number"))),
        }
    }

    /// Column `col` as numbers (NaN = missing), failing at the first bad cell.
    pub fn numeric_column(&self, col: usize) -> Result<Vec<f64>, CliError> {
        (0..self.rows.len()).map(|r| self.number(r, col)).collect()
    }

    /// `<file>: <message>`.
    pub fn error(&self, message: impl fmt::Display) -> CliError {
        CliError::in_file(&self.path, message)
    }

    /// `<file>: row <row+1>, column '<name>': <message>`.
    pub fn cell_error(&self, row: usize, col: usize, message: impl fmt::Display) -> CliError {
        self.error(format!(
            "row {}, column '{}': {message}",
            row + 1,
            self.headers[col]
        ))
    }
}

fn csv_error(path: &Path, err: &csv::Error) -> CliError {
    match err.kind() {
        csv::ErrorKind::Io(e) => CliError::read(path, e),
        _ => CliError::in_file(path, err),
    }
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// Which columns of a data file are the biomarkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataColumns<'a> {
    /// These columns, in this order (normally the model's biomarker names); other
    /// columns are ignored. A name absent from the header is an error.
    Named(&'a [String]),
    /// Every column except this one (and except the id column), in file order; all
    /// must be numeric.
    #[allow(dead_code)] // for subcommands that read data without a model
    AllNumericExcept(Option<&'a str>),
}

/// A data file read for a model: subject ids, biomarker names and the validated
/// z-scores.
///
/// Invariant: `ids.len() == dataset.n_subjects()`, `biomarkers.len() ==
/// dataset.n_biomarkers()`, and row `m` of `dataset` is data row `m + 1` of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTable {
    /// One id per subject: the id column's text, or the 1-based row number.
    pub ids: Vec<String>,
    /// Biomarker names, in the order of the dataset's columns.
    pub biomarkers: Vec<String>,
    /// The values (NaN = missing); every subject has at least one observed value.
    pub dataset: Dataset,
    /// The raw text of the extra columns asked for with [`read_data_keeping`], by
    /// column name (one entry per subject).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Reads a data file: the header row is required; the biomarker columns are chosen
/// by `columns`; `id_column`, if given, must exist and gives the subject ids
/// (otherwise ids are the 1-based row numbers).
///
/// Missing values: empty cell, `NA`, `NaN`, `nan`. Errors name the file and, for a
/// bad cell, its 1-based data row and column:
/// `data.csv: row 7, column 'bm3': 'abc' is not a number`,
/// `data.csv: row 7, column 'bm3': infinite value`; also a subject with every
/// biomarker missing, a header-only file (`no data rows`), a row with the wrong
/// number of fields, and a biomarker absent from the header.
pub fn read_data(
    path: &Path,
    columns: DataColumns<'_>,
    id_column: Option<&str>,
) -> Result<DataTable, CliError> {
    read_data_keeping(path, columns, id_column, &[])
}

/// [`read_data`], also keeping the raw text of the columns named in `keep` (e.g. a
/// label column for stratified cross-validation) in [`DataTable::extra`]. Each must
/// exist.
pub fn read_data_keeping(
    path: &Path,
    columns: DataColumns<'_>,
    id_column: Option<&str>,
    keep: &[&str],
) -> Result<DataTable, CliError> {
    let table = CsvTable::read(path)?;
    let id_col = table.optional_column_index(id_column)?;
    let biomarker_cols: Vec<usize> = match columns {
        DataColumns::Named(names) => names
            .iter()
            .map(|name| {
                table.column_index(name).map_err(|_| {
                    if table.headers.iter().filter(|h| *h == name).count() > 1 {
                        table.error(format!(
                            "biomarker '{name}' appears more than once in the header"
                        ))
                    } else {
                        table.error(format!(
                            "biomarker '{name}' of the model is not a column of the data (columns: {})",
                            table.headers.join(", ")
                        ))
                    }
                })
            })
            .collect::<Result<_, _>>()?,
        DataColumns::AllNumericExcept(except) => {
            let except_col = table.optional_column_index(except)?;
            let cols: Vec<usize> = (0..table.headers.len())
                .filter(|&c| Some(c) != except_col && Some(c) != id_col)
                .collect();
            let names: Vec<String> = cols.iter().map(|&c| table.headers[c].clone()).collect();
            if let Some(name) = first_duplicate(&names) {
                return Err(table.error(format!(
                    "column '{name}' appears more than once in the header"
                )));
            }
            if cols.is_empty() {
                return Err(table.error("no biomarker columns"));
            }
            if let Some(e) = cols.iter().find_map(|&c| table.unnamed_column_error(c)) {
                return Err(e);
            }
            cols
        }
    };
    let extra = keep
        .iter()
        .map(|name| {
            let col = table.column_index(name)?;
            Ok((name.to_string(), table.column_text(col)))
        })
        .collect::<Result<BTreeMap<_, _>, CliError>>()?;

    let ids: Vec<String> = match id_col {
        Some(c) => table.column_text(c),
        None => (1..=table.n_rows()).map(|r| r.to_string()).collect(),
    };
    if let Some(c) = id_col {
        let mut first_row: std::collections::HashMap<&str, usize> = Default::default();
        for (r, id) in ids.iter().enumerate() {
            if id.is_empty() {
                return Err(table.cell_error(r, c, "empty subject id"));
            }
            if let Some(earlier) = first_row.insert(id.as_str(), r) {
                return Err(table.cell_error(
                    r,
                    c,
                    format!(
                        "subject id '{id}' is also the id of row {}; ids must be unique",
                        earlier + 1
                    ),
                ));
            }
        }
    }
    let mut rows = Vec::with_capacity(table.n_rows());
    for (r, id) in ids.iter().enumerate() {
        let row = biomarker_cols
            .iter()
            .map(|&c| table.number(r, c))
            .collect::<Result<Vec<f64>, _>>()?;
        if row.iter().all(|v| v.is_nan()) {
            let id = match id_col {
                Some(_) => format!(" (id '{id}')"),
                None => String::new(),
            };
            return Err(table.error(format!("row {}{id}: every biomarker is missing", r + 1)));
        }
        rows.push(row);
    }
    let dataset = Dataset::from_rows(&rows).map_err(|e| table.error(e))?;
    Ok(DataTable {
        ids,
        biomarkers: biomarker_cols
            .iter()
            .map(|&c| table.headers[c].clone())
            .collect(),
        dataset,
        extra,
    })
}

/// The raw text of column `name` of a CSV file, one entry per data row (trimmed).
/// Useful for labels (e.g. diagnosis for stratified cross-validation).
#[allow(dead_code)] // API for the cross-validation subcommand
pub fn read_column(path: &Path, name: &str) -> Result<Vec<String>, CliError> {
    let table = CsvTable::read(path)?;
    let col = table.column_index(name)?;
    Ok(table.column_text(col))
}

// ---------------------------------------------------------------------------
// Sequences
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct SequencesJson {
    sequences: Vec<Vec<usize>>,
    #[serde(default)]
    f: Option<Vec<f64>>,
}

/// Reads a sequences file (see the module docs) and validates it against `events`:
/// every sequence with [`Sequence::new`], the fractions with [`Mixture::new`]
/// (non-negative, one per sequence, summing to 1 within 1e-6). `f` defaults to `[1]`
/// when there is one sequence. Sequence numbers in messages are 1-based:
/// `S.json: sequence 2 of 3: invalid sequence: event 5 (biomarker 1, z = 2) comes
/// before event 1 (z = 1)`.
pub fn read_sequences(path: &Path, events: &EventOrder) -> Result<Mixture, CliError> {
    let json: SequencesJson = read_json(path)?;
    let n = json.sequences.len();
    if n == 0 {
        return Err(CliError::in_file(path, "'sequences' is empty"));
    }
    let fractions = match json.f {
        Some(f) => f,
        None if n == 1 => vec![1.0],
        None => {
            return Err(CliError::in_file(
                path,
                format!("'f' (the subtype fractions) is required when there are {n} sequences"),
            ))
        }
    };
    let sequences = json
        .sequences
        .iter()
        .enumerate()
        .map(|(i, order)| {
            Sequence::new(events, order)
                .map_err(|e| CliError::in_file(path, format!("sequence {} of {n}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Mixture::new(sequences, fractions).map_err(|e| CliError::in_file(path, e))
}

// ---------------------------------------------------------------------------
// JSON and output
// ---------------------------------------------------------------------------

/// Reads and deserialises a JSON file; unknown keys are ignored unless `T` says
/// otherwise. Errors name the file and the line/column serde reports.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::read(path, &e))?;
    // A byte-order mark (some editors write one) is not part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    serde_json::from_str(text).map_err(|e| CliError::in_file(path, format!("invalid JSON: {e}")))
}

/// Writes `bytes` to `path` atomically: first to a temporary file in the same folder,
/// then renamed over `path`, so a half-written output never looks complete. On
/// failure the temporary file is removed and the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    if path.file_name().is_none() {
        return Err(CliError::new(format!(
            "cannot write {}: not a file name",
            path.display()
        )));
    }
    let tmp = temp_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::write(path, &e)
    })
}

/// A temporary name for writing `path`: `.NAME.PID-N.tmp` in its folder, N counted
/// per process (the name [`write_atomic`] writes to; also for outputs written as a
/// stream and then renamed, and figures).
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Serialises `value` as pretty JSON (with a final newline) and writes it with
/// [`write_atomic`].
#[allow(dead_code)] // API for the subcommands that write results
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Writes `text` to standard output; a closed pipe or other failure is an error, not
/// a panic.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::new(format!("cannot write to standard output: {e}")))
}

/// A number for a CSV cell: the shortest text that reads back to the same `f64`;
/// NaN becomes an empty cell (missing) and `-0` becomes `0`.
pub fn format_cell(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else if v == 0.0 {
        "0".to_string()
    } else {
        v.to_string()
    }
}

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The error of reading the data file `p`, as its message.
    fn data_error(p: &Path, columns: DataColumns<'_>, id_column: Option<&str>) -> String {
        read_data(p, columns, id_column).unwrap_err().to_string()
    }

    #[test]
    fn cells() {
        assert_eq!(parse_cell(" 1.5 "), Cell::Number(1.5));
        assert_eq!(parse_cell("-2e-3"), Cell::Number(-2e-3));
        for m in ["", "  ", "NA", "NaN", "nan"] {
            assert_eq!(parse_cell(m), Cell::Missing, "{m:?}");
        }
        for i in ["inf", "-inf", "Infinity", "-Infinity", "1e999"] {
            assert_eq!(parse_cell(i), Cell::Infinite, "{i:?}");
        }
        for x in ["abc", "1,5", "1.2.3", "--1"] {
            assert_eq!(parse_cell(x), Cell::NotANumber, "{x:?}");
        }
    }

    #[test]
    fn model_reads_and_names_bad_biomarker() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(
            dir.path(),
            "m.json",
            r#"{"biomarkers": ["a", "b"], "z_vals": [[1, 2], [1, 0]], "z_max": [5, 4], "note": "x"}"#,
        );
        let m = read_model(&ok).unwrap();
        assert_eq!(m.biomarkers, names(&["a", "b"]));
        assert_eq!(m.events.n_events(), 3);

        let bad = write(
            dir.path(),
            "bad.json",
            r#"{"biomarkers": ["b0", "b1", "bm2"], "z_vals": [[1], [1], [1, 3, 2]], "z_max": [5, 5, 5]}"#,
        );
        let e = read_model(&bad).unwrap_err().to_string();
        assert!(
            e.ends_with("bad.json: thresholds of biomarker 2 ('bm2') are not strictly increasing: [1, 3, 2]"),
            "{e}"
        );

        let count = write(
            dir.path(),
            "count.json",
            r#"{"biomarkers": ["a"], "z_vals": [[1], [1]], "z_max": [5, 5]}"#,
        );
        assert!(read_model(&count)
            .unwrap_err()
            .to_string()
            .contains("z_vals has 2 rows"));

        let missing = write(
            dir.path(),
            "missing.json",
            r#"{"z_vals": [[1]], "z_max": [5]}"#,
        );
        let e = read_model(&missing).unwrap_err().to_string();
        assert!(
            e.contains("missing.json: invalid JSON") && e.contains("biomarkers"),
            "{e}"
        );
    }

    #[test]
    fn data_named_columns_ids_missing_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "d.csv",
            "id,b,label,a\ns1,1.5,x,\ns2,NA,y,2\ns3,-1,z,nan\n",
        );
        let bms = names(&["a", "b"]);
        let t = read_data_keeping(&p, DataColumns::Named(&bms), Some("id"), &["label"]).unwrap();
        assert_eq!(t.ids, names(&["s1", "s2", "s3"]));
        assert_eq!(t.biomarkers, bms);
        let v = t.dataset.values();
        assert!(v[[0, 0]].is_nan() && v[[0, 1]] == 1.5);
        assert!(v[[1, 0]] == 2.0 && v[[1, 1]].is_nan());
        assert_eq!(t.extra["label"], names(&["x", "y", "z"]));

        let all = read_data(&p, DataColumns::AllNumericExcept(Some("label")), Some("id")).unwrap();
        assert_eq!(all.biomarkers, names(&["b", "a"]));

        let no_id = read_data(&p, DataColumns::Named(&bms), None).unwrap();
        assert_eq!(no_id.ids, names(&["1", "2", "3"]));
        assert_eq!(read_column(&p, "label").unwrap(), names(&["x", "y", "z"]));
    }

    #[test]
    fn data_errors_name_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let bms = names(&["a", "b"]);
        let cases = [
            (
                "a,b\n1,2\n3,abc\n",
                "row 2, column 'b': 'abc' is not a number",
            ),
            ("a,b\n1,2\n3,-inf\n", "row 2, column 'b': infinite value"),
            ("a,b\n1,2\n,NA\n", "row 2: every biomarker is missing"),
            ("a,b\n", "no data rows"),
            ("", "no header row"),
            ("a,b\n1,2\n3\n", "row 2 has 1 fields but the header has 2"),
            ("a,c\n1,2\n", "biomarker 'b' of the model is not a column"),
        ];
        for (i, (text, expect)) in cases.iter().enumerate() {
            let p = write(dir.path(), &format!("d{i}.csv"), text);
            let e = data_error(&p, DataColumns::Named(&bms), None);
            assert!(e.contains(&format!("d{i}.csv: ")), "{e}");
            assert!(e.contains(expect), "{e} / {expect}");
        }
        let p = write(dir.path(), "id.csv", "a,b\n1,2\n");
        let e = data_error(&p, DataColumns::Named(&bms), Some("RID"));
        assert!(e.contains("no column 'RID'"), "{e}");
        let e = data_error(
            &dir.path().join("absent.csv"),
            DataColumns::Named(&bms),
            None,
        );
        assert!(
            e.starts_with("cannot read ") && e.contains("absent.csv"),
            "{e}"
        );
    }

    #[test]
    fn header_names_must_be_given_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let bms = names(&["a", "b"]);
        let trailing = write(dir.path(), "t.csv", "a,b,\n1,2,\n");
        let e = data_error(&trailing, DataColumns::Named(&bms), None);
        assert!(
            e.contains("t.csv: column 3 of the header has no name (a comma at the end"),
            "{e}"
        );
        let dup = write(dir.path(), "d.csv", "a,b,a\n1,2,3\n");
        let e = data_error(&dup, DataColumns::Named(&bms), None);
        assert!(e.contains("column 'a' appears more than once"), "{e}");
        // A pandas index column (unnamed, first) is ignored when columns are
        // taken by name, and refused as a biomarker.
        let pandas = write(dir.path(), "p.csv", ",a,b\n0,1,2\n1,3,4\n");
        let t = read_data(&pandas, DataColumns::Named(&bms), None).unwrap();
        assert_eq!(t.dataset.values()[[1, 0]], 3.0);
        let e = data_error(&pandas, DataColumns::AllNumericExcept(None), None);
        assert!(e.contains("column 1 of the header has no name"), "{e}");
        let ids = write(dir.path(), "i.csv", "id,a,b\nx,1,2\ny,1,2\nx,3,4\n");
        let e = data_error(&ids, DataColumns::Named(&bms), Some("id"));
        assert!(
            e.contains("i.csv: row 3, column 'id': subject id 'x' is also the id of row 1"),
            "{e}"
        );
    }

    #[test]
    fn z_max_above_the_top_threshold() {
        let bms = names(&["a", "b"]);
        assert!(check_z_max(&[vec![1.0, 2.0], vec![1.0, 0.0]], &[2.5, 1.5], &bms).is_ok());
        let e = check_z_max(&[vec![1.0, 2.0], vec![1.0, 0.0]], &[2.5, 1.0], &bms).unwrap_err();
        assert_eq!(
            e,
            "z_max 1 of biomarker 1 ('b') must be larger than its top threshold 1"
        );
    }

    #[test]
    fn sequences_default_f_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        // events: 0 = (b0, 1), 1 = (b1, 1), 2 = (b0, 2)
        let ev = EventSet::new(&[vec![1.0, 2.0], vec![1.0]], &[5.0, 5.0]).unwrap();
        let one = write(dir.path(), "one.json", r#"{"sequences": [[1, 0, 2]]}"#);
        let m = read_sequences(&one, &ev).unwrap();
        assert_eq!(m.fractions(), &[1.0]);
        let two = write(
            dir.path(),
            "two.json",
            r#"{"sequences": [[1, 0, 2], [0, 1, 2]], "f": [0.25, 0.75]}"#,
        );
        assert_eq!(read_sequences(&two, &ev).unwrap().n_subtypes(), 2);

        let cases = [
            (
                r#"{"sequences": [[1, 0, 2], [2, 0, 1]], "f": [0.5, 0.5]}"#,
                "sequence 2 of 2: invalid sequence: event 2",
            ),
            (
                r#"{"sequences": [[1, 0, 2], [0, 1, 2]], "f": [0.5, 0.4]}"#,
                "invalid fractions",
            ),
            (
                r#"{"sequences": [[1, 0, 2], [0, 1, 2]]}"#,
                "'f' (the subtype fractions) is required",
            ),
            (r#"{"sequences": []}"#, "'sequences' is empty"),
            (
                r#"{"sequences": [[0, 1]]}"#,
                "sequence 1 of 1: invalid sequence: has 2 events",
            ),
        ];
        for (i, (text, expect)) in cases.iter().enumerate() {
            let p = write(dir.path(), &format!("s{i}.json"), text);
            let e = read_sequences(&p, &ev).unwrap_err().to_string();
            assert!(
                e.contains(&format!("s{i}.json: {expect}")),
                "{e} / {expect}"
            );
        }
    }

    #[test]
    fn atomic_write_replaces_and_names_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");

        let bad = dir.path().join("no/such/dir/out.txt");
        let e = write_atomic(&bad, b"x").unwrap_err().to_string();
        assert!(
            e.starts_with("cannot write ") && e.contains("no/such/dir/out.txt"),
            "{e}"
        );
        let e = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(e.starts_with("cannot write "), "{e}");
    }

    #[test]
    fn cell_format_round_trips() {
        assert_eq!(format_cell(f64::NAN), "");
        assert_eq!(format_cell(-0.0), "0");
        let v = 0.1 + 0.2;
        assert_eq!(format_cell(v).parse::<f64>().unwrap(), v);
    }
}
