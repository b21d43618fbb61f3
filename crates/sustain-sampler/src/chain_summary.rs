//! What each chain says, and where chains disagree: per-chain mean fractions and
//! mean event positions (after realignment, so chains that only swapped subtype
//! labels agree), and for every subtype whose event positions did not converge,
//! which chains put which events elsewhere than the others. Turns a "NOT
//! converged" into a sentence a user can act on.

use crate::diagnostics;
use crate::merge::{
    mean_positions_at, quantity_runs, sample_states, state_runs, MergedSamples, RHAT_THRESHOLD,
};
use serde::{Deserialize, Serialize};

/// One chain's summary, in the merged samples' subtype numbering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Chain index (0-based).
    pub chain: usize,
    /// `subtypes[s]`: the chain's own label of merged subtype `s` (realignment).
    pub subtypes: Vec<usize>,
    /// Mean fraction of every subtype over the chain's samples.
    pub mean_f: Vec<f64>,
    /// `mean_positions[s][e]`: mean position (0-based) of event `e` in subtype `s`.
    pub mean_positions: Vec<Vec<f64>>,
}

/// Chains that put some of a subtype's events elsewhere than the largest group of
/// chains that agree with each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// Subtype (0-based, merged numbering).
    pub subtype: usize,
    /// The chains (0-based) that disagree with `majority`.
    pub chains: Vec<usize>,
    /// The largest group of chains that agree.
    pub majority: Vec<usize>,
    /// Events (0-based) whose mean position differs by at least half a position.
    pub events: Vec<usize>,
}

/// Two chains agree on an event when their mean positions are closer than this.
const SAME_POSITION: f64 = 1.0;
/// An event is named when a group's mean position is this far from the majority's.
const MOVED: f64 = 0.5;

/// Per-chain summaries of `merged`; `subtypes[c]` is chain `c`'s own label of
/// each merged subtype.
pub fn summarize_chains(merged: &MergedSamples, subtypes: &[Vec<usize>]) -> Vec<ChainSummary> {
    merged
        .chains
        .iter()
        .enumerate()
        .map(|(c, run)| {
            let t = &run.trace;
            let idx = t.state_indices(merged.burn_in, merged.thin);
            let n = idx.len().max(1) as f64;
            let mean_f = (0..t.n_subtypes)
                .map(|s| idx.iter().map(|&st| t.fraction(st, s)).sum::<f64>() / n)
                .collect();
            let mean_positions = mean_positions_at(t, &idx);
            ChainSummary {
                chain: run.index,
                subtypes: subtypes
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| (0..t.n_subtypes).collect()),
                mean_f,
                mean_positions,
            }
        })
        .collect()
}

/// R-hat of event `e`'s position in subtype `s` over the merged chains (`states`:
/// each chain's samples as runs of one state), from the runs of its values.
fn position_rhat(merged: &MergedSamples, states: &[Vec<(usize, u32)>], s: usize, e: usize) -> f64 {
    let runs = quantity_runs(states, |c| {
        let at = merged.chains[c].trace.event_positions(s, e);
        move |st: usize| f64::from(at[st])
    });
    diagnostics::rhat_of_runs(&runs)
}

/// Groups of chains (positions in `summaries`) that agree on every event of
/// `events` in subtype `s`: chains closer than [`SAME_POSITION`] on all of them
/// are linked, and groups are the linked components, largest first (ties: lowest
/// chain first).
fn agreeing_groups(summaries: &[ChainSummary], s: usize, events: &[usize]) -> Vec<Vec<usize>> {
    let n = summaries.len();
    let close = |a: usize, b: usize| {
        events.iter().all(|&e| {
            (summaries[a].mean_positions[s][e] - summaries[b].mean_positions[s][e]).abs()
                < SAME_POSITION
        })
    };
    let mut group = vec![usize::MAX; n];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for start in 0..n {
        if group[start] != usize::MAX {
            continue;
        }
        let g = groups.len();
        let mut members = vec![start];
        group[start] = g;
        let mut i = 0;
        while i < members.len() {
            let a = members[i];
            for b in 0..n {
                if group[b] == usize::MAX && close(a, b) {
                    group[b] = g;
                    members.push(b);
                }
            }
            i += 1;
        }
        members.sort_unstable();
        groups.push(members);
    }
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    groups
}

/// Mean of event `e`'s mean position in subtype `s` over a group of chains.
fn group_mean(summaries: &[ChainSummary], group: &[usize], s: usize, e: usize) -> f64 {
    group
        .iter()
        .map(|&c| summaries[c].mean_positions[s][e])
        .sum::<f64>()
        / group.len().max(1) as f64
}

/// Every subtype's disagreements: for events whose position R-hat is at least
/// [`RHAT_THRESHOLD`], the chains outside the largest agreeing group and the
/// events they place elsewhere. Chains that only swapped subtype labels were
/// realigned by [`crate::merge`] and agree here.
pub fn disagreements(merged: &MergedSamples, summaries: &[ChainSummary]) -> Vec<Disagreement> {
    let Some(first) = merged.chains.first() else {
        return Vec::new();
    };
    let (ns, ne) = (first.trace.n_subtypes, first.trace.n_events);
    let mut out = Vec::new();
    // Each chain's samples as runs of one state, once for every event.
    let states = state_runs(&sample_states(merged));
    for s in 0..ns {
        let unsettled: Vec<usize> = (0..ne)
            .filter(|&e| {
                let r = position_rhat(merged, &states, s, e);
                r == f64::INFINITY || r >= RHAT_THRESHOLD
            })
            .collect();
        if unsettled.is_empty() {
            continue;
        }
        let groups = agreeing_groups(summaries, s, &unsettled);
        let majority = &groups[0];
        for other in &groups[1..] {
            let events: Vec<usize> = unsettled
                .iter()
                .copied()
                .filter(|&e| {
                    (group_mean(summaries, other, s, e) - group_mean(summaries, majority, s, e))
                        .abs()
                        >= MOVED
                })
                .collect();
            let chain_ids = |g: &[usize]| g.iter().map(|&c| summaries[c].chain).collect();
            out.push(Disagreement {
                subtype: s,
                chains: chain_ids(other),
                majority: chain_ids(majority),
                events,
            });
        }
    }
    out
}

/// "2 and 4", "1, 2 and 5": 1-based numbers in words.
fn numbers(v: &[usize]) -> String {
    let words: Vec<String> = v.iter().map(|i| (i + 1).to_string()).collect();
    match words.len() {
        0 => String::new(),
        1 => words[0].clone(),
        n => format!("{} and {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// One disagreement in words, e.g. "chains 2 and 4 put subtype 3's events 5-9 in
/// another order than chains 1 and 3"; subtypes and chains numbered from 1,
/// events put in words by `events_text` (given their 0-based indices; e.g.
/// [`event_numbers`]).
pub fn describe(d: &Disagreement, events_text: &dyn Fn(&[usize]) -> String) -> String {
    let (c, m) = (d.chains.len(), d.majority.len());
    format!(
        "chain{} {} put{} subtype {}'s event{} {} in another order than chain{} {}",
        if c > 1 { "s" } else { "" },
        numbers(&d.chains),
        if c > 1 { "" } else { "s" },
        d.subtype + 1,
        if d.events.len() == 1 { "" } else { "s" },
        if d.events.is_empty() {
            "(each by less than half a position)".to_string()
        } else {
            events_text(&d.events)
        },
        if m > 1 { "s" } else { "" },
        numbers(&d.majority),
    )
}

/// What is wrong when chains did not converge, one sentence per problem, with the
/// advice to act on it: chains in different modes of a subtype's sequence, or
/// fractions the chains disagree on (`rhat_f` in merged order). Empty when the
/// chains agree everywhere (they may still need more samples).
pub fn explain(
    summaries: &[ChainSummary],
    found: &[Disagreement],
    rhat_f: &[f64],
    events_text: &dyn Fn(&[usize]) -> String,
) -> Vec<String> {
    let k = rhat_f.len();
    let mut lines: Vec<String> = found
        .iter()
        .map(|d| {
            let advice = if k > 1 {
                format!(
                    "; the chains sit in different modes: run longer, or the data may not \
                     support {k} subtypes"
                )
            } else {
                "; the chains sit in different modes: run longer".to_string()
            };
            describe(d, events_text) + &advice
        })
        .collect();
    if k > 1 {
        for (s, r) in rhat_f.iter().enumerate() {
            if r.is_nan() || *r < RHAT_THRESHOLD {
                continue;
            }
            let per_chain: Vec<String> = summaries
                .iter()
                .map(|c| format!("{:.3}", c.mean_f.get(s).copied().unwrap_or(f64::NAN)))
                .collect();
            lines.push(format!(
                "the chains disagree on subtype {}'s fraction (R-hat {r:.3}; chain means {})",
                s + 1,
                per_chain.join(", ")
            ));
        }
    }
    lines
}

/// Event indices as 1-based numbers with runs compressed: `[4, 5, 6, 8]` is
/// "5-7, 9" (for [`describe`] when events have no names).
pub fn event_numbers(events: &[usize]) -> String {
    let numbers: Vec<usize> = events.iter().map(|e| e + 1).collect();
    compress_runs(&numbers, ", ")
}

/// `numbers` with each run of consecutive values written `first-last`, joined by
/// `separator`: `[4, 5, 6, 8]` with ", " is "4-6, 8".
pub fn compress_runs(numbers: &[usize], separator: &str) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", numbers[i], numbers[j])
        } else {
            numbers[i].to_string()
        });
        i = j + 1;
    }
    parts.join(separator)
}
