//! Incident charts, drawn to SVG on the server with plotters (no fonts, no
//! system libraries: the SVG names a font family and the browser draws the
//! text). One chart per watched series: the readings, the baseline and its
//! ±2σ band, and a vertical line at each marked moment.

use engine::protocol::MarkKind;
#[cfg(feature = "ssr")]
use engine::protocol::{IncidentTelemetry, MetricSeries};
#[cfg(feature = "ssr")]
use plotters::{chart::MeshStyle, coord::types::RangedCoordf64, prelude::*};
use serde::{Deserialize, Serialize};

/// One drawn chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// "postgres-primary · pool_usage".
    pub title: String,
    /// For screen readers: what the chart shows, in numbers.
    pub summary: String,
    /// The SVG document.
    pub svg: String,
}

#[cfg(feature = "ssr")]
const WIDTH: u32 = 620;
#[cfg(feature = "ssr")]
const HEIGHT: u32 = 210;
#[cfg(feature = "ssr")]
pub(crate) const LABEL: RGBColor = RGBColor(0x9a, 0xa6, 0xc8);
#[cfg(feature = "ssr")]
pub(crate) const GRID: RGBColor = RGBColor(0x25, 0x30, 0x5a);
#[cfg(feature = "ssr")]
pub(crate) const SERIES: RGBColor = RGBColor(0x6e, 0xa8, 0xff);
#[cfg(feature = "ssr")]
pub(crate) const BASELINE: RGBColor = RGBColor(0x3d, 0xdc, 0x97);

/// A mark's colour: red for trouble, green for a fix, amber for a
/// person's decision, grey for the close. One table for the SVG lines and
/// the legend's swatches.
fn mark_rgb_parts(kind: MarkKind) -> (u8, u8, u8) {
    match kind {
        MarkKind::Opened | MarkKind::Rollback => (0xff, 0x5c, 0x7a),
        MarkKind::Step | MarkKind::Verified => (0x3d, 0xdc, 0x97),
        MarkKind::Decision => (0xff, 0xb5, 0x47),
        MarkKind::Closed => (0x9a, 0xa6, 0xc8),
    }
}

/// The colour of a mark, as the legend under the charts shows it.
pub fn mark_colour(kind: MarkKind) -> String {
    let (r, g, b) = mark_rgb_parts(kind);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(feature = "ssr")]
fn mark_rgb(kind: MarkKind) -> RGBColor {
    let (r, g, b) = mark_rgb_parts(kind);
    RGBColor(r, g, b)
}

#[cfg(feature = "ssr")]
/// Every series of `telemetry`, drawn.
pub fn render(telemetry: &IncidentTelemetry) -> Vec<Chart> {
    telemetry
        .series
        .iter()
        .filter(|s| !s.values.is_empty())
        .filter_map(|series| match draw(telemetry, series) {
            Ok(svg) => Some(Chart {
                title: format!("{} · {}", series.service, series.metric),
                summary: summary(telemetry, series),
                svg,
            }),
            Err(error) => {
                tracing::warn!(%error, series = %series.metric, "a chart could not be drawn");
                None
            }
        })
        .collect()
}

/// The grid every chart shares: faint lines, no minor ones, dim labels,
/// five on the y axis. Callers add their own x labels and formats.
#[cfg(feature = "ssr")]
pub(crate) fn house_mesh<'a, 'b, 'c>(
    chart: &'b mut ChartContext<'a, SVGBackend<'c>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, SVGBackend<'c>> {
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(GRID.stroke_width(1))
        .axis_style(GRID.stroke_width(1))
        .label_style(("sans-serif", 13).into_font().color(&LABEL))
        .y_labels(5);
    mesh
}

#[cfg(feature = "ssr")]
/// "Baseline 12 (±3); peak 480 at +6 s; last 14."
fn summary(telemetry: &IncidentTelemetry, series: &MetricSeries) -> String {
    let (peak_at, peak) = series
        .values
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |best, (i, v)| if *v > best.1 { (i, *v) } else { best });
    format!(
        "{} on {}: baseline {} (±{} at 2σ); peak {} at {:+.0} s; last {}.",
        series.metric,
        series.service,
        number(series.baseline),
        number(2.0 * series.sigma),
        number(peak),
        telemetry.start_seconds + peak_at as f64 * telemetry.step_seconds,
        number(*series.values.last().unwrap_or(&0.0)),
    )
}

#[cfg(feature = "ssr")]
/// A reading for a label: whole numbers from 100 up, else three significant
/// digits.
pub(crate) fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(feature = "ssr")]
fn draw(telemetry: &IncidentTelemetry, series: &MetricSeries) -> Result<String, String> {
    let step = telemetry.step_seconds;
    let x0 = telemetry.start_seconds;
    let x1 = (x0 + (series.values.len().max(2) - 1) as f64 * step).max(x0 + 1.0);
    let band = (
        series.baseline - 2.0 * series.sigma,
        series.baseline + 2.0 * series.sigma,
    );
    let low = series.values.iter().copied().fold(band.0, f64::min);
    let high = series.values.iter().copied().fold(band.1, f64::max);
    let pad = ((high - low) * 0.08).max(1e-6);
    let (y0, y1) = ((low - pad).max(if low >= 0.0 { 0.0 } else { f64::MIN }), high + pad);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        house_mesh(&mut chart)
            .x_labels(8)
            .x_label_formatter(&|x| format!("{x:+.0}s"))
            .y_label_formatter(&|y| number(*y))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, band.0), (x1, band.1)],
                BASELINE.mix(0.10).filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, series.baseline), (x1, series.baseline)],
                6,
                4,
                BASELINE.mix(0.8).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        for mark in telemetry.marks.iter().filter(|m| (x0..=x1).contains(&m.at_seconds)) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(mark.at_seconds, y0), (mark.at_seconds, y1)],
                    mark_rgb(mark.kind)
                        .mix(0.85)
                        .stroke_width(if mark.kind == MarkKind::Step { 2 } else { 1 }),
                )))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(
                series
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (x0 + i as f64 * step, *v)),
                SERIES.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use engine::protocol::ChartMark;
    use uuid::Uuid;

    use super::*;

    fn telemetry() -> IncidentTelemetry {
        IncidentTelemetry {
            incident_id: Uuid::nil(),
            start_seconds: -5.0,
            step_seconds: 1.0,
            series: vec![MetricSeries {
                service: "postgres-primary".into(),
                metric: "pool_usage".into(),
                values: vec![0.4, 0.41, 0.39, 0.4, 0.42, 0.97, 0.99, 1.0, 0.7, 0.45, 0.41],
                baseline: 0.4,
                sigma: 0.02,
            }],
            marks: vec![
                ChartMark {
                    at_seconds: 0.0,
                    kind: MarkKind::Opened,
                    label: "incident opened".into(),
                },
                ChartMark {
                    at_seconds: 3.0,
                    kind: MarkKind::Step,
                    label: "Scale connection pool on postgres-primary".into(),
                },
            ],
            live: false,
        }
    }

    #[test]
    fn a_series_is_drawn_as_svg_with_its_baseline_band_and_marks() {
        let charts = render(&telemetry());
        assert_eq!(charts.len(), 1);
        let chart = &charts[0];
        assert_eq!(chart.title, "postgres-primary · pool_usage");
        assert!(chart.svg.starts_with("<svg"), "{}", &chart.svg[..60]);
        // The readings, the baseline (dashed), the band and two marks.
        assert!(
            chart.svg.contains("#6EA8FF") || chart.svg.contains("#6ea8ff"),
            "the series line"
        );
        assert!(chart.svg.matches("<polyline").count() + chart.svg.matches("<path").count() >= 2);
        assert!(chart.svg.contains("<rect"), "the baseline band");
        assert!(chart.svg.contains("+0s"), "the time axis is labelled from the opening");
        assert_eq!(
            chart.summary,
            "pool_usage on postgres-primary: baseline 0.400 (±0.040 at 2σ); peak 1.0 at +2 s; last 0.410."
        );
    }

    #[test]
    fn an_empty_series_draws_nothing() {
        let mut empty = telemetry();
        empty.series[0].values.clear();
        assert!(render(&empty).is_empty());
    }
}
