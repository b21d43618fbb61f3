//! `sustain suggest-model`: a z-score model (model.json) proposed from the data:
//! per biomarker, how the patients' z-scores are distributed, the thresholds that
//! enough patients reach and a `z_max` near their 95th percentile (the rule is in
//! [`crate::suggest`]), with the reasoning printed and a figure of each
//! distribution.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cmd::shared_args::OverwriteInputs;
use crate::error::CliError;
use crate::io::{self, parse_cell, Cell, CsvTable};
use crate::plot::{draw_zscores, BiomarkerValues, ZscorePanel};
use crate::suggest::{propose, Proposal, Rule, REPORTED_PERCENTILES};

/// The `written_by` mark of the model.json this command writes.
const WRITTEN_BY: &str = "sustain suggest-model";

/// Arguments of `sustain suggest-model`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuggestModelArgs {
    /// Z-score CSV with a header row (as `sustain zscore` writes): one row per
    /// subject; every numeric column other than the id and controls columns is a
    /// biomarker unless --biomarkers names them.
    #[arg(long, value_name = "Z.csv")]
    pub data: PathBuf,

    /// Column of subject ids (not a biomarker) [default: none].
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,

    /// Column telling controls from patients; the rule looks at the patients only
    /// [default: none; every row is a patient].
    #[arg(long, value_name = "COLUMN", requires = "control_value")]
    pub controls_column: Option<String>,

    /// A CSV holding --controls-column when --data does not (e.g. the raw file that
    /// `sustain zscore` read): its rows are matched to the data's by --id-column
    /// when both have it, else row by row [default: --data].
    #[arg(long, value_name = "FILE.csv", requires = "controls_column")]
    pub labels: Option<PathBuf>,

    /// The value of --controls-column that marks a control.
    #[arg(long, value_name = "VALUE", requires = "controls_column")]
    pub control_value: Option<String>,

    /// Comma-separated biomarker columns [default: every numeric column but the id
    /// and controls columns].
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub biomarkers: Option<Vec<String>>,

    /// Least share of patients that must reach a threshold for it to be kept.
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    pub min_share: f64,

    /// Most thresholds per biomarker (z = 1, 2, ...).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_thresholds: usize,

    /// The percentile of the patients' z-scores that z_max follows (rounded).
    #[arg(long, value_name = "P", default_value_t = 95.0)]
    pub percentile: f64,

    /// The data are raw ordinal scores (whole numbers from 0): propose an ordinal
    /// model (score_vals: the scores that at least --min-share of the patients
    /// reach, up to --max-thresholds; with --p-correct) instead of a z-score one.
    #[arg(long)]
    pub scores: bool,

    /// With --scores: the probability that a score is recorded correctly (the
    /// pySuStaIn ordinal tutorial simulates 0.9; lower it for noisier ratings).
    #[arg(long, value_name = "P", default_value_t = 0.9, requires = "scores")]
    pub p_correct: f64,

    /// The model file to write (for `fit --model`); the figure goes beside it as
    /// <name>_zscores.svg/.png.
    #[arg(long, value_name = "MODEL.json")]
    pub out: PathBuf,

    #[command(flatten)]
    pub overwrite: OverwriteInputs,
}

/// model.json as this command writes it (the format `fit --model` reads, with
/// extra keys it ignores).
#[derive(Serialize)]
struct ModelOut<'a> {
    written_by: &'a str,
    note: String,
    biomarkers: &'a [String],
    z_vals: Vec<Vec<f64>>,
    z_max: Vec<f64>,
}

/// An ordinal model.json as this command writes it (`fit --model ... --data
/// scores.csv` reads it).
#[derive(Serialize)]
struct OrdinalOut<'a> {
    written_by: &'a str,
    note: String,
    model: &'a str,
    biomarkers: &'a [String],
    score_vals: Vec<Vec<f64>>,
    p_correct: f64,
}

/// The data, split: per biomarker the patients' and controls' observed values.
struct Groups {
    names: Vec<String>,
    patients: Vec<Vec<f64>>,
    controls: Vec<Vec<f64>>,
}

/// Runs `sustain suggest-model`.
pub fn run(args: &SuggestModelArgs) -> Result<(), CliError> {
    let rule = check_rule(args)?;
    crate::overwrite::refuse_inputs(&args.out, &[("--data", &args.data)], args.overwrite.force)?;
    if args.out.is_dir() {
        return Err(CliError::new(format!(
            "--out {} is a folder; give a file name (e.g. model.json)",
            args.out.display()
        )));
    }
    let figure_stem = figure_stem(&args.out);
    refuse_foreign_outputs(&args.out, &figure_stem, args.overwrite.force)?;
    let groups = read_groups(args)?;
    let proposals: Vec<Proposal> = groups.patients.iter().map(|p| propose(p, &rule)).collect();
    let width = proposals.iter().map(|p| p.z_vals.len()).max().unwrap_or(1);
    let model = ModelOut {
        written_by: WRITTEN_BY,
        note: format!(
            "proposed from {}: thresholds reached by at least {}% of the patients (at most {}), z_max the rounded {}th percentile of their z-scores; check it before fitting",
            args.data.display(),
            fmt_share(rule.min_share),
            rule.max_thresholds,
            rule.percentile
        ),
        biomarkers: &groups.names,
        // Padded with 0 (no event) to one width, as pySuStaIn's Z_vals.
        z_vals: proposals
            .iter()
            .map(|p| {
                let mut row = p.z_vals.clone();
                row.resize(width, 0.0);
                row
            })
            .collect(),
        z_max: proposals.iter().map(|p| p.z_max).collect(),
    };
    let panels: Vec<ZscorePanel> = proposals
        .iter()
        .enumerate()
        .map(|(b, p)| ZscorePanel {
            values: BiomarkerValues {
                name: groups.names[b].clone(),
                controls: groups.controls[b].clone(),
                patients: groups.patients[b].clone(),
            },
            z_vals: p.z_vals.clone(),
            z_max: p.z_max,
        })
        .collect();
    let figures = draw_zscores(&figure_stem, &panels).map_err(|e| CliError::new(e.0))?;
    // model.json last: a run that stops early leaves no model that looks finished.
    if args.scores {
        io::write_json(&args.out, &ordinal_model(args, &groups, &model, &rule)?)?;
    } else {
        io::write_json(&args.out, &model)?;
    }
    let mut text = reasoning(
        &groups,
        &proposals,
        &rule,
        !groups.controls.iter().all(Vec::is_empty),
    );
    if args.scores {
        text.insert_str(
            0,
            &format!(
                "Scores: a score s counts as reached when a patient's score is at least s, so the \
                 kept thresholds below are the proposed score_vals (z_max does not apply); \
                 p_correct {}.\n",
                args.p_correct
            ),
        );
    }
    let _ = writeln!(text, "files written:\n  {}", args.out.display());
    for f in figures {
        let _ = writeln!(text, "  {}", f.display());
    }
    io::write_stdout(&text)
}

/// The ordinal model of `--scores`: the thresholds the rule kept are the scores
/// (a score is reached when the patient's score is at least it).
fn ordinal_model<'a>(
    args: &SuggestModelArgs,
    groups: &'a Groups,
    z_model: &ModelOut,
    rule: &Rule,
) -> Result<OrdinalOut<'a>, CliError> {
    if !(args.p_correct > 0.0 && args.p_correct <= 1.0) {
        return Err(CliError::new(format!(
            "--p-correct {} must be above 0 and at most 1",
            args.p_correct
        )));
    }
    Ok(OrdinalOut {
        written_by: WRITTEN_BY,
        note: format!(
            "proposed from {}: scores reached by at least {}% of the patients (at most {}), p_correct {}; check it before fitting",
            args.data.display(),
            fmt_share(rule.min_share),
            rule.max_thresholds,
            args.p_correct
        ),
        model: "ordinal",
        biomarkers: &groups.names,
        score_vals: z_model.z_vals.clone(),
        p_correct: args.p_correct,
    })
}

fn fmt_share(share: f64) -> String {
    let pct = 100.0 * share;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{}", pct.round())
    } else {
        format!("{pct:.1}")
    }
}

/// The rule's settings, checked.
fn check_rule(args: &SuggestModelArgs) -> Result<Rule, CliError> {
    if !(args.min_share > 0.0 && args.min_share <= 1.0) {
        return Err(CliError::new(format!(
            "--min-share {} must be above 0 and at most 1",
            args.min_share
        )));
    }
    if args.max_thresholds == 0 || args.max_thresholds > 10 {
        return Err(CliError::new(format!(
            "--max-thresholds {} must be 1 to 10",
            args.max_thresholds
        )));
    }
    if !(args.percentile > 0.0 && args.percentile <= 100.0) {
        return Err(CliError::new(format!(
            "--percentile {} must be above 0 and at most 100",
            args.percentile
        )));
    }
    Ok(Rule {
        min_share: args.min_share,
        max_thresholds: args.max_thresholds,
        percentile: args.percentile,
    })
}

/// `<out without .json>_zscores`.
fn figure_stem(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    out.with_file_name(format!("{stem}_zscores"))
}

/// Whether `path` is a model.json this command wrote.
fn written_here(path: &Path) -> bool {
    crate::overwrite::json_written_by(path, WRITTEN_BY)
}

/// Refuses to replace a model.json, or figures beside it, that this command did
/// not write (figures count as ours when the model.json beside them is).
fn refuse_foreign_outputs(out: &Path, figure_stem: &Path, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    let ours = written_here(out);
    if out.exists() && !ours {
        return Err(CliError::new(format!(
            "--out {} already exists and was not written by `sustain suggest-model`; choose another --out, or pass --force to replace it",
            out.display()
        )));
    }
    for ext in ["svg", "png"] {
        let fig = PathBuf::from(format!("{}.{ext}", figure_stem.display()));
        if fig.exists() && !ours {
            return Err(CliError::new(format!(
                "{} already exists and its model.json ({}) is not one `sustain suggest-model` wrote; choose another --out, or pass --force to replace it",
                fig.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// Reads the data: the biomarker columns' values, split into patients and
/// controls. Every error names the file, and a bad cell its row and column.
fn read_groups(args: &SuggestModelArgs) -> Result<Groups, CliError> {
    let table = CsvTable::read(&args.data)?;
    let id_col = table.optional_column_index(args.id_column.as_deref())?;
    let labels = control_labels(args, &table)?;
    let ctl_col = match &args.labels {
        Some(_) => None,
        None => args
            .controls_column
            .as_deref()
            .map(|c| table.column_index(c))
            .transpose()?,
    };
    let cols: Vec<usize> = match &args.biomarkers {
        Some(names) => names
            .iter()
            .map(|n| table.column_index(n.trim()))
            .collect::<Result<_, _>>()?,
        None => (0..table.headers.len())
            .filter(|&c| Some(c) != id_col && Some(c) != ctl_col)
            .collect(),
    };
    if cols.is_empty() {
        return Err(table.error("no biomarker columns"));
    }
    if let Some(e) = cols.iter().find_map(|&c| table.unnamed_column_error(c)) {
        return Err(e);
    }
    let is_control = |cell: &str| -> bool {
        let Some(value) = args.control_value.as_deref() else {
            return false;
        };
        // "0" and "0.0" are the same control value.
        match (parse_cell(cell), parse_cell(value)) {
            (Cell::Number(a), Cell::Number(b)) => a == b,
            _ => cell == value.trim(),
        }
    };
    let controls_rows: Vec<bool> = match (&labels, ctl_col) {
        (Some(labels), _) => labels.iter().map(|l| is_control(l)).collect(),
        (None, Some(col)) => table.rows.iter().map(|r| is_control(&r[col])).collect(),
        (None, None) => vec![false; table.n_rows()],
    };
    if let Some(name) = &args.controls_column {
        if controls_rows.iter().all(|c| *c) {
            return Err(table.error(format!(
                "every row is a control (column '{name}' is '{}' throughout); the rule needs patients",
                args.control_value.as_deref().unwrap_or("")
            )));
        }
    }
    let mut groups = Groups {
        names: cols.iter().map(|&c| table.headers[c].clone()).collect(),
        patients: vec![Vec::new(); cols.len()],
        controls: vec![Vec::new(); cols.len()],
    };
    for (r, &control) in controls_rows.iter().enumerate() {
        for (b, &c) in cols.iter().enumerate() {
            let v = table.number(r, c)?;
            if v.is_nan() {
                continue;
            }
            if args.scores && (v < 0.0 || v.fract() != 0.0) {
                return Err(table.cell_error(
                    r,
                    c,
                    format!("{v} is not a score (--scores reads whole numbers from 0)"),
                ));
            }
            if control {
                groups.controls[b].push(v);
            } else {
                groups.patients[b].push(v);
            }
        }
    }
    if let Some(b) = groups.patients.iter().position(Vec::is_empty) {
        return Err(table.error(format!(
            "column '{}': no patient has a value",
            groups.names[b]
        )));
    }
    Ok(groups)
}

/// With `--labels`: the `--controls-column` value of each data row, from the
/// labels file (matched by `--id-column` when both files have it, else by row).
fn control_labels(
    args: &SuggestModelArgs,
    data: &CsvTable,
) -> Result<Option<Vec<String>>, CliError> {
    let (Some(path), Some(column)) = (&args.labels, &args.controls_column) else {
        return Ok(None);
    };
    let labels = CsvTable::read(path)?;
    let col = labels.column_index(column)?;
    let id = args.id_column.as_deref();
    let ids = id.and_then(|name| {
        Some((
            data.column_index(name).ok()?,
            labels.column_index(name).ok()?,
        ))
    });
    let Some((data_id, labels_id)) = ids else {
        if labels.n_rows() != data.n_rows() {
            return Err(labels.error(format!(
                "{} rows but {} has {}; rows are matched one to one without an --id-column in both",
                labels.n_rows(),
                data.path.display(),
                data.n_rows()
            )));
        }
        return Ok(Some(labels.column_text(col)));
    };
    let by_id: std::collections::HashMap<&str, &str> = labels
        .rows
        .iter()
        .map(|r| (r[labels_id].as_str(), r[col].as_str()))
        .collect();
    (0..data.n_rows())
        .map(|r| {
            let key = data.rows[r][data_id].as_str();
            by_id.get(key).map(|v| v.to_string()).ok_or_else(|| {
                data.cell_error(
                    r,
                    data_id,
                    format!("subject '{key}' is not in --labels {}", path.display()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The printed reasoning, one block per biomarker.
fn reasoning(groups: &Groups, proposals: &[Proposal], rule: &Rule, has_controls: bool) -> String {
    let mut s = format!(
        "Rule: a threshold z = 1, 2, ... (at most {}) is kept while at least {}% of the patients reach it; \
         z_max is their {}th percentile rounded to a whole number (pySuStaIn's tutorial: about the \
         95th percentile), at least one above the top threshold.{}\n",
        rule.max_thresholds,
        fmt_share(rule.min_share),
        rule.percentile,
        if has_controls {
            ""
        } else {
            " No --controls-column: every row counts as a patient."
        }
    );
    let pct_names: Vec<String> = REPORTED_PERCENTILES
        .iter()
        .map(|p| format!("{p}"))
        .collect();
    for (b, p) in proposals.iter().enumerate() {
        let pcts: Vec<String> = p.percentiles.iter().map(|v| format!("{v:.2}")).collect();
        let reach: Vec<String> = p
            .reach
            .iter()
            .enumerate()
            .map(|(i, r)| format!(">= {}: {:.0}%", i + 1, 100.0 * r))
            .collect();
        let z_vals: Vec<String> = p.z_vals.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(
            s,
            "{}: {} patients with a value{}\n  percentiles {}: {}\n  patients reaching z {}\n  proposed z_vals [{}], z_max {} ({}th percentile {:.2})",
            groups.names[b],
            p.n_patients,
            if has_controls {
                format!(", {} controls", groups.controls[b].len())
            } else {
                String::new()
            },
            pct_names.join("/"),
            pcts.join("/"),
            reach.join(", "),
            z_vals.join(", "),
            p.z_max,
            rule.percentile,
            p.high_percentile
        );
        for w in &p.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
    }
    s
}
