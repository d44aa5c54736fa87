//! `--plot FILE.svg`: latency by percentile, the chart HdrHistogram users
//! know, written as plain SVG text.
//!
//! The x axis is `log10(1 / (1 − p))`, so 0 %, 90 %, 99 %, 99.9 % … are
//! evenly spaced and the tail gets as much room as the median; it runs to
//! the percentile the sample size can resolve (one in `count`), at most
//! 99.9999 %. The y axis is linear from 0, in the report's units. In open
//! loop the corrected and the service-time lines are drawn together, which
//! is the picture of coordinated omission: the gap between them is what a
//! closed-loop tool would not have shown. Some two hundred lines of string
//! formatting make a plotting dependency unnecessary.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::units::fmt_micros;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// One line of the chart.
#[derive(Debug)]
pub struct Series<'a> {
    pub label: &'a str,
    pub histogram: &'a Histogram<u64>,
    /// Any SVG colour.
    pub color: &'a str,
}

/// Renders the chart; `title` goes on top.
pub fn svg(title: &str, series: &[Series<'_>]) -> String {
    let count = series.iter().map(|s| s.histogram.len()).max().unwrap_or(0);
    // Decades of resolution the sample supports: 1 000 responses resolve
    // 99.9 %.
    let x_max = (count.max(10) as f64).log10().ceil().clamp(1.0, 6.0);
    let y_top = series.iter().map(|s| s.histogram.max()).max().unwrap_or(0);
    let y_max = nice_ceiling(y_top.max(1) as f64 * 1.05);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + x.min(x_max) / x_max * plot_w;
    let py = |us: f64| TOP + plot_h - us / y_max * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and axes.
    for d in 0..=(x_max as u32) {
        let x = px(f64::from(d));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 18.0,
            percentile_label(d)
        );
    }
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            if i == 0 {
                "0".to_string()
            } else {
                fmt_micros(v.round() as u64)
            }
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // Lines.
    for (i, ser) in series.iter().enumerate() {
        let points = spectrum(ser.histogram, x_max);
        if points.is_empty() {
            continue;
        }
        let path = points
            .iter()
            .map(|(x, us)| format!("{:.1},{:.1}", px(*x), py(*us as f64)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{path}"/>"#,
            escape(ser.color)
        );
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"/>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            escape(ser.color)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{} (max {})</text>"#,
            LEFT + 42.0,
            ly + 4.0,
            escape(ser.label),
            fmt_micros(ser.histogram.max())
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Points `(log10(1/(1-q)), value)` along the histogram, ending at its
/// maximum placed at the right edge.
fn spectrum(h: &Histogram<u64>, x_max: f64) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut pts = vec![(0.0, h.min())];
    for v in h.iter_quantiles(4) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        let x = (1.0 / (1.0 - q)).log10();
        if x > x_max {
            break;
        }
        pts.push((x, v.value_iterated_to()));
    }
    pts.push((x_max, h.max()));
    pts
}

fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        d => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// The next round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of
/// ten) at or above `v`: the chart's top, split into five gridlines.
fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ceiling() {
        let labels: Vec<String> = (0..5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        assert_eq!(nice_ceiling(3.2), 4.0);
        assert_eq!(nice_ceiling(1100.0), 1500.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
    }

    #[test]
    fn svg_has_both_lines_and_axis_labels() {
        let mut a = crate::stats::histogram();
        let mut b = crate::stats::histogram();
        for i in 1..=10_000u64 {
            a.record(i).expect("in range");
            b.record(i / 2 + 1).expect("in range");
        }
        let out = svg(
            "t <&> \"x\"",
            &[
                Series {
                    label: "corrected",
                    histogram: &a,
                    color: "#c00",
                },
                Series {
                    label: "service",
                    histogram: &b,
                    color: "#06c",
                },
            ],
        );
        assert!(out.starts_with("<svg"));
        assert!(out.trim_end().ends_with("</svg>"));
        assert_eq!(out.matches("<polyline").count(), 2);
        assert!(out.contains(">99.99%<"));
        assert!(out.contains("t &lt;&amp;&gt; &quot;x&quot;"));
        assert!(out.contains("corrected (max 10.0ms)"));
    }
}
