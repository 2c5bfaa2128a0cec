//! A collection's operation log: every write applied since the last checkpoint, in the order the
//! engine applied them, so that a start after a crash can apply again what the engine had not
//! flushed to its segments. qdrant-edge 0.7.2 keeps a WAL of its own but never replays it.
//!
//! Layout: an 8-byte header, then records `[length: u32 LE][crc32c: u32 LE][CBOR operation]`.
//! A record goes in with one write(2) before the operation is applied, and the reply waits for
//! both, so an acknowledged write sits in the page cache and outlives the process. A torn record
//! at the end (a crash during the append) was never acknowledged and is cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::files::sync_dir;

const HEADER: &[u8; 8] = b"qeoplog1";
const HEADER_LEN: u64 = HEADER.len() as u64;
/// Length and checksum in front of each record.
const RECORD_HEADER_LEN: usize = 8;

pub(crate) struct Oplog {
    file: File,
    path: PathBuf,
    /// Bytes of complete records plus the header: where the next record goes.
    len: u64,
}

impl Oplog {
    /// Create an empty log, durably, replacing any file at `path`.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(HEADER)?;
        file.sync_all()?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            len: HEADER_LEN,
        })
    }

    /// Open the log at `path` (an empty one if there is none) and read its complete records.
    pub(crate) fn open(path: &Path) -> io::Result<(Self, Vec<Vec<u8>>)> {
        if !path.exists() {
            return Ok((Self::create(path)?, Vec::new()));
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if bytes.len() < HEADER.len() && HEADER.starts_with(&bytes) {
            // Torn while being created: nothing was ever logged in it.
            return Ok((Self::create(path)?, Vec::new()));
        }
        if !bytes.starts_with(HEADER) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not an operation log", path.display()),
            ));
        }
        let (records, end) = parse_records(&bytes[HEADER.len()..]);
        let len = HEADER_LEN + end as u64;
        if len < bytes.len() as u64 {
            tracing::warn!(
                log = %path.display(),
                bytes = bytes.len() as u64 - len,
                "cutting off an incomplete record (a write interrupted by a crash, never acknowledged)"
            );
            file.set_len(len)?;
            file.sync_all()?;
        }
        let log = Self {
            file,
            path: path.to_owned(),
            len,
        };
        Ok((log, records))
    }

    /// Bytes in the log, header included.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Append one record; returns the length before it, for [`Oplog::rollback`].
    pub(crate) fn append(&mut self, record: &[u8]) -> io::Result<u64> {
        let length = u32::try_from(record.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "operation too large to log")
        })?;
        let mut buffer = Vec::with_capacity(RECORD_HEADER_LEN + record.len());
        buffer.extend_from_slice(&length.to_le_bytes());
        buffer.extend_from_slice(&crc32c::crc32c(record).to_le_bytes());
        buffer.extend_from_slice(record);
        let before = self.len;
        let written = self
            .file
            .seek(SeekFrom::Start(before))
            .and_then(|_| self.file.write_all(&buffer));
        if let Err(err) = written {
            // A partial record must not stay in front of the next one.
            let _ = self.file.set_len(before);
            return Err(err);
        }
        self.len = before + buffer.len() as u64;
        Ok(before)
    }

    /// Drop what was appended after `len` (an operation the engine refused).
    pub(crate) fn rollback(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    /// Empty the log once everything in it is flushed to the segments.
    pub(crate) fn reset(&mut self) -> io::Result<()> {
        self.file.set_len(HEADER_LEN)?;
        self.file.sync_all()?;
        self.len = HEADER_LEN;
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The complete records at the start of `bytes`, and where they end. Parsing stops at the
/// first record that is cut short or fails its checksum.
fn parse_records(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN) {
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let checksum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let start = at + RECORD_HEADER_LEN;
        let Some(record) = bytes.get(start..start + length) else {
            break;
        };
        if crc32c::crc32c(record) != checksum {
            break;
        }
        records.push(record.to_vec());
        at = start + length;
    }
    (records, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_is_cut_off() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("oplog");
        let (mut log, records) = Oplog::open(&path)?;
        assert!(records.is_empty());
        log.append(b"first")?;
        let before_second = log.append(b"second")?;
        log.append(b"third")?;
        log.rollback(before_second + 14)?; // "second" stays, "third" goes
        drop(log);
        // A crash in the middle of an append leaves a partial record behind.
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(&[9, 0, 0, 0, 1, 2])?;
        drop(file);

        let (mut log, records) = Oplog::open(&path)?;

        assert_eq!(records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(std::fs::metadata(&path)?.len(), log.len());
        log.reset()?;
        drop(log);
        let (_, records) = Oplog::open(&path)?;
        assert!(records.is_empty());
        Ok(())
    }

    #[test]
    fn a_record_failing_its_checksum_ends_the_log() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("oplog");
        let (mut log, _) = Oplog::open(&path)?;
        log.append(b"kept")?;
        let second = log.append(b"flipped")?;
        drop(log);
        let mut bytes = std::fs::read(&path)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes)?;

        let (log, records) = Oplog::open(&path)?;

        assert_eq!(records, vec![b"kept".to_vec()]);
        assert_eq!(log.len(), second);
        Ok(())
    }
}
