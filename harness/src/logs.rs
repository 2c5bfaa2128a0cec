//! Recent log lines of the test process, kept for state dumps (printed live with `TEST_LOG=1`).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

const KEEP: usize = 2_000;

static LINES: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();

fn lines() -> &'static Mutex<VecDeque<String>> {
    LINES.get_or_init(|| Mutex::new(VecDeque::with_capacity(KEEP)))
}

/// Installs the capturing subscriber once per process; keeps the user's own if one is set.
pub(crate) fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter =
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG_FILTER").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tower=warn")
            });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Capture::default)
            .try_init();
    });
}

/// The recent lines that mention `needle` (or the last few when none do), at most `max`.
pub(crate) fn recent(needle: &str, max: usize) -> Vec<String> {
    let lines = lines().lock().unwrap_or_else(|p| p.into_inner());
    let mut matching: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect();
    if matching.is_empty() {
        matching = lines.iter().cloned().collect();
    }
    let skip = matching.len().saturating_sub(max);
    matching.into_iter().skip(skip).collect()
}

#[derive(Default)]
struct Capture {
    buf: Vec<u8>,
}

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        if std::env::var_os("TEST_LOG").is_some() {
            eprint!("{text}");
        }
        let mut lines = lines().lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            if lines.len() == KEEP {
                lines.pop_front();
            }
            lines.push_back(line.to_owned());
        }
    }
}
