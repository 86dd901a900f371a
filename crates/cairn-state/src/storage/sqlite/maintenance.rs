//! The statements behind backups, vacuuming and the health report.

use std::path::Path;

use super::Engine;
use crate::error::Result;
use crate::storage::{Health, Pages};

impl Engine {
    /// A consistent, compacted copy of the database into `dest` (which must not exist or be
    /// empty), read in one snapshot while other connections keep writing.
    pub fn vacuum_into(&self, dest: &Path) -> Result<()> {
        // Absolute, so that a destination named `file:...` is that file, not a URI.
        let dest = super::sqlite_file_name(dest)?;
        // SQLite takes the name as text; a lossy conversion would write to another file.
        let name = dest.to_str().ok_or_else(|| {
            crate::error::Error::invalid(format!(
                "{}: a backup path must be UTF-8 text (SQLite takes it as text)",
                dest.display()
            ))
        })?;
        self.retry_busy(|c| c.execute("VACUUM INTO ?1", [name]).map(drop))
    }

    /// Rebuild the file without free pages, then empty the WAL.
    pub fn vacuum(&self) -> Result<()> {
        self.retry_busy(|c| c.execute_batch("VACUUM"))?;
        self.checkpoint_truncate()
    }

    /// Copy the WAL into the database and truncate it to zero bytes.
    pub fn checkpoint_truncate(&self) -> Result<()> {
        self.retry_busy(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }

    /// A file has no server: its health is read from the file itself.
    pub fn server_health(&self) -> Result<Vec<Health>> {
        Ok(Vec::new())
    }

    pub fn pages(&self) -> Result<Pages> {
        let int = |name: &str| -> Result<u64> { Ok(self.pragma_text(name)?.parse().unwrap_or(0)) };
        Ok(Pages {
            page_size: int("page_size")?,
            page_count: int("page_count")?,
            freelist: int("freelist_count")?,
        })
    }
}
