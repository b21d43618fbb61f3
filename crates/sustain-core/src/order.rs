//! The event order: which events a model has, which biomarker each belongs to, and
//! what must precede what. Every SuStaIn model family shares it; what an event
//! means (a z-score threshold, a mixture event, an ordinal score) is the model's.

use crate::error::{ModelError, Result};

/// The events of a model and their precedence: each biomarker's events happen in
/// increasing index order (its "levels"); events of different biomarkers are free.
///
/// ```
/// use sustain_core::EventOrder;
/// // events 0 and 2 belong to biomarker 0 (0 first), event 1 to biomarker 1
/// let order = EventOrder::new(&[0, 1, 0], 2).unwrap();
/// assert_eq!(order.n_stages(), 4);
/// assert_eq!(order.biomarker_events(0), &[0, 2]);
/// assert_eq!(order.lower_neighbour(2), Some(0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOrder {
    /// Biomarker of each event.
    biomarker: Vec<usize>,
    /// Level of each event among its biomarker's events (0-based).
    level: Vec<usize>,
    /// Event indices of each biomarker, first to last.
    by_biomarker: Vec<Vec<usize>>,
    /// What each event is, for messages (e.g. "z = 2"); "level L" when not given.
    labels: Option<Vec<String>>,
}

impl EventOrder {
    /// The order of events whose biomarkers are `biomarker_of_event` (event `e`
    /// belongs to `biomarker_of_event[e]`), with `n_biomarkers` biomarkers; a
    /// biomarker's events take place in increasing index order.
    pub fn new(biomarker_of_event: &[usize], n_biomarkers: usize) -> Result<Self> {
        if n_biomarkers == 0 {
            return Err(ModelError::Shape("the model has no biomarkers".into()));
        }
        if biomarker_of_event.is_empty() {
            return Err(ModelError::NoEvents);
        }
        if biomarker_of_event.len() > u16::MAX as usize {
            return Err(ModelError::TooManyEvents(biomarker_of_event.len()));
        }
        let mut by_biomarker = vec![Vec::new(); n_biomarkers];
        let mut level = Vec::with_capacity(biomarker_of_event.len());
        for (e, &b) in biomarker_of_event.iter().enumerate() {
            let Some(events) = by_biomarker.get_mut(b) else {
                return Err(ModelError::Shape(format!(
                    "event {e} names biomarker {b}; the model has {n_biomarkers}"
                )));
            };
            level.push(events.len());
            events.push(e);
        }
        Ok(Self {
            biomarker: biomarker_of_event.to_vec(),
            level,
            by_biomarker,
            labels: None,
        })
    }

    /// Names each event for messages (e.g. "z = 2" or "score 3"); one label per event.
    pub fn with_labels(mut self, labels: Vec<String>) -> Result<Self> {
        if labels.len() != self.n_events() {
            return Err(ModelError::Shape(format!(
                "{} event labels for {} events",
                labels.len(),
                self.n_events()
            )));
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// What event `e` is, for messages: its label, or "level L" (0-based).
    pub fn label(&self, e: usize) -> String {
        match &self.labels {
            Some(l) => l[e].clone(),
            None => format!("level {}", self.level[e]),
        }
    }

    /// One event per biomarker (event `b` is biomarker `b`): the event-based model.
    pub fn one_per_biomarker(n_biomarkers: usize) -> Result<Self> {
        Self::new(&(0..n_biomarkers).collect::<Vec<_>>(), n_biomarkers)
    }

    /// Number of events `N`.
    pub fn n_events(&self) -> usize {
        self.biomarker.len()
    }
    /// Number of stages, `N + 1` (stage `k`: the first `k` events have happened).
    pub fn n_stages(&self) -> usize {
        self.biomarker.len() + 1
    }
    /// Number of biomarkers `B`.
    pub fn n_biomarkers(&self) -> usize {
        self.by_biomarker.len()
    }
    /// The biomarker of event `e`.
    pub fn biomarker_of(&self, e: usize) -> usize {
        self.biomarker[e]
    }
    /// The level of event `e` among its biomarker's events (0-based).
    pub fn level_of(&self, e: usize) -> usize {
        self.level[e]
    }
    /// Event indices of biomarker `b`, first to last.
    pub fn biomarker_events(&self, b: usize) -> &[usize] {
        &self.by_biomarker[b]
    }
    /// The event of the same biomarker one level lower, if any.
    pub fn lower_neighbour(&self, e: usize) -> Option<usize> {
        self.level[e]
            .checked_sub(1)
            .map(|l| self.by_biomarker[self.biomarker[e]][l])
    }
    /// The event of the same biomarker one level higher, if any.
    pub fn upper_neighbour(&self, e: usize) -> Option<usize> {
        self.by_biomarker[self.biomarker[e]]
            .get(self.level[e] + 1)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_index_order_within_a_biomarker() {
        let o = EventOrder::new(&[1, 0, 1, 1], 3).unwrap();
        assert_eq!(o.biomarker_events(1), &[0, 2, 3]);
        assert_eq!(o.biomarker_events(2), &[] as &[usize]);
        assert_eq!(o.level_of(3), 2);
        assert_eq!(o.upper_neighbour(0), Some(2));
        assert_eq!(o.upper_neighbour(3), None);
        assert_eq!(o.lower_neighbour(1), None);
        assert!(EventOrder::new(&[0, 3], 3).is_err());
        assert!(EventOrder::new(&[], 3).is_err());
    }
}
