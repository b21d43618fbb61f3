//! The error type of the `sustain` command.
//!
//! Every failure the user can cause (a missing file, a bad cell, an invalid model)
//! becomes a [`CliError`]: one human-readable message that names the file and, where
//! it applies, the row, column, biomarker or sequence at fault. `main` prints it as a
//! single line `error: <message>` on stderr and exits with status 2 (the status clap
//! uses for usage errors), so scripts can tell "bad input" from success (0).

use std::fmt;
use std::path::Path;

/// Exit status for every user-facing error (the same as clap's usage errors).
pub const EXIT_USER_ERROR: u8 = 2;

/// A user-facing error: one message, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(String);

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// An error about the file `path`: `<path>: <message>`.
    pub fn in_file(path: &Path, message: impl fmt::Display) -> Self {
        Self(format!("{}: {message}", path.display()))
    }

    /// A failed read of `path`.
    pub fn read(path: &Path, err: &std::io::Error) -> Self {
        Self(format!("cannot read {}: {err}", path.display()))
    }

    /// A failed write of `path`.
    pub fn write(path: &Path, err: &std::io::Error) -> Self {
        Self(format!("cannot write {}: {err}", path.display()))
    }

    /// The message on one line: line breaks (which may come from the text of an
    /// underlying error) are replaced by spaces.
    pub fn one_line(&self) -> String {
        // Other control characters (a NUL byte of a cell) are shown escaped.
        self.0
            .split(['\r', '\n'])
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_debug().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        let e = CliError::new("first\n  second\r\n\nthird");
        assert_eq!(e.one_line(), "first second third");
        let nul = CliError::new("cell 'a\0b\tc'");
        assert_eq!(nul.one_line(), "cell 'a\\0b\\tc'");
    }

    #[test]
    fn in_file_prefixes_the_path() {
        let e = CliError::in_file(Path::new("dir/data.csv"), "no data rows");
        assert_eq!(e.to_string(), "dir/data.csv: no data rows");
    }
}
