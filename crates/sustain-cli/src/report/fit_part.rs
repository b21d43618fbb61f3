//! The sections of the report made from a fit folder: the model and data, and per
//! subtype count the positional variance diagram, the fractions with their
//! intervals, the convergence verdict, the trace and the subjects per subtype and
//! stage.

use std::path::Path;

use serde_json::Value;
use sustain::results::{FitResult, ModelDescriptor, SubtypeModel};
use sustain::sampler::merge::{ESS_THRESHOLD, RHAT_THRESHOLD};

use super::html::{badge, esc, missing_figure, svg_figure, table, Section};
use super::run_record::RunRecord;
use crate::error::CliError;
use crate::io::CsvTable;
use crate::quantiles::quantile;

/// Reads `DIR/results.json` of any family: the schema version first, then, for a
/// z-score fit, every check `stage` and `plot` make; other families are checked
/// for the shapes the report reads ([`shape_error`]).
pub fn read_results(dir: &Path) -> Result<FitResult, CliError> {
    let path = crate::fit_outputs::results_path_of(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::read(&path, &e))?;
    let invalid =
        |why: String| CliError::in_file(&path, format!("not a valid results file: {why}"));
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    crate::results_file::check_version(&value, "results")
        .map_err(|why| CliError::in_file(&path, why))?;
    let mut result: FitResult =
        crate::nanjson::from_value(value).map_err(|e| invalid(e.to_string()))?;
    crate::fit_outputs::load_samples(&mut result, &path)?;
    match result.model_descriptor() {
        ModelDescriptor::Zscore { .. } => {
            crate::results_file::check(&result).map_err(invalid)?;
        }
        _ => {
            if let Some(why) = shape_error(&result) {
                return Err(invalid(why));
            }
        }
    }
    Ok(result)
}

/// What the report indexes, checked for a fit of a family whose events results.json
/// does not let us rebuild: one model per subtype count in order, one fraction per
/// subtype, and traces of the model's shape.
fn shape_error(result: &FitResult) -> Option<String> {
    let n = result.events.len();
    for (i, m) in result.models.iter().enumerate() {
        let k = m.n_subtypes;
        if k != i + 1 || m.mean_f.len() != k || m.pvd.len() != k {
            return Some(format!(
                "models[{i}] is not a model of {} subtype(s)",
                i + 1
            ));
        }
        for c in &m.samples.chains {
            let t = &c.trace;
            if t.n_subtypes != k || t.n_events != n || t.fractions.len() != t.runs.len() * k {
                return Some(format!(
                    "models[{i}]: a chain's trace does not fit the model"
                ));
            }
        }
    }
    None
}

/// The family of a fit, in words.
pub fn family_name(result: &FitResult) -> String {
    match result.model_descriptor() {
        ModelDescriptor::Zscore { .. } => "z-score model (piecewise linear)".into(),
        ModelDescriptor::Mixture => "event-based model (mixture)".into(),
        ModelDescriptor::Ordinal { .. } => "ordinal model (scores)".into(),
        ModelDescriptor::Mixed { .. } => "mixed-type model (z-scores, scores and events)".into(),
        ModelDescriptor::Other { name } => format!("{name} model"),
    }
}

/// A number with `digits` decimals; "undefined" when not finite.
pub fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "undefined".into()
    }
}

/// The "Model and data" section.
pub fn model_section(dir: &Path, result: &FitResult, run: Option<&RunRecord>) -> Section {
    let mut facts: Vec<(String, String)> = vec![
        ("Model".into(), esc(&family_name(result))),
        (
            "Biomarkers".into(),
            format!(
                "{} ({})",
                result.biomarkers.len(),
                esc(&result.biomarkers.join(", "))
            ),
        ),
        ("Events".into(), result.events.len().to_string()),
    ];
    let data = run.and_then(|r| r.data.as_ref());
    let subjects = data
        .map(|d| d.subjects)
        .or_else(|| count_rows(&dir.join("subjects_k1.csv")));
    facts.push((
        "Subjects".into(),
        subjects.map_or("not recorded".into(), |n| n.to_string()),
    ));
    facts.push((
        "Missing values".into(),
        match data {
            Some(d) => format!(
                "{:.1}% of the subject-biomarker values",
                100.0 * d.missing_share
            ),
            None => "not recorded".into(),
        },
    ));
    let st = &result.settings;
    facts.push((
        "Settings".into(),
        format!(
            "1 to {} subtypes; {} E-M start points; {} chains of {} iterations after {} tuning iterations; burn-in {}, thin {}; seed {}",
            st.max_subtypes, st.n_startpoints, st.n_chains, st.n_iterations, st.tuning_iterations,
            st.burn_in, st.thin, st.seed
        ),
    ));
    let mut body = String::from("<dl class=\"facts\">");
    for (k, v) in facts {
        body.push_str(&format!("<dt>{}</dt><dd>{v}</dd>", esc(&k)));
    }
    body.push_str("</dl>\n");
    body.push_str(&events_table(result));
    Section {
        id: "model".into(),
        title: "Model and data".into(),
        body,
    }
}

/// Per biomarker: its events' values (and z_max for a z-score model).
fn events_table(result: &FitResult) -> String {
    let names = sustain::mixed::value_names(&result.model_descriptor(), result.biomarkers.len());
    let zscore = matches!(result.model_descriptor(), ModelDescriptor::Zscore { .. });
    let mut head = vec!["Biomarker".to_string(), "Events".to_string()];
    if zscore {
        head.push("z_max".into());
    }
    let rows: Vec<Vec<String>> = result
        .biomarkers
        .iter()
        .enumerate()
        .map(|(b, bm)| {
            let values: Vec<String> = result
                .events
                .iter()
                .filter(|e| &e.biomarker == bm)
                .map(|e| {
                    let name = names[b];
                    if name.is_empty() {
                        "event".to_string()
                    } else {
                        format!("{name} = {}", short_num(e.z))
                    }
                })
                .collect();
            let mut row = vec![esc(bm), esc(&values.join(", "))];
            if zscore {
                row.push(result.z_max.get(b).map_or(String::new(), |v| short_num(*v)));
            }
            row
        })
        .collect();
    table("The events of each biomarker", &head, &rows, true)
}

/// The section of the model with `k` subtypes.
pub fn model_k_section(dir: &Path, model: &SubtypeModel) -> Result<Section, CliError> {
    let k = model.n_subtypes;
    let mut body = String::new();
    let plural = if k == 1 { "" } else { "s" };
    body.push_str(&format!(
        "<p>Maximum log-likelihood {}; {} merged MCMC samples.</p>\n",
        num(model.ml_loglike, 2),
        model.samples.len()
    ));
    body.push_str("<h3>Positional variance diagram</h3>\n");
    body.push_str(&figure(
        dir,
        &format!("pvd_k{k}.svg"),
        &format!(
            "Positional variance diagram of the model with {k} subtype{plural}: one panel per subtype, biomarkers in rows, stages in columns; a cell's colour strength is the share of MCMC samples placing that event at that stage"
        ),
        "Each row is a biomarker and each column a stage (position in the sequence). A cell's colour shows the event's threshold level; its strength is the share of MCMC samples that put the event at that stage: a sharp diagonal means a well-determined sequence.",
    ));
    if k > 1 {
        body.push_str("<h3>Subtype fractions</h3>\n");
        body.push_str(&fractions_table(model));
    }
    body.push_str("<h3>Convergence</h3>\n");
    body.push_str(&convergence(model));
    body.push_str("<h3>MCMC trace</h3>\n");
    body.push_str(&figure(
        dir,
        &format!("trace_k{k}.svg"),
        &format!("Log-likelihood of every MCMC chain over the iterations, model with {k} subtype{plural}"),
        "Each line is one chain's log-likelihood per iteration. Chains that mix well overlap and wander around the same level without a trend.",
    ));
    let per_chain = format!("pvd_chains_k{k}.svg");
    if !model.diagnostics.converged && dir.join(&per_chain).exists() {
        body.push_str("<h3>Each chain's positional variance diagram</h3>\n");
        body.push_str(&figure(
            dir,
            &per_chain,
            &format!("Each MCMC chain's own positional variance diagram, model with {k} subtype{plural}: one row of panels per chain"),
            "The chains did not converge: each row is one chain's own diagram (subtypes under the merged labels). Where the rows differ, the chains disagree on where those events sit.",
        ));
    }
    body.push_str("<h3>Subjects per subtype and stage</h3>\n");
    body.push_str(&subjects_table(dir, k)?);
    Ok(Section {
        id: format!("k{k}"),
        title: format!("{k} subtype{plural}"),
        body,
    })
}

/// An SVG figure of the folder, or a note that it is missing.
fn figure(dir: &Path, file: &str, label: &str, caption: &str) -> String {
    let how = "<code>sustain plot --fit DIR</code> redraws the figures of a fit.";
    match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => {
            svg_figure(&text, label, &esc(caption)).unwrap_or_else(|| missing_figure(file, how))
        }
        Err(_) => missing_figure(file, how),
    }
}

/// Mean, maximum-likelihood and 95% interval of each subtype's fraction.
fn fractions_table(model: &SubtypeModel) -> String {
    let k = model.n_subtypes;
    let samples = &model.samples;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (c, state) in samples.sample_index() {
        let trace = &samples.chains[c].trace;
        for (s, v) in per.iter_mut().enumerate() {
            v.push(trace.fraction(state, s));
        }
    }
    let rows: Vec<Vec<String>> = per
        .iter_mut()
        .enumerate()
        .map(|(s, v)| {
            v.retain(|x| x.is_finite());
            v.sort_by(f64::total_cmp);
            vec![
                format!("Subtype {}", s + 1),
                num(model.mean_f.get(s).copied().unwrap_or(f64::NAN), 3),
                format!(
                    "{} to {}",
                    num(quantile(v, 0.025), 3),
                    num(quantile(v, 0.975), 3)
                ),
                num(model.ml_f.get(s).copied().unwrap_or(f64::NAN), 3),
            ]
        })
        .collect();
    table(
        "Share of subjects in each subtype: the mean over MCMC samples, the interval holding 95% of the samples (2.5th to 97.5th percentile), and the maximum-likelihood value",
        &[
            "Subtype".into(),
            "Mean fraction".into(),
            "95% interval".into(),
            "Maximum likelihood".into(),
        ],
        &rows,
        true,
    )
}

/// The verdict, each diagnostic with its threshold, and the warnings.
fn convergence(model: &SubtypeModel) -> String {
    let d = &model.diagnostics;
    let mut s = format!(
        "<p class=\"verdict\">Verdict: {}</p>\n",
        badge(d.converged, "converged", "not converged")
    );
    let rhat_row = |name: String, v: f64| {
        vec![
            name,
            num(v, 3),
            format!("below {RHAT_THRESHOLD}"),
            badge(v < RHAT_THRESHOLD, "pass", "fail"),
        ]
    };
    let mut rows = vec![
        rhat_row("R-hat of the log-likelihood".into(), d.rhat_loglike),
        vec![
            "Bulk ESS of the log-likelihood".into(),
            num(d.ess_loglike, 0),
            format!("above {ESS_THRESHOLD}"),
            badge(d.ess_loglike > ESS_THRESHOLD, "pass", "fail"),
        ],
        vec![
            "Tail ESS of the log-likelihood".into(),
            num(d.ess_tail_loglike, 0),
            "reported".into(),
            String::new(),
        ],
    ];
    if model.n_subtypes > 1 {
        for (i, v) in d.rhat_f.iter().enumerate() {
            rows.push(rhat_row(format!("R-hat of fraction {}", i + 1), *v));
        }
    }
    if d.rhat_positions_max.is_nan() {
        rows.push(vec![
            "Worst R-hat over event positions".into(),
            "undefined (no position varied)".into(),
            format!("below {RHAT_THRESHOLD}"),
            String::new(),
        ]);
    } else {
        rows.push(rhat_row(
            "Worst R-hat over event positions".into(),
            d.rhat_positions_max,
        ));
    }
    let acceptance: Vec<String> = d.acceptance.iter().map(|a| num(*a, 2)).collect();
    rows.push(vec![
        "Acceptance rate per chain".into(),
        acceptance.join(", "),
        "reported".into(),
        String::new(),
    ]);
    s.push_str(&table(
        "Convergence diagnostics of the merged chains and the thresholds they are held to",
        &[
            "Diagnostic".into(),
            "Value".into(),
            "Threshold".into(),
            "Result".into(),
        ],
        &rows,
        true,
    ));
    if !d.warnings.is_empty() {
        s.push_str("<ul>");
        for w in &d.warnings {
            s.push_str(&format!("<li>{}</li>", esc(w)));
        }
        s.push_str("</ul>\n");
    }
    s
}

/// The data rows of a CSV file, when it can be read.
fn count_rows(path: &Path) -> Option<usize> {
    CsvTable::read(path).ok().map(|t| t.n_rows())
}

/// Subjects per stage (rows) and subtype (columns), from `subjects_k{K}.csv`.
fn subjects_table(dir: &Path, k: usize) -> Result<String, CliError> {
    let path = dir.join(format!("subjects_k{k}.csv"));
    if !path.is_file() {
        return Ok(format!(
            "<p class=\"note\">{} is not in the folder.</p>\n",
            esc(&format!("subjects_k{k}.csv"))
        ));
    }
    let csv = CsvTable::read(&path)?;
    let sub_col = csv.column_index("ml_subtype")?;
    let stage_col = csv.column_index("ml_stage")?;
    let mut counts: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for r in 0..csv.n_rows() {
        let whole = |col: usize| -> Result<usize, CliError> {
            let v = csv.number(r, col)?;
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(csv.cell_error(r, col, "expected a whole number, 0 or more"))
            }
        };
        let (subtype, stage) = (whole(sub_col)?, whole(stage_col)?);
        if subtype >= k {
            return Err(csv.cell_error(
                r,
                sub_col,
                format!("subtype {subtype} of a model with {k} subtype(s) (numbered from 0)"),
            ));
        }
        counts.entry(stage).or_insert_with(|| vec![0; k])[subtype] += 1;
    }
    let mut head = vec!["Stage".to_string()];
    head.extend((1..=k).map(|s| format!("Subtype {s}")));
    head.push("All".into());
    let mut totals = vec![0usize; k];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (stage, c) in &counts {
        let mut row = vec![stage.to_string()];
        row.extend(c.iter().map(|v| v.to_string()));
        row.push(c.iter().sum::<usize>().to_string());
        totals.iter_mut().zip(c).for_each(|(t, v)| *t += v);
        rows.push(row);
    }
    let mut total_row = vec!["All stages".to_string()];
    total_row.extend(totals.iter().map(|v| v.to_string()));
    total_row.push(totals.iter().sum::<usize>().to_string());
    rows.push(total_row);
    Ok(table(
        &format!(
            "Subjects by most probable subtype and stage (subjects_k{k}.csv); stages without subjects are left out. At stage 0 no event has happened, so the subtype of a stage-0 subject says little."
        ),
        &head,
        &rows,
        true,
    ))
}

/// A threshold as written in model.json: `1`, `2.5`.
fn short_num(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        "undefined".into()
    }
}
