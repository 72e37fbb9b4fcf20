//! One relist-aware index of what a watch holds: every watch that must notice objects
//! leaving it (deleted, opted out, an HPA going away) feeds one of these. A watch that
//! reconnects after a 410 Gone relists instead of replaying deletes, so a relist is diffed
//! against what was known.

use std::collections::HashMap;

use kube::ResourceExt;
use kube::runtime::watcher;

/// `(namespace, name)` of a watched object.
pub(crate) type Key = (String, String);

/// What one watch event changed: `old` → `new` for `key` (`None` meaning "not indexed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change<V> {
    pub key: Key,
    pub old: Option<V>,
    pub new: Option<V>,
}

/// The value `value_of` derives from each watched object, by key. Objects for which it
/// gives `None` are not indexed (an HPA scaling no kind tfdrift fingerprints).
pub(crate) struct WatchIndex<V> {
    known: HashMap<Key, V>,
    /// Filled during a (re)list; replaces `known` when it completes.
    relist: Option<HashMap<Key, V>>,
}

impl<V> Default for WatchIndex<V> {
    fn default() -> Self {
        WatchIndex {
            known: HashMap::new(),
            relist: None,
        }
    }
}

impl<V: Clone + PartialEq> WatchIndex<V> {
    /// Applies `event`; returns what changed (nothing for an update that keeps the value),
    /// sorted by key.
    pub fn observe<R: kube::Resource>(
        &mut self,
        event: &watcher::Event<R>,
        value_of: impl Fn(&R) -> Option<V>,
    ) -> Vec<Change<V>> {
        let key = |o: &R| (o.namespace().unwrap_or_default(), o.name_any());
        let mut changes = Vec::new();
        let mut note = |key: Key, old: Option<V>, new: Option<V>| {
            if old != new {
                changes.push(Change { key, old, new });
            }
        };
        match event {
            watcher::Event::Apply(o) => {
                let new = value_of(o);
                let old = match &new {
                    Some(v) => self.known.insert(key(o), v.clone()),
                    None => self.known.remove(&key(o)),
                };
                note(key(o), old, new);
            }
            watcher::Event::Delete(o) => {
                let old = self.known.remove(&key(o));
                note(key(o), old, None);
            }
            watcher::Event::Init => self.relist = Some(HashMap::new()),
            watcher::Event::InitApply(o) => {
                if let Some(v) = value_of(o) {
                    self.relist
                        .get_or_insert_with(HashMap::new)
                        .insert(key(o), v);
                }
            }
            watcher::Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                for (k, v) in &fresh {
                    note(k.clone(), self.known.get(k).cloned(), Some(v.clone()));
                }
                for (k, v) in &self.known {
                    if !fresh.contains_key(k) {
                        note(k.clone(), Some(v.clone()), None);
                    }
                }
                self.known = fresh;
            }
        }
        changes.sort_by(|a, b| a.key.cmp(&b.key));
        changes
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn values(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.known.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use watcher::Event;

    fn cm(name: &str, value: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns"},
            "data": {"v": value},
        }))
        .unwrap()
    }

    fn value(o: &ConfigMap) -> Option<String> {
        o.data.as_ref()?.get("v").filter(|v| !v.is_empty()).cloned()
    }

    fn keys(changes: &[Change<String>]) -> Vec<&str> {
        changes.iter().map(|c| c.key.1.as_str()).collect()
    }

    #[test]
    fn applies_deletes_and_relists_are_diffed() {
        let mut index = WatchIndex::default();
        assert!(index.observe(&Event::Init, value).is_empty());
        index.observe(&Event::InitApply(cm("a", "1")), value);
        index.observe(&Event::InitApply(cm("b", "2")), value);
        assert_eq!(keys(&index.observe(&Event::InitDone, value)), ["a", "b"]);
        // The same value again (a status update): nothing changed.
        assert!(index.observe(&Event::Apply(cm("a", "1")), value).is_empty());
        let changed = index.observe(&Event::Apply(cm("a", "3")), value);
        assert_eq!(changed[0].old.as_deref(), Some("1"));
        assert_eq!(changed[0].new.as_deref(), Some("3"));
        // No value any more: it leaves the index.
        let left = index.observe(&Event::Apply(cm("a", "")), value);
        assert_eq!(
            (left[0].old.as_deref(), left[0].new.as_deref()),
            (Some("3"), None)
        );
        assert_eq!(
            keys(&index.observe(&Event::Delete(cm("b", "2")), value)),
            ["b"]
        );
        // Deleted while the watch was down: only the relist can tell.
        index.observe(&Event::Apply(cm("c", "4")), value);
        index.observe(&Event::Init, value);
        index.observe(&Event::InitApply(cm("d", "5")), value);
        let relisted = index.observe(&Event::InitDone, value);
        assert_eq!(keys(&relisted), ["c", "d"]);
        assert_eq!(relisted[0].new, None);
        assert_eq!(index.len(), 1);
    }
}
