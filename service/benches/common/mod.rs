//! Helpers shared by the benchmarks that report CPU time (a shared 2-core machine makes wall time
//! undercount one core).

#![allow(dead_code)] // each bench uses its own subset

/// CPU time of the calling thread in seconds, from /proc (Linux); `None` elsewhere.
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_seconds("/proc/thread-self/stat")
}

/// CPU time of the whole process (every thread, e.g. a tokenizer's pool) in seconds.
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds("/proc/self/stat")
}

fn cpu_seconds(stat_file: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_file).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
