//! `sustain bench-chains`: the chain-scaling benchmark of issue 3.
//!
//! Workload W1 (the cohort of the benches, `sustain_testkit::w1`): 1000
//! subjects, 10 biomarkers x thresholds z = 1, 2, 3 (30 events, z_max 5), 3 subtypes
//! with fractions 0.5/0.3/0.2, 10% missing values, simulated from fixed seeds. Chains start at the true mixture
//! with step sizes tuned by `sustain_sampler::tune_steps` (2 passes).
//!
//! For 1, 2, 4 and 8 chains of the same length it runs real chains with the CPU
//! backend (`sustain_cpu::run_chains`) and reports, against one chain:
//! - `wall_s`: wall time of the whole run;
//! - `iterations_per_s`: chain-iterations per second, `n x iterations / wall_s`;
//! - `speedup`: `iterations_per_s(n) / iterations_per_s(1)`;
//! - `efficiency`: `iterations_per_s(n) / (min(n, threads) x iterations_per_s(1))`,
//!   the fraction of the ideal parallel throughput reached (1 = perfect scaling on
//!   the threads the run can use);
//! - `ess_per_s`: bulk effective sample size of the log-likelihood of the merged
//!   chains (`sustain_sampler::merge`, 10% burn-in) per second of wall time;
//! - `min_ess_per_s`: the headline speed, effective samples per second of the
//!   slowest-mixing quantity (the smallest bulk or tail ESS of the log-likelihood
//!   and the fractions, `sustain_sampler::verdict::slowest_ess`), named in
//!   `slowest`.
//!
//! Then one chain split over all threads by subjects (`split_chain`,
//! `sustain_cpu::ShardedIncremental`): its rate, its speedup over one chain on one
//! thread, and whether its samples are bit-identical to that chain's (they must be).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sustain::model::simulate::{random_cohort, Cohort, SimulationSpec};
use sustain::model::{EventSet, IncrementalLikelihood, Likelihood, MissingConvention, Mixture};
use sustain::sampler::verdict::slowest_ess;
use sustain::sampler::{merge, tune_steps};
use sustain_cpu::{run_chains, ChainSettings};

use crate::cmd::fit::Proposal;
use crate::error::CliError;
use crate::io;

/// The workload, in words (printed and in the JSON).
pub const WORKLOAD: &str = "W1: 1000 subjects, 10 biomarkers x z 1,2,3 (30 events), 3 subtypes \
(f 0.5/0.3/0.2), 10% missing; MODE proposals from the true mixture, steps tuned 2 x TUNING";

/// Chain counts measured.
const CHAIN_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// Arguments of `sustain bench-chains`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchChainsArgs {
    /// Print the results as one line of JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// MCMC iterations of every chain.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub iterations: usize,

    /// Iterations of each of the 2 tuning passes.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub tuning_iterations: usize,

    /// Threads the chains run on [default: the available cores].
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,

    /// MCMC proposal of the chains (and of their tuning).
    #[arg(long, value_enum, default_value_t = Proposal::Exact)]
    pub proposal: Proposal,
}

/// One row of the results.
#[derive(Debug, Clone, Serialize)]
struct Row {
    n: usize,
    wall_s: f64,
    iterations_per_s: f64,
    speedup: f64,
    efficiency: f64,
    ess_per_s: f64,
    min_ess_per_s: f64,
    slowest: String,
}

/// The JSON printed with `--json`.
#[derive(Debug, Clone, Serialize)]
struct Report {
    cores: usize,
    cpu: String,
    threads: usize,
    iterations: usize,
    workload: String,
    chains: Vec<Row>,
    split_chain: SplitRow,
}

/// One chain split over `threads` threads.
#[derive(Debug, Clone, Serialize)]
struct SplitRow {
    threads: usize,
    wall_s: f64,
    iterations_per_s: f64,
    speedup: f64,
    ess_per_s: f64,
    min_ess_per_s: f64,
    identical_to_one_thread: bool,
}

/// The CPU model from `/proc/cpuinfo` ("unknown" where it is absent).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// W1: the simulated cohort of `sustain_testkit::w1` (the test-support crate is a
/// dev-dependency only, so the command draws it here; a test below keeps the two
/// equal).
fn w1_cohort() -> Result<Cohort, CliError> {
    let events = EventSet::uniform(10, &[1.0, 2.0, 3.0], 5.0)
        .map_err(|e| CliError::new(format!("bench workload: {e}")))?;
    let spec = SimulationSpec {
        n_subjects: 1000,
        control_fraction: 0.0,
        missing_fraction: 0.1,
    };
    random_cohort(events, &[0.5, 0.3, 0.2], 1, &spec, 2)
        .map_err(|e| CliError::new(format!("bench workload: {e}")))
}

/// W1's likelihood and its true mixture.
fn w1() -> Result<(Arc<Likelihood>, Mixture), CliError> {
    let w = w1_cohort()?;
    let lik = Likelihood::new(w.events, &w.data, MissingConvention::Marginalise)
        .map_err(|e| CliError::new(format!("bench workload: {e}")))?;
    Ok((Arc::new(lik), w.truth))
}

/// Runs `sustain bench-chains`.
pub fn run(args: &BenchChainsArgs) -> Result<(), CliError> {
    if args.iterations < 10 {
        return Err(CliError::new(format!(
            "--iterations {} is too few to measure (at least 10)",
            args.iterations
        )));
    }
    if args.tuning_iterations == 0 {
        return Err(CliError::new("--tuning-iterations must be at least 1"));
    }
    let threads = args.threads.unwrap_or_else(sustain_cpu::default_threads);
    if threads == 0 {
        return Err(CliError::new("--threads must be at least 1"));
    }
    let cores = sustain_cpu::default_threads();
    let (lik, truth) = w1()?;
    let steps = tune_steps(
        lik.events(),
        || IncrementalLikelihood::new(Arc::clone(&lik), &truth),
        &truth,
        args.proposal.mode(),
        2,
        args.tuning_iterations,
        3,
    );
    let settings = ChainSettings {
        mode: args.proposal.mode(),
        steps,
        n_iterations: args.iterations,
        seed: 4,
        threads,
        chain_threads: 1,
    };
    let burn_in = args.iterations / 10;
    let mut rows: Vec<Row> = Vec::new();
    let mut one_chain = None;
    for n in CHAIN_COUNTS {
        let t0 = Instant::now();
        let runs = run_chains(&lik, &truth, &settings, 0..n);
        if n == 1 {
            one_chain = runs.first().map(|r| r.trace.clone());
        }
        let wall_s = t0.elapsed().as_secs_f64().max(1e-9);
        let (_, diagnostics) = merge(runs, burn_in, 1);
        let iterations_per_s = (n * args.iterations) as f64 / wall_s;
        let base = rows
            .first()
            .map_or(iterations_per_s, |r| r.iterations_per_s);
        let speedup = iterations_per_s / base;
        let (min_ess, slowest) = slowest_ess(&diagnostics);
        rows.push(Row {
            n,
            wall_s,
            iterations_per_s,
            speedup,
            efficiency: speedup / n.min(threads) as f64,
            ess_per_s: diagnostics.ess_loglike / wall_s,
            min_ess_per_s: min_ess / wall_s,
            slowest,
        });
    }
    let split_settings = ChainSettings {
        chain_threads: threads,
        ..settings.clone()
    };
    let t0 = Instant::now();
    let runs = run_chains(&lik, &truth, &split_settings, 0..1);
    let wall_s = t0.elapsed().as_secs_f64().max(1e-9);
    let identical = runs.first().map(|r| &r.trace) == one_chain.as_ref();
    let (_, diagnostics) = merge(runs, burn_in, 1);
    let iterations_per_s = args.iterations as f64 / wall_s;
    let split_chain = SplitRow {
        threads: split_settings.shards_per_chain::<Likelihood>(lik.n_subjects(), 1),
        wall_s,
        iterations_per_s,
        speedup: iterations_per_s
            / rows
                .first()
                .map_or(iterations_per_s, |r| r.iterations_per_s),
        ess_per_s: diagnostics.ess_loglike / wall_s,
        min_ess_per_s: slowest_ess(&diagnostics).0 / wall_s,
        identical_to_one_thread: identical,
    };
    let report = Report {
        cores,
        cpu: cpu_model(),
        threads,
        iterations: args.iterations,
        workload: WORKLOAD
            .replace("TUNING", &args.tuning_iterations.to_string())
            .replace("MODE", args.proposal.name()),
        chains: rows,
        split_chain,
    };
    let text = if args.json {
        let mut s = serde_json::to_string(&report)
            .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        table(&report)
    };
    io::write_stdout(&text)
}

/// The human-readable table.
fn table(r: &Report) -> String {
    let mut s = format!(
        "machine: {} cores, {}\nworkload: {}\n{} iterations per chain, {} threads\n\n",
        r.cores, r.cpu, r.workload, r.iterations, r.threads
    );
    s.push_str(
        "chains   wall (s)   chain-it/s   speedup   efficiency   ESS(loglike)/s   min ESS/s  slowest\n",
    );
    for row in &r.chains {
        s.push_str(&format!(
            "{:>6} {:>10.3} {:>12.0} {:>9.2} {:>12.2} {:>16.1} {:>11.2}  {}\n",
            row.n,
            row.wall_s,
            row.iterations_per_s,
            row.speedup,
            row.efficiency,
            row.ess_per_s,
            row.min_ess_per_s,
            row.slowest
        ));
    }
    let sc = &r.split_chain;
    s.push_str(&format!(
        "\none chain split over {} thread(s): wall {:.3} s, {:.0} it/s, speedup {:.2}, \
         ESS(loglike)/s {:.1}, min ESS/s {:.2}, samples identical to one thread: {}\n",
        sc.threads,
        sc.wall_s,
        sc.iterations_per_s,
        sc.speedup,
        sc.ess_per_s,
        sc.min_ess_per_s,
        if sc.identical_to_one_thread {
            "yes"
        } else {
            "NO"
        }
    ));
    s.push_str(
        "\nspeedup = throughput(n) / throughput(1); efficiency = throughput(n) / \
         (min(n, threads) x throughput(1)); ESS = bulk ESS of the log-likelihood of the \
         merged chains after 10% burn-in; min ESS = the smallest bulk or tail ESS of the \
         log-likelihood and the fractions (the slowest-mixing quantity, the headline speed).\n",
    );
    s
}

#[cfg(test)]
mod tests {
    /// The command's W1 is the test-support crate's, to the bit.
    #[test]
    fn w1_is_the_benches_w1() {
        let ours = super::w1_cohort().unwrap();
        let theirs = sustain_testkit::w1();
        assert_eq!(ours.events, theirs.events);
        assert_eq!(ours.truth, theirs.truth);
        let bits = |w: &sustain::model::simulate::Cohort| {
            w.data
                .values()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&ours), bits(&theirs));
    }
}
