//! Numeric CSV files (a header, then numbers; an empty cell is a missing value).

use std::path::Path;

use sustain_model::Dataset;

/// The rows of a numeric CSV file after its header; an empty cell is NaN.
pub fn read_rows(path: &Path) -> Vec<Vec<f64>> {
    read_rows_from(path, 0)
}

/// [`read_rows`] without the first `skip` columns (e.g. an id column of any text).
pub fn read_rows_from(path: &Path, skip: usize) -> Vec<Vec<f64>> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .skip(skip)
                .map(|c| {
                    if c.is_empty() {
                        f64::NAN
                    } else {
                        c.parse()
                            .unwrap_or_else(|e| panic!("{}: '{c}': {e}", path.display()))
                    }
                })
                .collect()
        })
        .collect()
}

/// `data` as CSV text under `header`: a missing value is an empty cell, the others
/// print in Rust's shortest form that reads back to the same bits.
pub fn to_csv(header: &[String], data: &Dataset) -> String {
    let mut csv = header.join(",") + "\n";
    for row in data.values().rows() {
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v}")
                }
            })
            .collect();
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
    csv
}
