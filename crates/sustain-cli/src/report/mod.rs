//! `report.html`: one self-contained page on a fit folder and/or a
//! cross-validation folder, for the people who read the results (figures inlined
//! as SVG, no scripts, nothing fetched). `sustain report DIR` writes it, and so do
//! `fit`, `merge`, `cv` and `cv-combine` at their end unless `--no-report`.

mod cv_part;
mod fit_part;
pub mod html;
pub mod run_record;

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::folder_lock::{FolderLock, FOLDER_LOCK};
use crate::io;
use html::{esc, Section};
use run_record::{read_run_record, shell_line, write_run_record, DataSummary, RunRecord};

/// `DIR/report.html`.
pub fn report_path(dir: &Path) -> PathBuf {
    dir.join("report.html")
}

/// The page for the fit folder `fit_dir` and/or the cross-validation folder
/// `cv_dir` (at least one).
pub fn build(fit_dir: Option<&Path>, cv_dir: Option<&Path>) -> Result<String, CliError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut lede = Vec::new();
    // One line per part for the reader in a hurry.
    let mut glance: Vec<String> = Vec::new();
    let mut runs: Vec<(String, Option<RunRecord>)> = Vec::new();
    let mut title_dir = None;
    if let Some(dir) = fit_dir {
        let result = fit_part::read_results(dir)?;
        let run = read_run_record(dir);
        let k = result.models.len();
        lede.push(format!(
            "A SuStaIn fit of the {} with 1 to {k} subtype{} of {} biomarkers.",
            fit_part::family_name(&result),
            if k == 1 { "" } else { "s" },
            result.biomarkers.len()
        ));
        glance.push(convergence_glance(&result));
        sections.push(fit_part::model_section(dir, &result, run.as_ref()));
        for model in &result.models {
            sections.push(fit_part::model_k_section(dir, model)?);
        }
        runs.push((format!("The fit ({})", dir.display()), run));
        title_dir = Some(dir);
    }
    if let Some(dir) = cv_dir {
        let cv = cv_part::read_cv(dir)?;
        lede.push(format!(
            "Cross-validation over {} folds of 1 to {} subtypes.",
            cv.loglike_matrix.len(),
            cv.cvic.len()
        ));
        glance.push(cv_part::verdict(&cv));
        sections.push(cv_part::cv_section(dir, &cv));
        runs.push((
            format!("The cross-validation ({})", dir.display()),
            read_run_record(dir),
        ));
        title_dir = title_dir.or(Some(dir));
    }
    let Some(title_dir) = title_dir else {
        return Err(CliError::new(
            "nothing to report: give a fit or a cross-validation folder",
        ));
    };
    sections.push(provenance_section(&runs));
    let name = std::fs::canonicalize(title_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| title_dir.display().to_string());
    let mut head = format!("<p class=\"lede\">{}</p>", esc(&lede.join(" ")));
    head.push_str("<ul class=\"glance\">");
    for line in &glance {
        head.push_str(&format!("<li>{}</li>", esc(line)));
    }
    head.push_str("</ul>");
    Ok(html::page(
        &format!("SuStaIn report: {name}"),
        &head,
        &sections,
    ))
}

/// Which subtype counts' chains converged, in one sentence.
fn convergence_glance(result: &sustain::results::FitResult) -> String {
    let counts = |converged: bool| -> Vec<String> {
        result
            .models
            .iter()
            .filter(|m| m.diagnostics.converged == converged)
            .map(|m| m.n_subtypes.to_string())
            .collect()
    };
    let (yes, no) = (counts(true), counts(false));
    let mut s = String::from("MCMC convergence: ");
    if !yes.is_empty() {
        s.push_str(&format!("converged for {} subtype(s)", yes.join(", ")));
    }
    if !no.is_empty() {
        if !yes.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "NOT converged for {} subtype(s): do not report those models before running longer",
            no.join(", ")
        ));
    }
    s.push('.');
    s
}

/// "How this was made": each folder's command line and version.
fn provenance_section(runs: &[(String, Option<RunRecord>)]) -> Section {
    let mut body = String::new();
    for (what, run) in runs {
        body.push_str(&format!("<h3>{}</h3>\n", esc(what)));
        match run {
            Some(r) => {
                let place = r
                    .working_dir
                    .as_deref()
                    .map(|d| format!(", in <code>{}</code>", esc(d)))
                    .unwrap_or_default();
                body.push_str(&format!(
                    "<p>Made by sustain {}{place} with:</p>\n<pre><code>{}</code></pre>\n",
                    esc(&r.sustain_version),
                    esc(&shell_line(&r.command))
                ));
            }
            None => body.push_str(
                "<p class=\"note\">The folder has no run.json (the record of the command line that sustain now writes at the end of every fit and cross-validation), so the command is not known; the settings shown above are those the results record.</p>\n",
            ),
        }
    }
    body.push_str(&format!(
        "<p class=\"note\">This page was written by sustain {}. It holds every figure and table itself and loads nothing from elsewhere.</p>\n",
        env!("CARGO_PKG_VERSION")
    ));
    Section {
        id: "provenance".into(),
        title: "How this was made".into(),
        body,
    }
}

/// Refuses an existing `path` that is not a report of ours, unless `force`.
pub fn refuse_foreign_report(path: &Path, force: bool) -> Result<(), CliError> {
    crate::overwrite::refuse_foreign_file(path, html::MARK, "report", force)
}

/// Writes `html` to `path` (a temporary name first, then renamed).
pub fn write(path: &Path, html: &str) -> Result<(), CliError> {
    io::write_atomic(path, html.as_bytes())
}

/// What a finished `fit`, `merge`, `cv` or `cv-combine` does last: records its
/// command line in `DIR/run.json` and, unless `no_report`, writes `DIR/report.html`.
/// The run has already succeeded, so nothing here fails it: a problem is one
/// warning line on stderr. `fit` says whether DIR is a fit folder (else a
/// cross-validation one).
pub fn after_run(dir: &Path, fit: bool, data: Option<DataSummary>, no_report: bool) {
    let warn = |what: &str, e: &CliError| {
        crate::printing::eprint_line(&format!("warning: {what}: {}", e.one_line()));
    };
    let lock = match FolderLock::take(dir, FOLDER_LOCK) {
        Ok(lock) => lock,
        Err(e) => return warn("no run.json or report.html written", &e),
    };
    if let Err(e) = write_run_record(dir, &run_record::this_run(data)) {
        warn("the command line was not recorded", &e);
    }
    if no_report {
        return;
    }
    let path = report_path(dir);
    let written = refuse_foreign_report(&path, false)
        .and_then(|_| build(fit.then_some(dir), (!fit).then_some(dir)))
        .and_then(|text| write(&path, &text));
    drop(lock);
    match written {
        Ok(()) => {
            let _ = io::write_stdout(&format!("report: {}\n", path.display()));
        }
        Err(e) => warn("no report written", &e),
    }
}
