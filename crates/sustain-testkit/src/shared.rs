//! The shared data next to the repository (`../shared/data`: golden values of the
//! reference implementation, sim42, raw tables). Tests skip, with a notice, where it
//! is absent.

use std::path::{Path, PathBuf};

use sustain_model::{Dataset, EventSet};

/// `../shared/data/<name>` if `<name>/<probe>` exists; else prints
/// `NOTICE: ../shared/data/<name> not found; <skipped> skipped` and gives `None`.
pub fn shared_data(name: &str, probe: &str, skipped: &str) -> Option<PathBuf> {
    // This crate lies at crates/sustain-testkit, as deep as every crate of the tree.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if dir.join(probe).exists() {
        Some(dir)
    } else {
        eprintln!("NOTICE: ../shared/data/{name} not found; {skipped} skipped");
        None
    }
}

/// The sim42 cohort of `../shared/data/sim42`: its folder, events, biomarker names
/// and data (the columns of `data.csv` named by `model.json`, empty = missing).
pub struct Sim42 {
    /// The folder (reference results and truth lie next to the data).
    pub dir: PathBuf,
    /// The events of `model.json`.
    pub events: EventSet,
    /// The biomarkers, in the model's order.
    pub names: Vec<String>,
    /// The subjects' z-scores.
    pub data: Dataset,
}

/// sim42, or `None` with a notice that `skipped` is skipped.
pub fn sim42(skipped: &str) -> Option<Sim42> {
    let dir = shared_data("sim42", "model.json", skipped)?;
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    let field = |name: &str| model[name].clone();
    let z_vals: Vec<Vec<f64>> = serde_json::from_value(field("z_vals")).unwrap();
    let z_max: Vec<f64> = serde_json::from_value(field("z_max")).unwrap();
    let names: Vec<String> = serde_json::from_value(field("biomarkers")).unwrap();
    let events = EventSet::new(&z_vals, &z_max).unwrap();
    let mut reader = csv::Reader::from_path(dir.join("data.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let cols: Vec<usize> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n).unwrap())
        .collect();
    let rows: Vec<Vec<f64>> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            cols.iter()
                .map(|&c| r[c].parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let data = Dataset::from_rows(&rows).unwrap();
    Some(Sim42 {
        dir,
        events,
        names,
        data,
    })
}
