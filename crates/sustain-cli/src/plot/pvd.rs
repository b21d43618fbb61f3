//! Positional variance diagrams (Young et al. 2018, Nature Communications 9:4273).
//!
//! One panel per subtype; rows are biomarkers, columns are positions 1..N of the event
//! sequence. Every threshold level has a colour; a cell starts white and each event of
//! the row's biomarker removes, in proportion to its certainty at that position, the
//! colour channels its level's colour lacks. Rows follow the first panel's most likely
//! sequence, so the same row order holds in every panel.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{draw_error, fmt_num, render, swatch, text, text_width, Figure, PlotError};

/// Input of [`draw_pvd`].
pub struct PvdInput<'a> {
    /// Biomarker names (B).
    pub biomarker_names: &'a [String],
    /// One entry per event index e: (biomarker index, threshold level 0-based within
    /// that biomarker, z value).
    pub events: &'a [(usize, usize, f64)],
    /// What the event values are, for the legend: "z" (z-score thresholds),
    /// "score" (ordinal scores), or "" (event-based: one event per biomarker,
    /// labelled "event").
    pub value_name: &'a str,
    /// Per biomarker, what its event values are (as `value_name`), for a model whose
    /// biomarkers differ (the mixed-type model: "z", "score" or ""); empty: every
    /// biomarker's is `value_name`.
    pub biomarker_value_names: &'a [&'a str],
    /// One panel per subtype, in subtype order.
    pub panels: &'a [PvdPanel],
    /// Panels per row (0: at most 4, rows as even as they can be).
    pub per_row: usize,
}

/// One subtype's panel of a positional variance diagram.
#[derive(Debug, Clone)]
pub struct PvdPanel {
    /// Panel title, e.g. "Subtype 1 (f = 0.42)".
    pub title: String,
    /// Events x positions (N x N): fraction of samples with event e at position k
    /// (0-based).
    pub certainty: Vec<Vec<f64>>,
}

/// Colour of each threshold level (level 0 first); levels past the last reuse the
/// list from the start. The first three keep the reference's red, magenta and blue
/// but step down in lightness (CIE L* about 70, 49 and 21, against 53, 60 and 32
/// for pure red, magenta and blue), so that z = 1, 2, 3 stay apart in grey print and
/// for red-green colour blindness, where pure red and magenta look alike.
pub(crate) const LEVEL_COLOURS: [[f64; 3]; 6] = [
    [1.0, 0.55, 0.45], // light red
    [0.8, 0.0, 0.8],   // magenta
    [0.1, 0.1, 0.6],   // dark blue
    [0.5, 0.0, 1.0],   // purple
    [0.0, 1.0, 1.0],   // cyan
    [0.0, 1.0, 0.0],   // green
];

/// After the legend's colours: how to read a cell's strength.
const LEGEND_NOTE: &str = "colour strength: share of MCMC samples";

fn level_colour(level: usize) -> [f64; 3] {
    LEVEL_COLOURS[level % LEVEL_COLOURS.len()]
}

fn to_rgb(c: [f64; 3]) -> RGBColor {
    let q = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(q(c[0]), q(c[1]), q(c[2]))
}

/// Writes the positional variance diagram to `<stem>.svg` and `<stem>.png`; returns
/// both paths.
pub fn draw_pvd(stem: &Path, input: &PvdInput) -> Result<Vec<PathBuf>, PlotError> {
    let fig = Pvd::new(input).map_err(|e| {
        PlotError(format!(
            "cannot draw figure {}.svg/.png: {e}",
            stem.display()
        ))
    })?;
    render(stem, &fig)
}

// Layout, in pixels.
const MARGIN: i32 = 16;
const TITLE_SIZE: f64 = 19.0;
const NAME_SIZE: f64 = 15.0;
const TICK_SIZE: f64 = 13.0;
const AXIS_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 15.0;
const TITLE_H: i32 = 30;
const TICK_H: i32 = 20;
const AXIS_H: i32 = 22;
const PANEL_VGAP: i32 = 18;
const PANEL_HGAP: i32 = 28;
const LEGEND_H: i32 = 34;
/// Target width of a panel's cell area.
const PANEL_W: i32 = 380;
const ROW_GRID: RGBColor = RGBColor(210, 210, 210);

pub(super) struct Pvd {
    /// Biomarker names in row order (top first).
    rows: Vec<String>,
    /// Per panel: title and cell colours, `[row][position]`.
    panels: Vec<(String, Vec<Vec<RGBColor>>)>,
    /// Legend entries: colour and label, by level.
    legend: Vec<(RGBColor, String)>,
    n: i32,
    cw: i32,
    rh: i32,
    label_w: i32,
    ncols: i32,
    nrows: i32,
    /// Positions (1-based) with an x tick label.
    ticks: Vec<i32>,
}

impl Pvd {
    pub(super) fn new(input: &PvdInput) -> Result<Pvd, String> {
        let b = input.biomarker_names.len();
        let n = input.events.len();
        if input.panels.is_empty() {
            return Err("no subtype panels".into());
        }
        if n == 0 {
            return Err("no events".into());
        }
        for (e, &(bm, _, _)) in input.events.iter().enumerate() {
            if bm >= b {
                return Err(format!(
                    "event {e} refers to biomarker {bm}, but there are {b} biomarkers"
                ));
            }
        }
        for (s, p) in input.panels.iter().enumerate() {
            if p.certainty.len() != n || p.certainty.iter().any(|r| r.len() != n) {
                return Err(format!(
                    "panel {} (\"{}\") certainty is not {n} x {n} (events x positions)",
                    s + 1,
                    p.title
                ));
            }
        }
        let cert = |p: &PvdPanel, e: usize, k: usize| {
            let v = p.certainty[e][k];
            if v.is_finite() {
                v
            } else {
                0.0
            }
        };

        // Row order: by the earliest most likely position among the biomarker's events
        // in panel 0 (argmax of the certainty row, first maximum on ties); biomarkers
        // without events last; ties by biomarker index.
        let p0 = &input.panels[0];
        let mut first = vec![usize::MAX; b];
        for (e, &(bm, _, _)) in input.events.iter().enumerate() {
            let mut best = 0;
            for k in 1..n {
                if cert(p0, e, k) > cert(p0, e, best) {
                    best = k;
                }
            }
            first[bm] = first[bm].min(best);
        }
        let mut order: Vec<usize> = (0..b).collect();
        order.sort_by_key(|&i| (first[i], i));

        let panels = input
            .panels
            .iter()
            .map(|p| {
                let cells = order
                    .iter()
                    .map(|&bm| {
                        (0..n)
                            .map(|k| {
                                let mut c = [1.0f64; 3];
                                for (e, &(eb, level, _)) in input.events.iter().enumerate() {
                                    if eb != bm {
                                        continue;
                                    }
                                    let col = level_colour(level);
                                    let w = cert(p, e, k);
                                    for ch in 0..3 {
                                        c[ch] = (c[ch] - w * (1.0 - col[ch])).clamp(0.0, 1.0);
                                    }
                                }
                                to_rgb(c)
                            })
                            .collect()
                    })
                    .collect();
                (p.title.clone(), cells)
            })
            .collect();

        // Legend: one entry per level, with the value(s) the events give it, by
        // what the values are ("z = 1, 2; score 1" where biomarkers differ).
        let value_name = |bm: usize| {
            input
                .biomarker_value_names
                .get(bm)
                .copied()
                .unwrap_or(input.value_name)
        };
        let max_level = input.events.iter().map(|e| e.1).max().unwrap_or(0);
        let legend = (0..=max_level)
            .filter_map(|level| {
                let at_level: Vec<&(usize, usize, f64)> =
                    input.events.iter().filter(|e| e.1 == level).collect();
                if at_level.is_empty() {
                    return None;
                }
                let mut names: Vec<&str> = at_level.iter().map(|e| value_name(e.0)).collect();
                names.dedup();
                names.sort_by_key(|n| ["z", "score"].iter().position(|k| k == n).unwrap_or(2));
                names.dedup();
                let parts: Vec<String> = names
                    .iter()
                    .map(|&name| {
                        if name.is_empty() {
                            return "event".to_string();
                        }
                        let mut zv: Vec<f64> = at_level
                            .iter()
                            .filter(|e| value_name(e.0) == name)
                            .map(|e| e.2)
                            .collect();
                        zv.sort_by(|a, b| a.total_cmp(b));
                        let mut zs: Vec<String> = Vec::new();
                        for z in zv {
                            let s = fmt_num(z, 2);
                            if !zs.contains(&s) {
                                zs.push(s);
                            }
                        }
                        format!("{name} = {}", zs.join(", "))
                    })
                    .collect();
                Some((to_rgb(level_colour(level)), parts.join("; ")))
            })
            .collect();

        let rows: Vec<String> = order
            .iter()
            .map(|&i| input.biomarker_names[i].clone())
            .collect();
        let n = n as i32;
        let cw = (PANEL_W / n).max(3);
        let rh = (260 / (b.max(1) as i32)).clamp(19, 36);
        let label_w = rows
            .iter()
            .map(|s| text_width(s, NAME_SIZE) as i32)
            .max()
            .unwrap_or(0)
            + 12;
        let s = input.panels.len() as i32;
        let (nrows, ncols) = if input.per_row > 0 {
            let ncols = (input.per_row as i32).min(s);
            ((s + ncols - 1) / ncols, ncols)
        } else {
            let nrows = (s + 3) / 4;
            (nrows, (s + nrows - 1) / nrows)
        };

        // x ticks: position 1 and multiples of a step wide enough for the labels.
        let lw = text_width(&n.to_string(), TICK_SIZE) as i32 + 10;
        let step = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
            .into_iter()
            .find(|&st| st * cw >= lw)
            .unwrap_or(1000);
        let mut ticks = vec![1];
        let mut k = step;
        while k <= n {
            let prev = *ticks.last().unwrap();
            let wprev = text_width(&prev.to_string(), TICK_SIZE) as i32;
            let wk = text_width(&k.to_string(), TICK_SIZE) as i32;
            if k != prev && (k - prev) * cw >= (wprev + wk) / 2 + 6 {
                ticks.push(k);
            }
            k += step;
        }

        Ok(Pvd {
            rows,
            panels,
            legend,
            n,
            cw,
            rh,
            label_w,
            ncols,
            nrows,
            ticks,
        })
    }

    fn plot_w(&self) -> i32 {
        self.cw * self.n
    }

    fn plot_h(&self) -> i32 {
        self.rh * self.rows.len().max(1) as i32
    }

    fn block_h(&self) -> i32 {
        TITLE_H + self.plot_h() + TICK_H + AXIS_H + PANEL_VGAP
    }

    /// Top-left corner of panel `i`'s cell area.
    fn panel_origin(&self, i: usize) -> (i32, i32) {
        let (r, c) = (i as i32 / self.ncols, i as i32 % self.ncols);
        (
            MARGIN + self.label_w + c * (self.plot_w() + PANEL_HGAP),
            MARGIN + r * self.block_h() + TITLE_H,
        )
    }

    fn legend_width(&self) -> i32 {
        self.legend
            .iter()
            .map(|(_, l)| 14 + 6 + text_width(l, LEGEND_SIZE) as i32 + 24)
            .sum::<i32>()
            + text_width(LEGEND_NOTE, LEGEND_SIZE) as i32
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        i: usize,
    ) -> Result<(), String> {
        let (title, cells) = &self.panels[i];
        let (x0, y0) = self.panel_origin(i);
        let (pw, ph) = (self.plot_w(), self.plot_h());

        // Cells: runs of equal colour in a row as one rectangle; white is background.
        for (r, row) in cells.iter().enumerate() {
            let y = y0 + r as i32 * self.rh;
            let mut k = 0;
            while k < row.len() {
                let c = row[k];
                let mut end = k + 1;
                while end < row.len() && row[end] == c {
                    end += 1;
                }
                if c != WHITE {
                    let xa = x0 + k as i32 * self.cw;
                    let xb = x0 + end as i32 * self.cw;
                    root.draw(&Rectangle::new([(xa, y), (xb, y + self.rh)], c.filled()))
                        .map_err(draw_error)?;
                }
                k = end;
            }
        }
        // Row separators, frame, ticks.
        for r in 1..cells.len() as i32 {
            let y = y0 + r * self.rh;
            root.draw(&PathElement::new(vec![(x0, y), (x0 + pw - 1, y)], ROW_GRID))
                .map_err(draw_error)?;
        }
        let (xl, xr, yt, yb) = (x0 - 1, x0 + pw, y0 - 1, y0 + ph);
        root.draw(&PathElement::new(
            vec![(xl, yt), (xr, yt), (xr, yb), (xl, yb), (xl, yt)],
            BLACK,
        ))
        .map_err(draw_error)?;
        for &k in &self.ticks {
            let x = x0 + (k - 1) * self.cw + self.cw / 2;
            root.draw(&PathElement::new(vec![(x, yb), (x, yb + 4)], BLACK))
                .map_err(draw_error)?;
            text(
                root,
                &k.to_string(),
                (x, yb + 7),
                TICK_SIZE,
                HPos::Center,
                VPos::Top,
            )?;
        }
        text(
            root,
            "SuStaIn stage",
            (x0 + pw / 2, yb + TICK_H + AXIS_H / 2 + 2),
            AXIS_SIZE,
            HPos::Center,
            VPos::Center,
        )?;
        text(
            root,
            title,
            (x0 + pw / 2, y0 - TITLE_H / 2 - 2),
            TITLE_SIZE,
            HPos::Center,
            VPos::Center,
        )?;
        // Biomarker names left of the first panel of each panel row.
        if i as i32 % self.ncols == 0 {
            for (r, name) in self.rows.iter().enumerate() {
                let y = y0 + r as i32 * self.rh + self.rh / 2;
                text(
                    root,
                    name,
                    (x0 - 8, y),
                    NAME_SIZE,
                    HPos::Right,
                    VPos::Center,
                )?;
            }
        }
        Ok(())
    }
}

impl Figure for Pvd {
    fn size(&self) -> (u32, u32) {
        let grid_w = self.label_w + self.ncols * self.plot_w() + (self.ncols - 1) * PANEL_HGAP;
        let w = 2 * MARGIN + grid_w.max(self.legend_width());
        let h = 2 * MARGIN + self.nrows * self.block_h() + LEGEND_H;
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for i in 0..self.panels.len() {
            self.draw_panel(root, i)?;
        }
        // Legend, centred under the panels.
        let (w, h) = self.size();
        let mut x = (w as i32 - self.legend_width()) / 2;
        let y = h as i32 - MARGIN - LEGEND_H / 2;
        for (colour, label) in &self.legend {
            swatch(root, (x, y), 14, colour.filled())?;
            root.draw(&PathElement::new(
                vec![
                    (x, y - 7),
                    (x + 14, y - 7),
                    (x + 14, y + 7),
                    (x, y + 7),
                    (x, y - 7),
                ],
                BLACK,
            ))
            .map_err(draw_error)?;
            x += 20;
            text(root, label, (x, y), LEGEND_SIZE, HPos::Left, VPos::Center)?;
            x += text_width(label, LEGEND_SIZE) as i32 + 24;
        }
        text(
            root,
            LEGEND_NOTE,
            (x, y),
            LEGEND_SIZE,
            HPos::Left,
            VPos::Center,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::z_input;

    fn one_hot(n: usize, pos: &[(usize, usize, f64)]) -> Vec<Vec<f64>> {
        let mut c = vec![vec![0.0; n]; n];
        for &(e, k, v) in pos {
            c[e][k] = v;
        }
        c
    }

    #[test]
    fn plot_pvd_colours_and_row_order() {
        let names = vec!["A".to_string(), "B".to_string()];
        // A: z = 1 and z = 2; B: z = 1.
        let events = [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 1.0)];
        let panels = [
            PvdPanel {
                title: "one".into(),
                // B's event first, then A's two events.
                certainty: one_hot(3, &[(2, 0, 1.0), (0, 1, 1.0), (1, 2, 1.0)]),
            },
            PvdPanel {
                title: "two".into(),
                // A's z = 1 event split between positions 0 and 1; its z = 2 event
                // certain at 1; B's event half at 2; NaN counts as 0.
                certainty: vec![
                    vec![0.5, 0.5, 0.0],
                    vec![0.0, 1.0, f64::NAN],
                    vec![0.0, 0.0, 0.5],
                ],
            },
        ];
        let input = z_input(&names, &events, &panels);
        let pvd = Pvd::new(&input).unwrap();
        // Rows follow panel 0's most likely sequence: B (position 0) before A.
        assert_eq!(pvd.rows, vec!["B".to_string(), "A".to_string()]);
        // Level colours (1, 0.55, 0.45) and (0.8, 0, 0.8), times 255.
        let red = RGBColor(255, 140, 115);
        let magenta = RGBColor(204, 0, 204);
        let c0 = &pvd.panels[0].1;
        assert_eq!(c0[0], vec![red, WHITE, WHITE]);
        assert_eq!(c0[1], vec![WHITE, red, magenta]);
        let c1 = &pvd.panels[1].1;
        // Half red: each channel loses half of what red lacks (0, 0.45, 0.55):
        // 1 - 0.225 = 0.775 and 1 - 0.275 = 0.725.
        assert_eq!(c1[0], vec![WHITE, WHITE, RGBColor(255, 198, 185)]);
        // Red (0.5), then red (0.5) + magenta (1.0): red loses magenta's 0.2, green
        // clamps at 0, blue loses red's 0.275 and magenta's 0.2 (0.525).
        assert_eq!(
            c1[1],
            vec![RGBColor(255, 198, 185), RGBColor(204, 0, 134), WHITE]
        );
        // Legend: one entry per level.
        assert_eq!(
            pvd.legend,
            vec![(red, "z = 1".to_string()), (magenta, "z = 2".to_string())]
        );
    }

    /// CIE L* (D65) of an sRGB colour with channels in [0, 1].
    fn lightness(c: [f64; 3]) -> f64 {
        let lin = |v: f64| {
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let y = 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
        if y > 216.0 / 24389.0 {
            116.0 * y.cbrt() - 16.0
        } else {
            y * 24389.0 / 27.0
        }
    }

    /// In grey print only lightness is left: z = 1, 2, 3 must get darker in that
    /// order, each clearly apart from the next (pure red and magenta, L* 53 and 60,
    /// were not). Also after a red-green colour-blind view (Machado et al. 2009,
    /// deuteranopia and protanopia at full severity, applied to linear RGB).
    #[test]
    fn plot_pvd_levels_differ_in_lightness() {
        let lin = |v: f64| {
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let enc = |v: f64| {
            let v = v.clamp(0.0, 1.0);
            if v <= 0.0031308 {
                12.92 * v
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            }
        };
        let views: [(&str, [[f64; 3]; 3]); 3] = [
            (
                "normal",
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            ),
            (
                "deuteranopia",
                [
                    [0.367322, 0.860646, -0.227968],
                    [0.280085, 0.672501, 0.047413],
                    [-0.011820, 0.042940, 0.968881],
                ],
            ),
            (
                "protanopia",
                [
                    [0.152286, 1.052583, -0.204868],
                    [0.114503, 0.786281, 0.099216],
                    [-0.003882, -0.048116, 1.051998],
                ],
            ),
        ];
        for (name, m) in views {
            let l: Vec<f64> = LEVEL_COLOURS[..3]
                .iter()
                .map(|c| {
                    let v = c.map(lin);
                    let seen = [0, 1, 2].map(|i| enc((0..3).map(|j| m[i][j] * v[j]).sum()));
                    lightness(seen)
                })
                .collect();
            for w in l.windows(2) {
                assert!(w[0] - w[1] >= 15.0, "{name}: L* of z = 1, 2, 3 {l:?}");
            }
        }
    }

    #[test]
    fn plot_pvd_png_cells_have_the_colours() {
        let names = vec!["A".to_string(), "B".to_string()];
        let events = [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 1.0)];
        let panels = [PvdPanel {
            title: "one".into(),
            certainty: one_hot(3, &[(2, 0, 1.0), (0, 1, 1.0), (1, 2, 1.0)]),
        }];
        let input = z_input(&names, &events, &panels);
        let dir = tempfile::tempdir().unwrap();
        let paths = draw_pvd(&dir.path().join("pvd"), &input).unwrap();
        let img = image::open(&paths[1]).unwrap().to_rgb8();
        let pvd = Pvd::new(&input).unwrap();
        let (x0, y0) = pvd.panel_origin(0);
        let at = |row: i32, k: i32| {
            let x = x0 + k * pvd.cw + pvd.cw / 2;
            let y = y0 + row * pvd.rh + pvd.rh / 2;
            img.get_pixel(x as u32, y as u32).0
        };
        assert_eq!(at(0, 0), [255, 140, 115]);
        assert_eq!(at(0, 1), [255, 255, 255]);
        assert_eq!(at(1, 1), [255, 140, 115]);
        assert_eq!(at(1, 2), [204, 0, 204]);
    }
}
