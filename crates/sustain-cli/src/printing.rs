//! What `fit`, `cv` and their relatives print on stderr and stdout: progress
//! lines and bars, one-line notices, and the closing summary of a fit.

use std::fmt::Write as _;
use std::path::PathBuf;

use sustain::fit::Progress;
use sustain::results::{EventInfo, FitResult, SubtypeModel};
use sustain::rounds::{budget_line, Stop};
use sustain::sampler::chain_summary::explain;

/// A progress line on stderr (ignored when it cannot be written).
///
/// On the CPU with several threads the chains of every subtype count run at once
/// after E-M, so one chain display per subtype count may be live at once.
pub fn progress_printer(quiet: bool, prefix: String) -> impl Fn(Progress) {
    type Handle = std::thread::JoinHandle<()>;
    let em: std::cell::RefCell<Option<Handle>> = Default::default();
    let chains: std::cell::RefCell<Vec<(usize, Handle)>> = Default::default();
    move |p| {
        if quiet && !matches!(p, Progress::Warning(_)) {
            return;
        }
        match &p {
            // E-M is done: let its display finish before the next line.
            Progress::McmcStarted { .. } => {
                if let Some(handle) = em.borrow_mut().take() {
                    let _ = handle.join();
                }
            }
            // A subtype count is done: so are its chains (and their display).
            Progress::ModelDone { n_subtypes, .. } => {
                if let Some(handle) = em.borrow_mut().take() {
                    let _ = handle.join();
                }
                let mut live = chains.borrow_mut();
                if let Some(i) = live.iter().position(|(k, _)| k == n_subtypes) {
                    let _ = live.remove(i).1.join();
                }
            }
            _ => {}
        }
        let line = match p {
            Progress::EmJobs {
                n_subtypes,
                progress,
            } => {
                *em.borrow_mut() =
                    Some(crate::bars::show_jobs(prefix.clone(), n_subtypes, progress));
                return;
            }
            Progress::Chains {
                n_subtypes,
                progress,
            } => {
                chains.borrow_mut().push((
                    n_subtypes,
                    crate::bars::show(prefix.clone(), n_subtypes, progress),
                ));
                return;
            }
            Progress::EmStarted { n_subtypes } => {
                format!("{prefix}{n_subtypes} subtype(s): E-M")
            }
            Progress::McmcStarted {
                n_subtypes,
                chains,
                iterations,
            } => format!(
                "{prefix}{n_subtypes} subtype(s): MCMC, {chains} chain(s) x {iterations} iterations"
            ),
            Progress::ModelDone {
                n_subtypes,
                resumed: true,
            } => {
                format!("{prefix}{n_subtypes} subtype(s): loaded from checkpoint")
            }
            Progress::ModelDone {
                n_subtypes,
                resumed: false,
            } => {
                format!("{prefix}{n_subtypes} subtype(s): done")
            }
            Progress::RoundDone {
                n_subtypes,
                round,
                iterations_per_chain,
                unmet,
            } => {
                if unmet.is_empty() {
                    format!(
                        "{prefix}{n_subtypes} subtype(s): round {round}, {iterations_per_chain} \
                         iterations per chain: converged"
                    )
                } else {
                    format!(
                        "{prefix}{n_subtypes} subtype(s): round {round}, {iterations_per_chain} \
                         iterations per chain: not yet ({})",
                        unmet.join(", ")
                    )
                }
            }
            Progress::Warning(line) => {
                // Shown even with --quiet, once per process.
                crate::backend::warn_once(&line);
                return;
            }
        };
        eprint_line(&line);
    }
}

/// One line on stderr; a failure to write it is ignored.
pub fn eprint_line(line: &str) {
    crate::bars::eprint_line(line)
}

/// The text printed at the end of `fit`.
pub fn summary(result: &FitResult, files: &[PathBuf]) -> String {
    let mut s = String::new();
    for m in &result.models {
        let f: Vec<String> = m.mean_f.iter().map(|v| format!("{v:.3}")).collect();
        let d = &m.diagnostics;
        let _ = writeln!(
            s,
            "{} subtype(s): ML log-likelihood {:.3}, mean fractions [{}], R-hat {:.3}, {}",
            m.n_subtypes,
            m.ml_loglike,
            f.join(", "),
            d.rhat_loglike,
            if d.converged {
                "converged"
            } else {
                "NOT converged"
            }
        );
        for w in &d.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        if let (Some(c), true) = (&m.convergence, result.settings.fixed_length()) {
            let rungs = c.tempering.as_ref().map_or(1, |t| t.betas.len());
            let _ = writeln!(
                s,
                "  chains ran {} iterations each, with {rungs} tempered copies",
                c.iterations_per_chain
            );
        } else if let Some(c) = &m.convergence {
            let _ = writeln!(
                s,
                "  chains ran until {}: {} round(s), {} iterations per chain",
                match c.stopped {
                    Stop::Converged => "they converged",
                    Stop::MaxIterations => "--max-iterations",
                    Stop::MaxSeconds => "--max-seconds",
                },
                c.rounds.len(),
                c.iterations_per_chain
            );
        }
        for line in why_not_converged(result, m) {
            let _ = writeln!(s, "  why: {line}");
        }
    }
    let _ = writeln!(s, "files written:");
    for f in files {
        let _ = writeln!(s, "  {}", f.display());
    }
    s
}

/// Most events a console line names; results.json lists them all.
const EVENTS_NAMED: usize = 6;

/// Events named by biomarker and threshold, the first [`EVENTS_NAMED`] of them
/// and how many more (with 100+ events a line naming every one is unreadable).
fn named_events(info: &[EventInfo], events: &[usize]) -> String {
    let names: Vec<String> = events
        .iter()
        .take(EVENTS_NAMED)
        .map(|&e| match info.get(e) {
            Some(info) => format!("{} {}", info.biomarker, info.z),
            None => (e + 1).to_string(),
        })
        .collect();
    match events.len().saturating_sub(EVENTS_NAMED) {
        0 => names.join(", "),
        more => format!("{} and {more} more", names.join(", ")),
    }
}

/// What is wrong with a model's chains, with events named by biomarker and
/// threshold (results.json numbers them all instead).
fn why_not_converged(result: &FitResult, m: &SubtypeModel) -> Vec<String> {
    let name = |events: &[usize]| named_events(&result.events, events);
    // A fixed length is no budget that stopped the chains.
    let budget = m
        .convergence
        .iter()
        .filter(|_| !result.settings.fixed_length());
    let mut lines: Vec<String> = budget.filter_map(budget_line).collect();
    lines.extend(explain(
        &m.chains,
        &m.disagreements,
        &m.diagnostics.rhat_f,
        &name,
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_lists_name_the_first_few_and_count_the_rest() {
        let info: Vec<EventInfo> = (0..10)
            .map(|b| EventInfo {
                biomarker: format!("bm{b}"),
                z: 2.0,
            })
            .collect();
        assert_eq!(named_events(&info, &[3, 1]), "bm3 2, bm1 2");
        assert_eq!(
            named_events(&info, &(0..6).collect::<Vec<_>>()),
            "bm0 2, bm1 2, bm2 2, bm3 2, bm4 2, bm5 2"
        );
        assert_eq!(
            named_events(&info, &(0..9).collect::<Vec<_>>()),
            "bm0 2, bm1 2, bm2 2, bm3 2, bm4 2, bm5 2 and 3 more"
        );
        // An index outside the table is numbered from 1.
        assert_eq!(named_events(&info, &[12]), "13");
    }
}
