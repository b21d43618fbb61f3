//! Stage new subjects from a saved fit (a `results.json` written by `sustain fit`).
//!
//! `cargo run --release --example stage_new_subjects -- sustain-demo/results.json new.csv`
//! (the CSV needs a header with the fit's biomarker names; empty cells are missing).

use sustain::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(fit_path), Some(csv_path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stage_new_subjects RESULTS.json NEW.csv");
        std::process::exit(2);
    };
    let mut fit: FitResult = serde_json::from_str(&std::fs::read_to_string(fit_path)?)?;
    // The MCMC samples, from the samples.npz beside results.json.
    sustain::samples_file::load_fit(&mut fit, std::path::Path::new(fit_path))
        .map_err(|e| e.to_string())?;
    let events = EventSet::new(&fit.z_vals, &fit.z_max)?;
    let mut reader = csv::Reader::from_path(csv_path)?;
    let header = reader.headers()?.clone();
    let columns: Vec<usize> = fit
        .biomarkers
        .iter()
        .map(|b| {
            header
                .iter()
                .position(|h| h == b)
                .ok_or(format!("{csv_path}: no column '{b}'"))
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let row = columns
            .iter()
            .map(|&c| match record.get(c).unwrap_or("").trim() {
                "" | "NA" | "NaN" | "nan" => Ok(f64::NAN),
                v => v.parse::<f64>().map_err(|_| {
                    format!(
                        "{csv_path}: row {}, column '{}': '{v}' is not a number",
                        i + 1,
                        &header[c]
                    )
                }),
            })
            .collect::<Result<Vec<f64>, String>>()?;
        rows.push(row);
    }
    let data = Dataset::from_rows(&rows)?;
    let model = fit.models.last().ok_or("the fit has no models")?;
    let lik = std::sync::Arc::new(Likelihood::new(events, &data, fit.settings.missing)?);
    let ids: Vec<String> = (1..=data.n_subjects()).map(|i| i.to_string()).collect();
    println!("id,ml_subtype,prob_ml_subtype,ml_stage,prob_ml_stage");
    for s in stage_subjects(&lik, model, &ids, 1000, sustain_cpu::default_threads()) {
        println!(
            "{},{},{:.4},{},{:.4}",
            s.id, s.ml_subtype, s.prob_ml_subtype, s.ml_stage, s.prob_ml_stage
        );
    }
    Ok(())
}
