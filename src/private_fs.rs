//! Files and directories only this process's user may read or enter.
//!
//! Execution records, console output, session logs (which hold the code) and
//! heap snapshots keep whatever agents computed, printed or wrote; on a
//! machine with other users none of it may be readable by them, whatever the
//! umask.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of every directory the server creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the server creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, owner-only. A directory that
/// exists already is left as it is: it may be shared on purpose.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Options that create a missing file owner-only.
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}
