//! Fit a simulated cohort and print the subtypes.
//!
//! `cargo run --release --example fit_simulated`

use rand::SeedableRng;
use sustain::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 6 biomarkers with thresholds z = 1, 2, 3; two true subtypes.
    let events = EventSet::uniform(6, &[1.0, 2.0, 3.0], 5.0)?;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let truth = Mixture::new(
        vec![
            Sequence::random(&events, &mut rng),
            Sequence::random(&events, &mut rng),
        ],
        vec![0.6, 0.4],
    )?;
    let spec = SimulationSpec {
        n_subjects: 400,
        control_fraction: 0.2,
        missing_fraction: 0.1,
    };
    let sim = simulate(&events, &truth, &spec, 11)?;
    let names: Vec<String> = (0..6).map(|b| format!("biomarker{b}")).collect();

    let config = FitConfig {
        n_startpoints: 10,
        max_subtypes: 2,
        n_iterations: 20_000,
        n_chains: 4,
        ..FitConfig::default()
    };
    let input = FitInput {
        events: &events,
        biomarkers: &names,
        data: &sim.data,
    };
    let result = Fit::zscore(&input, config)
        .on_progress(&|p| eprintln!("{p:?}"))
        .run()?;

    for model in &result.models {
        println!(
            "{} subtype(s): ML log-likelihood {:.2}",
            model.n_subtypes, model.ml_loglike
        );
        for (s, seq) in model.ml_sequences.iter().enumerate() {
            let names: Vec<String> = seq
                .iter()
                .map(|&e| format!("{}@z{}", result.events[e].biomarker, result.events[e].z))
                .collect();
            println!(
                "  subtype {s} (mean f = {:.2}): {}",
                model.mean_f[s],
                names.join(" -> ")
            );
        }
        let d = &model.diagnostics;
        println!(
            "  R-hat {:.3}, bulk ESS {:.0}: {}",
            d.rhat_loglike,
            d.ess_loglike,
            if d.converged {
                "converged".to_string()
            } else {
                d.warnings.join("; ")
            }
        );
    }
    println!(
        "true sequences: {:?}",
        truth
            .sequences()
            .iter()
            .map(|s| s.order())
            .collect::<Vec<_>>()
    );
    Ok(())
}
