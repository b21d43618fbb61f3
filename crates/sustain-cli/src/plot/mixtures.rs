//! The mixture check figure of `sustain mixture`: per biomarker, the controls' and
//! patients' values as a stacked density histogram with the two fitted components
//! drawn over it at their weights (as kde_ebm's `mixture_model_grid`), so the
//! curves should follow the bars when a mixture fits.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::grid::{PanelGrid, LEGEND_MIDDLE};
use super::{
    draw_error, fmt_num, font, padded_range, render, swatch, text, tick_digits, BiomarkerValues,
    Figure, PlotError, PALETTE,
};
use sustain_model::mixture_fit::Fitted;

/// Histogram bins per panel (kde_ebm uses 12).
const BINS: usize = 12;
/// Points per fitted curve.
const CURVE_POINTS: usize = 200;
const PANEL: (u32, u32) = (340, 260);

/// One biomarker: its observed values and the fit.
#[derive(Debug, Clone)]
pub struct MixturePanel {
    pub values: BiomarkerValues,
    pub fit: Fitted,
}

/// Draws every panel in a grid (columns = round(sqrt(n)), as kde_ebm) to
/// `<stem>.svg` and `<stem>.png`; returns both paths.
pub fn draw_mixtures(stem: &Path, panels: &[MixturePanel]) -> Result<Vec<PathBuf>, PlotError> {
    let cols = |n: usize| ((n as f64).sqrt().round() as usize).max(1);
    let grid = PanelGrid::new(stem, panels.len(), cols, PANEL)?;
    render(
        stem,
        &Mixtures {
            panels: panels.to_vec(),
            grid,
        },
    )
}

struct Mixtures {
    panels: Vec<MixturePanel>,
    grid: PanelGrid,
}

const CONTROL: RGBColor = PALETTE[0];
const PATIENT: RGBColor = PALETTE[1];

impl Figure for Mixtures {
    fn size(&self) -> (u32, u32) {
        self.grid.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        self.grid.draw(root, &self.panels, draw_legend, draw_panel)
    }
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let y = LEGEND_MIDDLE;
    let mut x = 16;
    for (label, colour) in [("controls", CONTROL), ("patients", PATIENT)] {
        swatch(area, (x, y), 22, colour.mix(0.45).filled())?;
        text(area, label, (x + 30, y), 14.0, HPos::Left, VPos::Center)?;
        x += 130;
    }
    for (label, colour) in [
        ("no-event component (p_no_event)", CONTROL),
        ("event component (p_event)", PATIENT),
    ] {
        area.draw(&PathElement::new(
            vec![(x, y), (x + 26, y)],
            colour.stroke_width(3),
        ))
        .map_err(draw_error)?;
        text(area, label, (x + 34, y), 14.0, HPos::Left, VPos::Center)?;
        x += 290;
    }
    Ok(())
}

/// Stacked density histogram: per bin, (lower edge, upper edge, control height,
/// patient height), heights scaled so the whole histogram has area 1.
fn histogram(controls: &[f64], patients: &[f64], lo: f64, hi: f64) -> Vec<(f64, f64, f64, f64)> {
    let width = (hi - lo) / BINS as f64;
    let total = (controls.len() + patients.len()) as f64;
    let bin = |x: f64| (((x - lo) / width) as usize).min(BINS - 1);
    let mut counts = [(0usize, 0usize); BINS];
    for &x in controls {
        counts[bin(x)].0 += 1;
    }
    for &x in patients {
        counts[bin(x)].1 += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &(c, p))| {
            let a = lo + i as f64 * width;
            let scale = 1.0 / (total * width);
            (a, a + width, c as f64 * scale, p as f64 * scale)
        })
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &MixturePanel,
) -> Result<(), String> {
    let values = panel.values.controls.iter().chain(&panel.values.patients);
    let (lo, hi) = padded_range(values.clone(), 0.0);
    let bars = histogram(&panel.values.controls, &panel.values.patients, lo, hi);
    let curves: Vec<(f64, f64, f64)> = (0..CURVE_POINTS)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64;
            let (no, yes) = panel.fit.ln_likelihoods(x);
            (x, no.exp(), yes.exp())
        })
        .collect();
    let top = bars
        .iter()
        .map(|b| b.2 + b.3)
        .chain(curves.iter().flat_map(|c| [c.1, c.2]))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.08 } else { 1.0 };
    let digits = tick_digits(lo, hi, 4);
    let mut chart = panel.values.panel_chart(area, lo..hi, top, (26, 10))?;
    chart
        .configure_mesh()
        .label_style(font(11.0))
        .x_labels(5)
        .y_labels(0)
        .x_label_formatter(&|x| fmt_num(*x, digits))
        .disable_y_mesh()
        .bold_line_style(RGBColor(230, 230, 230))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(draw_error)?;
    for &(a, b, c, p) in &bars {
        if c > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, 0.0), (b, c)],
                    CONTROL.mix(0.45).filled(),
                )))
                .map_err(draw_error)?;
        }
        if p > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, c), (b, c + p)],
                    PATIENT.mix(0.45).filled(),
                )))
                .map_err(draw_error)?;
        }
    }
    chart
        .draw_series(LineSeries::new(
            curves.iter().map(|c| (c.0, c.1)),
            CONTROL.stroke_width(2),
        ))
        .map_err(draw_error)?;
    chart
        .draw_series(LineSeries::new(
            curves.iter().map(|c| (c.0, c.2)),
            PATIENT.stroke_width(2),
        ))
        .map_err(draw_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_has_unit_area_and_keeps_the_groups_apart() {
        let controls = [0.0, 0.1, 0.2, 0.5];
        let patients = [0.9, 1.0, 1.0];
        let bars = histogram(&controls, &patients, 0.0, 1.0);
        assert_eq!(bars.len(), BINS);
        let area: f64 = bars.iter().map(|b| (b.1 - b.0) * (b.2 + b.3)).sum();
        assert!((area - 1.0).abs() < 1e-12);
        let control_area: f64 = bars.iter().map(|b| (b.1 - b.0) * b.2).sum();
        assert!((control_area - 4.0 / 7.0).abs() < 1e-12);
        // The maximum lands in the last bin, not past it.
        assert!(bars[BINS - 1].3 > 0.0);
    }
}
