//! The cross-validation section of the report, from a `sustain cv` folder: CVIC and
//! the test log-likelihood of every fold per subtype count, the CVIC figure, and a
//! plain sentence on what they support.

use std::path::{Path, PathBuf};

use sustain::cv::CvResult;

use super::fit_part::num;
use super::html::{esc, missing_figure, svg_figure, table, Section};
use crate::error::CliError;

/// CVIC differences of at least this much count as clear. CVIC is minus twice a
/// log-likelihood, the scale of twice a log Bayes factor, on which Kass and
/// Raftery (1995) call differences of 2 to 6 positive and above 6 strong evidence.
pub const CLEAR_DIFFERENCE: f64 = 6.0;
/// Differences below this are negligible on the same scale.
pub const NEGLIGIBLE_DIFFERENCE: f64 = 2.0;

/// `DIR/cv.json`.
pub fn cv_path(dir: &Path) -> PathBuf {
    dir.join("cv.json")
}

/// Reads `DIR/cv.json` (non-finite numbers were written as null).
pub fn read_cv(dir: &Path) -> Result<CvResult, CliError> {
    let path = cv_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::read(&path, &e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::in_file(&path, format!("not a valid cv.json: {e}")))?;
    crate::results_file::check_version(&value, "cv.json")
        .map_err(|why| CliError::in_file(&path, why))?;
    let cv: CvResult = crate::nanjson::from_value(value)
        .map_err(|e| CliError::in_file(&path, format!("not a valid cv.json: {e}")))?;
    let n = cv.cvic.len();
    if n == 0 {
        return Err(CliError::in_file(
            &path,
            "not a valid cv.json: cvic is empty",
        ));
    }
    if let Some(i) = cv.loglike_matrix.iter().position(|row| row.len() != n) {
        return Err(CliError::in_file(
            &path,
            format!(
                "not a valid cv.json: loglike_matrix[{i}] does not hold one value per subtype count ({n})"
            ),
        ));
    }
    Ok(cv)
}

/// What the CVIC supports, in a few plain sentences.
pub fn verdict(cv: &CvResult) -> String {
    let finite: Vec<(usize, f64)> = cv
        .cvic
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i + 1, *v))
        .collect();
    let Some(&(best, best_v)) = finite.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        return "No subtype count has a finite CVIC; the cross-validation says nothing.".into();
    };
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    let mut s = format!(
        "The lowest CVIC (lower is better) is for {best} subtype{}.",
        plural(best)
    );
    // The smallest model within a negligible or unclear difference of the best.
    let close: Vec<(usize, f64)> = finite
        .iter()
        .filter(|(k, v)| *k != best && v - best_v < CLEAR_DIFFERENCE)
        .copied()
        .collect();
    if close.is_empty() {
        if finite.len() > 1 {
            s.push_str(&format!(
                " Every other subtype count has a CVIC at least {CLEAR_DIFFERENCE} higher: the data clearly support {best} subtype{}.",
                plural(best)
            ));
        }
    } else {
        let list: Vec<String> = close
            .iter()
            .map(|(k, v)| format!("{k} subtype{} ({} higher)", plural(*k), num(v - best_v, 1)))
            .collect();
        s.push_str(&format!(
            " Within {CLEAR_DIFFERENCE} of it: {}. A CVIC difference that small is not clear evidence (below {NEGLIGIBLE_DIFFERENCE} it is negligible).",
            list.join(", ")
        ));
        let smallest = close.iter().map(|(k, _)| *k).min().unwrap_or(best);
        if smallest < best {
            s.push_str(&format!(
                " The simpler model with {smallest} subtype{} fits held-out subjects about as well.",
                plural(smallest)
            ));
        }
    }
    // Whether the folds agree.
    let folds = cv.loglike_matrix.len();
    let agree = cv
        .loglike_matrix
        .iter()
        .filter(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .max_by(|a, b| a.1.total_cmp(b.1))
                .is_some_and(|(i, _)| i + 1 == best)
        })
        .count();
    if folds > 0 {
        s.push_str(&format!(
            " In {agree} of {folds} folds the test log-likelihood is highest at {best} subtype{}.",
            plural(best)
        ));
    }
    s
}

/// The "Cross-validation" section of the folder `dir`.
pub fn cv_section(dir: &Path, cv: &CvResult) -> Section {
    let n = cv.cvic.len();
    let best = cv
        .cvic
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let mut body = format!("<p>{}</p>\n", esc(&verdict(cv)));
    let means: Vec<f64> = crate::plot::finite_means(&cv.loglike_matrix, n)
        .into_iter()
        .map(|m| m.unwrap_or(f64::NAN))
        .collect();
    let rows: Vec<Vec<String>> = (0..n)
        .map(|s| {
            vec![
                (s + 1).to_string(),
                num(cv.cvic[s], 2),
                num(cv.cvic[s] - best, 2),
                num(means[s], 2),
            ]
        })
        .collect();
    body.push_str(&table(
        "CVIC per subtype count (lower is better), its difference from the lowest, and the mean over folds of the test log-likelihood (higher is better)",
        &[
            "Subtypes".into(),
            "CVIC".into(),
            "Difference".into(),
            "Mean test log-likelihood".into(),
        ],
        &rows,
        true,
    ));
    let mut head = vec!["Fold".to_string()];
    head.extend((1..=n).map(|k| format!("{k} subtype{}", if k == 1 { "" } else { "s" })));
    let fold_rows: Vec<Vec<String>> = cv
        .loglike_matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = vec![i.to_string()];
            r.extend(row.iter().map(|v| num(*v, 2)));
            r
        })
        .collect();
    body.push_str(&table(
        "Test log-likelihood of each fold's held-out subjects per subtype count (fold_{i}.json)",
        &head,
        &fold_rows,
        true,
    ));
    let label = "Cross-validation: CVIC per number of subtypes (left) and each fold's test log-likelihood with their mean (right)";
    let caption = "Left: CVIC against the number of subtypes (lower is better). Right: the test log-likelihood of every fold (points) and their mean (line).";
    let how = "<code>sustain cv-combine --out DIR</code> draws it again.";
    body.push_str(&match std::fs::read_to_string(dir.join("cvic.svg")) {
        Ok(text) => {
            svg_figure(&text, label, caption).unwrap_or_else(|| missing_figure("cvic.svg", how))
        }
        Err(_) => missing_figure("cvic.svg", how),
    });
    Section {
        id: "cv".into(),
        title: "Cross-validation".into(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cv(cvic: &[f64], folds: &[&[f64]]) -> CvResult {
        CvResult {
            version: 1,
            loglike_matrix: folds.iter().map(|r| r.to_vec()).collect(),
            cvic: cvic.to_vec(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn a_clear_minimum_is_called_clear() {
        let s = verdict(&cv(&[120.0, 100.0, 110.0], &[&[-60.0, -50.0, -55.0]]));
        assert!(
            s.contains("lowest CVIC (lower is better) is for 2 subtypes"),
            "{s}"
        );
        assert!(s.contains("clearly support 2 subtypes"), "{s}");
        assert!(s.contains("In 1 of 1 folds"), "{s}");
    }

    #[test]
    fn a_small_difference_prefers_the_simpler_model() {
        let s = verdict(&cv(&[101.5, 100.0], &[&[-50.0, -51.0], &[-52.0, -49.0]]));
        assert!(s.contains("Within 6 of it: 1 subtype (1.5 higher)."), "{s}");
        assert!(s.contains("simpler model with 1 subtype fits"), "{s}");
        assert!(s.contains("In 1 of 2 folds"), "{s}");
    }
}
