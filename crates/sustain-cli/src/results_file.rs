//! Reading a fit's `results.json` back (`stage`, `plot`): the schema version is
//! checked first, then everything that staging and the figures index is checked
//! against the model, so that a corrupt or edited file is a one-line user error
//! naming the file instead of a panic (or figures drawn from nonsense).

use std::path::Path;

use serde_json::Value;
use sustain::model::{EventOrder, EventSet, Sequence};
use sustain::results::{FitResult, ModelDescriptor, SubtypeModel, SCHEMA_VERSION};
use sustain::sampler::Trace;

use crate::error::CliError;

/// Parses results.json of a fit of any family (`path` for messages): the result and
/// its event order, checked as [`check`] checks a z-score fit (for other families
/// the events' biomarkers make the order; each model's sequences, fractions and
/// samples must fit it).
pub fn parse_any(path: &Path, text: &str) -> Result<(FitResult, EventOrder), CliError> {
    let invalid = |why: String| CliError::in_file(path, format!("not a valid results file: {why}"));
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    check_version(&value, "results").map_err(|why| CliError::in_file(path, why))?;
    let mut result: FitResult =
        crate::nanjson::from_value(value).map_err(|e| invalid(e.to_string()))?;
    crate::fit_outputs::load_samples(&mut result, path)?;
    if other_family(&result).is_none() {
        let events = check(&result).map_err(invalid)?;
        return Ok((result, events.order().clone()));
    }
    let order = family_order(&result).map_err(invalid)?;
    Ok((result, order))
}

/// The event order of a mixture or ordinal fit from its events' biomarkers, with
/// every model checked against it.
fn family_order(result: &FitResult) -> Result<EventOrder, String> {
    let b = result.biomarkers.len();
    let biomarker_of = result
        .events
        .iter()
        .enumerate()
        .map(|(e, info)| {
            result
                .biomarkers
                .iter()
                .position(|name| *name == info.biomarker)
                .ok_or_else(|| {
                    format!(
                        "event {e} names biomarker '{}', which is not listed",
                        info.biomarker
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let order = EventOrder::new(&biomarker_of, b).map_err(|e| format!("events: {e}"))?;
    check_models(result, &order)?;
    Ok(order)
}

/// Models 1..max in order, each checked against `order` ([`check_model`]).
fn check_models(result: &FitResult, order: &EventOrder) -> Result<(), String> {
    if result.models.is_empty() {
        return Err("no models".into());
    }
    for (i, model) in result.models.iter().enumerate() {
        if model.n_subtypes != i + 1 {
            return Err(format!(
                "models[{i}] has n_subtypes {} (models hold 1, 2, ... subtypes in order)",
                model.n_subtypes
            ));
        }
        check_model(model, order).map_err(|why| format!("model of {} subtype(s): {why}", i + 1))?;
    }
    Ok(())
}

/// The family of a fit that is not a z-score one.
fn other_family(result: &FitResult) -> Option<&'static str> {
    match result.model_descriptor() {
        ModelDescriptor::Zscore { .. } => None,
        ModelDescriptor::Mixture => Some("mixture"),
        ModelDescriptor::Ordinal { .. } => Some("ordinal"),
        ModelDescriptor::Mixed { .. } => Some("mixed"),
        ModelDescriptor::Other { .. } => Some("non-SuStaIn"),
    }
}

/// Refuses a file whose `version` is absent or not [`SCHEMA_VERSION`]; `what`
/// names the kind of file.
pub fn check_version(value: &Value, what: &str) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err(format!("not a valid {what} file: not a JSON object"));
    };
    match object.get("version") {
        None => Err(format!(
            "not a valid {what} file: no schema \"version\" (this sustain reads version {SCHEMA_VERSION})"
        )),
        Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => Ok(()),
        Some(v) => Err(format!(
            "{what} schema version {v} is not supported: this sustain reads version {SCHEMA_VERSION} \
             (use the sustain that wrote the file, or fit again)"
        )),
    }
}

/// Checks a results file against its own model: the events rebuilt from `z_vals`
/// and `z_max` agree with `events` and `biomarkers`; models are numbered 1..max;
/// every sequence (maximum-likelihood, E-M, and every stored chain state) is a valid
/// order of the model's events; fractions are finite with one per subtype; array
/// lengths fit the model; there is at least one merged sample to stage with.
/// Returns the events; the message says what is wrong, and where.
pub fn check(result: &FitResult) -> Result<EventSet, String> {
    let b = result.biomarkers.len();
    if result.z_vals.len() != b || result.z_max.len() != b {
        return Err(format!(
            "{b} biomarkers but {} rows of z_vals and {} values of z_max",
            result.z_vals.len(),
            result.z_max.len()
        ));
    }
    for (i, name) in result.biomarkers.iter().enumerate() {
        if result.biomarkers[..i].contains(name) {
            return Err(format!("biomarker '{name}' is listed twice"));
        }
    }
    let events =
        EventSet::new(&result.z_vals, &result.z_max).map_err(|e| format!("z_vals/z_max: {e}"))?;
    let n = events.n_events();
    if result.events.len() != n {
        return Err(format!(
            "{} events listed, but z_vals has {n}",
            result.events.len()
        ));
    }
    for (e, (info, ev)) in result.events.iter().zip(events.events()).enumerate() {
        if info.biomarker != result.biomarkers[ev.biomarker] || info.z != ev.z {
            return Err(format!(
                "event {e} is ({}, z = {}) but z_vals make it ({}, z = {})",
                info.biomarker, info.z, result.biomarkers[ev.biomarker], ev.z
            ));
        }
    }
    if result.settings.staging_samples == 0 {
        return Err("settings.staging_samples is 0".into());
    }
    check_models(result, &events)?;
    Ok(events)
}

/// Checks the model in a finished subtype count's checkpoint (`checkpoint_k{K}.json`,
/// `k` = K) against `events` as [`check`] checks those of results.json, so that an
/// edited checkpoint is refused by `--resume` with its name instead of giving a fit
/// (or figures) made from nonsense. A file without a model (an E-M optimum) passes.
pub fn check_checkpoint(path: &Path, k: usize, events: &EventOrder) -> Result<(), CliError> {
    let invalid = |why: String| CliError::in_file(path, format!("not a valid checkpoint: {why}"));
    let text = std::fs::read_to_string(path).map_err(|e| CliError::read(path, &e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let Some(model) = value.get("model") else {
        return Ok(());
    };
    let model: SubtypeModel =
        crate::nanjson::from_value(model.clone()).map_err(|e| invalid(e.to_string()))?;
    if model.n_subtypes != k {
        return Err(invalid(format!(
            "holds a model of {} subtype(s), not {k}",
            model.n_subtypes
        )));
    }
    // Its samples, from the file beside it that it names (older ones hold them).
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut models = [model];
    sustain::samples_file::load(&mut models, dir).map_err(|e| invalid(e.to_string()))?;
    let [model] = models;
    check_model(&model, events).map_err(|why| invalid(format!("model of {k} subtype(s): {why}")))
}

/// Refuses a field `name` holding `len` `what` for `k` subtypes, unless one each.
fn one_per_subtype(name: &str, len: usize, what: &str, k: usize) -> Result<(), String> {
    if len == k {
        Ok(())
    } else {
        Err(format!("{name} holds {len} {what} for {k} subtype(s)"))
    }
}

/// One entry of `models` (K = `model.n_subtypes`).
fn check_model(model: &SubtypeModel, events: &EventOrder) -> Result<(), String> {
    let k = model.n_subtypes;
    let n = events.n_events();
    for (name, seqs) in [
        ("ml_sequences", &model.ml_sequences),
        ("em_sequences", &model.em_sequences),
    ] {
        one_per_subtype(name, seqs.len(), "sequences", k)?;
        for (s, order) in seqs.iter().enumerate() {
            Sequence::new(events, order).map_err(|e| format!("{name}[{s}]: {e}"))?;
        }
    }
    for (name, f) in [
        ("ml_f", &model.ml_f),
        ("em_f", &model.em_f),
        ("mean_f", &model.mean_f),
    ] {
        one_per_subtype(name, f.len(), "fractions", k)?;
        if let Some(v) = f.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(format!(
                "{name} holds {v}; fractions are finite and non-negative"
            ));
        }
    }
    if model.pvd.len() != k
        || model
            .pvd
            .iter()
            .any(|rows| rows.len() != n || rows.iter().any(|r| r.len() != n))
    {
        return Err(format!(
            "pvd is not {k} x {n} x {n} (subtypes x events x positions)"
        ));
    }
    if model.pvd.iter().flatten().flatten().any(|v| !v.is_finite()) {
        return Err("pvd holds a value that is not finite".into());
    }
    let samples = &model.samples;
    if samples.chains.is_empty() {
        return Err("samples.chains is empty".into());
    }
    let thin = samples.thin.max(1) as u64;
    let mut merged = 0u64;
    for (c, chain) in samples.chains.iter().enumerate() {
        check_trace(&chain.trace, k, events).map_err(|why| format!("chain {c}: {why}"))?;
        let iterations: u64 = chain.trace.runs.iter().map(|&r| u64::from(r)).sum();
        let burn_in = samples.burn_in as u64;
        if iterations > burn_in {
            merged += (iterations - burn_in).div_ceil(thin);
        }
    }
    if merged == 0 {
        return Err(format!(
            "no samples left after burn_in {} (the chains hold no iterations beyond it)",
            samples.burn_in
        ));
    }
    Ok(())
}

/// One chain's trace: shape, every stored state a valid sequence per subtype with
/// finite non-negative fractions.
fn check_trace(t: &Trace, k: usize, events: &EventOrder) -> Result<(), String> {
    let n = events.n_events();
    if t.n_subtypes != k || t.n_events != n {
        return Err(format!(
            "trace has {} subtype(s) and {} events; the model has {k} and {n}",
            t.n_subtypes, t.n_events
        ));
    }
    let states = t.runs.len();
    let n_positions = t.n_positions();
    if t.loglike.len() != states || t.fractions.len() != states * k || n_positions != states * k * n
    {
        return Err(format!(
            "trace lengths disagree: {states} runs, {} log-likelihoods, {} fractions \
             (want {}), {n_positions} positions (want {})",
            t.loglike.len(),
            t.fractions.len(),
            states * k,
            states * k * n
        ));
    }
    let mut order = vec![0usize; n];
    let mut seen = vec![false; n];
    // One pass over the states (a trace keeps most of them as moves).
    let mut found = Ok(());
    t.for_each_state(|state, positions, _| {
        if found.is_err() {
            return;
        }
        found = check_state(state, positions, k, events, &mut order, &mut seen);
    });
    found?;
    for state in 0..states {
        let f = &t.fractions[state * k..(state + 1) * k];
        let sum: f64 = f.iter().sum();
        if f.iter().any(|v| !v.is_finite() || *v < 0.0) || !(sum.is_finite() && sum > 0.0) {
            return Err(format!(
                "state {state}: fractions {f:?} are not finite, non-negative and of positive sum"
            ));
        }
    }
    Ok(())
}

/// One state's positions (`[subtype][event]`): a permutation of the places per
/// subtype, each a valid sequence of `events`.
fn check_state(
    state: usize,
    positions: &[u16],
    k: usize,
    events: &EventOrder,
    order: &mut [usize],
    seen: &mut [bool],
) -> Result<(), String> {
    let n = order.len();
    for s in 0..k {
        seen.iter_mut().for_each(|x| *x = false);
        for e in 0..n {
            let p = positions[s * n + e] as usize;
            if p >= n || seen[p] {
                return Err(format!(
                    "state {state}, subtype {s}: event {e} at position {p}, but the \
                     positions of a subtype are a permutation of 0..{n}"
                ));
            }
            seen[p] = true;
            order[p] = e;
        }
        Sequence::new(events, order).map_err(|e| format!("state {state}, subtype {s}: {e}"))?;
    }
    Ok(())
}
