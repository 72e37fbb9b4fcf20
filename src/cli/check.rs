//! `tfdrift check`: every Kubernetes instance a Terraform state names, judged against the
//! live cluster, read-only. Each is in sync, drifted (what changed, who changed it), missing,
//! recreated outside Terraform, or not judged with the reason (a kind the cluster does not
//! serve, a permission the caller lacks, a resource type tfdrift does not read).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use serde::Serialize;

use crate::cluster::{Catalog, Served, Unserved};
use crate::core::ignore::Defaults;
use crate::core::ignore::api::{AddressRule, ApiRule};
use crate::core::object::ObjectId;
use crate::core::text;
use crate::intent::terraform::judge::{self, Context, Judgment};
use crate::intent::terraform::{self, Instance, Read, Source, Unjudged, Why};

/// Longest detail shown for one object.
const DETAIL_LIMIT: usize = 900;

/// The verdict on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    InSync,
    Drifted,
    Missing,
    Recreated,
    /// Read, but not judged: a kind the cluster does not serve, a permission the caller
    /// lacks, a tainted instance, a release Helm is changing.
    NotJudged,
    /// A resource type tfdrift does not read.
    Unsupported,
    /// The object could not be read, or the instance does not describe one.
    Error,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::InSync => "in-sync",
            Status::Drifted => "drifted",
            Status::Missing => "missing",
            Status::Recreated => "recreated",
            Status::NotJudged => "not-judged",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
        }
    }
}

/// The verdict on one state instance.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub address: String,
    /// `Deployment`, or `Kind.group` where the kind alone could name another group's.
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub status: Status,
    /// What changed and who changed it (drifted), the two uids (recreated), why it is not
    /// judged, the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Each change, one line each, no value of a Secret, env var, ConfigMap or command line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub in_sync: usize,
    pub drifted: usize,
    pub missing: usize,
    pub recreated: usize,
    pub not_judged: usize,
    pub unsupported: usize,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub resources: Vec<Checked>,
    pub summary: Summary,
}

impl Report {
    /// 0 all judged in sync, 2 anything drifted, missing or recreated (or, with
    /// `fail_on_unjudged`, anything not judged), 1 an error — as `terraform plan
    /// -detailed-exitcode`.
    pub fn exit_code(&self, fail_on_unjudged: bool) -> u8 {
        let s = &self.summary;
        if s.errors > 0 {
            1
        } else if s.drifted + s.missing + s.recreated > 0
            || (fail_on_unjudged && s.not_judged + s.unsupported > 0)
        {
            2
        } else {
            0
        }
    }

    /// The table and its summary line.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .resources
            .iter()
            .map(|c| {
                let object = if c.name.is_empty() {
                    String::new()
                } else if c.namespace.is_empty() {
                    format!("{}/{}", c.kind, c.name)
                } else {
                    format!("{}/{}/{}", c.kind, c.namespace, c.name)
                };
                [
                    c.status.label().to_owned(),
                    object,
                    c.address.clone(),
                    c.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let header = ["STATUS", "OBJECT", "ADDRESS", "DETAIL"].map(str::to_owned);
        let width = |i: usize| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2)];
        let mut out = String::new();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let line = format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut parts = vec![
            format!("{} in sync", s.in_sync),
            format!("{} drifted", s.drifted),
            format!("{} missing", s.missing),
            format!("{} recreated", s.recreated),
        ];
        if s.not_judged > 0 {
            parts.push(format!("{} not judged", s.not_judged));
        }
        if s.unsupported > 0 {
            parts.push(format!("{} unsupported", s.unsupported));
        }
        if s.errors > 0 {
            parts.push(format!("{} could not be checked", s.errors));
        }
        format!("{} instances: {}", self.resources.len(), parts.join(", "))
    }
}

/// How `check` talks to the cluster and what it leaves out.
pub struct Options {
    pub concurrency: usize,
    pub api_timeout: Duration,
    pub defaults: Defaults,
    /// `--ignore-field` and `--ignore-file` rules.
    pub rules: Vec<AddressRule>,
}

/// Judges every instance `read` holds, `concurrency` GETs at a time, in the state's order.
/// `progress` is told how many are done.
pub async fn check(
    client: Client,
    read: Read,
    options: &Options,
    progress: Arc<AtomicUsize>,
) -> Report {
    let catalog = Catalog::new(client.clone(), options.api_timeout);
    let contexts = contexts(&read, options);
    let mut kinds = BTreeSet::new();
    for i in &read.instances {
        kinds.insert((i.api_version.clone(), i.id.kind.clone()));
    }
    let served: HashMap<(String, String), Result<Served, Unserved>> = futures::stream::iter(kinds)
        .map(|(api_version, kind)| {
            let catalog = &catalog;
            async move {
                let served = catalog.resolve(&api_version, &kind).await;
                ((api_version, kind), served)
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let Read {
        instances,
        unjudged,
        ..
    } = read;
    let judged: Vec<Checked> = futures::stream::iter(instances.into_iter().enumerate())
        .map(|(i, instance)| {
            let (client, progress, served, contexts) =
                (client.clone(), progress.clone(), &served, &contexts);
            async move {
                let key = (instance.api_version.clone(), instance.id.kind.clone());
                let context = contexts.get(i).cloned().unwrap_or_default();
                let checked = match served.get(&key) {
                    Some(Ok(served)) => {
                        check_one(client, &instance, served, &context, options.api_timeout).await
                    }
                    // A server that cannot be asked is an error; one that does not serve the
                    // kind, or forbids asking, gives no verdict.
                    Some(Err(unserved @ Unserved::Failed { .. })) => {
                        unjudged_row(&instance, Status::Error, unserved.to_string())
                    }
                    Some(Err(unserved)) => {
                        unjudged_row(&instance, Status::NotJudged, unserved.to_string())
                    }
                    None => {
                        unjudged_row(&instance, Status::Error, "its kind was not resolved".into())
                    }
                };
                progress.fetch_add(1, Ordering::Relaxed);
                checked
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut resources = judged;
    resources.extend(unjudged.into_iter().map(row_of_unjudged));
    let mut summary = Summary::default();
    for c in &resources {
        match c.status {
            Status::InSync => summary.in_sync += 1,
            Status::Drifted => summary.drifted += 1,
            Status::Missing => summary.missing += 1,
            Status::Recreated => summary.recreated += 1,
            Status::NotJudged => summary.not_judged += 1,
            Status::Unsupported => summary.unsupported += 1,
            Status::Error => summary.errors += 1,
        }
    }
    Report { resources, summary }
}

/// What each instance is judged with beyond itself, by its index in `read.instances`.
fn contexts(read: &Read, options: &Options) -> Vec<Context> {
    let defaults = options.defaults.api_rules();
    let scaled: Vec<ObjectId> = if options.defaults.hpa_replicas {
        read.hpas
            .iter()
            .filter_map(crate::core::ignore::scaled::target_of_manifest)
            .collect()
    } else {
        Vec::new()
    };
    // What patch-style instances own on an object is theirs, not the object's other address's.
    let mut owned: HashMap<ObjectId, Vec<ApiRule>> = HashMap::new();
    for i in &read.instances {
        if matches!(i.source, Source::Patch) {
            owned
                .entry(i.id.clone())
                .or_default()
                .extend(judge::owned_paths(&i.object));
        }
    }
    read.instances
        .iter()
        .map(|i| {
            let mut rules = judge::rules_for(i, &defaults, &options.rules);
            if scaled.iter().any(|t| {
                t.kind == i.id.kind && t.name == i.id.name && t.namespace == i.id.namespace
            }) && let Ok(replicas) = ApiRule::parse("spec.replicas")
            {
                rules.push(replicas);
            }
            let others = match i.source {
                Source::Patch => Vec::new(),
                _ => owned.get(&i.id).cloned().unwrap_or_default(),
            };
            Context { rules, others }
        })
        .collect()
}

fn row(instance: &Instance, status: Status, detail: Option<String>) -> Checked {
    Checked {
        address: instance.address.clone(),
        kind: instance.id.qualified_kind(),
        api_version: instance.api_version.clone(),
        namespace: instance.id.namespace.clone(),
        name: instance.id.name.clone(),
        status,
        detail,
        changes: Vec::new(),
    }
}

fn unjudged_row(instance: &Instance, status: Status, why: String) -> Checked {
    row(instance, status, Some(why))
}

fn row_of_unjudged(u: Unjudged) -> Checked {
    let status = match &u.why {
        Why::Unsupported(_) => Status::Unsupported,
        Why::NotJudged(_) => Status::NotJudged,
        Why::Invalid(_) => Status::Error,
        Why::Drifted(_) => Status::Drifted,
        Why::Missing(_) => Status::Missing,
    };
    let id = u.id.unwrap_or_else(|| ObjectId::in_group("", "", "", ""));
    Checked {
        address: u.address,
        kind: if id.kind.is_empty() {
            String::new()
        } else {
            id.qualified_kind()
        },
        api_version: String::new(),
        namespace: id.namespace,
        name: id.name,
        status,
        detail: Some(u.why.to_string()),
        changes: Vec::new(),
    }
}

/// The live object, `None` when it does not exist.
async fn get_live(
    client: Client,
    served: &Served,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<DynamicObject>, (Status, String)> {
    let api: Api<DynamicObject> = if served.namespaced {
        Api::namespaced_with(client, namespace, &served.resource)
    } else {
        Api::all_with(client, &served.resource)
    };
    match tokio::time::timeout(timeout, api.get_opt(name)).await {
        Err(_) => Err((
            Status::Error,
            format!("reading it timed out after {timeout:?}"),
        )),
        Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
            let scope = if served.namespaced {
                format!(" in namespace {namespace}")
            } else {
                String::new()
            };
            let group = if served.resource.group.is_empty() {
                String::new()
            } else {
                format!(".{}", served.resource.group)
            };
            Err((
                Status::NotJudged,
                format!(
                    "forbidden: needs get on {}{group}{scope}",
                    served.resource.plural
                ),
            ))
        }
        Ok(Err(error)) => Err((
            Status::Error,
            format!(
                "cannot read it: {}",
                text::bounded(&text::chain(&crate::cluster::ApiError(error)), 300)
            ),
        )),
        Ok(Ok(found)) => Ok(found),
    }
}

async fn check_one(
    client: Client,
    instance: &Instance,
    served: &Served,
    context: &Context,
    timeout: Duration,
) -> Checked {
    let id = &instance.id;
    // Discovery decides the scope: a namespaced custom resource without a namespace is in
    // `default`, as kubectl applies it.
    let namespace = match (served.namespaced, id.namespace.is_empty()) {
        (true, true) => "default".to_owned(),
        (false, _) => String::new(),
        (true, false) => id.namespace.clone(),
    };
    let mut checked = row(instance, Status::InSync, None);
    checked.namespace = namespace.clone();
    let live = match get_live(client, served, &namespace, &id.name, timeout).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            checked.status = Status::Missing;
            checked.detail = Some("in state, not in the cluster".to_owned());
            return checked;
        }
        Err((status, why)) => {
            checked.status = status;
            checked.detail = Some(why);
            return checked;
        }
    };
    let managed = live.metadata.managed_fields.clone().unwrap_or_default();
    let live = match serde_json::to_value(&live) {
        Ok(live) => live,
        Err(_) => {
            checked.status = Status::Error;
            checked.detail = Some("the live object is not JSON".to_owned());
            return checked;
        }
    };
    match judge::judge(instance, &live, &served.schema, served.root, context) {
        Judgment::InSync { note } => checked.detail = note.map(str::to_owned),
        Judgment::Recreated { live, state } => {
            checked.status = Status::Recreated;
            checked.detail = Some(format!(
                "deleted and created again outside Terraform: uid {live}, state has {state}"
            ));
        }
        Judgment::Drifted { changes } => {
            checked.status = Status::Drifted;
            checked.changes = changes.iter().map(|c| c.redacted()).collect();
            checked.detail = Some(judge::explain(&changes, &managed, DETAIL_LIMIT));
        }
    }
    checked
}

/// Whether a state names anything `check` could judge; for a note when it names nothing.
pub fn names_anything(read: &Read) -> bool {
    !read.instances.is_empty() || !read.unjudged.is_empty() || !read.releases.is_empty()
}

/// Reads the state in `input` (as [`terraform::read`]), naming the input in errors.
pub fn read_state(source_name: &str, input: Vec<u8>) -> Result<Read, super::tfstate::TfstateError> {
    terraform::read(input).map_err(|source| super::tfstate::TfstateError::Read {
        source_name: source_name.to_owned(),
        source,
    })
}
