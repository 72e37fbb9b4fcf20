//! Verdict records: for a kind the operator does not annotate (RBAC objects, Secrets, every
//! kind outside `--annotate-kinds`), a drifted object's verdict is kept in a ConfigMap in the
//! operator's own namespace — written when it drifts, deleted when it is in sync again — so
//! that a restart or a failover neither repeats DriftDetected nor misses the DriftResolved of
//! an object fixed while no replica was leading. In sync is no record: steady state writes
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::core::contract;
use crate::core::object::ObjectId;
use crate::operator::http::Readiness;

/// The label every record carries.
pub const RECORD_LABEL: &str = "tfdrift.jin.dev/verdict-record";
const SELECTOR: &str = "tfdrift.jin.dev/verdict-record=true";
/// The readiness name of the records' watch.
const WATCH: &str = "verdict records";

/// What a record says of a drifted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub address: String,
    pub workspace: String,
    pub drifted_at: String,
    pub summary: String,
}

/// The records in the operator's namespace, by the object they are about.
pub struct Records {
    client: Client,
    namespace: String,
    by_object: RwLock<HashMap<ObjectId, Record>>,
    synced: watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
#[error("{verb} the verdict record of {object} in {namespace} failed")]
pub struct RecordError {
    verb: &'static str,
    object: String,
    namespace: String,
    #[source]
    source: Box<crate::cluster::ApiError>,
}

impl Records {
    pub fn new(client: Client, namespace: String) -> Records {
        Records {
            client,
            namespace,
            by_object: RwLock::default(),
            synced: watch::Sender::new(false),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn get(&self, id: &ObjectId) -> Option<Record> {
        read(&self.by_object).get(id).cloned()
    }

    /// Every object a record is kept for.
    pub fn objects(&self) -> Vec<ObjectId> {
        read(&self.by_object).keys().cloned().collect()
    }

    /// Whether the records have been listed once: before that, no verdict of a kind without
    /// annotations can be compared with what was reported.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Writes `record` for `id` (server-side apply: created or replaced in one call).
    pub async fn put(
        &self,
        id: &ObjectId,
        record: Record,
        timeout: Duration,
    ) -> Result<(), RecordError> {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name_of(id),
                "namespace": self.namespace,
                "labels": {
                    RECORD_LABEL: "true",
                    "app.kubernetes.io/managed-by": "tfdrift",
                },
            },
            "data": data_of(id, &record),
        });
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = PatchParams::apply(contract::FIELD_MANAGER).force();
        let (name, patch) = (name_of(id), Patch::Apply(&body));
        let call = api.patch(&name, &params, &patch);
        self.call(id, "write", call, timeout).await?;
        write(&self.by_object).insert(id.clone(), record);
        Ok(())
    }

    /// Deletes the record of `id`, if there is one.
    pub async fn delete(&self, id: &ObjectId, timeout: Duration) -> Result<(), RecordError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = name_of(id);
        let params = DeleteParams::default();
        let call = api.delete(&name, &params);
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
            Ok(Err(source)) => return Err(self.error(id, "delete", source)),
            Err(_) => {
                return Err(self.error(
                    id,
                    "delete",
                    kube::Error::Service(format!("timed out after {timeout:?}").into()),
                ));
            }
        }
        write(&self.by_object).remove(id);
        Ok(())
    }

    async fn call<T>(
        &self,
        id: &ObjectId,
        verb: &'static str,
        call: impl Future<Output = kube::Result<T>>,
        timeout: Duration,
    ) -> Result<T, RecordError> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(self.error(id, verb, source)),
            Err(_) => Err(self.error(
                id,
                verb,
                kube::Error::Service(format!("timed out after {timeout:?}").into()),
            )),
        }
    }

    fn error(&self, id: &ObjectId, verb: &'static str, source: kube::Error) -> RecordError {
        RecordError {
            verb,
            object: id.to_string(),
            namespace: self.namespace.clone(),
            source: Box::new(crate::cluster::ApiError(source)),
        }
    }

    /// Watches the records until `shutdown`, keeping [`Records::get`] current (a standby's
    /// too, so that it knows what was reported when it takes over).
    pub async fn run(&self, readiness: Readiness, shutdown: CancellationToken) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().labels(SELECTOR).any_semantic();
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut relisted: Option<HashMap<ObjectId, Record>> = None;
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = stream.next() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            let event = match event {
                Ok(event) => {
                    readiness.watch_ok(WATCH);
                    event
                }
                Err(error) => {
                    if readiness.watch_error(WATCH, &error) {
                        warn!(
                            namespace = %self.namespace,
                            error = &error as &dyn std::error::Error,
                            "watch of verdict records failed; retrying with backoff (tfdrift needs get, list, watch, create, patch and delete on configmaps in its own namespace)"
                        );
                    }
                    continue;
                }
            };
            match event {
                watcher::Event::Apply(cm) => {
                    if let Some((id, record)) = record_of(&cm) {
                        write(&self.by_object).insert(id, record);
                    }
                }
                watcher::Event::Delete(cm) => {
                    if let Some((id, _)) = record_of(&cm) {
                        write(&self.by_object).remove(&id);
                    }
                }
                watcher::Event::Init => relisted = Some(HashMap::new()),
                watcher::Event::InitApply(cm) => {
                    if let (Some(list), Some((id, record))) = (relisted.as_mut(), record_of(&cm)) {
                        list.insert(id, record);
                    }
                }
                watcher::Event::InitDone => {
                    *write(&self.by_object) = relisted.take().unwrap_or_default();
                    self.synced.send_replace(true);
                }
            }
        }
    }
}

/// A record's name: a digest of the object's identity (names of any length and any kind fit).
fn name_of(id: &ObjectId) -> String {
    let digest = Sha256::digest(format!(
        "{}\n{}\n{}\n{}",
        id.group, id.kind, id.namespace, id.name
    ));
    format!("tfdrift-verdict-{}", &hex::encode(digest)[..20])
}

fn data_of(id: &ObjectId, record: &Record) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("group", id.group.clone()),
        ("kind", id.kind.clone()),
        ("namespace", id.namespace.clone()),
        ("name", id.name.clone()),
        ("address", record.address.clone()),
        ("workspace", record.workspace.clone()),
        ("drifted-at", record.drifted_at.clone()),
        ("summary", record.summary.clone()),
    ])
}

fn record_of(cm: &ConfigMap) -> Option<(ObjectId, Record)> {
    let data = cm.data.as_ref()?;
    let field = |k: &str| data.get(k).cloned().unwrap_or_default();
    let id = ObjectId::in_group(
        &field("group"),
        &field("kind"),
        &field("namespace"),
        &field("name"),
    );
    if id.kind.is_empty() || id.name.is_empty() || name_of(&id) != cm.name_any() {
        // Not one of ours, or edited by hand: not believed.
        return None;
    }
    Some((
        id,
        Record {
            address: field("address"),
            workspace: field("workspace"),
            drifted_at: field("drifted-at"),
            summary: field("summary"),
        },
    ))
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_a_renamed_one_is_not_believed() {
        let id = ObjectId::in_group("rbac.authorization.k8s.io", "Role", "app", "editor");
        let record = Record {
            address: "kubernetes_role_v1.editor".into(),
            workspace: "terraform/default/app".into(),
            drifted_at: "2026-12-02T00:00:00Z".into(),
            summary: "rules[0].verbs: + delete".into(),
        };
        let data: BTreeMap<String, String> = data_of(&id, &record)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mut cm = ConfigMap {
            data: Some(data),
            ..ConfigMap::default()
        };
        cm.metadata.name = Some(name_of(&id));
        assert_eq!(record_of(&cm), Some((id.clone(), record)));
        assert!(name_of(&id).len() <= 63);
        cm.metadata.name = Some("tfdrift-verdict-other".into());
        assert_eq!(record_of(&cm), None);
    }
}
