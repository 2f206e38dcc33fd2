//! The label tables that can grow at run time (models and callers, from the conf) and the
//! counters indexed by them. A reload builds a larger table beside the old one and swaps it in;
//! recording loads the current one (atomics only) and adds to its counters.

use std::collections::HashMap;

use prometheus::IntCounterVec;

use super::handles::{
    endpoint_index, CounterCells, ModelLabels, STATUS_CLASSES, TOUCHED_STATUS_CLASSES,
};
use crate::endpoint::Endpoint;

/// The `caller` label value of a key from `[auth] api_keys`, which has no name.
pub const UNNAMED_CALLER: &str = "unnamed";
/// The `caller` label value when no key identified the caller: keys are off, the endpoint is
/// open, or the key was refused.
pub const ANONYMOUS_CALLER: &str = "anonymous";

/// The bounded set of `caller` label values: the conf's names, then [`UNNAMED_CALLER`], then
/// [`ANONYMOUS_CALLER`].
pub(super) struct CallerLabels {
    names: Box<[Box<str>]>,
    index: HashMap<Box<str>, usize>,
}

impl CallerLabels {
    pub(super) fn new(configured: impl IntoIterator<Item = String>) -> Self {
        let mut names: Vec<Box<str>> = Vec::new();
        for name in configured {
            if name != UNNAMED_CALLER
                && name != ANONYMOUS_CALLER
                && !names.iter().any(|n| **n == *name)
            {
                names.push(name.into_boxed_str());
            }
        }
        names.push(UNNAMED_CALLER.into());
        names.push(ANONYMOUS_CALLER.into());
        let index = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        Self {
            names: names.into_boxed_slice(),
            index,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    pub(super) fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or(ANONYMOUS_CALLER, |name| name)
    }

    /// The conf's names, without the two the bridge adds.
    pub(super) fn configured(&self) -> &[Box<str>] {
        &self.names[..self.names.len() - 2]
    }

    /// The index for a caller's name; a name the conf never gave is anonymous.
    pub(super) fn lookup(&self, caller: Option<&str>) -> usize {
        caller
            .and_then(|caller| self.index.get(caller).copied())
            .unwrap_or(self.names.len() - 1)
    }
}

/// The counters labelled by model or caller, with their label tables.
pub(super) struct Tables {
    pub(super) models: ModelLabels,
    pub(super) callers: CallerLabels,
    /// `endpoint`, `model`, `caller`, `status_class`.
    pub(super) requests: CounterCells,
    /// `model`, `caller`.
    pub(super) prompt_tokens: CounterCells,
    /// `model`, `caller`.
    pub(super) completion_tokens: CounterCells,
    /// `model`.
    pub(super) cached_tokens: CounterCells,
    /// `model`.
    pub(super) reasoning_tokens: CounterCells,
    /// `caller`.
    pub(super) rate_limited: CounterCells,
}

/// The vectors behind [`Tables`], registered once; each table resolves its own cells in them.
pub(super) struct TableVecs<'a> {
    pub(super) requests: &'a IntCounterVec,
    pub(super) prompt_tokens: &'a IntCounterVec,
    pub(super) completion_tokens: &'a IntCounterVec,
    pub(super) cached_tokens: &'a IntCounterVec,
    pub(super) reasoning_tokens: &'a IntCounterVec,
    pub(super) rate_limited: &'a IntCounterVec,
}

impl Tables {
    /// The tables for these labels, with the series dashboards need created (see the module
    /// docs of `metrics`). Series created by an earlier table keep their counts: the vectors
    /// hand out the same counters.
    pub(super) fn build(
        vecs: TableVecs<'_>,
        models: ModelLabels,
        callers: CallerLabels,
    ) -> prometheus::Result<Self> {
        let pairs = models.len() * callers.len();
        let tables = Self {
            requests: CounterCells::new(
                vecs.requests.clone(),
                Endpoint::ALL.len() * pairs * STATUS_CLASSES.len(),
            ),
            prompt_tokens: CounterCells::new(vecs.prompt_tokens.clone(), pairs),
            completion_tokens: CounterCells::new(vecs.completion_tokens.clone(), pairs),
            cached_tokens: CounterCells::new(vecs.cached_tokens.clone(), models.len()),
            reasoning_tokens: CounterCells::new(vecs.reasoning_tokens.clone(), models.len()),
            rate_limited: CounterCells::new(vecs.rate_limited.clone(), callers.len()),
            models,
            callers,
        };
        tables.touch()?;
        Ok(tables)
    }

    fn touch(&self) -> prometheus::Result<()> {
        let (models, callers) = (&self.models, &self.callers);
        for endpoint in Endpoint::ALL {
            // Only the client APIs carry a model or a caller's key; the others record "none"
            // and anonymous callers (and, when keys are on, the callers who present one).
            let model_range = if endpoint.calls_upstream() {
                0..models.len()
            } else {
                models.none()..models.len()
            };
            for model in model_range {
                for caller in 0..callers.len() {
                    for class in TOUCHED_STATUS_CLASSES {
                        self.requests.touch(
                            self.request_cell(endpoint, model, caller, class),
                            &[
                                endpoint.as_str(),
                                models.name(model),
                                callers.name(caller),
                                STATUS_CLASSES[class],
                            ],
                        )?;
                    }
                }
            }
        }
        for model in 0..=models.unknown() {
            for caller in 0..callers.len() {
                let labels = [models.name(model), callers.name(caller)];
                let cell = self.token_cell(model, caller);
                self.prompt_tokens.touch(cell, &labels)?;
                self.completion_tokens.touch(cell, &labels)?;
            }
            self.cached_tokens.touch(model, &[models.name(model)])?;
            self.reasoning_tokens.touch(model, &[models.name(model)])?;
        }
        for caller in 0..callers.len() {
            self.rate_limited.touch(caller, &[callers.name(caller)])?;
        }
        Ok(())
    }

    /// The slot of `requests` for this endpoint, model, caller and status class.
    pub(super) fn request_cell(
        &self,
        endpoint: Endpoint,
        model: usize,
        caller: usize,
        class: usize,
    ) -> usize {
        ((endpoint_index(endpoint) * self.models.len() + model) * self.callers.len() + caller)
            * STATUS_CLASSES.len()
            + class
    }

    /// The slot of the token counters by model and caller.
    pub(super) fn token_cell(&self, model: usize, caller: usize) -> usize {
        model * self.callers.len() + caller
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_labels() {
        let callers = CallerLabels::new(["alice", "bob", "alice", "anonymous"].map(String::from));
        assert_eq!(
            callers.configured(),
            &["alice".into(), "bob".into()] as &[Box<str>]
        );
        assert_eq!(callers.len(), 4);
        assert_eq!(callers.name(callers.lookup(Some("bob"))), "bob");
        assert_eq!(callers.name(callers.lookup(Some("unnamed"))), "unnamed");
        assert_eq!(callers.name(callers.lookup(Some("mallory"))), "anonymous");
        assert_eq!(callers.name(callers.lookup(None)), "anonymous");
    }
}
