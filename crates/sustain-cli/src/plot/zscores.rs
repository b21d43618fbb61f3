//! The figure of `sustain suggest-model`: per biomarker, how the patients' (and
//! controls') z-scores are distributed, with the proposed thresholds (`z_vals`, in
//! the positional variance diagram's level colours) and `z_max` drawn over it.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::grid::{PanelGrid, LEGEND_MIDDLE};
use super::pvd::LEVEL_COLOURS;
use super::{
    draw_error, fmt_num, font, render, swatch, text, BiomarkerValues, Figure, PlotError, PALETTE,
};

/// Width of a histogram bin, in z-score units.
const BIN: f64 = 0.5;
const PANEL: (u32, u32) = (380, 270);

/// One biomarker: its observed z-scores and the proposed thresholds.
#[derive(Debug, Clone)]
pub struct ZscorePanel {
    pub values: BiomarkerValues,
    pub z_vals: Vec<f64>,
    pub z_max: f64,
}

/// Draws every biomarker's panel in a grid (two columns) to `<stem>.svg` and
/// `<stem>.png`; returns both paths.
pub fn draw_zscores(stem: &Path, panels: &[ZscorePanel]) -> Result<Vec<PathBuf>, PlotError> {
    let grid = PanelGrid::new(stem, panels.len(), |n| n.min(2), PANEL)?;
    render(
        stem,
        &Zscores {
            panels: panels.to_vec(),
            grid,
            controls: panels.iter().any(|p| !p.values.controls.is_empty()),
        },
    )
}

struct Zscores {
    panels: Vec<ZscorePanel>,
    grid: PanelGrid,
    controls: bool,
}

const PATIENT: RGBColor = PALETTE[1];
const CONTROL: RGBColor = RGBColor(150, 150, 150);

fn level_colour(level: usize) -> RGBColor {
    let c = LEVEL_COLOURS[level % LEVEL_COLOURS.len()];
    let q = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(q(c[0]), q(c[1]), q(c[2]))
}

impl Figure for Zscores {
    fn size(&self) -> (u32, u32) {
        self.grid.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let legend = |area: &DrawingArea<DB, Shift>| self.draw_legend(area);
        self.grid.draw(root, &self.panels, legend, draw_panel)
    }
}

impl Zscores {
    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let y = LEGEND_MIDDLE;
        let mut x = 12;
        let mut groups = vec![("patients", PATIENT)];
        if self.controls {
            groups.push(("controls", CONTROL));
        }
        for (label, colour) in groups {
            swatch(area, (x, y), 18, colour.mix(0.5).filled())?;
            text(area, label, (x + 24, y), 13.0, HPos::Left, VPos::Center)?;
            x += 100;
        }
        let levels = self
            .panels
            .iter()
            .map(|p| p.z_vals.len())
            .max()
            .unwrap_or(0);
        for l in 0..levels {
            area.draw(&PathElement::new(
                vec![(x, y - 8), (x, y + 8)],
                level_colour(l).stroke_width(3),
            ))
            .map_err(draw_error)?;
            text(
                area,
                // The rule's thresholds are z = 1, 2, ... by level.
                &format!("z = {}", l + 1),
                (x + 8, y),
                13.0,
                HPos::Left,
                VPos::Center,
            )?;
            x += 70;
        }
        area.draw(&PathElement::new(
            vec![(x, y - 8), (x, y + 8)],
            BLACK.stroke_width(2),
        ))
        .map_err(draw_error)?;
        text(area, "z_max", (x + 8, y), 13.0, HPos::Left, VPos::Center)
    }
}

/// Per bin from `lo` (width [`BIN`]): the share of `values` in it.
fn shares(values: &[f64], lo: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    for &v in values {
        let i = ((v - lo) / BIN).floor();
        let i = if i < 0.0 {
            0
        } else {
            (i as usize).min(bins - 1)
        };
        counts[i] += 1;
    }
    let n = values.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &ZscorePanel,
) -> Result<(), String> {
    // The axis: from below the lowest value (at most -2) to past z_max; values
    // beyond it land in the end bins.
    let all = panel.values.patients.iter().chain(&panel.values.controls);
    let min = all.clone().copied().fold(f64::INFINITY, f64::min);
    let max = all.copied().fold(f64::NEG_INFINITY, f64::max);
    let lo = (min.clamp(-4.0, -1.0) / BIN).floor() * BIN;
    let hi = ((max.min(panel.z_max + 3.0).max(panel.z_max + 0.5)) / BIN).ceil() * BIN;
    let bins = (((hi - lo) / BIN).round() as usize).max(1);
    let patients = shares(&panel.values.patients, lo, bins);
    let controls = shares(&panel.values.controls, lo, bins);
    let top = patients
        .iter()
        .chain(&controls)
        .copied()
        .fold(0.0_f64, f64::max)
        .max(0.01)
        * 1.1;
    let mut chart = panel.values.panel_chart(area, lo..hi, top, (40, 46))?;
    chart
        .configure_mesh()
        .label_style(font(11.0))
        .axis_desc_style(font(12.0))
        .x_desc("z-score")
        .y_desc("share of group")
        .x_labels(8)
        .y_labels(4)
        .x_label_formatter(&|x| fmt_num(*x, 1))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .disable_x_mesh()
        .bold_line_style(RGBColor(230, 230, 230))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(draw_error)?;
    for (i, (&p, &c)) in patients.iter().zip(&controls).enumerate() {
        let a = lo + i as f64 * BIN;
        // The controls' bar first, the patients' over it.
        for (height, colour) in [(c, CONTROL.mix(0.45)), (p, PATIENT.mix(0.5))] {
            if height > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, 0.0), (a + BIN, height)],
                        colour.filled(),
                    )))
                    .map_err(draw_error)?;
            }
        }
    }
    for (l, &z) in panel.z_vals.iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                [(z, 0.0), (z, top)],
                level_colour(l).stroke_width(3),
            ))
            .map_err(draw_error)?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            [(panel.z_max, 0.0), (panel.z_max, top)],
            6,
            4,
            BLACK.stroke_width(2),
        ))
        .map_err(draw_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_one_and_clamp_to_the_ends() {
        let s = shares(&[-9.0, 0.1, 0.2, 0.7, 99.0], 0.0, 4);
        assert_eq!(s.len(), 4);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((s[0] - 0.6).abs() < 1e-12, "{s:?}");
        assert!((s[3] - 0.2).abs() < 1e-12, "{s:?}");
    }
}
