//! Writes a simulated cohort as a CSV for trying `sustain fit` on any size:
//! `cargo run --release --example simulate_cohort -- SUBJECTS BIOMARKERS SUBTYPES OUT.csv [SEED]`.
//!
//! The cohort is `sustain_testkit::uniform_cohort`: thresholds 1, 2, 3 and z_max 5 for
//! every biomarker, equal subtype fractions, 10% of values missing (empty cells),
//! random true sequences drawn from the seed (default 1). Columns `bm0`, `bm1`, ...;
//! fit it with `sustain fit --data OUT.csv --zvals 1,2,3 --zmax 5 ...`.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: simulate_cohort SUBJECTS BIOMARKERS SUBTYPES OUT.csv [SEED]";
    if args.len() < 4 {
        return Err(usage.into());
    }
    let number = |i: usize, what: &str| -> Result<usize, String> {
        args[i].parse().map_err(|_| {
            format!(
                "{what} must be a positive integer, got '{}' ({usage})",
                args[i]
            )
        })
    };
    let (m, b, s) = (
        number(0, "SUBJECTS")?,
        number(1, "BIOMARKERS")?,
        number(2, "SUBTYPES")?,
    );
    let seed = if args.len() > 4 {
        number(4, "SEED")? as u64
    } else {
        1
    };
    if m == 0 || b == 0 || s == 0 {
        return Err(format!("SUBJECTS, BIOMARKERS and SUBTYPES must be positive ({usage})").into());
    }
    let w = sustain_testkit::uniform_cohort(m, b, &vec![1.0 / s as f64; s], seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[3])?);
    let header: Vec<String> = (0..b).map(|j| format!("bm{j}")).collect();
    out.write_all(sustain_testkit::to_csv(&header, &w.data).as_bytes())?;
    out.flush()?;
    eprintln!(
        "wrote {m} subjects x {b} biomarkers ({s} true subtypes) to {}",
        args[3]
    );
    Ok(())
}
