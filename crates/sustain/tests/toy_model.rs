//! A model family written only here, behind the model seam: each event is a fixed
//! per-subject factor (the likelihood ratio of its data once the event has
//! happened). With nothing but its stage likelihoods it runs E-M, splits, chains,
//! staging and test log-likelihoods through the facade's public API, and the
//! generic evaluations agree with brute force.

use rand::{Rng, SeedableRng};
use std::sync::Arc;
use sustain::backend::Engine;
use sustain::config::FitConfig;
use sustain::em::{fit_one_subtype, fit_split, MlFit};
use sustain::fit::uncertainty;
use sustain::stage::stage_subjects;
use sustain_core::SubtypeOf;
use sustain_core::{
    ChainEvaluator, EventOrder, Mixture, ModelError, Sequence, StageModel, SustainModel,
};

/// `log p(x_m | k, S) = sum_{j < k} log_factor[m][S_j] - ln(N + 1)`.
struct Toy {
    order: EventOrder,
    log_factor: Vec<Vec<f64>>,
}

impl StageModel for Toy {
    fn order(&self) -> &EventOrder {
        &self.order
    }
    fn n_subjects(&self) -> usize {
        self.log_factor.len()
    }
    fn stage_loglikes(&self, sequence: &Sequence, out: &mut [f64]) {
        let ns = self.order.n_stages();
        let prior = -(ns as f64).ln();
        for (m, f) in self.log_factor.iter().enumerate() {
            let mut acc = prior;
            out[m * ns] = acc;
            for k in 1..ns {
                acc += f[sequence.event_at(k - 1)];
                out[m * ns + k] = acc;
            }
        }
    }
    fn subset(&self, subjects: &[usize]) -> Result<Self, ModelError> {
        Ok(Toy {
            order: self.order.clone(),
            log_factor: subjects
                .iter()
                .map(|&m| self.log_factor[m].clone())
                .collect(),
        })
    }
}

impl SustainModel for Toy {}

/// Subjects of `truth` (a mixture over events of one biomarker each): a subject of
/// subtype `s` at stage `k` has factor +2 for events among the first `k` of its
/// sequence and -2 for the others, plus noise.
fn simulate(truth: &Mixture, n: usize, seed: u64) -> (Toy, Vec<(usize, usize)>) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let n_events = truth.sequences()[0].len();
    let mut log_factor = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let u: f64 = rng.gen();
        let mut s = 0;
        let mut acc = truth.fractions()[0];
        while u > acc && s + 1 < truth.n_subtypes() {
            s += 1;
            acc += truth.fractions()[s];
        }
        let k = rng.gen_range(1..n_events);
        let seq = &truth.sequences()[s];
        let row = (0..n_events)
            .map(|e| {
                let happened = seq.position(e) < k;
                (if happened { 2.0 } else { -2.0 }) + rng.gen_range(-0.5..0.5)
            })
            .collect();
        log_factor.push(row);
        labels.push((s, k));
    }
    let order = EventOrder::one_per_biomarker(n_events).unwrap();
    (Toy { order, log_factor }, labels)
}

fn truth() -> Mixture {
    let order = EventOrder::one_per_biomarker(6).unwrap();
    Mixture::new(
        vec![
            Sequence::new(&order, &[0, 1, 2, 3, 4, 5]).unwrap(),
            Sequence::new(&order, &[5, 4, 3, 2, 1, 0]).unwrap(),
        ],
        vec![0.5, 0.5],
    )
    .unwrap()
}

fn config() -> FitConfig {
    FitConfig {
        n_startpoints: 4,
        max_subtypes: 2,
        n_iterations: 2_000,
        tuning_passes: 1,
        tuning_iterations: 500,
        n_chains: 2,
        threads: 2,
        ..FitConfig::default()
    }
}

/// Brute force: `sum_m log sum_s f_s sum_k p(x_m | k, S_s)` straight from the
/// definition.
fn brute_loglike(toy: &Toy, mixture: &Mixture) -> f64 {
    let ns = toy.order.n_stages();
    let mut total = 0.0;
    for f in &toy.log_factor {
        let mut p = 0.0;
        for (seq, frac) in mixture.sequences().iter().zip(mixture.fractions()) {
            let mut acc = 0.0f64;
            p += frac * acc.exp() / ns as f64;
            for k in 1..ns {
                acc += f[seq.event_at(k - 1)];
                p += frac * acc.exp() / ns as f64;
            }
        }
        total += p.ln();
    }
    total
}

#[test]
fn generic_evaluations_agree_with_brute_force() {
    let truth = truth();
    let (toy, _) = simulate(&truth, 60, 1);
    let toy = Arc::new(toy);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
    let mut batch = Toy::batch_evaluator(&toy);
    for _ in 0..10 {
        let m = Mixture::new(
            vec![
                Sequence::random(&toy.order, &mut rng),
                Sequence::random(&toy.order, &mut rng),
            ],
            vec![0.3, 0.7],
        )
        .unwrap();
        let want = brute_loglike(&toy, &m);
        let got = batch.loglike_batch(std::slice::from_ref(&m)).unwrap()[0];
        assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
        // E-M candidates: subtype 1 replaced.
        let cand = Sequence::random(&toy.order, &mut rng);
        let score = batch
            .loglike_subtype_candidates(SubtypeOf::new(&m, 1), std::slice::from_ref(&cand))
            .unwrap()[0];
        let mut replaced = m.clone();
        replaced.sequences_mut()[1] = cand.clone();
        let want = brute_loglike(&toy, &replaced);
        assert!(
            (score - want).abs() < 1e-9 * want.abs(),
            "{score} vs {want}"
        );
        // Chains: the incremental evaluator follows accepted and rejected proposals.
        let mut chain = Toy::chain_evaluator(&toy, &m);
        assert!((chain.reset(&m) - brute_loglike(&toy, &m)).abs() < 1e-9 * want.abs());
        let ll = chain.propose(&replaced, &[false, true]);
        assert!((ll - brute_loglike(&toy, &replaced)).abs() < 1e-9 * want.abs());
        chain.reject();
        let ll = chain.propose(&m, &[false, false]);
        assert!((ll - brute_loglike(&toy, &m)).abs() < 1e-9 * want.abs());
        chain.accept();
        // Posteriors sum to one per subject.
        let post = batch.posterior_sums(std::slice::from_ref(&m)).unwrap();
        for row in post.outer_iter() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn em_chains_and_staging_run_on_a_model_written_outside_the_crates() {
    let truth = truth();
    let (toy, labels) = simulate(&truth, 120, 3);
    let toy = Arc::new(toy);
    let config = config();
    let one: MlFit = fit_one_subtype(&toy, &config, 1).unwrap();
    let two = fit_split(&toy, &one, &config, 2).unwrap();
    assert!(two.loglike > one.loglike);
    let truth_ll = brute_loglike(&toy, &truth);
    assert!(
        two.loglike >= truth_ll - 1e-6,
        "E-M {} below the truth's {truth_ll}",
        two.loglike
    );
    // E-M finds both planted orders (in some subtype order).
    let found: Vec<Vec<usize>> = two.mixture.sequences().iter().map(|s| s.order()).collect();
    for t in truth.sequences() {
        assert!(found.contains(&t.order()), "{found:?}");
    }
    let model = uncertainty(&toy, &two, &config, 2, 0.0).unwrap();
    assert_eq!(model.samples.chains.len(), 2);
    assert!(model.ml_loglike >= two.loglike);
    let ids: Vec<String> = (0..toy.n_subjects()).map(|m| m.to_string()).collect();
    let staged = stage_subjects(&toy, &model, &ids, 50, 2);
    // Subjects go to the subtype whose sequence is their planted one.
    let agree = staged
        .iter()
        .zip(&labels)
        .filter(|(s, (t, _))| model.ml_sequences[s.ml_subtype] == truth.sequences()[*t].order())
        .count();
    assert!(
        agree * 10 >= staged.len() * 9,
        "{agree} of {}",
        staged.len()
    );
    let (ll, per) = sustain::cv::test_loglikes(&Engine::Cpu, &toy, &model, 2).unwrap();
    assert_eq!(per.len(), toy.n_subjects());
    // Mean over samples of the total <= total of the per-subject log means (Jensen).
    assert!(ll.is_finite());
    assert!(per.iter().sum::<f64>() >= ll - 1e-9);
}

/// The whole fit (E-M, chains, merge, diagnostics) of the toy model through the
/// builder, as any family gets it.
#[test]
fn the_fit_builder_fits_a_model_written_outside_the_crates() {
    use sustain::builder::Fit;
    use sustain::fit::ModelInput;
    use sustain::results::{EventInfo, ModelDescriptor};
    let truth = truth();
    let (toy, _) = simulate(&truth, 120, 5);
    let toy = Arc::new(toy);
    let names: Vec<String> = (0..6).map(|b| format!("b{b}")).collect();
    let input = ModelInput {
        model: Arc::clone(&toy),
        biomarkers: &names,
        descriptor: ModelDescriptor::Other { name: "toy".into() },
        events: names
            .iter()
            .map(|n| EventInfo {
                biomarker: n.clone(),
                z: 1.0,
            })
            .collect(),
        identity: b"toy".to_vec(),
    };
    let seen = std::sync::Mutex::new(Vec::new());
    let on_model = |m: &sustain::results::SubtypeModel| seen.lock().unwrap().push(m.n_subtypes);
    let result = Fit::new(input, config()).on_model(&on_model).run().unwrap();
    assert_eq!(result.models.len(), 2);
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2]);
    assert_eq!(
        result.model,
        Some(ModelDescriptor::Other { name: "toy".into() })
    );
    // E-M finds both planted orders.
    for t in truth.sequences() {
        assert!(result.models[1].em_sequences.contains(&t.order()));
    }
}
