//! `tfdrift check`: every object a Terraform state names, compared with the live cluster,
//! read-only. Each is in sync, drifted (what changed, who changed it), missing, or
//! recreated outside Terraform.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use serde::Serialize;
use serde_json::Value;

use super::hash::Ignore;
use super::tfstate::Hashed;
use crate::core::explain::{self, Values};
use crate::core::fingerprint::Fingerprint;
use crate::core::text;

/// Longest detail shown for one object.
const DETAIL_LIMIT: usize = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    InSync,
    Drifted,
    Missing,
    Recreated,
    Error,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::InSync => "in-sync",
            Status::Drifted => "drifted",
            Status::Missing => "missing",
            Status::Recreated => "recreated",
            Status::Error => "error",
        }
    }
}

/// The verdict on one state instance.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub address: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: Status,
    /// The intent's hash, from state.
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_hash: Option<String>,
    /// What changed and who changed it (drifted), the two uids (recreated), the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub in_sync: usize,
    pub drifted: usize,
    pub missing: usize,
    pub recreated: usize,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub resources: Vec<Checked>,
    pub summary: Summary,
}

impl Report {
    /// 0 all in sync, 2 anything drifted, missing or recreated, 1 an error — as
    /// `terraform plan -detailed-exitcode`.
    pub fn exit_code(&self) -> u8 {
        let s = &self.summary;
        if s.errors > 0 {
            1
        } else if s.drifted + s.missing + s.recreated > 0 {
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
                [
                    c.status.label().to_owned(),
                    format!("{}/{}/{}", c.kind, c.namespace, c.name),
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
        let s = &self.summary;
        out.push_str(&format!(
            "{} objects: {} in sync, {} drifted, {} missing, {} recreated{}\n",
            self.resources.len(),
            s.in_sync,
            s.drifted,
            s.missing,
            s.recreated,
            if s.errors > 0 {
                format!(", {} could not be checked", s.errors)
            } else {
                String::new()
            }
        ));
        out
    }
}

/// How `check` talks to the cluster.
pub struct Options {
    pub concurrency: usize,
    pub api_timeout: Duration,
}

/// Compares every hashed instance with its live object, `concurrency` GETs at a time, in
/// the state's order. `progress` is told how many are done.
pub async fn check(
    client: Client,
    hashed: Vec<Hashed>,
    rules: &Ignore,
    options: &Options,
    progress: Arc<AtomicUsize>,
) -> Report {
    let resources: Vec<Checked> = futures::stream::iter(hashed)
        .map(|h| {
            let client = client.clone();
            let progress = progress.clone();
            async move {
                let checked = check_one(client, &h, rules, options.api_timeout).await;
                progress.fetch_add(1, Ordering::Relaxed);
                checked
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut summary = Summary::default();
    for c in &resources {
        match c.status {
            Status::InSync => summary.in_sync += 1,
            Status::Drifted => summary.drifted += 1,
            Status::Missing => summary.missing += 1,
            Status::Recreated => summary.recreated += 1,
            Status::Error => summary.errors += 1,
        }
    }
    Report { resources, summary }
}

/// The live object as JSON, `None` when it does not exist.
async fn get_live(
    client: Client,
    kind: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<Value>, String> {
    async fn get<K: Fingerprint>(
        client: Client,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Value>, String> {
        let api: Api<K> = Api::namespaced(client, namespace);
        match tokio::time::timeout(timeout, api.get_opt(name)).await {
            Err(_) => Err(format!("reading it timed out after {timeout:?}")),
            Ok(Err(error)) => Err(format!("cannot read it: {error}")),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(obj))) => serde_json::to_value(obj)
                .map(Some)
                .map_err(|e| format!("cannot read it: {e}")),
        }
    }
    macro_rules! dispatch {
        ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
            match kind {
                $($kind => get::<$ty>(client, namespace, name, timeout).await,)*
                other => Err(format!("{other} is not a supported kind")),
            }
        };
    }
    crate::for_each_kind!(dispatch)
}

async fn check_one(client: Client, h: &Hashed, rules: &Ignore, timeout: Duration) -> Checked {
    let id = &h.instance.id;
    let mut checked = Checked {
        address: h.instance.address.clone(),
        kind: id.kind.clone(),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        status: Status::InSync,
        hash: h.hash.clone(),
        live_hash: None,
        detail: None,
    };
    let live = match get_live(client, &id.kind, &id.namespace, &id.name, timeout).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            checked.status = Status::Missing;
            checked.detail = Some("in state, not in the cluster".to_owned());
            return checked;
        }
        Err(why) => {
            checked.status = Status::Error;
            checked.detail = Some(why);
            return checked;
        }
    };
    let live_uid = live.pointer("/metadata/uid").and_then(Value::as_str);
    if let (Some(state_uid), Some(live_uid)) = (h.instance.uid.as_deref(), live_uid)
        && state_uid != live_uid
    {
        checked.status = Status::Recreated;
        checked.detail = Some(format!(
            "deleted and created again outside Terraform: uid {live_uid}, state has {state_uid}"
        ));
        return checked;
    }
    // The intent's ignore annotation rules both sides, so that the hashes meet.
    let mut judged = live.clone();
    if let Some(meta) = judged.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = h
            .instance
            .object
            .pointer("/metadata/annotations")
            .cloned()
            .unwrap_or(Value::Null);
        meta.insert("annotations".into(), annotations);
    }
    let (live_hash, live_spec) = match rules.filtered(&judged) {
        Some(Ok((hash, spec, _))) => (hash, spec),
        Some(Err(error)) => {
            checked.status = Status::Error;
            checked.detail = Some(format!("cannot fingerprint the live object: {error}"));
            return checked;
        }
        None => {
            checked.status = Status::Error;
            checked.detail = Some("not a supported kind".to_owned());
            return checked;
        }
    };
    checked.live_hash = Some(live_hash.clone());
    if live_hash != h.hash {
        checked.status = Status::Drifted;
        let managed: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry> = live
            .pointer("/metadata/managedFields")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let why = explain::describe(
            &id.kind,
            &h.spec,
            &live_spec,
            &managed,
            Values::Redacted,
            DETAIL_LIMIT,
            "no writer recorded in managedFields",
        );
        checked.detail = Some(text::bounded(&why, DETAIL_LIMIT));
    }
    checked
}
