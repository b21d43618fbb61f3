//! Numeric CSV files (a header, then numbers; an empty cell is a missing value).

use std::path::Path;

/// The rows of a numeric CSV file after its header; an empty cell is NaN.
pub fn read_rows(path: &Path) -> Vec<Vec<f64>> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        f64::NAN
                    } else {
                        c.parse().unwrap()
                    }
                })
                .collect()
        })
        .collect()
}
