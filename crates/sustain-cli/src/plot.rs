//! Figures of the `sustain` tool: positional variance diagrams, MCMC traces and
//! cross-validation summaries.
//!
//! Plain data in, files out: every `draw_*` function writes `<stem>.svg` and
//! `<stem>.png` and returns both paths. Each file is first written to a temporary
//! file in the same folder and then renamed, so a half-written figure never looks
//! complete. Output is deterministic: the same input gives byte-identical files.
//!
//! Text is rendered with a bundled copy of DejaVu Sans (see `assets/`), registered
//! with plotters' `ab_glyph` font support, so no system font or fontconfig is needed.
//! The SVG files name the font family `sans-serif` and leave the glyphs to the viewer.

mod cvic;
mod grid;
mod mixtures;
mod pvd;
mod raster;
#[cfg(test)]
mod tests;
mod traces;
mod zscores;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

pub use cvic::draw_cvic;
pub(crate) use cvic::finite_means;
pub use mixtures::{draw_mixtures, MixturePanel};

pub use pvd::{draw_pvd, PvdInput, PvdPanel};
pub use traces::draw_traces;
pub use zscores::{draw_zscores, ZscorePanel};

/// One biomarker's observed values by group: what a panel of the per-biomarker
/// figures of `sustain mixture` and `sustain suggest-model` is drawn from.
#[derive(Debug, Clone)]
pub struct BiomarkerValues {
    pub name: String,
    pub controls: Vec<f64>,
    pub patients: Vec<f64>,
}

/// A chart whose x and y axes are both `f64`.
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl BiomarkerValues {
    /// The chart of this biomarker's panel on `area`: its name as the caption, x
    /// over `x`, y from 0 to `top`, and label areas of `label_areas` (x, y) pixels.
    fn panel_chart<'a, DB: DrawingBackend>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
        x: std::ops::Range<f64>,
        top: f64,
        label_areas: (u32, u32),
    ) -> Result<Chart2d<'a, DB>, String> {
        ChartBuilder::on(area)
            .caption(&self.name, font(15.0))
            .margin(8)
            .x_label_area_size(label_areas.0)
            .y_label_area_size(label_areas.1)
            .build_cartesian_2d(x, 0.0..top)
            .map_err(draw_error)
    }
}

/// The font family every figure uses; the bundled font is registered under this name.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// An error while drawing or writing a figure; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError(pub String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

/// Registers the bundled font once per process.
fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the bundled font DejaVuSans.ttf could not be parsed".to_string())
        })
        .clone()
}

/// A figure that can be drawn on any plotters backend.
pub(crate) trait Figure {
    /// Size in pixels (width, height); the PNG has exactly this size.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`, which is already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// `<stem>.<ext>`, appending to the file name (a dot in the stem is kept).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// A temporary path next to `target` ([`crate::io::temp_path`]), with the same
/// extension (the bitmap backend picks the image format from it).
fn temp_path(target: &Path, ext: &str) -> PathBuf {
    with_suffix(&crate::io::temp_path(target), ext)
}

/// Fills `root` white, draws `fig` on it and presents it.
fn paint<DB: DrawingBackend, F: Figure>(
    root: &DrawingArea<DB, Shift>,
    fig: &F,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(draw_error)?;
    fig.draw(root)?;
    root.present().map_err(draw_error)
}

fn finish(tmp: &Path, target: &Path) -> Result<(), PlotError> {
    std::fs::rename(tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        PlotError(format!("cannot write figure {}: {e}", target.display()))
    })
}

/// Draws `fig` to `<stem>.svg` and `<stem>.png`.
pub(crate) fn render<F: Figure>(stem: &Path, fig: &F) -> Result<Vec<PathBuf>, PlotError> {
    let svg_path = with_suffix(stem, "svg");
    let png_path = with_suffix(stem, "png");
    ensure_font()
        .map_err(|e| PlotError(format!("cannot draw figure {}: {e}", svg_path.display())))?;
    let (w, h) = fig.size();

    // SVG: drawn into a string, written to a temporary file, renamed.
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        paint(&root, fig)
            .map_err(|e| PlotError(format!("cannot draw figure {}: {e}", svg_path.display())))?;
    }
    let tmp = temp_path(&svg_path, "svg");
    std::fs::write(&tmp, svg.as_bytes()).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        PlotError(format!("cannot write figure {}: {e}", svg_path.display()))
    })?;
    finish(&tmp, &svg_path)?;

    // PNG: the bitmap backend encodes to the temporary file on `present`.
    let tmp = temp_path(&png_path, "png");
    let drawn = raster::RasterText::new(BitMapBackend::new(&tmp, (w, h)), FONT_BYTES)
        .and_then(|backend| paint(&backend.into_drawing_area(), fig));
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(PlotError(format!(
            "cannot draw figure {}: {e}",
            png_path.display()
        )));
    }
    finish(&tmp, &png_path)?;
    Ok(vec![svg_path, png_path])
}

/// The text style of the figures.
fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Width in pixels of `text` at `size` (as laid out by the bundled font).
fn text_width(text: &str, size: f64) -> u32 {
    if ensure_font().is_err() {
        return 0;
    }
    (FONT, size)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or(0)
}

/// The decimals of the tick labels of a y axis from `lo` to `hi` with about `n`
/// ticks, and the pixel width of the widest label (13 px), for its label area.
fn y_tick_labels(lo: f64, hi: f64, n: usize) -> (usize, u32) {
    let digits = tick_digits(lo, hi, n);
    let width = [lo, hi]
        .iter()
        .map(|v| text_width(&fmt_num(*v, digits), 13.0))
        .max()
        .unwrap_or(40);
    (digits, width)
}

/// A legend swatch: a box `width` wide and 14 high from `x`, centred on `y`.
fn swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    width: i32,
    style: ShapeStyle,
) -> Result<(), String> {
    area.draw(&Rectangle::new([(x, y - 7), (x + width, y + 7)], style))
        .map_err(draw_error)
}

/// A drawing error as the message that [`Figure::draw`] returns.
fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws `text` anchored at `(x, y)`; `VPos::Top` is the top of the capitals and
/// `VPos::Center` their middle, on both backends (see [`raster`]).
fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    size: f64,
    h: HPos,
    v: VPos,
) -> Result<(), String> {
    area.draw_text(text, &font(size).pos(Pos::new(h, v)), (x, y))
        .map_err(draw_error)
}

/// A number for a label: integers without decimals, others with at most `digits`
/// decimals and no trailing zeros.
fn fmt_num(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// Decimals for the tick labels of an axis from `lo` to `hi` with about `n` labels.
fn tick_digits(lo: f64, hi: f64, n: usize) -> usize {
    let step = (hi - lo).abs() / n.max(1) as f64;
    if step.is_nan() || step <= 0.0 || step >= 1.0 {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(8)
    }
}

/// Distinct line colours (Tableau 10), cycled.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Finite (min, max) of `values`, widened when empty or flat, with `pad` of the span
/// added on both sides.
fn padded_range<'a>(values: impl IntoIterator<Item = &'a f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()).max(1.0) {
        let d = lo.abs().max(1.0) * 0.05;
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * pad;
    (lo - d, hi + d)
}
