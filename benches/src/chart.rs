//! `target/bench/ratios.svg`: one bar per compared workload, the ratio of
//! reseau to its peer, with the target marked. Written by hand: a few
//! rectangles and lines need no plotting library.

use std::fmt::Write as _;

use crate::harness::{Better, Row};

const ROW_H: f64 = 26.0;
const LABEL_W: f64 = 360.0;
const BAR_W: f64 = 420.0;
const MARGIN: f64 = 16.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart for the rows that have both a ratio and a target.
pub fn svg(rows: &[Row], title: &str) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.ratio.is_some_and(f64::is_finite) && r.target.is_some()).collect();
    let max = rows.iter().map(|r| r.ratio.unwrap_or(0.0).max(r.target.map_or(0.0, |t| t.0))).fold(2.0_f64, f64::max);
    let scale = |x: f64| LABEL_W + BAR_W * (x / max).min(1.0);
    let height = MARGIN * 3.0 + 40.0 + ROW_H * rows.len() as f64;
    let width = LABEL_W + BAR_W + 120.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        MARGIN + 6.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{MARGIN}" y="{}" fill="#555">ratio = reseau / peer; black tick = target (higher is better unless marked ≤)</text>"##,
        MARGIN + 24.0
    );
    // Gridline at 1.0: parity with the peer.
    let top = MARGIN * 2.0 + 30.0;
    let one = scale(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{one}" y1="{top}" x2="{one}" y2="{}" stroke="#999" stroke-dasharray="4 3"/>"##,
        top + ROW_H * rows.len() as f64
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + ROW_H * i as f64;
        let ratio = r.ratio.unwrap_or(0.0);
        let (target, better) = r.target.unwrap_or((1.0, Better::Higher));
        let met = match better {
            Better::Higher => ratio >= target,
            Better::Lower => ratio <= target,
        };
        let color = if met { "#3a9a4a" } else { "#c8463c" };
        let mark = if better == Better::Lower { " (≤)" } else { "" };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}{mark}</text>"#,
            LABEL_W - 8.0,
            y + ROW_H * 0.65,
            escape(&r.workload)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{LABEL_W}" y="{}" width="{}" height="{}" fill="{color}"/>"#,
            y + 4.0,
            (scale(ratio) - LABEL_W).max(1.0),
            ROW_H - 8.0
        );
        let tx = scale(target);
        let _ = writeln!(
            s,
            r#"<line x1="{tx}" y1="{}" x2="{tx}" y2="{}" stroke="black" stroke-width="2"/>"#,
            y + 1.0,
            y + ROW_H - 1.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{ratio:.2}</text>"#, scale(ratio) + 6.0, y + ROW_H * 0.65);
    }
    s.push_str("</svg>\n");
    s
}
