//! Line plots as inline SVG: no script, no font or library to fetch, so the page opens anywhere.

use std::fmt::Write as _;

/// Plot size in SVG units (the page scales it down on narrow screens).
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 230.0;
/// Room for the axes' labels and the title.
const LEFT: f64 = 58.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 36.0;

/// One line of a plot; `None` values break it (no sample in that bucket).
pub struct Series<'a> {
    /// Shown in the legend (and as `data-series`).
    pub label: &'a str,
    /// Stroke colour, `#rrggbb`.
    pub color: &'a str,
    /// `(x, y)` in data units, x ascending.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A plot of `series` over `0..=x_max` seconds, titled `title`, its y axis in `y_unit`.
pub fn plot(title: &str, y_unit: &str, x_max: f64, series: &[Series<'_>]) -> String {
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, y)| *y))
        .fold(0.0_f64, f64::max);
    let (y_step, y_max) = axis(y_top);
    let (x_step, _) = axis(x_max);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + x / x_max * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}">"#,
        title = escape(title)
    );
    let _ = write!(
        svg,
        r#"<text class="title" x="{LEFT}" y="18">{}</text>"#,
        escape(title)
    );
    // Grid and y labels.
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{x2:.1}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = py + 4.0,
            label = number(y, y_step)
        );
        y += y_step;
    }
    // X ticks.
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let px = sx(x);
        let _ = write!(
            svg,
            r#"<line class="axis" x1="{px:.1}" x2="{px:.1}" y1="{y1:.1}" y2="{y2:.1}"/><text class="tick" x="{px:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
            y1 = TOP + plot_h,
            y2 = TOP + plot_h + 4.0,
            ty = TOP + plot_h + 16.0,
            label = number(x, x_step)
        );
        x += x_step;
    }
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="unit" x="{ux:.1}" y="{uy:.1}" text-anchor="end">s since start</text><text class="unit" x="{LEFT}" y="{yy:.1}" text-anchor="start" dx="4">{unit}</text>"#,
        x2 = WIDTH - RIGHT,
        y = TOP + plot_h,
        ux = WIDTH - RIGHT,
        uy = HEIGHT - 4.0,
        yy = TOP + 12.0,
        unit = escape(y_unit)
    );
    // Lines: a zero-length segment (a lone sample) shows as a dot thanks to the round caps.
    for s in series {
        let mut d = String::new();
        let mut pen_down = false;
        let mut last = (0.0, 0.0);
        let mut lone = true;
        for (x, y) in &s.points {
            match y {
                Some(y) => {
                    let (px, py) = (sx(*x), sy(*y));
                    if pen_down {
                        let _ = write!(d, " L{px:.1},{py:.1}");
                        lone = false;
                    } else {
                        let _ = write!(d, " M{px:.1},{py:.1}");
                        pen_down = true;
                        lone = true;
                    }
                    last = (px, py);
                }
                None => {
                    if pen_down && lone {
                        let _ = write!(d, " L{:.1},{:.1}", last.0, last.1);
                    }
                    pen_down = false;
                }
            }
        }
        if pen_down && lone {
            let _ = write!(d, " L{:.1},{:.1}", last.0, last.1);
        }
        if !d.is_empty() {
            let _ = write!(
                svg,
                r#"<path class="series" data-series="{label}" d="{d}" stroke="{color}"/>"#,
                label = escape(s.label),
                d = d.trim_start(),
                color = s.color
            );
        }
    }
    // Legend, right-aligned above the plot area.
    if series.len() > 1 {
        let mut x = WIDTH - RIGHT;
        for s in series.iter().rev() {
            let _ = write!(
                svg,
                r#"<text class="legend" x="{x:.1}" y="18" text-anchor="end" fill="{color}">{label}</text>"#,
                color = s.color,
                label = escape(s.label)
            );
            x -= 8.0 * s.label.len() as f64 + 12.0;
        }
    }
    if series
        .iter()
        .all(|s| s.points.iter().all(|(_, y)| y.is_none()))
    {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{x:.1}" y="{y:.1}" text-anchor="middle">no samples</text>"#,
            x = LEFT + plot_w / 2.0,
            y = TOP + plot_h / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A round tick step for `0..=top` (about five ticks) and the axis end, a multiple of it.
fn axis(top: f64) -> (f64, f64) {
    if top <= 0.0 || !top.is_finite() {
        return (0.2, 1.0);
    }
    let rough = top / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step, (top / step).ceil().max(1.0) * step)
}

/// `value` with as many decimals as `step` needs.
fn number(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// Text safe inside HTML and SVG elements and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(axis(9.3), (2.0, 10.0));
        assert_eq!(axis(1234.0), (500.0, 1500.0));
        assert_eq!(axis(0.0), (0.2, 1.0));
        assert_eq!(number(0.5, 0.1), "0.5");
        assert_eq!(number(1500.0, 500.0), "1500");
    }

    #[test]
    fn gaps_break_the_line_and_lone_samples_still_draw() {
        let svg = plot(
            "t",
            "ms",
            3.0,
            &[Series {
                label: "p50",
                color: "#000000",
                points: vec![
                    (0.0, Some(1.0)),
                    (1.0, None),
                    (2.0, Some(2.0)),
                    (3.0, Some(1.0)),
                ],
            }],
        );
        let d = svg
            .split("d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
