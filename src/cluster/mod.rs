//! What an API server serves, as judging any kind needs it: a group/version/kind resolved
//! through discovery to its resource (plural, scope), and the schema its objects are compared
//! by — the built-in one for the kinds tfdrift knows, else the server's OpenAPI (v3 where
//! served, v2 on older servers), each fetched once and kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::core::kind;
use crate::core::schema::{NodeId, Schema, builtin};

/// A failed API call, said once: kube's own message for a status repeats it in a debug dump
/// (`ApiError: … (Status { message: … })`); this one is `403 Forbidden: <message>`.
#[derive(Debug)]
pub struct ApiError(pub kube::Error);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            kube::Error::Api(status) => {
                write!(f, "{} {}: {}", status.code, status.reason, status.message)
            }
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            kube::Error::Api(_) => None,
            other => other.source(),
        }
    }
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}")]
    Read {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot use kubeconfig {path}")]
    Use {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration found (set --kubeconfig or KUBECONFIG, or run in a cluster)"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// A client for `kubeconfig`, or for the configuration found as kubectl finds it.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|error| ClientError::Read {
                path: path.display().to_string(),
                // kube's message names the file again: the file's own error says the rest.
                source: match error {
                    kube::config::KubeconfigError::ReadConfig(io, _) => Box::new(io),
                    other => Box::new(other),
                },
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::Use {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(ClientError::Infer)?,
    };
    Client::try_from(config).map_err(ClientError::Build)
}

/// A kind as the server serves it.
#[derive(Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub schema: Arc<Schema>,
    pub root: NodeId,
}

/// Why a kind cannot be judged here.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unserved {
    #[error("the cluster does not serve {api_version} {kind}")]
    NotServed { api_version: String, kind: String },
    #[error("discovery of {api_version} is forbidden")]
    Forbidden { api_version: String },
    #[error("discovery of {api_version} failed: {why}")]
    Failed { api_version: String, why: String },
}

/// Discovery and schemas, cached for the life of one run.
pub struct Catalog {
    client: Client,
    timeout: Duration,
    groups: Mutex<HashMap<String, Listed>>,
    v3: Mutex<Option<Option<Value>>>,
    v3_docs: Mutex<HashMap<String, Option<Document>>>,
    v2: Mutex<Option<Option<Document>>>,
}

type ApiResourceEntry = k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

/// The resources of one group-version, as discovery listed them.
type Listed = Result<Arc<[ApiResourceEntry]>, Unserved>;

/// An OpenAPI document of the server and the schema read from it.
#[derive(Clone)]
struct Document {
    doc: Arc<Value>,
    schema: Arc<Schema>,
}

impl Document {
    fn read(doc: Value, zero_is_value: bool) -> Option<Document> {
        let schema = Schema::from_openapi(&doc, zero_is_value).ok()?;
        Some(Document {
            doc: Arc::new(doc),
            schema: Arc::new(schema),
        })
    }

    fn root(&self, gvk: (&str, &str, &str)) -> Option<(Arc<Schema>, NodeId)> {
        let root = root_of(&self.doc, gvk).and_then(|name| self.schema.def(&name))?;
        Some((self.schema.clone(), root))
    }
}

impl Catalog {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Catalog {
            client,
            timeout,
            groups: Mutex::default(),
            v3: Mutex::default(),
            v3_docs: Mutex::default(),
            v2: Mutex::default(),
        }
    }

    /// `kind` of `api_version` as this server serves it, with its schema.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Served, Unserved> {
        let entry = self.discover(api_version, kind).await?;
        let (group, version) = kind::split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &entry.name);
        let builtin = kind::builtin(api_version, kind)
            .and_then(|k| builtin::schema().def(k.def))
            .map(|root| (builtin::shared().clone(), root));
        let (schema, root) = match builtin {
            Some(found) => found,
            None => self.served_schema(group, version, kind).await,
        };
        Ok(Served {
            resource,
            namespaced: entry.namespaced,
            schema,
            root,
        })
    }

    /// Whether `kind` of `api_version` is namespaced, from discovery alone (no schema).
    pub async fn namespaced(&self, api_version: &str, kind: &str) -> Result<bool, Unserved> {
        Ok(self.discover(api_version, kind).await?.namespaced)
    }

    async fn discover(&self, api_version: &str, kind: &str) -> Result<ApiResourceEntry, Unserved> {
        let resources = {
            let mut groups = self.groups.lock().await;
            if let Some(found) = groups.get(api_version) {
                found.clone()
            } else {
                let listed = self.list(api_version).await;
                groups.insert(api_version.to_owned(), listed.clone());
                listed
            }
        }?;
        resources
            .iter()
            .find(|r| r.kind == kind && !r.name.contains('/'))
            .cloned()
            .ok_or_else(|| Unserved::NotServed {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })
    }

    async fn list(&self, api_version: &str) -> Result<Arc<[ApiResourceEntry]>, Unserved> {
        let (group, version) = kind::split_api_version(api_version);
        let listed = if group.is_empty() {
            tokio::time::timeout(self.timeout, self.client.list_core_api_resources(version)).await
        } else {
            tokio::time::timeout(
                self.timeout,
                self.client.list_api_group_resources(api_version),
            )
            .await
        };
        match listed {
            Ok(Ok(list)) => Ok(list.resources.into()),
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => Err(Unserved::NotServed {
                api_version: api_version.to_owned(),
                kind: String::new(),
            }),
            Ok(Err(kube::Error::Api(status))) if status.code == 403 => Err(Unserved::Forbidden {
                api_version: api_version.to_owned(),
            }),
            Ok(Err(error)) => Err(Unserved::Failed {
                api_version: api_version.to_owned(),
                why: crate::core::text::bounded(&crate::core::text::chain(&ApiError(error)), 300),
            }),
            Err(_) => Err(Unserved::Failed {
                api_version: api_version.to_owned(),
                why: format!("timed out after {:?}", self.timeout),
            }),
        }
    }

    /// The server's schema for a kind tfdrift does not know: v3 where served, else v2; if
    /// neither can be had, everything compares as plain JSON.
    async fn served_schema(&self, group: &str, version: &str, kind: &str) -> (Arc<Schema>, NodeId) {
        let gvk = (group, version, kind);
        if let Some(found) = self.v3_doc(group, version).await.and_then(|d| d.root(gvk)) {
            return found;
        }
        if let Some(found) = self.v2_doc().await.and_then(|d| d.root(gvk)) {
            return found;
        }
        (Arc::new(Schema::any()), 0)
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        let request = http::Request::get(path).body(Vec::new()).ok()?;
        let text = tokio::time::timeout(self.timeout, self.client.request_text(request))
            .await
            .ok()?
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    async fn v3_doc(&self, group: &str, version: &str) -> Option<Document> {
        let index = {
            let mut v3 = self.v3.lock().await;
            if v3.is_none() {
                *v3 = Some(self.get_json("/openapi/v3").await);
            }
            v3.clone().flatten()?
        };
        let key = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let mut docs = self.v3_docs.lock().await;
        if let Some(doc) = docs.get(&key) {
            return doc.clone();
        }
        let url = index
            .pointer(&format!(
                "/paths/{}/serverRelativeURL",
                key.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let doc = match url {
            Some(url) => self
                .get_json(&url)
                .await
                .and_then(|doc| Document::read(doc, !is_builtin_group(group))),
            None => None,
        };
        docs.insert(key, doc.clone());
        doc
    }

    async fn v2_doc(&self) -> Option<Document> {
        let mut v2 = self.v2.lock().await;
        if v2.is_none() {
            // One document for every kind; asked for the kinds tfdrift does not know, custom
            // resources, which keep their zeros.
            let doc = self
                .get_json("/openapi/v2")
                .await
                .and_then(|doc| Document::read(doc, true));
            *v2 = Some(doc);
        }
        v2.clone().flatten()
    }
}

/// Groups whose types are Go structs with `omitempty` (their zeros are absence), unlike a
/// custom resource's.
fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// The definition an OpenAPI document gives for a group/version/kind
/// (`x-kubernetes-group-version-kind`).
fn root_of(doc: &Value, (group, version, kind): (&str, &str, &str)) -> Option<String> {
    let defs = doc
        .get("definitions")
        .or_else(|| doc.pointer("/components/schemas"))?
        .as_object()?;
    defs.iter()
        .find(|(_, def)| {
            def.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        let f = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or_default();
                        f("group") == group && f("version") == version && f("kind") == kind
                    })
                })
        })
        .map(|(name, _)| name.clone())
}
