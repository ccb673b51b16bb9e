//! An SVG chart of deliveries per second against channel size, server beside raw `sendmmsg`,
//! from the reports of a sweep.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::report::Report;

/// Draws `reports` (one per channel size) to `path`.
///
/// # Errors
/// If the file can't be written or there is nothing to draw.
pub fn draw(reports: &[Report], path: &Path) -> anyhow::Result<()> {
    let mut points: Vec<(f64, f64, Option<f64>)> = reports
        .iter()
        .filter(|r| r.channel_size > 0)
        .map(|r| {
            (
                r.channel_size as f64,
                r.deliveries_per_s / 1000.0,
                r.raw.as_ref().map(|x| x.deliveries_per_s / 1000.0),
            )
        })
        .collect();
    anyhow::ensure!(!points.is_empty(), "no channel sizes to draw");
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let x_min = points[0].0.max(1.0) / 2.0;
    let x_max = points[points.len() - 1].0 * 2.0;
    let y_max = points
        .iter()
        .map(|p| p.1.max(p.2.unwrap_or(0.0)))
        .fold(1.0, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).context("drawing the chart")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fan-out: deliveries per second by channel size",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)
        .context("drawing the chart")?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("members in the channel")
        .y_desc("thousand deliveries / s")
        .draw()
        .context("drawing the chart")?;
    let server: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    chart
        .draw_series(LineSeries::new(server.clone(), BLUE.stroke_width(2)))
        .context("drawing the chart")?
        .label("udpchat server")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(server.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
        .context("drawing the chart")?;
    let raw: Vec<(f64, f64)> = points.iter().filter_map(|p| Some((p.0, p.2?))).collect();
    if !raw.is_empty() {
        chart
            .draw_series(LineSeries::new(raw.clone(), RED.stroke_width(2)))
            .context("drawing the chart")?
            .label("raw sendmmsg (kernel limit)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .draw_series(raw.iter().map(|&p| Circle::new(p, 4, RED.filled())))
            .context("drawing the chart")?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .context("drawing the chart")?;
    root.present().context("writing the chart")?;
    Ok(())
}
