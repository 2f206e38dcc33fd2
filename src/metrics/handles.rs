//! Pre-resolved metric handles, so recording is an atomic add rather than a labelled lookup.
//!
//! `IntCounterVec::with_label_values` hashes the values and takes a read lock on every call. These
//! wrappers resolve each label combination once (eagerly for the ones dashboards need to see as
//! zeros, lazily for the rest) and keep the handle, so the hot path is a `OnceLock` load and a
//! `fetch_add`. Every table is sized from a bounded label set, so memory is fixed at start-up.

use std::collections::HashMap;
use std::sync::OnceLock;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec};

use crate::endpoint::Endpoint;

/// The number of endpoints, the length of every per-endpoint table.
pub(super) const ENDPOINTS: usize = Endpoint::ALL.len();

/// The position of `endpoint` in every per-endpoint table: its place in the endpoint table.
pub(super) const fn endpoint_index(endpoint: Endpoint) -> usize {
    endpoint.index()
}

/// One value per endpoint, indexed by [`endpoint_index`].
pub(super) struct PerEndpoint<T>([T; ENDPOINTS]);

impl<T> PerEndpoint<T> {
    /// Builds one value per endpoint, stopping at the first error.
    pub(super) fn try_new(
        mut build: impl FnMut(Endpoint) -> prometheus::Result<T>,
    ) -> prometheus::Result<Self> {
        let mut slots: [Option<T>; ENDPOINTS] = [const { None }; ENDPOINTS];
        for endpoint in Endpoint::ALL {
            slots[endpoint_index(endpoint)] = Some(build(endpoint)?);
        }
        // Every slot was filled above (`endpoint_index` is a bijection onto 0..ENDPOINTS, which a
        // unit test checks); the error branch only keeps this free of `unwrap`.
        let mut values = Vec::with_capacity(ENDPOINTS);
        for slot in slots {
            values.push(
                slot.ok_or_else(|| prometheus::Error::Msg("endpoint slot left empty".into()))?,
            );
        }
        values
            .try_into()
            .map(Self)
            .map_err(|_| prometheus::Error::Msg("endpoint table has the wrong length".into()))
    }

    /// The value for `endpoint`.
    pub(super) fn get(&self, endpoint: Endpoint) -> &T {
        &self.0[endpoint_index(endpoint)]
    }
}

/// The `status_class` label values, indexed by [`status_class_index`].
pub(super) const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The classes pre-created for every endpoint: the ones the bridge actually answers with.
pub(super) const TOUCHED_STATUS_CLASSES: [usize; 3] = [1, 3, 4];

/// The position of `status`'s class in [`STATUS_CLASSES`]. Codes outside 100–599 cannot come from
/// `http::StatusCode` in practice; they count as "5xx" (and so as errors) rather than vanish.
pub(super) const fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// The error statuses that get their own `status` label on `sfbridge_errors_total`; every other
/// status ≥ 400 is "other". These are the ones the bridge itself answers with or maps Salesforce
/// errors to, so an operator can tell a bad API key (401) from an unknown model (404), a too large
/// body (413), a rate limit (429) and an upstream outage (502/503/504) without reading logs.
pub(super) const ERROR_STATUSES: [(u16, &str); 16] = [
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (501, "501"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];

/// The label value for error statuses not in [`ERROR_STATUSES`].
pub(super) const OTHER_STATUS: &str = "other";

/// The position of `status` among [`ERROR_STATUSES`] followed by [`OTHER_STATUS`], or `None`
/// for 100–399 (not an error). Invalid codes are errors, as in [`status_class_index`].
pub(super) fn error_status_index(status: u16) -> Option<usize> {
    if (100..400).contains(&status) {
        return None;
    }
    Some(
        ERROR_STATUSES
            .binary_search_by_key(&status, |&(code, _)| code)
            .unwrap_or(ERROR_STATUSES.len()),
    )
}

/// The label value at `index` from [`error_status_index`].
pub(super) fn error_status_label(index: usize) -> &'static str {
    ERROR_STATUSES
        .get(index)
        .map_or(OTHER_STATUS, |&(_, label)| label)
}

/// The `model` label value for a model name that is not configured.
pub(super) const UNKNOWN_MODEL: &str = "unknown";
/// The `model` label value when no model applies (`GET /health`, or a request rejected before its
/// body was read).
pub(super) const NO_MODEL: &str = "none";

/// The bounded set of `model` label values: the configured names, then [`UNKNOWN_MODEL`], then
/// [`NO_MODEL`]. Looking a name up borrows it, so recording never allocates.
pub(super) struct ModelLabels {
    names: Box<[Box<str>]>,
    index: HashMap<Box<str>, usize>,
}

impl ModelLabels {
    pub(super) fn new(configured: impl IntoIterator<Item = String>) -> Self {
        let mut names: Vec<Box<str>> = Vec::new();
        let mut none_configured = false;
        for name in configured {
            // A route literally named "unknown" or "none" shares the sentinel's series instead of
            // getting a second slot for the same label value (which would double-count it).
            if name == NO_MODEL {
                none_configured = true;
            } else if name != UNKNOWN_MODEL && !names.iter().any(|n| **n == *name) {
                names.push(name.into_boxed_str());
            }
        }
        let mut index: HashMap<Box<str>, usize> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        names.push(UNKNOWN_MODEL.into());
        names.push(NO_MODEL.into());
        // Only a configured "none" is recorded under "none"; a client sending "none" when no such
        // route exists is "unknown" like any other name.
        if none_configured {
            index.insert(NO_MODEL.into(), names.len() - 1);
        }
        Self {
            names: names.into_boxed_slice(),
            index,
        }
    }

    /// How many label values there are, sentinels included.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The label value at `index`.
    pub(super) fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or(UNKNOWN_MODEL, |name| name)
    }

    /// The configured names, without the sentinels.
    pub(super) fn configured(&self) -> &[Box<str>] {
        &self.names[..self.names.len() - 2]
    }

    /// The index of [`UNKNOWN_MODEL`].
    pub(super) fn unknown(&self) -> usize {
        self.names.len() - 2
    }

    /// The index of [`NO_MODEL`].
    pub(super) fn none(&self) -> usize {
        self.names.len() - 1
    }

    /// The index for a request's model: its own if configured, else "unknown"; "none" without one.
    pub(super) fn lookup(&self, model: Option<&str>) -> usize {
        match model {
            None => self.none(),
            Some(model) => self.index.get(model).copied().unwrap_or(self.unknown()),
        }
    }
}

/// A counter vector with a fixed table of lazily resolved children.
pub(super) struct CounterCells {
    vec: IntCounterVec,
    cells: Box<[OnceLock<IntCounter>]>,
}

impl CounterCells {
    pub(super) fn new(vec: IntCounterVec, len: usize) -> Self {
        Self {
            vec,
            cells: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Creates the series for slot `cell` now, so it is exported as 0 before its first event.
    pub(super) fn touch(&self, cell: usize, labels: &[&str]) -> prometheus::Result<()> {
        let counter = self.vec.get_metric_with_label_values(labels)?;
        if let Some(slot) = self.cells.get(cell) {
            let _ = slot.set(counter);
        }
        Ok(())
    }

    /// Adds `n` to slot `cell`, whose series has `labels`. `labels` is only read the first time.
    pub(super) fn inc_by(&self, cell: usize, labels: &[&str], n: u64) {
        let Some(slot) = self.cells.get(cell) else {
            debug_assert!(false, "cell {cell} out of range");
            return;
        };
        if let Some(counter) = slot.get() {
            counter.inc_by(n);
            return;
        }
        match self.vec.get_metric_with_label_values(labels) {
            Ok(counter) => slot.get_or_init(|| counter).inc_by(n),
            // Only a wrong number of labels fails, which the callers fix at compile time; a
            // metrics bug must never fail a request, so the sample is dropped and logged.
            Err(error) => tracing::warn!(%error, "metric sample dropped"),
        }
    }

    pub(super) fn vec(&self) -> &IntCounterVec {
        &self.vec
    }
}

/// A counter vector with one label whose values are `&'static str`s from the bridge's own code.
/// The expected values are resolved up front (and so exported as zeros); any other value from the
/// code still works, through the vector's own (locked) lookup.
pub(super) struct StaticLabelCounter {
    vec: IntCounterVec,
    known: Box<[(&'static str, IntCounter)]>,
}

impl StaticLabelCounter {
    pub(super) fn new(vec: IntCounterVec, known: &[&'static str]) -> prometheus::Result<Self> {
        let known = known
            .iter()
            .map(|&label| Ok((label, vec.get_metric_with_label_values(&[label])?)))
            .collect::<prometheus::Result<_>>()?;
        Ok(Self { vec, known })
    }

    pub(super) fn inc(&self, label: &'static str) {
        // A handful of short strings: a linear scan beats hashing.
        if let Some((_, counter)) = self.known.iter().find(|(known, _)| *known == label) {
            counter.inc();
            return;
        }
        inc_uncached(&self.vec, &[label]);
    }

    pub(super) fn vec(&self) -> &IntCounterVec {
        &self.vec
    }
}

/// A counter vector labelled by a `&'static str` from the bridge's own code and a status class.
/// The expected values have a pre-resolved slot per class, and their 2xx, 4xx and 5xx series are
/// created up front (and so exported as zeros); any other value from the code still works, through
/// the vector's own (locked) lookup.
pub(super) struct StaticLabelStatusCounter {
    cells: CounterCells,
    known: &'static [&'static str],
}

impl StaticLabelStatusCounter {
    pub(super) fn new(
        vec: IntCounterVec,
        known: &'static [&'static str],
    ) -> prometheus::Result<Self> {
        let cells = CounterCells::new(vec, known.len() * STATUS_CLASSES.len());
        for (position, &label) in known.iter().enumerate() {
            for class in TOUCHED_STATUS_CLASSES {
                cells.touch(
                    position * STATUS_CLASSES.len() + class,
                    &[label, STATUS_CLASSES[class]],
                )?;
            }
        }
        Ok(Self { cells, known })
    }

    /// Counts one event for `label` with `status`'s class.
    pub(super) fn inc(&self, label: &'static str, status: u16) {
        let class = status_class_index(status);
        let labels = [label, STATUS_CLASSES[class]];
        // A handful of short strings: a linear scan beats hashing.
        match self.known.iter().position(|&known| known == label) {
            Some(position) => {
                self.cells
                    .inc_by(position * STATUS_CLASSES.len() + class, &labels, 1)
            }
            None => inc_uncached(self.cells.vec(), &labels),
        }
    }
}

/// Adds one to the series `labels` of `vec` through its own (locked) lookup: the path for label
/// values no table anticipated.
fn inc_uncached(vec: &IntCounterVec, labels: &[&str]) {
    match vec.get_metric_with_label_values(labels) {
        Ok(counter) => counter.inc(),
        // Only a wrong number of labels fails; a metrics bug must never fail a request.
        Err(error) => tracing::warn!(%error, "metric sample dropped"),
    }
}

/// The first (and, for a vector, only) family a collector exports.
pub(super) fn family(collector: &impl Collector) -> MetricFamily {
    collector.collect().into_iter().next().unwrap_or_default()
}

/// `(value of label `name`, counter value)` for each series of a counter family.
pub(super) fn counts_by<'a>(
    family: &'a MetricFamily,
    name: &'a str,
) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    family
        .get_metric()
        .iter()
        .map(move |metric| (label(metric, name), metric.get_counter().get_value() as u64))
}

/// The value of label `name` on `metric`, or "" when absent.
pub(super) fn label<'a>(metric: &'a prometheus::proto::Metric, name: &str) -> &'a str {
    metric
        .get_label()
        .iter()
        .find(|pair| pair.name() == name)
        .map_or("", |pair| pair.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_index_matches_all() {
        for (position, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint_index(endpoint), position);
        }
    }

    #[test]
    fn status_classes() {
        let class = |status| STATUS_CLASSES[status_class_index(status)];
        assert_eq!(class(200), "2xx");
        assert_eq!(class(204), "2xx");
        assert_eq!(class(101), "1xx");
        assert_eq!(class(304), "3xx");
        assert_eq!(class(404), "4xx");
        assert_eq!(class(499), "4xx");
        assert_eq!(class(503), "5xx");
        assert_eq!(class(0), "5xx");
        assert_eq!(class(999), "5xx");
    }

    #[test]
    fn error_statuses_are_sorted_and_bounded() {
        assert!(ERROR_STATUSES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ERROR_STATUSES
            .iter()
            .all(|&(code, label)| code.to_string() == label));
        assert_eq!(error_status_index(200), None);
        assert_eq!(error_status_index(100), None);
        assert_eq!(
            error_status_label(error_status_index(42).unwrap_or(0)),
            "other"
        );
        assert_eq!(error_status_index(399), None);
        assert_eq!(
            error_status_label(error_status_index(429).unwrap_or(99)),
            "429"
        );
        assert_eq!(
            error_status_label(error_status_index(418).unwrap_or(0)),
            "other"
        );
        assert_eq!(
            error_status_label(error_status_index(600).unwrap_or(0)),
            "other"
        );
    }

    #[test]
    fn model_labels() {
        let models = ModelLabels::new(["a", "b", "a", "unknown"].into_iter().map(String::from));
        assert_eq!(
            models.configured(),
            &["a".into(), "b".into()] as &[Box<str>]
        );
        assert_eq!(models.len(), 4);
        assert_eq!(models.name(models.lookup(Some("b"))), "b");
        assert_eq!(models.name(models.lookup(Some("zzz"))), "unknown");
        assert_eq!(models.name(models.lookup(Some("unknown"))), "unknown");
        assert_eq!(models.name(models.lookup(None)), "none");
        assert_eq!(models.name(models.lookup(Some("none"))), "unknown");
        let with_none = ModelLabels::new(["none"].into_iter().map(String::from));
        assert_eq!(with_none.len(), 2);
        assert_eq!(with_none.name(with_none.lookup(Some("none"))), "none");
    }
}
