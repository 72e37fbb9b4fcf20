//! Publishing `events.k8s.io/v1` events: one new Event per verdict transition.
//!
//! Not kube-runtime's `Recorder`: it folds events with the same reason and object into a
//! series and keeps the first one's note, so a second drift within minutes would show the
//! first drift's explanation. tfdrift emits only on transitions, so it never needs series.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};

pub(crate) use crate::core::contract::EventType;
use crate::core::text::{bounded, prefix};

/// events.k8s.io/v1 rejects longer notes.
const NOTE_LIMIT: usize = 1024;
/// Where a server before 1.21 keeps the events of cluster-scoped objects.
const SYSTEM_NAMESPACE: &str = "kube-system";
/// Object names are at most 253 characters; the suffix takes 17.
const NAME_PREFIX_LIMIT: usize = 253 - 17;

pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    counter: AtomicU64,
}

impl Publisher {
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Publisher {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    /// Creates one Event about `regarding`, in its namespace (`default` for a cluster-scoped
    /// object, or `kube-system` where the server takes it only there).
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> kube::Result<()> {
        let now = jiff::Timestamp::now();
        let mut regarding = regarding;
        // A cluster-scoped object: its events go to `default`, as kubectl's do, and the
        // server refuses a reference with an empty namespace there.
        if regarding.namespace.as_deref() == Some("") {
            regarding.namespace = None;
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        // Unique per event: nanoseconds since the epoch, plus a counter for one instant.
        let unique =
            (now.as_nanosecond() as u64).wrapping_add(self.counter.fetch_add(1, Ordering::Relaxed));
        let mut event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{unique:016x}",
                    name_prefix(regarding.name.as_deref().unwrap_or("object"))
                )),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(action.to_owned()),
            reason: Some(reason.to_owned()),
            type_: Some(match type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            note: Some(bounded(note, NOTE_LIMIT)),
            regarding: Some(regarding),
            ..Event::default()
        };
        let cluster_scoped = event
            .regarding
            .as_ref()
            .is_some_and(|r| r.namespace.is_none());
        match Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            // Servers before 1.21 take events.k8s.io events about a cluster-scoped object
            // only in kube-system (kubernetes#100125 allowed `default`, where kubectl looks).
            Err(kube::Error::Api(status)) if cluster_scoped && status.code == 422 => {
                event.metadata.namespace = Some(SYSTEM_NAMESPACE.into());
                Api::<Event>::namespaced(self.client.clone(), SYSTEM_NAMESPACE)
                    .create(&PostParams::default(), &event)
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}

/// A name prefix short enough for the suffix, ending in an alphanumeric character.
fn name_prefix(name: &str) -> &str {
    prefix(name, NAME_PREFIX_LIMIT).trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_notes_fit_the_api() {
        let long = format!("{}-{}", "a".repeat(240), "b".repeat(12));
        assert_eq!(name_prefix(&long).len(), 236);
        assert!(name_prefix(&long).ends_with('a'));
        assert_eq!(name_prefix("web"), "web");
        assert!(bounded(&"é".repeat(2000), NOTE_LIMIT).len() <= NOTE_LIMIT);
        assert_eq!(bounded("short", NOTE_LIMIT), "short");
    }
}
