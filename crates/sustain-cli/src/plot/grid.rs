//! The layout the per-biomarker figures share (`sustain mixture`, `sustain
//! suggest-model`): a legend strip on top, one panel per biomarker in a grid below.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotError;

/// Height of the legend strip in pixels.
pub(super) const LEGEND_H: u32 = 44;
/// The line the legend's entries are centred on.
pub(super) const LEGEND_MIDDLE: i32 = LEGEND_H as i32 / 2;

/// A grid of `rows x cols` panels of `panel` pixels under the legend strip.
pub(super) struct PanelGrid {
    pub panel: (u32, u32),
    pub cols: usize,
    pub rows: usize,
}

impl PanelGrid {
    /// The grid for `n` panels in `cols` columns; refuses (naming the figure
    /// `stem`) a figure without panels.
    pub fn new(
        stem: &Path,
        n: usize,
        cols: impl FnOnce(usize) -> usize,
        panel: (u32, u32),
    ) -> Result<Self, PlotError> {
        if n == 0 {
            return Err(PlotError(format!(
                "cannot draw figure {}.svg/.png: no biomarkers",
                stem.display()
            )));
        }
        let cols = cols(n);
        Ok(Self {
            panel,
            cols,
            rows: n.div_ceil(cols),
        })
    }

    /// The figure's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            self.panel.0 * self.cols as u32,
            self.panel.1 * self.rows as u32 + LEGEND_H,
        )
    }

    /// Draws the legend, then each of `panels` in its cell, row by row.
    pub fn draw<DB: DrawingBackend, P>(
        &self,
        root: &DrawingArea<DB, Shift>,
        panels: &[P],
        legend: impl FnOnce(&DrawingArea<DB, Shift>) -> Result<(), String>,
        panel: impl Fn(&DrawingArea<DB, Shift>, &P) -> Result<(), String>,
    ) -> Result<(), String> {
        let (strip, grid) = root.split_vertically(LEGEND_H);
        legend(&strip)?;
        let cells = grid.split_evenly((self.rows, self.cols));
        for (p, area) in panels.iter().zip(&cells) {
            panel(area, p)?;
        }
        Ok(())
    }
}
