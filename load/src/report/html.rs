//! The report as one self-contained HTML page (`--html`): the summary, every invariant, and per
//! scenario plots of throughput and claim / end-to-end latency over time. Inline CSS and SVG and
//! a few lines of inline script; nothing is fetched, so it opens from a file, offline.

use std::fmt::Write as _;

use super::svg::{escape, plot, Series};
use super::timeline::{Point, Timeline};
use super::{name, Report, ScenarioReport};
use crate::cli::Sabotage;
use crate::stats::Percentiles;

/// Line colours (also what the rendering test looks for in the screenshot).
pub const THROUGHPUT: &str = "#2563eb";
const P50: &str = "#16a34a";
const P95: &str = "#d97706";
const P99: &str = "#dc2626";

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1760px; padding: 0 16px; color: #1f2937; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
.options, .muted { color: #6b7280; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 600; color: #fff; }
.pass { background: #15803d; } .fail { background: #b91c1c; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f9fafb; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: #15803d; font-weight: 700; } td.broken { color: #b91c1c; font-weight: 700; }
tr.broken td { background: #fef2f2; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; }
svg.plot { width: 100%; height: auto; background: #fff; border: 1px solid #e5e7eb; border-radius: 4px; }
svg.plot .title { font-size: 13px; font-weight: 600; fill: #111827; }
svg.plot .tick, svg.plot .unit { font-size: 11px; fill: #6b7280; }
svg.plot .legend { font-size: 12px; font-weight: 600; }
svg.plot .empty { font-size: 12px; fill: #9ca3af; }
svg.plot .grid { stroke: #f3f4f6; } svg.plot .axis { stroke: #9ca3af; }
svg.plot path.series { fill: none; stroke-width: 2.5; stroke-linejoin: round; stroke-linecap: round; }
"#;

/// Marks each plot with the length of the lines the browser laid out, and the page with the
/// number of plots checked and any script error: what the rendering test reads back.
const SELF_CHECK: &str = r#"
window.addEventListener('error', function (e) { document.body.dataset.errors = String(e.message); });
document.querySelectorAll('svg.plot').forEach(function (svg) {
  var drawn = 0;
  svg.querySelectorAll('path.series').forEach(function (p) {
    var box = p.getBBox();
    drawn += p.getTotalLength() + (box.width > 0 || box.height > 0 ? 1 : 0);
  });
  svg.dataset.drawn = String(Math.round(drawn));
});
document.body.dataset.plotsChecked = String(document.querySelectorAll('svg.plot').length);
"#;

/// The whole page.
pub fn render(report: &Report) -> String {
    let passed = report.passed();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>load report — {verdict}</title><style>{STYLE}</style></head><body>",
        verdict = if passed { "PASS" } else { "FAIL" }
    );
    let _ = write!(
        page,
        "<h1>Load report <span class=\"verdict {class}\">{verdict}</span></h1>\
         <p class=\"options\">{options}<br>namespace {ns} · written {at}</p>",
        class = if passed { "pass" } else { "fail" },
        verdict = if passed {
            "PASS — every invariant held".to_owned()
        } else {
            format!("FAIL — {} invariant(s) broken", broken(report))
        },
        options = escape(&options(report)),
        ns = escape(&report.namespace),
        at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
    );
    summary(&mut page, report);
    invariants(&mut page, report);
    for scenario in &report.scenarios {
        section(&mut page, scenario);
    }
    let _ = writeln!(page, "<script>{SELF_CHECK}</script></body></html>");
    page
}

fn options(r: &Report) -> String {
    let mut text = format!(
        "runs {}, workers {}, pool {}, jobs/run {}, failure rate {}",
        r.runs, r.workers, r.pool_size, r.jobs_per_run, r.failure_rate
    );
    if let Some(n) = r.processes {
        let _ = write!(text, ", {n} worker processes (crash)");
    }
    if r.sabotage != Sabotage::None {
        let _ = write!(text, ", SABOTAGE {:?}", r.sabotage);
    }
    text
}

fn broken(r: &Report) -> usize {
    r.scenarios
        .iter()
        .map(|s| s.invariants.iter().filter(|i| !i.ok).count())
        .sum()
}

fn summary(page: &mut String, report: &Report) {
    page.push_str(
        "<h2>Summary</h2><table><tr><th>scenario</th><th>runs</th><th>jobs</th><th>time s</th>\
         <th>jobs/s</th><th>claim p50/p95/p99 ms</th><th>end-to-end p50/p95/p99 ms</th>\
         <th>acquire p50/p99 ms</th><th>connections</th></tr>",
    );
    for s in &report.scenarios {
        let (c, e, a) = (&s.claim_latency, &s.end_to_end_latency, &s.acquire_wait);
        let _ = write!(
            page,
            "<tr><td><a href=\"#scenario-{n}\">{n}</a></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.0}</td>\
             <td class=\"num\">{:.1} / {:.1} / {:.1}</td><td class=\"num\">{:.0} / {:.0} / {:.0}</td>\
             <td class=\"num\">{:.1} / {:.1}</td><td class=\"num\">{}</td></tr>",
            s.runs,
            s.jobs,
            s.elapsed_s,
            s.throughput_jobs_per_s,
            c.p50_ms,
            c.p95_ms,
            c.p99_ms,
            e.p50_ms,
            e.p95_ms,
            e.p99_ms,
            a.p50_ms,
            a.p99_ms,
            s.max_connections_seen,
            n = name(s.scenario),
        );
    }
    page.push_str("</table>");
}

fn invariants(page: &mut String, report: &Report) {
    page.push_str(
        "<h2>Invariants</h2><table class=\"invariants\"><tr><th></th><th>scenario</th>\
         <th>invariant</th><th>figures (on failure, the first offender)</th></tr>",
    );
    for s in &report.scenarios {
        for i in &s.invariants {
            let _ = write!(
                page,
                "<tr class=\"{row}\"><td class=\"{row}\">{mark}</td><td>{scenario}</td>\
                 <td>{name}</td><td>{detail}</td></tr>",
                row = if i.ok { "ok" } else { "broken" },
                mark = if i.ok { "✓" } else { "✗" },
                scenario = name(s.scenario),
                name = escape(&i.name),
                detail = escape(&i.detail),
            );
        }
    }
    page.push_str("</table>");
}

fn section(page: &mut String, s: &ScenarioReport) {
    let n = name(s.scenario);
    let _ = write!(
        page,
        "<section id=\"scenario-{n}\"><h2>{n}</h2><p class=\"muted\">{jobs} jobs in {secs:.2} s \
         ({rate:.0} jobs/s), in buckets of {width} s: jobs finished (completed or dead) per second; \
         the claim statements that returned in the bucket; the runs that finished in it (enqueue \
         → all their jobs finished).</p><div class=\"plots\">",
        jobs = s.jobs,
        secs = s.elapsed_s,
        rate = s.throughput_jobs_per_s,
        width = s.timeline.bucket_s,
    );
    let timeline = &s.timeline;
    let x_max = s.elapsed_s.max(timeline.bucket_s);
    let mid = |p: &Point| (p.t_s + timeline.bucket_s / 2.0).min(x_max);
    page.push_str(&plot(
        "Throughput",
        "jobs/s",
        x_max,
        &[Series {
            label: "jobs/s",
            color: THROUGHPUT,
            points: timeline
                .points
                .iter()
                .map(|p| (mid(p), Some(p.jobs_per_s)))
                .collect(),
        }],
    ));
    page.push_str(&plot(
        "Claim latency",
        "ms",
        x_max,
        &percentiles(timeline, &mid, |p| p.claim.as_ref()),
    ));
    page.push_str(&plot(
        "End-to-end latency",
        "ms",
        x_max,
        &percentiles(timeline, &mid, |p| p.end_to_end.as_ref()),
    ));
    page.push_str("</div>");
    if !s.errors.is_empty() {
        let events: Vec<String> = s
            .errors
            .iter()
            .map(|(kind, n)| format!("{} {n}", escape(kind)))
            .collect();
        let _ = write!(
            page,
            "<p class=\"muted\">errors and events: {}</p>",
            events.join(", ")
        );
    }
    page.push_str("</section>");
}

/// The p50 / p95 / p99 lines of one latency over the timeline.
fn percentiles<'a>(
    timeline: &Timeline,
    x: &dyn Fn(&Point) -> f64,
    of: impl Fn(&Point) -> Option<&Percentiles>,
) -> Vec<Series<'a>> {
    let line = |label: &'a str, color: &'a str, pick: fn(&Percentiles) -> f64| Series {
        label,
        color,
        points: timeline
            .points
            .iter()
            .map(|p| (x(p), of(p).map(pick)))
            .collect(),
    };
    vec![
        line("p50", P50, |p| p.p50_ms),
        line("p95", P95, |p| p.p95_ms),
        line("p99", P99, |p| p.p99_ms),
    ]
}
