//! `tfdrift check --helm-release` and the `helm_release` instances of `--tfstate`: each
//! release's records listed in the cluster (names and labels only), the latest deployed
//! revision's record read, and its objects added to what `check` judges. What concerns the
//! release as a whole (Helm busy, uninstalled, upgraded or given other values outside
//! Terraform, a record that does not decode) is a row of its own, named by the release.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, ListParams};

use crate::core::text;
use crate::intent::helm::{self, Choice, Meta, Named, Release, record};
use crate::intent::terraform::{Read, Unjudged, Why};

/// A `--helm-release` value: `[NAMESPACE/]NAME`, or `NAMESPACE/*` for every release there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// `None`: the kubeconfig's namespace.
    pub namespace: Option<String>,
    /// `None`: every release of the namespace.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--helm-release {0:?}: expected [NAMESPACE/]NAME or NAMESPACE/*")]
pub struct WantedError(String);

impl std::str::FromStr for Wanted {
    type Err = WantedError;

    fn from_str(s: &str) -> Result<Wanted, WantedError> {
        let bad = || WantedError(s.to_owned());
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 253
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        match s.split_once('/') {
            Some((ns, "*")) if valid(ns) => Ok(Wanted {
                namespace: Some(ns.to_owned()),
                name: None,
            }),
            Some((ns, name)) if valid(ns) && valid(name) => Ok(Wanted {
                namespace: Some(ns.to_owned()),
                name: Some(name.to_owned()),
            }),
            None if valid(s) => Ok(Wanted {
                namespace: None,
                name: Some(s.to_owned()),
            }),
            _ => Err(bad()),
        }
    }
}

/// Where a release's records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Secret,
    ConfigMap,
}

/// The records of one namespace, by release name, from both drivers.
type Records = BTreeMap<String, Vec<(Meta, Driver)>>;

/// Adds to `read` the objects of every release `wanted` names and of every release its
/// `helm_release` instances name (once each: a release a state names goes by its address).
pub async fn expand(client: Client, read: &mut Read, wanted: &[Wanted], timeout: Duration) {
    let default_ns = client.default_namespace().to_owned();
    // (namespace, name) → the address it goes by, the state's instance if one names it.
    let mut targets: BTreeMap<(String, String), Option<Named>> = BTreeMap::new();
    let mut every: BTreeSet<String> = BTreeSet::new();
    for w in wanted {
        let ns = w.namespace.clone().unwrap_or_else(|| default_ns.clone());
        match &w.name {
            Some(name) => {
                targets.entry((ns, name.clone())).or_default();
            }
            None => {
                every.insert(ns);
            }
        }
    }
    for named in std::mem::take(&mut read.releases) {
        targets.insert((named.namespace.clone(), named.name.clone()), Some(named));
    }
    let namespaces: BTreeSet<String> = targets
        .keys()
        .map(|(ns, _)| ns.clone())
        .chain(every.iter().cloned())
        .collect();
    for ns in namespaces {
        let records = match list(client.clone(), &ns, timeout).await {
            Ok(records) => records,
            Err((why, is_error)) => {
                let names = of_namespace(&targets, &ns);
                let names = if names.is_empty() {
                    vec![("*".to_owned(), None)]
                } else {
                    names
                };
                for (name, named) in names {
                    let why = if is_error {
                        Why::Invalid(why.clone())
                    } else {
                        Why::NotJudged(why.clone())
                    };
                    read.unjudged.push(row(&ns, &name, named.as_ref(), why));
                }
                continue;
            }
        };
        if every.contains(&ns) {
            if records.is_empty() {
                read.notes
                    .push(format!("no Helm release in namespace {ns}"));
            }
            for name in records.keys() {
                targets.entry((ns.clone(), name.clone())).or_default();
            }
        }
        for (name, named) in of_namespace(&targets, &ns) {
            let metas = records.get(&name).map(Vec::as_slice).unwrap_or_default();
            one(
                client.clone(),
                read,
                &ns,
                &name,
                named.as_ref(),
                metas,
                timeout,
            )
            .await;
        }
    }
}

/// The releases of `ns` among `targets`, each with the `helm_release` naming it.
fn of_namespace(
    targets: &BTreeMap<(String, String), Option<Named>>,
    ns: &str,
) -> Vec<(String, Option<Named>)> {
    targets
        .iter()
        .filter(|((n, _), _)| n == ns)
        .map(|((_, name), named)| (name.clone(), named.clone()))
        .collect()
}

/// A row about the release itself.
fn row(namespace: &str, name: &str, named: Option<&Named>, why: Why) -> Unjudged {
    Unjudged {
        address: named.map_or_else(|| helm::address_of(namespace, name), |n| n.address.clone()),
        resource_type: helm::RESOURCE_TYPE.to_owned(),
        id: Some(helm::release_id(namespace, name)),
        why,
    }
}

async fn one(
    client: Client,
    read: &mut Read,
    ns: &str,
    name: &str,
    named: Option<&Named>,
    metas: &[(Meta, Driver)],
    timeout: Duration,
) {
    let only: Vec<Meta> = metas.iter().map(|(m, _)| m.clone()).collect();
    let push = |read: &mut Read, why: Why| read.unjudged.push(row(ns, name, named, why));
    let chosen = match helm::choose(&only) {
        None => {
            return push(
                read,
                Why::Missing("no release record in the cluster (not installed)".into()),
            );
        }
        Some(Choice::Pending(m)) => {
            return push(
                read,
                Why::NotJudged(format!(
                    "Helm is changing it ({} at revision {}): judged when it settles",
                    m.status, m.revision
                )),
            );
        }
        Some(Choice::Gone(m)) => {
            return push(
                read,
                Why::Missing(format!("{} at revision {}", m.status, m.revision)),
            );
        }
        Some(Choice::NoneDeployed(m)) => {
            return push(
                read,
                Why::NotJudged(format!(
                    "no deployed revision (revision {} is {})",
                    m.revision, m.status
                )),
            );
        }
        Some(Choice::Deployed(m)) => m.clone(),
    };
    let driver = metas
        .iter()
        .find(|(m, _)| m.object == chosen.object)
        .map_or(Driver::Secret, |(_, d)| *d);
    let release = match fetch(client, ns, &chosen, driver, timeout).await {
        Ok(release) => release,
        Err(why) => return push(read, Why::Invalid(why)),
    };
    let address = named.map_or_else(|| helm::address_of(ns, name), |n| n.address.clone());
    if let Some(named) = named {
        let differences = named.differences(&release);
        if !differences.is_empty() {
            push(read, Why::Drifted(differences.join("; ")));
        }
    }
    let (instances, unjudged) = helm::objects(&release, &address);
    // A chart's HPA scales its target: `replicas` is then left out, as for a state's.
    read.hpas.extend(
        instances
            .iter()
            .filter(|i| i.id.kind == crate::core::ignore::scaled::KIND)
            .map(|i| i.object.clone()),
    );
    read.instances.extend(instances);
    read.unjudged.extend(unjudged);
}

/// The names and labels of every release record in `ns` (both drivers); the error and
/// whether it is one (else a permission: not judged).
async fn list(client: Client, ns: &str, timeout: Duration) -> Result<Records, (String, bool)> {
    let params = ListParams::default().labels(record::OWNER_SELECTOR);
    let mut out = Records::new();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client, ns);
    let secrets = metas(tokio::time::timeout(timeout, secrets.list_metadata(&params)).await);
    let configmaps = metas(tokio::time::timeout(timeout, configmaps.list_metadata(&params)).await);
    for (driver, listed) in [(Driver::Secret, secrets), (Driver::ConfigMap, configmaps)] {
        let resource = match driver {
            Driver::Secret => "secrets",
            Driver::ConfigMap => "configmaps",
        };
        let list = match listed {
            Err(_) => {
                return Err((
                    format!(
                        "listing Helm release records ({resource}) in {ns} timed out after {timeout:?}"
                    ),
                    true,
                ));
            }
            // Helm's default driver is the Secret one: without a grant on ConfigMaps, the
            // Secrets still decide.
            Ok(Err(kube::Error::Api(s))) if s.code == 403 && driver == Driver::ConfigMap => {
                continue;
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 403 => {
                return Err((
                    format!(
                        "forbidden: needs list and get on {resource} in namespace {ns} (Helm's release records)"
                    ),
                    false,
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    format!(
                        "cannot list Helm release records in {ns}: {}",
                        text::bounded(&text::chain(&crate::cluster::ApiError(e)), 300)
                    ),
                    true,
                ));
            }
            Ok(Ok(list)) => list,
        };
        for metadata in list {
            let labels = metadata.labels.unwrap_or_default();
            let object = metadata.name.unwrap_or_default();
            if let Some(meta) = Meta::of(&object, &labels) {
                out.entry(meta.release.clone())
                    .or_default()
                    .push((meta, driver));
            }
        }
    }
    Ok(out)
}

type Listed<K> = Result<
    Result<kube::core::ObjectList<kube::core::PartialObjectMeta<K>>, kube::Error>,
    tokio::time::error::Elapsed,
>;

/// The metadata of a listing.
fn metas<K: Clone>(
    listed: Listed<K>,
) -> Result<Result<Vec<kube::core::ObjectMeta>, kube::Error>, tokio::time::error::Elapsed> {
    listed.map(|l| l.map(|l| l.items.into_iter().map(|i| i.metadata).collect()))
}

/// The chosen record, read and decoded; the error names the record, never its content.
async fn fetch(
    client: Client,
    ns: &str,
    meta: &Meta,
    driver: Driver,
    timeout: Duration,
) -> Result<Release, String> {
    let (what, decoded) = match driver {
        Driver::Secret => (
            "Secret",
            get::<Secret>(client, ns, &meta.object, timeout)
                .await?
                .map(Release::of_secret),
        ),
        Driver::ConfigMap => (
            "ConfigMap",
            get::<ConfigMap>(client, ns, &meta.object, timeout)
                .await?
                .map(Release::of_config_map),
        ),
    };
    let decoded = decoded.ok_or_else(|| format!("{what} {ns}/{} is gone", meta.object))?;
    decoded.map_err(|e| format!("release record {what} {ns}/{}: {e}", meta.object))
}

/// Object `name` of `ns`, `None` when it does not exist.
async fn get<K>(
    client: Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<K>, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client, ns);
    let kind = K::kind(&Default::default()).into_owned();
    tokio::time::timeout(timeout, api.get_opt(name))
        .await
        .map_err(|_| format!("reading {kind} {ns}/{name} timed out"))?
        .map_err(|e| {
            format!(
                "cannot read {kind} {ns}/{name}: {}",
                text::bounded(&text::chain(&crate::cluster::ApiError(e)), 300)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_releases_parse() {
        let w = |s: &str| s.parse::<Wanted>();
        assert_eq!(
            w("shop/web"),
            Ok(Wanted {
                namespace: Some("shop".into()),
                name: Some("web".into())
            })
        );
        assert_eq!(
            w("web"),
            Ok(Wanted {
                namespace: None,
                name: Some("web".into())
            })
        );
        assert_eq!(
            w("shop/*"),
            Ok(Wanted {
                namespace: Some("shop".into()),
                name: None
            })
        );
        for bad in ["", "/web", "shop/", "Shop/web", "a/b/c", "*"] {
            assert!(w(bad).is_err(), "{bad}");
        }
    }
}
