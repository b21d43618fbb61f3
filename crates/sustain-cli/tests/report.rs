//! `sustain report` and the report that `fit` and `cv` write at their end: the
//! page's contents, its structure as a screen reader sees it (one h1, ordered
//! headings, labelled figures, captioned tables), that it loads nothing, that it
//! opens in a real browser (headless chromium, when installed) without a console
//! message and shows the diagrams, and the refusals.

mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{names_in, ok, quick_fit, run, s, sustain, tiny, user_error};

/// The first line of every report.
const MARK: &str = "<!DOCTYPE html><!-- written by sustain report -->";

/// One tiny fit (2 subtypes) for every test, with its automatic report.
fn fitted() -> &'static (tempfile::TempDir, PathBuf) {
    static FIT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    FIT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fit");
        let out = ok(&run(&tiny("fit", &["--out", s(&dir)])));
        assert!(out.contains("report: "), "{out}");
        (tmp, dir)
    })
}

/// One tiny cross-validation (2 folds, 2 subtypes), with its automatic report.
fn cross_validated() -> &'static (tempfile::TempDir, PathBuf) {
    static CV: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    CV.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cv");
        ok(&run(&tiny("cv", &["--folds", "2", "--out", s(&dir)])));
        (tmp, dir)
    })
}

/// The figures a fit's report inlines: a PVD and a trace per model, and each
/// chain's PVD for a model whose chains did not converge.
fn figures_of_fit(dir: &Path) -> usize {
    let results: serde_json::Value =
        serde_json::from_str(&read(&dir.join("results.json"))).unwrap();
    let models = results["models"].as_array().unwrap();
    let unconverged = models
        .iter()
        .filter(|m| {
            m["diagnostics"]["converged"] == false
                && m["diagnostics"]["acceptance"].as_array().unwrap().len() > 1
        })
        .count();
    2 * models.len() + unconverged
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The levels of the page's headings, in order.
fn heading_levels(html: &str) -> Vec<u8> {
    let mut levels = Vec::new();
    let bytes = html.as_bytes();
    for (i, _) in html.match_indices("<h") {
        if let (Some(d), Some(next)) = (bytes.get(i + 2), bytes.get(i + 3)) {
            if (b'1'..=b'6').contains(d) && (*next == b'>' || *next == b' ') {
                levels.push(d - b'0');
            }
        }
    }
    levels
}

/// The opening tags `<NAME ...>` of the page.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.match_indices(&open)
        .filter(|(i, _)| {
            html.as_bytes()
                .get(i + open.len())
                .is_some_and(|c| *c == b' ' || *c == b'>')
        })
        .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap() + 1])
        .collect()
}

/// What a screen reader relies on: one h1 first, headings that never skip a
/// level going down, every figure an image with a name, every image an alt text,
/// every table a caption and header cells. Returns the number of figures.
fn check_screen_reader_view(html: &str) -> usize {
    let levels = heading_levels(html);
    assert_eq!(levels.first(), Some(&1), "{levels:?}");
    assert_eq!(levels.iter().filter(|l| **l == 1).count(), 1, "{levels:?}");
    for pair in levels.windows(2) {
        assert!(pair[1] <= pair[0] + 1, "heading level skipped: {levels:?}");
    }
    let svgs = tags(html, "svg");
    for svg in &svgs {
        assert!(svg.contains("role=\"img\""), "{svg}");
        let label = svg.split("aria-label=\"").nth(1).expect(svg);
        assert!(!label.starts_with('"'), "empty label: {svg}");
    }
    assert_eq!(html.matches("<title>").count(), svgs.len() + 1);
    for img in tags(html, "img") {
        assert!(img.contains(" alt=\""), "{img}");
    }
    let tables = tags(html, "table");
    assert!(!tables.is_empty());
    assert_eq!(html.matches("<caption>").count(), tables.len());
    for t in html.split("<table>").skip(1) {
        let t = &t[..t.find("</table>").unwrap()];
        assert!(t.contains("<th scope=\"col\""), "{t}");
    }
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("@media print"));
    svgs.len()
}

/// The report in `dir`, checked to be one this program wrote.
fn report_in(dir: &Path) -> String {
    let html = read(&dir.join("report.html"));
    assert!(html.starts_with(MARK));
    html
}

/// Every one of `needles` is in the report.
fn assert_holds_all(html: &str, needles: &[&str]) {
    for needle in needles {
        assert!(html.contains(needle), "{needle:?} not in the report");
    }
}

/// Nothing is loaded from anywhere: no scripts, links, sources or URLs.
fn check_self_contained(html: &str) {
    for needle in [
        "http://", "https://", "<script", "<link", "src=", "url(", "@import", "<iframe",
    ] {
        assert!(!html.contains(needle), "the page holds {needle:?}");
    }
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "a link out of the page: {href:.40}");
    }
}

#[test]
fn fit_writes_a_report_and_sustain_report_writes_the_same() {
    let (_, dir) = fitted();
    let html = report_in(dir);
    // The model and data, each subtype count, the command that made it.
    assert_holds_all(
        &html,
        &[
            "<h1>SuStaIn report: fit</h1>",
            "Model and data",
            "z-score model (piecewise linear)",
            "bm0, bm1, bm2, bm3",
            "<dt>Subjects</dt><dd>200</dd>",
            "MCMC convergence: ",
            "Missing values",
            "1 subtype</h2>",
            "2 subtypes</h2>",
            "Positional variance diagram",
            "Subtype fractions",
            "95% interval",
            "Verdict:",
            "R-hat of the log-likelihood",
            "below 1.01",
            "above 400",
            "R-hat of fraction 2",
            "Subjects per subtype and stage",
            "subjects_k2.csv",
            "How this was made",
            "sustain fit --data",
            "--quiet --out",
        ],
    );
    // PVD and trace of each subtype count (and each chain's PVD where they did
    // not converge), inlined.
    assert_eq!(check_screen_reader_view(&html), figures_of_fit(dir));
    assert_eq!(
        html.matches("aria-label=\"Positional variance diagram")
            .count(),
        2
    );
    assert_eq!(
        html.matches("aria-label=\"Log-likelihood of every MCMC chain")
            .count(),
        2
    );
    check_self_contained(&html);
    // The subjects table sums to every subject.
    assert!(html.contains("<th scope=\"row\">All stages</th>"));
    // The run record beside results.json.
    let run: serde_json::Value = serde_json::from_str(&read(&dir.join("run.json"))).unwrap();
    assert_eq!(run["command"][1], "fit");
    assert_eq!(run["data"]["subjects"], 200);
    // `sustain report` on the folder gives the same page.
    let copy = dir.parent().unwrap().join("again.html");
    let out = ok(&sustain(&["report", s(dir), "--out", s(&copy)]));
    assert!(out.contains("again.html"), "{out}");
    assert_eq!(read(&copy), html);
}

#[test]
fn cross_validation_writes_a_report_with_cvic_and_the_folds() {
    let (_, dir) = cross_validated();
    let html = report_in(dir);
    assert_holds_all(
        &html,
        &[
            "Cross-validation",
            "The lowest CVIC (lower is better) is for",
            "folds the test log-likelihood is highest at",
            "Mean test log-likelihood",
            "<th scope=\"col\" class=\"n\">Fold</th>",
            "sustain cv --data",
        ],
    );
    assert!(!html.contains("Positional variance diagram"));
    assert_eq!(check_screen_reader_view(&html), 1);
    assert!(html.contains("aria-label=\"Cross-validation: CVIC"));
    check_self_contained(&html);
    // Two folds: rows 0 and 1 of the fold table.
    assert!(html.contains("<th scope=\"row\" class=\"n\">0</th>"));
    assert!(html.contains("<th scope=\"row\" class=\"n\">1</th>"));
}

#[test]
fn a_fit_report_can_take_the_cross_validation_of_another_folder() {
    let (_, fit) = fitted();
    let (_, cv) = cross_validated();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("both.html");
    ok(&sustain(&[
        "report",
        s(fit),
        "--cv",
        s(cv),
        "--out",
        s(&out),
    ]));
    let html = read(&out);
    assert!(html.contains("2 subtypes</h2>") && html.contains("Cross-validation</h2>"));
    assert_eq!(check_screen_reader_view(&html), figures_of_fit(fit) + 1);
    assert!(html.contains("The fit (") && html.contains("The cross-validation ("));
}

#[test]
fn no_report_still_records_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fit");
    let out = ok(&run(&tiny(
        "fit",
        &["--out", s(&dir), "--subtypes", "1", "--no-report"],
    )));
    assert!(!out.contains("report: "), "{out}");
    let names = names_in(&dir);
    assert!(!names.contains(&"report.html".to_string()), "{names:?}");
    assert!(names.contains(&"run.json".to_string()), "{names:?}");
    // Written later on demand, then rewritten (it is ours).
    ok(&sustain(&["report", s(&dir)]));
    let first = read(&dir.join("report.html"));
    assert!(first.contains("1 subtype</h2>"));
    ok(&sustain(&["report", s(&dir)]));
    assert_eq!(read(&dir.join("report.html")), first);
}

#[test]
fn refusals() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder with neither results.json nor cv.json.
    user_error(
        &sustain(&["report", s(tmp.path())]),
        &["neither a fit (results.json) nor a cross-validation (cv.json)"],
    );
    user_error(
        &sustain(&["report", s(&tmp.path().join("absent"))]),
        &["absent", "not a folder"],
    );
    // A report.html that is not ours is left alone, unless --force.
    let (_, dir) = fitted();
    let mine = tmp.path().join("mine.html");
    std::fs::write(&mine, "<html>my notes</html>").unwrap();
    user_error(
        &sustain(&["report", s(dir), "--out", s(&mine)]),
        &["mine.html", "not written by `sustain report`", "--force"],
    );
    assert_eq!(read(&mine), "<html>my notes</html>");
    ok(&sustain(&["report", s(dir), "--out", s(&mine), "--force"]));
    assert!(read(&mine).starts_with(MARK));
    // A fit whose folder holds someone's report.html finishes, with one warning.
    let fit = tmp.path().join("fit");
    std::fs::create_dir(&fit).unwrap();
    std::fs::write(fit.join("report.html"), "mine").unwrap();
    let out = run(&tiny("fit", &["--out", s(&fit), "--subtypes", "1"]));
    let stdout = ok(&out);
    assert!(fit.join("results.json").is_file() && !stdout.contains("report: "));
    let err = common::stderr(&out);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("warning: no report written"))
            .count(),
        1,
        "{err}"
    );
    assert_eq!(read(&fit.join("report.html")), "mine");
    // A damaged results.json is one line naming the file.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("results.json"),
        "{\"version\": 1, \"models\": 3}",
    )
    .unwrap();
    user_error(&sustain(&["report", s(&broken)]), &["results.json"]);
    assert!(!broken.join("report.html").exists());
}

/// The pages in headless chromium: no console message, and screenshots that show
/// the page with its diagrams (a desktop and a phone width).
#[test]
fn the_pages_open_in_a_real_browser() {
    let Some(chromium) = browser::chromium() else {
        eprintln!("NOTICE: chromium is not installed; the real-browser test of the report is skipped (apt-get install chromium)");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // The check can fail: a page with a script error is caught.
    let bad = work.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>x</p><script>notAFunction();</script></body></html>",
    )
    .unwrap();
    let visit = browser::visit(&chromium, &bad, (400, 300), work.path(), "bad");
    assert!(
        visit.console.iter().any(|l| l.contains("notAFunction")),
        "the console check saw nothing on a broken page:\n{}",
        visit.log
    );
    let (_, fit) = fitted();
    let (_, cv) = cross_validated();
    for (name, page, size) in [
        ("fit-desktop", fit.join("report.html"), (1200, 2600)),
        ("fit-phone", fit.join("report.html"), (390, 1800)),
        ("cv-desktop", cv.join("report.html"), (1200, 1800)),
    ] {
        let visit = browser::visit(&chromium, &page, size, work.path(), name);
        assert!(
            visit.console.is_empty(),
            "{name}: console messages: {:?}",
            visit.console
        );
        let (w, h, px) = browser::pixels(&visit.screenshot);
        assert_eq!((w, h), size, "{name}");
        let colours = browser::distinct_colours(&px);
        assert!(colours >= 64, "{name}: only {colours} colours: blank?");
        if name.starts_with("fit") {
            // The PVD's z = 3 (dark blue) and z = 2 (magenta) cells.
            assert!(
                browser::near(&px, [26, 26, 153], 12) > 20,
                "{name}: no PVD blue"
            );
            assert!(
                browser::near(&px, [204, 0, 204], 12) > 20,
                "{name}: no PVD magenta"
            );
        } else {
            // The CVIC figure's fold points (blue at 80% over white) and lines.
            assert!(
                browser::near(&px, [76, 146, 195], 30) > 10,
                "{name}: no fold points"
            );
        }
        eprintln!(
            "{name}: {colours} colours in {}",
            visit.screenshot.display()
        );
    }
}

/// Mixture and ordinal fits get a report too, with their PVDs.
#[test]
fn other_families_get_a_report() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data");
    let tmp = tempfile::tempdir().unwrap();
    let scores = examples.join("ordinal/scores.csv");
    for (family, model, data, name) in [
        (
            "mixture",
            examples.join("mixture/model.json"),
            None,
            "event-based model",
        ),
        (
            "ordinal",
            examples.join("ordinal/model.json"),
            Some(scores),
            "ordinal model",
        ),
    ] {
        let dir = tmp.path().join(family);
        let mut inputs = vec!["--model", s(&model), "--id-column", "id"];
        if let Some(d) = &data {
            inputs.extend(["--data", s(d)]);
        }
        ok(&quick_fit(&inputs, "2", &dir, &[]));
        let html = read(&dir.join("report.html"));
        assert!(html.contains(name), "{family}: no {name:?}");
        assert_eq!(
            check_screen_reader_view(&html),
            figures_of_fit(&dir),
            "{family}"
        );
        check_self_contained(&html);
        assert!(html.contains("<dt>Subjects</dt><dd>300</dd>"), "{family}");
    }
}

/// A damaged subjects CSV is one line naming the file, row and column.
#[test]
fn a_bad_subjects_table_names_its_row_and_column() {
    let (_, dir) = fitted();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("fit");
    for (path, bytes) in common::snapshot(dir) {
        let rel = path.strip_prefix(dir).unwrap();
        std::fs::create_dir_all(copy.join(rel).parent().unwrap()).unwrap();
        std::fs::write(copy.join(rel), bytes).unwrap();
    }
    let csv = copy.join("subjects_k2.csv");
    let text = read(&csv);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    cells[1] = "7".into();
    lines[2] = cells.join(",");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let before = read(&copy.join("report.html"));
    user_error(
        &sustain(&["report", s(&copy)]),
        &[
            "subjects_k2.csv",
            "row 2",
            "column 'ml_subtype'",
            "subtype 7",
        ],
    );
    assert_eq!(read(&copy.join("report.html")), before);
}
