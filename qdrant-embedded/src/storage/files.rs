//! File-system steps that must hold across a crash: atomic writes, durable renames, and keeping
//! the engine's own WAL directory small.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Make the entries of `dir` (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `bytes` to `path` so that a crash leaves either the old file or the whole new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Remove the engine's closed WAL segments except the newest; returns how many went.
///
/// qdrant-edge 0.7.2 appends every operation to its WAL (files `open-N` and `closed-START` in
/// the shard's `wal` directory) but never acknowledges or replays it, so closed segments pile up
/// forever. Recovery here comes from the operation log instead. The newest closed segment stays:
/// the engine numbers new operations after its last entry, and those numbers must keep growing,
/// because a segment ignores an operation numbered below the version of the point it touches.
/// Call only while the shard is closed.
pub(crate) fn trim_engine_wal(wal_dir: &Path) -> io::Result<usize> {
    let mut closed: Vec<(u64, PathBuf)> = Vec::new();
    if !wal_dir.exists() {
        return Ok(0);
    }
    for entry in fs::read_dir(wal_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let start = name
            .to_str()
            .and_then(|name| name.strip_prefix("closed-"))
            .and_then(|start| start.parse::<u64>().ok());
        if let Some(start) = start {
            closed.push((start, entry.path()));
        }
    }
    closed.sort_unstable();
    closed.pop();
    for (_, path) in &closed {
        fs::remove_file(path)?;
    }
    if !closed.is_empty() {
        sync_dir(wal_dir)?;
    }
    Ok(closed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_the_newest_closed_segment_and_every_open_one() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        for name in [
            "closed-0",
            "closed-120",
            "closed-57",
            "open-3",
            "open-4",
            "first-index",
        ] {
            fs::write(dir.path().join(name), b"x")?;
        }

        let removed = trim_engine_wal(dir.path())?;

        let mut left: Vec<String> = fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        left.sort();
        assert_eq!(removed, 2);
        assert_eq!(left, ["closed-120", "first-index", "open-3", "open-4"]);
        Ok(())
    }
}
