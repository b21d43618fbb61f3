//! The layout the per-biomarker figures share (`sustain mixture`, `sustain
//! suggest-model`): a legend strip on top, one panel per biomarker in a grid below.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotError;

/// A grid of `rows x cols` panels of `panel` pixels under a legend `legend_h` high.
pub(super) struct PanelGrid {
    pub panel: (u32, u32),
    pub legend_h: u32,
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
        legend_h: u32,
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
            legend_h,
            cols,
            rows: n.div_ceil(cols),
        })
    }

    /// The figure's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            self.panel.0 * self.cols as u32,
            self.panel.1 * self.rows as u32 + self.legend_h,
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
        let (strip, grid) = root.split_vertically(self.legend_h);
        legend(&strip)?;
        let cells = grid.split_evenly((self.rows, self.cols));
        for (p, area) in panels.iter().zip(&cells) {
            panel(area, p)?;
        }
        Ok(())
    }
}
