//! Files for the unit tests that write and read them.

use std::path::PathBuf;

/// A fresh temporary folder (removed when dropped) and the path of a file `name`
/// in it.
pub(crate) fn temp_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}
