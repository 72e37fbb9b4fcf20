//! What one reconcile of a named object will do, as a pure function of its cache entry and
//! what the context knows: the events to send, then the verdict annotations to patch (kinds
//! the operator annotates) or the verdict record to write or delete (every other kind).

use std::collections::BTreeMap;

use crate::core::contract;
use crate::core::verdict::{self, Verdict};
use crate::operator::intents::StateIntent;
use crate::operator::named::judged::{Basis, Judged, Outcome};
use crate::operator::named::records::Record;
use crate::operator::plan::PlannedEvent;

/// What the context says when a plan is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Situation<'a> {
    /// This replica holds the lease (or runs without election).
    pub leader: bool,
    /// The HPAs and the verdict records have been listed.
    pub listed: bool,
    /// What a state says of the object now, if one names it.
    pub state: Option<&'a StateIntent>,
    /// An HPA scales the object now.
    pub scaled: bool,
    /// Its state's lock is held: Terraform is changing things.
    pub locked: bool,
    /// The verdict this process last reported for the object.
    pub previous: Option<&'a Verdict>,
    /// The kind carries verdict annotations (`--annotate-kinds`); else records keep them.
    pub annotate: bool,
    /// The object's verdict record, for a kind without annotations.
    pub record: Option<&'a Record>,
}

/// What a reconcile does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: a standby, lists not complete, a lock held over a new drift.
    Wait,
    /// Judged against another intent (or HPA) than holds now: fetch the object again; its
    /// arrival decides.
    Refetch,
    /// No state names it any more: remove what the operator wrote (unless the label flow
    /// takes it over) and forget it.
    Release {
        patch: BTreeMap<&'static str, Option<String>>,
        delete_record: bool,
    },
    Decide(Plan),
}

/// What a reconcile that decides will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub verdict: Verdict,
    /// `metadata.annotations` merge patch (annotated kinds): only keys that change.
    pub patch: BTreeMap<&'static str, Option<String>>,
    pub record: RecordStep,
    /// In the order they are sent, before anything that records the verdict.
    pub events: Vec<PlannedEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordStep {
    Keep,
    Write(Record),
    Delete,
}

/// The step for `obj`. `Err` carries why it could not be judged.
pub(crate) fn plan(
    obj: &Judged,
    situation: &Situation<'_>,
    now_rfc3339: impl FnOnce() -> String,
) -> Result<Step, String> {
    if !situation.leader || !situation.listed {
        return Ok(Step::Wait);
    }
    let annotations = obj.annotations();
    let Some(state) = situation.state else {
        // Labelled, it goes back to the spec-hash flow, which rewrites the annotations.
        let patch = if situation.annotate && !obj.opted_in {
            verdict::cleanup_patch(&annotations)
        } else {
            BTreeMap::new()
        };
        return Ok(Step::Release {
            patch,
            delete_record: situation.record.is_some(),
        });
    };
    if obj.basis != Basis::of(state, situation.scaled) {
        return Ok(Step::Refetch);
    }
    let verdict = match &obj.outcome {
        Outcome::InSync { .. } => Verdict::InSync,
        Outcome::Drifted { .. } | Outcome::Recreated { .. } => Verdict::Drifted,
        Outcome::Failed(why) => return Err(why.to_string()),
    };
    // What was reported, as it survives restarts: the annotation, or the record.
    let reported = if situation.annotate {
        annotations.get(contract::DRIFTED).cloned()
    } else {
        situation.record.map(|_| "true".to_owned())
    };
    let was_drifted =
        situation.previous == Some(&Verdict::Drifted) || reported.as_deref() == Some("true");
    // While Terraform holds the lock, live objects and state change apart: no new drift
    // until it is released (its release decides every object of the state again).
    if situation.locked && verdict == Verdict::Drifted && !was_drifted {
        return Ok(Step::Wait);
    }
    let address = state.address();
    let summary = match &obj.outcome {
        Outcome::Drifted { summary, .. } => Some(summary.to_string()),
        Outcome::Recreated { live, state } => Some(format!(
            "recreated outside Terraform: uid {live}, Terraform state has {state}"
        )),
        _ => None,
    };
    let mut events = Vec::new();
    if let Some((reason, type_, _)) =
        verdict::event_for(&verdict, situation.previous, reported.as_deref())
    {
        let note = match &obj.outcome {
            Outcome::Recreated { live, state } => format!(
                "recreated outside Terraform ({address}): uid {live}, Terraform state has {state}"
            ),
            Outcome::Drifted { summary, .. } if state.state.is_helm() => {
                format!("live state no longer matches {}: {summary}", state.origin())
            }
            Outcome::Drifted {
                addresses, summary, ..
            } => format!("live state no longer matches Terraform state ({addresses}): {summary}"),
            _ => format!("live state matches {} again", state.origin()),
        };
        events.push(PlannedEvent {
            reason,
            type_,
            note,
        });
    }
    let drifted_at = |current: Option<&String>| {
        current
            .filter(|_| was_drifted)
            .cloned()
            .unwrap_or_else(now_rfc3339)
    };
    let mut patch = BTreeMap::new();
    let mut record = RecordStep::Keep;
    if situation.annotate {
        let drifted = verdict == Verdict::Drifted;
        let helm = state.state.is_helm();
        // A release's objects carry the Terraform address only when a helm_release names it.
        let terraform_address =
            (!crate::intent::helm::is_release_address(address)).then(|| address.to_owned());
        let desired: [(&'static str, Option<String>); 11] = [
            (contract::DRIFTED, Some(verdict.drifted_value().to_owned())),
            (
                contract::DRIFTED_AT,
                drifted.then(|| drifted_at(annotations.get(contract::DRIFTED_AT))),
            ),
            (contract::DRIFT_SUMMARY, summary),
            (
                contract::INTENT_SOURCE,
                Some(if helm { "helm" } else { "terraform-state" }.to_owned()),
            ),
            (contract::TERRAFORM_ADDRESS, terraform_address),
            (
                contract::TERRAFORM_WORKSPACE,
                (!helm).then(|| state.state.to_string()),
            ),
            (
                contract::HELM_RELEASE,
                helm.then(|| format!("{}/{}", state.state.namespace, state.state.suffix)),
            ),
            (
                contract::HELM_REVISION,
                state.helm_revision().map(|r| r.to_string()),
            ),
            // The spec-hash flow's: a state's verdict is no hash.
            (contract::LIVE_HASH, None),
            (contract::IGNORED, None),
            (contract::IGNORE_INVALID, None),
        ];
        for (key, want) in desired {
            if annotations.get(key) != want.as_ref() {
                patch.insert(key, want);
            }
        }
    } else {
        match (&verdict, situation.record, summary) {
            (Verdict::Drifted, current, Some(summary)) => {
                let want = Record {
                    address: address.to_owned(),
                    workspace: state.state.to_string(),
                    drifted_at: drifted_at(current.map(|r| &r.drifted_at)),
                    summary,
                };
                if current != Some(&want) {
                    record = RecordStep::Write(want);
                }
            }
            (Verdict::InSync, Some(_), _) => record = RecordStep::Delete,
            _ => {}
        }
    }
    Ok(Step::Decide(Plan {
        verdict,
        patch,
        record,
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::contract::{EventType, reason};
    use crate::core::object::ObjectId;
    use crate::intent::terraform::compact::Compact;
    use crate::intent::terraform::{Instance, Source, judge};
    use crate::operator::intents::{Claim, StateId};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::sync::Arc;

    const NOW: &str = "2026-12-02T00:00:00Z";

    fn state() -> StateIntent {
        let instance = Instance {
            address: "kubernetes_role_v1.editor".into(),
            resource_type: "kubernetes_role_v1".into(),
            id: ObjectId::in_group("rbac.authorization.k8s.io", "Role", "app", "editor"),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            uid: Some("u-1".into()),
            object: serde_json::json!({"rules": []}),
            source: Source::Manifest {
                computed: Vec::new(),
            },
        };
        StateIntent::new(
            Arc::new(StateId {
                namespace: "terraform".into(),
                workspace: "default".into(),
                suffix: "app".into(),
            }),
            vec![Claim {
                instance: Compact::new(&instance).unwrap(),
                context: judge::Context::default(),
            }],
        )
    }

    fn judged(state: &StateIntent, outcome: Outcome, annotations: &[(&str, &str)]) -> Judged {
        let meta = ObjectMeta {
            name: Some("editor".into()),
            namespace: Some("app".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let mut j = Judged::identity(meta);
        j.outcome = outcome;
        j.basis = Basis::of(state, false);
        j
    }

    fn drifted() -> Outcome {
        Outcome::Drifted {
            addresses: "kubernetes_role_v1.editor".into(),
            summary: "rules[0].verbs: + delete (changed by kubectl-edit at …)".into(),
        }
    }

    fn situation<'a>(state: &'a StateIntent) -> Situation<'a> {
        Situation {
            leader: true,
            listed: true,
            state: Some(state),
            scaled: false,
            locked: false,
            previous: None,
            annotate: false,
            record: None,
        }
    }

    fn decided(step: Step) -> Plan {
        match step {
            Step::Decide(p) => p,
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    /// A kind without annotations: drift is one event and a record; while the record stands
    /// no second event; in sync deletes it with DriftResolved; in sync without one is nothing.
    #[test]
    fn records_carry_the_verdict_of_a_kind_without_annotations() {
        let s = state();
        let obj = judged(&s, drifted(), &[]);
        let p = decided(plan(&obj, &situation(&s), || NOW.to_owned()).unwrap());
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].reason, reason::DRIFT_DETECTED);
        assert!(
            p.events[0]
                .note
                .starts_with("live state no longer matches Terraform state (kubernetes_role_v1.editor): rules[0].verbs: + delete"),
            "{}",
            p.events[0].note
        );
        assert!(p.patch.is_empty(), "an RBAC object is never patched");
        let RecordStep::Write(record) = p.record else {
            panic!("expected a record")
        };
        assert_eq!(record.drifted_at, NOW);
        // After a restart: the record says it was reported.
        let with_record = Situation {
            record: Some(&record),
            ..situation(&s)
        };
        let p = decided(plan(&obj, &with_record, || "later".to_owned()).unwrap());
        assert!(p.events.is_empty() && p.record == RecordStep::Keep, "{p:?}");
        // Fixed while nobody led: resolved, record deleted.
        let fixed = judged(&s, Outcome::InSync { note: None }, &[]);
        let p = decided(plan(&fixed, &with_record, || NOW.to_owned()).unwrap());
        assert_eq!(p.events[0].reason, reason::DRIFT_RESOLVED);
        assert_eq!(p.record, RecordStep::Delete);
        // In sync, nothing recorded: no write at all.
        let p = decided(plan(&fixed, &situation(&s), || NOW.to_owned()).unwrap());
        assert!(p.events.is_empty() && p.record == RecordStep::Keep && p.patch.is_empty());
    }

    #[test]
    fn an_annotated_kind_carries_the_verdict_and_the_address() {
        let s = state();
        let annotated = Situation {
            annotate: true,
            ..situation(&s)
        };
        let obj = judged(
            &s,
            Outcome::InSync { note: None },
            &[(contract::LIVE_HASH, "x")],
        );
        let p = decided(plan(&obj, &annotated, || NOW.to_owned()).unwrap());
        assert!(p.events.is_empty());
        assert_eq!(p.patch[contract::DRIFTED].as_deref(), Some("false"));
        assert_eq!(
            p.patch[contract::TERRAFORM_ADDRESS].as_deref(),
            Some("kubernetes_role_v1.editor")
        );
        assert_eq!(
            p.patch[contract::TERRAFORM_WORKSPACE].as_deref(),
            Some("terraform/default/app")
        );
        assert_eq!(p.patch[contract::LIVE_HASH], None);
        // At steady state: nothing.
        let steady = judged(
            &s,
            Outcome::InSync { note: None },
            &[
                (contract::DRIFTED, "false"),
                (contract::INTENT_SOURCE, "terraform-state"),
                (contract::TERRAFORM_ADDRESS, "kubernetes_role_v1.editor"),
                (contract::TERRAFORM_WORKSPACE, "terraform/default/app"),
            ],
        );
        let p = decided(plan(&steady, &annotated, || NOW.to_owned()).unwrap());
        assert!(p.patch.is_empty() && p.events.is_empty(), "{p:?}");
        // Recreated: drift, with both uids.
        let recreated = judged(
            &s,
            Outcome::Recreated {
                live: "u-2".into(),
                state: "u-1".into(),
            },
            &[(contract::DRIFTED, "false")],
        );
        let p = decided(plan(&recreated, &annotated, || NOW.to_owned()).unwrap());
        assert!(p.events[0].note.starts_with(
            "recreated outside Terraform (kubernetes_role_v1.editor): uid u-2, Terraform state has u-1"
        ));
        assert_eq!(p.events[0].type_, EventType::Warning);
    }

    #[test]
    fn standbys_other_intents_locks_and_released_objects() {
        let s = state();
        let obj = judged(&s, drifted(), &[]);
        let standby = Situation {
            leader: false,
            ..situation(&s)
        };
        assert_eq!(plan(&obj, &standby, || NOW.to_owned()).unwrap(), Step::Wait);
        let scaled = Situation {
            scaled: true,
            ..situation(&s)
        };
        assert_eq!(
            plan(&obj, &scaled, || NOW.to_owned()).unwrap(),
            Step::Refetch
        );
        let locked = Situation {
            locked: true,
            ..situation(&s)
        };
        assert_eq!(plan(&obj, &locked, || NOW.to_owned()).unwrap(), Step::Wait);
        let annotated = judged(&s, drifted(), &[(contract::DRIFTED, "true")]);
        let released = Situation {
            state: None,
            annotate: true,
            ..situation(&s)
        };
        assert_eq!(
            plan(&annotated, &released, || NOW.to_owned()).unwrap(),
            Step::Release {
                patch: BTreeMap::from([(contract::DRIFTED, None)]),
                delete_record: false
            }
        );
    }

    fn helm_state(address: &str) -> StateIntent {
        let instance = Instance {
            address: address.into(),
            resource_type: "helm_release".into(),
            id: ObjectId::in_group("apps", "Deployment", "shop", "web"),
            api_version: "apps/v1".into(),
            uid: None,
            object: serde_json::json!({"spec": {}}),
            source: Source::Helm {
                release: "shop/web".into(),
                revision: 4,
            },
        };
        StateIntent::new(
            Arc::new(StateId::helm("shop", "web")),
            vec![Claim {
                instance: Compact::new(&instance).unwrap(),
                context: judge::Context::default(),
            }],
        )
    }

    /// An object of a Helm release: its events name the release and revision (and the
    /// address of a helm_release naming it), its annotations the release, not a workspace.
    #[test]
    fn a_helm_release_object_is_named_by_its_release() {
        for (address, named) in [
            ("helm:shop/web", ""),
            ("helm_release.web", ", helm_release.web"),
        ] {
            let state = helm_state(address);
            let obj = judged(&state, drifted(), &[]);
            let mut s = situation(&state);
            s.annotate = true;
            let plan = decided(plan(&obj, &s, || NOW.into()).unwrap());
            assert_eq!(
                plan.events[0].note,
                format!(
                    "live state no longer matches Helm release shop/web (revision 4{named}): rules[0].verbs: + delete (changed by kubectl-edit at …)"
                )
            );
            let get = |k: &str| plan.patch.get(k).cloned().flatten();
            assert_eq!(get(contract::INTENT_SOURCE).as_deref(), Some("helm"));
            assert_eq!(get(contract::HELM_RELEASE).as_deref(), Some("shop/web"));
            assert_eq!(get(contract::HELM_REVISION).as_deref(), Some("4"));
            assert_eq!(get(contract::TERRAFORM_WORKSPACE), None);
            let want_address = (!named.is_empty()).then(|| address.to_owned());
            assert_eq!(get(contract::TERRAFORM_ADDRESS), want_address);
        }
    }

    /// A state and a release naming one object: the state is first, whatever the names.
    #[test]
    fn states_come_before_helm_releases() {
        let state = StateId {
            namespace: "zz".into(),
            workspace: "default".into(),
            suffix: "app".into(),
        };
        assert!(state < StateId::helm("aa", "web"));
        assert_eq!(StateId::helm("aa", "web").to_string(), "helm:aa/web");
    }
}
