//! MCMC log-likelihood traces.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::style::text_anchor::{HPos, VPos};

use super::{
    draw_error, fmt_num, font, padded_range, render, text, text_width, y_tick_labels, Figure,
    PlotError, PALETTE,
};

/// Most points drawn per chain; longer chains are reduced to the minimum and maximum
/// of each of `MAX_POINTS / 2` equal blocks of iterations, which keeps the envelope.
const MAX_POINTS: usize = 4000;

/// Log-likelihood trace of every chain (one line per chain, distinct colours, legend
/// "chain i" with i from 1), x = iteration (from 0). Non-finite values are skipped.
/// Writes `<stem>.svg` and `<stem>.png`; returns both paths.
pub fn draw_traces(
    stem: &Path,
    title: &str,
    chains: &[Vec<f64>],
) -> Result<Vec<PathBuf>, PlotError> {
    if chains.is_empty() {
        return Err(PlotError(format!(
            "cannot draw figure {}.svg/.png: no chains",
            stem.display()
        )));
    }
    let fig = Traces {
        title: title.to_string(),
        chains: chains.iter().map(|c| decimate(c)).collect(),
        len: chains.iter().map(Vec::len).max().unwrap_or(0),
    };
    render(stem, &fig)
}

/// (iteration, value) of the finite values, reduced to at most about `MAX_POINTS`.
fn decimate(chain: &[f64]) -> Vec<(f64, f64)> {
    let finite = |i: usize| chain[i].is_finite();
    if chain.len() <= MAX_POINTS {
        return (0..chain.len())
            .filter(|&i| finite(i))
            .map(|i| (i as f64, chain[i]))
            .collect();
    }
    let block = chain.len().div_ceil(MAX_POINTS / 2);
    let mut out = Vec::with_capacity(MAX_POINTS + 2);
    for start in (0..chain.len()).step_by(block) {
        let end = (start + block).min(chain.len());
        let (mut lo, mut hi) = (None::<usize>, None::<usize>);
        for i in (start..end).filter(|&i| finite(i)) {
            if lo.is_none_or(|j| chain[i] < chain[j]) {
                lo = Some(i);
            }
            if hi.is_none_or(|j| chain[i] > chain[j]) {
                hi = Some(i);
            }
        }
        match (lo, hi) {
            (Some(a), Some(b)) if a == b => out.push((a as f64, chain[a])),
            (Some(a), Some(b)) => {
                let (a, b) = (a.min(b), a.max(b));
                out.push((a as f64, chain[a]));
                out.push((b as f64, chain[b]));
            }
            _ => {}
        }
    }
    out
}

struct Traces {
    title: String,
    chains: Vec<Vec<(f64, f64)>>,
    len: usize,
}

impl Figure for Traces {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = self.size();
        // Legend in a column right of the plot, so that it never hides a trace.
        let names: Vec<String> = (1..=self.chains.len())
            .map(|i| format!("chain {i}"))
            .collect();
        let legend_w = names.iter().map(|n| text_width(n, 13.0)).max().unwrap_or(0) as i32 + 60;
        let (plot_area, legend_area) = root.split_horizontally(w as i32 - legend_w);

        let (y0, y1) = padded_range(self.chains.iter().flatten().map(|p| &p.1), 0.04);
        let x1 = (self.len.max(2) - 1) as f64;
        let (digits, y_label_w) = y_tick_labels(y0, y1, 8);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, font(20.0))
            .margin(16)
            .margin_right(12)
            .x_label_area_size(48)
            .y_label_area_size(y_label_w + 40)
            .build_cartesian_2d(0.0..x1, y0..y1)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("MCMC iteration")
            .y_desc("Log-likelihood")
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|x| fmt_num(*x, 0))
            .y_label_formatter(&|y| fmt_num(*y, digits))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(245, 245, 245))
            .x_max_light_lines(2)
            .y_max_light_lines(2)
            .draw()
            .map_err(draw_error)?;
        for (i, pts) in self.chains.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(1)))
                .map_err(draw_error)?;
        }

        // Legend entries from the top of the plotting area down.
        let top = chart.plotting_area().get_pixel_range().1.start;
        let room = h as i32 - top - 70;
        let spacing = (room / names.len().max(1) as i32).clamp(15, 22);
        let fits = (room / spacing + 1) as usize;
        for (i, name) in names.iter().enumerate() {
            let y = top + 10 + i as i32 * spacing;
            if i + 1 == fits && names.len() > fits {
                let more = format!("… {} chains", names.len());
                text(&legend_area, &more, (4, y), 13.0, HPos::Left, VPos::Center)?;
                break;
            }
            let colour = PALETTE[i % PALETTE.len()];
            legend_area
                .draw(&PathElement::new(
                    vec![(4, y), (28, y)],
                    colour.stroke_width(3),
                ))
                .map_err(draw_error)?;
            text(&legend_area, name, (36, y), 13.0, HPos::Left, VPos::Center)?;
        }
        Ok(())
    }
}
