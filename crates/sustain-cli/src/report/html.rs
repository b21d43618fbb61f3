//! The HTML of the report page: escaping, the page's frame (head, style, table of
//! contents) and small builders for tables and inline SVG figures. No scripts, no
//! external resources: the page opens from an e-mail attachment.

use std::fmt::Write;

/// The first line of every report page: marks a `report.html` as ours, so a
/// later run may replace it and a user's file of that name is refused.
pub const MARK: &str = "<!DOCTYPE html><!-- written by sustain report -->";

/// `text` with the characters that HTML gives a meaning to escaped.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A section of the page: its id (for the table of contents), heading and body.
pub struct Section {
    pub id: String,
    pub title: String,
    pub body: String,
}

/// The whole page: `title` as the one h1, `lede` under it, then the sections (each
/// an h2) with a table of contents.
pub fn page(title: &str, lede: &str, sections: &[Section]) -> String {
    let mut s = String::new();
    s.push_str(MARK);
    s.push('\n');
    s.push_str("<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(s, "<header><h1>{}</h1>{lede}</header>", esc(title));
    s.push_str("<nav aria-label=\"Contents\"><p class=\"toc\">Contents</p><ol>");
    for sec in sections {
        let _ = write!(
            s,
            "<li><a href=\"#{}\">{}</a></li>",
            esc(&sec.id),
            esc(&sec.title)
        );
    }
    s.push_str("</ol></nav>\n");
    for sec in sections {
        let _ = writeln!(
            s,
            "<section id=\"{}\" aria-labelledby=\"{}-h\">\n<h2 id=\"{}-h\">{}</h2>\n{}</section>",
            esc(&sec.id),
            esc(&sec.id),
            esc(&sec.id),
            esc(&sec.title),
            sec.body
        );
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

/// A table with a caption, a header row and rows of cells (already HTML). The
/// first cell of each row is its header (`th scope="row"`) when `row_headers`.
pub fn table(caption: &str, head: &[String], rows: &[Vec<String>], row_headers: bool) -> String {
    // Columns of numbers only are right-aligned, header included.
    let numeric: Vec<bool> = (0..head.len())
        .map(|c| {
            rows.iter().all(|r| r.get(c).is_none_or(|v| is_number(v)))
                && rows.iter().any(|r| r.get(c).is_some_and(|v| is_number(v)))
        })
        .collect();
    let class = |c: usize| {
        if numeric.get(c).copied().unwrap_or(false) {
            " class=\"n\""
        } else {
            ""
        }
    };
    let mut s = String::from("<div class=\"scroll\"><table>");
    let _ = write!(s, "<caption>{}</caption><thead><tr>", esc(caption));
    for (c, h) in head.iter().enumerate() {
        let _ = write!(s, "<th scope=\"col\"{}>{h}</th>", class(c));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 && row_headers {
                let _ = write!(s, "<th scope=\"row\"{}>{cell}</th>", class(i));
            } else {
                let _ = write!(s, "<td{}>{cell}</td>", class(i));
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>\n");
    s
}

/// Whether a cell holds a number (or "undefined", a number that is not finite).
fn is_number(cell: &str) -> bool {
    cell == "undefined" || cell.trim().parse::<f64>().is_ok()
}

/// A figure from the text of an SVG file: the `<svg>` element with its size left to
/// the page (the viewBox keeps the proportions), `role="img"` and `label` as its
/// accessible name, and `caption` under it. `None` when the text holds no `<svg`
/// element with a viewBox.
pub fn svg_figure(svg_text: &str, label: &str, caption: &str) -> Option<String> {
    let start = svg_text.find("<svg")?;
    let open_end = start + svg_text[start..].find('>')?;
    let open = &svg_text[start..open_end];
    let view_box = attribute(open, "viewBox")?;
    let body = svg_text[open_end + 1..].trim_end();
    let body = body.strip_suffix("</svg>")?;
    // At most a little wider than drawn: a one-panel diagram is not blown up to the
    // page's width, but its labels stay as large as the text around it.
    let natural = view_box
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse::<f64>().ok())
        .filter(|w| w.is_finite() && *w > 0.0)
        .map(|w| format!(" style=\"max-width:{}px\"", (w * 1.4).round()))
        .unwrap_or_default();
    Some(format!(
        "<figure><svg viewBox=\"{}\"{natural} role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\"><title>{}</title>{}</svg><figcaption>{}</figcaption></figure>\n",
        esc(&view_box),
        esc(label),
        esc(label),
        body,
        caption
    ))
}

/// The value of attribute `name` in the opening tag `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = at + tag[at..].find('"')?;
    Some(tag[at..end].to_string())
}

/// A paragraph saying that a figure file is missing, and how to make it.
pub fn missing_figure(file: &str, how: &str) -> String {
    format!(
        "<p class=\"note\">The figure <code>{}</code> is not in the folder; {}</p>\n",
        esc(file),
        how
    )
}

/// A short pass/fail badge with its word (colour is never the only cue).
pub fn badge(ok: bool, yes: &str, no: &str) -> String {
    if ok {
        format!("<span class=\"badge ok\">{}</span>", esc(yes))
    } else {
        format!("<span class=\"badge bad\">{}</span>", esc(no))
    }
}

/// The page's style: readable on a phone (fluid widths, tables that scroll) and in
/// print (no shadows, figures not split across pages).
const STYLE: &str = r#"
:root{--ink:#1d2733;--muted:#5b6675;--line:#d8dee6;--accent:#1f4e79;--bg:#f5f7fa;--ok:#1b6e3a;--okbg:#e3f3e8;--bad:#9b1c1c;--badbg:#fbe6e6}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px 20px 48px}
header{border-bottom:3px solid var(--accent);margin-bottom:20px;padding-bottom:12px}
h1{font-size:1.9rem;line-height:1.2;margin:0 0 8px;color:var(--accent)}
h2{font-size:1.4rem;margin:0 0 12px;color:var(--accent)}
h3{font-size:1.1rem;margin:22px 0 8px}
p.toc{font-size:.85rem;font-weight:600;margin:0 0 4px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.lede{color:var(--muted);margin:0}
ul.glance{margin:8px 0 0;padding-left:20px}
nav{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 18px;margin-bottom:20px}
nav ol{margin:0;padding-left:20px;columns:2 220px}
nav a{color:var(--accent)}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 22px;margin-bottom:20px}
figure{margin:12px 0 16px}
figure svg{display:block;width:100%;height:auto;max-width:100%;border:1px solid var(--line);border-radius:4px;background:#fff}
figcaption{color:var(--muted);font-size:.9rem;margin-top:6px}
.scroll{overflow-x:auto;margin:8px 0 14px}
table{border-collapse:collapse;min-width:50%;font-variant-numeric:tabular-nums;font-size:.95rem}
caption{text-align:left;color:var(--muted);font-size:.9rem;padding-bottom:6px;caption-side:top}
th,td{border-bottom:1px solid var(--line);padding:6px 12px;text-align:left;vertical-align:top}
th.n,td.n{text-align:right}
thead th{background:#eef2f7;border-bottom:2px solid #b9c3cf}
tbody tr:nth-child(even){background:#fafbfd}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88rem}
pre{background:#f0f3f7;border:1px solid var(--line);border-radius:6px;padding:10px 12px;white-space:pre-wrap;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-weight:600;font-size:.85rem}
.ok{background:var(--okbg);color:var(--ok)}
.bad{background:var(--badbg);color:var(--bad)}
.note{color:var(--muted);font-size:.92rem}
.verdict{font-size:1.05rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
@media (max-width:600px){main{padding:12px 10px 32px}section{padding:14px 12px}h1{font-size:1.5rem}dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:6px}nav ol{columns:1}}
@media print{body{background:#fff;font-size:11pt}main{max-width:none;padding:0}nav{display:none}section{border:none;padding:0;margin:0 0 18pt}figure,table,tr{break-inside:avoid}section{break-before:auto}h2,h3{break-after:avoid}a{color:inherit;text-decoration:none}.scroll{overflow:visible}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn svg_figures_lose_their_size_and_namespace() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"5\" viewBox=\"0 0 10 5\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\"/>\n</svg>\n";
        let fig = svg_figure(svg, "a <b>", "cap").unwrap();
        assert!(fig.contains("viewBox=\"0 0 10 5\""), "{fig}");
        assert!(fig.contains("aria-label=\"a &lt;b&gt;\""), "{fig}");
        assert!(fig.contains("<rect x=\"0\"/>"), "{fig}");
        assert!(
            !fig.contains("http") && !fig.contains("width=\"10\""),
            "{fig}"
        );
        assert!(svg_figure("<svg width=\"1\"></svg>", "x", "y").is_none());
    }

    #[test]
    fn tables_have_captions_and_header_cells() {
        let t = table(
            "Cap",
            &["a".into(), "b".into()],
            &[vec!["1".into(), "2".into()]],
            true,
        );
        assert!(t.contains("<caption>Cap</caption>"));
        assert!(t.contains("<th scope=\"col\" class=\"n\">a</th>"));
        assert!(t.contains("<th scope=\"row\" class=\"n\">1</th><td class=\"n\">2</td>"));
    }
}
