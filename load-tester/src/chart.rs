//! An SVG chart of deliveries per second against channel size, from the reports of one or
//! more sweeps: classic clients, clients granted `batch`, the raw `sendmmsg` blaster (the
//! kernel's one-datagram-per-member limit) and, when measured, Redis PUBLISH.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::report::Report;

/// One line of the chart: its label, colour and (channel size, thousand deliveries/s).
struct Series {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Per channel size, the mean of the values found.
fn mean_by_size(values: impl Iterator<Item = (usize, f64)>) -> Vec<(f64, f64)> {
    let mut by: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for (size, v) in values {
        let e = by.entry(size).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    by.into_iter()
        .map(|(size, (sum, n))| (size as f64, sum / n as f64 / 1000.0))
        .collect()
}

/// Draws `reports` (one per channel size and kind) to `path`. Raw and Redis figures found
/// in several reports of one size are averaged.
///
/// # Errors
/// If the file can't be written or there is nothing to draw.
pub(crate) fn draw(reports: &[Report], path: &Path) -> anyhow::Result<()> {
    let sized: Vec<&Report> = reports.iter().filter(|r| r.channel_size > 0).collect();
    anyhow::ensure!(!sized.is_empty(), "no channel sizes to draw");
    let classic = mean_by_size(
        sized
            .iter()
            .filter(|r| r.batch.is_none())
            .map(|r| (r.channel_size, r.deliveries_per_s)),
    );
    let batched = mean_by_size(
        sized
            .iter()
            .filter(|r| r.batch.is_some())
            .map(|r| (r.channel_size, r.deliveries_per_s)),
    );
    let batch_label = match sized.iter().find_map(|r| r.batch) {
        Some(b) => format!("udpchat, clients granted batch={b}"),
        None => String::new(),
    };
    let raw = mean_by_size(
        sized
            .iter()
            .filter_map(|r| Some((r.channel_size, r.raw.as_ref()?.deliveries_per_s))),
    );
    let redis = mean_by_size(
        sized
            .iter()
            .filter_map(|r| Some((r.channel_size, r.redis_pubsub.as_ref()?.deliveries_per_s))),
    );
    let series: Vec<Series> = [
        ("udpchat, classic clients".to_string(), BLUE, classic),
        (batch_label, GREEN, batched),
        (
            "raw sendmmsg, one datagram per member".to_string(),
            RED,
            raw,
        ),
        ("Redis PUBLISH over TCP".to_string(), MAGENTA, redis),
    ]
    .into_iter()
    .filter(|(_, _, p)| !p.is_empty())
    .map(|(label, colour, points)| Series {
        label,
        colour,
        points,
    })
    .collect();
    let all = series.iter().flat_map(|s| s.points.iter());
    let (x_lo, x_hi, y_lo, y_hi) = all.fold(
        (f64::MAX, 0.0f64, f64::MAX, 0.0f64),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let x_range = (x_lo.max(1.0) / 2.0)..(x_hi * 2.0);
    // A log scale when the lines are an order of magnitude apart, so all of them read.
    let y_range = (y_lo.max(0.1) / 2.0)..(y_hi.max(1.0) * 2.0);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).context("drawing the chart")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fan-out: deliveries per second by channel size",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
        .context("drawing the chart")?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("members in the channel")
        .y_desc("thousand deliveries / s (log)")
        .draw()
        .context("drawing the chart")?;
    for s in &series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(s.points.clone(), colour.stroke_width(2)))
            .context("drawing the chart")?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .context("drawing the chart")?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .context("drawing the chart")?;
    root.present().context("writing the chart")?;
    Ok(())
}
