//! The pictures: loss curves and PCA views, as PNG files.

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::error::Error;
use std::path::{Path, PathBuf};

/// Where a TrueType font is looked for (plotters draws text with ab_glyph, which needs
/// one); `DIGITS_FONT` overrides.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn load_font() -> Result<(), Box<dyn Error>> {
    let candidates: Vec<String> = std::env::var("DIGITS_FONT")
        .into_iter()
        .chain(FONTS.iter().map(|s| s.to_string()))
        .collect();
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a usable TrueType font"))?;
            return Ok(());
        }
    }
    Err(format!(
        "no TrueType font found (tried {}); set DIGITS_FONT to a .ttf file",
        candidates.join(", ")
    )
    .into())
}

/// What one training run drew: its loss and the unseen classes' 5-shot accuracy per epoch.
pub struct Curves<'a> {
    /// The loss's name.
    pub name: &'a str,
    /// Mean training loss per epoch.
    pub loss: &'a [f32],
    /// 5-shot accuracy on the unseen classes after each epoch.
    pub unseen_accuracy: &'a [f32],
    /// The same accuracy for raw pixels (a horizontal line).
    pub raw_accuracy: f32,
}

/// Draws into an RGB buffer of `width × height` with `draw`, then writes it as a PNG file.
fn png_file(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(
        DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    let mut rgb = vec![0u8; 3 * width as usize * height as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(root.clone())?;
        root.present()?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

/// Draws `digits-loss.png` (per loss: its curve above, the unseen classes' accuracy below) and `digits-pca.png` (one panel per view,
/// points coloured by class 5–9) into `dir`; returns the files written.
pub fn draw(
    dir: &Path,
    curves: &[Curves<'_>],
    views: &[(String, Vec<[f64; 2]>)],
    classes: &[u8],
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    load_font()?;
    let loss_png = dir.join("digits-loss.png");
    png_file(&loss_png, (420 * curves.len() as u32, 560), |root| {
        let areas = root.split_evenly((2, curves.len()));
        let (top_row, bottom_row) = areas.split_at(curves.len());
        for ((c, area), below) in curves.iter().zip(top_row).zip(bottom_row) {
            let (name, losses) = (c.name, c.loss);
            let top = losses.iter().cloned().fold(0.0f32, f32::max) * 1.05;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name} loss"), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(48)
                .build_cartesian_2d(1f32..losses.len() as f32, 0f32..top)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("mean training loss")
                .label_style(("sans-serif", 12))
                .draw()?;
            chart.draw_series(LineSeries::new(
                losses.iter().enumerate().map(|(i, &l)| (i as f32 + 1.0, l)),
                PALETTE[0].stroke_width(2),
            ))?;
            let epochs = c.unseen_accuracy.len() as f32;
            let mut chart = ChartBuilder::on(below)
                .caption("unseen classes 5-9: 5-shot accuracy", ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(48)
                .build_cartesian_2d(1f32..epochs.max(2.0), 0f32..100f32)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("accuracy (%)")
                .label_style(("sans-serif", 12))
                .draw()?;
            chart
                .draw_series(LineSeries::new(
                    c.unseen_accuracy
                        .iter()
                        .enumerate()
                        .map(|(i, &a)| (i as f32 + 1.0, 100.0 * a)),
                    PALETTE[1].stroke_width(2),
                ))?
                .label("network")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], PALETTE[1]));
            chart
                .draw_series(LineSeries::new(
                    [1.0, epochs.max(2.0)].map(|e| (e, 100.0 * c.raw_accuracy)),
                    PALETTE[2].stroke_width(2),
                ))?
                .label("raw pixels")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], PALETTE[2]));
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        Ok(())
    })?;
    let pca_png = dir.join("digits-pca.png");
    png_file(&pca_png, (360 * views.len() as u32, 380), |root| {
        for ((name, points), area) in views.iter().zip(root.split_evenly((1, views.len()))) {
            let range = |k: usize| {
                let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                    (lo.min(p[k]), hi.max(p[k]))
                });
                let pad = 0.05 * (hi - lo).max(1e-9);
                (lo - pad)..(hi + pad)
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(name, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(36)
                .build_cartesian_2d(range(0), range(1))?;
            chart
                .configure_mesh()
                .x_desc("PC 1")
                .y_desc("PC 2")
                .label_style(("sans-serif", 11))
                .disable_mesh()
                .draw()?;
            for (k, color) in PALETTE.iter().enumerate() {
                let class = 5 + k as u8;
                chart
                    .draw_series(
                        points
                            .iter()
                            .zip(classes)
                            .filter(|&(_, &c)| c == class)
                            .map(|(p, _)| Circle::new((p[0], p[1]), 2, color.mix(0.7).filled())),
                    )?
                    .label(format!("{class}"))
                    .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        Ok(())
    })?;
    Ok(vec![loss_png, pca_png])
}
