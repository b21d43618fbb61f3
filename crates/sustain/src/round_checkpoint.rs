//! Checkpoints between rounds of chains that run until they converge: after
//! every finished round, each chain's state, random streams, tempered copies and
//! ladder (JSON) and its samples so far (a file beside it as the traces hold
//! them, [`crate::trace_file`], written under a temporary name, then renamed), with the rounds so far and the step sizes.
//! A rerun with `--resume` continues from the last one saved and gives the same
//! samples as a run never stopped: every round starts its evaluators afresh from
//! the chains' states ([`sustain_sampler::continued`]).

use crate::checkpoint::{check_fingerprint, read_json, write_json, Checkpoints};
use crate::rounds::Round;
use crate::{CheckpointError, Error};
use serde::{Deserialize, Serialize};
use sustain_core::EventOrder;
use sustain_sampler::{ChainEvaluator, ChainSnapshot, PausedChain, SamplesFile, StepSizes, Trace};

/// What a checkpoint between rounds holds besides the samples.
#[derive(Serialize, Deserialize)]
struct SavedRounds {
    /// [`crate::checkpoint::resume_fingerprint_of`]: a run with other budgets
    /// continues it.
    resume_fingerprint: String,
    n_subtypes: usize,
    steps: StepSizes,
    rounds: Vec<Round>,
    chains: Vec<ChainSnapshot>,
    samples: SamplesFile,
}

/// Chains paused after a saved round.
pub(crate) struct SavedChains<E> {
    /// The tuned step sizes.
    pub steps: StepSizes,
    /// Every round so far.
    pub rounds: Vec<Round>,
    /// The chains, in index order.
    pub chains: Vec<PausedChain<E>>,
}

impl Checkpoints {
    /// Saves `chains` of subtype count `k` after `rounds`: the samples first, then
    /// the JSON that names them (so a JSON always names a whole samples file).
    pub(crate) fn save_rounds<E: ChainEvaluator>(
        &self,
        k: usize,
        resume_fingerprint: &str,
        steps: &StepSizes,
        rounds: &[Round],
        chains: &[PausedChain<E>],
    ) -> Result<(), Error> {
        let traces: Vec<&Trace> = chains.iter().map(|c| c.trace()).collect();
        let samples = self.write_samples("_rounds", k, |npz, tmp| {
            crate::trace_file::write(npz, tmp, &traces)
        })?;
        let saved = SavedRounds {
            resume_fingerprint: resume_fingerprint.to_string(),
            n_subtypes: k,
            steps: steps.clone(),
            rounds: rounds.to_vec(),
            chains: chains.iter().map(PausedChain::snapshot).collect(),
            samples,
        };
        write_json(&self.file("_rounds", k, "json"), &saved)
    }

    /// The chains of subtype count `k` after the last saved round, if any;
    /// refuses a checkpoint made from other data or settings (budgets aside) or
    /// one whose chains do not fit.
    pub(crate) fn load_rounds<E: ChainEvaluator>(
        &self,
        k: usize,
        resume_fingerprint: &str,
        events: &EventOrder,
        indices: std::ops::Range<usize>,
    ) -> Result<Option<SavedChains<E>>, Error> {
        let path = self.file("_rounds", k, "json");
        let Some(saved) = read_json::<SavedRounds>(&path)? else {
            return Ok(None);
        };
        check_fingerprint(&path, &saved.resume_fingerprint, resume_fingerprint)?;
        let unfit = |why: String| {
            Error::from(CheckpointError::Chains {
                path: path.clone(),
                why,
            })
        };
        if saved.n_subtypes != k {
            return Err(unfit(format!("it holds {} subtype(s)", saved.n_subtypes)));
        }
        if !saved.chains.iter().map(|c| c.index).eq(indices.clone()) {
            return Err(unfit(format!(
                "it holds other chains than {}..{}",
                indices.start, indices.end
            )));
        }
        let traces = crate::trace_file::read(
            &self.dir,
            &saved.samples,
            saved.chains.len(),
            (k, events.n_events()),
        )
        .map_err(|why| {
            Error::from(CheckpointError::Samples {
                path: path.clone(),
                why,
            })
        })?;
        let chains = saved
            .chains
            .iter()
            .zip(traces)
            .map(|(snapshot, trace)| PausedChain::restore(snapshot, trace, events))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unfit)?;
        let done = saved.rounds.last().map(|r| r.iterations_per_chain);
        if chains.iter().any(|c| Some(c.n_iterations()) != done) {
            return Err(unfit(format!(
                "its chains do not hold the {} iterations of its last round",
                done.unwrap_or(0)
            )));
        }
        Ok(Some(SavedChains {
            steps: saved.steps,
            rounds: saved.rounds,
            chains,
        }))
    }

    /// Removes the checkpoint between rounds of subtype count `k` (its count is
    /// saved whole); one that cannot be removed is left.
    pub(crate) fn remove_rounds(&self, k: usize) {
        for ext in ["json", "npz"] {
            let _ = std::fs::remove_file(self.file("_rounds", k, ext));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checkpoint::Checkpoints;
    use crate::executor::{ChainState, Chains};
    use std::sync::Arc;
    use std::time::Instant;
    use sustain_model::{EventSet, Likelihood, MissingConvention};
    use sustain_sampler::{geometric_ladder, ChainSettings, PausedChain, ProposalMode, StepSizes};
    use sustain_testkit::{cohort, random_mixture, spec};

    /// What a checkpoint costs at the size of a long run: 114 events, 3 subtypes,
    /// 4 chains of 1e5 iterations with 2 tempered copies each. A measurement, not
    /// a check: `cargo test -p sustain --lib checkpoint_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn checkpoint_cost() {
        let events = EventSet::uniform(38, &[1.0, 2.0, 3.0], 5.0).unwrap();
        let w = cohort(events, &[0.4, 0.3, 0.3], 1, &spec(200, 0.1, 0.1), 2);
        let mut rng = w.rng;
        let lik =
            Arc::new(Likelihood::new(w.events, &w.data, MissingConvention::Marginalise).unwrap());
        let start = random_mixture(lik.events(), &[0.4, 0.3, 0.3], &mut rng);
        let n = lik.events().n_events();
        let settings = ChainSettings {
            mode: ProposalMode::Blockwise,
            steps: StepSizes::initial(3, n),
            n_iterations: 0,
            seed: 3,
            threads: 2,
            chain_threads: 1,
        };
        let mut paused: Vec<PausedChain<ChainState<Likelihood>>> = (0..4)
            .map(|i| {
                PausedChain::start(i, &start, 3, n)
                    .tempered(geometric_ladder(2, 0.1), 3)
                    .unwrap()
            })
            .collect();
        let chains = Chains {
            model: &lik,
            settings: &settings,
        };
        let t = Instant::now();
        let threads = crate::executor::JobThreads::fixed(settings.threads);
        chains.resume(&mut paused, 100_000, None, None, threads);
        let round_s = t.elapsed().as_secs_f64();
        let states: usize = paused.iter().map(|p| p.trace().n_states()).sum();
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoints::new(dir.path()).unwrap();
        let rounds = [crate::rounds::Round {
            iterations_per_chain: 100_000,
            seconds: round_s,
            unmet: Vec::new(),
        }];
        let t = Instant::now();
        cp.save_rounds(3, "fp", &settings.steps, &rounds, &paused)
            .unwrap();
        let save_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back = cp
            .load_rounds::<ChainState<Likelihood>>(3, "fp", lik.events(), 0..4)
            .unwrap()
            .unwrap();
        let load_s = t.elapsed().as_secs_f64();
        for (a, b) in paused.iter().zip(&back.chains) {
            assert!(a.trace() == b.trace());
        }
        let bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        println!(
            "1e5 iterations x 4 chains: {states} states, round {round_s:.1} s; checkpoint \
             {:.1} MB, save {save_s:.3} s, load {load_s:.3} s",
            bytes as f64 / 1e6
        );
    }
}
