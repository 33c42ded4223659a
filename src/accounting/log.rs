//! The durable log: a queue of records waiting for the next group commit, and the daily file
//! they are appended to.
//!
//! Each shard has its own queue and its own file descriptor on the shared daily file
//! (`accounting-YYYY-MM-DD.jsonl`, UTC), opened `O_APPEND`: every batch is one `write` (the
//! kernel appends it whole), then `fdatasync`, both through io_uring so the shard keeps
//! serving while the disk works. Only after the sync completes does the shard release the
//! batch's replies (`dataplane::acct_batch`).

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, OpenOptions};

use super::time::{date_of, Date};

/// The shard's handle on today's log file.
pub struct AccountingLog {
    dir: PathBuf,
    current: Option<(Date, BufferedFile, u64)>,
}

impl AccountingLog {
    pub fn new(dir: &Path) -> AccountingLog {
        AccountingLog {
            dir: dir.to_path_buf(),
            current: None,
        }
    }

    pub fn path_for(dir: &Path, date: Date) -> PathBuf {
        dir.join(format!(
            "accounting-{:04}-{:02}-{:02}.jsonl",
            date.year, date.month, date.day
        ))
    }

    /// Appends `lines` to the file for the day of `unix_secs` and syncs it. Returns once the
    /// bytes are on stable storage.
    pub async fn append_durably(&mut self, lines: Vec<u8>, unix_secs: i64) -> io::Result<()> {
        let date = date_of(unix_secs);
        if self.current.as_ref().map(|(d, _, _)| *d) != Some(date) {
            if let Some((_, old, _)) = self.current.take() {
                // The old day's data was synced with its last batch.
                let _ = old.close().await;
            }
            let path = Self::path_for(&self.dir, date);
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(true)
                .buffered_open(&path)
                .await
                .map_err(io::Error::from)?;
            let size = file.file_size().await.map_err(io::Error::from)?;
            self.current = Some((date, file, size));
        }
        let Some((_, file, pos)) = self.current.as_mut() else {
            return Err(io::Error::other("accounting file not open"));
        };
        let total = lines.len();
        let mut written = file.write_at(lines, *pos).await.map_err(io::Error::from)?;
        if written < total {
            // A short write (disk full, signal): a record must never be split by another
            // shard's batch, so report it rather than append the rest later.
            *pos += written as u64;
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {total} bytes"),
            ));
        }
        written = total;
        *pos += written as u64;
        file.fdatasync().await.map_err(io::Error::from)?;
        Ok(())
    }
}
