//! Cross-validation summary: CVIC and test-set log-likelihood per number of subtypes.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::style::text_anchor::{HPos, VPos};

use super::{
    draw_error, fmt_num, font, padded_range, render, text, text_width, y_tick_labels, Figure,
    PlotError, PALETTE,
};

/// Cross-validation: CVIC per subtype count (left panel) and test log-likelihood per
/// subtype count with each fold as a point and the mean (right panel).
/// `cvic[s]` is for s+1 subtypes, `fold_loglike[i][s]` for fold i. Non-finite values
/// are skipped. Writes `<stem>.svg` and `<stem>.png`; returns both paths.
pub fn draw_cvic(
    stem: &Path,
    cvic: &[f64],
    fold_loglike: &[Vec<f64>],
) -> Result<Vec<PathBuf>, PlotError> {
    let n = fold_loglike
        .iter()
        .map(Vec::len)
        .fold(cvic.len(), usize::max);
    if n == 0 {
        return Err(PlotError(format!(
            "cannot draw figure {}.svg/.png: no subtype counts",
            stem.display()
        )));
    }
    render(
        stem,
        &Cvic {
            cvic: cvic.to_vec(),
            folds: fold_loglike.to_vec(),
            n,
        },
    )
}

struct Cvic {
    cvic: Vec<f64>,
    folds: Vec<Vec<f64>>,
    /// Number of subtype counts (x from 1 to n).
    n: usize,
}

const FOLD_COLOUR: RGBColor = PALETTE[0];
const FOLD_ALPHA: f64 = 0.8;
const MEAN_COLOUR: RGBColor = RGBColor(0, 0, 0);
const LEGEND_H: i32 = 34;

/// Per subtype count `s < n`, the mean of the finite values `folds[f][s]` over the
/// folds (none when no fold has one).
pub(crate) fn finite_means(folds: &[Vec<f64>], n: usize) -> Vec<Option<f64>> {
    (0..n)
        .map(|s| {
            let v: Vec<f64> = folds
                .iter()
                .filter_map(|f| f.get(s).copied())
                .filter(|v| v.is_finite())
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

impl Cvic {
    /// Mean over folds of the finite test log-likelihoods, per subtype count.
    fn means(&self) -> Vec<Option<f64>> {
        finite_means(&self.folds, self.n)
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        y_desc: &str,
        values: &[f64],
    ) -> Result<
        ChartContext<
            '_,
            DB,
            Cartesian2d<
                plotters::coord::types::RangedCoordf64,
                plotters::coord::types::RangedCoordf64,
            >,
        >,
        String,
    > {
        let (y0, y1) = padded_range(values, 0.08);
        let (digits, y_label_w) = y_tick_labels(y0, y1, 7);
        let x1 = self.n as f64 + 0.5;
        let mut chart = ChartBuilder::on(area)
            .caption(title, font(19.0))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(y_label_w + 40)
            .build_cartesian_2d(0.5..x1, y0..y1)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("Number of subtypes")
            .y_desc(y_desc)
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .x_labels(self.n.min(10))
            .y_labels(7)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-9 {
                    fmt_num(*x, 0)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| fmt_num(*y, digits))
            .disable_x_mesh()
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(245, 245, 245))
            .y_max_light_lines(2)
            .draw()
            .map_err(draw_error)?;
        Ok(chart)
    }
}

impl Figure for Cvic {
    fn size(&self) -> (u32, u32) {
        (1100, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = self.size();
        // The legend goes in a strip under the right panel, so that it hides no point.
        let (charts, strip) = root.split_vertically(h as i32 - LEGEND_H);
        let halves = charts.split_evenly((1, 2));

        // Left: CVIC, lower is better.
        let mut left = self.panel(&halves[0], "CVIC (lower is better)", "CVIC", &self.cvic)?;
        let pts: Vec<(f64, f64)> = self
            .cvic
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(s, &v)| ((s + 1) as f64, v))
            .collect();
        left.draw_series(LineSeries::new(
            pts.iter().copied(),
            MEAN_COLOUR.stroke_width(2),
        ))
        .map_err(draw_error)?;
        left.draw_series(pts.iter().map(|&p| Circle::new(p, 5, MEAN_COLOUR.filled())))
            .map_err(draw_error)?;

        // Right: each fold's test log-likelihood, and the mean over folds.
        let all: Vec<f64> = self.folds.iter().flatten().copied().collect();
        let mut right = self.panel(
            &halves[1],
            "Test-set log-likelihood",
            "Log-likelihood",
            &all,
        )?;
        let nf = self.folds.len();
        let fold_pts: Vec<(f64, f64)> = self
            .folds
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                // Folds spread a little along x so that equal values stay visible.
                let dx = if nf > 1 {
                    (i as f64 / (nf - 1) as f64 - 0.5) * 0.24
                } else {
                    0.0
                };
                f.iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(move |(s, &v)| ((s + 1) as f64 + dx, v))
            })
            .collect();
        right
            .draw_series(
                fold_pts
                    .iter()
                    .map(|&p| Circle::new(p, 4, FOLD_COLOUR.mix(FOLD_ALPHA).filled())),
            )
            .map_err(draw_error)?;
        let mean_pts: Vec<(f64, f64)> = self
            .means()
            .iter()
            .enumerate()
            .filter_map(|(s, m)| m.map(|m| ((s + 1) as f64, m)))
            .collect();
        right
            .draw_series(LineSeries::new(
                mean_pts.iter().copied(),
                MEAN_COLOUR.stroke_width(2),
            ))
            .map_err(draw_error)?;
        right
            .draw_series(mean_pts.iter().map(|&(x, y)| {
                PathElement::new(
                    vec![(x - 0.18, y), (x + 0.18, y)],
                    MEAN_COLOUR.stroke_width(3),
                )
            }))
            .map_err(draw_error)?;

        let fold_label = if nf == 1 {
            "the fold".to_string()
        } else {
            format!("each of the {nf} folds")
        };
        let mean_label = "mean over folds";
        let legend_w = 8
            + 8
            + text_width(&fold_label, 13.0) as i32
            + 28
            + 24
            + 8
            + text_width(mean_label, 13.0) as i32;
        let mut x = (w as i32 * 3 / 4 - legend_w / 2).max(0);
        let y = LEGEND_H / 2 - 4;
        strip
            .draw(&Circle::new(
                (x + 4, y),
                4,
                FOLD_COLOUR.mix(FOLD_ALPHA).filled(),
            ))
            .map_err(draw_error)?;
        x += 16;
        text(&strip, &fold_label, (x, y), 13.0, HPos::Left, VPos::Center)?;
        x += text_width(&fold_label, 13.0) as i32 + 28;
        strip
            .draw(&PathElement::new(
                vec![(x, y), (x + 24, y)],
                MEAN_COLOUR.stroke_width(3),
            ))
            .map_err(draw_error)?;
        x += 32;
        text(&strip, mean_label, (x, y), 13.0, HPos::Left, VPos::Center)?;
        Ok(())
    }
}
