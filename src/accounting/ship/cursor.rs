//! Where the shipper is in the log: a file name and a byte offset just after a complete
//! line, and reading the next complete lines from there (blocking file I/O: called on a
//! blocking thread of the control runtime, never on a shard).
//!
//! Files are taken in name order (`accounting-YYYY-MM-DD.jsonl` sorts by day). The shipper
//! leaves a day's file for the next one only when it has read the file to its end, a later
//! file exists, and the file has not been written for [`ROTATE_GRACE`]: a shard still
//! finishing the old day's batch after midnight is not left behind. A line without its
//! newline yet (being written, or torn by a crash) is not consumed; a crash's torn line is
//! glued to the next record by the next append, and [`super::line::parse_line`] reads that
//! record out of it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::line::{parse_line, LogRecord};

/// How long a day's file must be quiet before the shipper moves past it.
pub const ROTATE_GRACE: Duration = Duration::from_secs(5);
/// Most bytes read in one chunk; a "line" longer than this is not a record and is skipped.
pub const MAX_CHUNK: usize = 4 << 20;
/// Bytes read per record wanted, and at least this many.
const READ_PER_RECORD: usize = 1024;
const MIN_READ: usize = 64 << 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The file's name in the accounting directory; empty: before the first file.
    pub file: String,
    pub offset: u64,
}

/// The next records after a position.
#[derive(Debug, Default)]
pub struct Chunk {
    pub records: Vec<LogRecord>,
    /// Lines that were not records (counted, skipped).
    pub unreadable: u64,
    /// Just after the last line consumed.
    pub end: Position,
    /// Bytes of the log after `end`: what is still to ship after this chunk.
    pub behind: u64,
    /// Bytes this chunk consumed (its records and skipped lines).
    pub taken: u64,
    /// Files the position had to skip because they are gone (deleted before being shipped).
    pub missing: u64,
}

/// The log's files, oldest first.
pub fn log_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| crate::session::rebuild::file_day(n).is_some())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    Ok(names)
}

/// Bytes through the last newline of `buf` (0: no complete line).
pub fn complete(buf: &[u8]) -> usize {
    buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// Whether to leave a file read to its end for the next one.
pub fn may_advance(at_end: bool, later_exists: bool, quiet_for: Option<Duration>) -> bool {
    at_end && later_exists && quiet_for.is_some_and(|q| q >= ROTATE_GRACE)
}

/// Reads at most `max_records` records after `pos`.
pub fn read_chunk(dir: &Path, pos: &Position, max_records: usize) -> io::Result<Chunk> {
    let files = log_files(dir)?;
    let mut chunk = Chunk {
        end: pos.clone(),
        ..Chunk::default()
    };
    let mut idx = match files.iter().position(|f| *f == pos.file) {
        Some(i) => i,
        None => match files.iter().position(|f| *f > pos.file) {
            Some(i) => {
                if !pos.file.is_empty() {
                    chunk.missing += 1;
                }
                chunk.end = Position {
                    file: files[i].clone(),
                    offset: 0,
                };
                i
            }
            None => return Ok(chunk),
        },
    };
    let mut buf = Vec::new();
    loop {
        let path = dir.join(&files[idx]);
        let mut f = File::open(&path)?;
        let meta = f.metadata()?;
        let size = meta.len();
        if chunk.end.offset > size {
            // The file is shorter than what was shipped of it: replaced, or truncated by a
            // power loss before its tail was synced (never acknowledged). Read it again from
            // the start; the upserts absorb rows shipped before.
            tracing::warn!(file = %files[idx], offset = chunk.end.offset, size, "accounting file is shorter than the shipped offset: shipping it again from the start");
            chunk.end.offset = 0;
        }
        let left = (size - chunk.end.offset).min(MAX_CHUNK as u64) as usize;
        // About what `max_records` lines take (a record is a few hundred bytes), more only
        // when one line is longer than that.
        let mut want = left.min((max_records * READ_PER_RECORD).max(MIN_READ));
        if want > 0 && chunk.records.len() < max_records {
            f.seek(SeekFrom::Start(chunk.end.offset))?;
            buf.resize(want, 0);
            f.read_exact(&mut buf)?;
            if complete(&buf) == 0 && want < left {
                want = left;
                buf.resize(want, 0);
                f.seek(SeekFrom::Start(chunk.end.offset))?;
                f.read_exact(&mut buf)?;
            }
            let used = complete(&buf);
            let mut at = 0;
            if used == 0 && want == MAX_CHUNK {
                at = want; // no newline in MAX_CHUNK bytes: not records
                chunk.unreadable += 1;
            }
            for line in buf[..used].split_inclusive(|&b| b == b'\n') {
                if chunk.records.len() >= max_records {
                    break;
                }
                at += line.len();
                match parse_line(line) {
                    Ok(r) => chunk.records.push(r),
                    Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                    Err(_) => chunk.unreadable += 1,
                }
            }
            chunk.end.offset += at as u64;
            chunk.taken += at as u64;
        }
        let at_end = chunk.end.offset >= size;
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if chunk.records.len() < max_records && may_advance(at_end, idx + 1 < files.len(), quiet) {
            idx += 1;
            chunk.end = Position {
                file: files[idx].clone(),
                offset: 0,
            };
            continue;
        }
        chunk.behind = size.saturating_sub(chunk.end.offset);
        for later in &files[idx + 1..] {
            chunk.behind += std::fs::metadata(dir.join(later)).map_or(0, |m| m.len());
        }
        return Ok(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const REC: &str = r#"{"time":"2026-12-06T10:00:00.000001Z","nas":"127.0.0.1:1","attributes":{"Acct-Status-Type":"Start","Acct-Session-Id":"N"}}"#;

    fn line(n: usize) -> String {
        format!("{}\n", REC.replace("\"N\"", &format!("\"{n}\"")))
    }

    #[test]
    fn reads_complete_lines_in_order_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("accounting-2026-12-05.jsonl");
        let b = dir.path().join("accounting-2026-12-06.jsonl");
        std::fs::write(&a, format!("{}garbage\n{}", line(0), line(1))).unwrap();
        let mut fb = File::create(&b).unwrap();
        write!(fb, "{}{}", line(2), &line(3)[..20]).unwrap(); // a line still being written
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();

        let c = read_chunk(dir.path(), &Position::default(), 10).unwrap();
        // File a was written just now: not yet left for b.
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.unreadable, 1);
        assert_eq!(c.end.file, "accounting-2026-12-05.jsonl");
        assert!(c.behind > 0);
        // Once it is quiet, b follows; the partial line stays.
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let c2 = read_chunk(dir.path(), &c.end, 10).unwrap();
        assert_eq!(c2.records.len(), 1);
        assert_eq!(c2.records[0].attrs.acct_session_id.as_deref(), Some("2"));
        assert_eq!(c2.end.file, "accounting-2026-12-06.jsonl");
        assert_eq!(c2.behind, 20);
        write!(fb, "{}", &line(3)[20..]).unwrap();
        let c3 = read_chunk(dir.path(), &c2.end, 10).unwrap();
        assert_eq!(c3.records[0].attrs.acct_session_id.as_deref(), Some("3"));
        assert_eq!(c3.behind, 0);
        // At most max_records.
        let c4 = read_chunk(dir.path(), &Position::default(), 1).unwrap();
        assert_eq!(
            (c4.records.len(), c4.end.offset as usize),
            (1, line(0).len())
        );
        // A deleted file is skipped (counted), its successor read from the start.
        std::fs::remove_file(&a).unwrap();
        let c5 = read_chunk(dir.path(), &c.end, 10).unwrap();
        assert_eq!((c5.missing, c5.records.len()), (1, 2));
    }

    #[test]
    fn a_line_longer_than_the_first_read_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = line(0).replace(
            "\"Start\"",
            &format!("\"Start\",\"Class\":\"{}\"", "a".repeat(200_000)),
        );
        std::fs::write(
            dir.path().join("accounting-2026-12-05.jsonl"),
            format!("{long}{}", line(1)),
        )
        .unwrap();
        let c = read_chunk(dir.path(), &Position::default(), 1).unwrap();
        assert_eq!((c.records.len(), c.end.offset as usize), (1, long.len()));
        let c = read_chunk(dir.path(), &c.end, 5).unwrap();
        assert_eq!((c.records.len(), c.behind), (1, 0));
    }

    #[test]
    fn advancing_needs_the_end_a_later_file_and_quiet() {
        let q = Some(ROTATE_GRACE);
        assert!(may_advance(true, true, q));
        assert!(!may_advance(false, true, q));
        assert!(!may_advance(true, false, q));
        assert!(!may_advance(true, true, Some(Duration::from_secs(1))));
        assert!(!may_advance(true, true, None));
        assert_eq!(complete(b"a\nb"), 2);
        assert_eq!(complete(b"ab"), 0);
    }
}
