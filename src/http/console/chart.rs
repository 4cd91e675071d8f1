//! SVG bar charts, drawn here (no script, no library): one bar per bucket, the largest value and the
//! first, middle and last bucket labels on the axes, a `<title>` per bar for the exact value.

use std::fmt::Write;

use super::html::esc;

// A small canvas, so the labels stay readable when a card scales it to a phone's width.
const W: f64 = 320.0;
const H: f64 = 120.0;
const LEFT: f64 = 30.0;
const BOTTOM: f64 = 16.0;
const TOP: f64 = 6.0;

/// A bar chart of `values` (one per bucket, oldest first) with `labels` of the same length; `unit`
/// follows each value in the bars' titles. `id` names the `<svg>` element.
pub fn bars(id: &str, labels: &[String], values: &[f64], unit: &str) -> String {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        (H - BOTTOM - TOP) / max
    } else {
        0.0
    };
    let n = values.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot * 0.8).max(1.0);
    let mut out = format!(
        "<svg id=\"{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(id)
    );
    let base = H - BOTTOM;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{W}\" y2=\"{base}\" stroke=\"#b8c0cc\"/>\
         <text x=\"{x}\" y=\"{y}\" font-size=\"9\" text-anchor=\"end\" fill=\"#5b6475\">{}</text>\
         <text x=\"{x}\" y=\"{base}\" font-size=\"9\" text-anchor=\"end\" fill=\"#5b6475\">0</text>",
        number(max),
        x = LEFT - 4.0,
        y = TOP + 8.0,
    );
    for (i, v) in values.iter().enumerate() {
        let h = (v * scale).max(if *v > 0.0 { 1.0 } else { 0.0 });
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let label = labels.get(i).map(String::as_str).unwrap_or_default();
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"#6ea8fe\"><title>{}: {} {}</title></rect>",
            base - h,
            esc(label),
            number(*v),
            esc(unit)
        );
    }
    let ticks = [0, values.len() / 2, values.len().saturating_sub(1)];
    for (k, i) in ticks.iter().enumerate() {
        let Some(label) = labels.get(*i) else {
            continue;
        };
        let anchor = ["start", "middle", "end"][k];
        let x = match k {
            0 => LEFT,
            1 => LEFT + (*i as f64 + 0.5) * slot,
            _ => W,
        };
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"{anchor}\" fill=\"#5b6475\">{}</text>",
            H - 4.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// A value as the chart prints it: whole numbers plainly, others with up to two decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_value_scaled_to_the_largest() {
        let labels: Vec<String> = (0..3).map(|h| format!("{h}:00")).collect();
        let svg = bars("c", &labels, &[0.0, 2.0, 4.0], "jobs");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>2:00: 4 jobs</title>"), "{svg}");
        assert!(svg.contains(">4</text>"));
        // The largest bar spans the plot's height; an empty bucket has none.
        assert!(svg.contains(&format!("height=\"{:.1}\"", H - BOTTOM - TOP)));
        assert!(svg.contains("height=\"0.0\""));
        assert_eq!(number(1.5), "1.5");
    }
}
