//! The analytics view's charts, drawn to SVG on the server with plotters
//! like the incident charts: MTTR per incident type over the newest
//! finished incidents, and the healing success rate over a sliding window.

use engine::protocol::{Analytics, IncidentStatus};
use plotters::prelude::*;

use crate::charts::{BASELINE, Chart, GRID, LABEL, house_mesh, number};

const WIDTH: u32 = 760;
const HEIGHT: u32 = 260;
/// Incident types drawn, the most frequent first; the rest would crowd the
/// legend (the table lists them all).
const MAX_TYPES: usize = 6;
/// Finished incidents the success rate is taken over.
pub const SUCCESS_WINDOW: usize = 10;
/// Seed 003's target for the healing success rate.
const SUCCESS_TARGET: f64 = 0.95;
const PALETTE: [RGBColor; MAX_TYPES] = [
    RGBColor(0x6e, 0xa8, 0xff),
    RGBColor(0x3d, 0xdc, 0x97),
    RGBColor(0xff, 0xb5, 0x47),
    RGBColor(0xff, 0x5c, 0x7a),
    RGBColor(0x8f, 0x7b, 0xff),
    RGBColor(0x5c, 0xd6, 0xe0),
];

/// Both charts, when there is anything to draw.
pub fn render(analytics: &Analytics) -> Vec<Chart> {
    let mut charts = Vec::new();
    for (title, drawn) in [
        ("MTTR by incident type", mttr_trend(analytics)),
        ("Healing success rate", success_rate(analytics)),
    ] {
        match drawn {
            Ok(Some((svg, summary))) => charts.push(Chart {
                title: title.to_owned(),
                summary,
                svg,
            }),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, title, "an analytics chart could not be drawn"),
        }
    }
    charts
}

/// The resolved incidents' seconds to recover, per type, in the order they
/// closed (x is the incident's place among the finished ones shown).
fn mttr_trend(analytics: &Analytics) -> Result<Option<(String, String)>, String> {
    let mut types: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (i, incident) in analytics.recent.iter().enumerate() {
        if incident.status != IncidentStatus::Resolved {
            continue;
        }
        let point = ((i + 1) as f64, incident.resolution_seconds);
        match types.iter_mut().find(|(t, _)| *t == incident.incident_type) {
            Some((_, points)) => points.push(point),
            None => types.push((incident.incident_type.clone(), vec![point])),
        }
    }
    if types.is_empty() {
        return Ok(None);
    }
    types.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    types.truncate(MAX_TYPES);
    let x1 = analytics.recent.len().max(2) as f64;
    let y1 = types
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(1.0, f64::max)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = axes(&root, x1, 0.0..y1, "s")?;
        for ((name, points), colour) in types.iter().zip(PALETTE) {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(3)));
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let summary = types
        .iter()
        .map(|(name, points)| {
            let mean = points.iter().map(|(_, y)| y).sum::<f64>() / points.len() as f64;
            let last = points.last().map_or(0.0, |(_, y)| *y);
            format!(
                "{name}: {} resolved, mean {} s, last {} s",
                points.len(),
                number(mean),
                number(last)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Some((
        svg,
        format!("Seconds to recover per resolved incident, in closing order. {summary}."),
    )))
}

/// The share resolved among the last [`SUCCESS_WINDOW`] finished incidents,
/// after each one, against seed 003's 95% target.
fn success_rate(analytics: &Analytics) -> Result<Option<(String, String)>, String> {
    let outcomes: Vec<bool> = analytics
        .recent
        .iter()
        .map(|i| i.status == IncidentStatus::Resolved)
        .collect();
    if outcomes.is_empty() {
        return Ok(None);
    }
    let rates = rolling_success(&outcomes);
    let x1 = rates.len().max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = axes(&root, x1, 0.0..105.0, "%")?;
        chart
            .draw_series(DashedLineSeries::new(
                [(1.0, SUCCESS_TARGET * 100.0), (x1, SUCCESS_TARGET * 100.0)],
                6,
                4,
                BASELINE.mix(0.8).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label("target 95%")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BASELINE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                rates.iter().enumerate().map(|(i, r)| ((i + 1) as f64, r * 100.0)),
                PALETTE[0].stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("last {SUCCESS_WINDOW} finished"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], PALETTE[0].stroke_width(3)));
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let last = rates.last().copied().unwrap_or_default();
    let low = rates.iter().copied().fold(1.0, f64::min);
    Ok(Some((
        svg,
        format!(
            "Share resolved among the last {SUCCESS_WINDOW} finished incidents, over {} incidents: now {:.0}%, lowest {:.0}%.",
            rates.len(),
            last * 100.0,
            low * 100.0
        ),
    )))
}

/// After each outcome, the share of successes among the last
/// [`SUCCESS_WINDOW`] (fewer at the start).
pub fn rolling_success(outcomes: &[bool]) -> Vec<f64> {
    (0..outcomes.len())
        .map(|i| {
            let window = &outcomes[(i + 1).saturating_sub(SUCCESS_WINDOW)..=i];
            window.iter().filter(|ok| **ok).count() as f64 / window.len() as f64
        })
        .collect()
}

type Axes<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The grid both charts share: x counts finished incidents from 1.
fn axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    x1: f64,
    y: std::ops::Range<f64>,
    unit: &'static str,
) -> Result<Axes<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(52)
        .build_cartesian_2d(1.0..x1, y)
        .map_err(|e| e.to_string())?;
    house_mesh(&mut chart)
        // One label per incident when there are few, never a fraction.
        .x_labels((x1 as usize).clamp(2, 8))
        .x_desc("finished incidents, oldest first")
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&move |y| {
            if *y == 0.0 {
                format!("0{unit}")
            } else {
                format!("{}{unit}", number(*y))
            }
        })
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Axes<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(RGBColor(0x12, 0x18, 0x33).mix(0.85))
        .border_style(GRID)
        .label_font(("sans-serif", 12).into_font().color(&LABEL))
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use engine::protocol::FinishedIncident;

    use super::*;

    fn finished(kind: &str, status: IncidentStatus, seconds: f64) -> FinishedIncident {
        FinishedIncident {
            incident_type: kind.into(),
            status,
            finished_at: Utc::now(),
            resolution_seconds: seconds,
        }
    }

    #[test]
    fn the_success_rate_slides_over_the_last_ten() {
        let mut outcomes = vec![true; 10];
        outcomes.extend([false, false]);
        let rates = rolling_success(&outcomes);
        assert_eq!(rates[0], 1.0);
        assert_eq!(rates[9], 1.0);
        assert!((rates[10] - 0.9).abs() < 1e-12);
        assert!((rates[11] - 0.8).abs() < 1e-12);
        assert_eq!(rolling_success(&[false, true]), [0.0, 0.5]);
    }

    #[test]
    fn both_charts_are_drawn_with_a_legend_per_type() {
        let analytics = Analytics {
            recent: vec![
                finished("data_drift", IncidentStatus::Resolved, 120.0),
                finished("latency_slo_breach", IncidentStatus::Resolved, 30.0),
                finished("data_drift", IncidentStatus::Failed, 300.0),
                finished("data_drift", IncidentStatus::Resolved, 90.0),
            ],
            ..Analytics::default()
        };
        let charts = render(&analytics);
        assert_eq!(charts.len(), 2);
        assert!(charts[0].svg.starts_with("<svg"));
        assert!(charts[0].svg.contains("data_drift") && charts[0].svg.contains("latency_slo_breach"));
        assert_eq!(
            charts[0].summary,
            "Seconds to recover per resolved incident, in closing order. \
             data_drift: 2 resolved, mean 105 s, last 90.0 s; latency_slo_breach: 1 resolved, mean 30.0 s, last 30.0 s."
        );
        assert!(charts[1].svg.contains("target 95%"));
        assert!(
            charts[1].summary.contains("now 75%, lowest 67%"),
            "{}",
            charts[1].summary
        );
    }

    #[test]
    fn nothing_finished_draws_nothing() {
        assert!(render(&Analytics::default()).is_empty());
    }
}
