//! The HTML report (`--html`) opened in a headless Chromium: it renders without a script error,
//! every plot has lines laid out by the browser, and the screenshot shows them.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it). Without it
//! the test fails in CI (`CI=true`) and is skipped with a message elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{assert_passes, small_with, TestResult};

/// The throughput line's colour in the report (`#2563eb`), and the p50 lines' (`#16a34a`).
const THROUGHPUT: [u8; 3] = [0x25, 0x63, 0xeb];
const P50: [u8; 3] = [0x16, 0xa3, 0x4a];

#[test]
fn the_html_report_renders_its_plots_in_chromium() -> TestResult {
    let Some(chromium) = chromium()? else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("load-html-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let page = dir.join("report.html");
    let page_arg = page.to_string_lossy().into_owned();
    assert_passes(&small_with("claim", &["--html", &page_arg])?);

    // Self-contained: nothing to fetch (the SVG namespace is a name, not a download).
    let html = std::fs::read_to_string(&page)?;
    let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_namespace.contains("http://") && !without_namespace.contains("https://"),
        "the report refers to the network"
    );
    assert_eq!(html.matches("<svg class=\"plot\"").count(), 3, "{html}");

    // The DOM after load: the page's script marks what the browser laid out.
    let dom = run_chromium(&chromium, &dir.join("profile-dom"), &["--dump-dom"], &page)?;
    assert!(dom.contains("data-plots-checked=\"3\""), "{dom}");
    assert!(!dom.contains("data-errors"), "a script error: {dom}");
    let drawn: Vec<u64> = dom
        .split("data-drawn=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect();
    assert_eq!(drawn.len(), 3, "{dom}");
    assert!(
        drawn.iter().all(|d| *d > 0),
        "a plot without lines: {drawn:?}"
    );

    // The screenshot: the lines' colours are there, in more pixels than the legends hold.
    let shot = dir.join("report.png");
    run_chromium(
        &chromium,
        &dir.join("profile-shot"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1400",
        ],
        &page,
    )?;
    let (throughput, p50) = (pixels_of(&shot, THROUGHPUT)?, pixels_of(&shot, P50)?);
    assert!(throughput > 150, "{throughput} throughput-line pixels");
    assert!(p50 > 150, "{p50} p50-line pixels");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Chromium's path; `None` (with a message) when it is missing outside CI.
fn chromium() -> anyhow::Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Ok(Some(path)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            anyhow::bail!("chromium is missing: CI must install it (apt-get install -y chromium)")
        }
        None => {
            eprintln!(
                "SKIPPED: the HTML report's rendering check needs Chromium; install it with \
                 `apt-get install -y chromium` (in CI, where CI=true, this test fails instead)"
            );
            Ok(None)
        }
    }
}

/// Runs headless Chromium on `page` with a fresh profile; returns its stdout.
fn run_chromium(
    chromium: &Path,
    profile: &Path,
    args: &[&str],
    page: &Path,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(profile)?;
    // Without the background-networking flags it tries connections a closed network refuses.
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Pixels of exactly `rgb` in the PNG at `path`.
fn pixels_of(path: &Path, rgb: [u8; 3]) -> anyhow::Result<usize> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader.next_frame(&mut buf)?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => anyhow::bail!("unexpected screenshot colour type {other:?}"),
    };
    anyhow::ensure!(info.bit_depth == png::BitDepth::Eight, "not 8-bit");
    Ok(buf[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|px| px[..3] == rgb)
        .count())
}
