//! What one reconcile will do, as a pure function of the cached object and what the
//! context knows: the annotations to patch, the events to send, whether to fetch the object
//! to say what drifted. The executor (`reconcile`) only carries the plan out.

use std::collections::BTreeMap;

use crate::core::contract::{self, EventType};
use crate::core::fingerprint::Fingerprint;
use crate::core::verdict::{self, Verdict};
use crate::operator::summary::Cached;

/// What the context says when a plan is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Situation<'a> {
    /// This replica holds the lease (or runs without election).
    pub leader: bool,
    /// The HPAs have been listed (always true when HPAs are not watched).
    pub hpas_listed: bool,
    /// The HPA scaling the object, if one does.
    pub scaled_by: Option<&'a str>,
    /// The verdict this process last reported for the object.
    pub previous: Option<&'a Verdict>,
    /// A Terraform state names the object: it is judged against the state, by the
    /// controller of named objects, not by its spec-hash (the state is Terraform's own record).
    pub named: bool,
    /// The object's `terraform-workspace` annotation names a state that exists but cannot
    /// be read now: what it had stays.
    pub state_unreadable: bool,
}

/// What a reconcile does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: a standby, an intent source not read yet, an object nobody asked about.
    Wait,
    /// Remove the operator's annotations from an object no source names any more.
    CleanUp(BTreeMap<&'static str, Option<String>>),
    Decide(Plan),
}

/// An event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedEvent {
    pub reason: &'static str,
    pub type_: EventType,
    pub note: String,
}

/// What a reconcile that decides will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub verdict: Verdict,
    pub live_hash: String,
    /// `metadata.annotations` merge patch: only the keys that change (`None` removes).
    pub patch: BTreeMap<&'static str, Option<String>>,
    /// Fetch the object to say what drifted and who did it: only on entering or changing
    /// drift, never at steady state.
    pub explain: bool,
    /// Events in the order they are sent: a new invalid-rule warning, then the transition.
    pub events: Vec<PlannedEvent>,
    /// The ignore rules in effect changed (worth a log line).
    pub ignored_changed: bool,
}

impl Step {
    #[cfg(test)]
    fn decided(self) -> Option<Plan> {
        match self {
            Step::Decide(p) => Some(p),
            _ => None,
        }
    }
}

/// The step for `obj`. `Err` carries why the object has no live fingerprint.
pub(crate) fn plan<K: Fingerprint>(
    obj: &Cached<K>,
    situation: &Situation<'_>,
    now_rfc3339: impl FnOnce() -> String,
) -> Result<Step, String> {
    // Standbys keep their caches warm but decide nothing; they are re-triggered on election.
    // Until the HPAs and the states are listed no verdict can be trusted; their lists
    // re-trigger all.
    if !situation.leader || !situation.hpas_listed {
        return Ok(Step::Wait);
    }
    if situation.named {
        return Ok(Step::Wait);
    }
    let annotations = obj.annotations();
    if !obj.opted_in && situation.state_unreadable {
        return Ok(Step::Wait);
    }
    if !obj.opted_in {
        // Not labelled (and no state names it): nothing of ours stays on it.
        let patch = verdict::cleanup_patch(&annotations);
        return Ok(if patch.is_empty() {
            Step::Wait
        } else {
            Step::CleanUp(patch)
        });
    }
    let scaled = situation.scaled_by.is_some();
    let view = obj.view(scaled).map_err(str::to_owned)?;
    let live = view.hash.as_str();
    let verdict = verdict::decide(
        annotations.get(contract::SPEC_HASH).map(String::as_str),
        live,
        view.record_agrees,
    );
    let mut patch = verdict::annotation_patch(&annotations, &verdict, live, now_rfc3339);
    // Judged by its label again after a state named it: what said so goes.
    for key in [
        contract::INTENT_SOURCE,
        contract::TERRAFORM_ADDRESS,
        contract::TERRAFORM_WORKSPACE,
    ] {
        if annotations.contains_key(key) {
            patch.insert(key, None);
        }
    }
    let ignored = ignored_list(obj.ignored.as_deref(), scaled);
    let ignored_changed = annotations.get(contract::IGNORED) != ignored.as_ref();
    if ignored_changed {
        patch.insert(contract::IGNORED, ignored);
    }
    let mut events = Vec::new();
    // Bounded when parsed (ignore::Parsed::invalid_note).
    let invalid = obj.invalid_rules.as_deref().map(str::to_owned);
    if annotations.get(contract::IGNORE_INVALID) != invalid.as_ref() {
        if let Some(note) = &invalid {
            events.push(PlannedEvent {
                reason: contract::reason::INVALID_IGNORE_RULE,
                type_: EventType::Warning,
                note: format!("{}: {note}; the other rules apply", contract::IGNORE),
            });
        }
        patch.insert(contract::IGNORE_INVALID, invalid);
    }
    if verdict == Verdict::InSync
        && let Some(record) = &obj.pending_record
    {
        patch.insert(contract::BASELINE, Some(record.to_string()));
    }
    let explain = verdict == Verdict::Drifted
        && (annotations.get(contract::LIVE_HASH).map(String::as_str) != Some(live)
            || !annotations.contains_key(contract::DRIFT_SUMMARY));
    if let Some((reason, type_, note)) = verdict::event_for(
        &verdict,
        situation.previous,
        annotations.get(contract::DRIFTED).map(String::as_str),
    ) {
        events.push(PlannedEvent {
            reason,
            type_,
            note,
        });
    }
    Ok(Step::Decide(Plan {
        verdict,
        live_hash: live.to_owned(),
        patch,
        explain,
        events,
        ignored_changed,
    }))
}

/// The `tfdrift.jin.dev/ignored` value: the rules that changed the live fingerprint, and
/// `replicas` when an HPA scales the object.
fn ignored_list(rules: Option<&str>, scaled: bool) -> Option<String> {
    match (rules, scaled) {
        (Some(r), true) => Some(format!("{r},replicas")),
        (None, true) => Some("replicas".to_owned()),
        (r, false) => r.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::contract::reason;
    use crate::operator::summary::Options;
    use k8s_openapi::api::apps::v1::Deployment;

    const OTHER: &str = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const NOW: &str = "2026-11-25T00:00:00Z";

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kube-apiserver-v1.20.2/deploy-minimal/live.json"
        );
        let mut d: Deployment = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let ann = d.metadata.annotations.get_or_insert_with(Default::default);
        for (k, v) in annotations {
            ann.insert((*k).into(), (*v).into());
        }
        d
    }

    fn cached(annotations: &[(&str, &str)]) -> Cached<Deployment> {
        Cached::new(deployment(annotations), &Options::default())
    }

    fn live_hash() -> String {
        cached(&[]).view(false).unwrap().hash.clone()
    }

    const LEADER: Situation<'static> = Situation {
        leader: true,
        hpas_listed: true,
        scaled_by: None,
        previous: None,
        named: false,
        state_unreadable: false,
    };

    fn plan_of(obj: &Cached<Deployment>, situation: &Situation<'_>) -> Option<Plan> {
        plan(obj, situation, || NOW.to_owned()).unwrap().decided()
    }

    fn reasons(p: &Plan) -> Vec<&'static str> {
        p.events.iter().map(|e| e.reason).collect()
    }

    fn set(pairs: &[(&'static str, Option<&str>)]) -> BTreeMap<&'static str, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn standbys_objects_not_opted_in_and_unlisted_hpas_decide_nothing() {
        let live = live_hash();
        let obj = cached(&[(contract::SPEC_HASH, live.as_str())]);
        let standby = Situation {
            leader: false,
            ..LEADER
        };
        assert_eq!(plan_of(&obj, &standby), None);
        let unlisted = Situation {
            hpas_listed: false,
            ..LEADER
        };
        assert_eq!(plan_of(&obj, &unlisted), None);
        let mut out = deployment(&[(contract::SPEC_HASH, live.as_str())]);
        out.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(contract::ENABLED_LABEL);
        let out = Cached::new(out, &Options::default());
        assert_eq!(plan_of(&out, &LEADER), None);
    }

    #[test]
    fn in_sync_at_steady_state_plans_nothing_at_all() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, live.as_str()),
            (contract::DRIFTED, "false"),
            (contract::LIVE_HASH, live.as_str()),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert_eq!(p.verdict, Verdict::InSync);
        assert!(
            p.patch.is_empty() && p.events.is_empty() && !p.explain,
            "{p:?}"
        );
        // The same after this process reported it in sync.
        let p = plan_of(
            &obj,
            &Situation {
                previous: Some(&Verdict::InSync),
                ..LEADER
            },
        )
        .unwrap();
        assert!(p.patch.is_empty() && p.events.is_empty());
    }

    #[test]
    fn first_in_sync_verdict_writes_annotations_without_an_event() {
        let live = live_hash();
        let p = plan_of(&cached(&[(contract::SPEC_HASH, live.as_str())]), &LEADER).unwrap();
        assert_eq!(
            p.patch,
            set(&[
                (contract::DRIFTED, Some("false")),
                (contract::LIVE_HASH, Some(live.as_str()))
            ])
        );
        assert!(p.events.is_empty());
    }

    #[test]
    fn entering_drift_plans_the_annotations_the_event_and_the_explanation() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, OTHER),
            (contract::DRIFTED, "false"),
            (contract::LIVE_HASH, OTHER),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert_eq!(p.verdict, Verdict::Drifted);
        assert_eq!(
            p.patch,
            set(&[
                (contract::DRIFTED, Some("true")),
                (contract::DRIFTED_AT, Some(NOW)),
                (contract::LIVE_HASH, Some(live.as_str())),
            ])
        );
        assert_eq!(reasons(&p), [reason::DRIFT_DETECTED]);
        assert_eq!(p.events[0].type_, EventType::Warning);
        assert!(p.explain);
    }

    #[test]
    fn staying_drifted_sends_no_second_event() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, OTHER),
            (contract::DRIFTED, "true"),
            (contract::DRIFTED_AT, NOW),
            (contract::LIVE_HASH, live.as_str()),
            (contract::DRIFT_SUMMARY, "replicas: 1 → 3"),
        ]);
        // After a restart (nothing in memory) the annotation says it was reported.
        let p = plan_of(&obj, &LEADER).unwrap();
        assert!(
            p.patch.is_empty() && p.events.is_empty() && !p.explain,
            "{p:?}"
        );
        let p = plan_of(
            &obj,
            &Situation {
                previous: Some(&Verdict::Drifted),
                ..LEADER
            },
        )
        .unwrap();
        assert!(p.events.is_empty());
        // A second drifting edit: explained again, still no second event.
        let obj = cached(&[
            (contract::SPEC_HASH, OTHER),
            (contract::DRIFTED, "true"),
            (contract::DRIFTED_AT, NOW),
            (contract::LIVE_HASH, OTHER),
            (contract::DRIFT_SUMMARY, "replicas: 1 → 3"),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert!(p.explain && p.events.is_empty());
        assert_eq!(p.patch, set(&[(contract::LIVE_HASH, Some(live.as_str()))]));
    }

    #[test]
    fn a_drift_this_process_reported_in_sync_is_an_event_whatever_the_annotation() {
        let obj = cached(&[(contract::SPEC_HASH, OTHER), (contract::DRIFTED, "true")]);
        let p = plan_of(
            &obj,
            &Situation {
                previous: Some(&Verdict::InSync),
                ..LEADER
            },
        )
        .unwrap();
        assert_eq!(reasons(&p), [reason::DRIFT_DETECTED]);
    }

    #[test]
    fn back_in_sync_resolves_and_clears_the_drift_annotations() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, live.as_str()),
            (contract::DRIFTED, "true"),
            (contract::DRIFTED_AT, NOW),
            (contract::LIVE_HASH, OTHER),
            (contract::DRIFT_SUMMARY, "replicas: 1 → 3"),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert_eq!(
            p.patch,
            set(&[
                (contract::DRIFTED, Some("false")),
                (contract::DRIFTED_AT, None),
                (contract::DRIFT_SUMMARY, None),
                (contract::LIVE_HASH, Some(live.as_str())),
            ])
        );
        assert_eq!(reasons(&p), [reason::DRIFT_RESOLVED]);
        assert_eq!(p.events[0].type_, EventType::Normal);
    }

    #[test]
    fn a_missing_or_invalid_spec_hash_is_unknown_with_a_warning_once() {
        let p = plan_of(&cached(&[]), &LEADER).unwrap();
        assert_eq!(p.verdict, Verdict::BaselineMissing);
        assert_eq!(p.patch[contract::DRIFTED].as_deref(), Some("unknown"));
        assert_eq!(reasons(&p), [reason::BASELINE_MISSING]);
        let again = cached(&[(contract::DRIFTED, "unknown")]);
        assert!(plan_of(&again, &LEADER).unwrap().events.is_empty());

        let p = plan_of(&cached(&[(contract::SPEC_HASH, "not-a-hash")]), &LEADER).unwrap();
        assert_eq!(p.verdict, Verdict::InvalidBaseline("not-a-hash".into()));
        assert_eq!(reasons(&p), [reason::INVALID_BASELINE]);
        assert!(p.events[0].note.contains("\"not-a-hash\""));
    }

    #[test]
    fn invalid_ignore_rules_warn_once_and_the_hpa_adds_replicas_to_ignored() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, live.as_str()),
            (contract::IGNORE, "env["),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert_eq!(reasons(&p), [reason::INVALID_IGNORE_RULE]);
        let note = p.patch[contract::IGNORE_INVALID].clone().unwrap();
        let reported = cached(&[
            (contract::SPEC_HASH, live.as_str()),
            (contract::IGNORE, "env["),
            (contract::IGNORE_INVALID, note.as_str()),
        ]);
        let p = plan_of(&reported, &LEADER).unwrap();
        assert!(!reasons(&p).contains(&reason::INVALID_IGNORE_RULE));

        let scaled = Cached::new(
            deployment(&[(contract::SPEC_HASH, live.as_str())]),
            &Options {
                hpa_aware: true,
                ..Options::default()
            },
        );
        let p = plan_of(
            &scaled,
            &Situation {
                scaled_by: Some("web-hpa"),
                ..LEADER
            },
        )
        .unwrap();
        assert!(p.ignored_changed);
        assert_eq!(p.patch[contract::IGNORED].as_deref(), Some("replicas"));
    }

    /// An object a state names is decided by the controller of named objects, whatever
    /// its label and spec-hash say.
    #[test]
    fn an_object_a_state_names_is_not_decided_by_its_label() {
        let obj = cached(&[(contract::SPEC_HASH, OTHER)]);
        let named = Situation {
            named: true,
            ..LEADER
        };
        assert_eq!(plan(&obj, &named, || NOW.to_owned()).unwrap(), Step::Wait);
    }

    /// Judged by its label again after a state stopped naming it: the state's annotations go.
    #[test]
    fn an_object_a_state_no_longer_names_loses_the_states_annotations() {
        let live = live_hash();
        let obj = cached(&[
            (contract::SPEC_HASH, live.as_str()),
            (contract::INTENT_SOURCE, "terraform-state"),
            (contract::TERRAFORM_ADDRESS, "kubernetes_deployment_v1.web"),
        ]);
        let p = plan_of(&obj, &LEADER).unwrap();
        assert_eq!(p.patch[contract::INTENT_SOURCE], None);
        assert_eq!(p.patch[contract::TERRAFORM_ADDRESS], None);
        assert_eq!(p.verdict, Verdict::InSync);
    }

    #[test]
    fn an_unlabelled_object_loses_the_operators_annotations() {
        let mut d = deployment(&[(contract::DRIFTED, "false"), ("unrelated", "kept")]);
        d.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(contract::ENABLED_LABEL);
        let obj = Cached::new(d, &Options::default());
        assert_eq!(
            plan(&obj, &LEADER, || NOW.to_owned()).unwrap(),
            Step::CleanUp(set(&[(contract::DRIFTED, None)]))
        );
        let unreadable = Situation {
            state_unreadable: true,
            ..LEADER
        };
        assert_eq!(
            plan(&obj, &unreadable, || NOW.to_owned()).unwrap(),
            Step::Wait
        );
    }
}
