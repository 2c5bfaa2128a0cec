//! Counters, latency samples and finished jobs over time, shared by a scenario's tasks. In a
//! worker process (`--processes`) they are forwarded to the parent instead, one [`Event`] a line.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Latency samples of one kind, each with when it was taken (for the plots over time).
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<Vec<(Instant, Duration)>>,
    /// Set in a worker process: samples go to the parent as [`Event::Latency`] of this kind.
    forward: Option<&'static str>,
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Samples taken.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latencies {
    /// Samples forwarded to the parent process as `kind` instead of kept.
    pub fn forwarding(kind: &'static str) -> Self {
        Self {
            samples: Mutex::default(),
            forward: Some(kind),
        }
    }

    /// Adds a sample taken now.
    pub fn record(&self, d: Duration) {
        if let Some(kind) = self.forward {
            Event::Latency {
                kind: kind.to_owned(),
                micros: d.as_micros().try_into().unwrap_or(u64::MAX),
            }
            .emit();
            return;
        }
        lock(&self.samples).push((Instant::now(), d));
    }

    /// The percentiles of everything recorded.
    pub fn percentiles(&self) -> Percentiles {
        let mut samples: Vec<Duration> = lock(&self.samples).iter().map(|(_, d)| *d).collect();
        Percentiles::of(&mut samples)
    }

    /// Every sample: when it was taken and how long it was.
    pub fn samples(&self) -> Vec<(Instant, Duration)> {
        lock(&self.samples).clone()
    }
}

impl Percentiles {
    /// The percentiles of `samples` (nearest rank); all zero when there are none.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
            samples[index.min(samples.len() - 1)].as_secs_f64() * 1000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Jobs finished, counted in slots of [`Throughput::SLOT`] from its creation: bounded memory
/// whatever the number of jobs.
#[derive(Debug)]
pub struct Throughput {
    start: Instant,
    slots: Mutex<Vec<u64>>,
}

impl Default for Throughput {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            slots: Mutex::default(),
        }
    }
}

impl Throughput {
    /// The finest resolution kept.
    pub const SLOT: Duration = Duration::from_millis(10);

    /// Counts `n` jobs finished now.
    pub fn record(&self, n: u64) {
        let slot = (self.start.elapsed().as_millis() / Self::SLOT.as_millis()) as usize;
        let mut slots = lock(&self.slots);
        if slots.len() <= slot {
            slots.resize(slot + 1, 0);
        }
        slots[slot] += n;
    }

    /// The jobs finished in `[from, to)`, to the slot.
    pub fn between(&self, from: Instant, to: Instant) -> u64 {
        let slot_of = |t: Instant| {
            (t.saturating_duration_since(self.start).as_millis() / Self::SLOT.as_millis()) as usize
        };
        let slots = lock(&self.slots);
        let (a, b) = (slot_of(from).min(slots.len()), slot_of(to).min(slots.len()));
        slots[a..b.max(a)].iter().sum()
    }
}

/// Errors and events by kind.
#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<String, u64>>,
    examples: Mutex<BTreeMap<String, String>>,
    /// Set in a worker process: events go to the parent as [`Event::Count`].
    forward: bool,
}

impl Counters {
    /// Events forwarded to the parent process instead of kept.
    pub fn forwarding() -> Self {
        Self {
            forward: true,
            ..Self::default()
        }
    }

    /// Counts one event of `kind`; keeps the first `example` of each kind for the report.
    pub fn add(&self, kind: &str, example: impl FnOnce() -> String) {
        if self.forward {
            // Every example goes: the parent keeps the first it sees among all its processes.
            Event::Count {
                kind: kind.to_owned(),
                n: 1,
                example: Some(example()),
            }
            .emit();
            return;
        }
        *lock(&self.counts).entry(kind.to_owned()).or_default() += 1;
        lock(&self.examples)
            .entry(kind.to_owned())
            .or_insert_with(example);
    }

    /// Counts `n` events of `kind`.
    pub fn add_n(&self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        if self.forward {
            Event::Count {
                kind: kind.to_owned(),
                n,
                example: None,
            }
            .emit();
            return;
        }
        *lock(&self.counts).entry(kind.to_owned()).or_default() += n;
    }

    /// Counts `n` events of `kind` reported by a worker process, keeping its example if it is
    /// the first of its kind.
    pub fn merge(&self, kind: &str, n: u64, example: Option<String>) {
        self.add_n(kind, n);
        if let Some(example) = example {
            lock(&self.examples)
                .entry(kind.to_owned())
                .or_insert(example);
        }
    }

    /// The count of one kind.
    pub fn get(&self, kind: &str) -> u64 {
        lock(&self.counts).get(kind).copied().unwrap_or(0)
    }

    /// The first example of one kind.
    pub fn example(&self, kind: &str) -> Option<String> {
        lock(&self.examples).get(kind).cloned()
    }

    /// Every count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }
}

/// What a worker process tells its parent, one JSON object a line on its stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `n` events of `kind` (see [`Counters`]), with an example of it.
    Count {
        /// The kind.
        kind: String,
        /// How many.
        n: u64,
        /// The first occurrence described, for the report.
        example: Option<String>,
    },
    /// A latency sample of `kind` (`claim`).
    Latency {
        /// The kind.
        kind: String,
        /// The sample.
        micros: u64,
    },
    /// The process hung with a stalled job (its workers stopped): the parent starts another.
    Hung,
}

impl Event {
    /// Writes the event to stdout at once: the process may be killed any moment after. What the
    /// checks read (duplicates, stale completions) is written before its transaction commits,
    /// so no kill loses it; a finished job's count may be lost to a kill right after its commit
    /// (the checks count finished jobs in the ledger and the queue, not here).
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            let mut out = std::io::stdout().lock();
            // A parent that stopped reading is gone; the worker dies with the pipe soon after.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let p = latencies.percentiles();
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }
}
