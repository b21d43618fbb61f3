//! Text for the PNG figures.
//!
//! plotters' `ab_glyph` text drawing places every glyph by its ink box (ignoring the
//! side bearing) at a whole-pixel pen position and anchors text a quarter of the font
//! size higher than the SVG backend does, which gives uneven letter spacing and
//! misaligned labels. [`RasterText`] wraps the bitmap backend and draws text itself
//! with the bundled font: glyphs at sub-pixel pen positions with kerning, and anchors
//! that match SVG's (`Top`: top of the capitals, `Center`: middle of the capitals,
//! `Bottom`: descender line). Everything else goes to the wrapped backend unchanged.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

pub(crate) struct RasterText<DB> {
    inner: DB,
    font: FontRef<'static>,
}

impl<DB: DrawingBackend> RasterText<DB> {
    pub(crate) fn new(inner: DB, font_bytes: &'static [u8]) -> Result<Self, String> {
        let font = FontRef::try_from_slice(font_bytes)
            .map_err(|_| "the bundled font DejaVuSans.ttf could not be parsed".to_string())?;
        Ok(RasterText { inner, font })
    }
}

type Res<E> = Result<(), DrawingErrorKind<E>>;

impl<DB: DrawingBackend> DrawingBackend for RasterText<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Res<DB::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Res<DB::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Res<DB::ErrorType> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Res<DB::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Res<DB::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Res<DB::ErrorType> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Res<DB::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Res<DB::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Res<DB::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<DB::ErrorType>> {
        self.inner.estimate_text_size(text, style)
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Res<DB::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        // The scale plotters' ab_glyph layout uses, so that widths match its estimates.
        let scale = PxScale::from(style.size() as f32);
        let font = self.font.as_scaled(scale);
        let mut glyphs = Vec::with_capacity(text.len());
        let mut x = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += font.kern(p, id);
            }
            glyphs.push((id, x));
            x += font.h_advance(id);
            prev = Some(id);
        }
        // Cap height: the top of 'H' (ab_glyph's unscaled bounds keep y up, min.y on top).
        let cap = self
            .font
            .outline(self.font.glyph_id('H'))
            .map(|o| o.bounds.min.y.max(o.bounds.max.y) * font.v_scale_factor())
            .unwrap_or(0.7 * scale.y);
        let anchor = style.anchor();
        let x0 = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -x / 2.0,
            HPos::Right => -x,
        };
        let baseline = match anchor.v_pos {
            VPos::Top => cap,
            VPos::Center => cap / 2.0,
            VPos::Bottom => font.descent(),
        };
        let trans = style.transform();
        let (w, h) = self.inner.get_size();
        for (id, gx) in glyphs {
            let glyph = id.with_scale_and_position(scale, point(x0 + gx, baseline));
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|px, py, cov| {
                if cov > 0.0 {
                    pixels.push((b.min.x as i32 + px as i32, b.min.y as i32 + py as i32, cov));
                }
            });
            for (px, py, cov) in pixels {
                let (tx, ty) = trans.transform(px, py);
                let (x, y) = (pos.0 + tx, pos.1 + ty);
                if x >= 0 && y >= 0 && x < w as i32 && y < h as i32 {
                    let alpha = (color.alpha * cov.min(1.0) as f64).clamp(0.0, 1.0);
                    self.inner.draw_pixel(
                        (x, y),
                        BackendColor {
                            alpha,
                            rgb: color.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}
